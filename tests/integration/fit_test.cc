// `latefuse fit` as a user runs it: the demo's models over its labelled
// records, calibrations fitted and written, then used by `latefuse run`.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/calibration.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path DemoDir() { return testing::SourceDir() / "configs/demo"; }
fs::path DemoData() { return DemoDir() / "data/patients.jsonl"; }

// The demo's five models (configs/demo/pipeline.yaml) with `calibrations` for
// vitals and labs (YAML flow mappings, or "" for none) and `combiner`.
std::string Pipeline(const std::string& vitals_calibration,
                     const std::string& labs_calibration,
                     const std::string& combiner) {
  auto modality = [](const std::string& name, const std::string& input,
                     const std::string& plugin,
                     const std::string& calibration) {
    return absl::StrCat(
        "  - name: ", name, "\n    input: ", input,
        "\n    model: {plugin: ", plugin, ", params: {model: '",
        (DemoDir() / "models" / (name + ".json")).string(), "'}}\n",
        calibration.empty()
            ? ""
            : absl::StrCat("    calibration: ", calibration, "\n"));
  };
  return absl::StrCat(
      "apiVersion: latefuse/v1\nname: fit-test\nclasses: [stable, "
      "deteriorating]\nplugin_dirs: ['",
      testing::PluginDir().string(), "']\nmodalities:\n",
      modality("vitals", "{kind: dense, size: 12}", "linear",
               vitals_calibration),
      modality("labs", "{kind: dense, size: 8}", "linear", labs_calibration),
      modality("imaging", "{kind: dense, size: 16}", "linear", ""),
      modality("notes", "{kind: text}", "tfidf_linear", ""),
      modality("wearable", "{kind: dense, size: 6}", "xgboost", ""),
      "combiner: ", combiner, "\n");
}

struct Command {
  int code;
  std::string out;
  std::string err;
};

Command Latefuse(const std::string& args) {
  Command c;
  c.code = testing::RunCommand(
      absl::StrCat("'", testing::CliPath().string(), "' ", args), &c.out,
      &c.err);
  return c;
}

std::vector<nlohmann::json> Records(const std::string& text) {
  std::vector<nlohmann::json> records;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    records.push_back(nlohmann::json::parse(line));
  }
  return records;
}

TEST(FitTest, FittedCalibrationsAreWrittenAndThenAppliedByRun) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml",
                Pipeline("{method: platt, fit: true}",
                         "{method: isotonic, fit: true}", "{plugin: mean}"));
  const fs::path out = dir.path() / "fitted";
  Command fit = Latefuse(absl::StrCat("fit '", pipeline.string(), "' --data '",
                                      DemoData().string(), "' --out '",
                                      out.string(), "'"));
  ASSERT_EQ(fit.code, 0) << fit.err;
  EXPECT_THAT(fit.err, HasSubstr("fitted on 1000 of 1000 lines (0 skipped)"));
  EXPECT_THAT(fit.out, HasSubstr("calibration: {method: platt, file: "
                                 "fitted/calibration/vitals.json, fit: true}"));
  EXPECT_THAT(fit.out, HasSubstr("calibration: {method: isotonic, file: "
                                 "fitted/calibration/labs.json, fit: true}"));
  ASSERT_TRUE(fs::exists(out / "calibration/vitals.json"));
  ASSERT_TRUE(fs::exists(out / "calibration/labs.json"));

  // The same pipeline, uncalibrated and calibrated with the fitted files.
  const fs::path raw =
      dir.Write("raw.yaml", Pipeline("", "", "{plugin: mean}"));
  const fs::path calibrated = dir.Write(
      "calibrated.yaml",
      Pipeline("{method: platt, file: fitted/calibration/vitals.json}",
               "{method: isotonic, file: fitted/calibration/labs.json}",
               "{plugin: mean}"));
  const std::string run_args =
      absl::StrCat(" --per-modality -q --input '", DemoData().string(), "'");
  Command before = Latefuse(absl::StrCat("run '", raw.string(), "'", run_args));
  Command after =
      Latefuse(absl::StrCat("run '", calibrated.string(), "'", run_args));
  ASSERT_EQ(before.code, 0) << before.err;
  ASSERT_EQ(after.code, 0) << after.err;
  const std::vector<nlohmann::json> b = Records(before.out);
  const std::vector<nlohmann::json> a = Records(after.out);
  ASSERT_EQ(a.size(), b.size());

  const std::vector<std::string> classes = {"stable", "deteriorating"};
  absl::StatusOr<Calibrator> platt = Calibrator::Load(
      out / "calibration/vitals.json", CalibrationMethod::kPlatt, classes);
  ASSERT_TRUE(platt.ok()) << platt.status();
  int compared = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!b[i]["modalities"].contains("vitals")) continue;
    double p[2] = {b[i]["modalities"]["vitals"]["stable"].get<double>(),
                   b[i]["modalities"]["vitals"]["deteriorating"].get<double>()};
    platt->Apply(p, 1);
    EXPECT_NEAR(a[i]["modalities"]["vitals"]["deteriorating"].get<double>(),
                p[1], 1e-12);
    // imaging, notes and wearable have no calibration: untouched.
    for (const char* m : {"imaging", "notes", "wearable"}) {
      if (b[i]["modalities"].contains(m)) {
        EXPECT_EQ(a[i]["modalities"][m], b[i]["modalities"][m]) << m;
      }
    }
    ++compared;
  }
  EXPECT_GT(compared, 900);
}

TEST(FitTest, PredictionsGiveTheSameFitAsRunningTheModels) {
  testing::TempDir dir;
  const fs::path pipeline = dir.Write(
      "pipeline.yaml",
      Pipeline("{method: temperature, fit: true}", "", "{plugin: mean}"));
  // Per-modality predictions as `run --per-modality` makes them, with labels.
  Command run = Latefuse(absl::StrCat(
      "run '",
      dir.Write("raw.yaml", Pipeline("", "", "{plugin: mean}")).string(),
      "' --per-modality -q --input '", DemoData().string(), "'"));
  ASSERT_EQ(run.code, 0) << run.err;
  std::vector<nlohmann::json> records = Records(run.out);
  std::ifstream data(DemoData());
  std::string predictions;
  for (nlohmann::json& record : records) {
    std::string line;
    std::getline(data, line);
    nlohmann::json prediction = {
        {"id", record["id"]},
        {"label", nlohmann::json::parse(line)["label"]},
        {"modalities", record.value("modalities", nlohmann::json::object())}};
    predictions += prediction.dump() + "\n";
  }
  const fs::path predictions_file = dir.Write("predictions.jsonl", predictions);

  Command from_data = Latefuse(absl::StrCat(
      "fit '", pipeline.string(), "' --data '", DemoData().string(),
      "' --out '", (dir.path() / "a").string(), "'"));
  Command from_predictions =
      Latefuse(absl::StrCat("fit '", pipeline.string(), "' --predictions '",
                            predictions_file.string(), "' --out '",
                            (dir.path() / "b").string(), "'"));
  ASSERT_EQ(from_data.code, 0) << from_data.err;
  ASSERT_EQ(from_predictions.code, 0) << from_predictions.err;
  EXPECT_EQ(testing::ReadFile(dir.path() / "a/calibration/vitals.json"),
            testing::ReadFile(dir.path() / "b/calibration/vitals.json"));
}

TEST(FitTest, BadLinesAreSkippedAndReported) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml",
                Pipeline("{method: platt, fit: true}", "", "{plugin: mean}"));
  std::ifstream demo(DemoData());
  std::string data;
  for (int i = 0; i < 200; ++i) {
    std::string line;
    std::getline(demo, line);
    data += line + "\n";
  }
  data += R"({"id": "x1", "modalities": {}})"
          "\n";
  data += R"({"id": "x2", "modalities": {}, "label": "unwell"})"
          "\n";
  data += "not json\n";
  const fs::path file = dir.Write("data.jsonl", data);
  Command fit = Latefuse(absl::StrCat("fit '", pipeline.string(), "' --data '",
                                      file.string(), "' --out '",
                                      (dir.path() / "out").string(), "'"));
  ASSERT_EQ(fit.code, 0) << fit.err;
  EXPECT_THAT(fit.err, HasSubstr("fitted on 200 of 203 lines (3 skipped)"));
  EXPECT_THAT(fit.err, HasSubstr("skipped line 201: no label"));
  EXPECT_THAT(fit.err,
              HasSubstr("skipped line 202: label \"unwell\" is not one of the "
                        "pipeline's classes"));
  EXPECT_THAT(fit.err, HasSubstr("skipped line 203: invalid JSON"));
}

TEST(FitTest, NothingToFitIsAnError) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", Pipeline("", "", "{plugin: mean}"));
  Command fit = Latefuse(absl::StrCat("fit '", pipeline.string(), "' --data '",
                                      DemoData().string(), "' --out '",
                                      (dir.path() / "out").string(), "'"));
  EXPECT_EQ(fit.code, 1);
  EXPECT_THAT(fit.err, HasSubstr("nothing to fit"));
}

TEST(FitTest, CombinerWithoutFitIsRefused) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", Pipeline("", "", "{plugin: mean, fit: {}}"));
  Command fit = Latefuse(absl::StrCat("fit '", pipeline.string(), "' --data '",
                                      DemoData().string(), "' --out '",
                                      (dir.path() / "out").string(), "'"));
  EXPECT_EQ(fit.code, 1);
  EXPECT_THAT(fit.err, HasSubstr("plugin 'mean'"));
  EXPECT_THAT(fit.err, HasSubstr("cannot be fitted"));
}

TEST(FitTest, CalibrationNotFittedYetRefusesToRun) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml",
                Pipeline("{method: platt, fit: true}", "", "{plugin: mean}"));
  Command run = Latefuse(absl::StrCat("validate '", pipeline.string(), "'"));
  EXPECT_EQ(run.code, 1);
  EXPECT_THAT(run.err, HasSubstr("modality 'vitals': its calibration has no "
                                 "file yet; `latefuse fit` makes one"));
}

}  // namespace
}  // namespace latefuse
