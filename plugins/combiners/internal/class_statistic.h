// Kittler's fixed rules (`max`, `min`, `median`): each class's fused score is
// one statistic of the present modalities' probabilities of that class, and
// the scores are renormalised to sum 1. They take no parameters.
//
//   struct Max {
//     static constexpr char kName[] = "max";  // the plugin's name
//     // `values` (non-empty, any order; may be reordered): p_kc for k in S.
//     static double Of(std::vector<double>& values);
//   };
//   using MaxCombiner = combiners_internal::ClassStatisticCombiner<Max>;
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_CLASS_STATISTIC_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_CLASS_STATISTIC_H_

#include <cstddef>
#include <latefuse/plugin.hpp>
#include <memory>
#include <vector>

#include "internal/fuse_rows.h"
#include "internal/params.h"
#include "internal/regression_rows.h"

namespace latefuse::combiners_internal {

// p_c proportional to Statistic::Of({p_kc : k in S}); uniform when every
// class's statistic is 0. The explanation is 1/|S| for each present modality:
// the rules treat the present modalities alike, and which modality supplied a
// class's value varies from class to class.
template <typename Statistic>
class ClassStatisticCombiner {
 public:
  static sdk::Result<std::unique_ptr<ClassStatisticCombiner>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_RETURN_IF_ERROR(
        RequireClassification(context, Statistic::kName));
    LATEFUSE_SDK_RETURN_IF_ERROR(
        RejectUnknownKeys(context.params.json(), "params.", {}));
    return std::make_unique<ClassStatisticCombiner>();
  }

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    return FuseRows(in, out,
                    [&](std::size_t r, const std::vector<std::size_t>& present,
                        double* fused, double* weights) {
                      for (std::size_t c = 0; c < in.classes(); ++c) {
                        values_.clear();
                        for (std::size_t k : present) {
                          values_.push_back(in.Row(k, r)[c]);
                        }
                        fused[c] = Statistic::Of(values_);
                      }
                      for (std::size_t k : present) weights[k] = 1.0;
                    });
  }

 private:
  std::vector<double> values_;  // scratch, kept to spare an allocation a class
};

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_CLASS_STATISTIC_H_
