// Finding and loading plugin libraries, with every check of DESIGN's load
// sequence in order, each with its own message prefixed `plugin '<name>'
// (<path>): `.
//
//   ASSIGN_OR_RETURN(ResolvedPlugin model,
//                    ResolvePlugin(modality.model, LF_KIND_MODEL, "modality
//                    'vitals'",
//                                  config.plugin_dirs));
//   const LfModelApi* api = model.plugin.descriptor->model;
//
// Checks 1-7 happen here (path under plugin_dirs; regular file not writable by
// others; pinned sha256; dlopen; entry symbol; ABI; descriptor). Check 8
// (create and describe) belongs to plugin_instance.h. Libraries are loaded with
// RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE under one mutex and never unloaded.
#ifndef LATEFUSE_CORE_PLUGIN_LOADER_H_
#define LATEFUSE_CORE_PLUGIN_LOADER_H_

#include <latefuse/plugin.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/pipeline_config.h"
#include "core/registry.h"
#include "core/semver.h"

namespace latefuse {

// A plugin library that passed the checks; it stays loaded for the life of the
// process.
struct LoadedPlugin {
  std::filesystem::path path;  // canonical path of the file loaded
  std::string sha256;          // of the bytes loaded, lowercase hex
  const LfPluginDescriptor* descriptor = nullptr;
  Version version;  // parsed from descriptor->version
  // The artefact folder's manifest; nullopt for a bare library.
  std::optional<Manifest> manifest;
  // Set when the library was loaded in a worker process (isolation.h):
  // `descriptor` is then the host's copy of its name, version and strings,
  // without function tables, kept alive by this.
  std::shared_ptr<const void> descriptor_owner;
};

// A plugin chosen for a role in a pipeline, with the reason it was chosen.
struct ResolvedPlugin {
  LoadedPlugin plugin;
  std::string reason;  // for `latefuse validate`'s plan
};

// Finds `ref.plugin` in `plugin_dirs` (artefact folders <dir>/<name>/<version>/
// with a manifest.json naming the library, and bare <dir>/<name>.so), picks
// the highest version that satisfies the constraint (read from the manifests,
// without running plugin code), and loads it with checks 1-7, plus the
// manifest's: the library's sha256 is the manifest's, its ABI is one this host
// speaks, and the descriptor agrees with it. A PluginRef pinned by a lock file
// (see lock.h) says so in messages.
// `role` names the use in messages
// ("model of modality 'vitals'", "combiner").
absl::StatusOr<ResolvedPlugin> ResolvePlugin(
    const PluginRef& ref, LfPluginKind kind, const std::string& role,
    const std::vector<std::filesystem::path>& plugin_dirs);

// Loads any file as a plugin, with the checks that need no pipeline (2, 4, 5, 6
// and the descriptor's own sanity): what `latefuse plugins inspect` does.
absl::StatusOr<LoadedPlugin> LoadPluginFile(const std::filesystem::path& path);

// "model" or "combiner".
const char* PluginKindName(int32_t kind);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_PLUGIN_LOADER_H_
