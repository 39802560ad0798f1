// The `mean` combiner: the unweighted average of the present modalities'
// probabilities.
//
//   combiner: {plugin: mean}
//
// A missing modality is left out of the average: p = (1/|S|) sum_{k in S} p_k.
//
// Regression pipelines (since 1.1.0): the prediction is (1/|S|) sum_{k in S}
// x_k; the fused variance is NaN, not reported (see WeightedAverageCombiner
// for why). Explanation: 1/|S| for each present modality.
#include <memory>
#include <vector>

#include "internal/weighted_average.h"

namespace latefuse::mean {
namespace {

class MeanCombiner : public combiners_internal::WeightedAverageCombiner {
 public:
  static sdk::Result<std::unique_ptr<MeanCombiner>> Create(
      const sdk::CreateContext& context) {
    if (!context.params.json().empty()) {
      return sdk::InvalidArgument("params: mean takes no parameters, got " +
                                  context.params.json().dump());
    }
    return std::make_unique<MeanCombiner>(context.modalities.size(),
                                          context.task);
  }

  MeanCombiner(std::size_t modalities, LfTask task)
      : WeightedAverageCombiner(std::vector<double>(modalities, 1.0), task) {}
};

}  // namespace
}  // namespace latefuse::mean

LATEFUSE_COMBINER_PLUGIN(latefuse::mean::MeanCombiner, "mean", "1.1.0",
                         "Average of the present modalities' probabilities "
                         "or predictions",
                         "Apache-2.0")
