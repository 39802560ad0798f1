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
    const std::size_t outputs = coef_.size() / width_;
    double* zs = decisions_.data();
    for (std::size_t begin = 0; begin < batch.rows(); begin += kBlock) {
      const std::size_t n = std::min(kBlock, batch.rows() - begin);
      DecisionBlock(batch.Row(begin), n, outputs, zs);
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
  // Rows are taken kBlock = 8 at a time, in four pairs of SIMD lanes (GCC and
  // Clang vector types: SSE2 on x86-64, NEON on ARM), so that each
  // coefficient is loaded once per block and multiplies 8 rows, and the
  // accumulators stay in registers, as a BLAS kernel does. Each lane does
  // what the plain per-row loop does, (x - mean) / scale, then the products
  // summed feature by feature from 0, with no fused multiply-add, so the
  // results are those of that loop, bit for bit.
  using Lanes = double __attribute__((vector_size(2 * sizeof(double))));
  static constexpr std::size_t kBlock = 8;

  static Lanes Broadcast(double v) { return Lanes{v, v}; }

  // The decision values of the n <= kBlock rows at x: z[i * outputs + c] for
  // row i and coefficient row c.
  void DecisionBlock(const float* x, std::size_t n, std::size_t outputs,
                     double* z) {
    if (n < kBlock) {
      // A last, short block: padded with zero rows whose results are unused.
      std::fill(std::copy_n(x, n * width_, tail_.begin()), tail_.end(), 0.0f);
      x = tail_.data();
    }
    // The block scaled, transposed: scaled_[j * kBlock + i] is feature j of
    // row i.
    Lanes* scaled = scaled_.data();
    for (std::size_t j = 0; j < width_; ++j) {
      const Lanes mean = Broadcast(mean_[j]);
      const Lanes scale = Broadcast(scale_[j]);
      for (std::size_t q = 0; q < kBlock / 2; ++q) {
        const Lanes v{static_cast<double>(x[2 * q * width_ + j]),
                      static_cast<double>(x[(2 * q + 1) * width_ + j])};
        scaled[j * (kBlock / 2) + q] = (v - mean) / scale;
      }
    }
    for (std::size_t c = 0; c < outputs; ++c) {
      const double* w = coef_.data() + c * width_;
      Lanes s0{}, s1{}, s2{}, s3{};
      for (std::size_t j = 0; j < width_; ++j) {
        const Lanes wj = Broadcast(w[j]);
        const Lanes* column = scaled + j * (kBlock / 2);
        s0 += column[0] * wj;
        s1 += column[1] * wj;
        s2 += column[2] * wj;
        s3 += column[3] * wj;
      }
      const double sums[kBlock] = {s0[0], s0[1], s1[0], s1[1],
                                   s2[0], s2[1], s3[0], s3[1]};
      for (std::size_t i = 0; i < n; ++i) {
        z[i * outputs + c] = sums[i] + intercept_[c];
      }
    }
  }

  LinearModel() = default;

  Status Read(const nlohmann::json& json) {
    if (!json.is_object()) return InvalidArgument("expected a JSON object");
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
      coef_.insert(coef_.end(), row.begin(), row.end());
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        intercept_,
        ReadVector(json.value("intercept", nlohmann::json()), "intercept"));
    if (intercept_.size() != rows) {
      return InvalidArgument("intercept: expected " + std::to_string(rows) +
                             " value(s)");
    }
    mean_.assign(width_, 0.0);
    scale_.assign(width_, 1.0);
    if (json.contains("scaler") && !json["scaler"].is_null()) {
      const nlohmann::json& scaler = json["scaler"];
      if (!scaler.is_object())
        return InvalidArgument("scaler: expected an object");
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          mean_,
          ReadVector(scaler.value("mean", nlohmann::json()), "scaler.mean"));
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          scale_,
          ReadVector(scaler.value("scale", nlohmann::json()), "scaler.scale"));
      if (mean_.size() != width_ || scale_.size() != width_) {
        return InvalidArgument("scaler: mean and scale need " +
                               std::to_string(width_) +
                               " values, as coef rows");
      }
      if (std::find(scale_.begin(), scale_.end(), 0.0) != scale_.end()) {
        return InvalidArgument("scaler.scale: zero scale");
      }
    }
    scaled_.assign(width_ * kBlock / 2, Lanes{});
    tail_.assign(width_ * kBlock, 0.0f);
    decisions_.assign(kBlock * rows, 0.0);
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
  std::vector<double> coef_;  // [outputs, width_], row-major
  // Scratch for Infer, kept between calls (one thread at a time calls an
  // instance) so that a call allocates nothing.
  std::vector<Lanes> scaled_;      // [width_, kBlock / 2]
  std::vector<float> tail_;        // [kBlock, width_]: a short block, padded
  std::vector<double> decisions_;  // [kBlock, outputs]
  std::vector<double> intercept_;
  std::vector<double> mean_;
  std::vector<double> scale_;
  std::size_t width_ = 0;
};

}  // namespace
}  // namespace latefuse::linear

LATEFUSE_MODEL_PLUGIN(latefuse::linear::LinearModel, "linear", "1.1.0",
                      "Logistic or linear regression with optional standard "
                      "scaling (latefuse.linear/v1)",
                      "Apache-2.0")
