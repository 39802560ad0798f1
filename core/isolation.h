// Process isolation (`isolation: process`): a modality's model plugin runs in
// a `latefuse-worker` process of its own, so that a plugin that crashes,
// aborts or hangs takes down only its worker, never the host.
//
//   ASSIGN_OR_RETURN(LoadedModel model,
//                    LoadIsolatedModel(modality, config, ModelRole::kLive,
//                                      "model of modality 'vitals'"));
//   RETURN_IF_ERROR(model.instance->Infer(batch, out));  // as in process
//
// The worker runs every load check the host runs in process (plugin_loader.h's
// 1-7 and plugin_instance.h's create and describe): the plugin's code never
// runs in the host. The host gets back the same errors, and for the plan the
// chosen file, its hash and a copy of the descriptor's strings.
//
// Each call has a deadline: the modality's timeout_ms, else
// kDefaultIsolatedDeadline. A worker that dies (a signal, an abort, an exit)
// or overruns is killed (SIGKILL) and reaped; the call fails with a
// message naming what happened, and the worker is started again on a later
// call, after a backoff of kFirstRestartDelay doubling per consecutive
// failure up to kMaxRestartDelay; calls before then fail at once. A model's
// instance is called from one thread at a time, as in process.
#ifndef LATEFUSE_CORE_ISOLATION_H_
#define LATEFUSE_CORE_ISOLATION_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/pipeline_config.h"
#include "core/plugin_instance.h"
#include "core/plugin_loader.h"

namespace latefuse {

// The deadline of an isolated call when its modality has no timeout_ms: a
// hung worker is always reclaimed.
inline constexpr std::chrono::milliseconds kDefaultIsolatedDeadline{10000};
// How long a worker may take to start: load its plugin and create it.
inline constexpr std::chrono::milliseconds kWorkerStartDeadline{10000};
// The backoff before a failed worker is started again: doubled per
// consecutive failure, reset by a call that is answered.
inline constexpr std::chrono::milliseconds kFirstRestartDelay{100};
inline constexpr std::chrono::milliseconds kMaxRestartDelay{5000};

// A modality's model as loaded: the plugin chosen and its instance.
struct LoadedModel {
  ResolvedPlugin plugin;
  std::unique_ptr<ModelInstance> instance;
};

// Starts a worker process for the modality's `model:` or `shadow:` (per
// `role`), which resolves it as ResolvePlugin(ref, LF_KIND_MODEL, role_name,
// plugin_dirs) and creates it as ModelInstance::Create does; its errors are
// returned exactly as they would be in process. The instance returned is a
// proxy: it keeps its own deadline (deadline()), and its destruction
// stops and reaps the worker. Its Infer's `out` must be laid out by
// PrepareModelOutput (engine.h), as the engine's is: the worker's whole
// output buffer, guard row included, is copied into it for the host to check.
absl::StatusOr<LoadedModel> LoadIsolatedModel(const ModalityConfig& modality,
                                              const PipelineConfig& pipeline,
                                              ModelRole role,
                                              const std::string& role_name);

// The worker program, found in this order: $LATEFUSE_WORKER; latefuse-worker
// beside the running program; <program's folder>/../libexec/latefuse-worker
// (an installed prefix); the one this build made (build tree).
absl::StatusOr<std::filesystem::path> WorkerPath();

// The worker program's body: serves the host over the socket `fd` until the
// host closes it (or dies). Returns the process's exit code.
int RunWorker(int fd);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_ISOLATION_H_
