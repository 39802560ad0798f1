// The dropout-trained stacker on the demo (configs/demo/stacking.yaml): fitted
// by `latefuse fit` on configs/demo/data/fit.jsonl, then measured on
// configs/demo/data/patients.jsonl under every subset of present modalities,
// beside the best single modality present. A late-fusion combiner earns its
// place only if fusing never does clearly worse than the best modality it was
// given.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/fit.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

// The demo's modalities (configs/demo/stacking.yaml): name, input, plugin.
struct Modality {
  std::string name;
  std::string input;
  std::string plugin;
};
const std::vector<Modality> kDemo = {
    {"vitals", "{kind: dense, size: 12}", "linear"},
    {"labs", "{kind: dense, size: 8}", "linear"},
    {"imaging", "{kind: dense, size: 16}", "linear"},
    {"notes", "{kind: text}", "tfidf_linear"},
    {"wearable", "{kind: dense, size: 6}", "xgboost"},
};
// Subsets with fewer rows than this are printed but not asserted on: a
// 2-point accuracy gap is noise over a few dozen rows.
constexpr std::size_t kMinRowsToAssert = 50;

fs::path DemoDir() { return testing::SourceDir() / "configs/demo"; }

std::string StackingPipeline(const fs::path& model_file) {
  std::string yaml = absl::StrCat(
      "apiVersion: latefuse/v1\nname: demo-stacking\nclasses: [stable, "
      "deteriorating]\nplugin_dirs: ['",
      testing::PluginDir().string(), "']\nmodalities:\n");
  for (const Modality& m : kDemo) {
    absl::StrAppend(&yaml, "  - name: ", m.name, "\n    input: ", m.input,
                    "\n    model: {plugin: ", m.plugin, ", params: {model: '",
                    (DemoDir() / "models" / (m.name + ".json")).string(),
                    "'}}\n");
  }
  absl::StrAppend(&yaml, "combiner:\n  plugin: stacking\n  params: {model: '",
                  model_file.string(),
                  "'}\n  fit: {l2_C: 1.0, modality_dropout: 0.3, "
                  "missing_indicators: true}\n");
  return yaml;
}

std::string Argmax(const nlohmann::json& probabilities) {
  return probabilities["deteriorating"].get<double>() >
                 probabilities["stable"].get<double>()
             ? "deteriorating"
             : "stable";
}

TEST(DemoStackingTest, StackerIsNeverTwoPointsBelowTheBestPresentModality) {
  testing::TempDir dir;
  const fs::path model_file = dir.path() / "fitted/stacking.json";
  const fs::path pipeline_file =
      dir.Write("pipeline.yaml", StackingPipeline(model_file));

  // Fit, as `latefuse fit pipeline.yaml --data fit.jsonl --out fitted` does.
  {
    absl::StatusOr<PipelineConfig> config = LoadPipelineFile(pipeline_file);
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
        Pipeline::Load(*std::move(config), LoadMode::kFit);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    FitOptions options;
    options.data = DemoDir() / "data/fit.jsonl";
    options.out_dir = dir.path() / "fitted";
    absl::StatusOr<FitReport> report = FitPipeline(**pipeline, options);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_TRUE(fs::exists(model_file));
    // configs/demo/stacking.yaml names the same fit: its committed file must
    // be what fitting makes today.
    EXPECT_EQ(testing::ReadFile(model_file),
              testing::ReadFile(DemoDir() / "fitted/stacking.json"))
        << "refit with: build/core/cli/latefuse fit configs/demo/stacking.yaml "
           "--data configs/demo/data/fit.jsonl --out configs/demo/fitted";
  }

  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(pipeline_file);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Pipeline::Load(*std::move(config));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();

  std::vector<nlohmann::json> records;
  for (const std::string& line :
       testing::ReadLines(DemoDir() / "data/patients.jsonl")) {
    records.push_back(nlohmann::json::parse(line));
  }

  std::cout << fmt::format("{:<38} {:>5} {:>8} {:>22}\n", "present", "rows",
                           "stacker", "best single");
  std::size_t asserted = 0;
  for (unsigned mask = 1; mask < (1u << kDemo.size()); ++mask) {
    std::vector<std::string> subset;
    for (std::size_t k = 0; k < kDemo.size(); ++k) {
      if (mask & (1u << k)) subset.push_back(kDemo[k].name);
    }
    // The rows that hold every modality of the subset, shown only those.
    std::vector<std::string> lines;
    std::vector<std::string> labels;
    for (const nlohmann::json& record : records) {
      nlohmann::json shown = nlohmann::json::object();
      bool complete = true;
      for (const std::string& m : subset) {
        const nlohmann::json& value =
            record["modalities"].value(m, nlohmann::json());
        complete = complete && !value.is_null();
        shown[m] = value;
      }
      if (!complete) continue;
      lines.push_back(
          nlohmann::json{{"id", record["id"]}, {"modalities", shown}}.dump());
      labels.push_back(record["label"]);
    }
    ASSERT_GT(lines.size(), 0u) << absl::StrJoin(subset, "+");
    RunOptions options;
    options.output.per_modality = true;
    const std::vector<nlohmann::json> out =
        testing::RunLines(**pipeline, lines, options);
    ASSERT_EQ(out.size(), lines.size());

    double stacker = 0;
    std::vector<double> single(subset.size(), 0.0);
    for (std::size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i]["status"], "ok") << out[i].dump();
      stacker += out[i]["label"] == labels[i];
      for (std::size_t s = 0; s < subset.size(); ++s) {
        single[s] += Argmax(out[i]["modalities"][subset[s]]) == labels[i];
      }
    }
    const double n = static_cast<double>(out.size());
    stacker /= n;
    std::size_t best = 0;
    for (std::size_t s = 0; s < subset.size(); ++s) {
      single[s] /= n;
      if (single[s] > single[best]) best = s;
    }
    const bool checked = out.size() >= kMinRowsToAssert;
    std::cout << fmt::format("{:<38} {:>5} {:>7.1f}% {:>12} {:>7.1f}%{}\n",
                             absl::StrJoin(subset, "+"), out.size(),
                             100 * stacker, subset[best], 100 * single[best],
                             checked ? "" : "  (too few rows to assert)");
    if (!checked) continue;
    ++asserted;
    EXPECT_GE(stacker, single[best] - 0.02)
        << "present: " << absl::StrJoin(subset, "+");
  }
  // Most subsets have enough rows: every single modality, every pair, and
  // the larger subsets that are common in the demo.
  EXPECT_GE(asserted, 20u);
}

}  // namespace
}  // namespace latefuse
