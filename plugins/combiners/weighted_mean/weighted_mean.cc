// The `weighted_mean` combiner: a weighted average of the present modalities'
// probabilities, p = sum_{k in S} w_k p_k / sum_{k in S} w_k.
//
//   combiner:
//     plugin: weighted_mean
//     params: {weights: {vitals: 1.0, labs: 0.8, imaging: 0.5}}
//
// or, with weights fitted by `Fit` (a latefuse.weighted_mean/v1 file):
//
//   combiner: {plugin: weighted_mean, params: {model: models/weights.json}}
//
// Every modality of the pipeline needs a positive, finite weight. A missing
// modality is left out and the weights of the present ones renormalised, so
// with every modality present this is scikit-learn's
// VotingClassifier(voting="soft", weights=...). Explanation: w_k / sum_{j in S}
// w_j.
//
// Regression pipelines (ABI 1.2): the prediction is sum_{k in S} w_k x_k /
// sum_{k in S} w_k and the fused variance NaN, not reported (see
// WeightedAverageCombiner for why). Fit is for classification only.
//
// Fit: weights on the simplex, w = softmax(theta), minimising the mean log loss
// of the weighted mean over the rows with a modality present, plus
// l2 * |theta|^2 (option `l2`, default 0), by L-BFGS from equal weights.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "internal/fit.h"
#include "internal/params.h"
#include "internal/weighted_average.h"

namespace latefuse::weighted_mean {
namespace {

namespace ci = combiners_internal;

constexpr char kFormat[] = "latefuse.weighted_mean/v1";

// The weights of a latefuse.weighted_mean/v1 file, in pipeline order.
sdk::Result<std::vector<double>> WeightsFromFile(
    const sdk::CreateContext& context) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      ci::ParameterFile file,
      ci::ReadParameterFile(context.params, kFormat,
                            {"format", "modalities", "weights"}));
  LATEFUSE_SDK_RETURN_IF_ERROR(
      ci::FileModalityOrder(file, context.modalities).status());
  if (!file.json.contains("weights")) {
    return sdk::InvalidArgument(file.where + ": weights: missing");
  }
  return ci::ModalityValues(file.json["weights"], file.where + ": weights",
                            context.modalities, ci::ValueRule::kPositive);
}

class WeightedMeanCombiner : public ci::WeightedAverageCombiner {
 public:
  static sdk::Result<std::unique_ptr<WeightedMeanCombiner>> Create(
      const sdk::CreateContext& context) {
    const sdk::Params& params = context.params;
    LATEFUSE_SDK_RETURN_IF_ERROR(
        ci::RejectUnknownKeys(params.json(), "params.", {"weights", "model"}));
    if (params.Has("weights") && params.Has("model")) {
      return sdk::InvalidArgument(
          "params.model: give either weights or model, not both");
    }
    if (params.Has("model")) {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(std::vector<double> weights,
                                    WeightsFromFile(context));
      return std::make_unique<WeightedMeanCombiner>(std::move(weights),
                                                    context.task);
    }
    if (!params.Has("weights")) {
      return sdk::InvalidArgument(
          "params.weights: missing required parameter (or give model: a " +
          std::string(kFormat) + " file)");
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        std::vector<double> weights,
        ci::ModalityValues(params.json().at("weights"), "params.weights",
                           context.modalities, ci::ValueRule::kPositive));
    return std::make_unique<WeightedMeanCombiner>(std::move(weights),
                                                  context.task);
  }

  static sdk::Result<std::string> Fit(const sdk::CreateContext& context,
                                      const sdk::FitData& data) {
    if (context.task == LF_TASK_REGRESSION) {
      return sdk::FailedPrecondition(
          "weighted_mean fits its weights to class probabilities (log loss); "
          "it cannot be fitted for task 'regression'");
    }
    LATEFUSE_SDK_RETURN_IF_ERROR(
        ci::RejectUnknownKeys(context.params.json(), "params.", {"l2"}));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        double l2, ci::NonNegativeOption(context.params, "l2", 0.0));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(ci::FitRows rows,
                                  ci::UsableFitRows(context, data));
    const std::size_t modalities = data.modalities();
    const double scale = 1.0 / static_cast<double>(rows.rows.size());
    std::vector<double> g(modalities);
    auto objective = [&](const Eigen::VectorXd& theta, Eigen::VectorXd& grad) {
      grad = 2.0 * l2 * theta;
      double loss = l2 * theta.squaredNorm();
      for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        loss += scale * ci::MixtureLogLoss(data, rows.rows[i], rows.present[i],
                                           theta.data(), scale, g.data(),
                                           grad.data());
      }
      return loss;
    };
    Eigen::VectorXd theta =
        Eigen::VectorXd::Zero(static_cast<Eigen::Index>(modalities));
    LATEFUSE_SDK_RETURN_IF_ERROR(ci::MinimiseLbfgs(objective, theta).status());

    // softmax(theta), each weight kept positive as Create requires.
    std::vector<std::size_t> all(modalities);
    for (std::size_t k = 0; k < modalities; ++k) all[k] = k;
    ci::SoftmaxOverPresent(theta.data(), all, modalities, g.data());
    nlohmann::ordered_json weights = nlohmann::ordered_json::object();
    for (std::size_t k = 0; k < modalities; ++k) {
      weights[context.modalities[k]] =
          std::max(g[k], std::numeric_limits<double>::min());
    }
    nlohmann::ordered_json file = {{"format", kFormat},
                                   {"modalities", context.modalities},
                                   {"weights", weights}};
    return file.dump(1) + "\n";
  }

  WeightedMeanCombiner(std::vector<double> weights, LfTask task)
      : WeightedAverageCombiner(std::move(weights), task) {}
};

}  // namespace
}  // namespace latefuse::weighted_mean

LATEFUSE_COMBINER_PLUGIN(
    latefuse::weighted_mean::WeightedMeanCombiner, "weighted_mean", "1.2.0",
    "Weighted average of the present modalities' probabilities or predictions",
    "Apache-2.0")
