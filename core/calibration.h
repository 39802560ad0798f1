// Per-modality probability calibrators (temperature scaling, Platt scaling,
// isotonic regression): fitted by `latefuse fit` from labelled rows, saved as
// latefuse.calibration/v1 files, loaded by the pipeline and applied to each
// modality's probabilities before the combiner fuses them.
//
//   LATEFUSE_ASSIGN_OR_RETURN(
//       Calibrator fitted,
//       Calibrator::Fit(CalibrationMethod::kPlatt, classes, p.data(),
//                       labels.data(), rows));
//   WriteFile(path, fitted.ToJson());
//   ...
//   LATEFUSE_ASSIGN_OR_RETURN(
//       Calibrator calibrator,
//       Calibrator::Load(path, CalibrationMethod::kPlatt, classes));
//   calibrator.Apply(p.data(), rows);  // p: [rows, classes.size()]
//
// The latefuse.calibration/v1 file is one JSON object:
//
//   {"format": "latefuse.calibration/v1",
//    "method": "temperature" | "platt" | "isotonic",
//    "classes": ["neg", "pos"],   // the pipeline's labels, same order
//    ...the method's parameters, below}
//
// Every key is required and no other key is allowed. C is the number of
// classes (at least 2); "binary" means C == 2, where only P1 = P(classes[1])
// is calibrated and P0' = 1 - P1' (P0 of the input is ignored); "multiclass"
// means C >= 3, where each class c is calibrated one-vs-rest into q_c and the
// row is renormalised, p'_c = q_c / sum_k q_k (uniform 1/C if that sum is 0).
// Numbers are written with full precision (shortest round-trip form).
//
//   temperature  {"temperature": T}, T finite and > 0, for any C:
//                p' = softmax(log(max(p, 1e-12)) / T). The floor lets zeros
//                through (a zero becomes 1e-12 before the softmax).
//                Fit: T minimising the mean negative log-likelihood of p' on
//                the rows, searched in [0.01, 100] (a bound is returned when
//                the optimum lies beyond it; T = 1 when every row is uniform).
//   platt        binary: {"a": a, "b": b}; multiclass: {"a": [a_c...],
//                "b": [b_c...]}, C numbers each, all finite:
//                  q_c = sigmoid(a_c * logit(clamp(p_c, 1e-12, 1 - 1e-12))
//                                + b_c).
//                Fit: per calibrated class, logistic regression of the
//                one-vs-rest label on logit(p_c) with Platt's smoothed targets
//                (N+ + 1) / (N+ + 2) and 1 / (N- + 2), solved by Newton's
//                method to machine precision; scikit-learn's
//                calibration._sigmoid_calibration(logit(p_c), y) returns the
//                same optimum as (A, B) = (-a, -b), up to its BFGS tolerance.
//   isotonic     binary: {"x": [...], "y": [...]}; multiclass: {"x": [[...]
//                per class], "y": [[...] per class]}: thresholds with x
//                strictly increasing, y non-decreasing within [0, 1], x and y
//                of equal non-zero length. q_c is the piecewise-linear
//                interpolation of (x, y) at p_c clipped to [x_first, x_last]
//                (a single point gives the constant y).
//                Fit: scikit-learn's IsotonicRegression(out_of_bounds="clip",
//                y_min=0, y_max=1) on (p_c, one-vs-rest label): rows sorted by
//                (p_c, label); values less than 1e-15 above the first of a run
//                are one threshold whose y is the run's mean label;
//                pool-adjacent-violators (increasing); then points whose y
//                equals both neighbours' are dropped (X_thresholds_,
//                y_thresholds_).
//
// Example (binary Platt):
//   {"format": "latefuse.calibration/v1", "method": "platt",
//    "classes": ["neg", "pos"], "a": 0.389, "b": -0.147}
#ifndef LATEFUSE_CORE_CALIBRATION_H_
#define LATEFUSE_CORE_CALIBRATION_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace latefuse {

enum class CalibrationMethod { kTemperature, kPlatt, kIsotonic };

// "temperature", "platt" or "isotonic": the name used in pipeline and
// calibration files.
std::string_view CalibrationMethodName(CalibrationMethod method);

// The inverse of CalibrationMethodName; InvalidArgument quoting any other text.
absl::StatusOr<CalibrationMethod> ParseCalibrationMethod(std::string_view name);

// A fitted per-modality calibrator: maps a model's [rows, C] probabilities to
// calibrated ones. Immutable once made by Load or Fit; copyable.
class Calibrator {
 public:
  // Reads a latefuse.calibration/v1 file and checks it holds an
  // `expected_method` calibrator for exactly `classes` (same labels, same
  // order). Errors name the file and the key: NotFound if it cannot be opened,
  // else InvalidArgument, e.g. "calibration file 'x.json': a: expected a
  // number".
  static absl::StatusOr<Calibrator> Load(
      const std::filesystem::path& file, CalibrationMethod expected_method,
      const std::vector<std::string>& classes);

  // Fits on labelled rows: `probabilities` [rows, C] row-major with C =
  // classes.size() >= 2, every value within [0, 1]; `labels` [rows] as class
  // indices in [0, C). InvalidArgument for no rows, a bad label or a bad
  // probability. Neither array is kept.
  static absl::StatusOr<Calibrator> Fit(CalibrationMethod method,
                                        const std::vector<std::string>& classes,
                                        const double* probabilities,
                                        const std::int32_t* labels,
                                        std::size_t rows);

  // Calibrates `probabilities` [rows, C] in place; each row then sums to 1
  // (up to rounding). Non-finite inputs give non-finite outputs rather than an
  // error: the engine checks model outputs before this runs. Thread-safe.
  void Apply(double* probabilities, std::size_t rows) const;

  // The latefuse.calibration/v1 file text, one top-level key per line,
  // floats in shortest round-trip form: Load reads back an identical
  // calibrator.
  std::string ToJson() const;

  CalibrationMethod method() const { return method_; }

 private:
  Calibrator(CalibrationMethod method, std::vector<std::string> classes)
      : method_(method), classes_(std::move(classes)) {}

  bool binary() const { return classes_.size() == 2; }
  // The classes calibrated one-vs-rest: {1} when binary, else 0..C-1.
  std::size_t FirstCalibratedClass() const { return binary() ? 1 : 0; }

  CalibrationMethod method_;
  std::vector<std::string> classes_;
  double temperature_ = 1.0;
  // Platt: one (a, b) per calibrated class (one in all when binary).
  std::vector<double> a_;
  std::vector<double> b_;
  // Isotonic: one threshold list per calibrated class.
  std::vector<std::vector<double>> x_;
  std::vector<std::vector<double>> y_;
};

// One confidence bin of a reliability diagram: sums over the rows that fell
// in it, each row counted with its weight.
struct ReliabilityBin {
  double weight = 0.0;      // rows (sum of their weights)
  double confidence = 0.0;  // sum of weight * top-label probability
  double correct = 0.0;     // sum of weight over rows whose top label is right
};

// The top-label reliability diagram of [rows, C] probabilities against
// labels, on bins.size() equal-width confidence bins, bin b holding
// confidences in (b/bins, (b+1)/bins] (bin 0 also takes 0). The predicted
// class is the first argmax; a label outside [0, C) counts as a miss.
// `weights` ([rows], >= 0) counts each row that many times (a bootstrap
// resample); null counts each once.
void ReliabilityBins(const double* probabilities, const std::int32_t* labels,
                     std::size_t rows, std::size_t classes,
                     const double* weights, std::span<ReliabilityBin> bins);

// Expected calibration error of [rows, C] probabilities against labels:
// top-label ECE with `bins` (>= 1; smaller counts as 1) equal-width confidence
// bins as ReliabilityBins has them: sum over bins of |bin|/rows * |accuracy -
// mean confidence|, rows weighted by `weights` when given. 0 when there are
// no rows (or no weight).
double ExpectedCalibrationError(const double* probabilities,
                                const std::int32_t* labels, std::size_t rows,
                                std::size_t classes, int bins = 15,
                                const double* weights = nullptr);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_CALIBRATION_H_
