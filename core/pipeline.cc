#include "core/pipeline.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/isolation.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

// The plan's lines for one plugin, each starting with `indent`.
void AppendPlugin(std::string& out, const PluginRef& ref,
                  const ResolvedPlugin& plugin,
                  absl::string_view indent = "    ") {
  const LfPluginDescriptor* d = plugin.plugin.descriptor;
  absl::StrAppend(&out, indent, "plugin:  ", d->name, " ", d->version, " (ABI ",
                  d->abi_major, ".", d->abi_minor, ")",
                  ref.version.empty()
                      ? ""
                      : absl::StrCat(", constraint '", ref.version, "'"),
                  "\n");
  absl::StrAppend(&out, indent, "file:    ", plugin.plugin.path.string(), "\n");
  absl::StrAppend(&out, indent, "sha256:  ", plugin.plugin.sha256,
                  ref.sha256.empty()      ? " (not pinned)"
                  : ref.lock_file.empty() ? " (pinned, matches)"
                                          : " (locked, matches)",
                  "\n");
  absl::StrAppend(&out, indent, "chosen:  ", plugin.reason, "\n");
  absl::StrAppend(&out, indent, "params:  ", ref.params_json, "\n");
}

// `status` with `context: ` in front of its message.
absl::Status WithContext(const absl::Status& status,
                         absl::string_view context) {
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

// Resolves and creates one of the modality's models, in this process or in a
// worker process (isolation.h), with the same checks and messages either way.
absl::StatusOr<LoadedModel> LoadModel(const ModalityConfig& modality,
                                      const PipelineConfig& config,
                                      ModelRole role, const std::string& name) {
  if (modality.isolation == Isolation::kProcess)
    return LoadIsolatedModel(modality, config, role, name);
  const PluginRef& ref =
      role == ModelRole::kShadow ? *modality.shadow : modality.model;
  LATEFUSE_ASSIGN_OR_RETURN(
      ResolvedPlugin plugin,
      ResolvePlugin(ref, LF_KIND_MODEL, name, config.plugin_dirs));
  LATEFUSE_ASSIGN_OR_RETURN(
      std::unique_ptr<ModelInstance> instance,
      ModelInstance::Create(plugin, modality, config, role));
  return LoadedModel{std::move(plugin), std::move(instance)};
}

// Resolves and creates the modality's shadow model, with every load check the
// model gets; errors start with "shadow model of modality 'm': ", since the
// shadow is often the same plugin as the model, in another version.
absl::Status LoadShadow(const ModalityConfig& modality,
                        const PipelineConfig& config,
                        Pipeline::Modality& loaded) {
  const std::string role =
      absl::StrCat("shadow model of modality '", modality.name, "'");
  absl::StatusOr<LoadedModel> shadow =
      LoadModel(modality, config, ModelRole::kShadow, role);
  if (!shadow.ok()) return WithContext(shadow.status(), role);
  loaded.shadow_plugin = std::move(shadow->plugin);
  loaded.shadow = std::move(shadow->instance);
  return absl::OkStatus();
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
    return WithContext(
        calibrator.status(),
        absl::StrCat("modality '", modality.name, "': calibration"));
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
        LoadedModel model,
        LoadModel(modality, c, ModelRole::kLive,
                  absl::StrCat("model of modality '", modality.name, "'")));
    LATEFUSE_ASSIGN_OR_RETURN(std::optional<Calibrator> calibrator,
                              LoadCalibrator(modality, c.classes, mode));
    Modality& loaded = pipeline->modalities_.emplace_back();
    loaded.plugin = std::move(model.plugin);
    loaded.instance = std::move(model.instance);
    loaded.calibrator = std::move(calibrator);
    if (modality.shadow && mode == LoadMode::kRun) {
      LATEFUSE_RETURN_IF_ERROR(LoadShadow(modality, c, loaded));
    }
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
    const Modality& loaded = pipeline->modalities_[k];
    pipeline->plugins_.emplace_back(ModelRoleKey(c.modalities[k].name),
                                    &loaded.plugin);
    if (loaded.shadow) {
      pipeline->plugins_.emplace_back(ShadowRoleKey(c.modalities[k].name),
                                      &*loaded.shadow_plugin);
    }
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
        m.isolation == Isolation::kProcess ? ", isolation process" : "", "\n");
    AppendPlugin(out, m.model, modalities_[k].plugin);
    if (m.calibration) {
      absl::StrAppend(&out, "    calibration: ", m.calibration->method, ", ",
                      modalities_[k].calibrator ? m.calibration->file.string()
                                                : std::string("to be fitted"),
                      "\n");
    }
    if (modalities_[k].shadow_plugin) {
      absl::StrAppend(&out, "    shadow: (compared with the model, never fused",
                      m.calibration ? ", not calibrated" : "", ")\n");
      AppendPlugin(out, *m.shadow, *modalities_[k].shadow_plugin, "      ");
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
