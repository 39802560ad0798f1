// The `geometric` combiner (product of experts, log-odds pooling): a weighted
// geometric mean of the present modalities' probabilities, renormalised.
//
//   combiner:
//     plugin: geometric
//     params: {weights: {vitals: 1.0, labs: 0.5}}   # optional, default all 1
//
// p_c proportional to prod_{k in S} p_kc^{w_k} over the present set S; a
// missing modality contributes no factor. Computed in log space,
// s_c = sum_{k in S} w_k log(max(p_kc, 1e-300)), p_c = exp(s_c - max_j s_j) /
// sum_j exp(s_j - max_j s_j), so that a probability of exactly 0 acts as the
// tiny 1e-300 (a strong veto that another modality's own zero can balance)
// rather than giving log(0) = -inf and NaN. Explanation: w_k / sum_{j in S}
// w_j.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "internal/fuse_rows.h"
#include "internal/optionally_weighted.h"

namespace latefuse::geometric {
namespace {

namespace ci = combiners_internal;

class GeometricCombiner
    : public ci::OptionallyWeightedCombiner<GeometricCombiner> {
 public:
  static constexpr char kName[] = "geometric";
  using OptionallyWeightedCombiner::OptionallyWeightedCombiner;

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    const std::size_t classes = in.classes();
    return ci::FuseRows(
        in, out,
        [&](std::size_t r, const std::vector<std::size_t>& present,
            double* fused, double* shares) {
          std::fill(fused, fused + classes, 0.0);
          for (std::size_t k : present) {
            shares[k] = weights()[k];
            const double* p = in.Row(k, r);
            for (std::size_t c = 0; c < classes; ++c) {
              fused[c] += weights()[k] * ci::FlooredLog(p[c]);
            }
          }
          const double top = *std::max_element(fused, fused + classes);
          for (std::size_t c = 0; c < classes; ++c) {
            fused[c] = std::exp(fused[c] - top);
          }
        });
  }
};

}  // namespace
}  // namespace latefuse::geometric

LATEFUSE_COMBINER_PLUGIN(
    latefuse::geometric::GeometricCombiner,
    latefuse::geometric::GeometricCombiner::kName, "1.0.0",
    "Weighted geometric mean (product of experts) of the present modalities",
    "Apache-2.0")
