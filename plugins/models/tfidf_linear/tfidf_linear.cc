// The `tfidf_linear` model plugin: scikit-learn's Pipeline(TfidfVectorizer,
// LogisticRegression) on text, from a `latefuse.tfidf/v1` JSON file (see
// README.md beside this file; tools/export_sklearn.py writes it).
//
// A pipeline uses it as:
//
//   modalities:
//     - name: notes
//       input: {kind: text}
//       model:
//         plugin: tfidf_linear
//         version: "^1.0"
//         params: {model: models/notes.json}   # relative to the pipeline file
//
// Each text goes through TfidfVectorizer(analyzer="word") exactly: Python's
// str.lower() when `lowercase`, tokens as re.findall(r"(?u)\b\w\w+\b") finds
// them, word n-grams joined by one space, counts of the terms in the
// vocabulary, 1 + log(tf) when `sublinear_tf`, times idf when `use_idf`, then
// the row's l2 or l1 norm; then the logistic regression (binary: sigmoid, one
// coefficient row; multiclass: softmax), all in float64. Unicode facts (what
// \w matches, lowercase mappings) come from tables generated from Python
// itself (unicode.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "internal/logistic.h"
#include "unicode.h"

namespace latefuse::tfidf_linear {
namespace {

using sdk::InvalidArgument;
using sdk::Result;
using sdk::Status;
using tfidf_internal::AppendUtf8;
using tfidf_internal::DecodeUtf8;
using tfidf_internal::IsPythonWord;
using tfidf_internal::LowerPython;

constexpr char kFormat[] = "latefuse.tfidf/v1";
// scikit-learn's default token_pattern; without "(?u)" it means the same in
// Python 3, where str patterns are Unicode-aware anyway.
constexpr char kTokenPattern[] = "(?u)\\b\\w\\w+\\b";
constexpr char kTokenPatternBare[] = "\\b\\w\\w+\\b";

enum class Norm { kNone, kL1, kL2 };

using models_internal::ReadVector;

Result<bool> ReadBool(const nlohmann::json& json, const char* key) {
  if (!json.contains(key)) {
    return InvalidArgument(std::string(key) + ": missing required key");
  }
  if (!json[key].is_boolean()) {
    return InvalidArgument(std::string(key) + ": expected true or false, got " +
                           json[key].dump());
  }
  return json[key].get<bool>();
}

// Per-text scratch space, reused from row to row and batch to batch.
struct Scratch {
  std::vector<char32_t> decoded;
  std::vector<char32_t> lowered;
  std::string tokens;  // the UTF-8 of every token, back to back
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end)
  std::string key;                                         // a term to look up
  std::vector<std::uint32_t> columns;                 // one per term occurrence
  std::vector<std::pair<std::uint32_t, double>> row;  // sorted (column, value)
};

class TfidfLinearModel {
 public:
  static Result<std::unique_ptr<TfidfLinearModel>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::filesystem::path path,
                                  context.params.GetPath("model"));
    for (const auto& [key, value] : context.params.json().items()) {
      if (key != "model") {
        return InvalidArgument("params." + key +
                               ": unknown parameter (expected model)");
      }
    }
    if (context.task == LF_TASK_REGRESSION) {
      return InvalidArgument(
          "tfidf_linear is a classifier, but the pipeline's task is "
          "'regression'");
    }
    std::ifstream in(path);
    if (!in)
      return sdk::NotFound("cannot open model file '" + path.string() + "'");
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
    if (json.is_discarded()) {
      return InvalidArgument("model file '" + path.string() +
                             "': not valid JSON");
    }
    auto model = std::unique_ptr<TfidfLinearModel>(new TfidfLinearModel());
    if (Status status = model->Read(json); !status.ok()) {
      return InvalidArgument("model file '" + path.string() +
                             "': " + status.message());
    }
    return model;
  }

  sdk::ModelContract Describe() const {
    return {LF_INPUT_TEXT, 0, classes_, false};
  }

  Status Infer(const sdk::Batch& batch, sdk::ProbabilitiesOut& out) {
    if (batch.kind() != LF_INPUT_TEXT) {
      return InvalidArgument("expected text rows");
    }
    std::vector<double> z(outputs_);
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      Vectorize(batch.Item(r));
      for (std::size_t c = 0; c < outputs_; ++c) z[c] = intercept_[c];
      for (const auto& [column, value] : scratch_.row) {
        const double* w = &coef_by_column_[column * outputs_];
        for (std::size_t c = 0; c < outputs_; ++c) z[c] += value * w[c];
      }
      models_internal::LogisticProbabilities(z.data(), outputs_, out.Row(r));
    }
    return Status();
  }

 private:
  TfidfLinearModel() = default;

  // Fills scratch_.row with the text's tf-idf vector, by column.
  void Vectorize(std::string_view text) {
    Scratch& s = scratch_;
    DecodeUtf8(text, s.decoded);
    if (lowercase_) LowerPython(s.decoded, s.lowered);
    const std::vector<char32_t>& cps = lowercase_ ? s.lowered : s.decoded;

    // \b\w\w+\b finds exactly the maximal runs of word characters of length
    // two or more.
    s.tokens.clear();
    s.spans.clear();
    std::size_t i = 0;
    while (i < cps.size()) {
      if (!IsPythonWord(cps[i])) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < cps.size() && IsPythonWord(cps[j])) ++j;
      if (j - i >= 2) {
        const std::size_t begin = s.tokens.size();
        for (std::size_t k = i; k < j; ++k) AppendUtf8(cps[k], s.tokens);
        s.spans.emplace_back(begin, s.tokens.size());
      }
      i = j;
    }

    s.columns.clear();
    const std::size_t count = s.spans.size();
    for (std::size_t n = min_n_; n <= max_n_ && n <= count; ++n) {
      for (std::size_t t = 0; t + n <= count; ++t) {
        s.key.assign(s.tokens, s.spans[t].first,
                     s.spans[t].second - s.spans[t].first);
        for (std::size_t k = t + 1; k < t + n; ++k) {
          s.key.push_back(' ');
          s.key.append(s.tokens, s.spans[k].first,
                       s.spans[k].second - s.spans[k].first);
        }
        const auto it = vocabulary_.find(s.key);
        if (it != vocabulary_.end()) s.columns.push_back(it->second);
      }
    }

    // scikit-learn's CSR rows are sorted by column; normalise in that order.
    std::sort(s.columns.begin(), s.columns.end());
    s.row.clear();
    for (std::size_t a = 0; a < s.columns.size();) {
      std::size_t b = a;
      while (b < s.columns.size() && s.columns[b] == s.columns[a]) ++b;
      double value = static_cast<double>(b - a);
      if (sublinear_tf_) value = std::log(value) + 1.0;
      if (use_idf_) value *= idf_[s.columns[a]];
      s.row.emplace_back(s.columns[a], value);
      a = b;
    }
    if (norm_ != Norm::kNone) {
      double total = 0.0;
      for (const auto& entry : s.row) {
        total += norm_ == Norm::kL2 ? entry.second * entry.second
                                    : std::fabs(entry.second);
      }
      if (norm_ == Norm::kL2) total = std::sqrt(total);
      if (total != 0.0) {
        for (auto& entry : s.row) entry.second /= total;
      }
    }
  }

  Status Read(const nlohmann::json& json) {
    if (!json.is_object()) return InvalidArgument("expected a JSON object");
    if (!json.contains("format") || json["format"] != kFormat) {
      return InvalidArgument(
          std::string("format: expected \"") + kFormat + "\", got " +
          (json.contains("format") ? json["format"].dump() : "nothing"));
    }
    static const char* const kKeys[] = {
        "format",       "classes",    "lowercase", "token_pattern",
        "ngram_range",  "vocabulary", "idf",       "use_idf",
        "sublinear_tf", "norm",       "coef",      "intercept"};
    for (const auto& [key, value] : json.items()) {
      if (std::find(std::begin(kKeys), std::end(kKeys), key) ==
          std::end(kKeys)) {
        return InvalidArgument(
            "unknown key '" + key +
            "' (expected format, classes, lowercase, token_pattern, "
            "ngram_range, vocabulary, idf, use_idf, sublinear_tf, norm, coef, "
            "intercept)");
      }
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        classes_, sdk::Params::Convert<std::vector<std::string>>(
                      json.value("classes", nlohmann::json()), "classes"));
    if (classes_.size() < 2)
      return InvalidArgument("classes: need at least 2 classes");
    LATEFUSE_SDK_ASSIGN_OR_RETURN(lowercase_, ReadBool(json, "lowercase"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(use_idf_, ReadBool(json, "use_idf"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(sublinear_tf_,
                                  ReadBool(json, "sublinear_tf"));

    const nlohmann::json pattern =
        json.value("token_pattern", nlohmann::json());
    if (pattern != kTokenPattern && pattern != kTokenPatternBare) {
      return InvalidArgument(
          std::string("token_pattern: only scikit-learn's default \"") +
          kTokenPattern + "\" is supported, got " + pattern.dump());
    }

    const nlohmann::json ngram = json.value("ngram_range", nlohmann::json());
    if (!ngram.is_array() || ngram.size() != 2 ||
        !ngram[0].is_number_unsigned() || !ngram[1].is_number_unsigned() ||
        ngram[0].get<std::size_t>() < 1 ||
        ngram[0].get<std::size_t>() > ngram[1].get<std::size_t>() ||
        ngram[1].get<std::size_t>() > 64) {
      return InvalidArgument(
          "ngram_range: expected [min_n, max_n] with 1 <= min_n <= max_n <= "
          "64, got " +
          ngram.dump());
    }
    min_n_ = ngram[0].get<std::size_t>();
    max_n_ = ngram[1].get<std::size_t>();

    const nlohmann::json norm = json.value("norm", nlohmann::json("missing"));
    if (norm == "l2") {
      norm_ = Norm::kL2;
    } else if (norm == "l1") {
      norm_ = Norm::kL1;
    } else if (norm.is_null()) {
      norm_ = Norm::kNone;
    } else {
      return InvalidArgument(
          "norm: expected \"l2\", \"l1\" or null, got " +
          (json.contains("norm") ? norm.dump() : std::string("nothing")));
    }

    const nlohmann::json& vocabulary =
        json.value("vocabulary", nlohmann::json());
    if (!vocabulary.is_object() || vocabulary.empty()) {
      return InvalidArgument(
          "vocabulary: expected a non-empty object {term: column}");
    }
    const std::size_t width = vocabulary.size();
    std::vector<bool> seen(width, false);
    vocabulary_.reserve(width);
    for (const auto& [term, column] : vocabulary.items()) {
      if (!column.is_number_unsigned() ||
          column.get<std::uint64_t>() >= width ||
          seen[column.get<std::size_t>()]) {
        return InvalidArgument("vocabulary[" + nlohmann::json(term).dump() +
                               "]: expected a distinct column index in [0, " +
                               std::to_string(width) + "), got " +
                               column.dump());
      }
      seen[column.get<std::size_t>()] = true;
      vocabulary_.emplace(term, column.get<std::uint32_t>());
    }

    if (use_idf_) {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          idf_, ReadVector(json.value("idf", nlohmann::json()), "idf"));
      if (idf_.size() != width) {
        return InvalidArgument("idf: expected " + std::to_string(width) +
                               " values, one per vocabulary column, got " +
                               std::to_string(idf_.size()));
      }
    } else if (json.contains("idf") && !json["idf"].is_null()) {
      return InvalidArgument("idf: expected null when use_idf is false");
    }

    const std::size_t rows = classes_.size() == 2 ? 1 : classes_.size();
    const nlohmann::json& coef = json.value("coef", nlohmann::json());
    if (!coef.is_array() || coef.size() != rows) {
      return InvalidArgument("coef: expected " + std::to_string(rows) +
                             " row(s) for " + std::to_string(classes_.size()) +
                             " classes");
    }
    outputs_ = rows;
    coef_by_column_.assign(width * rows, 0.0);
    for (std::size_t c = 0; c < rows; ++c) {
      const std::string where = "coef[" + std::to_string(c) + "]";
      LATEFUSE_SDK_ASSIGN_OR_RETURN(std::vector<double> row,
                                    ReadVector(coef[c], where));
      if (row.size() != width) {
        return InvalidArgument(where + ": expected " + std::to_string(width) +
                               " values, one per vocabulary column, got " +
                               std::to_string(row.size()));
      }
      for (std::size_t j = 0; j < width; ++j)
        coef_by_column_[j * rows + c] = row[j];
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        intercept_,
        ReadVector(json.value("intercept", nlohmann::json()), "intercept"));
    if (intercept_.size() != rows) {
      return InvalidArgument("intercept: expected " + std::to_string(rows) +
                             " value(s)");
    }
    return Status();
  }

  std::vector<std::string> classes_;
  bool lowercase_ = true;
  bool use_idf_ = true;
  bool sublinear_tf_ = false;
  std::size_t min_n_ = 1;
  std::size_t max_n_ = 1;
  Norm norm_ = Norm::kL2;
  std::unordered_map<std::string, std::uint32_t> vocabulary_;
  std::vector<double> idf_;
  std::size_t outputs_ = 1;
  // [column][output]: the coefficients a term's column touches, together.
  std::vector<double> coef_by_column_;
  std::vector<double> intercept_;
  Scratch scratch_;
};

}  // namespace
}  // namespace latefuse::tfidf_linear

LATEFUSE_MODEL_PLUGIN(latefuse::tfidf_linear::TfidfLinearModel, "tfidf_linear",
                      "1.0.0",
                      "TF-IDF text features and logistic regression, as "
                      "scikit-learn's TfidfVectorizer + LogisticRegression "
                      "(latefuse.tfidf/v1)",
                      "Apache-2.0")
