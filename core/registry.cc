#include "core/registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/sha256.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kManifestFormat[] = "latefuse.manifest/v1";

std::string Mode(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

bool IsUnder(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

// Reads one manifest field, with errors naming file and field.
class ManifestReader {
 public:
  ManifestReader(const fs::path& file, const json& root)
      : file_(file), root_(root) {}

  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_.string(), ": ", field, ": ", what));
  }

  // A required string; empty allowed only when `allow_empty`.
  absl::StatusOr<std::string> String(const std::string& field,
                                     bool allow_empty = false) const {
    const auto it = root_.find(field);
    if (it == root_.end()) {
      if (allow_empty) return std::string();
      return Error(field, "missing");
    }
    if (!it->is_string()) {
      return Error(field, absl::StrCat("expected a string, got ", it->dump()));
    }
    std::string value = it->get<std::string>();
    if (value.empty() && !allow_empty) return Error(field, "empty");
    return value;
  }

  absl::StatusOr<int> Count(const json& object, const std::string& field,
                            const std::string& path) const {
    const auto it = object.find(field);
    if (it == object.end()) return Error(path, "missing");
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 1000000) {
      return Error(path, absl::StrCat("expected a non-negative integer, got ",
                                      it->dump()));
    }
    return it->get<int>();
  }

  const json* Nullable(const std::string& field) const {
    const auto it = root_.find(field);
    return it == root_.end() || it->is_null() ? nullptr : &*it;
  }

 private:
  const fs::path& file_;
  const json& root_;
};

absl::StatusOr<std::optional<ManifestInput>> ReadInput(
    const ManifestReader& reader, const json* input) {
  if (input == nullptr) return std::nullopt;
  if (!input->is_object()) {
    return reader.Error(
        "input",
        absl::StrCat("expected null or an object, got ", input->dump()));
  }
  const auto kind = input->find("kind");
  ManifestInput result;
  if (kind == input->end() || !kind->is_string()) {
    return reader.Error("input.kind",
                        "expected \"dense\", \"text\" or \"bytes\"");
  }
  const std::string kind_name = kind->get<std::string>();
  if (kind_name == "dense") {
    result.kind = InputKind::kDense;
    LATEFUSE_ASSIGN_OR_RETURN(result.size,
                              reader.Count(*input, "size", "input.size"));
    if (result.size == 0) return reader.Error("input.size", "dense needs > 0");
  } else if (kind_name == "text" || kind_name == "bytes") {
    result.kind = kind_name == "text" ? InputKind::kText : InputKind::kBytes;
  } else {
    return reader.Error(
        "input.kind", absl::StrCat("expected \"dense\", \"text\" or \"bytes\", "
                                   "got \"",
                                   kind_name, "\""));
  }
  return result;
}

absl::StatusOr<std::optional<std::vector<std::string>>> ReadClasses(
    const ManifestReader& reader, const json* classes) {
  if (classes == nullptr) return std::nullopt;
  if (!classes->is_array()) {
    return reader.Error("classes", absl::StrCat("expected null or a list, got ",
                                                classes->dump()));
  }
  std::vector<std::string> result;
  for (const json& c : *classes) {
    if (!c.is_string()) {
      return reader.Error("classes",
                          absl::StrCat("expected strings, got ", c.dump()));
    }
    result.push_back(c.get<std::string>());
  }
  return result;
}

bool IsSha256(std::string_view hex) {
  return hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

LibraryFile::~LibraryFile() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<LibraryFile> LibraryFile::Open(const fs::path& path,
                                              const std::string& prefix) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot open: ", strerror(errno)));
  }
  LibraryFile file(fd, path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "not a regular file"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(prefix, "writable by group or others (mode ",
                     Mode(st.st_mode), "); refusing to load it (chmod go-w)"));
  }
  struct stat dir_st {};
  const fs::path dir = path.parent_path();
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
  LATEFUSE_ASSIGN_OR_RETURN(file.sha256_, Sha256OfDescriptor(fd));
  return file;
}

absl::StatusOr<Manifest> ReadManifest(const fs::path& file) {
  std::ifstream in(file);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(file.string(), ": cannot open: ", std::strerror(errno)));
  }
  json root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": not valid JSON"));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": expected a JSON object"));
  }
  ManifestReader reader(file, root);
  Manifest m;
  m.file = file;
  LATEFUSE_ASSIGN_OR_RETURN(const std::string format, reader.String("format"));
  if (format != kManifestFormat) {
    return reader.Error("format", absl::StrCat("expected \"", kManifestFormat,
                                               "\", got \"", format, "\""));
  }
  LATEFUSE_ASSIGN_OR_RETURN(m.name, reader.String("name"));
  LATEFUSE_ASSIGN_OR_RETURN(const std::string version,
                            reader.String("version"));
  absl::StatusOr<Version> parsed = ParseVersion(version);
  if (!parsed.ok()) {
    return reader.Error("version", std::string(parsed.status().message()));
  }
  m.version = *std::move(parsed);
  LATEFUSE_ASSIGN_OR_RETURN(const std::string kind, reader.String("kind"));
  if (kind == "model") {
    m.kind = LF_KIND_MODEL;
  } else if (kind == "combiner") {
    m.kind = LF_KIND_COMBINER;
  } else {
    return reader.Error("kind", absl::StrCat("expected \"model\" or "
                                             "\"combiner\", got \"",
                                             kind, "\""));
  }
  const auto abi = root.find("abi");
  if (abi == root.end() || !abi->is_object()) {
    return reader.Error("abi", "expected {\"major\": M, \"minor\": N}");
  }
  LATEFUSE_ASSIGN_OR_RETURN(m.abi_major,
                            reader.Count(*abi, "major", "abi.major"));
  LATEFUSE_ASSIGN_OR_RETURN(m.abi_minor,
                            reader.Count(*abi, "minor", "abi.minor"));
  LATEFUSE_ASSIGN_OR_RETURN(m.library, reader.String("library"));
  if (m.library.find('/') != std::string::npos || m.library == "." ||
      m.library == "..") {
    return reader.Error("library",
                        absl::StrCat("expected a file name in the manifest's "
                                     "folder, got \"",
                                     m.library, "\""));
  }
  LATEFUSE_ASSIGN_OR_RETURN(m.sha256, reader.String("sha256"));
  if (!IsSha256(m.sha256)) {
    return reader.Error("sha256", absl::StrCat("expected 64 lowercase hex "
                                               "digits, got \"",
                                               m.sha256, "\""));
  }
  LATEFUSE_ASSIGN_OR_RETURN(m.description, reader.String("description", true));
  LATEFUSE_ASSIGN_OR_RETURN(m.license, reader.String("license", true));
  LATEFUSE_ASSIGN_OR_RETURN(m.build, reader.String("build", true));
  LATEFUSE_ASSIGN_OR_RETURN(m.input,
                            ReadInput(reader, reader.Nullable("input")));
  LATEFUSE_ASSIGN_OR_RETURN(m.classes,
                            ReadClasses(reader, reader.Nullable("classes")));
  return m;
}

std::optional<std::string> AbiProblem(int major, int minor) {
  if (major != LATEFUSE_ABI_MAJOR) {
    return absl::StrCat("built for ABI ", major, ".", minor,
                        ", but this host speaks ABI ", LATEFUSE_ABI_MAJOR, ".",
                        LATEFUSE_ABI_MINOR, "; rebuild the plugin against a ",
                        "latefuse ", LATEFUSE_ABI_MAJOR, ".x SDK");
  }
  if (minor > LATEFUSE_ABI_MINOR) {
    return absl::StrCat(
        "built for ABI ", major, ".", minor, ", newer than this host's ",
        LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR,
        "; upgrade latefuse to a release speaking ABI ", major, ".", minor,
        " or later, or rebuild the plugin against an SDK of ABI <= ",
        LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR);
  }
  return std::nullopt;
}

fs::path Artefact::library() const {
  if (bare()) return location;
  if (manifest.ok()) return manifest->LibraryPath();
  return location / absl::StrCat(name, ".so");
}

std::vector<Artefact> FindArtefacts(const std::vector<fs::path>& plugin_dirs,
                                    std::string_view name) {
  std::vector<Artefact> found;
  for (std::size_t i = 0; i < plugin_dirs.size(); ++i) {
    const std::size_t first = found.size();
    std::error_code ec;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(plugin_dirs[i], ec)) {
      const std::string file_name = entry.path().filename().string();
      if (entry.is_directory(ec)) {
        if (!name.empty() && file_name != name) continue;
        for (const fs::directory_entry& folder :
             fs::directory_iterator(entry.path(), ec)) {
          absl::StatusOr<Version> version =
              ParseVersion(folder.path().filename().string());
          if (!version.ok() || !folder.is_directory(ec)) continue;
          Artefact a{file_name, plugin_dirs[i], i, folder.path(), *version};
          const fs::path manifest = folder.path() / kManifestFileName;
          if (fs::exists(manifest, ec)) {
            a.manifest = ReadManifest(manifest);
          } else if (!fs::exists(a.library(), ec)) {
            continue;  // neither manifest nor library: not a plugin's folder
          } else {
            a.manifest = absl::NotFoundError(absl::StrCat(
                "no ", kManifestFileName, " in '", folder.path().string(),
                "': not an artefact built with latefuse_add_plugin()"));
          }
          found.push_back(std::move(a));
        }
      } else if (entry.path().extension() == ".so") {
        const std::string stem = entry.path().stem().string();
        if (!name.empty() && stem != name) continue;
        found.push_back(
            Artefact{stem, plugin_dirs[i], i, entry.path(), std::nullopt});
      }
    }
    std::sort(found.begin() + static_cast<std::ptrdiff_t>(first), found.end(),
              [](const Artefact& a, const Artefact& b) {
                if (a.name != b.name) return a.name < b.name;
                if (a.bare() != b.bare()) return b.bare();
                return !a.bare() && *b.version < *a.version;
              });
  }
  return found;
}

std::string PluginPrefix(std::string_view name, const fs::path& path) {
  return absl::StrCat("plugin '", std::string(name), "' (", path.string(),
                      "): ");
}

absl::StatusOr<LibraryFile> OpenArtefact(
    const Artefact& artefact, const Pin& pin,
    const std::vector<fs::path>& allowed_dirs) {
  const fs::path library = artefact.library();
  const std::string prefix = PluginPrefix(artefact.name, library);
  if (!artefact.bare() && !artefact.manifest.ok()) {
    return absl::Status(
        artefact.manifest.status().code(),
        absl::StrCat(prefix, artefact.manifest.status().message()));
  }

  // 1. The file, symlinks resolved, lies under an allowed directory.
  std::error_code ec;
  const fs::path canonical = fs::canonical(library, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(prefix, "cannot resolve path: ", ec.message()));
  }
  const bool own_dir = allowed_dirs.empty();
  bool allowed = false;
  for (const fs::path& dir :
       own_dir ? std::vector<fs::path>{artefact.dir} : allowed_dirs) {
    const fs::path canonical_dir = fs::canonical(dir, ec);
    if (!ec && IsUnder(canonical, canonical_dir)) allowed = true;
  }
  if (!allowed) {
    return absl::PermissionDeniedError(absl::StrCat(
        prefix, "resolves to '", canonical.string(), "', which lies outside ",
        own_dir
            ? absl::StrCat("its plugin directory '", artefact.dir.string(), "'")
            : std::string("the pipeline's plugin_dirs")));
  }

  // 2. A regular file that nobody else can write; hashed through the
  // descriptor that will load it.
  LATEFUSE_ASSIGN_OR_RETURN(LibraryFile file,
                            LibraryFile::Open(canonical, prefix));

  // 3. The pinned hash.
  if (!pin.sha256.empty() && file.sha256() != pin.sha256) {
    return absl::PermissionDeniedError(
        absl::StrCat(prefix, "sha256 mismatch: ", pin.source, " pins ",
                     pin.sha256, ", the file has ", file.sha256()));
  }
  if (artefact.bare()) return file;

  // The manifest vouches for its folder and its library.
  const Manifest& m = *artefact.manifest;
  if (m.name != artefact.name || m.version != *artefact.version) {
    return absl::FailedPreconditionError(
        absl::StrCat(prefix, "its manifest describes ", m.name, " ",
                     m.version.ToString(), " but lies in the folder of ",
                     artefact.name, " ", artefact.version->ToString()));
  }
  if (file.sha256() != m.sha256) {
    return absl::PermissionDeniedError(absl::StrCat(
        prefix, "sha256 mismatch: its manifest says ", m.sha256,
        ", the file has ", file.sha256(),
        "; the library changed after it was built, refusing to load it"));
  }
  if (std::optional<std::string> problem =
          AbiProblem(m.abi_major, m.abi_minor)) {
    return absl::FailedPreconditionError(absl::StrCat(prefix, *problem));
  }
  return file;
}

}  // namespace latefuse
