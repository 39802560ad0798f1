#include "core/fit.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/calibration.h"
#include "core/labelled.h"
#include "core/plugin_instance.h"
#include "core/profile.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

// Runs the models over labelled records.
absl::Status CollectFromData(Pipeline& pipeline, const FitOptions& options,
                             LabelledRows& out, FitReport& report) {
  LabelledOptions run;
  run.batch_size = options.batch_size;
  LabelledReport labelled;
  absl::Status status = RunLabelled(pipeline, options.data, run, out, labelled);
  report.lines = labelled.lines;
  report.skipped = std::move(labelled.skipped);
  return status;
}

// One modality's probabilities from a predictions line: a list in class
// order, or an object keyed by class. Empty when absent or null.
absl::StatusOr<std::vector<double>> ReadDistribution(
    const nlohmann::json& value, const std::vector<std::string>& classes,
    const std::string& where) {
  std::vector<double> p;
  if (value.is_null()) return p;
  if (value.is_array() && value.size() == classes.size()) {
    for (const nlohmann::json& v : value) {
      if (!v.is_number()) break;
      p.push_back(v.get<double>());
    }
  } else if (value.is_object() && value.size() == classes.size()) {
    for (const std::string& c : classes) {
      if (!value.contains(c) || !value[c].is_number()) break;
      p.push_back(value[c].get<double>());
    }
  }
  double sum = 0.0;
  bool finite = p.size() == classes.size();
  for (double v : p) {
    finite = finite && std::isfinite(v) && v >= 0.0 && v <= 1.0;
    sum += v;
  }
  if (!finite || std::abs(sum - 1.0) > 1e-6) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": expected ", classes.size(),
        " probabilities summing to 1 (a list in class order, or an object by "
        "class)"));
  }
  return p;
}

// Reads ready-made per-modality probabilities; applies the pipeline's loaded
// calibrators, as the engine does to its models' output.
absl::Status CollectFromPredictions(Pipeline& pipeline,
                                    const FitOptions& options,
                                    LabelledRows& out, FitReport& report) {
  const PipelineConfig& config = pipeline.config();
  std::ifstream in(options.predictions);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open predictions '",
                                            options.predictions.string(), "'"));
  }
  const std::size_t K = config.modalities.size();
  const std::size_t C = config.classes.size();
  std::string text;
  std::vector<std::vector<double>> row(K);
  while (std::getline(in, text)) {
    const std::size_t line = ++report.lines;
    const std::string at = fmt::format("line {}", line);
    nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
      report.skipped.push_back(at + ": expected a JSON object");
      continue;
    }
    if (!json.contains("label") || !json["label"].is_string()) {
      report.skipped.push_back(at + ": no label");
      continue;
    }
    const std::optional<std::int32_t> label =
        ClassIndex(config.classes, json["label"].get<std::string>());
    if (!label) {
      report.skipped.push_back(
          UnknownLabel(line, json["label"].get<std::string>()));
      continue;
    }
    const nlohmann::json modalities =
        json.value("modalities", nlohmann::json::object());
    std::string error;
    if (!modalities.is_object())
      error = at + ": modalities: expected an object";
    for (auto it = modalities.begin(); error.empty() && it != modalities.end();
         ++it) {
      bool known = false;
      for (const ModalityConfig& m : config.modalities)
        known |= m.name == it.key();
      if (!known)
        error = at + ": modalities." + it.key() + ": unknown modality";
    }
    for (std::size_t k = 0; error.empty() && k < K; ++k) {
      const std::string& name = config.modalities[k].name;
      absl::StatusOr<std::vector<double>> p =
          ReadDistribution(modalities.value(name, nlohmann::json()),
                           config.classes, at + ": modalities." + name);
      if (!p.ok()) {
        error = std::string(p.status().message());
      } else {
        row[k] = *std::move(p);
      }
    }
    if (!error.empty()) {
      report.skipped.push_back(error);
      continue;
    }
    out.labels.push_back(*label);
    for (std::size_t k = 0; k < K; ++k) {
      const bool present = !row[k].empty();
      if (present && pipeline.modalities()[k].calibrator) {
        pipeline.modalities()[k].calibrator->Apply(row[k].data(), 1);
      }
      out.present[k].push_back(present ? 1 : 0);
      out.used[k].push_back(present ? 1 : 0);
      row[k].resize(C, 0.0);
      out.probabilities[k].insert(out.probabilities[k].end(), row[k].begin(),
                                  row[k].end());
    }
    ++out.rows;
  }
  return absl::OkStatus();
}

absl::Status WriteFile(const fs::path& path, const std::string& text,
                       FitReport& report) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream file(path);
  file << text;
  if (text.empty() || text.back() != '\n') file << '\n';
  file.close();
  if (!file) {
    return absl::UnavailableError(
        absl::StrCat("cannot write '", path.string(), "'"));
  }
  report.written.push_back(path);
  return absl::OkStatus();
}

// Fits modality k's calibrator, writes it, and calibrates its probabilities.
absl::StatusOr<fs::path> FitCalibration(Pipeline& pipeline, std::size_t k,
                                        LabelledRows& data,
                                        const FitOptions& options,
                                        FitReport& report) {
  const PipelineConfig& config = pipeline.config();
  const ModalityConfig& modality = config.modalities[k];
  const std::size_t C = config.classes.size();
  std::vector<double> p;
  std::vector<std::int32_t> labels;
  for (std::size_t r = 0; r < data.rows; ++r) {
    if (!data.used[k][r]) continue;
    p.insert(p.end(), data.probabilities[k].begin() + r * C,
             data.probabilities[k].begin() + (r + 1) * C);
    labels.push_back(data.labels[r]);
  }
  LATEFUSE_ASSIGN_OR_RETURN(
      CalibrationMethod method,
      ParseCalibrationMethod(modality.calibration->method));
  absl::StatusOr<Calibrator> calibrator = Calibrator::Fit(
      method, config.classes, p.data(), labels.data(), labels.size());
  if (!calibrator.ok()) {
    return absl::Status(calibrator.status().code(),
                        absl::StrCat("modality '", modality.name,
                                     "': fitting its calibration: ",
                                     calibrator.status().message()));
  }
  const fs::path file =
      options.out_dir / "calibration" / (modality.name + ".json");
  LATEFUSE_RETURN_IF_ERROR(WriteFile(file, calibrator->ToJson(), report));
  for (std::size_t r = 0; r < data.rows; ++r) {
    if (data.used[k][r]) {
      calibrator->Apply(data.probabilities[k].data() + r * C, 1);
    }
  }
  return file;
}

std::string Relative(const fs::path& file, const fs::path& base) {
  return fs::proximate(file, base).string();
}

}  // namespace

absl::StatusOr<FitReport> FitPipeline(Pipeline& pipeline,
                                      const FitOptions& options) {
  const PipelineConfig& config = pipeline.config();
  const std::size_t K = config.modalities.size();
  const std::size_t C = config.classes.size();
  if (config.task == Task::kRegression) {
    return absl::FailedPreconditionError(
        "nothing to fit: `latefuse fit` fits combiners and calibrations of "
        "classification pipelines; this pipeline's task is 'regression'");
  }
  bool any_calibration = false;
  for (const ModalityConfig& m : config.modalities) {
    any_calibration |= m.calibration && m.calibration->fit;
  }
  if (!any_calibration && !config.combiner.fit_json) {
    return absl::FailedPreconditionError(
        "nothing to fit: give the combiner a `fit:` block, or a modality a "
        "`calibration: {method: ..., fit: true}`");
  }
  if (config.combiner.fit_json) {
    LATEFUSE_RETURN_IF_ERROR(CheckTrainable(pipeline.combiner_plugin()));
  }
  if (options.data.empty() == options.predictions.empty()) {
    return absl::InvalidArgumentError(
        "give either labelled data (--data) or per-modality predictions "
        "(--predictions)");
  }

  FitReport report;
  LabelledRows data(K);
  LATEFUSE_RETURN_IF_ERROR(
      options.data.empty()
          ? CollectFromPredictions(pipeline, options, data, report)
          : CollectFromData(pipeline, options, data, report));
  if (data.rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no labelled rows to fit on (", report.lines, " lines read, ",
        report.skipped.size(), " skipped",
        report.skipped.empty() ? "" : absl::StrCat(": ", report.skipped[0]),
        ")"));
  }
  report.rows = data.rows;
  report.present.assign(K, 0);
  for (std::size_t k = 0; k < K; ++k) {
    for (std::uint8_t p : data.used[k]) report.present[k] += p;
  }

  std::string snippet =
      fmt::format("# Fitted by `latefuse fit` on {} labelled rows. In {}:\n",
                  data.rows, config.file.string());
  if (any_calibration) snippet += "modalities:\n";
  for (std::size_t k = 0; k < K; ++k) {
    const ModalityConfig& m = config.modalities[k];
    if (!m.calibration || !m.calibration->fit) continue;
    LATEFUSE_ASSIGN_OR_RETURN(
        fs::path file, FitCalibration(pipeline, k, data, options, report));
    snippet += fmt::format(
        "  - name: {}   # ...\n    calibration: {{method: {}, file: {}, fit: "
        "true}}\n",
        m.name, m.calibration->method, Relative(file, config.base_dir));
  }

  // The reference for drift monitoring: the modalities' probabilities as the
  // combiner gets them, with the calibrations just fitted. No fused output:
  // the fitted combiner is not run here.
  LATEFUSE_RETURN_IF_ERROR(WriteFile(
      options.out_dir / "profile.json",
      ProfileJson(ModalityProfiles(config, data, kDefaultProfileBins)),
      report));

  if (config.combiner.fit_json) {
    std::vector<double> probabilities;
    std::vector<std::uint8_t> present;
    probabilities.reserve(K * data.rows * C);
    for (std::size_t k = 0; k < K; ++k) {
      probabilities.insert(probabilities.end(), data.probabilities[k].begin(),
                           data.probabilities[k].end());
      present.insert(present.end(), data.used[k].begin(), data.used[k].end());
    }
    const LfFitData fit_data{sizeof(LfFitData),
                             K,
                             data.rows,
                             C,
                             probabilities.data(),
                             present.data(),
                             data.labels.data(),
                             options.seed};
    LATEFUSE_ASSIGN_OR_RETURN(
        std::string text,
        FitCombiner(pipeline.combiner_plugin(), config, fit_data));
    const fs::path file = options.out_dir / (config.combiner.plugin + ".json");
    LATEFUSE_RETURN_IF_ERROR(WriteFile(file, text, report));
    snippet += fmt::format(
        "combiner:\n  plugin: {}\n  params: {{model: {}}}\n  fit: {}\n",
        config.combiner.plugin, Relative(file, config.base_dir),
        *config.combiner.fit_json);
  }
  report.snippet = std::move(snippet);
  return report;
}

}  // namespace latefuse
