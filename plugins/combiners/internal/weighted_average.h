// Weighted averaging over the modalities present in each row, shared by the
// in-tree `mean` and `weighted_mean` combiners, for classification and
// regression pipelines.
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_WEIGHTED_AVERAGE_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_WEIGHTED_AVERAGE_H_

#include <algorithm>
#include <latefuse/plugin.hpp>
#include <vector>

#include "internal/fuse_rows.h"
#include "internal/regression_rows.h"

namespace latefuse::combiners_internal {

// p = sum_{k in S} w_k p_k / sum_{k in S} w_k over the present set S of each
// row; the explanation is each modality's share w_k / sum_{k in S} w_k (0 when
// absent). weights[k] > 0 for every k.
inline sdk::Status WeightedAverage(const sdk::CombineInput& in,
                                   const std::vector<double>& weights,
                                   sdk::CombineOutput& out) {
  const std::size_t classes = in.classes();
  if (out.explain()) {
    return FuseRows(in, out,
                    [&](std::size_t r, const std::vector<std::size_t>& present,
                        double* fused, double* shares) {
                      std::fill(fused, fused + classes, 0.0);
                      for (std::size_t k : present) {
                        shares[k] = weights[k];
                        const double* p = in.Row(k, r);
                        for (std::size_t c = 0; c < classes; ++c) {
                          fused[c] += weights[k] * p[c];
                        }
                      }
                    });
  }
  // Without an explanation nothing is kept per modality, so the rows go
  // straight through, without FuseRows' list of present modalities, and each
  // class's sum stays in a register: the same additions in the same order
  // (modalities ascending, from 0), so the same result, bit for bit. The
  // combiner runs once per row of every batch, and this is most of its time.
  const std::size_t modalities = in.modalities();
  for (std::size_t r = 0; r < in.rows(); ++r) {
    bool any = false;
    for (std::size_t k = 0; k < modalities && !any; ++k) any = in.Present(k, r);
    if (!any) return sdk::FailedPrecondition(kNoModalityPresent);
    double* fused = out.Row(r);
    for (std::size_t c = 0; c < classes; ++c) {
      double sum = 0.0;
      for (std::size_t k = 0; k < modalities; ++k) {
        // A select rather than a branch: presence is as good as random from
        // row to row, and adding 0.0 to a sum >= 0 changes nothing. An
        // absent modality's value is never used, whatever it holds.
        const double term = weights[k] * in.Row(k, r)[c];
        sum += in.Present(k, r) ? term : 0.0;
      }
      fused[c] = sum;
    }
    NormaliseOrUniform(fused, classes);
  }
  return sdk::Status();
}

// A combiner that averages with fixed per-modality weights; `mean` and
// `weighted_mean` differ only in how they make the weights.
//
// Regression pipelines: the prediction is the same weighted average of the
// present predictions, and the fused variance is NaN (none). The models all
// see the same patient, so their errors are correlated, and averaging alone
// gives no honest variance: sum w_k^2 v_k / (sum w_k)^2 would hold only for
// independent errors and would understate the uncertainty.
class WeightedAverageCombiner {
 public:
  WeightedAverageCombiner(std::vector<double> weights, LfTask task)
      : weights_(std::move(weights)), task_(task) {}

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    if (task_ != LF_TASK_REGRESSION) return WeightedAverage(in, weights_, out);
    return AverageRegressionRows(
        in, out,
        [&](std::size_t, const std::vector<std::size_t>& present,
            double* weights) {
          for (std::size_t k : present) weights[k] = weights_[k];
          return sdk::Status();
        },
        [](double) { return kNoVariance; });
  }

 private:
  std::vector<double> weights_;
  LfTask task_;
};

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_WEIGHTED_AVERAGE_H_
