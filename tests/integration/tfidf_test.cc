// The `tfidf_linear` model plugin through the real host and the real plugin
// library, against scikit-learn's Pipeline(TfidfVectorizer,
// LogisticRegression).predict_proba in tests/fixtures/tfidf (made by
// tests/fixtures/make_tfidf_fixtures.py with tools/export_sklearn.py; see
// tests/fixtures/tfidf/README.md), and the linear export of
// tools/export_sklearn.py through the `linear` plugin.
//
// Tolerance: 1e-9 absolute (see reference_test.cc for why absolute). Worst
// differences observed (each test prints its own): 1.1e-16 to 3.3e-16 on
// every tfidf fixture (unigram_multiclass 3.3e-16); exported_linear 2.2e-16.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-9;
// The first cases of every fixture are make_tfidf_fixtures.py's EDGE_TEXTS:
// [0, 4) have no token of two word characters (empty, blank, punctuation,
// single letters); [4, 16) are the accented, non-Latin, emoji, digit and
// apostrophe texts.
constexpr std::size_t kTokenlessCases = 4;
constexpr std::size_t kUnicodeCasesEnd = 16;

fs::path TfidfDir(const std::string& name) {
  return testing::SourceDir() / "tests" / "fixtures" / "tfidf" / name;
}

std::string Quoted(const std::string& s) { return json(s).dump(); }

// A one-modality text pipeline over the in-tree plugins.
std::string TextPipeline(const std::vector<std::string>& classes,
                         const fs::path& model) {
  std::string yaml = "apiVersion: latefuse/v1\nname: tfidf\n";
  yaml += "task: classification\nclasses: " + json(classes).dump() + "\n";
  yaml += "plugin_dirs: [" + Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n  - name: notes\n    input: {kind: text}\n";
  yaml += "    model: {plugin: tfidf_linear, params: {model: " +
          Quoted(model.string()) + "}}\n";
  yaml += "combiner: {plugin: mean}\n";
  yaml += "policy: {min_modalities: 1, on_insufficient: abstain}\n";
  return yaml;
}

struct Cases {
  std::vector<std::string> classes;
  std::vector<std::string> texts;
  std::vector<std::vector<double>> expected;
};

Cases ReadCases(const fs::path& folder) {
  const json cases = testing::ReadJson(folder / "cases.json");
  return {cases["classes"].get<std::vector<std::string>>(),
          cases["texts"].get<std::vector<std::string>>(),
          cases["expected"].get<std::vector<std::vector<double>>>()};
}

// Runs `texts` as the `notes` modality; returns the per-modality
// probabilities of each row in class order (empty when a row is not ok).
std::vector<std::vector<double>> RunTexts(
    Pipeline& pipeline, const std::vector<std::string>& classes,
    const std::vector<std::string>& texts, std::size_t batch_size = 256) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    lines.push_back(json{{"id", "case-" + std::to_string(i)},
                         {"modalities", {{"notes", texts[i]}}}}
                        .dump());
  }
  RunOptions options;
  options.batch_size = batch_size;
  options.output.per_modality = true;
  const std::vector<json> records = testing::RunLines(pipeline, lines, options);
  std::vector<std::vector<double>> out;
  for (const json& record : records) {
    std::vector<double> p;
    if (record["status"] == "ok") {
      for (const std::string& c : classes) {
        p.push_back(record["modalities"]["notes"][c].get<double>());
        // The fused row is the same up to `mean`'s renormalisation.
        EXPECT_NEAR(record["probabilities"][c].get<double>(), p.back(), 1e-15);
      }
    } else {
      ADD_FAILURE() << "row not ok: " << record;
    }
    out.push_back(std::move(p));
  }
  return out;
}

double WorstDifference(const std::vector<std::vector<double>>& actual,
                       const Cases& cases, std::size_t begin, std::size_t end,
                       const std::string& where) {
  double worst = 0.0;
  EXPECT_EQ(actual.size(), cases.expected.size()) << where;
  for (std::size_t i = begin; i < end && i < actual.size(); ++i) {
    if (actual[i].size() != cases.classes.size()) return INFINITY;
    for (std::size_t c = 0; c < cases.classes.size(); ++c) {
      EXPECT_NEAR(actual[i][c], cases.expected[i][c], kTolerance)
          << where << " case " << i << " " << json(cases.texts[i]).dump()
          << ", class " << cases.classes[c];
      worst = std::max(worst, std::abs(actual[i][c] - cases.expected[i][c]));
    }
  }
  return worst;
}

std::string FolderName(const ::testing::TestParamInfo<std::string>& folder) {
  return folder.param;
}

// ---- Every fixture case against predict_proba ------------------------------

class TfidfReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TfidfReferenceTest, MatchesScikitLearnPredictProbaOnEveryCase) {
  const fs::path folder = TfidfDir(GetParam());
  const Cases cases = ReadCases(folder);
  ASSERT_EQ(cases.texts.size(), 62u);
  ASSERT_EQ(cases.expected.size(), cases.texts.size());
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, TextPipeline(cases.classes, folder / "model.json"));
  ASSERT_NE(pipeline, nullptr);

  // One batch, then batches of 5: the plugin's reused buffers must not leak
  // state from row to row or batch to batch.
  double worst = 0.0;
  for (const std::size_t batch_size : {std::size_t{256}, std::size_t{5}}) {
    worst = std::max(
        worst,
        WorstDifference(
            RunTexts(*pipeline, cases.classes, cases.texts, batch_size), cases,
            0, cases.texts.size(),
            GetParam() + " (batch size " + std::to_string(batch_size) + ")"));
  }
  std::cout << "tfidf/" << GetParam()
            << ": worst absolute difference from scikit-learn " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

TEST_P(TfidfReferenceTest,
       TextsWithoutTokensGiveTheInterceptOnlyProbabilities) {
  const fs::path folder = TfidfDir(GetParam());
  const Cases cases = ReadCases(folder);
  const json model = testing::ReadJson(folder / "model.json");
  const auto intercept = model["intercept"].get<std::vector<double>>();
  std::vector<double> want;
  if (intercept.size() == 1) {
    const double p1 = 1.0 / (1.0 + std::exp(-intercept[0]));
    want = {1.0 - p1, p1};
  } else {
    double total = 0.0;
    for (double b : intercept) total += std::exp(b);
    for (double b : intercept) want.push_back(std::exp(b) / total);
  }
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, TextPipeline(cases.classes, folder / "model.json"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<std::string> texts(cases.texts.begin(),
                                       cases.texts.begin() + kTokenlessCases);
  ASSERT_EQ(texts[0], "");
  const auto actual = RunTexts(*pipeline, cases.classes, texts);
  ASSERT_EQ(actual.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(actual[i].size(), want.size());
    for (std::size_t c = 0; c < want.size(); ++c) {
      EXPECT_NEAR(actual[i][c], want[c], 1e-12) << json(texts[i]).dump();
      EXPECT_NEAR(actual[i][c], cases.expected[i][c], kTolerance);
    }
  }
}

TEST_P(TfidfReferenceTest, AccentedAndNonLatinTextsMatchScikitLearn) {
  const fs::path folder = TfidfDir(GetParam());
  const Cases cases = ReadCases(folder);
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, TextPipeline(cases.classes, folder / "model.json"));
  ASSERT_NE(pipeline, nullptr);
  const auto actual = RunTexts(*pipeline, cases.classes, cases.texts);
  const double worst = WorstDifference(actual, cases, kTokenlessCases,
                                       kUnicodeCasesEnd, GetParam());
  EXPECT_LE(worst, kTolerance);
  // The vectoriser saw these texts: most differ from the empty text's row.
  int moved = 0;
  for (std::size_t i = kTokenlessCases; i < kUnicodeCasesEnd; ++i) {
    if (std::abs(actual[i][0] - actual[0][0]) > 1e-6) ++moved;
  }
  EXPECT_GE(moved, 6) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TfidfReferenceTest,
    ::testing::Values("unigram_binary", "unigram_multiclass",
                      "bigram_sublinear_multiclass", "trigram_l1_binary",
                      "bigrams_only_nonorm", "noidf_sublinear_binary",
                      "pruned_casesensitive_multiclass"),
    FolderName);

// ---- Bad model files --------------------------------------------------------

struct BadFile {
  std::string name;
  std::string key;      // the key replaced (or removed when value is null)
  json value;           // its new value
  std::string message;  // a substring of the error
};

class TfidfBadFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(TfidfBadFileTest, IsRejectedWithAMessageNamingTheKey) {
  const BadFile& bad = GetParam();
  const fs::path folder = TfidfDir("unigram_multiclass");
  json model = testing::ReadJson(folder / "model.json");
  if (bad.value.is_discarded()) {
    model.erase(bad.key);
  } else {
    model[bad.key] = bad.value;
  }
  testing::TempDir dir;
  const fs::path path = dir.Write("bad.json", model.dump());
  const auto classes =
      model.contains("classes") && model["classes"].is_array()
          ? std::vector<std::string>{"cardiac", "renal", "respiratory"}
          : std::vector<std::string>{"a", "b"};
  const auto pipeline =
      testing::LoadPipelineText(dir, TextPipeline(classes, path));
  ASSERT_FALSE(pipeline.ok()) << bad.name;
  EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr(bad.message));
  // The host's own class check (load check 8) names the plugin, not the file.
  if (bad.key != "classes") {
    EXPECT_THAT(std::string(pipeline.status().message()),
                HasSubstr("bad.json"));
  }
}

std::string BadFileName(const ::testing::TestParamInfo<BadFile>& bad) {
  return bad.param.name;
}

json Discard() { return json(json::value_t::discarded); }

INSTANTIATE_TEST_SUITE_P(
    Files, TfidfBadFileTest,
    ::testing::Values(
        BadFile{"WrongFormat", "format", "latefuse.linear/v1", "format:"},
        BadFile{"UnknownKey", "stop_words", json::array(),
                "unknown key 'stop_words'"},
        BadFile{"OtherTokenPattern", "token_pattern", "\\w+",
                "token_pattern: only scikit-learn's default"},
        BadFile{"MissingLowercase", "lowercase", Discard(), "lowercase:"},
        BadFile{"LowercaseNotBool", "lowercase", "yes", "lowercase:"},
        BadFile{"NgramRangeReversed", "ngram_range", json::array({2, 1}),
                "ngram_range:"},
        BadFile{"NgramRangeZero", "ngram_range", json::array({0, 1}),
                "ngram_range:"},
        BadFile{"NormUnknown", "norm", "l3", "norm:"},
        BadFile{"EmptyVocabulary", "vocabulary", json::object(), "vocabulary:"},
        BadFile{"VocabularyColumnOutOfRange", "vocabulary",
                json{{"chest", 0}, {"pain", 7}}, "vocabulary[\"pain\"]"},
        BadFile{"IdfWrongLength", "idf", json::array({1.0, 2.0}), "idf:"},
        BadFile{"IdfNotNumbers", "idf", "many", "idf:"},
        BadFile{"CoefWrongRows", "coef", json::array({json::array({1.0})}),
                "coef:"},
        BadFile{"InterceptWrongLength", "intercept", json::array({0.0}),
                "intercept:"},
        BadFile{"ClassesDifferFromPipeline", "classes",
                json::array({"x", "y", "z"}), "describes classes [x, y, z]"}),
    BadFileName);

TEST(TfidfLinearTest, MissingModelFileIsRejectedNamingThePath) {
  testing::TempDir dir;
  const auto pipeline = testing::LoadPipelineText(
      dir, TextPipeline({"a", "b"}, dir.path() / "absent.json"));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(std::string(pipeline.status().message()),
              HasSubstr("absent.json"));
}

// ---- tools/export_sklearn.py's linear export through `linear` -------------

TEST(ExportedLinearTest, MatchesScikitLearnPredictProbaThroughLinearPlugin) {
  const fs::path folder = TfidfDir("exported_linear");
  const json cases = testing::ReadJson(folder / "cases.json");
  const auto classes = cases["classes"].get<std::vector<std::string>>();
  const auto inputs = cases["inputs"].get<std::vector<std::vector<double>>>();
  const auto expected =
      cases["expected"].get<std::vector<std::vector<double>>>();
  ASSERT_EQ(inputs.size(), 30u);
  std::string yaml = "apiVersion: latefuse/v1\nname: exported\n";
  yaml += "task: classification\nclasses: " + json(classes).dump() + "\n";
  yaml += "plugin_dirs: [" + Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n  - name: x\n    input: {kind: dense, size: " +
          std::to_string(inputs[0].size()) + "}\n";
  yaml += "    model: {plugin: linear, params: {model: " +
          Quoted((folder / "model.json").string()) + "}}\n";
  yaml += "combiner: {plugin: mean}\n";
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(dir, yaml);
  ASSERT_NE(pipeline, nullptr);
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    lines.push_back(
        json{{"id", std::to_string(i)}, {"modalities", {{"x", inputs[i]}}}}
            .dump());
  }
  const std::vector<json> records = testing::RunLines(*pipeline, lines);
  ASSERT_EQ(records.size(), inputs.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(records[i]["status"], "ok") << records[i];
    for (std::size_t c = 0; c < classes.size(); ++c) {
      const double p = records[i]["probabilities"][classes[c]].get<double>();
      EXPECT_NEAR(p, expected[i][c], kTolerance) << "case " << i;
      worst = std::max(worst, std::abs(p - expected[i][c]));
    }
  }
  std::cout << "tfidf/exported_linear: worst absolute difference from "
               "scikit-learn "
            << worst << "\n";
}

}  // namespace
}  // namespace latefuse
