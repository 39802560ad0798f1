// The `max` combiner (Kittler's max rule): each class's largest probability
// over the present modalities, renormalised to sum 1.
//
//   combiner: {plugin: max}
//
// p_c = max_{k in S} p_kc / sum_j max_{k in S} p_kj over the present set S; a
// missing modality is simply not in S. Takes no parameters. Explanation: 1/|S|
// for each present modality, 0 for absent ones.
#include <algorithm>
#include <vector>

#include "internal/class_statistic.h"

namespace latefuse::max {
namespace {

struct Max {
  static constexpr char kName[] = "max";
  static double Of(std::vector<double>& values) {
    return *std::max_element(values.begin(), values.end());
  }
};

using MaxCombiner = combiners_internal::ClassStatisticCombiner<Max>;

}  // namespace
}  // namespace latefuse::max

LATEFUSE_COMBINER_PLUGIN(latefuse::max::MaxCombiner, latefuse::max::Max::kName,
                         "1.0.0",
                         "Kittler's max rule over the present modalities",
                         "Apache-2.0")
