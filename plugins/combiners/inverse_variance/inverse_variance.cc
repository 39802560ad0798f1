// The `inverse_variance` combiner, for regression pipelines: each present
// modality's prediction weighted by the inverse of the variance its model
// reports, the fixed-effect (precision-weighted) estimate of meta-analysis.
//
//   task: regression
//   ...
//   combiner: {plugin: inverse_variance}
//
// Over the present set S of a row, with (x_k, v_k) each model's prediction and
// variance:
//   prediction = sum_{k in S} (x_k / v_k) / sum_{k in S} (1 / v_k)
//   variance   = 1 / sum_{k in S} (1 / v_k)
// A missing modality is simply not in S. The variance assumes the models'
// errors are independent and their variances right. Every present model must
// report a positive variance: a present modality whose variance is NaN (its
// model reports none) or 0 fails the combine call, with a message naming it.
// Explanation: (1 / v_k) / sum_{j in S} (1 / v_j). Takes no parameters;
// refuses classification pipelines.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "internal/params.h"
#include "internal/regression_rows.h"

namespace latefuse::inverse_variance {
namespace {

namespace ci = combiners_internal;

class InverseVarianceCombiner {
 public:
  static sdk::Result<std::unique_ptr<InverseVarianceCombiner>> Create(
      const sdk::CreateContext& context) {
    if (context.task != LF_TASK_REGRESSION) {
      return sdk::InvalidArgument(
          "inverse_variance fuses predictions and their variances; it needs "
          "task 'regression'");
    }
    LATEFUSE_SDK_RETURN_IF_ERROR(
        ci::RejectUnknownKeys(context.params.json(), "params.", {}));
    return std::make_unique<InverseVarianceCombiner>(context.modalities);
  }

  explicit InverseVarianceCombiner(std::vector<std::string> modalities)
      : modalities_(std::move(modalities)) {}

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    return ci::AverageRegressionRows(
        in, out,
        [&](std::size_t r, const std::vector<std::size_t>& present,
            double* weights) {
          for (std::size_t k : present) {
            const double variance = in.Row(k, r)[1];
            if (std::isnan(variance)) {
              return sdk::FailedPrecondition(
                  "modality '" + modalities_[k] +
                  "' reports no variance; inverse_variance needs every model "
                  "to report one");
            }
            const double weight = 1.0 / variance;
            if (!(variance > 0.0) || !std::isfinite(weight)) {
              return sdk::FailedPrecondition(
                  "modality '" + modalities_[k] + "' reports variance " +
                  std::to_string(variance) +
                  "; inverse_variance needs a positive one");
            }
            weights[k] = weight;
          }
          return sdk::Status();
        },
        [](double total_weight) { return 1.0 / total_weight; });
  }

 private:
  std::vector<std::string> modalities_;  // pipeline order, for messages
};

}  // namespace
}  // namespace latefuse::inverse_variance

LATEFUSE_COMBINER_PLUGIN(
    latefuse::inverse_variance::InverseVarianceCombiner, "inverse_variance",
    "1.0.0",
    "Inverse-variance weighted mean of the present modalities' predictions "
    "(regression)",
    "Apache-2.0")
