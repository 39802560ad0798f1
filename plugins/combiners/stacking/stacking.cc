// The `stacking` combiner: a logistic meta-learner over the per-modality
// probabilities, laid out as scikit-learn's StackingClassifier lays them out,
// from a `latefuse.stacking/v1` file; trainable with `latefuse fit`.
//
//   combiner:
//     plugin: stacking
//     params: {model: fitted/stacking.json}   # relative to the pipeline file
//     fit: {l2_C: 1.0, modality_dropout: 0.3}
//
// Features, per modality in the file's order (which must be the pipeline's):
// its probability columns (binary: P(classes[1]); multiclass: every class),
// then, with `missing_indicators`, one 0/1 column per modality, 1 = missing.
// A missing modality's probability columns take its `fill` row (the training
// prior when fitted here). Binary: P(classes[1]) = expit(coef . x +
// intercept); multiclass: softmax. With every modality present and no
// indicators this is StackingClassifier(cv="prefit",
// stack_method="predict_proba").predict_proba. The explanation is each
// modality's signed share of the decision (stacking_model.h, README.md).
#include <filesystem>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "internal/regression_rows.h"
#include "stacking_fit.h"
#include "stacking_model.h"

namespace latefuse::stacking {
namespace {

using sdk::InvalidArgument;
using sdk::Result;
using sdk::Status;

std::string List(const std::vector<std::string>& names) {
  return nlohmann::json(names).dump();
}

class StackingCombiner {
 public:
  static constexpr char kName[] = "stacking";

  static Result<std::unique_ptr<StackingCombiner>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_RETURN_IF_ERROR(
        combiners_internal::RequireClassification(context, kName));
    for (const auto& [key, value] : context.params.json().items()) {
      if (key != "model") {
        return InvalidArgument("params." + key +
                               ": unknown parameter (expected model)");
      }
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::filesystem::path path,
                                  context.params.GetPath("model"));
    const std::string where = "stacking file '" + path.string() + "'";
    std::ifstream in(path);
    if (!in) return sdk::NotFound("cannot open " + where);
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json json =
        nlohmann::json::parse(text.str(), nullptr, false);
    if (json.is_discarded()) {
      return InvalidArgument(where + ": not valid JSON");
    }
    Result<StackingModel> model = ReadModel(json);
    if (!model.ok()) {
      return InvalidArgument(where + ": " + model.status().message());
    }
    // The coefficients are positional: a file fitted for another order of
    // modalities or classes would fuse silently wrong.
    if (model->modalities != context.modalities) {
      return InvalidArgument(
          where + ": modalities: " + List(model->modalities) +
          " differ from the pipeline's modalities " + List(context.modalities) +
          " (the coefficients follow the file's order, so both must list the "
          "same modalities in the same order)");
    }
    if (model->classes != context.classes) {
      return InvalidArgument(where + ": classes: " + List(model->classes) +
                             " differ from the pipeline's classes " +
                             List(context.classes) +
                             " (same labels in the same order required)");
    }
    return std::make_unique<StackingCombiner>(*std::move(model));
  }

  static Result<std::string> Fit(const sdk::CreateContext& context,
                                 const sdk::FitData& data) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(FitOptions options,
                                  ReadFitOptions(context.params));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(StackingModel model,
                                  FitModel(context, data, options));
    return WriteModel(model);
  }

  explicit StackingCombiner(StackingModel model)
      : model_(std::move(model)),
        layout_(model_.layout()),
        features_(layout_.width()),
        probabilities_(model_.modalities.size()) {}

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

  Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    if (in.modalities() != model_.modalities.size() ||
        in.classes() != model_.classes.size()) {
      return sdk::FailedPrecondition(
          "expected " + std::to_string(model_.modalities.size()) +
          " modalities and " + std::to_string(model_.classes.size()) +
          " classes, got " + std::to_string(in.modalities()) + " and " +
          std::to_string(in.classes()));
    }
    for (std::size_t r = 0; r < in.rows(); ++r) {
      bool any = false;
      for (std::size_t k = 0; k < in.modalities(); ++k) {
        probabilities_[k] = in.Present(k, r) ? in.Row(k, r) : nullptr;
        any = any || probabilities_[k] != nullptr;
      }
      if (!any) {
        return sdk::FailedPrecondition("row " + std::to_string(r) +
                                       " has no modality present");
      }
      layout_.Write(probabilities_, model_.fill, features_.data());
      Predict(model_, features_.data(), out.Row(r));
      if (out.explain()) {
        Explain(model_, features_.data(), out.Row(r), out.Explanation(r));
      }
    }
    return Status();
  }

 private:
  StackingModel model_;
  FeatureLayout layout_;
  std::vector<double> features_;              // one row's, reused
  std::vector<const double*> probabilities_;  // one row's, nullptr = missing
};

}  // namespace
}  // namespace latefuse::stacking

LATEFUSE_COMBINER_PLUGIN(
    latefuse::stacking::StackingCombiner,
    latefuse::stacking::StackingCombiner::kName, "1.0.0",
    "Logistic meta-learner over the modalities' probabilities, missing "
    "modalities filled and flagged (latefuse.stacking/v1)",
    "Apache-2.0")
