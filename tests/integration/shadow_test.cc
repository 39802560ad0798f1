// Shadow rollout: a modality's `shadow:` model runs on the same rows as its
// model, is reported in the records ("shadow") and the run summary, and never
// changes anything else.
//
// Numbers are checked against tests/fixtures/shadow/ (made by
// tests/fixtures/make_shadow_fixtures.py with scikit-learn): next versions of
// fusion3's models a and c and of the regression fixture's vitals, each row's
// expected shadow output, agreement and abs_diff, and the run's totals.
// Failures, timeouts, exceptions and NaN come from the configurable
// `test_model` plugin (tests/plugins/test_model.cc).
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kTol = 1e-12;

fs::path Fixtures() { return testing::SourceDir() / "tests/fixtures"; }

std::string Quoted(const fs::path& path) { return json(path.string()).dump(); }

// `{plugin: NAME, params: {model: "PATH"}}`.
std::string Linear(const fs::path& model) {
  return absl::StrCat("{plugin: linear, params: {model: ", Quoted(model), "}}");
}

struct ModalitySpec {
  std::string name;
  int width = 1;
  std::string model;   // the `model:` value, a flow mapping
  std::string shadow;  // the `shadow:` value; "" = none
  std::string extra;   // more lines of the modality, "    key: value\n" each
};

ModalitySpec Dense(std::string name, int width, std::string model,
                   std::string shadow = "", std::string extra = "") {
  return {std::move(name), width, std::move(model), std::move(shadow),
          std::move(extra)};
}

std::string PipelineYaml(const std::string& task,
                         const std::vector<ModalitySpec>& modalities,
                         const std::string& combiner) {
  std::string yaml = "apiVersion: latefuse/v1\nname: shadow-test\n" + task;
  absl::StrAppend(&yaml, "plugin_dirs: [", Quoted(testing::TestPluginDir()),
                  ", ", Quoted(testing::PluginDir()), "]\nmodalities:\n");
  for (const ModalitySpec& m : modalities) {
    absl::StrAppend(&yaml, "  - name: ", m.name, "\n",
                    "    input: {kind: dense, size: ", m.width, "}\n",
                    "    model: ", m.model, "\n");
    if (!m.shadow.empty())
      absl::StrAppend(&yaml, "    shadow: ", m.shadow, "\n");
    yaml += m.extra;
  }
  absl::StrAppend(&yaml, "combiner: ", combiner, "\n");
  return yaml;
}

// fusion3's pipeline (weighted_mean over a, b, c), with `shadows` by modality.
std::string Fusion3Yaml(const std::map<std::string, std::string>& shadows,
                        const std::string& a_extra = "") {
  std::vector<ModalitySpec> modalities;
  for (const auto& [name, width] :
       std::vector<std::pair<std::string, int>>{{"a", 5}, {"b", 3}, {"c", 4}}) {
    const auto shadow = shadows.find(name);
    modalities.push_back(
        Dense(name, width, Linear(Fixtures() / "fusion3" / (name + ".json")),
              shadow == shadows.end() ? "" : shadow->second,
              name == "a" ? a_extra : ""));
  }
  return PipelineYaml(
      "classes: [red, green, blue]\n", modalities,
      "{plugin: weighted_mean, params: {weights: {a: 2.0, b: 1.0, c: 0.5}}}");
}

std::map<std::string, std::string> Fusion3V2Shadows() {
  return {{"a", Linear(Fixtures() / "shadow/a_v2.json")},
          {"c", Linear(Fixtures() / "shadow/c_v2.json")}};
}

// The regression fixture's pipeline (mean over vitals, labs, wearable).
std::string RegressionYaml(const std::string& vitals_shadow) {
  const fs::path dir = Fixtures() / "regression";
  return PipelineYaml(
      "task: regression\n",
      {Dense("vitals", 4, Linear(dir / "vitals.json"), vitals_shadow),
       Dense("labs", 3, Linear(dir / "labs.json")),
       Dense("wearable", 5, Linear(dir / "wearable.json"))},
      "{plugin: mean}");
}

// Two modalities of test_model (P(pos) = sigmoid(x[0])) fused by `mean`; `a`
// has the shadow `a_shadow` (test_model params) unless it is empty.
std::string TestModelYaml(const std::string& a_params,
                          const std::string& a_shadow,
                          const std::string& a_extra = "") {
  auto model = [](const std::string& params) {
    return absl::StrCat("{plugin: test_model, params: ", params, "}");
  };
  return PipelineYaml("classes: [neg, pos]\n",
                      {Dense("a", 1, model(a_params),
                             a_shadow.empty() ? "" : model(a_shadow), a_extra),
                       Dense("b", 1, model("{}"))},
                      "{plugin: mean}");
}

struct Output {
  std::vector<std::string> lines;  // as written, without the newline
  RunSummary summary;
};

Output RunRecords(Pipeline& pipeline, const std::vector<std::string>& lines,
                  RunOptions options = {}) {
  std::stringstream in;
  for (const std::string& line : lines) in << line << "\n";
  std::stringstream out;
  absl::StatusOr<RunSummary> summary = RunStream(pipeline, in, out, options);
  EXPECT_TRUE(summary.ok()) << summary.status();
  Output output;
  if (summary.ok()) output.summary = *summary;
  for (std::string line; std::getline(out, line);) output.lines.push_back(line);
  EXPECT_EQ(output.lines.size(), lines.size()) << "one line per input line";
  return output;
}

// Loads `yaml` (in its own folder) and runs `lines` through it.
Output LoadAndRun(const std::string& yaml,
                  const std::vector<std::string>& lines,
                  RunOptions options = {}) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(dir, yaml);
  if (pipeline == nullptr) return {};
  return RunRecords(*pipeline, lines, options);
}

// `with` is `without` byte for byte, plus the "shadow" field the host writes
// last; returns that field.
json ShadowField(const std::string& with, const std::string& without) {
  EXPECT_THAT(without, ::testing::EndsWith("}"));
  const std::string head = without.substr(0, without.size() - 1);
  EXPECT_THAT(with, StartsWith(head + ", \"shadow\": {"))
      << "the record changed beyond its shadow field:\n  with shadow:    "
      << with << "\n  without shadow: " << without;
  const json record = json::parse(with);
  json rest = record;
  rest.erase("shadow");
  EXPECT_EQ(rest, json::parse(without));
  return record.value("shadow", json());
}

// Every record of `with` equals the one of `without` byte for byte apart from
// its shadow field, which is returned per line.
std::vector<json> ShadowFields(const Output& with, const Output& without) {
  std::vector<json> fields;
  EXPECT_EQ(with.lines.size(), without.lines.size());
  for (std::size_t i = 0; i < with.lines.size() && i < without.lines.size();
       ++i) {
    SCOPED_TRACE(absl::StrCat("output line ", i + 1));
    fields.push_back(ShadowField(with.lines[i], without.lines[i]));
  }
  // The fused side of the summary is the same too.
  EXPECT_EQ(with.summary.ok, without.summary.ok);
  EXPECT_EQ(with.summary.abstain, without.summary.abstain);
  EXPECT_EQ(with.summary.error, without.summary.error);
  for (std::size_t k = 0; k < with.summary.modalities.size() &&
                          k < without.summary.modalities.size();
       ++k) {
    EXPECT_EQ(with.summary.modalities[k].used,
              without.summary.modalities[k].used);
    EXPECT_EQ(with.summary.modalities[k].failed,
              without.summary.modalities[k].failed);
  }
  return fields;
}

void ExpectDistribution(const json& actual, const json& expected) {
  ASSERT_TRUE(actual.is_object()) << actual;
  ASSERT_EQ(actual.size(), expected.size()) << actual;
  for (const auto& [label, p] : expected.items()) {
    EXPECT_NEAR(actual.value(label, -1.0), p.get<double>(), kTol) << label;
  }
}

class Fusion3ShadowTest : public ::testing::TestWithParam<std::size_t> {};

// The shadow's probabilities, agreement and abs_diff on every row equal
// scikit-learn's; the run's totals equal the fixture's; and the fused records
// (with --per-modality and --explain) are those of the pipeline without
// shadows, byte for byte, whatever the batch size.
TEST_P(Fusion3ShadowTest,
       MatchesScikitLearnAndLeavesFusedRecordsByteIdentical) {
  const std::vector<std::string> input =
      testing::ReadLines(Fixtures() / "fusion3/input.jsonl");
  const std::vector<std::string> expected =
      testing::ReadLines(Fixtures() / "shadow/expected_fusion3.jsonl");
  ASSERT_EQ(input.size(), expected.size());
  RunOptions options;
  options.batch_size = GetParam();
  options.engine.explain = true;
  options.output.per_modality = true;
  options.output.explain = true;
  const Output with =
      LoadAndRun(Fusion3Yaml(Fusion3V2Shadows()), input, options);
  const Output without = LoadAndRun(Fusion3Yaml({}), input, options);
  const std::vector<json> shadows = ShadowFields(with, without);
  ASSERT_EQ(shadows.size(), input.size());

  for (std::size_t i = 0; i < input.size(); ++i) {
    SCOPED_TRACE(input[i]);
    const json want = json::parse(expected[i])["shadow"];
    const json record = json::parse(with.lines[i]);
    ASSERT_EQ(shadows[i].size(), want.size()) << shadows[i];
    for (const auto& [m, w] : want.items()) {
      SCOPED_TRACE("modality " + m);
      const json& got = shadows[i][m];
      ExpectDistribution(got["probabilities"], w["probabilities"]);
      EXPECT_EQ(got["agree"], w["agree"]);
      EXPECT_NEAR(got["abs_diff"].get<double>(), w["abs_diff"].get<double>(),
                  kTol);
      // The live side of the comparison is the model's own output.
      ExpectDistribution(record["modalities"][m], w["live"]);
    }
  }

  const json totals = testing::ReadJson(Fixtures() / "shadow/summary.json");
  const std::vector<std::string> names = {"a", "b", "c"};
  for (std::size_t k = 0; k < names.size(); ++k) {
    SCOPED_TRACE("modality " + names[k]);
    const std::optional<ShadowCounts>& counts =
        with.summary.modalities[k].shadow;
    if (!totals["fusion3"].contains(names[k])) {
      EXPECT_FALSE(counts.has_value());
      continue;
    }
    const json& want = totals["fusion3"][names[k]];
    ASSERT_TRUE(counts.has_value());
    EXPECT_EQ(counts->compared, want["compared"].get<std::size_t>());
    EXPECT_EQ(counts->agreed, want["agreed"].get<std::size_t>());
    EXPECT_EQ(counts->failed, 0u);
    EXPECT_NEAR(counts->AgreementRate(), want["agreement"].get<double>(), kTol);
    EXPECT_NEAR(counts->MeanAbsDiff(), want["mean_abs_diff"].get<double>(),
                kTol);
  }
  for (const ModalityCounts& counts : without.summary.modalities) {
    EXPECT_FALSE(counts.shadow.has_value());
  }
}

INSTANTIATE_TEST_SUITE_P(BatchSizes, Fusion3ShadowTest,
                         ::testing::Values(1, 7, 256));

// A shadow is the same model the host would run live: its probabilities are
// bit for bit what that model gives as a modality's model.
TEST(ShadowTest, ShadowOutputEqualsTheSameModelRunLive) {
  const std::vector<std::string> input =
      testing::ReadLines(Fixtures() / "fusion3/input.jsonl");
  RunOptions options;
  options.output.per_modality = true;
  const Output shadowed =
      LoadAndRun(Fusion3Yaml(Fusion3V2Shadows()), input, options);
  const Output live = LoadAndRun(
      PipelineYaml("classes: [red, green, blue]\n",
                   {Dense("a", 5, Linear(Fixtures() / "shadow/a_v2.json")),
                    Dense("b", 3, Linear(Fixtures() / "fusion3/b.json")),
                    Dense("c", 4, Linear(Fixtures() / "shadow/c_v2.json"))},
                   "{plugin: mean}"),
      input, options);
  ASSERT_EQ(shadowed.lines.size(), live.lines.size());
  std::size_t compared = 0;
  for (std::size_t i = 0; i < live.lines.size(); ++i) {
    const json shadow = json::parse(shadowed.lines[i])["shadow"];
    const json modalities = json::parse(live.lines[i])["modalities"];
    for (const char* m : {"a", "c"}) {
      ASSERT_EQ(shadow.contains(m), modalities.contains(m)) << live.lines[i];
      if (!shadow.contains(m)) continue;
      EXPECT_EQ(shadow[m]["probabilities"], modalities[m]) << live.lines[i];
      ++compared;
    }
  }
  EXPECT_EQ(compared, 80u);
}

// Regression: the shadow reports its prediction (and variance) and the
// absolute difference of the predictions; there is no argmax to agree on.
TEST(ShadowTest, RegressionShadowReportsThePredictionDifference) {
  const std::vector<std::string> input =
      testing::ReadLines(Fixtures() / "regression/input.jsonl");
  const std::vector<std::string> expected =
      testing::ReadLines(Fixtures() / "shadow/expected_regression.jsonl");
  RunOptions options;
  options.batch_size = 5;
  options.output.per_modality = true;
  const Output with =
      LoadAndRun(RegressionYaml(Linear(Fixtures() / "shadow/vitals_v2.json")),
                 input, options);
  const Output without = LoadAndRun(RegressionYaml(""), input, options);
  const std::vector<json> shadows = ShadowFields(with, without);
  ASSERT_EQ(shadows.size(), expected.size());
  for (std::size_t i = 0; i < shadows.size(); ++i) {
    SCOPED_TRACE(input[i]);
    const json want = json::parse(expected[i])["shadow"];
    ASSERT_EQ(shadows[i].size(), want.size()) << shadows[i];
    if (want.empty()) continue;
    const json& got = shadows[i]["vitals"];
    const json& w = want["vitals"];
    EXPECT_EQ(got.size(), 3u) << got;  // prediction, variance, abs_diff
    EXPECT_NEAR(got["prediction"].get<double>(), w["prediction"].get<double>(),
                kTol * 100);
    EXPECT_NEAR(got["variance"].get<double>(), w["variance"].get<double>(),
                kTol * 100);
    EXPECT_NEAR(got["abs_diff"].get<double>(), w["abs_diff"].get<double>(),
                kTol * 100);
    EXPECT_NEAR(json::parse(with.lines[i])["modalities"]["vitals"]["prediction"]
                    .get<double>(),
                w["live"].get<double>(), kTol * 100);
  }
  const json want =
      testing::ReadJson(Fixtures() / "shadow/summary.json")["regression"];
  const std::optional<ShadowCounts>& counts = with.summary.modalities[0].shadow;
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ(counts->compared, want["vitals"]["compared"].get<std::size_t>());
  EXPECT_EQ(counts->agreed, 0u);
  EXPECT_NEAR(counts->MeanAbsDiff(),
              want["vitals"]["mean_abs_diff"].get<double>(), kTol * 100);
  EXPECT_FALSE(with.summary.modalities[1].shadow.has_value());
  absl::StatusOr<PipelineConfig> config = ParsePipeline(
      RegressionYaml(Linear(Fixtures() / "shadow/vitals_v2.json")),
      "pipeline.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(FormatSummary(*config, with.summary),
              HasSubstr(absl::StrFormat(
                  "\n            shadow: %d rows compared, mean |prediction "
                  "diff| %.4g, failed 0\n  labs ",
                  counts->compared, counts->MeanAbsDiff())));
}

// The modality's calibration was fitted to its model: it calibrates what is
// fused, and the shadow is compared with the model's output before it.
TEST(ShadowTest, CalibrationAppliesToTheModelOnly) {
  testing::TempDir dir;
  const fs::path calibration = dir.Write(
      "a_temperature.json",
      R"({"format": "latefuse.calibration/v1", "method": "temperature",)"
      R"( "classes": ["red", "green", "blue"], "temperature": 2.5})");
  const std::string extra = absl::StrCat(
      "    calibration: {method: temperature, file: ", Quoted(calibration),
      "}\n");
  const std::vector<std::string> input =
      testing::ReadLines(Fixtures() / "fusion3/input.jsonl");
  const std::vector<std::string> expected =
      testing::ReadLines(Fixtures() / "shadow/expected_fusion3.jsonl");
  RunOptions options;
  options.output.per_modality = true;
  const Output with =
      LoadAndRun(Fusion3Yaml(Fusion3V2Shadows(), extra), input, options);
  const Output without = LoadAndRun(Fusion3Yaml({}, extra), input, options);
  const std::vector<json> shadows = ShadowFields(with, without);
  std::size_t calibrated = 0;
  for (std::size_t i = 0; i < shadows.size(); ++i) {
    const json want = json::parse(expected[i])["shadow"];
    if (!want.contains("a")) continue;
    SCOPED_TRACE(input[i]);
    ExpectDistribution(shadows[i]["a"]["probabilities"],
                       want["a"]["probabilities"]);
    EXPECT_EQ(shadows[i]["a"]["agree"], want["a"]["agree"]);
    EXPECT_NEAR(shadows[i]["a"]["abs_diff"].get<double>(),
                want["a"]["abs_diff"].get<double>(), kTol);
    // What is fused is the calibrated output, not the raw one.
    const json fused_a = json::parse(with.lines[i])["modalities"]["a"];
    calibrated += std::abs(fused_a["red"].get<double>() -
                           want["a"]["live"]["red"].get<double>()) > 1e-6;
  }
  EXPECT_GT(calibrated, 30u);
}

struct BrokenShadow {
  std::string name;
  std::string params;  // test_model's params for the shadow
  std::string extra;   // modality lines (a timeout)
  std::string error;   // in the record's shadow error
};

void PrintTo(const BrokenShadow& broken, std::ostream* os) {
  *os << broken.name;
}

class BrokenShadowTest : public ::testing::TestWithParam<BrokenShadow> {};

// Whatever the shadow does, the records are those of the pipeline without it,
// byte for byte, apart from the shadow field, which holds the error. The model
// has on_error: fail, so a shadow failure taken for the model's would turn rows
// into errors.
TEST_P(BrokenShadowTest, NeverChangesFusedResultsOrStatuses) {
  const BrokenShadow& broken = GetParam();
  const std::string extra = "    on_error: fail\n" + broken.extra;
  const std::vector<std::string> input = {
      R"({"id": "both", "modalities": {"a": [1.0], "b": [0.5]}})",
      R"({"id": "a-only", "modalities": {"a": [-2.0]}})",
      R"({"id": "b-only", "modalities": {"b": [0.25]}})",
      R"({"id": "none", "modalities": {}})",
      R"({"id": "bad", "modalities": {"a": "text"}})",
      R"({"id": "both-2", "modalities": {"a": [0.5], "b": [-1.5]}})",
  };
  RunOptions options;
  options.batch_size = 3;
  options.output.per_modality = true;
  const Output with =
      LoadAndRun(TestModelYaml("{}", broken.params, extra), input, options);
  const Output without =
      LoadAndRun(TestModelYaml("{}", "", extra), input, options);
  ASSERT_EQ(with.lines.size(), input.size());
  // The line that did not parse has no shadow field: it is identical.
  EXPECT_EQ(with.lines[4], without.lines[4]);
  for (std::size_t i : {0, 1, 2, 3, 5}) {
    SCOPED_TRACE(input[i]);
    const json shadow = ShadowField(with.lines[i], without.lines[i]);
    const bool has_a = i == 0 || i == 1 || i == 5;
    ASSERT_EQ(shadow.size(), has_a ? 1u : 0u) << shadow;
    if (!has_a) continue;
    ASSERT_EQ(shadow["a"].size(), 1u) << shadow;
    EXPECT_THAT(shadow["a"].value("error", ""),
                AllOf(HasSubstr("modality 'a' shadow (test_model 1.0.0)"),
                      HasSubstr(broken.error)));
  }
  const ShadowCounts& counts = *with.summary.modalities[0].shadow;
  EXPECT_EQ(counts.failed, 3u);
  EXPECT_EQ(counts.compared, 0u);
  EXPECT_EQ(with.summary.ok, 4u);
  EXPECT_EQ(with.summary.error, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Failures, BrokenShadowTest,
    ::testing::Values(
        BrokenShadow{"Error", "{fail: always}", "", "test_model refuses row 0"},
        BrokenShadow{"Exception", "{throw: true}", "",
                     "test_model was told to throw"},
        BrokenShadow{"NaN", "{nan: true}", "", "returned nan as a probability"},
        BrokenShadow{"Timeout", "{sleep_ms: 400}", "    timeout_ms: 100\n",
                     "timed out after 100 ms"}),
    [](const auto& test) { return test.param.name; });

// A shadow failing on some batches only: those rows carry its error, the
// others are compared, and the totals count each.
TEST(ShadowTest, ShadowFailingSomeBatchesIsCountedPerRow) {
  const std::vector<std::string> input = {
      // Batch 1: a negative a, so the shadow's call fails for both rows.
      R"({"id": "1", "modalities": {"a": [-1.0], "b": [0.5]}})",
      R"({"id": "2", "modalities": {"a": [1.0]}})",
      // Batch 2: the shadow answers.
      R"({"id": "3", "modalities": {"a": [2.0], "b": [0.5]}})",
      R"({"id": "4", "modalities": {"a": [0.0], "b": [0.5]}})",
  };
  RunOptions options;
  options.batch_size = 2;
  const Output with =
      LoadAndRun(TestModelYaml("{}", "{fail: negative}"), input, options);
  const Output without = LoadAndRun(TestModelYaml("{}", ""), input, options);
  const std::vector<json> shadows = ShadowFields(with, without);
  ASSERT_EQ(shadows.size(), 4u);
  EXPECT_THAT(shadows[0]["a"].value("error", ""),
              HasSubstr("test_model refuses row 0"));
  EXPECT_EQ(shadows[1]["a"], shadows[0]["a"]);
  for (std::size_t i : {2, 3}) {
    // The same model twice: identical probabilities, agreement, no difference.
    EXPECT_EQ(shadows[i]["a"]["agree"], true) << shadows[i];
    EXPECT_EQ(shadows[i]["a"]["abs_diff"], 0.0) << shadows[i];
  }
  const ShadowCounts& counts = *with.summary.modalities[0].shadow;
  EXPECT_EQ(counts.failed, 2u);
  EXPECT_EQ(counts.compared, 2u);
  EXPECT_EQ(counts.agreed, 2u);
  EXPECT_EQ(counts.MeanAbsDiff(), 0.0);
}

// When the model fails, the shadow's answer is still reported but there is
// nothing to compare it with.
TEST(ShadowTest, ModelFailureLeavesTheShadowUncompared) {
  const Output out =
      LoadAndRun(TestModelYaml("{fail: always}", "{}"),
                 {R"({"id": "1", "modalities": {"a": [0.0], "b": [0.5]}})"});
  ASSERT_EQ(out.lines.size(), 1u);
  const json record = json::parse(out.lines[0]);
  EXPECT_EQ(record["status"], "ok") << record;
  EXPECT_TRUE(record["failed"].contains("a")) << record;
  const json& shadow = record["shadow"]["a"];
  ExpectDistribution(shadow["probabilities"], {{"neg", 0.5}, {"pos", 0.5}});
  EXPECT_TRUE(shadow["agree"].is_null()) << shadow;
  EXPECT_TRUE(shadow["abs_diff"].is_null()) << shadow;
  const ShadowCounts& counts = *out.summary.modalities[0].shadow;
  EXPECT_EQ(counts.compared, 0u);
  EXPECT_EQ(counts.failed, 0u);
}

// The shadow gets one call per batch holding exactly the model's rows.
TEST(ShadowTest, ShadowRunsOnExactlyTheRowsWhereItsModalityIsPresent) {
  testing::TempDir dir;
  const fs::path live_calls = dir.path() / "live.txt";
  const fs::path shadow_calls = dir.path() / "shadow.txt";
  const std::vector<std::string> input = {
      R"({"id": "1", "modalities": {"a": [0.1], "b": [0.5]}})",
      R"({"id": "2", "modalities": {"b": [0.5]}})",
      R"({"id": "3", "modalities": {"a": [0.3]}})",
      R"({"id": "4", "modalities": {"a": null, "b": [0.5]}})",
      R"({"id": "5", "modalities": {"b": [0.5]}})",
      R"({"id": "6", "modalities": {"a": [0.6]}})",
      R"({"id": "7", "modalities": {"a": [0.7]}})",
  };
  RunOptions options;
  options.batch_size = 3;
  const Output out = LoadAndRun(
      TestModelYaml(absl::StrCat("{calls_file: ", Quoted(live_calls), "}"),
                    absl::StrCat("{calls_file: ", Quoted(shadow_calls), "}")),
      input, options);
  EXPECT_EQ(testing::ReadLines(live_calls),
            (std::vector<std::string>{"2", "1", "1"}));
  EXPECT_EQ(testing::ReadLines(shadow_calls), testing::ReadLines(live_calls));
  const std::vector<bool> has_a = {true, false, true, false, false, true, true};
  for (std::size_t i = 0; i < input.size(); ++i) {
    const json shadow = json::parse(out.lines[i])["shadow"];
    EXPECT_EQ(shadow.contains("a"), has_a[i]) << out.lines[i];
    EXPECT_FALSE(shadow.contains("b")) << out.lines[i];
  }
  EXPECT_EQ(out.summary.modalities[0].shadow->compared, 4u);
}

// The shadow runs beside its model, not after it.
TEST(ShadowTest, ShadowRunsInParallelWithItsModel) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, TestModelYaml("{sleep_ms: 200}", "{sleep_ms: 200}"));
  ASSERT_NE(pipeline, nullptr);
  const auto start = std::chrono::steady_clock::now();
  const Output out = RunRecords(
      *pipeline, {R"({"id": "1", "modalities": {"a": [1.0], "b": [0.5]}})"});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(out.lines.size(), 1u);
  EXPECT_EQ(json::parse(out.lines[0])["shadow"]["a"]["agree"], true);
  // One after the other would take at least 400 ms.
  EXPECT_LT(elapsed, std::chrono::milliseconds(350))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
      << " ms";
}

// `latefuse fit` has no use for a shadow: it is not loaded (a shadow that
// cannot even be created does not stop fitting).
TEST(ShadowTest, FitModeDoesNotLoadTheShadow) {
  testing::TempDir dir;
  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(
      dir.Write("pipeline.yaml", TestModelYaml("{}", "{fail_create: true}")));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> fit =
      Pipeline::Load(*config, LoadMode::kFit);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ((*fit)->modalities()[0].shadow, nullptr);
  EXPECT_FALSE(Pipeline::Load(*config).ok());
}

// A pipeline whose shadow fails any check does not load, and says which model
// of which modality and why.
struct BadShadow {
  std::string name;
  std::string shadow;  // the `shadow:` value
  std::vector<std::string> message;
};

void PrintTo(const BadShadow& bad, std::ostream* os) { *os << bad.name; }

class BadShadowTest : public ::testing::TestWithParam<BadShadow> {};

TEST_P(BadShadowTest, PipelineDoesNotLoad) {
  const BadShadow& bad = GetParam();
  testing::TempDir dir;
  const std::string yaml = PipelineYaml(
      "classes: [neg, pos]\n",
      {Dense("a", 1, "{plugin: test_model}", bad.shadow)}, "{plugin: mean}");
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, yaml);
  ASSERT_FALSE(pipeline.ok()) << yaml;
  const std::string message(pipeline.status().message());
  for (const std::string& part : bad.message) {
    EXPECT_THAT(message, HasSubstr(part));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checks, BadShadowTest,
    ::testing::Values(
        BadShadow{"UnknownKey",
                  "{plugin: test_model, extra: 1}",
                  {"pipeline.yaml:9:34: modalities[0].shadow.extra: unknown "
                   "key 'extra'; allowed keys: plugin, version, sha256, "
                   "params"}},
        BadShadow{"NoPlugin",
                  "{params: {}}",
                  {"pipeline.yaml:9:13: modalities[0].shadow: missing required "
                   "key 'plugin'"}},
        BadShadow{"NotAMapping",
                  "test_model",
                  {"pipeline.yaml:9:13: modalities[0].shadow: expected a "
                   "mapping, got \"test_model\""}},
        BadShadow{"BadVersionConstraint",
                  "{plugin: test_model, version: \"^x\"}",
                  {"pipeline.yaml:9:43: modalities[0].shadow.version: invalid "
                   "version "
                   "constraint \"^x\""}},
        BadShadow{"NotFound",
                  "{plugin: no_such_model}",
                  {"shadow model of modality 'a': plugin 'no_such_model': not "
                   "found in plugin_dirs"}},
        BadShadow{"ACombiner",
                  "{plugin: mean}",
                  {"shadow model of modality 'a': plugin 'mean' (",
                   "is a combiner plugin, but the pipeline uses it as the "
                   "shadow model of modality 'a', which needs a model"}},
        BadShadow{"VersionNotSatisfied",
                  "{plugin: test_model, version: \">=2\"}",
                  {"shadow model of modality 'a': plugin 'test_model': ",
                   "no version satisfies >=2 (found 1.0.0)"}},
        BadShadow{
            "HashMismatch",
            "{plugin: test_model, sha256: " + std::string(64, '0') + "}",
            {"shadow model of modality 'a': plugin 'test_model' (", "sha256"}},
        BadShadow{"WrongWidth",
                  "{plugin: test_model, params: {width: 2}}",
                  {"shadow model of modality 'a': plugin 'test_model' (",
                   "describes its input as dense of width 2, but the "
                   "pipeline's modality 'a' gives it dense of width 1"}},
        BadShadow{"WrongClasses",
                  "{plugin: test_model, params: {classes: [pos, neg]}}",
                  {"shadow model of modality 'a': plugin 'test_model' (",
                   "describes classes [pos, neg], but the pipeline's classes "
                   "are [neg, pos]"}},
        BadShadow{"CreateFails",
                  "{plugin: test_model, params: {fail_create: true}}",
                  {"shadow model of modality 'a': plugin 'test_model' (",
                   "create failed", "asked to fail"}}),
    [](const auto& test) { return test.param.name; });

TEST(ShadowTest, ClassifierShadowInARegressionPipelineIsRefused) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(
          dir, RegressionYaml(Linear(Fixtures() / "linear/binary_noscaler/"
                                                  "model.json")));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(std::string(pipeline.status().message()),
              AllOf(StartsWith("shadow model of modality 'vitals': plugin "
                               "'linear' ("),
                    HasSubstr("create failed")));
}

TEST(ShadowTest, PlanShowsTheShadowAndItsFile) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, Fusion3Yaml(Fusion3V2Shadows()));
  ASSERT_NE(pipeline, nullptr);
  const std::string plan = pipeline->Plan();
  const fs::path linear = pipeline->modalities()[0].plugin.plugin.path;
  EXPECT_THAT(
      plan,
      HasSubstr(absl::StrCat(
          "    shadow: (compared with the model, never fused)\n"
          "      plugin:  linear ",
          pipeline->modalities()[0].shadow_plugin->plugin.descriptor->version,
          " (ABI ")));
  EXPECT_THAT(
      plan, HasSubstr(absl::StrCat("      file:    ", linear.string(), "\n")));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat(
                        "      params:  {\"model\":",
                        json((Fixtures() / "shadow/a_v2.json").string()).dump(),
                        "}\n")));
  EXPECT_FALSE(pipeline->modalities()[1].shadow_plugin.has_value());
  EXPECT_EQ(pipeline->modalities()[1].shadow, nullptr);
}

// `latefuse validate` prints the shadow in the plan; `latefuse run` prints
// each shadow's totals in its summary.
TEST(ShadowTest, CliValidateAndRunReportTheShadow) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", Fusion3Yaml(Fusion3V2Shadows()));
  std::string out;
  std::string err;
  const std::string cli = Quoted(testing::CliPath());
  ASSERT_EQ(testing::RunCommand(
                absl::StrCat(cli, " validate ", Quoted(pipeline)), &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("    shadow: (compared with the model, never "
                             "fused)\n      plugin:  linear "));

  ASSERT_EQ(testing::RunCommand(
                absl::StrCat(cli, " run ", Quoted(pipeline), " --input ",
                             Quoted(Fixtures() / "fusion3/input.jsonl")),
                &out, &err),
            0)
      << err;
  const json totals =
      testing::ReadJson(Fixtures() / "shadow/summary.json")["fusion3"];
  for (const char* m : {"a", "c"}) {
    const json& t = totals[m];
    EXPECT_THAT(err, HasSubstr(absl::StrFormat(
                         "  %s  present  66.7%%  used  66.7%%  failed 0\n"
                         "     shadow: %d rows compared, argmax agreement "
                         "%.1f%%, mean |p diff| %.4g, failed 0\n",
                         m, t["compared"].get<int>(),
                         100 * t["agreement"].get<double>(),
                         t["mean_abs_diff"].get<double>())))
        << err;
  }
  EXPECT_THAT(err, HasSubstr("  b  present"));
  std::istringstream records(out);
  std::size_t lines = 0;
  for (std::string line; std::getline(records, line); ++lines) {
    EXPECT_TRUE(json::parse(line).contains("shadow")) << line;
  }
  EXPECT_EQ(lines, 60u);
}

}  // namespace
}  // namespace latefuse
