#include "core/pipeline.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

void AppendPlugin(std::string& out, const PluginRef& ref,
                  const ResolvedPlugin& plugin) {
  const LfPluginDescriptor* d = plugin.plugin.descriptor;
  absl::StrAppend(&out, "    plugin:  ", d->name, " ", d->version, " (ABI ",
                  d->abi_major, ".", d->abi_minor, ")",
                  ref.version.empty()
                      ? ""
                      : absl::StrCat(", constraint '", ref.version, "'"),
                  "\n");
  absl::StrAppend(&out, "    file:    ", plugin.plugin.path.string(), "\n");
  absl::StrAppend(&out, "    sha256:  ", plugin.plugin.sha256,
                  ref.sha256.empty()      ? " (not pinned)"
                  : ref.lock_file.empty() ? " (pinned, matches)"
                                          : " (locked, matches)",
                  "\n");
  absl::StrAppend(&out, "    chosen:  ", plugin.reason, "\n");
  absl::StrAppend(&out, "    params:  ", ref.params_json, "\n");
}

// The modality's calibrator, unless it has none or is about to be fitted.
absl::StatusOr<std::optional<Calibrator>> LoadCalibrator(
    const ModalityConfig& modality, const std::vector<std::string>& classes,
    LoadMode mode) {
  if (!modality.calibration) return std::nullopt;
  const CalibrationConfig& calibration = *modality.calibration;
  if (mode == LoadMode::kFit && calibration.fit) return std::nullopt;
  if (calibration.file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        calibration.location.ToString(), ": modality '", modality.name,
        "': its calibration has no file yet; `latefuse fit` makes one"));
  }
  LATEFUSE_ASSIGN_OR_RETURN(CalibrationMethod method,
                            ParseCalibrationMethod(calibration.method));
  absl::StatusOr<Calibrator> calibrator =
      Calibrator::Load(calibration.file, method, classes);
  if (!calibrator.ok()) {
    return absl::Status(
        calibrator.status().code(),
        absl::StrCat("modality '", modality.name,
                     "': calibration: ", calibrator.status().message()));
  }
  return *std::move(calibrator);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(PipelineConfig config,
                                                         LoadMode mode) {
  std::unique_ptr<Pipeline> pipeline(new Pipeline(std::move(config)));
  const PipelineConfig& c = pipeline->config_;
  for (const ModalityConfig& modality : c.modalities) {
    LATEFUSE_ASSIGN_OR_RETURN(
        ResolvedPlugin plugin,
        ResolvePlugin(modality.model, LF_KIND_MODEL,
                      absl::StrCat("model of modality '", modality.name, "'"),
                      c.plugin_dirs));
    LATEFUSE_ASSIGN_OR_RETURN(std::unique_ptr<ModelInstance> instance,
                              ModelInstance::Create(plugin, modality, c));
    LATEFUSE_ASSIGN_OR_RETURN(std::optional<Calibrator> calibrator,
                              LoadCalibrator(modality, c.classes, mode));
    pipeline->modalities_.push_back(
        {std::move(plugin), std::move(instance), std::move(calibrator)});
  }
  LATEFUSE_ASSIGN_OR_RETURN(
      pipeline->combiner_plugin_,
      ResolvePlugin(c.combiner, LF_KIND_COMBINER, "combiner", c.plugin_dirs));
  if (mode == LoadMode::kRun) {
    LATEFUSE_ASSIGN_OR_RETURN(
        pipeline->combiner_,
        CombinerInstance::Create(pipeline->combiner_plugin_, c));
  }
  for (std::size_t k = 0; k < c.modalities.size(); ++k) {
    pipeline->plugins_.emplace_back(ModelRoleKey(c.modalities[k].name),
                                    &pipeline->modalities_[k].plugin);
  }
  pipeline->plugins_.emplace_back(kCombinerRoleKey,
                                  &pipeline->combiner_plugin_);
  return pipeline;
}

std::string Pipeline::Plan() const {
  const PipelineConfig& c = config_;
  std::string out =
      absl::StrCat("pipeline '", c.name, "' (", c.file.string(), "): OK\n");
  if (c.task == Task::kRegression) {
    absl::StrAppend(&out, "  task: regression\n");
  } else {
    absl::StrAppend(&out, "  classes: ", absl::StrJoin(c.classes, ", "), "\n");
  }
  std::vector<std::string> dirs;
  for (const auto& dir : c.plugin_dirs) dirs.push_back(dir.string());
  absl::StrAppend(&out, "  plugin_dirs: ", absl::StrJoin(dirs, ", "), "\n");
  for (std::size_t k = 0; k < c.modalities.size(); ++k) {
    const ModalityConfig& m = c.modalities[k];
    absl::StrAppend(
        &out, "  modality '", m.name,
        "': ", std::string(InputKindName(m.input_kind)),
        m.input_kind == InputKind::kDense ? absl::StrCat(" ", m.input_size)
                                          : "",
        ", on_error ", std::string(OnErrorName(m.on_error)),
        m.timeout ? absl::StrCat(", timeout ", m.timeout->count(), " ms") : "",
        "\n");
    AppendPlugin(out, m.model, modalities_[k].plugin);
    if (m.calibration) {
      absl::StrAppend(&out, "    calibration: ", m.calibration->method, ", ",
                      modalities_[k].calibrator ? m.calibration->file.string()
                                                : std::string("to be fitted"),
                      "\n");
    }
  }
  absl::StrAppend(
      &out, "  combiner:",
      combiner_ && combiner_->explains() ? " (explains its weights)" : "",
      "\n");
  AppendPlugin(out, c.combiner, combiner_plugin_);
  absl::StrAppend(&out, "  policy: min_modalities ", c.policy.min_modalities,
                  ", on_insufficient ",
                  std::string(OnInsufficientName(c.policy.on_insufficient)),
                  "\n");
  return out;
}

}  // namespace latefuse
