// The `min` combiner (Kittler's min rule): each class's smallest probability
// over the present modalities, renormalised to sum 1.
//
//   combiner: {plugin: min}
//
// p_c = min_{k in S} p_kc / sum_j min_{k in S} p_kj over the present set S; a
// missing modality is simply not in S. When every class's minimum is 0 (the
// present modalities rule out every class between them) the output is the
// uniform distribution 1/C. Takes no parameters. Explanation: 1/|S| for each
// present modality, 0 for absent ones.
#include <algorithm>
#include <vector>

#include "internal/class_statistic.h"

namespace latefuse::min {
namespace {

struct Min {
  static constexpr char kName[] = "min";
  static double Of(std::vector<double>& values) {
    return *std::min_element(values.begin(), values.end());
  }
};

using MinCombiner = combiners_internal::ClassStatisticCombiner<Min>;

}  // namespace
}  // namespace latefuse::min

LATEFUSE_COMBINER_PLUGIN(latefuse::min::MinCombiner, latefuse::min::Min::kName,
                         "1.0.0",
                         "Kittler's min rule over the present modalities",
                         "Apache-2.0")
