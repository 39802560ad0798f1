// The row loop of the in-tree combiners that fuse a regression pipeline's
// (prediction, variance) pairs by a weighted average: `mean` and
// `weighted_mean` (fixed weights) and `inverse_variance` (w_k = 1 / v_k).
//
//   return combiners_internal::AverageRegressionRows(
//       in, out,
//       [&](std::size_t r, const std::vector<std::size_t>& present,
//           double* weights) -> sdk::Status {
//         ...  // weights[k] > 0 and finite for every k in present
//       },
//       [](double total_weight) { return 1.0 / total_weight; });
//
// Also the check every classification-only combiner makes at Create.
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_REGRESSION_ROWS_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_REGRESSION_ROWS_H_

#include <algorithm>
#include <cstddef>
#include <latefuse/plugin.hpp>
#include <limits>
#include <string>
#include <vector>

#include "internal/fuse_rows.h"

namespace latefuse::combiners_internal {

inline constexpr double kNoVariance = std::numeric_limits<double>::quiet_NaN();

// OK unless the pipeline is a regression one, which a combiner named `name`
// that fuses class probabilities refuses.
inline sdk::Status RequireClassification(const sdk::CreateContext& context,
                                         const char* name) {
  if (context.task != LF_TASK_REGRESSION) return sdk::Status();
  return sdk::InvalidArgument(
      std::string(name) +
      " fuses class probabilities; it does not support task 'regression'");
}

// For every row r of a regression batch: `weigh(r, present, weights)` gets the
// present set S (pipeline order, never empty) and writes a positive weight
// for each k in S to `weights` (K entries, zeroed beforehand), or fails the
// call; then the row's prediction is sum_S w_k x_k / sum_S w_k, its variance
// `fused_variance(sum_S w_k)` (kNoVariance when the rule has none), and its
// explanation, when asked for, w_k / sum_S w_j.
template <typename Weigh, typename FusedVariance>
sdk::Status AverageRegressionRows(const sdk::CombineInput& in,
                                  sdk::CombineOutput& out, Weigh&& weigh,
                                  FusedVariance&& fused_variance) {
  const std::size_t modalities = in.modalities();
  std::vector<std::size_t> present;
  std::vector<double> weights(modalities);
  for (std::size_t r = 0; r < in.rows(); ++r) {
    LATEFUSE_SDK_RETURN_IF_ERROR(PresentModalities(in, r, present));
    std::fill(weights.begin(), weights.end(), 0.0);
    LATEFUSE_SDK_RETURN_IF_ERROR(weigh(r, present, weights.data()));
    double total = 0.0;
    double sum = 0.0;
    for (std::size_t k : present) {
      total += weights[k];
      sum += weights[k] * in.Row(k, r)[0];
    }
    double* fused = out.Row(r);
    fused[0] = sum / total;
    fused[1] = fused_variance(total);
    WriteExplanation(out, r, present, weights.data(), modalities);
  }
  return sdk::Status();
}

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_REGRESSION_ROWS_H_
