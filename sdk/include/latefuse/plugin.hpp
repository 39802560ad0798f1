// The latefuse plugin SDK for C++: write a plain class, get the C ABI of
// <latefuse/plugin.h>.
//
// A model plugin:
//
//   class EchoModel {
//    public:
//     static latefuse::sdk::Result<std::unique_ptr<EchoModel>> Create(
//         const latefuse::sdk::CreateContext& context);
//     latefuse::sdk::ModelContract Describe() const;
//     latefuse::sdk::Status Infer(const latefuse::sdk::Batch& batch,
//                                 latefuse::sdk::ProbabilitiesOut& out);
//   };
//   LATEFUSE_MODEL_PLUGIN(EchoModel, "echo", "1.0.0", "Echoes its input",
//   "Apache-2.0")
//
// A combiner plugin has the same Create, `CombinerContract Describe() const`
// and `Status Combine(const CombineInput&, CombineOutput&)`, registered with
// LATEFUSE_COMBINER_PLUGIN.
//
// The adaptor catches every exception a method throws and turns it into an
// error status, so no exception ever crosses into the host. Header-only; needs
// C++17 and nlohmann_json.
#ifndef LATEFUSE_PLUGIN_HPP_
#define LATEFUSE_PLUGIN_HPP_

#include <latefuse/plugin.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace latefuse::sdk {

// ---- Status and Result
// ----------------------------------------------------------------

// Success, or an error code with a message. Cheap to return.
class Status {
 public:
  Status() = default;
  Status(LfStatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == 0; }
  int32_t code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  int32_t code_ = 0;
  std::string message_;
};

inline Status InvalidArgument(std::string message) {
  return Status(LF_CODE_INVALID_ARGUMENT, std::move(message));
}
inline Status FailedPrecondition(std::string message) {
  return Status(LF_CODE_FAILED_PRECONDITION, std::move(message));
}
inline Status NotFound(std::string message) {
  return Status(LF_CODE_NOT_FOUND, std::move(message));
}
inline Status Internal(std::string message) {
  return Status(LF_CODE_INTERNAL, std::move(message));
}

// A value or an error Status, as absl::StatusOr.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status() : std::get<Status>(value_); }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> value_;
};

#define LATEFUSE_SDK_CONCAT_INNER_(x, y) x##y
#define LATEFUSE_SDK_CONCAT_(x, y) LATEFUSE_SDK_CONCAT_INNER_(x, y)

#define LATEFUSE_SDK_RETURN_IF_ERROR(expr)                     \
  do {                                                         \
    if (::latefuse::sdk::Status latefuse_sdk_status_ = (expr); \
        !latefuse_sdk_status_.ok()) {                          \
      return latefuse_sdk_status_;                             \
    }                                                          \
  } while (false)

#define LATEFUSE_SDK_ASSIGN_OR_RETURN_IMPL_(result, lhs, rexpr) \
  auto result = (rexpr);                                        \
  if (!result.ok()) return result.status();                     \
  lhs = *std::move(result)

#define LATEFUSE_SDK_ASSIGN_OR_RETURN(lhs, rexpr) \
  LATEFUSE_SDK_ASSIGN_OR_RETURN_IMPL_(            \
      LATEFUSE_SDK_CONCAT_(latefuse_sdk_result_, __LINE__), lhs, rexpr)

// ---- Parameters
// ----------------------------------------------------------------------

// Typed access to a plugin's `params`, with errors that name the key:
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(auto path, context.params.GetPath("model"));
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(double t,
//   context.params.GetOr("temperature", 1.0));
class Params {
 public:
  static Result<Params> Parse(std::string_view json_text,
                              std::string base_dir) {
    nlohmann::json json = nlohmann::json::parse(json_text, nullptr, false);
    if (json.is_discarded()) return InvalidArgument("params: not valid JSON");
    if (json.is_null()) json = nlohmann::json::object();
    if (!json.is_object()) return InvalidArgument("params: expected a mapping");
    return Params(std::move(json), std::move(base_dir));
  }

  const nlohmann::json& json() const { return json_; }
  bool Has(const std::string& key) const { return json_.contains(key); }

  // The value of a required key, converted to T.
  template <typename T>
  Result<T> Get(const std::string& key) const {
    if (!Has(key)) {
      return InvalidArgument("params." + key + ": missing required parameter");
    }
    return Convert<T>(json_.at(key), "params." + key);
  }

  // The value of an optional key, or `fallback` when it is absent or null.
  template <typename T>
  Result<T> GetOr(const std::string& key, T fallback) const {
    if (!Has(key) || json_.at(key).is_null()) return fallback;
    return Convert<T>(json_.at(key), "params." + key);
  }

  // A required path parameter, resolved against the pipeline file's directory.
  Result<std::filesystem::path> GetPath(const std::string& key) const {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string text, Get<std::string>(key));
    if (text.empty()) return InvalidArgument("params." + key + ": empty path");
    std::filesystem::path path(text);
    if (path.is_relative()) path = std::filesystem::path(base_dir_) / path;
    return path.lexically_normal();
  }

  // Converts `value` to T or names `where` in the error.
  template <typename T>
  static Result<T> Convert(const nlohmann::json& value,
                           const std::string& where) {
    if constexpr (std::is_same_v<T, bool>) {
      if (!value.is_boolean()) return TypeError(where, "a boolean", value);
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (!value.is_number()) return TypeError(where, "a number", value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!value.is_string()) return TypeError(where, "a string", value);
    }
    try {
      return value.get<T>();
    } catch (const std::exception& e) {
      return InvalidArgument(where + ": " + e.what());
    }
  }

 private:
  Params(nlohmann::json json, std::string base_dir)
      : json_(std::move(json)), base_dir_(std::move(base_dir)) {}

  static Status TypeError(const std::string& where, const char* expected,
                          const nlohmann::json& got) {
    return InvalidArgument(where + ": expected " + expected + ", got " +
                           got.dump());
  }

  nlohmann::json json_;
  std::string base_dir_;
};

// ---- What methods receive
// ---------------------------------------------------------------

// Everything Create receives; a copy, so it may be kept.
struct CreateContext {
  Params params;
  std::string base_dir;
  std::string instance_name;
  std::vector<std::string> classes;  // the pipeline's class labels, in order
                                     // (empty for regression)
  std::vector<std::string>
      modalities;  // combiners: the K axis, in pipeline order
  // Since ABI 1.2: the pipeline's task. A regression pipeline's models write
  // (prediction, variance) per row and its combiners fuse those.
  LfTask task = LF_TASK_CLASSIFICATION;
};

// A model's static contract: checked against the pipeline before anything runs.
struct ModelContract {
  LfInputKind input_kind = LF_INPUT_DENSE;
  std::size_t input_width = 0;       // dense only
  std::vector<std::string> classes;  // empty for a regression model
  // Since ABI 1.2. Regression models: true when Infer writes a variance in
  // column 1 of every row (NaN there otherwise).
  bool reports_variance = false;
};

struct CombinerContract {
  bool explains = false;  // fills CombineOutput::explanation when asked
};

// The present rows of one modality. Valid during the call only.
class Batch {
 public:
  explicit Batch(const LfBatch& batch) : batch_(batch) {}

  LfInputKind kind() const { return static_cast<LfInputKind>(batch_.kind); }
  std::size_t rows() const { return batch_.rows; }
  std::size_t width() const { return batch_.width; }
  // Dense: the features of row r.
  const float* Row(std::size_t r) const {
    return batch_.dense + r * batch_.width;
  }
  // Text or bytes: the item of row r.
  std::string_view Item(std::size_t r) const {
    return std::string_view(batch_.items[r].data, batch_.items[r].size);
  }

 private:
  const LfBatch& batch_;
};

// Host-allocated [rows, classes] probabilities. Regression pipelines: classes()
// is 2, Row(r)[0] the prediction and Row(r)[1] its variance (NaN when the
// model reports none).
class ProbabilitiesOut {
 public:
  explicit ProbabilitiesOut(const LfProbabilities& out) : out_(out) {}
  std::size_t rows() const { return out_.rows; }
  std::size_t classes() const { return out_.classes; }
  double* Row(std::size_t r) { return out_.data + r * out_.classes; }

 private:
  const LfProbabilities& out_;
};

// The [K, rows, C] probabilities and [K, rows] presence of a batch. Valid
// during the call. Regression pipelines: C is 2, (prediction, variance), and
// the output rows are (prediction, fused variance or NaN).
class CombineInput {
 public:
  explicit CombineInput(const LfCombineInput& in) : in_(in) {}
  std::size_t modalities() const { return in_.modalities; }
  std::size_t rows() const { return in_.rows; }
  std::size_t classes() const { return in_.classes; }
  bool Present(std::size_t k, std::size_t r) const {
    return in_.present[k * in_.rows + r] != 0;
  }
  // The C probabilities of modality k for row r; read only when Present(k, r).
  const double* Row(std::size_t k, std::size_t r) const {
    return in_.probabilities + (k * in_.rows + r) * in_.classes;
  }

 private:
  const LfCombineInput& in_;
};

class CombineOutput {
 public:
  CombineOutput(const LfCombineOutput& out, std::size_t classes,
                std::size_t modalities)
      : out_(out), classes_(classes), modalities_(modalities) {}
  double* Row(std::size_t r) { return out_.probabilities + r * classes_; }
  // Whether the host asked for per-row weights.
  bool explain() const { return out_.explanation != nullptr; }
  // The K weights of row r; only when explain().
  double* Explanation(std::size_t r) {
    return out_.explanation + r * modalities_;
  }

 private:
  const LfCombineOutput& out_;
  std::size_t classes_;
  std::size_t modalities_;
};

// Since ABI 1.1. The labelled [K, rows, C] probabilities a trainable combiner
// is fitted on. Valid during the call.
class FitData {
 public:
  explicit FitData(const LfFitData& data) : data_(data) {}
  std::size_t modalities() const { return data_.modalities; }
  std::size_t rows() const { return data_.rows; }
  std::size_t classes() const { return data_.classes; }
  bool Present(std::size_t k, std::size_t r) const {
    return data_.present[k * data_.rows + r] != 0;
  }
  // The C probabilities of modality k for row r; read only when Present(k, r).
  const double* Row(std::size_t k, std::size_t r) const {
    return data_.probabilities + (k * data_.rows + r) * data_.classes;
  }
  // Row r's class, an index into the pipeline's classes.
  std::size_t Label(std::size_t r) const {
    return static_cast<std::size_t>(data_.labels[r]);
  }
  std::uint64_t seed() const { return data_.seed; }

 private:
  const LfFitData& data_;
};

// ---- The adaptor
// ---------------------------------------------------------------------------

namespace internal {

// The host API handed to the entry point; one per plugin library (hidden
// visibility).
inline const LfHostApi*& HostApi() {
  static const LfHostApi* host = nullptr;
  return host;
}

inline LfStatus* ToC(const Status& status) {
  if (status.ok()) return nullptr;
  const LfHostApi* host = HostApi();
  return host->make_status(status.code(), status.message().data(),
                           status.message().size());
}

// Runs fn, which returns a Status, and turns any exception into an error
// status.
template <typename Fn>
LfStatus* Guard(const char* what, Fn&& fn) noexcept {
  try {
    return ToC(fn());
  } catch (const std::bad_alloc&) {
    return ToC(Status(LF_CODE_RESOURCE_EXHAUSTED,
                      std::string(what) + ": out of memory"));
  } catch (const std::exception& e) {
    return ToC(
        Internal(std::string(what) + ": unhandled exception: " + e.what()));
  } catch (...) {
    return ToC(
        Internal(std::string(what) + ": unhandled non-standard exception"));
  }
}

inline std::vector<std::string> Strings(const char* const* items,
                                        std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.emplace_back(items[i]);
  return out;
}

inline Result<CreateContext> ReadContext(const LfCreateContext* c) {
  std::string base_dir = c->base_dir != nullptr ? c->base_dir : "";
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      Params params,
      Params::Parse(std::string_view(c->params_json, c->params_json_size),
                    base_dir));
  const LfTask task =
      LF_HAS_MEMBER(c, LfCreateContext, task) && c->task == LF_TASK_REGRESSION
          ? LF_TASK_REGRESSION
          : LF_TASK_CLASSIFICATION;
  return CreateContext{std::move(params),
                       std::move(base_dir),
                       c->instance_name != nullptr ? c->instance_name : "",
                       Strings(c->class_labels, c->num_classes),
                       Strings(c->modality_names, c->num_modalities),
                       task};
}

// An instance as the host sees it: the user's object and what its contract
// points at.
template <typename T>
struct Box {
  std::unique_ptr<T> object;
  std::vector<std::string> labels;
  std::vector<const char*> label_pointers;
};

template <typename T>
LfStatus* Create(const LfCreateContext* context, void** instance) {
  return Guard("create", [&]() -> Status {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(CreateContext ctx, ReadContext(context));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::unique_ptr<T> object, T::Create(ctx));
    if (object == nullptr) return Internal("create returned no instance");
    *instance = new Box<T>{std::move(object), {}, {}};
    return Status();
  });
}

template <typename T>
void Destroy(void* instance) {
  delete static_cast<Box<T>*>(instance);
}

template <typename T>
LfStatus* DescribeModel(void* instance, LfModelContract* contract) {
  return Guard("describe", [&]() -> Status {
    auto* box = static_cast<Box<T>*>(instance);
    ModelContract described = box->object->Describe();
    box->labels = std::move(described.classes);
    box->label_pointers.clear();
    for (const std::string& label : box->labels) {
      box->label_pointers.push_back(label.c_str());
    }
    contract->input_kind = described.input_kind;
    contract->input_width = described.input_width;
    contract->num_classes = box->labels.size();
    contract->class_labels =
        box->labels.empty() ? nullptr : box->label_pointers.data();
    if (LF_HAS_MEMBER(contract, LfModelContract, reports_variance)) {
      contract->reports_variance = described.reports_variance ? 1 : 0;
    }
    return Status();
  });
}

template <typename T>
LfStatus* Infer(void* instance, const LfBatch* batch, LfProbabilities* out) {
  return Guard("infer", [&]() -> Status {
    Batch view(*batch);
    ProbabilitiesOut probabilities(*out);
    return static_cast<Box<T>*>(instance)->object->Infer(view, probabilities);
  });
}

template <typename T>
LfStatus* DescribeCombiner(void* instance, LfCombinerContract* contract) {
  return Guard("describe", [&]() -> Status {
    CombinerContract described =
        static_cast<Box<T>*>(instance)->object->Describe();
    contract->explains = described.explains ? 1 : 0;
    return Status();
  });
}

template <typename T>
LfStatus* Combine(void* instance, const LfCombineInput* input,
                  LfCombineOutput* out) {
  return Guard("combine", [&]() -> Status {
    CombineInput in(*input);
    CombineOutput fused(*out, input->classes, input->modalities);
    return static_cast<Box<T>*>(instance)->object->Combine(in, fused);
  });
}

// A combiner is trainable when it has
//   static Result<std::string> Fit(const CreateContext&, const FitData&);
// returning the JSON parameter file its Create reads back.
template <typename T, typename = void>
struct IsTrainable : std::false_type {};
template <typename T>
struct IsTrainable<
    T, std::void_t<decltype(T::Fit(std::declval<const CreateContext&>(),
                                   std::declval<const FitData&>()))>>
    : std::true_type {};

template <typename T>
LfStatus* Fit(const LfCreateContext* context, const LfFitData* data,
              const LfTextSink* out) {
  return Guard("fit", [&]() -> Status {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(CreateContext ctx, ReadContext(context));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string text,
                                  T::Fit(ctx, FitData(*data)));
    out->append(out->sink, text.data(), text.size());
    return Status();
  });
}

#define LATEFUSE_SDK_STRINGIFY_INNER_(x) #x
#define LATEFUSE_SDK_STRINGIFY_(x) LATEFUSE_SDK_STRINGIFY_INNER_(x)
#if defined(__clang__)
#define LATEFUSE_SDK_COMPILER_ "clang " __clang_version__
#elif defined(__GNUC__)
#define LATEFUSE_SDK_COMPILER_ "gcc " __VERSION__
#else
#define LATEFUSE_SDK_COMPILER_ "unknown compiler"
#endif
#define LATEFUSE_SDK_BUILD_INFO_ \
  LATEFUSE_SDK_COMPILER_ ", C++ " LATEFUSE_SDK_STRINGIFY_(__cplusplus)

template <typename T>
const LfModelApi* ModelApi() {
  static const LfModelApi api = {sizeof(LfModelApi), &Create<T>, &Destroy<T>,
                                 &DescribeModel<T>, &Infer<T>};
  return &api;
}

template <typename T>
const LfCombinerApi* CombinerApi() {
  using FitFn = LfStatus* (*)(const LfCreateContext*, const LfFitData*,
                              const LfTextSink*);
  FitFn fit = nullptr;
  if constexpr (IsTrainable<T>::value) fit = &Fit<T>;
  static const LfCombinerApi api = {sizeof(LfCombinerApi), &Create<T>,
                                    &Destroy<T>,           &DescribeCombiner<T>,
                                    &Combine<T>,           fit};
  return &api;
}

}  // namespace internal
}  // namespace latefuse::sdk

// Defines the plugin's entry point for a model class. Use once per shared
// library.
#define LATEFUSE_MODEL_PLUGIN(Class, name, version, description, license)  \
  extern "C" LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v1( \
      const LfHostApi* host) {                                             \
    ::latefuse::sdk::internal::HostApi() = host;                           \
    static const LfPluginDescriptor descriptor = {                         \
        sizeof(LfPluginDescriptor),                                        \
        LATEFUSE_ABI_MAJOR,                                                \
        LATEFUSE_ABI_MINOR,                                                \
        LF_KIND_MODEL,                                                     \
        name,                                                              \
        version,                                                           \
        description,                                                       \
        license,                                                           \
        LATEFUSE_SDK_BUILD_INFO_,                                          \
        ::latefuse::sdk::internal::ModelApi<Class>(),                      \
        nullptr};                                                          \
    return &descriptor;                                                    \
  }

// Defines the plugin's entry point for a combiner class. Use once per shared
// library.
#define LATEFUSE_COMBINER_PLUGIN(Class, name, version, description, license) \
  extern "C" LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v1(   \
      const LfHostApi* host) {                                               \
    ::latefuse::sdk::internal::HostApi() = host;                             \
    static const LfPluginDescriptor descriptor = {                           \
        sizeof(LfPluginDescriptor),                                          \
        LATEFUSE_ABI_MAJOR,                                                  \
        LATEFUSE_ABI_MINOR,                                                  \
        LF_KIND_COMBINER,                                                    \
        name,                                                                \
        version,                                                             \
        description,                                                         \
        license,                                                             \
        LATEFUSE_SDK_BUILD_INFO_,                                            \
        nullptr,                                                             \
        ::latefuse::sdk::internal::CombinerApi<Class>()};                    \
    return &descriptor;                                                      \
  }

#endif  // LATEFUSE_PLUGIN_HPP_
