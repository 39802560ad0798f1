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
                  ref.sha256.empty() ? " (not pinned)" : " (pinned, matches)",
                  "\n");
  absl::StrAppend(&out, "    chosen:  ", plugin.reason, "\n");
  absl::StrAppend(&out, "    params:  ", ref.params_json, "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(
    PipelineConfig config) {
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
    pipeline->modalities_.push_back({std::move(plugin), std::move(instance)});
  }
  LATEFUSE_ASSIGN_OR_RETURN(
      pipeline->combiner_plugin_,
      ResolvePlugin(c.combiner, LF_KIND_COMBINER, "combiner", c.plugin_dirs));
  LATEFUSE_ASSIGN_OR_RETURN(
      pipeline->combiner_,
      CombinerInstance::Create(pipeline->combiner_plugin_, c));
  return pipeline;
}

std::string Pipeline::Plan() const {
  const PipelineConfig& c = config_;
  std::string out =
      absl::StrCat("pipeline '", c.name, "' (", c.file.string(), "): OK\n");
  absl::StrAppend(&out, "  classes: ", absl::StrJoin(c.classes, ", "), "\n");
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
  }
  absl::StrAppend(&out, "  combiner:",
                  combiner_->explains() ? " (explains its weights)" : "", "\n");
  AppendPlugin(out, c.combiner, combiner_plugin_);
  absl::StrAppend(&out, "  policy: min_modalities ", c.policy.min_modalities,
                  ", on_insufficient ",
                  c.policy.on_insufficient == OnInsufficient::kAbstain
                      ? "abstain"
                      : "error",
                  "\n");
  return out;
}

}  // namespace latefuse
