// The `weighted_mean` combiner: a weighted average of the present modalities'
// probabilities, p = sum_{k in S} w_k p_k / sum_{k in S} w_k.
//
//   combiner:
//     plugin: weighted_mean
//     params: {weights: {vitals: 1.0, labs: 0.8, imaging: 0.5}}
//
// Every modality of the pipeline needs a positive, finite weight. A missing
// modality is left out and the weights of the present ones renormalised, so
// with every modality present this is scikit-learn's
// VotingClassifier(voting="soft", weights=...).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "internal/weighted_average.h"

namespace latefuse::weighted_mean {
namespace {

class WeightedMeanCombiner
    : public combiners_internal::WeightedAverageCombiner {
 public:
  static sdk::Result<std::unique_ptr<WeightedMeanCombiner>> Create(
      const sdk::CreateContext& context) {
    for (const auto& [key, value] : context.params.json().items()) {
      if (key != "weights") {
        return sdk::InvalidArgument("params." + key +
                                    ": unknown parameter (expected weights)");
      }
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        nlohmann::json weights, context.params.Get<nlohmann::json>("weights"));
    if (!weights.is_object()) {
      return sdk::InvalidArgument(
          "params.weights: expected a mapping of modality to weight");
    }
    for (const auto& [name, value] : weights.items()) {
      if (std::find(context.modalities.begin(), context.modalities.end(),
                    name) == context.modalities.end()) {
        return sdk::InvalidArgument("params.weights." + name +
                                    ": no such modality in the pipeline");
      }
    }
    std::vector<double> by_modality;
    for (const std::string& name : context.modalities) {
      if (!weights.contains(name)) {
        return sdk::InvalidArgument("params.weights: no weight for modality '" +
                                    name + "'");
      }
      LATEFUSE_SDK_ASSIGN_OR_RETURN(
          double w, sdk::Params::Convert<double>(weights[name],
                                                 "params.weights." + name));
      if (!std::isfinite(w) || w <= 0.0) {
        return sdk::InvalidArgument(
            "params.weights." + name +
            ": expected a positive finite weight, got " + weights[name].dump());
      }
      by_modality.push_back(w);
    }
    return std::make_unique<WeightedMeanCombiner>(std::move(by_modality));
  }

  explicit WeightedMeanCombiner(std::vector<double> weights)
      : WeightedAverageCombiner(std::move(weights)) {}
};

}  // namespace
}  // namespace latefuse::weighted_mean

LATEFUSE_COMBINER_PLUGIN(
    latefuse::weighted_mean::WeightedMeanCombiner, "weighted_mean", "1.0.0",
    "Weighted average of the present modalities' probabilities", "Apache-2.0")
