// The latefuse SDK's test harness: run one plugin on a batch, with no host.
//
// Loads a plugin library the way the host does (dlopen, the entry symbol, the
// ABI and descriptor checks), hands it a minimal host API, and calls create,
// describe, infer and combine through the C ABI, checking every answer as the
// host would (probabilities finite, in [0, 1] and summing to 1; regression
// rows a finite prediction and a valid variance). A plugin team tests its
// plugin with it alone, as MediaPipe's CalculatorRunner tests one calculator:
//
//   namespace lft = latefuse::sdk::testing;
//   auto plugin = lft::Plugin::Load("build/threshold/1.0.0/threshold.so");
//   if (!plugin.ok()) return Fail(plugin.status().message());
//   auto model = plugin->CreateModel({R"({"cut": 2.0})", {"low", "high"}});
//   if (!model.ok()) return Fail(model.status().message());
//   const std::vector<float> rows = {1.0f, 3.0f};   // [2 rows, width 1]
//   auto p = model->InferDense(rows.data(), 2, 1);  // one infer call
//   if (!p.ok()) return Fail(p.status().message());
//   p->At(1, 1);                                    // row 1's P(high): 0.9
//
// Every failure is an sdk::Status whose message says what and where, prefixed
// "plugin '<name>' (<path>): " as the host's are. Header-only, like the rest of
// the SDK: needs C++17, nlohmann_json and libdl (CMake: link
// LateFuse::testing). Linux and other ELF systems. Plugins are never unloaded,
// as in the host. One process should not load the same library through both
// this harness and a host: a plugin keeps the host API of its last caller.
#ifndef LATEFUSE_TESTING_HPP_
#define LATEFUSE_TESTING_HPP_

#include <dlfcn.h>
#include <latefuse/plugin.h>
#include <sys/stat.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <latefuse/plugin.hpp>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace latefuse::sdk::testing {

// What the descriptor of a loaded plugin says.
struct PluginInfo {
  LfPluginKind kind = LF_KIND_MODEL;
  std::string name;
  std::string version;
  std::string description;
  std::string license;
  std::string build_info;
  int abi_major = 0;
  int abi_minor = 0;
};

// What an instance is created from: the host's LfCreateContext, as a pipeline
// would fill it. `{params_json, classes}` for a model, `{params_json, classes,
// modalities}` for a combiner; set task or base_dir after.
struct InstanceOptions {
  InstanceOptions(std::string params = "{}",  // NOLINT: implicit, for {...}
                  std::vector<std::string> class_labels = {},
                  std::vector<std::string> modality_names = {})
      : params_json(std::move(params)),
        classes(std::move(class_labels)),
        modalities(std::move(modality_names)) {}

  // The plugin's params, JSON text of an object (a pipeline's `params`).
  std::string params_json;
  // The pipeline's class labels, in order; empty for regression. When set, a
  // model must describe exactly these, as the host requires.
  std::vector<std::string> classes;
  // Combiners: the pipeline's modality names (the K axis). Models: empty.
  std::vector<std::string> modalities;
  LfTask task = LF_TASK_CLASSIFICATION;
  // Where relative paths in params resolve; empty: the current directory.
  std::filesystem::path base_dir;
  // The modality name a model serves; combiners always get "combiner".
  std::string instance_name = "harness";
};

// A row-major [rows, columns] float64 block: a model's or combiner's answer.
struct Matrix {
  std::size_t rows = 0;
  std::size_t columns = 0;
  std::vector<double> values;

  const double* Row(std::size_t r) const { return values.data() + r * columns; }
  double At(std::size_t r, std::size_t c) const { return Row(r)[c]; }
};

// A combiner's answer: [rows, C] and, when asked for and the combiner explains
// itself, the [rows, K] explanation (else empty).
struct Fused {
  Matrix probabilities;
  Matrix explanation;
};

namespace internal {

// What make_status hands out. LfStatus stays opaque: the host defines it, and a
// program may link both (the tests do), so the harness uses its own type.
struct HarnessStatus {
  int32_t code;
  std::string message;
};

inline LfStatus* MakeStatus(int32_t code, const char* message,
                            size_t message_size) {
  // An error reported with code 0 (OK) is still an error.
  if (code <= 0) code = LF_CODE_UNKNOWN;
  auto* status = new HarnessStatus{
      code,
      message == nullptr ? std::string() : std::string(message, message_size)};
  return reinterpret_cast<LfStatus*>(status);
}

inline void Log(int32_t level, const char* message, size_t message_size) {
  static constexpr const char* kLevels[] = {"debug", "info", "warning",
                                            "error"};
  const char* name = level >= 0 && level <= 3 ? kLevels[level] : "log";
  std::fprintf(stderr, "latefuse harness: plugin %s: %.*s\n", name,
               static_cast<int>(message_size),
               message == nullptr ? "" : message);
}

inline const LfHostApi* HostApi() {
  static const LfHostApi api = {sizeof(LfHostApi), LATEFUSE_ABI_MAJOR,
                                LATEFUSE_ABI_MINOR, &MakeStatus, &Log};
  return &api;
}

// Takes ownership of a plugin's status (NULL = success).
inline Status TakeStatus(LfStatus* status, const std::string& context) {
  if (status == nullptr) return Status();
  std::unique_ptr<HarnessStatus> owned(
      reinterpret_cast<HarnessStatus*>(status));
  return Status(static_cast<LfStatusCode>(owned->code),
                context + ": " + owned->message);
}

inline std::string InputName(int32_t kind, std::size_t width) {
  switch (kind) {
    case LF_INPUT_DENSE:
      return "dense of width " + std::to_string(width);
    case LF_INPUT_TEXT:
      return "text";
    case LF_INPUT_BYTES:
      return "bytes";
    default:
      return "unknown input kind " + std::to_string(kind);
  }
}

inline std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// The host's LfCreateContext for `options`, owning what it points at.
class Context {
 public:
  Context(const InstanceOptions& options, std::string instance_name)
      : options_(options), instance_name_(std::move(instance_name)) {
    std::error_code ec;
    const std::filesystem::path base =
        options.base_dir.empty() ? std::filesystem::current_path(ec)
                                 : std::filesystem::absolute(options.base_dir);
    base_dir_ = base.string();
    for (const std::string& c : options_.classes) classes_.push_back(c.c_str());
    for (const std::string& m : options_.modalities)
      modalities_.push_back(m.c_str());
    context_ = LfCreateContext{};
    context_.struct_size = sizeof(LfCreateContext);
    context_.params_json = options_.params_json.data();
    context_.params_json_size = options_.params_json.size();
    context_.base_dir = base_dir_.c_str();
    context_.instance_name = instance_name_.c_str();
    context_.num_classes = classes_.size();
    context_.class_labels = classes_.empty() ? nullptr : classes_.data();
    context_.num_modalities = modalities_.size();
    context_.modality_names =
        modalities_.empty() ? nullptr : modalities_.data();
    context_.task = options_.task;
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  const LfCreateContext* get() const { return &context_; }

 private:
  InstanceOptions options_;
  std::string instance_name_;
  std::string base_dir_;
  std::vector<const char*> classes_;
  std::vector<const char*> modalities_;
  LfCreateContext context_;
};

// Empty when row r of `m` is what the host accepts, else why not.
// Classification: each value finite in [0, 1], the row summing to 1 within
// 1e-6. Regression (2 columns): a finite prediction; a variance NaN (`variance`
// "none"), finite and >= 0 ("reported") or either ("either", a combiner's).
inline std::string CheckRow(const Matrix& m, std::size_t r, LfTask task,
                            std::string_view variance) {
  const double* row = m.Row(r);
  if (task == LF_TASK_REGRESSION) {
    if (!std::isfinite(row[0])) {
      return "returned prediction " + std::to_string(row[0]) + " (not finite)";
    }
    const bool reported = std::isfinite(row[1]) && row[1] >= 0.0;
    if (variance == "none" && !std::isnan(row[1])) {
      return "returned variance " + std::to_string(row[1]) +
             " but its contract reports none (NaN expected)";
    }
    if (variance == "reported" && !reported) {
      return "returned variance " + std::to_string(row[1]) +
             " (its contract reports one: finite and >= 0 expected)";
    }
    if (variance == "either" && !reported && !std::isnan(row[1])) {
      return "returned variance " + std::to_string(row[1]) +
             " (NaN, or finite and >= 0 expected)";
    }
    return "";
  }
  double sum = 0.0;
  for (std::size_t c = 0; c < m.columns; ++c) {
    if (!std::isfinite(row[c]) || row[c] < 0.0 || row[c] > 1.0) {
      return "returned " + std::to_string(row[c]) + " as a probability";
    }
    sum += row[c];
  }
  if (std::abs(sum - 1.0) > 1e-6) {
    return "returned probabilities summing to " + std::to_string(sum);
  }
  return "";
}

inline Status CheckRows(const Matrix& m, LfTask task, std::string_view variance,
                        const std::string& context) {
  for (std::size_t r = 0; r < m.rows; ++r) {
    std::string why = CheckRow(m, r, task, variance);
    if (!why.empty()) {
      return Internal(context + ": row " + std::to_string(r) + ": " + why);
    }
  }
  return Status();
}

}  // namespace internal

// A model instance; destroyed with this object. Call from one thread at a time.
class Model {
 public:
  Model(Model&& other) noexcept { *this = std::move(other); }
  Model& operator=(Model&& other) noexcept {
    std::swap(api_, other.api_);
    std::swap(instance_, other.instance_);
    std::swap(contract_, other.contract_);
    std::swap(task_, other.task_);
    std::swap(prefix_, other.prefix_);
    return *this;
  }
  ~Model() {
    if (instance_ != nullptr) api_->destroy(instance_);
  }

  // What describe said, read once after create.
  const ModelContract& contract() const { return contract_; }

  // Dense rows: `rows * width` float32 values, row-major. `width` must be the
  // contract's. One infer call for the whole batch.
  Result<Matrix> InferDense(const float* values, std::size_t rows,
                            std::size_t width) {
    if (contract_.input_kind != LF_INPUT_DENSE ||
        width != contract_.input_width) {
      return InvalidArgument(
          prefix_ + "its contract's input is " +
          internal::InputName(contract_.input_kind, contract_.input_width) +
          ", but the batch is " + internal::InputName(LF_INPUT_DENSE, width));
    }
    LfBatch batch{sizeof(LfBatch), LF_INPUT_DENSE, rows,
                  width,           values,         nullptr};
    return Infer(batch);
  }

  // Text rows (UTF-8), one string per row.
  Result<Matrix> InferText(const std::vector<std::string>& rows) {
    return InferItems(LF_INPUT_TEXT, rows);
  }

  // Bytes rows, one blob per row.
  Result<Matrix> InferBytes(const std::vector<std::string>& rows) {
    return InferItems(LF_INPUT_BYTES, rows);
  }

 private:
  friend class Plugin;
  Model(const LfModelApi* api, void* instance, LfTask task, std::string prefix)
      : api_(api),
        instance_(instance),
        task_(task),
        prefix_(std::move(prefix)) {}

  Result<Matrix> InferItems(LfInputKind kind,
                            const std::vector<std::string>& rows) {
    if (contract_.input_kind != kind) {
      return InvalidArgument(
          prefix_ + "its contract's input is " +
          internal::InputName(contract_.input_kind, contract_.input_width) +
          ", but the batch is " + internal::InputName(kind, 0));
    }
    std::vector<LfBytesView> items;
    items.reserve(rows.size());
    for (const std::string& row : rows)
      items.push_back({row.data(), row.size()});
    LfBatch batch{sizeof(LfBatch), kind, rows.size(), 0, nullptr, items.data()};
    return Infer(batch);
  }

  Result<Matrix> Infer(const LfBatch& batch) {
    if (batch.rows == 0) return InvalidArgument(prefix_ + "empty batch");
    Matrix out;
    out.rows = batch.rows;
    out.columns = task_ == LF_TASK_REGRESSION ? 2 : contract_.classes.size();
    // NaN everywhere, so a row the plugin leaves unwritten fails the check.
    out.values.assign(out.rows * out.columns,
                      std::numeric_limits<double>::quiet_NaN());
    LfProbabilities probabilities{sizeof(LfProbabilities), out.rows,
                                  out.columns, out.values.data()};
    LATEFUSE_SDK_RETURN_IF_ERROR(
        internal::TakeStatus(api_->infer(instance_, &batch, &probabilities),
                             prefix_ + "infer failed"));
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::CheckRows(
        out, task_, contract_.reports_variance ? "reported" : "none",
        prefix_ + "infer"));
    return Result<Matrix>(std::move(out));
  }

  const LfModelApi* api_ = nullptr;
  void* instance_ = nullptr;
  ModelContract contract_;
  LfTask task_ = LF_TASK_CLASSIFICATION;
  std::string prefix_;
};

// A combiner instance; destroyed with this object. Call from one thread at a
// time.
class Combiner {
 public:
  Combiner(Combiner&& other) noexcept { *this = std::move(other); }
  Combiner& operator=(Combiner&& other) noexcept {
    std::swap(api_, other.api_);
    std::swap(instance_, other.instance_);
    std::swap(contract_, other.contract_);
    std::swap(task_, other.task_);
    std::swap(modalities_, other.modalities_);
    std::swap(classes_, other.classes_);
    std::swap(prefix_, other.prefix_);
    return *this;
  }
  ~Combiner() {
    if (instance_ != nullptr) api_->destroy(instance_);
  }

  const CombinerContract& contract() const { return contract_; }

  // Fuses `rows` rows in one call. `probabilities` is [K, rows, C] (C: the
  // classes, or 2 for regression), `present` [K, rows] (1 = present), K the
  // options' modalities. Every row needs a present modality, as the host
  // guarantees. Absent entries are passed as NaN, so a combiner that reads
  // them fails the output check. `explain` asks for the explanation.
  Result<Fused> Combine(const double* probabilities, const uint8_t* present,
                        std::size_t rows, bool explain = false) {
    if (rows == 0) return InvalidArgument(prefix_ + "empty batch");
    const std::size_t k_count = modalities_;
    const std::size_t c_count = classes_;
    std::vector<double> block(probabilities,
                              probabilities + k_count * rows * c_count);
    for (std::size_t r = 0; r < rows; ++r) {
      bool any = false;
      for (std::size_t k = 0; k < k_count; ++k) {
        if (present[k * rows + r] != 0) {
          any = true;
          continue;
        }
        for (std::size_t c = 0; c < c_count; ++c) {
          block[(k * rows + r) * c_count + c] =
              std::numeric_limits<double>::quiet_NaN();
        }
      }
      if (!any) {
        return InvalidArgument(prefix_ + "row " + std::to_string(r) +
                               " has no modality present (the host never "
                               "combines such a row)");
      }
    }
    Fused fused;
    fused.probabilities = {
        rows, c_count,
        std::vector<double>(rows * c_count,
                            std::numeric_limits<double>::quiet_NaN())};
    const bool explains = explain && contract_.explains;
    if (explains) {
      fused.explanation = {rows, k_count,
                           std::vector<double>(rows * k_count, 0.0)};
    }
    const LfCombineInput input{sizeof(LfCombineInput), k_count, rows, c_count,
                               block.data(),           present};
    LfCombineOutput out{sizeof(LfCombineOutput),
                        fused.probabilities.values.data(),
                        explains ? fused.explanation.values.data() : nullptr};
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::TakeStatus(
        api_->combine(instance_, &input, &out), prefix_ + "combine failed"));
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::CheckRows(
        fused.probabilities, task_, "either", prefix_ + "combine"));
    return Result<Fused>(std::move(fused));
  }

 private:
  friend class Plugin;
  Combiner(const LfCombinerApi* api, void* instance, LfTask task,
           std::size_t modalities, std::size_t classes, std::string prefix)
      : api_(api),
        instance_(instance),
        task_(task),
        modalities_(modalities),
        classes_(classes),
        prefix_(std::move(prefix)) {}

  const LfCombinerApi* api_ = nullptr;
  void* instance_ = nullptr;
  CombinerContract contract_;
  LfTask task_ = LF_TASK_CLASSIFICATION;
  std::size_t modalities_ = 0;  // K
  std::size_t classes_ = 0;     // C
  std::string prefix_;
};

// A loaded plugin library. Cheap to copy; the library stays loaded for the
// life of the process, as in the host.
class Plugin {
 public:
  // Loads `file` with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE and checks, as the
  // host does: a regular file that neither it nor its folder lets group or
  // others write; the entry symbol (a `_v2` one alone: built for a newer ABI),
  // the ABI (same major, minor not newer than this SDK's), the descriptor
  // (name, version, kind and its function table).
  static Result<Plugin> Load(const std::filesystem::path& file) {
    // Absolute: dlopen searches the library path for a name without a slash.
    const std::filesystem::path path = std::filesystem::absolute(file);
    const std::string prefix =
        "plugin '" + path.stem().string() + "' (" + path.string() + "): ";
    LATEFUSE_SDK_RETURN_IF_ERROR(CheckWritable(path, prefix));
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (library == nullptr) {
      const char* why = dlerror();
      return FailedPrecondition(
          prefix + "cannot load: " + (why != nullptr ? why : "unknown error"));
    }
    void* entry = dlsym(library, LATEFUSE_ENTRY_SYMBOL);
    if (entry == nullptr) {
      if (dlsym(library, "latefuse_plugin_v2") != nullptr) {
        return FailedPrecondition(
            prefix + "exports 'latefuse_plugin_v2' but not '" +
            LATEFUSE_ENTRY_SYMBOL + "': built for a newer ABI (major 2) than " +
            "this SDK's " + AbiText(LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR));
      }
      return FailedPrecondition(
          prefix + "no entry symbol '" + LATEFUSE_ENTRY_SYMBOL +
          "': not a latefuse plugin, or not built with latefuse_add_plugin()");
    }
    const LfPluginDescriptor* d =
        reinterpret_cast<LfPluginEntryFn>(entry)(internal::HostApi());
    if (d == nullptr) {
      return FailedPrecondition(prefix +
                                "its entry point returned no "
                                "descriptor");
    }
    if (!LF_HAS_MEMBER(d, LfPluginDescriptor, abi_minor) ||
        d->abi_major != LATEFUSE_ABI_MAJOR) {
      return FailedPrecondition(
          prefix + "built for ABI " + AbiText(d->abi_major, d->abi_minor) +
          ", but this SDK speaks ABI " +
          AbiText(LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR));
    }
    if (d->abi_minor > LATEFUSE_ABI_MINOR) {
      return FailedPrecondition(
          prefix + "built for ABI " + AbiText(d->abi_major, d->abi_minor) +
          ", newer than this SDK's " +
          AbiText(LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR) +
          "; use a newer latefuse SDK or rebuild the plugin against this one");
    }
    LATEFUSE_SDK_RETURN_IF_ERROR(CheckDescriptor(*d, prefix));
    Plugin plugin;
    plugin.descriptor_ = d;
    plugin.path_ = path;
    plugin.prefix_ =
        "plugin '" + std::string(d->name) + "' (" + path.string() + "): ";
    plugin.info_ = {static_cast<LfPluginKind>(d->kind),
                    d->name,
                    d->version,
                    d->description != nullptr ? d->description : "",
                    d->license != nullptr ? d->license : "",
                    d->build_info != nullptr ? d->build_info : "",
                    d->abi_major,
                    d->abi_minor};
    return plugin;
  }

  const PluginInfo& info() const { return info_; }
  const LfPluginDescriptor& descriptor() const { return *descriptor_; }
  const std::filesystem::path& path() const { return path_; }

  // Creates a model and reads its contract, refusing, as the host does, a
  // contract that does not fit the task (classification: classes declared,
  // and equal to options.classes when those are given; regression: none, and
  // ABI >= 1.2).
  Result<Model> CreateModel(const InstanceOptions& options) const {
    if (info_.kind != LF_KIND_MODEL) {
      return FailedPrecondition(prefix_ + "is a combiner, not a model");
    }
    const LfModelApi* api = descriptor_->model;
    internal::Context context(options, options.instance_name);
    void* handle = nullptr;
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::TakeStatus(
        api->create(context.get(), &handle), prefix_ + "create failed"));
    if (handle == nullptr) {
      return Internal(prefix_ + "create returned no instance");
    }
    Model model(api, handle, options.task, prefix_);
    LfModelContract c{};
    c.struct_size = sizeof(LfModelContract);
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::TakeStatus(
        api->describe(handle, &c), prefix_ + "describe failed"));
    model.contract_.input_kind = static_cast<LfInputKind>(c.input_kind);
    model.contract_.input_width =
        c.input_kind == LF_INPUT_DENSE ? c.input_width : 0;
    for (std::size_t i = 0; i < c.num_classes; ++i) {
      model.contract_.classes.emplace_back(c.class_labels != nullptr &&
                                                   c.class_labels[i] != nullptr
                                               ? c.class_labels[i]
                                               : "");
    }
    model.contract_.reports_variance = c.reports_variance != 0;
    if (c.input_kind != LF_INPUT_DENSE && c.input_kind != LF_INPUT_TEXT &&
        c.input_kind != LF_INPUT_BYTES) {
      return FailedPrecondition(prefix_ + "describes an unknown input kind " +
                                std::to_string(c.input_kind));
    }
    if (c.input_kind == LF_INPUT_DENSE && c.input_width == 0) {
      return FailedPrecondition(prefix_ + "describes dense input of width 0");
    }
    LATEFUSE_SDK_RETURN_IF_ERROR(CheckTask(model.contract_, options));
    return Result<Model>(std::move(model));
  }

  // Creates a combiner for options.modalities (K) and options.classes (C; 2
  // for regression).
  Result<Combiner> CreateCombiner(const InstanceOptions& options) const {
    if (info_.kind != LF_KIND_COMBINER) {
      return FailedPrecondition(prefix_ + "is a model, not a combiner");
    }
    if (options.modalities.empty()) {
      return InvalidArgument(prefix_ +
                             "a combiner needs the pipeline's modalities");
    }
    if (options.task == LF_TASK_CLASSIFICATION && options.classes.size() < 2) {
      return InvalidArgument(
          prefix_ + "a classification combiner needs the pipeline's classes");
    }
    const LfCombinerApi* api = descriptor_->combiner;
    internal::Context context(options, "combiner");
    void* handle = nullptr;
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::TakeStatus(
        api->create(context.get(), &handle), prefix_ + "create failed"));
    if (handle == nullptr) {
      return Internal(prefix_ + "create returned no instance");
    }
    Combiner combiner(
        api, handle, options.task, options.modalities.size(),
        options.task == LF_TASK_REGRESSION ? 2 : options.classes.size(),
        prefix_);
    LfCombinerContract c{};
    c.struct_size = sizeof(LfCombinerContract);
    LATEFUSE_SDK_RETURN_IF_ERROR(internal::TakeStatus(
        api->describe(handle, &c), prefix_ + "describe failed"));
    combiner.contract_.explains = c.explains != 0;
    return Result<Combiner>(std::move(combiner));
  }

 private:
  static std::string AbiText(int major, int minor) {
    return std::to_string(major) + "." + std::to_string(minor);
  }

  // The host refuses such files; better to hear it from the harness first.
  static Status CheckWritable(const std::filesystem::path& path,
                              const std::string& prefix) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      return NotFound(prefix + "no such file");
    }
    if (!S_ISREG(st.st_mode)) {
      return FailedPrecondition(prefix + "not a regular file");
    }
    struct stat dir {};
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
        (stat(path.parent_path().c_str(), &dir) == 0 &&
         (dir.st_mode & (S_IWGRP | S_IWOTH)) != 0)) {
      return FailedPrecondition(
          prefix +
          "it or its folder is writable by group or others; the host refuses "
          "to load it (chmod go-w)");
    }
    return Status();
  }

  static Status CheckDescriptor(const LfPluginDescriptor& d,
                                const std::string& prefix) {
    if (!LF_HAS_MEMBER(&d, LfPluginDescriptor, combiner)) {
      return FailedPrecondition(prefix + "descriptor is " +
                                std::to_string(d.struct_size) +
                                " bytes, smaller than ABI 1.0's");
    }
    if (d.name == nullptr || *d.name == '\0') {
      return FailedPrecondition(prefix + "descriptor has no name");
    }
    if (d.version == nullptr || *d.version == '\0') {
      return FailedPrecondition(prefix + "descriptor has no version");
    }
    if (d.kind == LF_KIND_MODEL) {
      const LfModelApi* api = d.model;
      if (api == nullptr || !LF_HAS_MEMBER(api, LfModelApi, infer) ||
          api->create == nullptr || api->destroy == nullptr ||
          api->describe == nullptr || api->infer == nullptr) {
        return FailedPrecondition(prefix +
                                  "model function table incomplete (needs "
                                  "create, destroy, describe, infer)");
      }
    } else if (d.kind == LF_KIND_COMBINER) {
      const LfCombinerApi* api = d.combiner;
      if (api == nullptr || !LF_HAS_MEMBER(api, LfCombinerApi, combine) ||
          api->create == nullptr || api->destroy == nullptr ||
          api->describe == nullptr || api->combine == nullptr) {
        return FailedPrecondition(prefix +
                                  "combiner function table incomplete (needs "
                                  "create, destroy, describe, combine)");
      }
    } else {
      return FailedPrecondition(prefix + "unknown plugin kind " +
                                std::to_string(d.kind));
    }
    return Status();
  }

  Status CheckTask(const ModelContract& contract,
                   const InstanceOptions& options) const {
    if (options.task == LF_TASK_REGRESSION) {
      if (info_.abi_minor < 2) {
        return FailedPrecondition(prefix_ + "built for ABI " +
                                  AbiText(info_.abi_major, info_.abi_minor) +
                                  ", before regression pipelines (ABI 1.2)");
      }
      if (!contract.classes.empty()) {
        return FailedPrecondition(
            prefix_ + "describes " + std::to_string(contract.classes.size()) +
            " classes, but the task is 'regression' (a regression model "
            "declares none)");
      }
      return Status();
    }
    if (contract.classes.empty()) {
      return FailedPrecondition(prefix_ +
                                "describes no classes (a regression model), "
                                "but the task is 'classification'");
    }
    if (!options.classes.empty() && contract.classes != options.classes) {
      return FailedPrecondition(
          prefix_ + "describes classes [" + internal::Join(contract.classes) +
          "], but the given classes are [" + internal::Join(options.classes) +
          "] (the same labels in the same order are needed)");
    }
    return Status();
  }

  const LfPluginDescriptor* descriptor_ = nullptr;
  std::filesystem::path path_;
  std::string prefix_;
  PluginInfo info_;
};

}  // namespace latefuse::sdk::testing

#endif  // LATEFUSE_TESTING_HPP_
