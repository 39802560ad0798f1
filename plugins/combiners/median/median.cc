// The `median` combiner (Kittler's median rule): each class's median
// probability over the present modalities, renormalised to sum 1.
//
//   combiner: {plugin: median}
//
// p_c = med_{k in S} p_kc / sum_j med_{k in S} p_kj over the present set S; a
// missing modality is simply not in S. The median of an even count is the mean
// of the two middle values, as numpy.median (so with two modalities present
// this is their mean). When every class's median is 0 the output is the
// uniform distribution 1/C. Takes no parameters. Explanation: 1/|S| for each
// present modality, 0 for absent ones.
#include <algorithm>
#include <vector>

#include "internal/class_statistic.h"

namespace latefuse::median {
namespace {

struct Median {
  static constexpr char kName[] = "median";
  static double Of(std::vector<double>& values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    if (n % 2 == 1) return values[n / 2];
    return (values[n / 2 - 1] + values[n / 2]) / 2.0;
  }
};

using MedianCombiner = combiners_internal::ClassStatisticCombiner<Median>;

}  // namespace
}  // namespace latefuse::median

LATEFUSE_COMBINER_PLUGIN(latefuse::median::MedianCombiner,
                         latefuse::median::Median::kName, "1.0.0",
                         "Kittler's median rule over the present modalities",
                         "Apache-2.0")
