// A pipeline ready to run: its validated file, every plugin found, checked,
// loaded and instantiated. Loading is all or nothing: a pipeline that fails any
// check does not start.
//
//   ASSIGN_OR_RETURN(PipelineConfig config, LoadPipelineFile("pipeline.yaml"));
//   ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> pipeline,
//   Pipeline::Load(std::move(config))); std::cout << pipeline->Plan();
#ifndef LATEFUSE_CORE_PIPELINE_H_
#define LATEFUSE_CORE_PIPELINE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration.h"
#include "core/pipeline_config.h"
#include "core/plugin_instance.h"
#include "core/plugin_loader.h"

namespace latefuse {

// How much of a pipeline to load.
enum class LoadMode {
  // Everything, ready to run: every calibration needs its file.
  kRun,
  // For `latefuse fit`: the combiner is resolved and checked but not created
  // (its parameter file may not exist yet), calibrations marked `fit` are left
  // out, to be fitted, and shadow models are not loaded.
  kFit,
};

class Pipeline {
 public:
  // One modality's model, as loaded.
  struct Modality {
    ResolvedPlugin plugin;
    std::unique_ptr<ModelInstance> instance;
    std::optional<Calibrator> calibrator;  // applied to the model's output
    // The modality's `shadow:` model, when it names one (not loaded for
    // LoadMode::kFit, where it has no part): run on the same rows, compared
    // with the model's uncalibrated output, never fused.
    std::optional<ResolvedPlugin> shadow_plugin;
    std::unique_ptr<ModelInstance> shadow;
  };

  static absl::StatusOr<std::unique_ptr<Pipeline>> Load(
      PipelineConfig config, LoadMode mode = LoadMode::kRun);

  const PipelineConfig& config() const { return config_; }
  // In the pipeline's modality order.
  std::vector<Modality>& modalities() { return modalities_; }
  // False only for pipelines loaded with LoadMode::kFit.
  bool has_combiner() const { return combiner_ != nullptr; }
  CombinerInstance& combiner() { return *combiner_; }
  const ResolvedPlugin& combiner_plugin() const { return combiner_plugin_; }
  // Every plugin loaded, by role key (ForEachPluginRef's order and keys).
  const std::vector<std::pair<std::string, const ResolvedPlugin*>>& plugins()
      const {
    return plugins_;
  }

  // The resolved plan: each plugin with its version, file, hash and why it was
  // chosen.
  std::string Plan() const;

 private:
  explicit Pipeline(PipelineConfig config) : config_(std::move(config)) {}

  PipelineConfig config_;
  std::vector<Modality> modalities_;
  ResolvedPlugin combiner_plugin_;
  std::unique_ptr<CombinerInstance> combiner_;
  std::vector<std::pair<std::string, const ResolvedPlugin*>> plugins_;
};

}  // namespace latefuse

#endif  // LATEFUSE_CORE_PIPELINE_H_
