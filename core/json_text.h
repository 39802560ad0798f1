// Writing JSON text by hand where a JSON library would cost more than it gives:
// output records on the hot path, params converted from YAML, quoted values in
// messages.
//
//   std::string out;
//   AppendJsonString("say \"hi\"", out);   // out == "\"say \\\"hi\\\"\""
#ifndef LATEFUSE_CORE_JSON_TEXT_H_
#define LATEFUSE_CORE_JSON_TEXT_H_

#include <string>
#include <string_view>

namespace latefuse {

// Appends `s` to `out` as a JSON string literal, quotes included. UTF-8 passes
// through; quotes, backslashes and control characters are escaped.
void AppendJsonString(std::string_view s, std::string& out);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_JSON_TEXT_H_
