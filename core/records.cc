#include "core/records.h"

#include <simdjson.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/json_text.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Strings quoted in messages are cut to about this many characters.
constexpr std::size_t kMaxQuotedChars = 40;

// Deeper nesting than this is not followed when re-reading a refused line
// (simdjson's own default limit is 1024 as well).
constexpr std::size_t kMaxRescanDepth = 1024;

// Debian's Abseil is built with its own string_view type rather than
// std::string_view, so views cross into Abseil through this.
absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (!IsJsonSpace(c) && c != '\f' && c != '\v') return false;
  }
  return true;
}

// `text` as a JSON string literal, cut to about kMaxQuotedChars characters
// (never inside a UTF-8 sequence) with "..." marking the cut.
std::string QuoteShort(std::string_view text) {
  bool cut = false;
  if (text.size() > kMaxQuotedChars) {
    std::size_t end = kMaxQuotedChars - 3;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    text = text.substr(0, end);
    cut = true;
  }
  std::string out;
  AppendJsonString(text, out);
  if (cut) out.insert(out.size() - 1, "...");
  return out;
}

// A raw token (a number simdjson refused) cut for a message.
std::string ShortToken(std::string_view token) {
  if (token.size() <= kMaxQuotedChars) return std::string(token);
  return absl::StrCat(ToAbsl(token.substr(0, kMaxQuotedChars - 3)), "...");
}

// A JSON value as a message shows it after "got": scalars as short JSON text
// (42, 1.5, true, null, "abc"), containers by kind (a list, an object). With
// `strings_by_kind`, a string is "a string" rather than its text.
std::string Describe(element value, bool strings_by_kind) {
  switch (value.type()) {
    case element_type::ARRAY:
      return "a list";
    case element_type::OBJECT:
      return "an object";
    case element_type::STRING:
      if (strings_by_kind) return "a string";
      return QuoteShort(value.get_string().value_unsafe());
    case element_type::INT64:
      return absl::StrCat(value.get_int64().value_unsafe());
    case element_type::UINT64:
      return absl::StrCat(value.get_uint64().value_unsafe());
    case element_type::DOUBLE:
      return fmt::format("{}", value.get_double().value_unsafe());
    case element_type::BOOL:
      return value.get_bool().value_unsafe() ? "true" : "false";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

std::string CountOfNumbers(std::size_t n) {
  return absl::StrCat(n, n == 1 ? " number" : " numbers");
}

// The JSON number grammar of RFC 8259:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view t) {
  std::size_t i = 0;
  const std::size_t n = t.size();
  auto digits = [&] {
    const std::size_t start = i;
    while (i < n && IsDigit(t[i])) ++i;
    return i > start;
  };
  if (i < n && t[i] == '-') ++i;
  if (i < n && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// One level of nesting while re-reading a line: an object (with the key
// being read) or a list (with the index of the element being read).
struct PathStep {
  bool is_object = false;
  std::string key;
  std::size_t index = 0;
};

std::string FormatPath(const std::vector<PathStep>& path) {
  std::string out;
  for (const PathStep& step : path) {
    if (step.is_object) {
      if (!out.empty()) out += '.';
      out += step.key;
    } else {
      absl::StrAppend(&out, "[", step.index, "]");
    }
  }
  return out;
}

// Re-reads a line that simdjson refused, on the error path only, to recover
// what simdjson's error code alone does not tell: the record's id (so a bad
// line's output can still name it) and, when simdjson refused a number, which
// number and where. It follows the JSON structure leniently and stops at the
// first thing it cannot follow; everything before that point is as simdjson
// would read it, since strings and numbers are decoded by simdjson itself.
class Rescan {
 public:
  Rescan(std::string_view line, simdjson::dom::parser& parser,
         bool find_refused_number)
      : line_(line),
        parser_(parser),
        find_refused_number_(find_refused_number) {}

  void Run();

  bool root_is_object() const { return root_is_object_; }
  // A usable top-level "id" given once before the point where reading
  // stopped.
  bool has_id() const { return id_count_ == 1 && !id_.empty(); }
  const std::string& id() const { return id_; }
  // The first number that is valid JSON but that simdjson refuses on its own
  // (out of the range of a double, or an integer beyond 64 bits), and where.
  bool found_refused_number() const { return found_refused_number_; }
  std::string_view refused_number() const { return refused_number_; }
  const std::vector<PathStep>& refused_number_path() const {
    return refused_number_path_;
  }

 private:
  enum class Expect { kValue, kValueOrClose, kKey, kKeyOrClose, kCommaOrClose };

  void SkipSpace() {
    while (pos_ < line_.size() && IsJsonSpace(line_[pos_])) ++pos_;
  }
  // Reads the string token starting at pos_ (a '"'), quotes included.
  bool ReadString(std::string_view& token);
  // Decodes a string token with simdjson (escapes, UTF-8); a token without
  // backslashes is taken as is unless `validate`.
  bool Decode(std::string_view token, bool validate, std::string& out);
  bool ReadValue(Expect& expect);

  std::string_view line_;
  simdjson::dom::parser& parser_;
  const bool find_refused_number_;
  std::size_t pos_ = 0;
  std::vector<PathStep> stack_;

  bool root_is_object_ = false;
  int id_count_ = 0;
  std::string id_;
  bool found_refused_number_ = false;
  std::string_view refused_number_;
  std::vector<PathStep> refused_number_path_;
};

bool Rescan::ReadString(std::string_view& token) {
  const std::size_t start = pos_;
  std::size_t i = pos_ + 1;
  while (i < line_.size()) {
    if (line_[i] == '\\') {
      i += 2;
    } else if (line_[i] == '"') {
      pos_ = i + 1;
      token = line_.substr(start, pos_ - start);
      return true;
    } else {
      ++i;
    }
  }
  return false;
}

bool Rescan::Decode(std::string_view token, bool validate, std::string& out) {
  if (!validate && token.find('\\') == std::string_view::npos) {
    out.assign(token.substr(1, token.size() - 2));
    return true;
  }
  std::string_view text;
  if (parser_.parse(token.data(), token.size()).get_string().get(text)) {
    return false;
  }
  out.assign(text);
  return true;
}

// Reads the value at pos_; false where the line cannot be followed further or
// the refused number was found.
bool Rescan::ReadValue(Expect& expect) {
  const char c = line_[pos_];
  if (c == '{' || c == '[') {
    if (stack_.size() >= kMaxRescanDepth) return false;
    stack_.emplace_back().is_object = c == '{';
    ++pos_;
    expect = c == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
    return true;
  }
  expect = Expect::kCommaOrClose;
  if (c == '"') {
    std::string_view token;
    if (!ReadString(token)) return false;
    const bool is_top_level_id =
        stack_.size() == 1 && stack_[0].is_object && stack_[0].key == "id";
    if (is_top_level_id && id_count_ == 1 &&
        !Decode(token, /*validate=*/true, id_)) {
      id_.clear();
    }
    return true;
  }
  if (c == '-' || IsDigit(c)) {
    const std::size_t start = pos_;
    while (pos_ < line_.size() &&
           (IsDigit(line_[pos_]) || line_[pos_] == '-' || line_[pos_] == '+' ||
            line_[pos_] == '.' || line_[pos_] == 'e' || line_[pos_] == 'E')) {
      ++pos_;
    }
    const std::string_view token = line_.substr(start, pos_ - start);
    if (!IsJsonNumber(token)) return false;
    if (find_refused_number_ &&
        parser_.parse(token.data(), token.size()).error() !=
            simdjson::SUCCESS) {
      found_refused_number_ = true;
      refused_number_ = token;
      refused_number_path_ = stack_;
      return false;
    }
    return true;
  }
  for (std::string_view literal : {"true", "false", "null"}) {
    if (line_.substr(pos_, literal.size()) == literal) {
      pos_ += literal.size();
      return true;
    }
  }
  return false;
}

void Rescan::Run() {
  SkipSpace();
  root_is_object_ = pos_ < line_.size() && line_[pos_] == '{';
  Expect expect = Expect::kValue;
  while (true) {
    SkipSpace();
    if (pos_ == line_.size()) return;
    const char c = line_[pos_];
    switch (expect) {
      case Expect::kValueOrClose:
        if (c == ']') {
          stack_.pop_back();
          ++pos_;
          expect = Expect::kCommaOrClose;
          break;
        }
        [[fallthrough]];
      case Expect::kValue:
        if (!ReadValue(expect)) return;
        break;
      case Expect::kKeyOrClose:
        if (c == '}') {
          stack_.pop_back();
          ++pos_;
          expect = Expect::kCommaOrClose;
          break;
        }
        [[fallthrough]];
      case Expect::kKey: {
        std::string_view token;
        if (c != '"' || !ReadString(token) ||
            !Decode(token, /*validate=*/false, stack_.back().key)) {
          return;
        }
        if (stack_.size() == 1 && stack_[0].key == "id") ++id_count_;
        SkipSpace();
        if (pos_ == line_.size() || line_[pos_] != ':') return;
        ++pos_;
        expect = Expect::kValue;
        break;
      }
      case Expect::kCommaOrClose: {
        if (stack_.empty()) return;  // trailing content after the value
        PathStep& top = stack_.back();
        if (c == ',') {
          ++pos_;
          if (top.is_object) {
            expect = Expect::kKey;
          } else {
            ++top.index;
            expect = Expect::kValue;
          }
        } else if (c == (top.is_object ? '}' : ']')) {
          stack_.pop_back();
          ++pos_;
        } else {
          return;
        }
        break;
      }
    }
  }
}

}  // namespace

void InputBatch::Clear() {
  rows = 0;
  ids.clear();
  has_id.clear();
  labels.clear();
  has_label.clear();
  errors.clear();
  for (InputColumn& column : columns) {
    column.present.clear();
    column.dense.clear();
    column.items.clear();
  }
}

struct RecordParser::State {
  // What a row holds of each modality, while the row is parsed.
  enum Seen : std::uint8_t { kAbsent = 0, kNull = 1, kPresent = 2 };

  explicit State(std::vector<RecordModalitySpec> specs)
      : modalities(std::move(specs)),
        modality_list(modalities.empty()
                          ? "none"
                          : absl::StrJoin(modalities, ", ",
                                          [](std::string* out,
                                             const RecordModalitySpec& spec) {
                                            out->append(spec.name);
                                          })),
        seen(modalities.size(), kAbsent),
        dense_marks(modalities.size(), 0),
        item_marks(modalities.size(), 0) {}

  // Fills row `row` of `batch` from `line`; returns what is wrong with the
  // line (without the "line N: " prefix), or "" when it is fine. May leave
  // values appended to the columns on error: the caller rolls them back.
  std::string ParseRow(std::string_view line, std::size_t row,
                       InputBatch& batch);
  // The message for a line simdjson refused, with its id salvaged if it can be.
  std::string DiagnoseRefusedLine(std::string_view line,
                                  simdjson::error_code code, std::size_t row,
                                  InputBatch& batch);
  std::string ParseModality(std::size_t k, element value, InputBatch& batch);
  bool IsDenseElementPath(const std::vector<PathStep>& path) const;

  std::vector<RecordModalitySpec> modalities;
  std::string modality_list;  // "vitals, labs, imaging", for messages
  simdjson::dom::parser parser;
  // Per-row scratch, one entry per modality, reused from row to row.
  std::vector<std::uint8_t> seen;
  std::vector<std::size_t> dense_marks;
  std::vector<std::size_t> item_marks;
};

std::string RecordParser::State::ParseRow(std::string_view line,
                                          std::size_t row, InputBatch& batch) {
  element root;
  if (simdjson::error_code code =
          parser.parse(line.data(), line.size()).get(root);
      code != simdjson::SUCCESS) {
    return DiagnoseRefusedLine(line, code, row, batch);
  }
  simdjson::dom::object record;
  if (root.get_object().get(record) != simdjson::SUCCESS) {
    return "expected a JSON object";
  }

  // One pass over the top-level keys; they are then checked in a fixed order
  // (id, modalities, label) so a line with several faults always gets the
  // same message.
  element id_value, modalities_value, label_value;
  int id_count = 0, modalities_count = 0, label_count = 0;
  for (simdjson::dom::key_value_pair field : record) {
    if (field.key == "id") {
      id_value = field.value;
      ++id_count;
    } else if (field.key == "modalities") {
      modalities_value = field.value;
      ++modalities_count;
    } else if (field.key == "label") {
      label_value = field.value;
      ++label_count;
    }
  }

  if (id_count == 0) return "missing \"id\"";
  if (id_count > 1) return "id: given twice";
  std::string_view id;
  if (id_value.get_string().get(id) != simdjson::SUCCESS) {
    return absl::StrCat("id: expected a string, got ",
                        Describe(id_value, /*strings_by_kind=*/false));
  }
  if (id.empty()) return "id: expected a non-empty string, got \"\"";
  batch.ids[row].assign(id);
  batch.has_id[row] = 1;

  if (modalities_count == 0) return "missing \"modalities\"";
  if (modalities_count > 1) return "modalities: given twice";
  simdjson::dom::object modalities_object;
  if (modalities_value.get_object().get(modalities_object) !=
      simdjson::SUCCESS) {
    return "modalities: expected an object";
  }
  for (simdjson::dom::key_value_pair field : modalities_object) {
    std::size_t k = 0;
    while (k < modalities.size() && modalities[k].name != field.key) ++k;
    if (k == modalities.size()) {
      return absl::StrCat("modalities.", ToAbsl(field.key),
                          ": unknown modality (the pipeline has ",
                          modality_list, ")");
    }
    if (seen[k] != kAbsent) {
      return absl::StrCat("modalities.", ToAbsl(field.key), ": given twice");
    }
    if (field.value.is_null()) {
      seen[k] = kNull;
      continue;
    }
    if (std::string error = ParseModality(k, field.value, batch);
        !error.empty()) {
      return error;
    }
    seen[k] = kPresent;
  }

  if (label_count > 1) return "label: given twice";
  if (label_count == 1 && !label_value.is_null()) {
    std::string_view label;
    if (label_value.get_string().get(label) != simdjson::SUCCESS) {
      return "label: expected a string";
    }
    batch.labels[row].assign(label);
    batch.has_label[row] = 1;
  }
  return std::string();
}

std::string RecordParser::State::ParseModality(std::size_t k, element value,
                                               InputBatch& batch) {
  const RecordModalitySpec& spec = modalities[k];
  InputColumn& column = batch.columns[k];
  switch (spec.kind) {
    case RecordInputKind::kDense: {
      simdjson::dom::array values;
      if (value.get_array().get(values) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name, ": expected a list of ",
                            CountOfNumbers(spec.width), ", got ",
                            Describe(value, /*strings_by_kind=*/true));
      }
      std::size_t count = values.size();
      if (count >= 0xFFFFFF) {  // simdjson's size() saturates there
        count = 0;
        for ([[maybe_unused]] element ignored : values) ++count;
      }
      if (count != spec.width) {
        return absl::StrCat("modalities.", spec.name, ": expected ",
                            CountOfNumbers(spec.width), ", got ", count);
      }
      const std::size_t start = column.dense.size();
      column.dense.resize(start + spec.width);
      float* out = column.dense.data() + start;
      std::size_t i = 0;
      for (element item : values) {
        double number = 0;
        if (item.get_double().get(number) != simdjson::SUCCESS) {
          return absl::StrCat("modalities.", spec.name, "[", i,
                              "]: expected a number, got ",
                              Describe(item, /*strings_by_kind=*/false));
        }
        if (!(std::fabs(number) < kFloat32Overflow)) {
          return absl::StrCat("modalities.", spec.name, "[", i,
                              "]: not a finite float32 number");
        }
        out[i++] = static_cast<float>(number);
      }
      return std::string();
    }
    case RecordInputKind::kText: {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name,
                            ": expected a string, got ",
                            Describe(value, /*strings_by_kind=*/false));
      }
      column.items.emplace_back(text);
      return std::string();
    }
    case RecordInputKind::kBytes: {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name,
                            ": expected base64 text, got ",
                            Describe(value, /*strings_by_kind=*/false));
      }
      if (!absl::Base64Unescape(ToAbsl(text), &column.items.emplace_back())) {
        return absl::StrCat("modalities.", spec.name, ": expected base64 text");
      }
      return std::string();
    }
  }
  return std::string();
}

bool RecordParser::State::IsDenseElementPath(
    const std::vector<PathStep>& path) const {
  if (path.size() != 3 || !path[0].is_object || path[0].key != "modalities" ||
      !path[1].is_object || path[2].is_object) {
    return false;
  }
  for (const RecordModalitySpec& spec : modalities) {
    if (spec.name == path[1].key) return spec.kind == RecordInputKind::kDense;
  }
  return false;
}

std::string RecordParser::State::DiagnoseRefusedLine(std::string_view line,
                                                     simdjson::error_code code,
                                                     std::size_t row,
                                                     InputBatch& batch) {
  Rescan rescan(line, parser,
                /*find_refused_number=*/code == simdjson::NUMBER_ERROR);
  rescan.Run();
  if (rescan.has_id()) {
    batch.ids[row] = rescan.id();
    batch.has_id[row] = 1;
  }
  if (!rescan.found_refused_number()) {
    return absl::StrCat("invalid JSON: ", simdjson::error_message(code));
  }
  if (!rescan.root_is_object()) return "expected a JSON object";
  const std::string_view number = rescan.refused_number();
  const bool is_integer = number.find_first_of(".eE") == std::string::npos;
  const std::string path = FormatPath(rescan.refused_number_path());
  if (!is_integer && IsDenseElementPath(rescan.refused_number_path())) {
    return absl::StrCat(path, ": not a finite float32 number");
  }
  return absl::StrCat(path, ": number out of range, got ", ShortToken(number),
                      is_integer ? " (integers must fit in 64 bits)" : "");
}

RecordParser::RecordParser(std::vector<RecordModalitySpec> modalities)
    : state_(std::make_unique<State>(std::move(modalities))) {}

RecordParser::~RecordParser() = default;
RecordParser::RecordParser(RecordParser&&) noexcept = default;
RecordParser& RecordParser::operator=(RecordParser&&) noexcept = default;

const std::vector<RecordModalitySpec>& RecordParser::modalities() const {
  return state_->modalities;
}

void RecordParser::Append(std::string_view line, std::size_t line_number,
                          InputBatch& batch) {
  State& state = *state_;
  const std::size_t modality_count = state.modalities.size();
  if (batch.columns.size() != modality_count) {
    batch.columns.resize(modality_count);
    for (InputColumn& column : batch.columns) {
      column.present.resize(batch.rows, 0);
    }
  }

  const std::size_t row = batch.rows;
  batch.ids.emplace_back();
  batch.has_id.push_back(0);
  batch.labels.emplace_back();
  batch.has_label.push_back(0);
  batch.errors.emplace_back();
  batch.rows = row + 1;
  for (std::size_t k = 0; k < modality_count; ++k) {
    state.seen[k] = State::kAbsent;
    state.dense_marks[k] = batch.columns[k].dense.size();
    state.item_marks[k] = batch.columns[k].items.size();
  }

  std::string error =
      IsBlank(line) ? "empty line" : state.ParseRow(line, row, batch);
  if (error.empty()) {
    for (std::size_t k = 0; k < modality_count; ++k) {
      batch.columns[k].present.push_back(state.seen[k] == State::kPresent ? 1
                                                                          : 0);
    }
    return;
  }
  for (std::size_t k = 0; k < modality_count; ++k) {
    InputColumn& column = batch.columns[k];
    column.dense.resize(state.dense_marks[k]);
    column.items.resize(state.item_marks[k]);
    column.present.push_back(0);
  }
  batch.labels[row].clear();
  batch.has_label[row] = 0;
  batch.errors[row] = absl::StrCat("line ", line_number, ": ", error);
}

std::string_view NextLine(std::string_view text, std::size_t& at) {
  std::size_t end = text.find('\n', at);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(at, end - at);
  at = end + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace latefuse
