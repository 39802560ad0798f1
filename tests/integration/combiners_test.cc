// The in-tree fusion rules (geometric, max, min, median, vote, gated,
// weighted_mean) against their NumPy references in tests/fixtures/combiners/
// (made by tests/fixtures/make_combiner_fixtures.py; see the README there):
// real `linear` models and real combiner libraries run by the real host, on
// every row of the binary and 3-class fusion fixtures, rows with modalities
// missing, exact zeros and vote ties included. Then their explanations, the
// params each rejects at pipeline load, parameter files, and the Fit of
// weighted_mean and gated called through the C ABI, as the host's fit would.
//
// Tolerance: 1e-9 absolute (fitted optima: 1e-4 in log loss). Worst
// differences observed (each test prints its own): 4.4e-16 (fusion/geometric),
// at most 2.2e-16 for every other rule and fixture, 0 for vote; the fitted
// weighted_mean log loss and gated objective within 4e-16 of the reference
// optima.
#include <latefuse/plugin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/host_api.h"
#include "core/pipeline.h"
#include "core/plugin_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-9;
const std::vector<std::string> kModalities = {"a", "b", "c"};

fs::path Fixtures() { return testing::SourceDir() / "tests" / "fixtures"; }

// `params` with a relative `model` path made absolute against `folder`, as the
// pipeline (written elsewhere) needs it.
json ResolveModel(json params, const fs::path& folder) {
  if (params.contains("model") && fs::path(params["model"]).is_relative()) {
    params["model"] = (folder / params["model"].get<std::string>()).string();
  }
  return params;
}

// The pipeline of a fusion fixture: linear models a (5 features), b (3) and c
// (4) from tests/fixtures/<fixture>/, and `combiner`, a YAML flow mapping (JSON
// is valid YAML).
std::string FusionPipeline(const std::string& fixture,
                           const std::string& combiner) {
  const fs::path models = Fixtures() / fixture;
  json doc = {
      {"apiVersion", "latefuse/v1"},
      {"name", "combiners"},
      {"task", "classification"},
      {"classes", testing::ReadJson(models / "a.json")["classes"]},
      {"plugin_dirs", {testing::PluginDir().string()}},
      {"policy", {{"min_modalities", 1}, {"on_insufficient", "abstain"}}}};
  const std::vector<int> widths = {5, 3, 4};
  for (std::size_t k = 0; k < kModalities.size(); ++k) {
    doc["modalities"].push_back(
        {{"name", kModalities[k]},
         {"input", {{"kind", "dense"}, {"size", widths[k]}}},
         {"model",
          {{"plugin", "linear"},
           {"params",
            {{"model", (models / (kModalities[k] + ".json")).string()}}}}}});
  }
  // The combiner last, as written, so that load errors quote it verbatim.
  std::string yaml = doc.dump();
  yaml.pop_back();
  return yaml + ", \"combiner\": " + combiner + "}\n";
}

std::string CombinerYaml(const std::string& plugin, const json& params) {
  return json{{"plugin", plugin}, {"params", params}}.dump();
}

// Runs every input line of a fixture through a pipeline; explanations on.
std::vector<json> RunFixture(Pipeline& pipeline, const fs::path& input,
                             std::size_t batch_size) {
  RunOptions options;
  options.batch_size = batch_size;
  options.engine.explain = true;
  options.output.explain = true;
  return testing::RunLines(pipeline, testing::ReadLines(input), options);
}

std::unique_ptr<Pipeline> MustLoad(const testing::TempDir& dir,
                                   const std::string& yaml) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, yaml);
  EXPECT_TRUE(pipeline.ok()) << pipeline.status() << "\n" << yaml;
  return pipeline.ok() ? *std::move(pipeline) : nullptr;
}

// |actual - expected| over the keys of `expected` (a {name: number} object),
// each checked within kTolerance.
double WorstOver(const json& actual, const json& expected,
                 const std::string& where) {
  double worst = 0.0;
  EXPECT_EQ(actual.size(), expected.size()) << where << ": " << actual;
  for (const auto& [key, want] : expected.items()) {
    if (!actual.contains(key) || !actual[key].is_number()) {
      ADD_FAILURE() << where << ": no number for " << key << " in " << actual;
      return INFINITY;
    }
    const double got = actual[key].get<double>();
    EXPECT_NEAR(got, want.get<double>(), kTolerance) << where << ", " << key;
    worst = std::max(worst, std::abs(got - want.get<double>()));
  }
  return worst;
}

// The first class (in pipeline order) of largest expected probability, when
// that is clear: the top two differ by more than rounding, or are exactly
// equal (the host then names the first, and so does the reference).
std::string ClearLabel(const std::vector<std::string>& classes,
                       const json& probabilities) {
  std::string best;
  double top = -1.0, second = -1.0;
  for (const std::string& label : classes) {
    const double p = probabilities[label].get<double>();
    if (p > top) {
      second = top;
      top = p;
      best = label;
    } else if (p > second) {
      second = p;
    }
  }
  return top - second > 1e-12 || top == second ? best : "";
}

// ---- Every rule equals its reference on every row ---------------------------

using ReferenceCase = std::tuple<std::string, std::string>;  // fixture, case

class CombinerReferenceTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(CombinerReferenceTest, FusedRowsAndExplanationsMatchNumPyReference) {
  const auto& [fixture, name] = GetParam();
  const fs::path folder = Fixtures() / "combiners" / fixture;
  const json spec = testing::ReadJson(folder / "cases.json")[name];
  const auto classes =
      testing::ReadJson(Fixtures() / fixture / "a.json")["classes"]
          .get<std::vector<std::string>>();
  const std::vector<std::string> expected_lines =
      testing::ReadLines(folder / ("expected_" + name + ".jsonl"));
  ASSERT_GT(expected_lines.size(), 60u);

  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = MustLoad(
      dir, FusionPipeline(fixture,
                          CombinerYaml(spec["plugin"],
                                       ResolveModel(spec["params"], folder))));
  ASSERT_NE(pipeline, nullptr);
  ASSERT_TRUE(pipeline->combiner().explains());

  // One batch, then batches of 5 that cut across the presence patterns.
  double worst = 0.0;
  for (const std::size_t batch_size : {std::size_t{256}, std::size_t{5}}) {
    const std::vector<json> records =
        RunFixture(*pipeline, folder / "input.jsonl", batch_size);
    ASSERT_EQ(records.size(), expected_lines.size());
    int abstained = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json& record = records[i];
      const json expected = json::parse(expected_lines[i]);
      const std::string where =
          fixture + "/" + name + " " + expected["id"].get<std::string>() +
          " (batch size " + std::to_string(batch_size) + ")";
      ASSERT_EQ(record["id"], expected["id"]) << where;
      EXPECT_EQ(record["used"], expected["used"]) << where;
      EXPECT_EQ(record["missing"], expected["missing"]) << where;
      if (expected["probabilities"].is_null()) {
        ++abstained;
        EXPECT_EQ(record["status"], "abstain") << where << ": " << record;
        EXPECT_TRUE(record["probabilities"].is_null()) << where;
        EXPECT_FALSE(record.contains("weights")) << where;
        continue;
      }
      ASSERT_EQ(record["status"], "ok") << where << ": " << record;
      worst = std::max(worst, WorstOver(record["probabilities"],
                                        expected["probabilities"], where));
      const std::string label = ClearLabel(classes, expected["probabilities"]);
      if (!label.empty()) {
        EXPECT_EQ(record["label"], label) << where;
      }

      // The explanation: the reference's weights, 0 for every missing
      // modality, summing to 1.
      ASSERT_TRUE(record.contains("weights")) << where << ": " << record;
      worst = std::max(worst, WorstOver(record["weights"], expected["weights"],
                                        where + " weights"));
      double sum = 0.0;
      for (const auto& [modality, weight] : record["weights"].items()) {
        sum += weight.get<double>();
      }
      EXPECT_NEAR(sum, 1.0, 1e-12) << where;
      for (const json& modality : expected["missing"]) {
        EXPECT_EQ(record["weights"][modality.get<std::string>()], 0.0) << where;
      }
    }
    EXPECT_EQ(abstained, 2) << "the fixture has two rows with no modality";
  }
  std::cout << fixture << "/" << name
            << ": worst absolute difference from the reference " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

std::string ReferenceCaseName(
    const ::testing::TestParamInfo<ReferenceCase>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CombinerReferenceTest,
    ::testing::Combine(::testing::Values("fusion", "fusion3"),
                       ::testing::Values("geometric", "geometric_weighted",
                                         "max", "min", "median", "vote",
                                         "vote_weighted", "gated_max",
                                         "gated_entropy", "gated_model",
                                         "weighted_mean",
                                         "weighted_mean_model")),
    ReferenceCaseName);

// ---- Parameter files equal the same parameters inline
// ------------------------

class ParameterFileTest : public ::testing::TestWithParam<std::string> {};

// Runs a fixture's input with `first` and with `second` (case names of its
// cases.json) and expects the very same output.
void ExpectSameOutput(const std::string& fixture, const std::string& first,
                      const std::string& second) {
  const fs::path folder = Fixtures() / "combiners" / fixture;
  const json cases = testing::ReadJson(folder / "cases.json");
  std::vector<std::vector<json>> outputs;
  for (const std::string& name : {first, second}) {
    testing::TempDir dir;
    std::unique_ptr<Pipeline> pipeline = MustLoad(
        dir, FusionPipeline(
                 fixture,
                 CombinerYaml(cases[name]["plugin"],
                              ResolveModel(cases[name]["params"], folder))));
    ASSERT_NE(pipeline, nullptr);
    outputs.push_back(RunFixture(*pipeline, folder / "input.jsonl", 256));
  }
  ASSERT_EQ(outputs[0].size(), outputs[1].size());
  for (std::size_t i = 0; i < outputs[0].size(); ++i) {
    EXPECT_EQ(outputs[0][i], outputs[1][i]) << first << " vs " << second;
  }
}

TEST_P(ParameterFileTest, WeightedMeanFromModelFileEqualsInlineWeights) {
  ExpectSameOutput(GetParam(), "weighted_mean", "weighted_mean_model");
}

TEST_P(ParameterFileTest, GatedFromModelFileInAnotherOrderEqualsInlineGate) {
  ExpectSameOutput(GetParam(), "gated_max", "gated_model");
}

std::string FixtureName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ParameterFileTest,
                         ::testing::Values("fusion", "fusion3"), FixtureName);

// ---- Bad params are rejected at pipeline load, naming the key
// -----------------

struct BadParams {
  std::string test_name;
  std::string combiner;  // YAML flow mapping; $DIR is the pipeline's folder
  std::string file;      // written as $DIR/params.json when not empty
  std::string message;
};

class BadParamsTest : public ::testing::TestWithParam<BadParams> {};

TEST_P(BadParamsTest, RejectedAtLoadWithMessageNamingTheKey) {
  const BadParams& param = GetParam();
  testing::TempDir dir;
  if (!param.file.empty()) dir.Write("params.json", param.file);
  std::string combiner = param.combiner;
  for (std::size_t at; (at = combiner.find("$DIR")) != std::string::npos;) {
    combiner.replace(at, 4, dir.path().string());
  }
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, FusionPipeline("fusion", combiner));
  ASSERT_FALSE(pipeline.ok()) << combiner;
  std::string message(pipeline.status().message());
  for (std::size_t at;
       (at = message.find(dir.path().string())) != std::string::npos;) {
    message.replace(at, dir.path().string().size(), "$DIR");
  }
  EXPECT_THAT(message, HasSubstr(param.message));
}

std::string BadParamsName(const ::testing::TestParamInfo<BadParams>& info) {
  return info.param.test_name;
}

const char kGoodGate[] =
    R"({"format": "latefuse.gated/v1", "confidence": "max",
        "modalities": ["a", "b", "c"], "a": [0, 0, 0], "b": [1, 1, 1]})";

INSTANTIATE_TEST_SUITE_P(
    Combiners, BadParamsTest,
    ::testing::Values(
        BadParams{"GeometricUnknownParameter",
                  "{plugin: geometric, params: {weight: {a: 1}}}", "",
                  "params.weight: unknown parameter (expected weights)"},
        BadParams{"GeometricUnknownModality",
                  "{plugin: geometric, params: {weights: {a: 1, b: 1, c: 1, "
                  "labs: 2}}}",
                  "", "params.weights.labs: no such modality in the pipeline"},
        BadParams{"GeometricNegativeWeight",
                  "{plugin: geometric, params: {weights: {a: 1, b: -1, c: 1}}}",
                  "",
                  "params.weights.b: expected a positive finite weight, got "
                  "-1"},
        BadParams{"GeometricWeightMissingForAModality",
                  "{plugin: geometric, params: {weights: {a: 1, b: 1}}}", "",
                  "params.weights: no value for modality 'c'"},
        BadParams{"VoteZeroWeight",
                  "{plugin: vote, params: {weights: {a: 0, b: 1, c: 1}}}", "",
                  "params.weights.a: expected a positive finite weight, got 0"},
        BadParams{"VoteWeightNotANumber",
                  "{plugin: vote, params: {weights: {a: heavy, b: 1, c: 1}}}",
                  "", "params.weights.a: expected a number, got \"heavy\""},
        BadParams{"VoteWeightsNotAMapping",
                  "{plugin: vote, params: {weights: [1, 2, 3]}}", "",
                  "params.weights: expected a mapping of modality to number"},
        BadParams{"MaxTakesNoParameters",
                  "{plugin: max, params: {weights: {a: 1}}}", "",
                  "params.weights: unknown parameter (this plugin takes none)"},
        BadParams{"MinTakesNoParameters", "{plugin: min, params: {floor: 0}}",
                  "",
                  "params.floor: unknown parameter (this plugin takes none)"},
        BadParams{"MedianTakesNoParameters",
                  "{plugin: median, params: {even: mean}}", "",
                  "params.even: unknown parameter (this plugin takes none)"},
        BadParams{"GatedUnknownConfidence",
                  "{plugin: gated, params: {confidence: variance}}", "",
                  "params.confidence: expected max or entropy, got "
                  "\"variance\""},
        BadParams{"GatedUnknownParameter",
                  "{plugin: gated, params: {temperature: 2}}", "",
                  "params.temperature: unknown parameter (expected "
                  "confidence, a, b or model)"},
        BadParams{"GatedBiasMissingForAModality",
                  "{plugin: gated, params: {a: {a: 1, b: 0}}}", "",
                  "params.a: no value for modality 'c'"},
        BadParams{"GatedSlopeForUnknownModality",
                  "{plugin: gated, params: {b: {a: 1, b: 1, c: 1, x: 1}}}", "",
                  "params.b.x: no such modality in the pipeline"},
        BadParams{"GatedModelFileAndInlineGate",
                  "{plugin: gated, params: {model: $DIR/params.json, b: {a: "
                  "1, b: 1, c: 1}}}",
                  kGoodGate,
                  "params.b: give either the model file or inline "
                  "confidence, a and b"},
        BadParams{"GatedModelFileMissing",
                  "{plugin: gated, params: {model: $DIR/none.json}}", "",
                  "params.model ('$DIR/none.json'): cannot open the file"},
        BadParams{"GatedModelFileOfAnotherFormat",
                  "{plugin: gated, params: {model: $DIR/params.json}}",
                  R"({"format": "latefuse.weighted_mean/v1"})",
                  "params.model ('$DIR/params.json'): format: expected "
                  "\"latefuse.gated/v1\", got \"latefuse.weighted_mean/v1\""},
        BadParams{"GatedModelFileOfOtherModalities",
                  "{plugin: gated, params: {model: $DIR/params.json}}",
                  R"({"format": "latefuse.gated/v1", "confidence": "max",
                      "modalities": ["a", "b", "x"], "a": [0, 0, 0],
                      "b": [1, 1, 1]})",
                  "params.model ('$DIR/params.json'): modalities: "
                  "[\"a\",\"b\",\"x\"] are not the pipeline's modalities"},
        BadParams{"GatedModelFileWithShortList",
                  "{plugin: gated, params: {model: $DIR/params.json}}",
                  R"({"format": "latefuse.gated/v1", "confidence": "max",
                      "modalities": ["a", "b", "c"], "a": [0, 0],
                      "b": [1, 1, 1]})",
                  "params.model ('$DIR/params.json'): a: expected a list of "
                  "3 numbers, one per modality"},
        BadParams{"GatedModelFileUnknownKey",
                  "{plugin: gated, params: {model: $DIR/params.json}}",
                  R"({"format": "latefuse.gated/v1", "confidence": "max",
                      "modalities": ["a", "b", "c"], "a": [0, 0, 0],
                      "b": [1, 1, 1], "temperature": 2})",
                  "params.model ('$DIR/params.json'): temperature: unknown "
                  "key"},
        BadParams{"WeightedMeanWeightsAndModelFile",
                  "{plugin: weighted_mean, params: {model: $DIR/params.json, "
                  "weights: {a: 1, b: 1, c: 1}}}",
                  "{}", "params.model: give either weights or model, not both"},
        BadParams{"WeightedMeanNeitherWeightsNorModelFile",
                  "{plugin: weighted_mean, params: {}}", "",
                  "params.weights: missing required parameter (or give model: "
                  "a latefuse.weighted_mean/v1 file)"},
        BadParams{"WeightedMeanModelFileWithNegativeWeight",
                  "{plugin: weighted_mean, params: {model: $DIR/params.json}}",
                  R"({"format": "latefuse.weighted_mean/v1",
                      "modalities": ["a", "b", "c"],
                      "weights": {"a": 1, "b": -2, "c": 1}})",
                  "params.model ('$DIR/params.json'): weights.b: expected a "
                  "positive finite weight, got -2"},
        BadParams{"WeightedMeanModelFileNotJson",
                  "{plugin: weighted_mean, params: {model: $DIR/params.json}}",
                  "weights: [1, 2]",
                  "params.model ('$DIR/params.json'): not a JSON object"}),
    BadParamsName);

// ---- Fit, called through the C ABI
// -------------------------------------------

// A combiner library's function table, loaded as the host loads it.
const LfCombinerApi* CombinerApi(const std::string& plugin) {
  absl::StatusOr<LoadedPlugin> loaded =
      LoadPluginFile(testing::PluginFile(plugin));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return nullptr;
  EXPECT_EQ(loaded->descriptor->kind, LF_KIND_COMBINER);
  return loaded->descriptor->combiner;
}

// tests/fixtures/combiners/fit/data.json in the ABI's layout.
struct FitFixture {
  std::vector<std::string> classes;
  std::vector<std::string> modalities;
  std::size_t rows = 0;
  std::vector<double> probabilities;  // [K, rows, C]
  std::vector<std::uint8_t> present;  // [K, rows]
  std::vector<std::int32_t> labels;   // [rows]

  static FitFixture Read() {
    const json data = testing::ReadJson(Fixtures() / "combiners/fit/data.json");
    FitFixture out;
    out.classes = data["classes"].get<std::vector<std::string>>();
    out.modalities = data["modalities"].get<std::vector<std::string>>();
    out.labels = data["labels"].get<std::vector<std::int32_t>>();
    out.rows = out.labels.size();
    for (const json& modality : data["probabilities"]) {
      for (const json& row : modality) {
        for (const json& p : row) out.probabilities.push_back(p.get<double>());
      }
    }
    for (const json& modality : data["present"]) {
      for (const json& flag : modality) {
        out.present.push_back(flag.get<std::uint8_t>());
      }
    }
    return out;
  }

  std::size_t K() const { return modalities.size(); }
  std::size_t C() const { return classes.size(); }
  bool Present(std::size_t k, std::size_t r) const {
    return present[k * rows + r] != 0;
  }
  bool AnyPresent(std::size_t r) const {
    for (std::size_t k = 0; k < K(); ++k) {
      if (Present(k, r)) return true;
    }
    return false;
  }
};

// What the host hands the plugin for the fit fixture's pipeline.
std::unique_ptr<testing::PluginContext> ContextFor(const FitFixture& data,
                                                   const json& params) {
  return std::make_unique<testing::PluginContext>(
      params.dump(), Fixtures(), data.classes, data.modalities);
}

// Calls the plugin's fit on `data` with `options`; the parameter file's text.
absl::StatusOr<std::string> FitThroughAbi(const LfCombinerApi* api,
                                          const FitFixture& data,
                                          const json& options) {
  const LfFitData fit_data = {sizeof(LfFitData),
                              data.K(),
                              data.rows,
                              data.C(),
                              data.probabilities.data(),
                              data.present.data(),
                              data.labels.data(),
                              /*seed=*/42};
  return testing::FitThroughAbi(*api, *ContextFor(data, options), fit_data);
}

// Creates the combiner from `params` and combines the fit fixture's rows that
// have a modality present: [those rows, C].
absl::StatusOr<std::vector<double>> CombineThroughAbi(const LfCombinerApi* api,
                                                      const FitFixture& data,
                                                      const json& params) {
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < data.rows; ++r) {
    if (data.AnyPresent(r)) rows.push_back(r);
  }
  const std::size_t n = rows.size(), K = data.K(), C = data.C();
  std::vector<double> probabilities(K * n * C);
  std::vector<std::uint8_t> present(K * n);
  for (std::size_t k = 0; k < K; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      present[k * n + i] = data.present[k * data.rows + rows[i]];
      std::copy_n(data.probabilities.data() + (k * data.rows + rows[i]) * C, C,
                  probabilities.data() + (k * n + i) * C);
    }
  }
  const std::unique_ptr<testing::PluginContext> context =
      ContextFor(data, params);
  void* instance = nullptr;
  absl::Status status =
      TakeStatus(api->create(context->get(), &instance), "create");
  if (!status.ok()) return status;
  std::vector<double> fused(n * C);
  const LfCombineInput input = {
      sizeof(LfCombineInput), K, n, C, probabilities.data(), present.data()};
  LfCombineOutput output = {sizeof(LfCombineOutput), fused.data(), nullptr};
  status = TakeStatus(api->combine(instance, &input, &output), "combine");
  api->destroy(instance);
  if (!status.ok()) return status;
  return fused;
}

// Mean log loss of `fused` ([usable rows, C]) against the fixture's labels.
double MeanLogLoss(const FitFixture& data, const std::vector<double>& fused) {
  double total = 0.0;
  std::size_t i = 0;
  for (std::size_t r = 0; r < data.rows; ++r) {
    if (!data.AnyPresent(r)) continue;
    total -= std::log(fused[i * data.C() + data.labels[r]]);
    ++i;
  }
  return total / static_cast<double>(i);
}

// Writes `text` as `name` in `dir` and returns params naming it as `model`.
json ModelParams(const testing::TempDir& dir, const std::string& name,
                 const std::string& text) {
  return {{"model", dir.Write(name, text).string()}};
}

class CombinerFitTest : public ::testing::Test {
 protected:
  // Fits `plugin` through the ABI with the reference's options for it; sets
  // *api to the plugin's function table.
  absl::StatusOr<std::string> ReferenceFit(const std::string& plugin,
                                           const LfCombinerApi** api) {
    *api = CombinerApi(plugin);
    if (*api == nullptr) return absl::NotFoundError(plugin);
    return FitThroughAbi(*api, data_, reference_[plugin]["options"]);
  }

  FitFixture data_ = FitFixture::Read();
  json reference_ =
      testing::ReadJson(Fixtures() / "combiners/fit/reference.json");
};

TEST_F(CombinerFitTest, WeightedMeanFitFavoursInformativeModalityAtOptimum) {
  const LfCombinerApi* api = nullptr;
  absl::StatusOr<std::string> text = ReferenceFit("weighted_mean", &api);
  ASSERT_TRUE(text.ok()) << text.status();
  const json& want = reference_["weighted_mean"];
  const json file = json::parse(*text);
  EXPECT_EQ(file["format"], "latefuse.weighted_mean/v1");
  EXPECT_EQ(file["modalities"], json(kModalities));
  const json& w = file["weights"];
  EXPECT_GT(w["a"].get<double>(), w["b"].get<double>()) << w;
  EXPECT_GT(w["b"].get<double>(), w["c"].get<double>()) << w;
  for (const std::string& m : kModalities) {
    EXPECT_NEAR(w[m].get<double>(), want["weights"][m].get<double>(), 1e-3)
        << m;
  }

  testing::TempDir dir;
  absl::StatusOr<std::vector<double>> fitted =
      CombineThroughAbi(api, data_, ModelParams(dir, "wm.json", *text));
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  absl::StatusOr<std::vector<double>> equal = CombineThroughAbi(
      api, data_, {{"weights", {{"a", 1.0}, {"b", 1.0}, {"c", 1.0}}}});
  ASSERT_TRUE(equal.ok()) << equal.status();
  const double fitted_loss = MeanLogLoss(data_, *fitted);
  const double equal_loss = MeanLogLoss(data_, *equal);
  EXPECT_NEAR(equal_loss, want["equal_weights_log_loss"].get<double>(), 1e-12);
  EXPECT_LE(fitted_loss, equal_loss);
  EXPECT_NEAR(fitted_loss, want["log_loss"].get<double>(), 1e-4);
  std::cout << std::setprecision(12) << "weighted_mean fit: log loss "
            << fitted_loss << ", reference " << want["log_loss"]
            << " (difference "
            << std::abs(fitted_loss - want["log_loss"].get<double>())
            << "), equal weights " << equal_loss << "\n";
}

TEST_F(CombinerFitTest, GatedFitLowersLogLossToReferenceOptimum) {
  const LfCombinerApi* api = nullptr;
  absl::StatusOr<std::string> text = ReferenceFit("gated", &api);
  ASSERT_TRUE(text.ok()) << text.status();
  const json& want = reference_["gated"];
  const json file = json::parse(*text);
  EXPECT_EQ(file["format"], "latefuse.gated/v1");
  EXPECT_EQ(file["confidence"], "max");
  EXPECT_EQ(file["modalities"], json(kModalities));
  const auto a = file["a"].get<std::vector<double>>();
  const auto b = file["b"].get<std::vector<double>>();
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);

  testing::TempDir dir;
  absl::StatusOr<std::vector<double>> fitted =
      CombineThroughAbi(api, data_, ModelParams(dir, "gate.json", *text));
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  absl::StatusOr<std::vector<double>> zero = CombineThroughAbi(api, data_, {});
  ASSERT_TRUE(zero.ok()) << zero.status();
  const double l2 = want["options"]["l2"].get<double>();
  double penalty = 0.0;
  for (std::size_t k = 0; k < 3; ++k) penalty += a[k] * a[k] + b[k] * b[k];
  const double objective = MeanLogLoss(data_, *fitted) + l2 * penalty;
  const double zero_objective = MeanLogLoss(data_, *zero);
  EXPECT_NEAR(zero_objective, want["zero_objective"].get<double>(), 1e-12);
  EXPECT_LT(objective, zero_objective - 0.01);
  EXPECT_NEAR(objective, want["objective"].get<double>(), 1e-4);
  std::cout << std::setprecision(12) << "gated fit: objective " << objective
            << ", reference " << want["objective"] << " (difference "
            << std::abs(objective - want["objective"].get<double>())
            << "), a = b = 0 " << zero_objective << "\n";
}

TEST_F(CombinerFitTest, FittedFilesLoadBackGivingTheSamePredictionsAsInline) {
  for (const std::string plugin : {"weighted_mean", "gated"}) {
    const LfCombinerApi* api = nullptr;
    absl::StatusOr<std::string> text = ReferenceFit(plugin, &api);
    ASSERT_TRUE(text.ok()) << text.status();
    const json file = json::parse(*text);
    json inline_params;
    if (plugin == "weighted_mean") {
      inline_params = {{"weights", file["weights"]}};
    } else {
      inline_params = {{"confidence", file["confidence"]}};
      for (std::size_t k = 0; k < kModalities.size(); ++k) {
        inline_params["a"][kModalities[k]] = file["a"][k];
        inline_params["b"][kModalities[k]] = file["b"][k];
      }
    }
    testing::TempDir dir;
    absl::StatusOr<std::vector<double>> from_file =
        CombineThroughAbi(api, data_, ModelParams(dir, "fitted.json", *text));
    absl::StatusOr<std::vector<double>> from_inline =
        CombineThroughAbi(api, data_, inline_params);
    ASSERT_TRUE(from_file.ok()) << from_file.status();
    ASSERT_TRUE(from_inline.ok()) << from_inline.status();
    EXPECT_EQ(*from_file, *from_inline) << plugin;
  }
}

TEST_F(CombinerFitTest, FitIsRepeatable) {
  for (const std::string plugin : {"weighted_mean", "gated"}) {
    const LfCombinerApi* api = nullptr;
    absl::StatusOr<std::string> first = ReferenceFit(plugin, &api);
    absl::StatusOr<std::string> second = ReferenceFit(plugin, &api);
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(*first, *second) << plugin;
  }
}

TEST_F(CombinerFitTest, GatedFitWithEntropyConfidenceLowersLogLoss) {
  const LfCombinerApi* api = CombinerApi("gated");
  ASSERT_NE(api, nullptr);
  absl::StatusOr<std::string> text =
      FitThroughAbi(api, data_, {{"confidence", "entropy"}});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(json::parse(*text)["confidence"], "entropy");
  testing::TempDir dir;
  absl::StatusOr<std::vector<double>> fitted =
      CombineThroughAbi(api, data_, ModelParams(dir, "gate.json", *text));
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_LT(MeanLogLoss(data_, *fitted),
            reference_["gated"]["zero_objective"].get<double>() - 0.01);
}

TEST_F(CombinerFitTest, FitRejectsBadOptionsAndData) {
  const LfCombinerApi* weighted_mean = CombinerApi("weighted_mean");
  const LfCombinerApi* gated = CombinerApi("gated");
  ASSERT_NE(weighted_mean, nullptr);
  ASSERT_NE(gated, nullptr);
  auto message = [&](const LfCombinerApi* api, const FitFixture& data,
                     const json& options) {
    absl::StatusOr<std::string> text = FitThroughAbi(api, data, options);
    EXPECT_FALSE(text.ok()) << options;
    return text.ok() ? std::string() : std::string(text.status().message());
  };
  EXPECT_THAT(message(weighted_mean, data_, {{"l2", -1}}),
              HasSubstr("params.l2: expected a non-negative finite number"));
  EXPECT_THAT(message(weighted_mean, data_, {{"weights", {{"a", 1}}}}),
              HasSubstr("params.weights: unknown parameter (expected l2)"));
  EXPECT_THAT(message(gated, data_, {{"confidence", "margin"}}),
              HasSubstr("params.confidence: expected max or entropy"));
  EXPECT_THAT(message(gated, data_, {{"l2", "strong"}}),
              HasSubstr("params.l2: expected a number, got \"strong\""));

  FitFixture bad_label = data_;
  bad_label.labels[7] = 3;
  EXPECT_THAT(message(gated, bad_label, json::object()),
              HasSubstr("fit data: row 7: label index out of range"));
  FitFixture none_present = data_;
  std::fill(none_present.present.begin(), none_present.present.end(), 0);
  EXPECT_THAT(message(weighted_mean, none_present, json::object()),
              HasSubstr("no row has a modality present"));
}

TEST(CombinerDescriptorTest, OnlyWeightedMeanAndGatedAreTrainable) {
  for (const std::string plugin :
       {"geometric", "max", "min", "median", "vote"}) {
    absl::StatusOr<LoadedPlugin> loaded =
        LoadPluginFile(testing::PluginFile(plugin));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(std::string(loaded->descriptor->version), "1.0.0") << plugin;
    EXPECT_EQ(loaded->descriptor->combiner->fit, nullptr) << plugin;
  }
  for (const auto& [plugin, version] :
       {std::pair{"weighted_mean", "1.2.0"}, std::pair{"gated", "1.0.0"}}) {
    absl::StatusOr<LoadedPlugin> loaded =
        LoadPluginFile(testing::PluginFile(plugin));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(std::string(loaded->descriptor->version), version) << plugin;
    EXPECT_NE(loaded->descriptor->combiner->fit, nullptr) << plugin;
  }
}

}  // namespace
}  // namespace latefuse
