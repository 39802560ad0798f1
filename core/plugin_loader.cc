#include "core/plugin_loader.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/host_api.h"
#include "core/sha256.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

constexpr char kNewerEntrySymbol[] = "latefuse_plugin_v2";

// An open file descriptor, closed on scope exit.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  // Keeps the descriptor open for the life of the process.
  void Keep() { fd_ = -1; }

 private:
  int fd_;
};

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

std::string Mode(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

bool IsUnder(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

// Checks 2 and 3 on an opened file, 4 to 6 on loading it. `prefix` names plugin
// and path.
absl::StatusOr<LoadedPlugin> OpenAndLoad(const fs::path& canonical,
                                         const std::string& pin,
                                         const std::string& prefix) {
  // 2. A regular file that nobody else can write, in a directory nobody else
  // can write.
  Descriptor file(open(canonical.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (file.get() < 0) {
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot open: ", strerror(errno)));
  }
  struct stat st {};
  if (fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "not a regular file"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(prefix, "writable by group or others (mode ",
                     Mode(st.st_mode), "); refusing to load it (chmod go-w)"));
  }
  struct stat dir_st {};
  const fs::path dir = canonical.parent_path();
  if (stat(dir.c_str(), &dir_st) != 0) {
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot stat its directory '", dir.string(),
                     "': ", strerror(errno)));
  }
  if ((dir_st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        prefix, "its directory '", dir.string(),
        "' is writable by group or others (mode ", Mode(dir_st.st_mode),
        "); refusing to load from it (chmod go-w)"));
  }

  // 3. The bytes we load are the bytes we hash: both go through this
  // descriptor.
  LATEFUSE_ASSIGN_OR_RETURN(std::string sha256, Sha256OfDescriptor(file.get()));
  if (!pin.empty() && sha256 != pin) {
    return absl::PermissionDeniedError(
        absl::StrCat(prefix, "sha256 mismatch: the pipeline pins ", pin,
                     ", the file has ", sha256));
  }

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
  library.load(fmt::format("/proc/self/fd/{}", file.get()), mode, error);
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
  if (descriptor->abi_major != LATEFUSE_ABI_MAJOR) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "built for ABI ", descriptor->abi_major, ".",
                     descriptor->abi_minor, ", but this host speaks ABI ",
                     LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR));
  }
  if (descriptor->abi_minor > LATEFUSE_ABI_MINOR) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "built for ABI ", descriptor->abi_major, ".",
        descriptor->abi_minor, ", newer than this host's ", LATEFUSE_ABI_MAJOR,
        ".", LATEFUSE_ABI_MINOR,
        "; upgrade latefuse or rebuild the plugin against an older SDK"));
  }
  return LoadedPlugin{canonical, std::move(sha256), descriptor, Version{}};
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

std::string Prefix(const std::string& name, const fs::path& path) {
  return absl::StrCat("plugin '", name, "' (", path.string(), "): ");
}

// A file that may hold the plugin, with the version its folder promises, if
// any.
struct Candidate {
  fs::path path;
  std::optional<Version> folder_version;
  std::size_t dir_index;
};

std::vector<Candidate> FindCandidates(
    const std::string& name, const std::vector<fs::path>& plugin_dirs) {
  std::vector<Candidate> found;
  const std::string file_names[] = {absl::StrCat(name, ".so"),
                                    absl::StrCat("lib", name, ".so")};
  for (std::size_t i = 0; i < plugin_dirs.size(); ++i) {
    std::error_code ec;
    const fs::path artefacts = plugin_dirs[i] / std::string(name);
    if (fs::is_directory(artefacts, ec)) {
      for (const fs::directory_entry& entry :
           fs::directory_iterator(artefacts, ec)) {
        absl::StatusOr<Version> version =
            ParseVersion(entry.path().filename().string());
        if (!version.ok() || !entry.is_directory(ec)) continue;
        for (const std::string& file_name : file_names) {
          if (fs::exists(entry.path() / file_name, ec)) {
            found.push_back({entry.path() / file_name, *version, i});
            break;
          }
        }
      }
    }
    const fs::path bare = plugin_dirs[i] / file_names[0];
    if (fs::exists(bare, ec)) found.push_back({bare, std::nullopt, i});
  }
  return found;
}

// Picks the highest folder version satisfying the constraint, else the first
// bare file.
absl::StatusOr<std::pair<Candidate, std::string>> Choose(
    const PluginRef& ref, const std::vector<fs::path>& plugin_dirs) {
  std::vector<Candidate> candidates = FindCandidates(ref.plugin, plugin_dirs);
  const std::string constraint =
      ref.version.empty() ? "any version" : ref.version;
  const Candidate* best = nullptr;
  std::vector<std::string> rejected;
  std::size_t folders = 0;  // bare files are candidates too, but no folders
  for (const Candidate& c : candidates) {
    if (!c.folder_version) continue;
    ++folders;
    if (!ref.constraint.Matches(*c.folder_version)) {
      rejected.push_back(c.folder_version->ToString());
    } else if (best == nullptr || *best->folder_version < *c.folder_version) {
      best = &c;
    }
  }
  if (best != nullptr) {
    return std::make_pair(
        *best,
        fmt::format(
            "highest version satisfying {} among {} artefact folder(s) in "
            "plugin_dirs[{}]",
            constraint, folders, best->dir_index));
  }
  for (const Candidate& c : candidates) {
    if (!c.folder_version) {
      return std::make_pair(
          c,
          fmt::format(
              "bare {}.so in plugin_dirs[{}]{}; its version is checked against "
              "{} once loaded",
              ref.plugin, c.dir_index,
              rejected.empty() ? ""
                               : absl::StrCat(" (artefact versions ",
                                              absl::StrJoin(rejected, ", "),
                                              " do not satisfy it)"),
              constraint));
    }
  }
  std::vector<std::string> dirs;
  for (const fs::path& dir : plugin_dirs)
    dirs.push_back(absl::StrCat("'", dir.string(), "'"));
  if (!rejected.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "plugin '", ref.plugin, "': no version satisfies ", constraint,
        " (found ", absl::StrJoin(rejected, ", "), ")"));
  }
  return absl::NotFoundError(absl::StrCat(
      "plugin '", ref.plugin, "': not found in plugin_dirs (",
      absl::StrJoin(dirs, ", "), "); looked for <dir>/", ref.plugin,
      "/<version>/", ref.plugin, ".so and <dir>/", ref.plugin, ".so"));
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
  LATEFUSE_ASSIGN_OR_RETURN(auto choice, Choose(ref, plugin_dirs));
  auto& [candidate, reason] = choice;
  const std::string prefix = Prefix(ref.plugin, candidate.path);

  // 1. The file, symlinks resolved, lies under a directory the pipeline allows.
  std::error_code ec;
  const fs::path canonical = fs::canonical(candidate.path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot resolve path: ", ec.message()));
  }
  bool allowed = false;
  for (const fs::path& dir : plugin_dirs) {
    const fs::path canonical_dir = fs::canonical(dir, ec);
    if (!ec && IsUnder(canonical, canonical_dir)) allowed = true;
  }
  if (!allowed) {
    return absl::PermissionDeniedError(
        absl::StrCat(prefix, "resolves to '", canonical.string(),
                     "', which lies outside the pipeline's plugin_dirs"));
  }

  LATEFUSE_ASSIGN_OR_RETURN(LoadedPlugin plugin,
                            OpenAndLoad(canonical, ref.sha256, prefix));

  // 7. The descriptor fits the role the pipeline gives it.
  LATEFUSE_RETURN_IF_ERROR(CheckDescriptor(plugin, prefix));
  const LfPluginDescriptor* d = plugin.descriptor;
  if (d->kind != kind) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "is a ", PluginKindName(d->kind),
                     " plugin, but the pipeline uses ", "it as the ", role,
                     ", which needs a ", PluginKindName(kind)));
  }
  if (ref.plugin != d->name) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "the library calls itself '", d->name, "'"));
  }
  if (candidate.folder_version && *candidate.folder_version != plugin.version) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "declares version ", d->version, " but lies in the folder of ",
        candidate.folder_version->ToString()));
  }
  if (!ref.constraint.Matches(plugin.version)) {
    return absl::FailedPreconditionError(absl::StrCat(
        prefix, "version ", d->version,
        " does not satisfy the pipeline's constraint '", ref.version, "'"));
  }
  return ResolvedPlugin{std::move(plugin), std::move(reason)};
}

absl::StatusOr<LoadedPlugin> LoadPluginFile(const fs::path& path) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(path, ec);
  const std::string prefix = Prefix(path.stem().string(), path);
  if (ec)
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot resolve path: ", ec.message()));
  LATEFUSE_ASSIGN_OR_RETURN(LoadedPlugin plugin,
                            OpenAndLoad(canonical, "", prefix));
  LATEFUSE_RETURN_IF_ERROR(CheckDescriptor(plugin, prefix));
  return plugin;
}

}  // namespace latefuse
