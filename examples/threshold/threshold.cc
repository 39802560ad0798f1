// `threshold`: an example model plugin for one dense feature.
//
//   modalities:
//     - name: lactate
//       input: {kind: dense, size: 1}
//       model: {plugin: threshold, params: {cut: 2.0}}
//
// P(classes[1]) is 0.9 above `cut` and 0.1 otherwise; binary pipelines only.
#include <latefuse/plugin.hpp>
#include <memory>
#include <string>
#include <vector>

class Threshold {
 public:
  // Creation that can fail returns a status; params arrive as typed JSON.
  static latefuse::sdk::Result<std::unique_ptr<Threshold>> Create(
      const latefuse::sdk::CreateContext& context) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(double cut, context.params.GetOr("cut", 0.0));
    if (context.classes.size() != 2) {
      return latefuse::sdk::InvalidArgument(
          "threshold needs exactly 2 classes");
    }
    return std::make_unique<Threshold>(cut, context.classes);
  }

  Threshold(double cut, std::vector<std::string> classes)
      : cut_(cut), classes_(std::move(classes)) {}

  // The static contract the host checks against the pipeline before running
  // anything.
  latefuse::sdk::ModelContract Describe() const {
    return {LF_INPUT_DENSE, 1, classes_};
  }

  // One call per batch, holding only the rows where this modality is present.
  latefuse::sdk::Status Infer(const latefuse::sdk::Batch& batch,
                              latefuse::sdk::ProbabilitiesOut& out) {
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const bool above = batch.Row(r)[0] > cut_;
      out.Row(r)[0] = above ? 0.1 : 0.9;
      out.Row(r)[1] = above ? 0.9 : 0.1;
    }
    return {};
  }

 private:
  double cut_;
  std::vector<std::string> classes_;
};

LATEFUSE_MODEL_PLUGIN(Threshold, "threshold", "1.0.0", "Thresholds one feature",
                      "MIT")
