// Classification metrics of predicted probabilities against labels, as
// scikit-learn computes them, and percentile bootstrap confidence intervals.
//
//   Scorer scorer(p.data(), labels.data(), rows, classes);  // p: [rows, C]
//   MetricValues m = scorer.Score();
//   // m[kAccuracy], m[kLogLoss], m[kBrier], m[kRocAuc], m[kEce]
//   std::array<Interval, kMetricCount> ci =
//       BootstrapIntervals(scorer, nullptr, {.replicates = 1000, .seed = 7},
//                          /*stream=*/0);
//
// The definitions (labels are class indices in [0, C); the predicted class is
// the first argmax):
//   accuracy  sklearn.metrics.accuracy_score(y, argmax(p)).
//   log_loss  sklearn.metrics.log_loss(y, p, labels=range(C)) (scikit-learn
//             1.2): each probability clipped to [eps, 1 - eps], eps the
//             float64 machine epsilon, the row renormalised, then the mean of
//             -log p_y.
//   brier     binary (C = 2): sklearn.metrics.brier_score_loss(y, p[:, 1]),
//             the mean of (p_1 - [y = 1])^2. Multiclass: Brier's original
//             score, the mean over rows of sum_c (p_c - [y = c])^2
//             (scikit-learn 1.2 has no multiclass Brier; note that this sum
//             is twice the binary definition when C = 2).
//   roc_auc   binary: sklearn.metrics.roc_auc_score(y, p[:, 1]); multiclass:
//             roc_auc_score(y, p, multi_class="ovr", average="macro",
//             labels=range(C)), the unweighted mean of each class's
//             one-vs-rest AUC. Ties count one half. NaN (undefined) when a
//             class has no positive or no negative row, where scikit-learn
//             raises.
//   ece       top-label expected calibration error, ExpectedCalibrationError
//             of core/calibration.h (15 equal-width bins by default).
// With weights, each row counts that many times: the same as scikit-learn's
// `sample_weight` (and as repeating rows), which is how a bootstrap replicate
// is scored without copying rows. Every metric is NaN when there are no rows
// (no weight).
#ifndef LATEFUSE_CORE_METRICS_H_
#define LATEFUSE_CORE_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace latefuse {

enum MetricIndex : std::size_t { kAccuracy, kLogLoss, kBrier, kRocAuc, kEce };
inline constexpr std::size_t kMetricCount = 5;
using MetricValues = std::array<double, kMetricCount>;

// "accuracy", "log_loss", "brier", "roc_auc", "ece": the keys of report.json.
inline constexpr std::array<std::string_view, kMetricCount> kMetricNames = {
    "accuracy", "log_loss", "brier", "roc_auc", "ece"};
// Whether a larger value is better (accuracy, ROC-AUC) or worse (the rest).
inline constexpr std::array<bool, kMetricCount> kHigherIsBetter = {
    true, false, false, true, false};

// Scores one set of predictions, whole or reweighted. Construction does the
// per-row work once (log loss and Brier terms, and one sort per ROC-AUC
// column), so each Score call is O(rows * C). Keeps pointers to
// `probabilities` ([rows, C], rows summing to 1) and `labels` ([rows]), which
// must outlive it. Score is const and thread-safe.
class Scorer {
 public:
  Scorer(const double* probabilities, const std::int32_t* labels,
         std::size_t rows, std::size_t classes, int ece_bins = 15);

  // `weights`: [rows], each >= 0 (a bootstrap replicate's counts), or null
  // for 1 each.
  MetricValues Score(const double* weights = nullptr) const;

  std::size_t rows() const { return rows_; }

 private:
  // The ROC-AUC of score column `c` (one-vs-rest), NaN when undefined.
  double RocAuc(std::size_t column, const double* weights) const;

  const double* probabilities_;
  const std::int32_t* labels_;
  std::size_t rows_;
  std::size_t classes_;
  int ece_bins_;
  std::vector<std::uint8_t> correct_;  // [rows]
  std::vector<double> log_loss_;       // [rows]
  std::vector<double> brier_;          // [rows]
  // The columns ROC-AUC scores (binary: class 1; else every class), and for
  // each the rows by increasing probability: [columns, rows].
  std::vector<std::size_t> auc_columns_;
  std::vector<std::uint32_t> order_;
};

// A confidence interval; both NaN when undefined.
struct Interval {
  double low;
  double high;
};

struct BootstrapOptions {
  std::size_t replicates = 1000;
  std::uint64_t seed = 0;
  double confidence = 0.95;  // the interval's coverage, in (0, 1)
};

// Percentile bootstrap intervals of each metric: `replicates` resamples of the
// rows with replacement, each scored as Score(counts); the interval is the
// (1 - confidence)/2 and (1 + confidence)/2 percentiles of the replicates'
// values (linear interpolation, as numpy.percentile), over the replicates
// where the metric is defined, and NaN when fewer than half of them define
// it. With `baseline` (same rows, same labels), the intervals are of the
// paired difference scorer - baseline under the same resamples. Resamples
// are drawn from std::mt19937_64 seeded with std::seed_seq{seed, stream}
// (each split into 32-bit halves) and Lemire's unbiased bounded integers:
// one stream per evaluated set keeps every result independent of the order
// the sets are evaluated in.
std::array<Interval, kMetricCount> BootstrapIntervals(
    const Scorer& scorer, const Scorer* baseline,
    const BootstrapOptions& options, std::uint64_t stream);

// The q-th quantile (q in [0, 1]) of `values`, which it sorts, with
// numpy.percentile's default linear interpolation; NaN when empty.
double Quantile(std::vector<double>& values, double q);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_METRICS_H_
