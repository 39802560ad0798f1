// Fitting the `stacking` combiner: an L2-regularised logistic regression on
// the stacking features, trained with random modality dropout.
//
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(FitOptions options,
//                                 ReadFitOptions(context.params));
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(StackingModel model,
//                                 FitModel(context, data, options));
#ifndef LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_FIT_H_
#define LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_FIT_H_

#include <cstddef>
#include <latefuse/plugin.hpp>

#include "stacking_model.h"

namespace latefuse::stacking {

// The pipeline's `fit:` options of the combiner.
struct FitOptions {
  // scikit-learn's C: the objective is the sum of the rows' log losses plus
  // ||coef||^2 / (2 C); the intercept is not penalised.
  double l2_c = 1.0;
  bool missing_indicators = true;
  // Each present modality of each augmented copy of a row is dropped with this
  // probability, never all of a row's. In [0, 1).
  double modality_dropout = 0.3;
  // Augmented copies per row, besides the row itself (only when dropping).
  std::size_t dropout_copies = 4;
};

// Reads the options, rejecting unknown keys and out-of-range values;
// `model_path_hint` (the host's business) is accepted and ignored.
sdk::Result<FitOptions> ReadFitOptions(const sdk::Params& params);

// Fits a model for the context's classes and modalities on `data`
// (README, "Fitting"). Deterministic given data.seed().
sdk::Result<StackingModel> FitModel(const sdk::CreateContext& context,
                                    const sdk::FitData& data,
                                    const FitOptions& options);

}  // namespace latefuse::stacking

#endif  // LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_FIT_H_
