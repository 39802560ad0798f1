#include "core/pipeline_config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/json_text.h"
#include "core/semver.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kApiVersion = "latefuse/v1";

// Guards against recursive aliases (`&a [*a]` is a cycle in yaml-cpp) and
// alias bombs in `params`.
constexpr int kMaxParamsDepth = 64;
constexpr std::size_t kMaxParamsJsonBytes = std::size_t{16} << 20;

constexpr absl::string_view kYamlStrTag = "tag:yaml.org,2002:str";
constexpr absl::string_view kYamlNullTag = "tag:yaml.org,2002:null";
constexpr absl::string_view kYamlBoolTag = "tag:yaml.org,2002:bool";
constexpr absl::string_view kYamlIntTag = "tag:yaml.org,2002:int";
constexpr absl::string_view kYamlFloatTag = "tag:yaml.org,2002:float";

// ---------------------------------------------------------------------------
// Plain scalars, resolved with the YAML 1.2 core schema.

enum class PlainKind { kNull, kBool, kInt, kFloat, kString };

bool AllOf(absl::string_view s, bool (*pred)(unsigned char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [pred](char c) {
    return pred(static_cast<unsigned char>(c));
  });
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsOctalDigit(unsigned char c) { return c >= '0' && c <= '7'; }
bool IsHexDigit(unsigned char c) { return absl::ascii_isxdigit(c); }

absl::string_view StripSign(absl::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s;
}

bool IsCoreInt(absl::string_view s) {
  if (s.size() > 2 && s.substr(0, 2) == "0o")
    return AllOf(s.substr(2), IsOctalDigit);
  if (s.size() > 2 && s.substr(0, 2) == "0x")
    return AllOf(s.substr(2), IsHexDigit);
  return AllOf(StripSign(s), IsDigit);
}

bool IsCoreInfinity(absl::string_view s) {
  s = StripSign(s);
  return s == ".inf" || s == ".Inf" || s == ".INF";
}
bool IsCoreNan(absl::string_view s) {
  return s == ".nan" || s == ".NaN" || s == ".NAN";
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsCoreFiniteFloat(absl::string_view s) {
  s = StripSign(s);
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && IsDigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  const size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

PlainKind ClassifyPlain(absl::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return PlainKind::kNull;
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" ||
      s == "False" || s == "FALSE") {
    return PlainKind::kBool;
  }
  if (IsCoreInt(s)) return PlainKind::kInt;
  if (IsCoreFiniteFloat(s) || IsCoreInfinity(s) || IsCoreNan(s)) {
    return PlainKind::kFloat;
  }
  return PlainKind::kString;
}

// For text that IsCoreInt accepted; nullopt when it does not fit 64 bits.
std::optional<std::int64_t> ParseCoreInt(absl::string_view s) {
  int base = 10;
  if (s.size() > 2 && s.substr(0, 2) == "0o") {
    base = 8;
    s.remove_prefix(2);
  } else if (s.size() > 2 && s.substr(0, 2) == "0x") {
    base = 16;
    s.remove_prefix(2);
  } else if (s[0] == '+') {
    s.remove_prefix(1);
  }
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// For text that IsCoreFiniteFloat accepted; nullopt when out of range.
std::optional<double> ParseCoreFloat(absl::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3Fu);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinForLength[extra] || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// Shortest text that reads back as `value`, always with a '.' or an exponent
// so that JSON readers keep it a float.
std::string FormatDouble(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, ec == std::errc() ? end : buffer);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

// ---------------------------------------------------------------------------
// Positions and descriptions of nodes.

struct Pos {
  int line = 1;    // 1-based
  int column = 1;  // 1-based
};

Pos PosOf(const YAML::Mark& mark) {
  return {std::max(mark.line, 0) + 1, std::max(mark.column, 0) + 1};
}
Pos PosOf(const YAML::Node& node) { return PosOf(node.Mark()); }

// Where to point for a mapping value. yaml-cpp marks an empty value (`size:`
// at the end of a line) at the next token, possibly lines below; the key is
// the better place then.
Pos ValuePos(const YAML::Node& key, const YAML::Node& value) {
  const Pos key_pos = PosOf(key);
  const Pos value_pos = PosOf(value);
  if (value.IsNull() &&
      (value_pos.line != key_pos.line || value_pos.column <= key_pos.column)) {
    return key_pos;
  }
  return value_pos;
}

bool IsQuoted(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() == "!";
}
bool IsPlainScalar(const YAML::Node& node) {
  return node.IsScalar() && node.Tag() == "?";
}

// How a value reads in "expected X, got Y".
std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  std::string out;
  AppendJsonString(node.Scalar(), out);
  if (IsQuoted(node)) out += " (a quoted string)";
  return out;
}

std::string Quote(absl::string_view s) {
  std::string out;
  AppendJsonString(std::string_view(s.data(), s.size()), out);
  return out;
}

std::string JoinPath(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}
std::string IndexPath(absl::string_view path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

// ---------------------------------------------------------------------------
// The YAML stream: its first document, and whether another follows.

// Where a document of a stream starts and where its root node is, from
// yaml-cpp's parse events.
class DocumentMarks : public YAML::EventHandler {
 public:
  std::size_t start = 0;  // byte offset of the document's first token
  YAML::Mark root;        // of its root node

  void OnDocumentStart(const YAML::Mark& mark) override {
    start = mark.pos;
    has_root_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&,
                       YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark) {
    if (!has_root_) root = mark;
    has_root_ = true;
  }
  bool has_root_ = false;
};

struct Documents {
  std::optional<YAML::Node> first;  // absent: the stream has no document
  std::optional<Pos> second;        // where a second document's root is
};

// Reads the stream's first document and looks for a second one. Throws
// YAML::Exception on a syntax error.
//
// Not YAML::LoadAll: in yaml-cpp 0.7 it never returns when a token that no
// document can start with follows a document (",", "- a\n,"; upstream issue
// 1040, fixed after 0.8): the parser then reports an empty document without
// consuming the token, and LoadAll asks for the next one forever. Here the
// documents are counted one at a time, three at most, and one that starts
// where the one before it did is a syntax error at that token.
Documents ReadDocuments(std::string_view yaml_text) {
  const std::string text(yaml_text);
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  std::vector<DocumentMarks> marks;
  for (int i = 0; i < 3; ++i) {
    DocumentMarks document;
    if (!parser.HandleNextDocument(document)) break;
    if (!marks.empty() && document.start == marks.back().start) {
      const unsigned char c = static_cast<unsigned char>(
          document.start < text.size() ? text[document.start] : ' ');
      throw YAML::ParserException(
          document.root,
          c > ' ' && c < 0x7f
              ? absl::StrCat("unexpected '",
                             std::string(1, static_cast<char>(c)),
                             "'; no YAML value can start with it here")
              : "unexpected character; no YAML value can start with it here");
    }
    marks.push_back(document);
  }
  Documents documents;
  if (marks.empty()) return documents;
  documents.first = YAML::Load(text);
  if (marks.size() > 1) {
    documents.second = PosOf(marks[1].root);
  }
  return documents;
}

// ---------------------------------------------------------------------------
// The reader: walks the document, fills a PipelineConfig, and collects every
// problem instead of stopping at the first.

struct Field {
  std::string key;
  YAML::Node value;
  Pos key_pos;
  Pos value_pos;
  std::string path;  // key path of the value
};

// A mapping whose unknown and duplicate keys have been reported.
struct Fields {
  Pos pos;
  std::string path;
  std::vector<Field> fields;

  const Field* Find(absl::string_view key) const {
    for (const Field& field : fields) {
      if (field.key == key) return &field;
    }
    return nullptr;
  }
};

class Reader {
 public:
  Reader(std::string file_label, fs::path base_dir)
      : file_(std::move(file_label)), base_dir_(std::move(base_dir)) {}

  void Error(Pos pos, absl::string_view path, absl::string_view message) {
    std::string text =
        absl::StrCat(file_, ":", pos.line, ":", pos.column, ": ");
    if (!path.empty()) absl::StrAppend(&text, path, ": ");
    absl::StrAppend(&text, message);
    errors_.push_back({pos, std::move(text)});
  }

  // Every error, in file order, one per line.
  absl::Status Finish() {
    if (errors_.empty()) return absl::OkStatus();
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                       return std::pair(a.pos.line, a.pos.column) <
                              std::pair(b.pos.line, b.pos.column);
                     });
    return absl::InvalidArgumentError(absl::StrJoin(
        errors_, "\n",
        [](std::string* out, const Diagnostic& d) { out->append(d.text); }));
  }

  SourceLocation Location(Pos pos) const {
    return {file_, pos.line, pos.column};
  }

  void ReadPipeline(const YAML::Node& root, PipelineConfig& config);

 private:
  struct Diagnostic {
    Pos pos;
    std::string text;
  };

  std::optional<Fields> ReadMapping(
      const YAML::Node& node, Pos pos, const std::string& path,
      std::initializer_list<absl::string_view> allowed);
  const Field* Require(const Fields& fields, absl::string_view key);

  bool ExpectList(const YAML::Node& node, Pos pos, absl::string_view path);
  std::optional<std::string> ReadString(const YAML::Node& node, Pos pos,
                                        absl::string_view path);
  std::optional<std::string> ReadNonEmptyString(const YAML::Node& node, Pos pos,
                                                absl::string_view path);
  std::optional<std::int64_t> ReadPositiveInt(const Field& field);
  std::optional<size_t> ReadChoice(
      const Field& field, std::initializer_list<absl::string_view> names);

  void ReadClasses(const Field& field, PipelineConfig& config);
  void ReadPluginDirs(const Field& field, PipelineConfig& config);
  void ReadModalities(const Field& field, PipelineConfig& config);
  // Sets `name_pos` to where the modality's name is written.
  void ReadModality(const YAML::Node& node, const std::string& path,
                    ModalityConfig& modality, Pos& name_pos);
  void ReadInput(const Field& field, ModalityConfig& modality);
  // `trainable`: a combiner, which may have a `fit` block.
  void ReadPluginRef(const Field& field, bool trainable, PluginRef& ref);
  void ReadCalibration(const Field& field, ModalityConfig& modality);
  std::optional<bool> ReadBool(const Field& field);
  void ReadPolicy(const Field& field, std::optional<size_t> modality_count,
                  PolicyConfig& policy);

  // A mapping converted to JSON text.
  std::optional<std::string> ReadJsonMapping(const Field& field);
  bool WriteJson(const YAML::Node& node, Pos pos, const std::string& path,
                 int depth, std::string& out);
  bool WriteJsonScalar(const YAML::Node& node, Pos pos, const std::string& path,
                       std::string& out);

  std::string file_;
  fs::path base_dir_;
  Task task_ = Task::kClassification;  // the pipeline's, once read
  std::vector<Diagnostic> errors_;
};

std::optional<Fields> Reader::ReadMapping(
    const YAML::Node& node, Pos pos, const std::string& path,
    std::initializer_list<absl::string_view> allowed) {
  if (!node.IsMap()) {
    Error(pos, path, absl::StrCat("expected a mapping, got ", Describe(node)));
    return std::nullopt;
  }
  Fields fields{pos, path, {}};
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: `it->` is a temporary proxy
    const YAML::Node value = it->second;
    const Pos key_pos = PosOf(key);
    if (!key.IsScalar()) {
      Error(key_pos, path,
            absl::StrCat("expected a string key, got ", Describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    const std::string key_path = JoinPath(path, name);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      Error(key_pos, key_path,
            absl::StrCat("unknown key '", name,
                         "'; allowed keys: ", absl::StrJoin(allowed, ", ")));
      continue;
    }
    if (const Field* first = fields.Find(name)) {
      Error(key_pos, key_path,
            absl::StrCat("duplicate key '", name, "' (first at line ",
                         first->key_pos.line, ", column ",
                         first->key_pos.column, ")"));
      continue;
    }
    fields.fields.push_back(
        {name, value, key_pos, ValuePos(key, value), key_path});
  }
  return fields;
}

const Field* Reader::Require(const Fields& fields, absl::string_view key) {
  const Field* field = fields.Find(key);
  if (field == nullptr) {
    Error(fields.pos, fields.path,
          absl::StrCat("missing required key '", key, "'"));
  }
  return field;
}

bool Reader::ExpectList(const YAML::Node& node, Pos pos,
                        absl::string_view path) {
  if (node.IsSequence()) return true;
  Error(pos, path, absl::StrCat("expected a list, got ", Describe(node)));
  return false;
}

std::optional<std::string> Reader::ReadString(const YAML::Node& node, Pos pos,
                                              absl::string_view path) {
  if (node.IsScalar()) return node.Scalar();
  Error(pos, path, absl::StrCat("expected a string, got ", Describe(node)));
  return std::nullopt;
}

std::optional<std::string> Reader::ReadNonEmptyString(const YAML::Node& node,
                                                      Pos pos,
                                                      absl::string_view path) {
  std::optional<std::string> text = ReadString(node, pos, path);
  if (text && text->empty()) {
    Error(pos, path, "must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<std::int64_t> Reader::ReadPositiveInt(const Field& field) {
  const YAML::Node& node = field.value;
  if (IsPlainScalar(node) && ClassifyPlain(node.Scalar()) == PlainKind::kInt) {
    std::optional<std::int64_t> value = ParseCoreInt(node.Scalar());
    if (!value) {
      Error(field.value_pos, field.path,
            absl::StrCat("integer out of range, got ", Describe(node)));
      return std::nullopt;
    }
    if (*value > 0) return value;
  }
  Error(field.value_pos, field.path,
        absl::StrCat("expected a positive integer, got ", Describe(node)));
  return std::nullopt;
}

std::optional<size_t> Reader::ReadChoice(
    const Field& field, std::initializer_list<absl::string_view> names) {
  if (field.value.IsScalar()) {
    const std::string& text = field.value.Scalar();
    for (size_t i = 0; i < names.size(); ++i) {
      if (text == names.begin()[i]) return i;
    }
  }
  Error(field.value_pos, field.path,
        absl::StrCat("expected one of ", absl::StrJoin(names, ", "), "; got ",
                     Describe(field.value)));
  return std::nullopt;
}

void Reader::ReadPipeline(const YAML::Node& root, PipelineConfig& config) {
  std::optional<Fields> top =
      ReadMapping(root, PosOf(root), "",
                  {"apiVersion", "name", "task", "classes", "plugin_dirs",
                   "modalities", "combiner", "policy"});
  if (!top) return;

  if (const Field* f = Require(*top, "apiVersion")) {
    std::optional<std::string> api =
        ReadString(f->value, f->value_pos, f->path);
    if (api && *api != kApiVersion) {
      Error(f->value_pos, f->path,
            absl::StrCat("unsupported apiVersion ", Quote(*api), "; expected ",
                         Quote(kApiVersion)));
    }
  }
  if (const Field* f = Require(*top, "name")) {
    if (auto name = ReadNonEmptyString(f->value, f->value_pos, f->path)) {
      config.name = *name;
    }
  }
  if (const Field* f = top->Find("task")) {
    if (auto choice = ReadChoice(*f, {"classification", "regression"})) {
      config.task = *choice == 0 ? Task::kClassification : Task::kRegression;
    }
  }
  task_ = config.task;
  if (config.task == Task::kRegression) {
    if (const Field* f = top->Find("classes")) {
      Error(f->value_pos, f->path,
            "not allowed for task 'regression'; a regression pipeline "
            "predicts a number, not classes");
    }
  } else if (const Field* f = Require(*top, "classes")) {
    ReadClasses(*f, config);
  }
  if (const Field* f = Require(*top, "plugin_dirs")) ReadPluginDirs(*f, config);

  std::optional<size_t> modality_count;
  if (const Field* f = Require(*top, "modalities")) {
    ReadModalities(*f, config);
    if (f->value.IsSequence() && f->value.size() > 0) {
      modality_count = f->value.size();
    }
  }
  if (const Field* f = Require(*top, "combiner")) {
    ReadPluginRef(*f, /*trainable=*/true, config.combiner);
  }
  if (const Field* f = top->Find("policy")) {
    ReadPolicy(*f, modality_count, config.policy);
  }
}

void Reader::ReadClasses(const Field& field, PipelineConfig& config) {
  if (!ExpectList(field.value, field.value_pos, field.path)) return;
  std::map<std::string, std::string, std::less<>> first_path;
  size_t index = 0;
  for (const YAML::Node& item : field.value) {
    const std::string path = IndexPath(field.path, index++);
    const Pos pos = PosOf(item);
    std::optional<std::string> label = ReadNonEmptyString(item, pos, path);
    if (!label) continue;
    auto [it, inserted] = first_path.emplace(*label, path);
    if (!inserted) {
      Error(pos, path,
            absl::StrCat("duplicate class ", Quote(*label), " (also ",
                         it->second, ")"));
      continue;
    }
    config.classes.push_back(*label);
  }
  if (field.value.size() < 2) {
    Error(
        field.value_pos, field.path,
        absl::StrCat("expected at least 2 classes, got ", field.value.size()));
  }
}

void Reader::ReadPluginDirs(const Field& field, PipelineConfig& config) {
  if (!ExpectList(field.value, field.value_pos, field.path)) return;
  if (field.value.size() == 0) {
    Error(field.value_pos, field.path,
          "expected at least one plugin directory");
    return;
  }
  size_t index = 0;
  for (const YAML::Node& item : field.value) {
    const std::string path = IndexPath(field.path, index++);
    std::optional<std::string> text =
        ReadNonEmptyString(item, PosOf(item), path);
    if (!text) continue;
    fs::path dir = fs::path(*text);
    if (dir.is_relative()) dir = base_dir_ / dir;
    dir = dir.lexically_normal();
    // "/a/b/" and "/a/b" are one directory; keep the form without the slash.
    if (!dir.has_filename() && dir.has_relative_path()) dir = dir.parent_path();
    config.plugin_dirs.push_back(std::move(dir));
  }
}

void Reader::ReadModalities(const Field& field, PipelineConfig& config) {
  if (!ExpectList(field.value, field.value_pos, field.path)) return;
  if (field.value.size() == 0) {
    Error(field.value_pos, field.path, "expected at least one modality");
    return;
  }
  struct Seen {
    std::string path;
    Pos pos;
  };
  std::map<std::string, Seen, std::less<>> seen;
  size_t index = 0;
  for (const YAML::Node& item : field.value) {
    const std::string path = IndexPath(field.path, index++);
    ModalityConfig modality;
    modality.location = Location(PosOf(item));
    Pos pos;
    ReadModality(item, path, modality, pos);
    if (!modality.name.empty()) {
      auto [it, inserted] = seen.emplace(modality.name, Seen{path, pos});
      if (!inserted) {
        Error(pos, JoinPath(path, "name"),
              absl::StrCat("duplicate modality name ", Quote(modality.name),
                           " (first at ", it->second.path, ", line ",
                           it->second.pos.line, ")"));
      }
    }
    config.modalities.push_back(std::move(modality));
  }
}

void Reader::ReadModality(const YAML::Node& node, const std::string& path,
                          ModalityConfig& modality, Pos& name_pos) {
  std::optional<Fields> fields =
      ReadMapping(node, PosOf(node), path,
                  {"name", "input", "model", "shadow", "on_error", "timeout_ms",
                   "isolation", "calibration"});
  if (!fields) return;
  if (const Field* f = Require(*fields, "name")) {
    name_pos = f->value_pos;
    if (auto name = ReadNonEmptyString(f->value, f->value_pos, f->path)) {
      const bool valid = std::all_of(name->begin(), name->end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               c == '.' || c == '-';
      });
      if (valid) {
        modality.name = *name;
      } else {
        Error(f->value_pos, f->path,
              absl::StrCat("invalid modality name ", Quote(*name),
                           "; use only letters, digits, '_', '.' and '-'"));
      }
    }
  }
  if (const Field* f = Require(*fields, "input")) ReadInput(*f, modality);
  if (const Field* f = Require(*fields, "model")) {
    ReadPluginRef(*f, /*trainable=*/false, modality.model);
  }
  if (const Field* f = fields->Find("shadow")) {
    ReadPluginRef(*f, /*trainable=*/false, modality.shadow.emplace());
  }
  if (const Field* f = fields->Find("on_error")) {
    if (auto choice = ReadChoice(*f, {"missing", "fail"})) {
      modality.on_error = *choice == 0 ? OnError::kMissing : OnError::kFail;
    }
  }
  if (const Field* f = fields->Find("timeout_ms")) {
    if (auto ms = ReadPositiveInt(*f)) {
      modality.timeout = std::chrono::milliseconds(*ms);
    }
  }
  if (const Field* f = fields->Find("isolation")) {
    if (auto choice = ReadChoice(*f, {"in_process", "process"})) {
      modality.isolation =
          *choice == 0 ? Isolation::kInProcess : Isolation::kProcess;
    }
  }
  if (const Field* f = fields->Find("calibration")) {
    if (task_ == Task::kRegression) {
      Error(f->value_pos, f->path,
            "not allowed for task 'regression'; calibration maps class "
            "probabilities");
    } else {
      ReadCalibration(*f, modality);
    }
  }
}

void Reader::ReadCalibration(const Field& field, ModalityConfig& modality) {
  std::optional<Fields> fields = ReadMapping(
      field.value, field.value_pos, field.path, {"method", "file", "fit"});
  if (!fields) return;
  CalibrationConfig calibration;
  calibration.location = Location(field.value_pos);
  if (const Field* f = Require(*fields, "method")) {
    static constexpr const char* kMethods[] = {"temperature", "platt",
                                               "isotonic"};
    if (auto choice = ReadChoice(*f, {"temperature", "platt", "isotonic"})) {
      calibration.method = kMethods[*choice];
    }
  }
  if (const Field* f = fields->Find("file")) {
    if (auto text = ReadNonEmptyString(f->value, f->value_pos, f->path)) {
      fs::path file(*text);
      if (file.is_relative()) file = base_dir_ / file;
      calibration.file = file.lexically_normal();
    }
  }
  std::optional<bool> fit = false;
  if (const Field* f = fields->Find("fit")) fit = ReadBool(*f);
  calibration.fit = fit.value_or(false);
  // An unreadable `fit` was reported already; don't add a second error for it.
  if (fields->Find("file") == nullptr && fit == false) {
    Error(fields->pos, fields->path,
          "missing required key 'file' (or 'fit: true' for `latefuse fit` to "
          "make it)");
  }
  modality.calibration = std::move(calibration);
}

std::optional<bool> Reader::ReadBool(const Field& field) {
  const YAML::Node& node = field.value;
  if (IsPlainScalar(node) && ClassifyPlain(node.Scalar()) == PlainKind::kBool) {
    return absl::AsciiStrToLower(node.Scalar()) == "true";
  }
  Error(field.value_pos, field.path,
        absl::StrCat("expected true or false, got ", Describe(node)));
  return std::nullopt;
}

void Reader::ReadInput(const Field& field, ModalityConfig& modality) {
  std::optional<Fields> fields =
      ReadMapping(field.value, field.value_pos, field.path, {"kind", "size"});
  if (!fields) return;
  std::optional<InputKind> kind;
  if (const Field* f = Require(*fields, "kind")) {
    if (auto choice = ReadChoice(*f, {"dense", "text", "bytes"})) {
      static constexpr InputKind kKinds[] = {
          InputKind::kDense, InputKind::kText, InputKind::kBytes};
      kind = kKinds[*choice];
      modality.input_kind = *kind;
    }
  }
  const Field* size = fields->Find("size");
  if (kind == InputKind::kDense && size == nullptr) {
    Error(fields->pos, fields->path,
          "missing required key 'size' (required for kind 'dense')");
  } else if (kind.has_value() && *kind != InputKind::kDense &&
             size != nullptr) {
    Error(size->value_pos, size->path,
          absl::StrCat("not allowed for kind '",
                       std::string(InputKindName(*kind)),
                       "'; only dense inputs have a size"));
  } else if (size != nullptr) {
    if (auto value = ReadPositiveInt(*size)) {
      modality.input_size = static_cast<std::size_t>(*value);
    }
  }
}

void Reader::ReadPluginRef(const Field& field, bool trainable, PluginRef& ref) {
  ref.location = Location(field.value_pos);
  std::optional<Fields> fields =
      trainable ? ReadMapping(field.value, field.value_pos, field.path,
                              {"plugin", "version", "sha256", "params", "fit"})
                : ReadMapping(field.value, field.value_pos, field.path,
                              {"plugin", "version", "sha256", "params"});
  if (!fields) return;
  if (const Field* f = Require(*fields, "plugin")) {
    if (auto plugin = ReadNonEmptyString(f->value, f->value_pos, f->path)) {
      ref.plugin = *plugin;
    }
  }
  if (const Field* f = fields->Find("version")) {
    if (auto text = ReadString(f->value, f->value_pos, f->path)) {
      absl::StatusOr<VersionConstraint> constraint =
          VersionConstraint::Parse(*text);
      if (constraint.ok()) {
        ref.version = *text;
        ref.constraint = *std::move(constraint);
      } else {
        Error(f->value_pos, f->path, constraint.status().message());
      }
    }
  }
  if (const Field* f = fields->Find("sha256")) {
    if (auto text = ReadString(f->value, f->value_pos, f->path)) {
      const bool valid =
          text->size() == 64 &&
          std::all_of(text->begin(), text->end(), [](char c) {
            return absl::ascii_isxdigit(static_cast<unsigned char>(c));
          });
      if (valid) {
        ref.sha256 = absl::AsciiStrToLower(*text);
      } else {
        Error(f->value_pos, f->path,
              absl::StrCat("expected 64 hexadecimal characters, got ",
                           Describe(f->value), " (", text->size(),
                           " characters)"));
      }
    }
  }
  if (const Field* f = fields->Find("params")) {
    if (auto json = ReadJsonMapping(*f)) ref.params_json = *std::move(json);
  }
  if (const Field* f = fields->Find("fit")) {
    ref.fit_json = ReadJsonMapping(*f);
  }
}

std::optional<std::string> Reader::ReadJsonMapping(const Field& field) {
  if (!field.value.IsMap()) {
    Error(field.value_pos, field.path,
          absl::StrCat("expected a mapping, got ", Describe(field.value)));
    return std::nullopt;
  }
  std::string json;
  if (!WriteJson(field.value, field.value_pos, field.path, 0, json)) {
    return std::nullopt;
  }
  return json;
}

void Reader::ReadPolicy(const Field& field,
                        std::optional<size_t> modality_count,
                        PolicyConfig& policy) {
  std::optional<Fields> fields =
      ReadMapping(field.value, field.value_pos, field.path,
                  {"min_modalities", "on_insufficient"});
  if (!fields) return;
  if (const Field* f = fields->Find("min_modalities")) {
    if (!modality_count.has_value()) {
      if (auto value = ReadPositiveInt(*f)) {
        policy.min_modalities = static_cast<int>(
            std::min<std::int64_t>(*value, std::numeric_limits<int>::max()));
      }
    } else {
      std::optional<std::int64_t> value;
      if (IsPlainScalar(f->value) &&
          ClassifyPlain(f->value.Scalar()) == PlainKind::kInt) {
        value = ParseCoreInt(f->value.Scalar());
      }
      if (value && *value >= 1 &&
          *value <= static_cast<std::int64_t>(*modality_count)) {
        policy.min_modalities = static_cast<int>(*value);
      } else {
        Error(f->value_pos, f->path,
              absl::StrCat("expected an integer from 1 to ", *modality_count,
                           " (the number of modalities), got ",
                           Describe(f->value)));
      }
    }
  }
  if (const Field* f = fields->Find("on_insufficient")) {
    if (auto choice = ReadChoice(*f, {"abstain", "error"})) {
      policy.on_insufficient =
          *choice == 0 ? OnInsufficient::kAbstain : OnInsufficient::kError;
    }
  }
}

bool Reader::WriteJson(const YAML::Node& node, Pos pos, const std::string& path,
                       int depth, std::string& out) {
  if (depth > kMaxParamsDepth) {
    Error(pos, path,
          absl::StrCat("nested more than ", kMaxParamsDepth,
                       " levels deep (a recursive alias?)"));
    return false;
  }
  if (out.size() > kMaxParamsJsonBytes) {
    Error(pos, path,
          absl::StrCat("params are larger than ", kMaxParamsJsonBytes >> 20,
                       " MiB as JSON (an alias bomb?)"));
    return false;
  }
  if (node.IsMap()) {
    bool ok = true;
    std::vector<std::pair<std::string, Pos>> keys;
    out.push_back('{');
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: `it->` is a temporary proxy
      const YAML::Node value = it->second;
      const Pos key_pos = PosOf(key);
      if (!key.IsScalar()) {
        Error(key_pos, path,
              absl::StrCat("expected a string key, got ", Describe(key)));
        ok = false;
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string child_path = JoinPath(path, name);
      auto first = std::find_if(keys.begin(), keys.end(),
                                [&](const auto& k) { return k.first == name; });
      if (first != keys.end()) {
        Error(key_pos, child_path,
              absl::StrCat("duplicate key '", name, "' (first at line ",
                           first->second.line, ", column ",
                           first->second.column, ")"));
        ok = false;
        continue;
      }
      if (!IsValidUtf8(name)) {
        Error(key_pos, child_path, "key is not valid UTF-8");
        ok = false;
        continue;
      }
      keys.emplace_back(name, key_pos);
      if (keys.size() > 1) out.push_back(',');
      AppendJsonString(name, out);
      out.push_back(':');
      if (!WriteJson(value, ValuePos(key, value), child_path, depth + 1, out)) {
        ok = false;
        if (depth + 1 > kMaxParamsDepth || out.size() > kMaxParamsJsonBytes) {
          return false;  // already reported once; do not repeat per level
        }
      }
    }
    out.push_back('}');
    return ok;
  }
  if (node.IsSequence()) {
    bool ok = true;
    out.push_back('[');
    size_t index = 0;
    for (const YAML::Node& item : node) {
      if (index > 0) out.push_back(',');
      if (!WriteJson(item, PosOf(item), IndexPath(path, index), depth + 1,
                     out)) {
        ok = false;
        if (depth + 1 > kMaxParamsDepth || out.size() > kMaxParamsJsonBytes) {
          return false;
        }
      }
      ++index;
    }
    out.push_back(']');
    return ok;
  }
  if (node.IsScalar()) return WriteJsonScalar(node, pos, path, out);
  out += "null";  // a null, or an empty value
  return true;
}

bool Reader::WriteJsonScalar(const YAML::Node& node, Pos pos,
                             const std::string& path, std::string& out) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == kYamlStrTag) {
    if (!IsValidUtf8(text)) {
      Error(pos, path, "string is not valid UTF-8");
      return false;
    }
    AppendJsonString(text, out);
    return true;
  }
  const PlainKind kind = ClassifyPlain(text);
  if (tag != "?") {
    // An explicit core-schema tag only confirms what the text already is.
    const std::pair<absl::string_view, PlainKind> kTagged[] = {
        {kYamlNullTag, PlainKind::kNull},
        {kYamlBoolTag, PlainKind::kBool},
        {kYamlIntTag, PlainKind::kInt},
        {kYamlFloatTag, PlainKind::kFloat}};
    auto it = std::find_if(std::begin(kTagged), std::end(kTagged),
                           [&](const auto& t) { return t.first == tag; });
    if (it == std::end(kTagged)) {
      Error(pos, path,
            absl::StrCat("unsupported tag '", tag,
                         "'; params hold plain YAML values only"));
      return false;
    }
    if (it->second != kind) {
      Error(pos, path,
            absl::StrCat(Quote(text), " is not a valid value for tag '", tag,
                         "'"));
      return false;
    }
  }
  switch (kind) {
    case PlainKind::kNull:
      out += "null";
      return true;
    case PlainKind::kBool:
      out += absl::AsciiStrToLower(text);
      return true;
    case PlainKind::kInt:
      if (std::optional<std::int64_t> value = ParseCoreInt(text)) {
        absl::StrAppend(&out, *value);
        return true;
      }
      Error(pos, path,
            absl::StrCat("integer out of the 64-bit range, got ", Quote(text)));
      return false;
    case PlainKind::kFloat:
      if (IsCoreInfinity(text) || IsCoreNan(text)) {
        Error(pos, path,
              absl::StrCat("JSON cannot represent ", Quote(text),
                           "; use a finite number"));
        return false;
      }
      if (std::optional<double> value = ParseCoreFloat(text)) {
        out += FormatDouble(*value);
        return true;
      }
      Error(pos, path,
            absl::StrCat("number out of the double range, got ", Quote(text)));
      return false;
    case PlainKind::kString:
      if (!IsValidUtf8(text)) {
        Error(pos, path, "string is not valid UTF-8");
        return false;
      }
      AppendJsonString(text, out);
      return true;
  }
  return false;
}

fs::path AbsolutePath(const fs::path& file) {
  std::error_code ec;
  fs::path absolute = fs::absolute(file, ec);
  if (ec) absolute = file;
  return absolute.lexically_normal();
}

}  // namespace

std::string_view InputKindName(InputKind kind) {
  switch (kind) {
    case InputKind::kDense:
      return "dense";
    case InputKind::kText:
      return "text";
    case InputKind::kBytes:
      return "bytes";
  }
  return "unknown";
}

std::string_view OnErrorName(OnError on_error) {
  switch (on_error) {
    case OnError::kMissing:
      return "missing";
    case OnError::kFail:
      return "fail";
  }
  return "unknown";
}

std::string_view IsolationName(Isolation isolation) {
  switch (isolation) {
    case Isolation::kInProcess:
      return "in_process";
    case Isolation::kProcess:
      return "process";
  }
  return "unknown";
}

std::string_view OnInsufficientName(OnInsufficient on_insufficient) {
  switch (on_insufficient) {
    case OnInsufficient::kAbstain:
      return "abstain";
    case OnInsufficient::kError:
      return "error";
  }
  return "unknown";
}

std::string_view TaskName(Task task) {
  switch (task) {
    case Task::kClassification:
      return "classification";
    case Task::kRegression:
      return "regression";
  }
  return "unknown";
}

std::string ModelRoleKey(std::string_view modality) {
  return absl::StrCat("modalities.", std::string(modality), ".model");
}

std::string ShadowRoleKey(std::string_view modality) {
  return absl::StrCat("modalities.", std::string(modality), ".shadow");
}

std::size_t ValuesPerRow(const PipelineConfig& config) {
  return config.task == Task::kRegression ? 2 : config.classes.size();
}

std::string SourceLocation::ToString() const {
  return absl::StrCat(file, ":", line, ":", column);
}

absl::StatusOr<PipelineConfig> ParsePipeline(std::string_view yaml_text,
                                             const fs::path& file) {
  const std::string label = file.string();
  PipelineConfig config;
  config.file = AbsolutePath(file);
  config.base_dir = config.file.parent_path();

  Documents documents;
  try {
    documents = ReadDocuments(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ":", std::max(e.mark.line, 0) + 1, ":",
                     std::max(e.mark.column, 0) + 1, ": ", e.msg));
  }

  Reader reader(label, config.base_dir);
  if (!documents.first) {
    reader.Error({1, 1}, "",
                 "the file is empty; expected a mapping starting with "
                 "'apiVersion: latefuse/v1'");
    return reader.Finish();
  }
  try {
    reader.ReadPipeline(*documents.first, config);
  } catch (const YAML::Exception& e) {
    // Not expected: the reader only inspects nodes. Kept so that a yaml-cpp
    // surprise becomes a status rather than an escaping exception.
    return absl::InternalError(absl::StrCat(
        label,
        ": unexpected YAML error while reading the pipeline: ", e.what()));
  }
  if (documents.second) {
    reader.Error(*documents.second, "",
                 "expected a single YAML document; remove everything from "
                 "the second '---' on");
  }
  if (absl::Status status = reader.Finish(); !status.ok()) return status;
  return config;
}

absl::StatusOr<PipelineConfig> LoadPipelineFile(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read pipeline file '", path.string(), "': it is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return absl::NotFoundError(absl::StrCat("cannot read pipeline file '",
                                            path.string(),
                                            "': ", std::strerror(error)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read pipeline file '",
                                            path.string(), "': read failed"));
  }
  return ParsePipeline(text.str(), path);
}

}  // namespace latefuse
