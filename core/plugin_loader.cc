#include "core/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <deque>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/host_api.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

constexpr char kNewerEntrySymbol[] = "latefuse_plugin_v2";

// The libraries ever loaded. Never unloaded: plugins' code and descriptors must
// outlive every instance, and RTLD_NODELETE keeps them mapped even past a
// handle's destruction.
struct Libraries {
  std::mutex mutex;
  std::deque<boost::dll::shared_library> handles;
};

Libraries& AllLibraries() {
  static auto* libraries = new Libraries();
  return *libraries;
}

// Checks 4 to 6 on a library file that passed checks 1 to 3. `prefix` names
// plugin and path.
absl::StatusOr<LoadedPlugin> Load(LibraryFile file, const std::string& prefix) {
  // 4. Load, under one mutex, never to be unloaded. dlopen gets
  // /proc/self/fd/N, so the file loaded is the one checked and hashed. The
  // descriptor stays open for good: the loader knows libraries by name, and a
  // reused descriptor number would name another library it already holds.
  Libraries& libraries = AllLibraries();
  std::lock_guard<std::mutex> lock(libraries.mutex);
  boost::dll::shared_library library;
  boost::dll::fs::error_code error;
  const auto mode = static_cast<boost::dll::load_mode::type>(
      RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  library.load(fmt::format("/proc/self/fd/{}", file.fd()), mode, error);
  if (error || !library.is_loaded()) {
    const char* why = dlerror();
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "cannot load: ", why != nullptr ? why : error.message()));
  }
  file.Keep();

  // 5. The entry point, named for the ABI major.
  if (!library.has(LATEFUSE_ENTRY_SYMBOL)) {
    libraries.handles.push_back(std::move(library));
    if (libraries.handles.back().has(kNewerEntrySymbol)) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix, "exports '", kNewerEntrySymbol, "' but not '",
                       LATEFUSE_ENTRY_SYMBOL,
                       "': built for a newer ABI (major 2) than this ",
                       "host's ", LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "no entry symbol '", LATEFUSE_ENTRY_SYMBOL,
        "': not a latefuse plugin, or not built with latefuse_add_plugin()"));
  }
  auto& entry = library.get<const LfPluginDescriptor*(const LfHostApi*)>(
      LATEFUSE_ENTRY_SYMBOL);
  libraries.handles.push_back(std::move(library));
  const LfPluginDescriptor* descriptor = entry(HostApi());
  if (descriptor == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "its entry point returned no descriptor"));
  }

  // 6. Same ABI major, minor not newer than ours.
  if (!LF_HAS_MEMBER(descriptor, LfPluginDescriptor, abi_minor)) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "descriptor too small to be a latefuse descriptor"));
  }
  if (std::optional<std::string> problem =
          AbiProblem(descriptor->abi_major, descriptor->abi_minor)) {
    return absl::FailedPreconditionError(absl::StrCat(prefix, *problem));
  }
  return LoadedPlugin{file.path(), file.sha256(), descriptor,
                      Version{},   std::nullopt,  nullptr};
}

// The descriptor's own sanity: complete, named, versioned, with its kind's
// functions.
absl::Status CheckDescriptor(LoadedPlugin& plugin, const std::string& prefix) {
  const LfPluginDescriptor* d = plugin.descriptor;
  if (!LF_HAS_MEMBER(d, LfPluginDescriptor, combiner)) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "descriptor is ", d->struct_size,
                     " bytes, smaller than ABI 1.0's"));
  }
  if (d->name == nullptr || *d->name == '\0') {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "descriptor has no name"));
  }
  if (d->version == nullptr || *d->version == '\0') {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "descriptor has no version"));
  }
  absl::StatusOr<Version> version = ParseVersion(d->version);
  if (!version.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "version '", d->version,
        "' is not a semantic version: ", version.status().message()));
  }
  plugin.version = *version;
  if (d->kind == LF_KIND_MODEL) {
    const LfModelApi* api = d->model;
    if (api == nullptr || !LF_HAS_MEMBER(api, LfModelApi, infer) ||
        api->create == nullptr || api->destroy == nullptr ||
        api->describe == nullptr || api->infer == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix,
                       "model function table incomplete (needs create, "
                       "destroy, describe, infer)"));
    }
  } else if (d->kind == LF_KIND_COMBINER) {
    const LfCombinerApi* api = d->combiner;
    if (api == nullptr || !LF_HAS_MEMBER(api, LfCombinerApi, combine) ||
        api->create == nullptr || api->destroy == nullptr ||
        api->describe == nullptr || api->combine == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix,
                       "combiner function table incomplete (needs create, "
                       "destroy, describe, combine)"));
    }
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "unknown plugin kind ", d->kind));
  }
  return absl::OkStatus();
}

std::string PinSource(const PluginRef& ref) {
  return ref.lock_file.empty()
             ? std::string("the pipeline")
             : absl::StrCat("the lock file '", ref.lock_file.string(), "'");
}

// Picks the artefact to load: the highest folder version that satisfies the
// constraint and whose manifest says this host speaks its ABI (else the
// highest that satisfies it, to be refused with the reason), else the first
// bare library. The string says why, for the plan.
absl::StatusOr<std::pair<Artefact, std::string>> Choose(
    const PluginRef& ref, const std::vector<fs::path>& plugin_dirs) {
  std::vector<Artefact> artefacts = FindArtefacts(plugin_dirs, ref.plugin);
  const std::string constraint =
      ref.version.empty() ? "any version" : ref.version;
  const Artefact* best = nullptr;          // loadable, by its manifest
  const Artefact* best_refused = nullptr;  // satisfies, but a newer ABI
  std::vector<std::string> rejected;       // versions not satisfying
  std::vector<std::string> notes;          // folders skipped, and why
  std::size_t folders = 0;
  for (const Artefact& a : artefacts) {
    if (a.bare()) continue;
    ++folders;
    if (!a.manifest.ok()) {
      notes.push_back(absl::StrCat(
          a.version->ToString(), " ignored: ", a.manifest.status().message()));
      continue;
    }
    if (!ref.constraint.Matches(*a.version)) {
      rejected.push_back(a.version->ToString());
      continue;
    }
    const Artefact*& slot =
        AbiProblem(a.manifest->abi_major, a.manifest->abi_minor) ? best_refused
                                                                 : best;
    if (slot == nullptr || *slot->version < *a.version) slot = &a;
  }
  if (best_refused != nullptr &&
      (best == nullptr || *best->version < *best_refused->version)) {
    notes.push_back(
        absl::StrCat(best_refused->version->ToString(), " skipped: ",
                     *AbiProblem(best_refused->manifest->abi_major,
                                 best_refused->manifest->abi_minor)));
  }
  const std::string skipped =
      notes.empty() ? "" : absl::StrCat("; ", absl::StrJoin(notes, "; "));
  if (best == nullptr) best = best_refused;  // refused with its reason
  if (best != nullptr) {
    std::string reason =
        ref.lock_file.empty()
            ? fmt::format(
                  "highest version satisfying {} among {} artefact "
                  "folder(s) in plugin_dirs[{}]{}",
                  constraint, folders, best->dir_index, skipped)
            : fmt::format("locked by '{}' in plugin_dirs[{}]",
                          ref.lock_file.string(), best->dir_index);
    return std::make_pair(*best, std::move(reason));
  }
  for (const Artefact& a : artefacts) {
    if (!a.bare()) continue;
    return std::make_pair(
        a, fmt::format(
               "bare {}.so in plugin_dirs[{}]{}; its version is checked "
               "against {} once loaded{}",
               ref.plugin, a.dir_index,
               rejected.empty() ? ""
                                : absl::StrCat(" (artefact versions ",
                                               absl::StrJoin(rejected, ", "),
                                               " do not satisfy it)"),
               constraint, skipped));
  }
  if (!rejected.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "plugin '", ref.plugin, "': no version satisfies ", constraint,
        " (found ", absl::StrJoin(rejected, ", "), ")", skipped));
  }
  std::vector<std::string> dirs;
  for (const fs::path& dir : plugin_dirs)
    dirs.push_back(absl::StrCat("'", dir.string(), "'"));
  return absl::NotFoundError(
      absl::StrCat("plugin '", ref.plugin, "': not found in plugin_dirs (",
                   absl::StrJoin(dirs, ", "), "); looked for <dir>/",
                   ref.plugin, "/<version>/", kManifestFileName, " and <dir>/",
                   ref.plugin, ".so", skipped));
}

}  // namespace

const char* PluginKindName(int32_t kind) {
  switch (kind) {
    case LF_KIND_MODEL:
      return "model";
    case LF_KIND_COMBINER:
      return "combiner";
    default:
      return "unknown";
  }
}

absl::StatusOr<ResolvedPlugin> ResolvePlugin(
    const PluginRef& ref, LfPluginKind kind, const std::string& role,
    const std::vector<fs::path>& plugin_dirs) {
  absl::StatusOr<std::pair<Artefact, std::string>> choice =
      Choose(ref, plugin_dirs);
  if (!choice.ok() && !ref.lock_file.empty()) {
    return absl::Status(
        choice.status().code(),
        absl::StrCat(choice.status().message(), "; the lock file '",
                     ref.lock_file.string(),
                     "' asks for exactly this artefact "
                     "(",
                     ref.constraint.ToString(), ", sha256 ", ref.sha256, ")"));
  }
  if (!choice.ok()) return choice.status();
  auto& [artefact, reason] = *choice;
  const std::string prefix = PluginPrefix(ref.plugin, artefact.library());
  const auto wrong_kind = [&](int32_t actual) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "is a ", PluginKindName(actual),
                     " plugin, but the pipeline uses it as the ", role,
                     ", which needs a ", PluginKindName(kind)));
  };
  // The manifest already tells whether the role fits, before any code runs.
  if (!artefact.bare() && artefact.manifest.ok() &&
      artefact.manifest->kind != kind) {
    return wrong_kind(artefact.manifest->kind);
  }

  // Checks 1-3, and the manifest's hash and ABI.
  LATEFUSE_ASSIGN_OR_RETURN(
      LibraryFile file,
      OpenArtefact(artefact, Pin{ref.sha256, PinSource(ref)}, plugin_dirs));
  LATEFUSE_ASSIGN_OR_RETURN(LoadedPlugin plugin, Load(std::move(file), prefix));

  // 7. The descriptor fits the role the pipeline gives it, and its manifest.
  LATEFUSE_RETURN_IF_ERROR(CheckDescriptor(plugin, prefix));
  const LfPluginDescriptor* d = plugin.descriptor;
  if (d->kind != kind) return wrong_kind(d->kind);
  if (ref.plugin != d->name) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "the library calls itself '", d->name, "'"));
  }
  if (!artefact.bare() && *artefact.version != plugin.version) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "declares version ", d->version, " but lies in the folder of ",
        artefact.version->ToString()));
  }
  if (!artefact.bare() && (artefact.manifest->kind != d->kind ||
                           artefact.manifest->abi_major != d->abi_major ||
                           artefact.manifest->abi_minor != d->abi_minor)) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "its manifest says ", PluginKindName(artefact.manifest->kind),
        " ABI ", artefact.manifest->abi_major, ".",
        artefact.manifest->abi_minor, " but the library is a ",
        PluginKindName(d->kind), " of ABI ", d->abi_major, ".", d->abi_minor));
  }
  if (!ref.constraint.Matches(plugin.version)) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "version ", d->version, " does not satisfy ",
        ref.lock_file.empty()
            ? absl::StrCat("the pipeline's constraint '", ref.version, "'")
            : absl::StrCat("the lock file '", ref.lock_file.string(),
                           "', which fixes ", ref.constraint.ToString())));
  }
  if (!artefact.bare()) plugin.manifest = *artefact.manifest;
  return ResolvedPlugin{std::move(plugin), std::move(reason)};
}

absl::StatusOr<LoadedPlugin> LoadPluginFile(const fs::path& path) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(path, ec);
  const std::string prefix = PluginPrefix(path.stem().string(), path);
  if (ec)
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot resolve path: ", ec.message()));
  LATEFUSE_ASSIGN_OR_RETURN(LibraryFile file,
                            LibraryFile::Open(canonical, prefix));
  LATEFUSE_ASSIGN_OR_RETURN(LoadedPlugin plugin, Load(std::move(file), prefix));
  LATEFUSE_RETURN_IF_ERROR(CheckDescriptor(plugin, prefix));
  return plugin;
}

}  // namespace latefuse
