// The base of the in-tree combiners whose only parameter is an optional
// `weights: {modality: w}` (1 for every modality when absent): `geometric` and
// `vote`.
//
//   class VoteCombiner : public OptionallyWeightedCombiner {
//    public:
//     static sdk::Result<std::unique_ptr<VoteCombiner>> Create(
//         const sdk::CreateContext& context) {
//       return Make<VoteCombiner>(context);
//     }
//     using OptionallyWeightedCombiner::OptionallyWeightedCombiner;
//     sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput&
//     out);
//   };
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_OPTIONALLY_WEIGHTED_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_OPTIONALLY_WEIGHTED_H_

#include <latefuse/plugin.hpp>
#include <memory>
#include <utility>
#include <vector>

#include "internal/params.h"
#include "internal/regression_rows.h"

namespace latefuse::combiners_internal {

// Derived: the combiner class itself, which inherits the constructor and
// names the plugin in `static constexpr char kName[]`.
template <typename Derived>
class OptionallyWeightedCombiner {
 public:
  explicit OptionallyWeightedCombiner(std::vector<double> weights)
      : weights_(std::move(weights)) {}

  // Checks the task (classification only) and the params (nothing but
  // `weights`) and makes the combiner.
  static sdk::Result<std::unique_ptr<Derived>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_RETURN_IF_ERROR(
        RequireClassification(context, Derived::kName));
    LATEFUSE_SDK_RETURN_IF_ERROR(
        RejectUnknownKeys(context.params.json(), "params.", {"weights"}));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::vector<double> weights,
                                  OptionalWeights(context));
    return std::make_unique<Derived>(std::move(weights));
  }

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

 protected:
  // One positive weight per modality, pipeline order.
  const std::vector<double>& weights() const { return weights_; }

 private:
  std::vector<double> weights_;
};

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_OPTIONALLY_WEIGHTED_H_
