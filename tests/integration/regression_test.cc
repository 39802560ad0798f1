// Regression pipelines (`task: regression`) through the real host and the real
// plugin libraries: the `linear` model's regression files against
// scikit-learn's StandardScaler + Ridge predict, and the `mean`,
// `weighted_mean` and `inverse_variance` combiners against NumPy formulas, on
// every row of tests/fixtures/regression (made by
// tests/fixtures/make_regression_fixtures.py), every pattern of missing
// modalities included; then the record format and every refusal.
//
// Tolerance: 1e-9 absolute, on predictions near 50. Worst differences
// observed (each test prints its own): 0 for linear and for every combiner,
// prediction and variance alike: the host does the same float64 operations in
// the same order as scikit-learn and the NumPy references on these small rows.
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
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-9;

fs::path Folder() {
  return testing::SourceDir() / "tests" / "fixtures" / "regression";
}

std::string Quoted(const std::string& s) { return json(s).dump(); }

struct Modality {
  std::string name;
  std::size_t width = 0;
  std::string model;  // the `model:` value
};

// A `linear` modality reading the fixture's file `name`.json.
Modality Linear(const std::string& name, std::size_t width) {
  return {name, width,
          "{plugin: linear, params: {model: " +
              Quoted((Folder() / (name + ".json")).string()) + "}}"};
}

const std::vector<Modality>& AllThree() {
  static const std::vector<Modality> all = {
      Linear("vitals", 4), Linear("labs", 3), Linear("wearable", 5)};
  return all;
}

// A pipeline over the in-tree and the test plugins. `head` is what comes
// before plugin_dirs: the task, and the classes if any.
std::string Yaml(const std::vector<Modality>& modalities,
                 const std::string& combiner,
                 const std::string& head = "task: regression\n") {
  std::string yaml = "apiVersion: latefuse/v1\nname: regression\n" + head;
  yaml += "plugin_dirs: [" + Quoted(testing::PluginDir().string()) + ", " +
          Quoted(testing::TestPluginDir().string()) + "]\n";
  yaml += "modalities:\n";
  for (const Modality& m : modalities) {
    yaml += "  - name: " + m.name + "\n";
    yaml += "    input: {kind: dense, size: " + std::to_string(m.width) + "}\n";
    yaml += "    model: " + m.model + "\n";
  }
  yaml += "combiner: " + combiner + "\n";
  yaml += "policy: {min_modalities: 1, on_insufficient: abstain}\n";
  return yaml;
}

// Why the pipeline was refused ("" when it loaded).
std::string Refusal(const std::string& yaml) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, yaml);
  EXPECT_FALSE(pipeline.ok()) << "loaded:\n" << yaml;
  return pipeline.ok() ? "" : std::string(pipeline.status().message());
}

// |actual - expected| for a number the record must hold; fails otherwise.
double Difference(const json& actual, double expected,
                  const std::string& where) {
  EXPECT_TRUE(actual.is_number()) << where << ": " << actual;
  if (!actual.is_number()) return INFINITY;
  EXPECT_NEAR(actual.get<double>(), expected, kTolerance) << where;
  return std::abs(actual.get<double>() - expected);
}

std::string CombinerYaml(const std::string& combiner) {
  if (combiner == "weighted_mean") {
    return "{plugin: weighted_mean, params: {weights: " +
           testing::ReadJson(Folder() / "weights.json").dump() + "}}";
  }
  return "{plugin: " + combiner + "}";
}

// ---- linear vs StandardScaler + Ridge.predict ------------------------------

TEST(RegressionReferenceTest, LinearMatchesScikitLearnPredictOnEveryRow) {
  const std::vector<std::string> lines =
      testing::ReadLines(Folder() / "input.jsonl");
  const std::vector<std::string> expected_lines =
      testing::ReadLines(Folder() / "expected_mean.jsonl");
  ASSERT_EQ(lines.size(), 54u);
  ASSERT_EQ(expected_lines.size(), lines.size());
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, Yaml(AllThree(), "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);
  RunOptions options;
  options.output.per_modality = true;
  const std::vector<json> records =
      testing::RunLines(*pipeline, lines, options);
  ASSERT_EQ(records.size(), lines.size());

  double worst = 0.0;
  int predictions = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json expected = json::parse(expected_lines[i]);
    const json& actual = records[i]["modalities"];
    ASSERT_EQ(actual.size(), expected["modalities"].size()) << records[i];
    for (const auto& [name, want] : expected["modalities"].items()) {
      const std::string where = expected["id"].get<std::string>() + " " + name;
      ASSERT_TRUE(actual.contains(name)) << where << ": " << records[i];
      worst = std::max(worst, Difference(actual[name]["prediction"],
                                         want["prediction"], where));
      ++predictions;
      if (want["variance"].is_null()) {
        EXPECT_EQ(actual[name],
                  json({{"prediction", actual[name]["prediction"]}}))
            << where;
      } else {
        EXPECT_EQ(actual[name]["variance"], want["variance"]) << where;
      }
    }
  }
  // 16 rows with all three, 18 with two, 18 with one.
  EXPECT_EQ(predictions, 16 * 3 + 18 * 2 + 18);
  std::cout << "regression/linear: worst absolute difference from "
               "scikit-learn "
            << worst << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

// ---- the combiners vs NumPy ------------------------------------------------

class RegressionCombinerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RegressionCombinerTest, CombinerMatchesReferenceOnEveryRow) {
  const std::string& combiner = GetParam();
  const bool inverse_variance = combiner == "inverse_variance";
  const std::vector<std::string> lines = testing::ReadLines(
      Folder() /
      (inverse_variance ? "input_inverse_variance.jsonl" : "input.jsonl"));
  const std::vector<std::string> expected_lines =
      testing::ReadLines(Folder() / ("expected_" + combiner + ".jsonl"));
  ASSERT_EQ(expected_lines.size(), lines.size());
  std::vector<Modality> modalities = AllThree();
  if (inverse_variance) modalities.pop_back();  // wearable reports no variance

  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml(modalities, CombinerYaml(combiner)));
  ASSERT_NE(pipeline, nullptr);

  // One batch, then batches of 7 that cut across the presence patterns.
  double worst = 0.0;
  double worst_variance = 0.0;
  for (const std::size_t batch_size : {std::size_t{256}, std::size_t{7}}) {
    RunOptions options;
    options.batch_size = batch_size;
    const std::vector<json> records =
        testing::RunLines(*pipeline, lines, options);
    ASSERT_EQ(records.size(), lines.size());
    int abstained = 0;
    int want_abstained = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json& record = records[i];
      const json expected = json::parse(expected_lines[i]);
      const std::string where =
          combiner + " " + expected["id"].get<std::string>() + " (batch size " +
          std::to_string(batch_size) + ")";
      ASSERT_EQ(record["id"], expected["id"]) << where;
      EXPECT_EQ(record["used"], expected["used"]) << where;
      EXPECT_EQ(record["missing"], expected["missing"]) << where;
      EXPECT_EQ(record["failed"], json::object()) << where;
      if (expected["prediction"].is_null()) {
        ++want_abstained;
        abstained += record["status"] == "abstain";
        EXPECT_EQ(record["status"], "abstain") << where << ": " << record;
        EXPECT_TRUE(record["prediction"].is_null()) << where;
        EXPECT_FALSE(record.contains("variance")) << where;
        continue;
      }
      ASSERT_EQ(record["status"], "ok") << where << ": " << record;
      worst = std::max(worst, Difference(record["prediction"],
                                         expected["prediction"], where));
      if (expected["variance"].is_null()) {
        EXPECT_FALSE(record.contains("variance")) << where << ": " << record;
      } else {
        worst_variance = std::max(
            worst_variance,
            Difference(record["variance"], expected["variance"], where));
      }
    }
    EXPECT_EQ(abstained, want_abstained);
    EXPECT_GE(want_abstained, 2) << "the fixture has two rows with no modality";
  }
  std::cout << "regression/" << combiner
            << ": worst absolute difference from the reference " << worst
            << " (variance " << worst_variance << ")\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RegressionCombinerTest,
                         ::testing::Values("mean", "weighted_mean",
                                           "inverse_variance"));

TEST(RegressionCombinerTest, InverseVarianceExplainsPrecisionShares) {
  const double v_vitals =
      testing::ReadJson(Folder() / "vitals.json")["variance"];
  const double v_labs = testing::ReadJson(Folder() / "labs.json")["variance"];
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml({AllThree()[0], AllThree()[1]}, "{plugin: inverse_variance}"));
  ASSERT_NE(pipeline, nullptr);
  RunOptions options;
  options.engine.explain = true;
  options.output.explain = true;
  const std::vector<json> records = testing::RunLines(
      *pipeline,
      {R"({"id": "both", "modalities": {"vitals": [1, 2, 3, 4], "labs": [1, 2, 3]}})",
       R"({"id": "labs", "modalities": {"labs": [1, 2, 3]}})"},
      options);
  ASSERT_EQ(records.size(), 2u);
  const double share = (1 / v_vitals) / (1 / v_vitals + 1 / v_labs);
  EXPECT_NEAR(records[0]["weights"]["vitals"].get<double>(), share, 1e-12);
  EXPECT_NEAR(records[0]["weights"]["labs"].get<double>(), 1 - share, 1e-12);
  EXPECT_EQ(records[1]["weights"], json({{"vitals", 0.0}, {"labs", 1.0}}));
  EXPECT_EQ(records[1]["variance"], v_labs);
}

// ---- the record format -----------------------------------------------------

TEST(RegressionRecordTest, RecordsCarryPredictionAndVarianceInsteadOfLabel) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml({AllThree()[0], AllThree()[2]}, "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);
  RunOptions options;
  options.output.per_modality = true;
  const std::vector<json> records = testing::RunLines(
      *pipeline,
      {R"({"id": "a", "modalities": {"vitals": [1, 2, 3, 4], "wearable": [1, 2, 3, 4, 5]}})",
       R"({"id": "b", "modalities": {"vitals": null}})",
       R"({"id": "c", "modalities": {"vitals": [1, 2]}})"},
      options);
  ASSERT_EQ(records.size(), 3u);

  const json& ok = records[0];
  EXPECT_EQ(ok["status"], "ok");
  EXPECT_TRUE(ok["prediction"].is_number()) << ok;
  EXPECT_FALSE(ok.contains("variance")) << "mean reports no fused variance";
  EXPECT_FALSE(ok.contains("label")) << ok;
  EXPECT_FALSE(ok.contains("probabilities")) << ok;
  EXPECT_EQ(ok["used"], json({"vitals", "wearable"}));
  const json& vitals = ok["modalities"]["vitals"];
  EXPECT_EQ(vitals.size(), 2u) << vitals;
  EXPECT_EQ(vitals["variance"],
            testing::ReadJson(Folder() / "vitals.json")["variance"]);
  EXPECT_EQ(ok["modalities"]["wearable"].size(), 1u) << "no variance reported";
  EXPECT_NEAR(ok["prediction"].get<double>(),
              (vitals["prediction"].get<double>() +
               ok["modalities"]["wearable"]["prediction"].get<double>()) /
                  2,
              1e-12);

  const json& abstain = records[1];
  EXPECT_EQ(abstain["status"], "abstain");
  EXPECT_TRUE(abstain.contains("prediction") && abstain["prediction"].is_null())
      << abstain;
  EXPECT_FALSE(abstain.contains("variance"));
  EXPECT_FALSE(abstain.contains("label"));
  EXPECT_EQ(abstain["missing"], json({"vitals", "wearable"}));

  const json& error = records[2];
  EXPECT_EQ(error["status"], "error");
  EXPECT_TRUE(error["prediction"].is_null()) << error;
  EXPECT_THAT(error["error"].get<std::string>(),
              HasSubstr("modalities.vitals"));
}

TEST(RegressionRecordTest, ValidatePlanSaysRegressionInsteadOfClasses) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, Yaml({AllThree()[0]}, "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);
  const std::string plan = pipeline->Plan();
  EXPECT_THAT(plan, HasSubstr("\n  task: regression\n"));
  EXPECT_THAT(plan, ::testing::Not(HasSubstr("classes:")));
}

// ---- refusals and failures -------------------------------------------------

TEST(RegressionErrorTest, ModelBuiltBeforeAbi12IsRefused) {
  EXPECT_THAT(
      Refusal(Yaml({{"x", 3, "{plugin: abi_1_1_model}"}}, "{plugin: mean}")),
      AllOf(HasSubstr("plugin 'abi_1_1_model' ("),
            HasSubstr("built for ABI 1.1, before regression pipelines "
                      "(ABI 1.2)")));
}

TEST(RegressionErrorTest, ClassificationCombinersAreRefused) {
  for (const char* name :
       {"geometric", "max", "min", "median", "vote", "gated", "stacking"}) {
    EXPECT_THAT(
        Refusal(Yaml(AllThree(), std::string("{plugin: ") + name + "}")),
        HasSubstr(std::string(name) +
                  " fuses class probabilities; it does not support "
                  "task 'regression'"))
        << name;
  }
}

TEST(RegressionErrorTest, InverseVarianceRefusesClassification) {
  const fs::path binary =
      testing::SourceDir() / "tests/fixtures/linear/binary/model.json";
  const json classes = testing::ReadJson(binary)["classes"];
  EXPECT_THAT(
      Refusal(Yaml({{"x", 6,
                     "{plugin: linear, params: {model: " +
                         Quoted(binary.string()) + "}}"}},
                   "{plugin: inverse_variance}",
                   "task: classification\nclasses: " + classes.dump() + "\n")),
      HasSubstr("inverse_variance fuses predictions and their variances; it "
                "needs task 'regression'"));
}

TEST(RegressionErrorTest, RegressionFileInClassificationPipelineIsRefused) {
  EXPECT_THAT(Refusal(Yaml({AllThree()[0]}, "{plugin: mean}",
                           "task: classification\nclasses: [low, high]\n")),
              HasSubstr("vitals.json' is a regression model, but the "
                        "pipeline's task is 'classification'"));
}

TEST(RegressionErrorTest, ClassifierFileInRegressionPipelineIsRefused) {
  const fs::path binary =
      testing::SourceDir() / "tests/fixtures/linear/binary/model.json";
  EXPECT_THAT(
      Refusal(Yaml({{"x", 6,
                     "{plugin: linear, params: {model: " +
                         Quoted(binary.string()) + "}}"}},
                   "{plugin: mean}")),
      HasSubstr("model.json' is a classification model, but the pipeline's "
                "task is 'regression'"));
}

TEST(RegressionErrorTest, ModelDeclaringClassesIsRefused) {
  EXPECT_THAT(Refusal(Yaml(
                  {{"x", 1, "{plugin: test_model, params: {classes: [a, b]}}"}},
                  "{plugin: mean}")),
              AllOf(HasSubstr("plugin 'test_model' ("),
                    HasSubstr("describes 2 classes, but the pipeline's task is "
                              "'regression'")));
}

TEST(RegressionErrorTest, CalibrationOnRegressionModalityIsRefused) {
  std::string yaml = Yaml({AllThree()[0]}, "{plugin: mean}");
  yaml.insert(yaml.find("combiner:"),
              "    calibration: {method: platt, file: platt.json}\n");
  EXPECT_THAT(Refusal(yaml),
              HasSubstr("modalities[0].calibration: not allowed for task "
                        "'regression'; calibration maps class probabilities"));
}

TEST(RegressionErrorTest, InverseVarianceFailsRowsWhoseModelReportsNoVariance) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml(AllThree(), "{plugin: inverse_variance}"));
  ASSERT_NE(pipeline, nullptr);
  RunOptions options;
  options.batch_size = 1;  // a failed combine call fails the rows it had
  const std::vector<json> records = testing::RunLines(
      *pipeline,
      {R"({"id": "w", "modalities": {"vitals": [1, 2, 3, 4], "wearable": [1, 2, 3, 4, 5]}})",
       R"({"id": "v", "modalities": {"vitals": [1, 2, 3, 4], "labs": [1, 2, 3]}})"},
      options);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["status"], "error");
  EXPECT_TRUE(records[0]["prediction"].is_null());
  EXPECT_THAT(records[0]["error"].get<std::string>(),
              HasSubstr("modality 'wearable' reports no variance; "
                        "inverse_variance needs every model to report one"));
  EXPECT_EQ(records[1]["status"], "ok") << records[1];
}

TEST(RegressionErrorTest, NonFinitePredictionFailsTheModality) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml({{"x", 1, "{plugin: test_model, params: {nan: true}}"}},
                "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<json> records = testing::RunLines(
      *pipeline, {R"({"id": "n", "modalities": {"x": [0.5]}})"});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["status"], "abstain") << records[0];
  EXPECT_THAT(records[0]["failed"]["x"].get<std::string>(),
              HasSubstr("returned nan as a prediction"));
}

TEST(RegressionErrorTest, VarianceFromModelReportingNoneFailsTheModality) {
  // test_model reports no variance but writes a number in column 1.
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, Yaml({{"x", 1, "{plugin: test_model}"}}, "{plugin: mean}"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<json> records = testing::RunLines(
      *pipeline, {R"({"id": "n", "modalities": {"x": [0.5]}})"});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_THAT(records[0]["failed"]["x"].get<std::string>(),
              HasSubstr("as a variance, but its contract reports none (NaN)"));
}

}  // namespace
}  // namespace latefuse
