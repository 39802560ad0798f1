#include "core/metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "core/calibration.h"

namespace latefuse {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

__extension__ using Uint128 = unsigned __int128;

// A uniform integer in [0, n) (Lemire, "Fast random integer generation in an
// interval", 2019): unbiased, and defined here rather than by the standard
// library's distribution, so a seed gives the same resamples everywhere.
std::uint64_t Bounded(std::mt19937_64& rng, std::uint64_t n) {
  Uint128 m = static_cast<Uint128>(rng()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<Uint128>(rng()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

}  // namespace

Scorer::Scorer(const double* probabilities, const std::int32_t* labels,
               std::size_t rows, std::size_t classes, int ece_bins)
    : probabilities_(probabilities),
      labels_(labels),
      rows_(rows),
      classes_(classes),
      ece_bins_(ece_bins),
      correct_(rows),
      log_loss_(rows),
      brier_(rows) {
  const bool binary = classes == 2;
  for (std::size_t r = 0; r < rows; ++r) {
    const double* p = probabilities + r * classes;
    const auto y = static_cast<std::size_t>(labels[r]);
    correct_[r] =
        static_cast<std::size_t>(std::max_element(p, p + classes) - p) == y;
    double clipped_sum = 0.0;
    double brier = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      clipped_sum += std::clamp(p[c], DBL_EPSILON, 1.0 - DBL_EPSILON);
      const double d = p[c] - (c == y ? 1.0 : 0.0);
      brier += d * d;
    }
    log_loss_[r] = -std::log(std::clamp(p[y], DBL_EPSILON, 1.0 - DBL_EPSILON) /
                             clipped_sum);
    const double d1 = p[1] - (y == 1 ? 1.0 : 0.0);
    brier_[r] = binary ? d1 * d1 : brier;
  }
  if (binary) {
    auc_columns_ = {1};
  } else {
    auc_columns_.resize(classes);
    std::iota(auc_columns_.begin(), auc_columns_.end(), std::size_t{0});
  }
  order_.resize(auc_columns_.size() * rows);
  for (std::size_t i = 0; i < auc_columns_.size(); ++i) {
    const std::size_t c = auc_columns_[i];
    auto begin = order_.begin() + static_cast<std::ptrdiff_t>(i * rows);
    std::iota(begin, begin + static_cast<std::ptrdiff_t>(rows),
              std::uint32_t{0});
    std::sort(begin, begin + static_cast<std::ptrdiff_t>(rows),
              [&](std::uint32_t a, std::uint32_t b) {
                return probabilities[a * classes + c] <
                       probabilities[b * classes + c];
              });
  }
}

double Scorer::RocAuc(std::size_t column, const double* weights) const {
  const std::size_t c = auc_columns_[column];
  const std::uint32_t* order = order_.data() + column * rows_;
  // Walking up the scores, a group of tied rows credits each positive with
  // the negatives below the group plus half the tied negatives: the
  // Mann-Whitney statistic, which is the area under the ROC curve that
  // scikit-learn integrates with the trapezoidal rule.
  double area = 0.0;
  double negatives_below = 0.0;
  double positives = 0.0;
  for (std::size_t i = 0; i < rows_;) {
    const double score = probabilities_[order[i] * classes_ + c];
    double group_positives = 0.0;
    double group_negatives = 0.0;
    for (; i < rows_ && probabilities_[order[i] * classes_ + c] == score; ++i) {
      const std::uint32_t r = order[i];
      const double w = weights == nullptr ? 1.0 : weights[r];
      if (static_cast<std::size_t>(labels_[r]) == c) {
        group_positives += w;
      } else {
        group_negatives += w;
      }
    }
    area += group_positives * (negatives_below + 0.5 * group_negatives);
    negatives_below += group_negatives;
    positives += group_positives;
  }
  if (positives == 0.0 || negatives_below == 0.0) return kNaN;
  return area / (positives * negatives_below);
}

MetricValues Scorer::Score(const double* weights) const {
  double total = 0.0;
  double correct = 0.0;
  double log_loss = 0.0;
  double brier = 0.0;
  for (std::size_t r = 0; r < rows_; ++r) {
    const double w = weights == nullptr ? 1.0 : weights[r];
    total += w;
    correct += w * correct_[r];
    log_loss += w * log_loss_[r];
    brier += w * brier_[r];
  }
  MetricValues values;
  values.fill(kNaN);
  if (total == 0.0) return values;
  values[kAccuracy] = correct / total;
  values[kLogLoss] = log_loss / total;
  values[kBrier] = brier / total;
  double auc = 0.0;
  for (std::size_t i = 0; i < auc_columns_.size(); ++i)
    auc += RocAuc(i, weights);
  values[kRocAuc] = auc / static_cast<double>(auc_columns_.size());
  values[kEce] = ExpectedCalibrationError(probabilities_, labels_, rows_,
                                          classes_, ece_bins_, weights);
  return values;
}

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double t = position - static_cast<double>(below);
  const double a = values[below];
  const double b = values[above];
  // numpy's _lerp: from the nearer end, so t = 1 gives b exactly.
  return t >= 0.5 ? b - (b - a) * (1.0 - t) : a + (b - a) * t;
}

std::array<Interval, kMetricCount> BootstrapIntervals(
    const Scorer& scorer, const Scorer* baseline,
    const BootstrapOptions& options, std::uint64_t stream) {
  std::array<Interval, kMetricCount> intervals;
  intervals.fill({kNaN, kNaN});
  const std::size_t rows = scorer.rows();
  if (rows == 0 || options.replicates == 0) return intervals;
  std::seed_seq seq{static_cast<std::uint32_t>(options.seed),
                    static_cast<std::uint32_t>(options.seed >> 32),
                    static_cast<std::uint32_t>(stream),
                    static_cast<std::uint32_t>(stream >> 32)};
  std::mt19937_64 rng(seq);
  std::vector<double> counts(rows);
  std::array<std::vector<double>, kMetricCount> values;
  for (std::vector<double>& v : values) v.reserve(options.replicates);
  for (std::size_t b = 0; b < options.replicates; ++b) {
    std::fill(counts.begin(), counts.end(), 0.0);
    for (std::size_t i = 0; i < rows; ++i) counts[Bounded(rng, rows)] += 1.0;
    MetricValues m = scorer.Score(counts.data());
    if (baseline != nullptr) {
      const MetricValues base = baseline->Score(counts.data());
      for (std::size_t k = 0; k < kMetricCount; ++k) m[k] -= base[k];
    }
    for (std::size_t k = 0; k < kMetricCount; ++k) {
      if (!std::isnan(m[k])) values[k].push_back(m[k]);
    }
  }
  const double tail = (1.0 - options.confidence) / 2.0;
  for (std::size_t k = 0; k < kMetricCount; ++k) {
    if (2 * values[k].size() < options.replicates) continue;
    intervals[k] = {Quantile(values[k], tail), Quantile(values[k], 1.0 - tail)};
  }
  return intervals;
}

}  // namespace latefuse
