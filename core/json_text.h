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

// Appends `value` exactly as fmt::format("{}", value) writes it: the shortest
// digits that read back as the same double (fmt's Dragonbox), in fixed
// notation for decimal exponents -4..15 (0.0001, 123.5) and as d.ddde+XX
// otherwise (1e-05, 1.5e+16), "-" before negatives and -0; "nan", "inf"
// for the non-finite. Skips fmt's general float writer (padding, locale,
// grouping), which cost as much as finding the digits on the records' hot
// path.
void AppendShortestDouble(double value, std::string& out);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_JSON_TEXT_H_
