// The pipeline file (`apiVersion: latefuse/v1`): reading it, validating all of
// it before anything is loaded, and the in-memory PipelineConfig it becomes.
//
//   absl::StatusOr<PipelineConfig> config = LoadPipelineFile("icu.yaml");
//   if (!config.ok()) {
//     // Every problem in the file, one per line, e.g.
//     // icu.yaml:14:7: modalities[1].input.size: expected a positive
//     //     integer, got "twelve"
//     std::cerr << config.status().message() << "\n";
//     return 2;
//   }
//   for (const ModalityConfig& m : config->modalities) {
//     std::cout << m.name << " -> " << m.model.plugin << " "
//               << m.model.constraint.ToString() << "\n";
//   }
//
// The file format is described in DESIGN.md, "Pipeline file".
#ifndef LATEFUSE_CORE_PIPELINE_CONFIG_H_
#define LATEFUSE_CORE_PIPELINE_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/semver.h"

namespace latefuse {

// What a modality's model takes as input.
enum class InputKind { kDense, kText, kBytes };
// What happens to a row whose model fails or times out.
enum class OnError { kMissing, kFail };
// What happens to a row with fewer present modalities than the policy needs.
enum class OnInsufficient { kAbstain, kError };
// Where a modality's model runs: in the host's process, or in a worker
// process of its own (isolation.h).
enum class Isolation { kInProcess, kProcess };
// What the pipeline predicts: class probabilities, or one real number (and
// its variance) per row.
enum class Task { kClassification, kRegression };

// The names the pipeline file uses for these values.
std::string_view InputKindName(InputKind kind);  // "dense" | "text" | "bytes"
std::string_view OnErrorName(OnError on_error);  // "missing" | "fail"
std::string_view IsolationName(
    Isolation isolation);  // "in_process" | "process"
std::string_view OnInsufficientName(OnInsufficient on_insufficient);
std::string_view TaskName(Task task);  // "classification" | "regression"

// A place in the pipeline file. Lines and columns are 1-based; `file` is the
// path as it was given to LoadPipelineFile / ParsePipeline, so that messages
// built from it read like the ones the reader itself produces.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:col".
  std::string ToString() const;
};

// A `model:` or `combiner:` entry: which plugin, which versions, which
// parameters.
struct PluginRef {
  std::string plugin;            // plugin name
  std::string version;           // constraint text as written, "" = any
  VersionConstraint constraint;  // parsed (matches anything when absent)
  std::string sha256;            // lowercase hex, "" = not pinned
  // The YAML `params` subtree as compact JSON text, "{}" when absent. Paths
  // in it are left as written; plugins resolve them against base_dir.
  std::string params_json = "{}";
  // Combiners only: the YAML `fit` subtree as JSON text, the options `latefuse
  // fit` hands the combiner's fit; absent when the pipeline does not train it.
  std::optional<std::string> fit_json;
  SourceLocation location;  // of the `model:` / `combiner:` value
  // Set by ApplyLock (lock.h): the lock file that fixed `constraint` to one
  // version and `sha256` to that artefact's hash.
  std::filesystem::path lock_file;
};

// A modality's `calibration:`: a calibrator applied to its model's
// probabilities before fusion, read from `file`, and refitted by `latefuse
// fit` when `fit` is true.
struct CalibrationConfig {
  std::string method;          // "temperature" | "platt" | "isotonic"
  std::filesystem::path file;  // absolute; empty when not given (fit only)
  bool fit = false;
  SourceLocation location;  // of the `calibration:` value
};

struct ModalityConfig {
  std::string name;
  InputKind input_kind = InputKind::kDense;
  std::size_t input_size = 0;  // dense: features per row; 0 for text/bytes
  PluginRef model;
  OnError on_error = OnError::kMissing;
  std::optional<std::chrono::milliseconds> timeout;  // absent = no timeout
  // `isolation:`; kProcess runs the model (and its shadow) in worker
  // processes.
  Isolation isolation = Isolation::kInProcess;
  std::optional<CalibrationConfig> calibration;  // absent = none
  // A `shadow:` model (same keys as `model:`): run on the same rows as the
  // model, under the same timeout, compared with it and reported, never fused.
  // The calibration applies to `model` only. Absent = none.
  std::optional<PluginRef> shadow;
  SourceLocation location;  // of the list entry
};

struct PolicyConfig {
  int min_modalities = 1;
  OnInsufficient on_insufficient = OnInsufficient::kAbstain;
};

// A validated pipeline. Every field has been checked against the rules in
// DESIGN.md; the plugins it names have not been looked at yet.
struct PipelineConfig {
  std::filesystem::path file;      // absolute path of the pipeline file
  std::filesystem::path base_dir;  // its directory; relative paths resolve here
  std::string name;
  Task task = Task::kClassification;
  // Classification: at least 2, unique. Regression: empty.
  std::vector<std::string> classes;
  std::vector<std::filesystem::path> plugin_dirs;  // absolute, lexically normal
  std::vector<ModalityConfig> modalities;          // at least 1, unique names
  PluginRef combiner;
  PolicyConfig policy;
};

// Keys naming the role of each plugin a pipeline uses, as lock files and
// plans name them: "modalities.<name>.model", "modalities.<name>.shadow" and
// "combiner".
std::string ModelRoleKey(std::string_view modality);
std::string ShadowRoleKey(std::string_view modality);
inline constexpr char kCombinerRoleKey[] = "combiner";

// Calls f(role_key, ref) for every plugin reference in `config`, modalities in
// order (model, then shadow), then the combiner. `Config` is PipelineConfig or
// const PipelineConfig.
template <typename Config, typename F>
void ForEachPluginRef(Config& config, F&& f) {
  for (auto& modality : config.modalities) {
    f(ModelRoleKey(modality.name), modality.model);
    if (modality.shadow) f(ShadowRoleKey(modality.name), *modality.shadow);
  }
  f(std::string(kCombinerRoleKey), config.combiner);
}

// Values per row in the buffers models and the combiner write: the number of
// classes, or 2 for regression (prediction, variance).
std::size_t ValuesPerRow(const PipelineConfig& config);

// Reads and validates the pipeline file at `path`.
// Errors: NotFound naming the path when it cannot be read; InvalidArgument
// listing every problem in the file, one per line, each as
// `<path as given>:<line>:<col>: <key path>: <message>`.
absl::StatusOr<PipelineConfig> LoadPipelineFile(
    const std::filesystem::path& path);

// Parses text as if read from `file` (used for messages and to resolve
// relative paths). Errors as LoadPipelineFile's InvalidArgument.
absl::StatusOr<PipelineConfig> ParsePipeline(std::string_view yaml_text,
                                             const std::filesystem::path& file);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_PIPELINE_CONFIG_H_
