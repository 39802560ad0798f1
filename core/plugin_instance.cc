#include "core/plugin_instance.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/host_api.h"
#include "core/status_macros.h"

namespace latefuse {
namespace {

// The C view of what a plugin is created from; owns the pointer arrays and the
// strings it hands out, but for the params, which the caller keeps alive.
// (The instance name is a copy: callers pass literals, and a pointer into the
// temporary string made for the parameter would dangle once the constructor
// returned; ASan found it.)
class CreateContext {
 public:
  CreateContext(const PipelineConfig& pipeline, const std::string& params_json,
                std::string instance_name, bool with_modalities)
      : instance_name_(std::move(instance_name)) {
    base_dir_ = pipeline.base_dir.string();
    for (const std::string& label : pipeline.classes)
      classes_.push_back(label.c_str());
    if (with_modalities) {
      for (const ModalityConfig& m : pipeline.modalities)
        modalities_.push_back(m.name.c_str());
    }
    context_ = LfCreateContext{
        sizeof(LfCreateContext),
        params_json.c_str(),
        params_json.size(),
        base_dir_.c_str(),
        instance_name_.c_str(),
        classes_.size(),
        classes_.empty() ? nullptr : classes_.data(),
        modalities_.size(),
        modalities_.empty() ? nullptr : modalities_.data(),
        pipeline.task == Task::kRegression ? LF_TASK_REGRESSION
                                           : LF_TASK_CLASSIFICATION};
  }
  const LfCreateContext* get() const { return &context_; }

 private:
  std::string base_dir_;
  std::string instance_name_;
  std::vector<const char*> classes_;
  std::vector<const char*> modalities_;
  LfCreateContext context_;
};

std::string Prefix(const ResolvedPlugin& plugin) {
  return absl::StrCat("plugin '", plugin.plugin.descriptor->name, "' (",
                      plugin.plugin.path.string(), "): ");
}

std::string CallContext(const PipelineConfig& pipeline, const std::string& role,
                        const ResolvedPlugin& plugin) {
  return absl::StrCat("pipeline '", pipeline.name, "' ", role, " (",
                      plugin.plugin.descriptor->name, " ",
                      plugin.plugin.descriptor->version, ")");
}

std::string DescribeInput(int32_t kind, std::size_t width) {
  switch (kind) {
    case LF_INPUT_DENSE:
      return absl::StrCat("dense of width ", width);
    case LF_INPUT_TEXT:
      return "text";
    case LF_INPUT_BYTES:
      return "bytes";
    default:
      return absl::StrCat("unknown input kind ", kind);
  }
}

int32_t ToAbi(InputKind kind) {
  switch (kind) {
    case InputKind::kDense:
      return LF_INPUT_DENSE;
    case InputKind::kText:
      return LF_INPUT_TEXT;
    case InputKind::kBytes:
      return LF_INPUT_BYTES;
  }
  return 0;
}

// Part of load check 8: the model is made for the pipeline's task. A model
// built before ABI 1.2 knows only classification, whatever it describes.
absl::Status CheckTask(const ResolvedPlugin& plugin,
                       const LfModelContract& contract,
                       const PipelineConfig& pipeline) {
  const LfPluginDescriptor* d = plugin.plugin.descriptor;
  if (pipeline.task == Task::kRegression) {
    if (d->abi_major == 1 && d->abi_minor < 2) {
      return absl::FailedPreconditionError(absl::StrCat(
          Prefix(plugin), "built for ABI ", d->abi_major, ".", d->abi_minor,
          ", before regression pipelines (ABI 1.2); it cannot serve a "
          "pipeline with task 'regression'"));
    }
    if (contract.num_classes > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          Prefix(plugin), "describes ", contract.num_classes,
          " classes, but the pipeline's task is 'regression' (a regression "
          "model declares none)"));
    }
  } else if (contract.num_classes == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        Prefix(plugin),
        "describes no classes (a regression model), but the pipeline's task "
        "is 'classification'"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// A model plugin's instance in this process.
class PluginModel final : public ModelInstance {
 public:
  PluginModel(const LfModelApi* api, void* instance, std::string context)
      : ModelInstance(std::move(context), false),
        api_(api),
        instance_(instance) {}
  ~PluginModel() override { api_->destroy(instance_); }

  absl::Status Infer(const LfBatch& batch, LfProbabilities& out) override {
    // The context is spelled out only for a failure: this runs for every
    // batch, and a success allocates nothing.
    LfStatus* status = api_->infer(instance_, &batch, &out);
    if (status == nullptr) return absl::OkStatus();
    return TakeStatus(status, absl::StrCat(context(), ": infer failed"));
  }

  using ModelInstance::set_reports_variance;

 private:
  const LfModelApi* api_;
  void* instance_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelInstance>> ModelInstance::Create(
    const ResolvedPlugin& plugin, const ModalityConfig& modality,
    const PipelineConfig& pipeline, ModelRole role) {
  const LfModelApi* api = plugin.plugin.descriptor->model;
  const std::string prefix = Prefix(plugin);
  const bool shadow = role == ModelRole::kShadow;
  const PluginRef& ref = shadow ? *modality.shadow : modality.model;
  CreateContext context(pipeline, ref.params_json, modality.name,
                        /*with_modalities=*/false);
  void* handle = nullptr;
  LATEFUSE_RETURN_IF_ERROR(TakeStatus(api->create(context.get(), &handle),
                                      absl::StrCat(prefix, "create failed")));
  if (handle == nullptr) {
    return absl::InternalError(
        absl::StrCat(prefix, "create returned no instance"));
  }
  auto instance = std::make_unique<PluginModel>(
      api, handle,
      CallContext(pipeline,
                  absl::StrCat("modality '", modality.name, "'",
                               shadow ? " shadow" : ""),
                  plugin));

  LfModelContract contract{};
  contract.struct_size = sizeof(LfModelContract);
  LATEFUSE_RETURN_IF_ERROR(TakeStatus(api->describe(handle, &contract),
                                      absl::StrCat(prefix, "describe failed")));
  LATEFUSE_RETURN_IF_ERROR(CheckTask(plugin, contract, pipeline));
  const int32_t kind = ToAbi(modality.input_kind);
  const std::size_t width =
      modality.input_kind == InputKind::kDense ? modality.input_size : 0;
  if (contract.input_kind != kind ||
      (kind == LF_INPUT_DENSE && contract.input_width != width)) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "describes its input as ",
                     DescribeInput(contract.input_kind, contract.input_width),
                     ", but the pipeline's modality '", modality.name,
                     "' gives it ", DescribeInput(kind, width)));
  }
  if (pipeline.task == Task::kRegression) {
    instance->set_reports_variance(contract.reports_variance != 0);
    return instance;
  }
  std::vector<std::string> labels;
  for (std::size_t c = 0; c < contract.num_classes; ++c) {
    labels.emplace_back(contract.class_labels != nullptr &&
                                contract.class_labels[c] != nullptr
                            ? contract.class_labels[c]
                            : "");
  }
  if (labels != pipeline.classes) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "describes classes [", absl::StrJoin(labels, ", "),
                     "], but the pipeline's classes are [",
                     absl::StrJoin(pipeline.classes, ", "),
                     "] (the same labels in the same order are needed)"));
  }
  return instance;
}

absl::StatusOr<std::unique_ptr<CombinerInstance>> CombinerInstance::Create(
    const ResolvedPlugin& plugin, const PipelineConfig& pipeline) {
  const LfCombinerApi* api = plugin.plugin.descriptor->combiner;
  const std::string prefix = Prefix(plugin);
  CreateContext context(pipeline, pipeline.combiner.params_json, "combiner",
                        /*with_modalities=*/true);
  void* handle = nullptr;
  LATEFUSE_RETURN_IF_ERROR(TakeStatus(api->create(context.get(), &handle),
                                      absl::StrCat(prefix, "create failed")));
  if (handle == nullptr) {
    return absl::InternalError(
        absl::StrCat(prefix, "create returned no instance"));
  }
  LfCombinerContract contract{};
  contract.struct_size = sizeof(LfCombinerContract);
  LfStatus* described = api->describe(handle, &contract);
  std::unique_ptr<CombinerInstance> instance(new CombinerInstance(
      api, handle, CallContext(pipeline, "combiner", plugin),
      contract.explains != 0));
  LATEFUSE_RETURN_IF_ERROR(
      TakeStatus(described, absl::StrCat(prefix, "describe failed")));
  return instance;
}

CombinerInstance::~CombinerInstance() { api_->destroy(instance_); }

absl::Status CombinerInstance::Combine(const LfCombineInput& input,
                                       LfCombineOutput& out) {
  // As Infer: no message built for a success.
  LfStatus* status = api_->combine(instance_, &input, &out);
  if (status == nullptr) return absl::OkStatus();
  return TakeStatus(status, absl::StrCat(context_, ": combine failed"));
}

absl::Status CheckTrainable(const ResolvedPlugin& combiner) {
  const LfCombinerApi* api = combiner.plugin.descriptor->combiner;
  if (api != nullptr && LF_HAS_MEMBER(api, LfCombinerApi, fit) &&
      api->fit != nullptr) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat(Prefix(combiner), "cannot be fitted: version ",
                   combiner.plugin.descriptor->version,
                   " has no fit; remove `fit:` from the pipeline's combiner"));
}

absl::StatusOr<std::string> FitCombiner(const ResolvedPlugin& combiner,
                                        const PipelineConfig& pipeline,
                                        const LfFitData& data) {
  LATEFUSE_RETURN_IF_ERROR(CheckTrainable(combiner));
  // The context points into this string: it must outlive the call.
  const std::string options = pipeline.combiner.fit_json.value_or("{}");
  CreateContext context(pipeline, options, "combiner",
                        /*with_modalities=*/true);
  std::string text;
  const LfTextSink sink{sizeof(LfTextSink), &text,
                        [](void* out, const char* text_data, size_t size) {
                          static_cast<std::string*>(out)->append(text_data,
                                                                 size);
                        }};
  LATEFUSE_RETURN_IF_ERROR(TakeStatus(
      combiner.plugin.descriptor->combiner->fit(context.get(), &data, &sink),
      absl::StrCat(Prefix(combiner), "fit failed")));
  return text;
}

}  // namespace latefuse
