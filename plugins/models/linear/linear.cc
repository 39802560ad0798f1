// The `linear` model plugin: scikit-learn's StandardScaler +
// LogisticRegression, from a `latefuse.linear/v1` JSON file.
//
// A pipeline uses it as:
//
//   modalities:
//     - name: vitals
//       input: {kind: dense, size: 12}
//       model:
//         plugin: linear
//         version: "^1.0"
//         params: {model: models/vitals.json}   # relative to the pipeline file
//
// Binary models hold one coefficient row: P(classes[1]) = sigmoid(x.w + b).
// Multiclass models hold one row per class: softmax. With a `scaler`, x' = (x -
// mean) / scale first. Features arrive as float32; all arithmetic is float64,
// as scikit-learn does it on the same values cast to float64.
//
// Regression (since 1.1.0, for pipelines with `task: regression`): an
// extension of latefuse.linear/v1, scikit-learn's StandardScaler + Ridge or
// LinearRegression:
//
//   {"format": "latefuse.linear/v1", "task": "regression",
//    "coef": [[0.5, -1.2, ...]], "intercept": [3.1],
//    "scaler": {"mean": [...], "scale": [...]},   # optional
//    "variance": 0.8}                              # optional
//
// No `classes`; one coefficient row; prediction = x'.w + b. `variance`, when
// given (a finite number >= 0, e.g. the residual variance on the training
// data), is reported as the variance of every row's prediction, and the
// contract says so (reports_variance); without it the variance is NaN. A file
// without `task` is a classifier, as before 1.1.0. A regression file in a
// classification pipeline, or a classifier in a regression one, is refused at
// create.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "internal/linear_kernel.h"
#include "internal/logistic.h"

namespace latefuse::linear {
namespace {

using sdk::InvalidArgument;
using sdk::Result;
using sdk::Status;

using models_internal::ReadVector;

class LinearModel {
 public:
  static Result<std::unique_ptr<LinearModel>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::filesystem::path path,
                                  context.params.GetPath("model"));
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
    auto model = std::unique_ptr<LinearModel>(new LinearModel());
    if (Status status = model->Read(json); !status.ok()) {
      return InvalidArgument("model file '" + path.string() +
                             "': " + status.message());
    }
    const bool pipeline_regression = context.task == LF_TASK_REGRESSION;
    if (model->regression_ != pipeline_regression) {
      return InvalidArgument(
          "model file '" + path.string() + "' is a " +
          (model->regression_ ? "regression" : "classification") +
          " model, but the pipeline's task is '" +
          (pipeline_regression ? "regression" : "classification") + "'");
    }
    return model;
  }

  sdk::ModelContract Describe() const {
    return {LF_INPUT_DENSE, width_, classes_, !std::isnan(variance_)};
  }

  Status Infer(const sdk::Batch& batch, sdk::ProbabilitiesOut& out) {
    if (batch.kind() != LF_INPUT_DENSE || batch.width() != width_) {
      return InvalidArgument("expected dense rows of width " +
                             std::to_string(width_));
    }
    using models_internal::LinearKernel;
    const std::size_t outputs = kernel_.outputs();
    double* zs = decisions_.data();
    for (std::size_t begin = 0; begin < batch.rows();
         begin += LinearKernel::kBlock) {
      const std::size_t n =
          std::min(LinearKernel::kBlock, batch.rows() - begin);
      kernel_.Decisions(batch.Row(begin), n, zs);
      for (std::size_t i = 0; i < n; ++i) {
        double* p = out.Row(begin + i);
        if (regression_) {
          p[0] = zs[i * outputs];
          p[1] = variance_;
        } else {
          models_internal::LogisticProbabilities(zs + i * outputs, outputs, p);
        }
      }
    }
    return Status();
  }

 private:
  LinearModel() = default;

  Status Read(const nlohmann::json& json) {
    if (!json.is_object()) return InvalidArgument("expected a JSON object");
    std::vector<double> coefficients;  // [outputs, width_], row-major
    std::vector<double> intercept, mean, scale;
    if (!json.contains("format") || json["format"] != "latefuse.linear/v1") {
      return InvalidArgument(
          "format: expected \"latefuse.linear/v1\", got " +
          (json.contains("format") ? json["format"].dump() : "nothing"));
    }
    if (json.contains("task")) {
      if (json["task"] != "regression") {
        return InvalidArgument(
            "task: expected \"regression\" (or no task "
            "for a classifier), got " +
            json["task"].dump());
      }
      regression_ = true;
    }
    for (const auto& [key, value] : json.items()) {
      const bool known =
          key == "format" || key == "coef" || key == "intercept" ||
          key == "scaler" ||
          (regression_ ? key == "task" || key == "variance" : key == "classes");
      if (!known) {
        return InvalidArgument("unknown key '" + key + "' (expected format, " +
                               (regression_
                                    ? "task, coef, intercept, scaler, variance)"
                                    : "classes, coef, intercept, scaler)"));
      }
    }
    std::size_t rows = 1;
    if (regression_) {
      LATEFUSE_SDK_RETURN_IF_ERROR(ReadVariance(json));
    } else {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          classes_, sdk::Params::Convert<std::vector<std::string>>(
                        json.value("classes", nlohmann::json()), "classes"));
      if (classes_.size() < 2)
        return InvalidArgument("classes: need at least 2 classes");
      rows = classes_.size() == 2 ? 1 : classes_.size();
    }
    const nlohmann::json& coef = json.value("coef", nlohmann::json());
    if (!coef.is_array() || coef.size() != rows) {
      return InvalidArgument(
          "coef: expected " + std::to_string(rows) + " row(s) for " +
          (regression_ ? std::string("a regression model")
                       : std::to_string(classes_.size()) + " classes"));
    }
    for (std::size_t c = 0; c < rows; ++c) {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          std::vector<double> row,
          ReadVector(coef[c], "coef[" + std::to_string(c) + "]"));
      if (row.empty() || (c > 0 && row.size() != width_)) {
        return InvalidArgument("coef[" + std::to_string(c) +
                               "]: rows differ in width");
      }
      width_ = row.size();
      coefficients.insert(coefficients.end(), row.begin(), row.end());
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        intercept,
        ReadVector(json.value("intercept", nlohmann::json()), "intercept"));
    if (intercept.size() != rows) {
      return InvalidArgument("intercept: expected " + std::to_string(rows) +
                             " value(s)");
    }
    mean.assign(width_, 0.0);
    scale.assign(width_, 1.0);
    if (json.contains("scaler") && !json["scaler"].is_null()) {
      const nlohmann::json& scaler = json["scaler"];
      if (!scaler.is_object())
        return InvalidArgument("scaler: expected an object");
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          mean,
          ReadVector(scaler.value("mean", nlohmann::json()), "scaler.mean"));
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          scale,
          ReadVector(scaler.value("scale", nlohmann::json()), "scaler.scale"));
      if (mean.size() != width_ || scale.size() != width_) {
        return InvalidArgument("scaler: mean and scale need " +
                               std::to_string(width_) +
                               " values, as coef rows");
      }
      if (std::find(scale.begin(), scale.end(), 0.0) != scale.end()) {
        return InvalidArgument("scaler.scale: zero scale");
      }
    }
    kernel_ = models_internal::LinearKernel(std::move(coefficients),
                                            std::move(intercept),
                                            std::move(mean), std::move(scale));
    decisions_.assign(models_internal::LinearKernel::kBlock * rows, 0.0);
    return Status();
  }

  // The optional `variance` of a regression file: finite and >= 0.
  Status ReadVariance(const nlohmann::json& json) {
    if (!json.contains("variance") || json["variance"].is_null()) {
      return Status();
    }
    const nlohmann::json& variance = json["variance"];
    if (!variance.is_number() || !std::isfinite(variance.get<double>()) ||
        variance.get<double>() < 0.0) {
      return InvalidArgument("variance: expected a finite number >= 0, got " +
                             variance.dump());
    }
    variance_ = variance.get<double>();
    return Status();
  }

  bool regression_ = false;
  // Regression: reported for every row; NaN when the file gives none.
  double variance_ = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> classes_;
  models_internal::LinearKernel kernel_;
  // Infer's decision values, kept between calls (one thread at a time calls
  // an instance) so that a call allocates nothing.
  std::vector<double> decisions_;  // [kBlock, outputs]
  std::size_t width_ = 0;
};

}  // namespace
}  // namespace latefuse::linear

LATEFUSE_MODEL_PLUGIN(latefuse::linear::LinearModel, "linear", "1.1.0",
                      "Logistic or linear regression with optional standard "
                      "scaling (latefuse.linear/v1)",
                      "Apache-2.0")
