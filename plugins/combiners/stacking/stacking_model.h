// The `latefuse.stacking/v1` parameter file of the `stacking` combiner: its
// reading with checks, its writing, and the feature layout and meta-learner
// that inference (stacking.cc) and fitting (stacking_fit.cc) share.
//
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(StackingModel model, ReadModel(json));
//   model.layout().Write(probabilities, model.fill, features.data());
//   Predict(model, features.data(), fused);
#ifndef LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_MODEL_H_
#define LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_MODEL_H_

#include <Eigen/Core>
#include <cstddef>
#include <latefuse/plugin.hpp>
#include <string>
#include <vector>

namespace latefuse::stacking {

inline constexpr char kFormat[] = "latefuse.stacking/v1";

using RowMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Where the stacking features of a row sit (DESIGN): for each modality in the
// file's order its probability columns (binary: P(classes[1]) only;
// multiclass: every class), then, with indicators, one column per modality
// holding 1 when it is missing and 0 when present.
class FeatureLayout {
 public:
  FeatureLayout(std::size_t modalities, std::size_t classes, bool indicators)
      : modalities_(modalities),
        classes_(classes),
        per_modality_(classes == 2 ? 1 : classes),
        indicators_(indicators) {}

  std::size_t width() const {
    return modalities_ * per_modality_ + (indicators_ ? modalities_ : 0);
  }
  // The modality a feature column belongs to.
  std::size_t Owner(std::size_t column) const {
    const std::size_t probability_columns = modalities_ * per_modality_;
    return column < probability_columns ? column / per_modality_
                                        : column - probability_columns;
  }
  // Writes one row's width() features. probabilities[k] holds modality k's C
  // probabilities, or is nullptr when the modality is missing: fill row k then
  // stands in for it (fill is [K, C]).
  void Write(const std::vector<const double*>& probabilities,
             const RowMatrix& fill, double* features) const;

 private:
  std::size_t modalities_;
  std::size_t classes_;
  std::size_t per_modality_;
  bool indicators_;
};

// A parsed, checked latefuse.stacking/v1 file.
struct StackingModel {
  std::vector<std::string> classes;
  std::vector<std::string> modalities;
  bool missing_indicators = false;
  RowMatrix fill;             // [K, C]: probabilities standing in for a missing
                              // modality
  RowMatrix coef;             // [1 (binary) or C, layout().width()]
  Eigen::VectorXd intercept;  // [coef.rows()]

  FeatureLayout layout() const {
    return FeatureLayout(modalities.size(), classes.size(), missing_indicators);
  }
};

// Checks a parsed file against the format; errors name the key, e.g.
// "coef[0]: expected 6 values (3 modalities x 1 probability column + 3 missing
// indicators), got 5".
sdk::Result<StackingModel> ReadModel(const nlohmann::json& json);

// The file's text: keys in DESIGN's order, one line per key (a line per coef
// row), floats in their shortest exact form.
std::string WriteModel(const StackingModel& model);

// The logistic function 1 / (1 + exp(-z)), as scikit-learn's expit, in a form
// where exp never overflows.
double Expit(double z);

// The meta-learner on one feature row: z = coef x + intercept, then binary
// P(classes[1]) = expit(z) and P(classes[0]) = 1 - that (as scikit-learn),
// multiclass softmax(z). Writes C probabilities.
void Predict(const StackingModel& model, const double* features,
             double* probabilities);

// Each modality's signed share of the decision for one row, written to
// shares[K] (README, "Explanation"): s_k = sum over the columns j of modality k
// (its indicator included) of v_j x_j, divided by sum_k |s_k| (all 0 when that
// is 0). Binary v = coef[0], positive toward classes[1]; multiclass v = the
// coef row of the most probable class minus the mean coef row, positive toward
// that class.
void Explain(const StackingModel& model, const double* features,
             const double* probabilities, double* shares);

}  // namespace latefuse::stacking

#endif  // LATEFUSE_PLUGINS_COMBINERS_STACKING_STACKING_MODEL_H_
