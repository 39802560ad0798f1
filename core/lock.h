// Lock files: `latefuse lock` resolves every plugin of a pipeline to one exact
// version and sha256 and writes them down; `run` (and `serve`) given the lock
// file load exactly those artefacts and refuse any other, as package
// managers' lock files do.
//
//   ASSIGN_OR_RETURN(auto pipeline, Pipeline::Load(config));
//   RETURN_IF_ERROR(WriteLockFile(*pipeline, "pipeline.lock"));
//   ...
//   ASSIGN_OR_RETURN(auto locked,
//                    LoadPipeline("pipeline.yaml", "pipeline.lock"));
//
// The format (`latefuse.lock/v1`, JSON) is documented in README.md.
#ifndef LATEFUSE_CORE_LOCK_H_
#define LATEFUSE_CORE_LOCK_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/pipeline.h"
#include "core/pipeline_config.h"
#include "core/semver.h"

namespace latefuse {

// One plugin as locked.
struct LockEntry {
  std::string role;  // ForEachPluginRef's key, e.g. "modalities.vitals.model"
  std::string plugin;
  Version version;
  std::string sha256;
  std::string library;  // where it was found, relative to the lock file
};

struct LockFile {
  std::filesystem::path file;
  std::vector<LockEntry> entries;  // in the pipeline's order
};

// The lock file's default path beside the pipeline: pipeline.yaml ->
// pipeline.lock.
std::filesystem::path DefaultLockPath(const std::filesystem::path& pipeline);

// Writes the lock file for a loaded pipeline (every plugin it uses).
absl::Status WriteLockFile(const Pipeline& pipeline,
                           const std::filesystem::path& path);

// Reads a lock file. Errors name the file and the entry.
absl::StatusOr<LockFile> ReadLockFile(const std::filesystem::path& path);

// Pins every plugin reference of `config` to its locked version and sha256.
// Fails, saying to run `latefuse lock` again, when the lock no longer fits the
// pipeline: a role added or removed, another plugin named, a constraint or a
// sha256 pin the locked artefact does not satisfy.
absl::Status ApplyLock(const LockFile& lock, PipelineConfig& config);

// Reads the pipeline file and loads it (Pipeline::Load); with a non-empty
// `lock`, exactly the artefacts that lock file names (ReadLockFile, ApplyLock).
absl::StatusOr<std::unique_ptr<Pipeline>> LoadPipeline(
    const std::filesystem::path& pipeline, const std::filesystem::path& lock,
    LoadMode mode = LoadMode::kRun);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_LOCK_H_
