// What plugin_dirs hold: artefact folders `<dir>/<name>/<version>/` with a
// library and its manifest.json (written by the SDK's latefuse_add_plugin),
// and bare `<dir>/<name>.so` files. Everything here reads files only; no
// plugin code runs, so `latefuse plugins list` can vet a directory of
// artefacts from other teams before anything is loaded.
//
//   for (const Artefact& a : FindArtefacts({"build/plugins"}, "linear")) {
//     if (a.manifest.ok()) std::cout << a.manifest->version << "\n";
//   }
//   absl::Status usable = CheckArtefact(artefact);  // hash, ABI, permissions
//
// The manifest format (`latefuse.manifest/v1`) is documented in README.md.
#ifndef LATEFUSE_CORE_REGISTRY_H_
#define LATEFUSE_CORE_REGISTRY_H_

#include <latefuse/plugin.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/pipeline_config.h"
#include "core/semver.h"

namespace latefuse {

constexpr char kManifestFileName[] = "manifest.json";

// The contract a manifest states, when its plugin was built with one.
struct ManifestInput {
  InputKind kind = InputKind::kDense;
  int size = 0;  // dense width; 0 for text and bytes
};

// A parsed manifest.json.
struct Manifest {
  std::filesystem::path file;  // the manifest itself
  std::string name;
  Version version;
  LfPluginKind kind = LF_KIND_MODEL;
  int abi_major = 0;
  int abi_minor = 0;
  std::string library;  // a file name in the manifest's folder
  std::string sha256;   // of the library, lowercase hex
  std::string description;
  std::string license;
  std::string build;
  std::optional<ManifestInput> input;               // null in the file
  std::optional<std::vector<std::string>> classes;  // null in the file

  std::filesystem::path LibraryPath() const {
    return file.parent_path() / library;
  }
};

// A library file opened for checking and loading, closed on destruction
// unless kept.
class LibraryFile {
 public:
  // Opens `path` (canonical) and checks it is a regular file that neither
  // group nor others can write, in a folder they cannot write either (load
  // check 2), then hashes the open descriptor. `prefix` starts every message.
  static absl::StatusOr<LibraryFile> Open(const std::filesystem::path& path,
                                          const std::string& prefix);

  LibraryFile(LibraryFile&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        sha256_(std::move(other.sha256_)),
        path_(std::move(other.path_)) {}
  LibraryFile& operator=(LibraryFile&&) = delete;
  ~LibraryFile();

  int fd() const { return fd_; }
  const std::string& sha256() const { return sha256_; }
  const std::filesystem::path& path() const { return path_; }
  // Keeps the descriptor open for the life of the process.
  void Keep() { fd_ = -1; }

 private:
  LibraryFile(int fd, std::filesystem::path path)
      : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string sha256_;
  std::filesystem::path path_;
};

// Reads and validates a manifest. Errors name the file and the field.
absl::StatusOr<Manifest> ReadManifest(const std::filesystem::path& file);

// Why this host cannot load a plugin built for ABI major.minor, with what to
// do about it; nullopt when it can.
std::optional<std::string> AbiProblem(int major, int minor);

// One artefact found in a plugin directory.
struct Artefact {
  std::string name;
  std::filesystem::path dir;  // the plugin directory holding it, as given
  std::size_t dir_index = 0;  // which of the plugin_dirs that is
  // The <name>/<version>/ folder, or the bare library file.
  std::filesystem::path location;
  // The folder's version; nullopt for a bare library.
  std::optional<Version> version;
  // The folder's manifest or why it cannot be read; NotFound for a bare
  // library, which has none.
  absl::StatusOr<Manifest> manifest = absl::NotFoundError("bare library");

  bool bare() const { return !version.has_value(); }
  // The library file: the manifest's, or the bare file itself.
  std::filesystem::path library() const;
};

// The artefacts of plugin `name` (every plugin when `name` is empty) in
// `plugin_dirs`, in directory order, then by name, then by descending version.
// Folders whose name is not a version, or that hold neither a manifest nor a
// <name>.so, are not artefacts and are skipped.
std::vector<Artefact> FindArtefacts(
    const std::vector<std::filesystem::path>& plugin_dirs,
    std::string_view name = {});

// A sha256 the library must have, and who asks for it ("the pipeline", "lock
// file 'x.lock'"), for messages.
struct Pin {
  std::string sha256;  // "" = none
  std::string source;
};

// Opens `artefact`'s library for loading after every check that needs no
// plugin code, in DESIGN's order: (1) its real path lies under one of
// `allowed_dirs` (a pipeline's plugin_dirs; empty: the artefact's own plugin
// directory); (2) a regular file nobody else can write; (3) its sha256 is the
// pinned one; then, for artefact folders, the manifest reads and agrees with
// its folder, the library's sha256 is the manifest's, and the manifest's ABI
// is one this host speaks.
absl::StatusOr<LibraryFile> OpenArtefact(
    const Artefact& artefact, const Pin& pin = {},
    const std::vector<std::filesystem::path>& allowed_dirs = {});

// Whether this host could load `artefact`, judged from files alone
// (OpenArtefact's checks).
inline absl::Status CheckArtefact(const Artefact& artefact) {
  return OpenArtefact(artefact).status();
}

// "plugin '<name>' (<path>): ", the start of every load message.
std::string PluginPrefix(std::string_view name,
                         const std::filesystem::path& path);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_REGISTRY_H_
