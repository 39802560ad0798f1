// Numbers checked against an independent reference: the `linear` model and the
// `mean` and `weighted_mean` combiners, run through the real host and the real
// plugin libraries, against scikit-learn's outputs in tests/fixtures (made by
// tests/fixtures/make_fixtures.py; see tests/fixtures/README.md).
//
// Tolerance: 1e-9 absolute. Absolute, because scikit-learn computes a binary
// model's P(classes[0]) as 1 - sigmoid(d), exactly 0.0 for large d where the
// plugin's sigmoid(-d) is a tiny positive number, so relative differences near
// 0 mean nothing. Worst differences observed (each test prints its own):
//   linear/binary, linear/multiclass, linear/binary_noscaler: 1.1e-16 each;
//   fusion/mean, fusion3/mean, fusion3/weighted_mean: 1.1e-16;
//   fusion/weighted_mean: 2.2e-16.
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

constexpr double kTolerance = 1e-9;

fs::path FixtureDir(const std::string& name) {
  return testing::SourceDir() / "tests" / "fixtures" / name;
}

// `s` as a YAML double-quoted scalar (JSON string syntax is valid YAML).
std::string Quoted(const std::string& s) { return json(s).dump(); }

std::string ClassList(const std::vector<std::string>& classes) {
  std::string out = "[";
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (c > 0) out += ", ";
    out += Quoted(classes[c]);
  }
  return out + "]";
}

struct LinearModality {
  std::string name;
  std::size_t width = 0;
  fs::path model;  // absolute path of a latefuse.linear/v1 file
};

// A pipeline of `linear` models over the in-tree plugin folder.
std::string LinearPipeline(const std::vector<std::string>& classes,
                           const std::vector<LinearModality>& modalities,
                           const std::string& combiner) {
  std::string yaml = "apiVersion: latefuse/v1\nname: reference\n";
  yaml += "task: classification\nclasses: " + ClassList(classes) + "\n";
  yaml += "plugin_dirs: [" + Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n";
  for (const LinearModality& m : modalities) {
    yaml += "  - name: " + m.name + "\n";
    yaml += "    input: {kind: dense, size: " + std::to_string(m.width) + "}\n";
    yaml += "    model: {plugin: linear, params: {model: " +
            Quoted(m.model.string()) + "}}\n";
  }
  yaml += "combiner: " + combiner + "\n";
  yaml += "policy: {min_modalities: 1, on_insufficient: abstain}\n";
  return yaml;
}

// Largest |actual[c] - expected[c]| over `classes`; fails the test when a
// class is missing or not a number.
double MaxDifference(const json& actual,
                     const std::vector<std::string>& classes,
                     const std::vector<double>& expected,
                     const std::string& where) {
  double worst = 0.0;
  EXPECT_TRUE(actual.is_object()) << where << ": " << actual;
  if (!actual.is_object()) return INFINITY;
  EXPECT_EQ(actual.size(), classes.size()) << where << ": " << actual;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (!actual.contains(classes[c]) || !actual[classes[c]].is_number()) {
      ADD_FAILURE() << where << ": no number for class " << classes[c] << " in "
                    << actual;
      return INFINITY;
    }
    const double difference =
        std::abs(actual[classes[c]].get<double>() - expected[c]);
    EXPECT_NEAR(actual[classes[c]].get<double>(), expected[c], kTolerance)
        << where << ", class " << classes[c];
    worst = std::max(worst, difference);
  }
  return worst;
}

// A fixture folder's name as the test's name.
std::string FolderName(const ::testing::TestParamInfo<std::string>& folder) {
  return folder.param;
}

// ---- linear vs StandardScaler + LogisticRegression.predict_proba ----------

class LinearReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LinearReferenceTest, LinearMatchesScikitLearnPredictProba) {
  const fs::path folder = FixtureDir("linear") / GetParam();
  const json cases = testing::ReadJson(folder / "cases.json");
  const auto classes = cases["classes"].get<std::vector<std::string>>();
  const auto inputs = cases["inputs"].get<std::vector<std::vector<double>>>();
  const auto expected =
      cases["expected"].get<std::vector<std::vector<double>>>();
  ASSERT_EQ(inputs.size(), 50u);
  ASSERT_EQ(expected.size(), inputs.size());

  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir,
      LinearPipeline(classes, {{"x", inputs[0].size(), folder / "model.json"}},
                     "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);

  std::vector<std::string> lines;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    lines.push_back(json{{"id", "case-" + std::to_string(i)},
                         {"modalities", {{"x", inputs[i]}}}}
                        .dump());
  }
  RunOptions options;
  options.output.per_modality = true;
  const std::vector<json> records =
      testing::RunLines(*pipeline, lines, options);
  ASSERT_EQ(records.size(), inputs.size());

  double worst = 0.0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json& record = records[i];
    const std::string where = GetParam() + " case " + std::to_string(i);
    ASSERT_EQ(record["id"], "case-" + std::to_string(i)) << record;
    ASSERT_EQ(record["status"], "ok") << where << ": " << record;
    EXPECT_EQ(record["used"], json::array({"x"})) << where;
    worst = std::max(worst, MaxDifference(record["probabilities"], classes,
                                          expected[i], where + " fused"));
    worst =
        std::max(worst, MaxDifference(record["modalities"]["x"], classes,
                                      expected[i], where + " per modality"));
  }
  std::cout << "linear/" << GetParam()
            << ": worst absolute difference from scikit-learn " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LinearReferenceTest,
                         ::testing::Values("binary", "multiclass",
                                           "binary_noscaler"),
                         FolderName);

// ---- mean / weighted_mean vs VotingClassifier(voting="soft") and NumPy ----

struct FusionCase {
  std::string fixture;   // "fusion" | "fusion3"
  std::string combiner;  // "mean" | "weighted_mean"
};

// The three linear modalities of a fusion fixture, and its classes.
std::vector<LinearModality> FusionModalities(const fs::path& folder) {
  return {{"a", 5, folder / "a.json"},
          {"b", 3, folder / "b.json"},
          {"c", 4, folder / "c.json"}};
}

std::vector<std::string> FusionClasses(const fs::path& folder) {
  return testing::ReadJson(folder / "a.json")["classes"]
      .get<std::vector<std::string>>();
}

std::string FusionCombiner(const fs::path& folder,
                           const std::string& combiner) {
  if (combiner == "mean") return "{plugin: mean}";
  return "{plugin: weighted_mean, params: {weights: " +
         testing::ReadJson(folder / "weights.json").dump() + "}}";
}

std::string FusionCaseName(
    const ::testing::TestParamInfo<FusionCase>& case_info) {
  return case_info.param.fixture + "_" + case_info.param.combiner;
}

class FusionReferenceTest : public ::testing::TestWithParam<FusionCase> {};

TEST_P(FusionReferenceTest, CombinerMatchesReferenceOnEveryRow) {
  const FusionCase& param = GetParam();
  const fs::path folder = FixtureDir(param.fixture);
  const std::vector<std::string> classes = FusionClasses(folder);
  const std::vector<std::string> lines =
      testing::ReadLines(folder / "input.jsonl");
  const std::vector<std::string> expected_lines =
      testing::ReadLines(folder / ("expected_" + param.combiner + ".jsonl"));
  ASSERT_EQ(lines.size(), 60u);
  ASSERT_EQ(expected_lines.size(), lines.size());

  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, LinearPipeline(classes, FusionModalities(folder),
                          FusionCombiner(folder, param.combiner)));
  ASSERT_NE(pipeline, nullptr);

  // One batch, then batches of 7 that cut across the presence patterns.
  double worst = 0.0;
  for (const std::size_t batch_size : {std::size_t{256}, std::size_t{7}}) {
    RunOptions options;
    options.batch_size = batch_size;
    const std::vector<json> records =
        testing::RunLines(*pipeline, lines, options);
    ASSERT_EQ(records.size(), lines.size());
    int abstained = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json& record = records[i];
      const json expected = json::parse(expected_lines[i]);
      const std::string where = param.fixture + "/" + param.combiner + " " +
                                expected["id"].get<std::string>() +
                                " (batch size " + std::to_string(batch_size) +
                                ")";
      ASSERT_EQ(record["id"], expected["id"]) << where;
      EXPECT_EQ(record["used"], expected["used"]) << where;
      EXPECT_EQ(record["missing"], expected["missing"]) << where;
      EXPECT_EQ(record["failed"], json::object()) << where;
      if (expected["probabilities"].is_null()) {
        ++abstained;
        EXPECT_EQ(record["status"], "abstain") << where << ": " << record;
        EXPECT_TRUE(record["probabilities"].is_null()) << where;
        continue;
      }
      ASSERT_EQ(record["status"], "ok") << where << ": " << record;
      std::vector<double> p;
      for (const std::string& c : classes) {
        p.push_back(expected["probabilities"][c].get<double>());
      }
      worst = std::max(
          worst, MaxDifference(record["probabilities"], classes, p, where));
    }
    EXPECT_EQ(abstained, 2) << "the fixture has two rows with no modality";
  }
  std::cout << param.fixture << "/" << param.combiner
            << ": worst absolute difference from the reference " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, FusionReferenceTest,
    ::testing::Values(FusionCase{"fusion", "mean"},
                      FusionCase{"fusion", "weighted_mean"},
                      FusionCase{"fusion3", "mean"},
                      FusionCase{"fusion3", "weighted_mean"}),
    FusionCaseName);

// ---- --explain: the weights weighted_mean used ----------------------------

class ExplainTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExplainTest,
       WeightedMeanExplainsRenormalisedWeightsOfPresentModalities) {
  const fs::path folder = FixtureDir(GetParam());
  const json weights = testing::ReadJson(folder / "weights.json");
  const std::vector<std::string> lines =
      testing::ReadLines(folder / "input.jsonl");
  const std::vector<std::string> expected_lines =
      testing::ReadLines(folder / "expected_weighted_mean.jsonl");
  ASSERT_EQ(expected_lines.size(), lines.size());

  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, LinearPipeline(FusionClasses(folder), FusionModalities(folder),
                          FusionCombiner(folder, "weighted_mean")));
  ASSERT_NE(pipeline, nullptr);
  RunOptions options;
  options.engine.explain = true;
  options.output.explain = true;
  const std::vector<json> records =
      testing::RunLines(*pipeline, lines, options);
  ASSERT_EQ(records.size(), lines.size());

  int explained = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json& record = records[i];
    const json expected = json::parse(expected_lines[i]);
    const std::string where = GetParam() + " " + record["id"].dump();
    if (record["status"] != "ok") {
      EXPECT_FALSE(record.contains("weights")) << where;
      continue;
    }
    ++explained;
    ASSERT_TRUE(record.contains("weights")) << where << ": " << record;
    const json& shares = record["weights"];
    ASSERT_EQ(shares.size(), 3u) << where << ": " << shares;
    double present_total = 0.0;
    for (const json& name : expected["used"]) {
      present_total += weights[name.get<std::string>()].get<double>();
    }
    double sum = 0.0;
    for (const std::string name : {"a", "b", "c"}) {
      const bool used =
          std::find(expected["used"].begin(), expected["used"].end(), name) !=
          expected["used"].end();
      const double want =
          used ? weights[name].get<double>() / present_total : 0.0;
      ASSERT_TRUE(shares.contains(name)) << where << ": " << shares;
      EXPECT_NEAR(shares[name].get<double>(), want, 1e-12)
          << where << ", modality " << name;
      if (!used) {
        EXPECT_EQ(shares[name].get<double>(), 0.0) << where;
      }
      sum += shares[name].get<double>();
    }
    EXPECT_NEAR(sum, 1.0, 1e-12) << where;
  }
  EXPECT_EQ(explained, 58);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExplainTest,
                         ::testing::Values("fusion", "fusion3"), FolderName);

}  // namespace
}  // namespace latefuse
