// Plugin instances as the host holds them: created from a pipeline's params,
// their contract checked against the pipeline (load check 8), every call's
// status given its context.
//
//   ASSIGN_OR_RETURN(auto model, ModelInstance::Create(resolved, modality,
//   config)); RETURN_IF_ERROR(model->Infer(batch, out));
//
// An instance is called from one thread at a time; it destroys the plugin's
// instance with it.
#ifndef LATEFUSE_CORE_PLUGIN_INSTANCE_H_
#define LATEFUSE_CORE_PLUGIN_INSTANCE_H_

#include <latefuse/plugin.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/pipeline_config.h"
#include "core/plugin_loader.h"

namespace latefuse {

// Which of a modality's models an instance is.
enum class ModelRole {
  kLive,    // `model:`, whose output is fused
  kShadow,  // `shadow:`, compared with the live model and reported, never fused
};

// A model plugin's instance serving one modality of a pipeline: the plugin's
// own instance in this process (Create), or a proxy for one in a worker
// process (isolation: process, see isolation.h). The engine sees no
// difference.
class ModelInstance {
 public:
  // Creates the instance from the params of the modality's `model:` or
  // `shadow:` (per `role`) and checks that its contract (input kind and width,
  // task, classes and their order) agrees with the pipeline. A regression
  // pipeline refuses models built before ABI 1.2 and models that declare
  // classes; a classification pipeline refuses models that declare none.
  static absl::StatusOr<std::unique_ptr<ModelInstance>> Create(
      const ResolvedPlugin& plugin, const ModalityConfig& modality,
      const PipelineConfig& pipeline, ModelRole role = ModelRole::kLive);
  virtual ~ModelInstance() = default;
  ModelInstance(const ModelInstance&) = delete;
  ModelInstance& operator=(const ModelInstance&) = delete;

  // One call for the whole batch. Errors read "pipeline 'p' modality 'm'
  // (linear 1.0.0): infer failed: ..." ("modality 'm' shadow" for a shadow).
  virtual absl::Status Infer(const LfBatch& batch, LfProbabilities& out) = 0;

  // Set when Infer keeps a deadline of its own: it returns within this (a
  // DeadlineExceeded status when the model overran), so the engine need not
  // stop waiting for it. Null for a model in process, which nothing can stop.
  virtual std::optional<std::chrono::milliseconds> deadline() const {
    return std::nullopt;
  }

  // "pipeline 'p' modality 'm' (linear 1.0.0)": what the host's messages about
  // this instance start with.
  const std::string& context() const { return context_; }

  // Regression pipelines: whether the model fills a variance for every row
  // (its contract's reports_variance). Always false for classification.
  bool reports_variance() const { return reports_variance_; }

 protected:
  ModelInstance(std::string context, bool reports_variance)
      : context_(std::move(context)), reports_variance_(reports_variance) {}
  void set_reports_variance(bool reports) { reports_variance_ = reports; }

 private:
  std::string context_;
  bool reports_variance_ = false;
};

// A combiner plugin's instance fusing a pipeline's modalities.
class CombinerInstance {
 public:
  static absl::StatusOr<std::unique_ptr<CombinerInstance>> Create(
      const ResolvedPlugin& plugin, const PipelineConfig& pipeline);
  ~CombinerInstance();
  CombinerInstance(const CombinerInstance&) = delete;
  CombinerInstance& operator=(const CombinerInstance&) = delete;

  // Whether Combine fills an explanation when asked.
  bool explains() const { return explains_; }
  absl::Status Combine(const LfCombineInput& input, LfCombineOutput& out);

  // "pipeline 'p' combiner (mean 1.0.0)".
  const std::string& context() const { return context_; }

 private:
  CombinerInstance(const LfCombinerApi* api, void* instance,
                   std::string context, bool explains)
      : api_(api),
        instance_(instance),
        context_(std::move(context)),
        explains_(explains) {}

  const LfCombinerApi* api_;
  void* instance_;
  std::string context_;
  bool explains_;
};

// OK when a combiner plugin can be fitted (it has ABI 1.1's optional fit),
// else why not.
absl::Status CheckTrainable(const ResolvedPlugin& combiner);

// Calls a trainable combiner's fit with the pipeline's `fit` options as params
// and returns the parameter file it wrote.
absl::StatusOr<std::string> FitCombiner(const ResolvedPlugin& combiner,
                                        const PipelineConfig& pipeline,
                                        const LfFitData& data);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_PLUGIN_INSTANCE_H_
