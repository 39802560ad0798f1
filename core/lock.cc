#include "core/lock.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kLockFormat[] = "latefuse.lock/v1";

std::string Relock(const fs::path& lock, const PipelineConfig& config) {
  return absl::StrCat("; the pipeline changed since '", lock.string(),
                      "' was written: run `latefuse lock ",
                      config.file.string(), "` again");
}

absl::StatusOr<std::string> EntryString(const fs::path& file, std::size_t i,
                                        const json& entry,
                                        const std::string& field) {
  const auto it = entry.find(field);
  if (it == entry.end() || !it->is_string() || it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": plugins[", i, "].", field,
                     ": expected a non-empty string"));
  }
  return it->get<std::string>();
}

}  // namespace

fs::path DefaultLockPath(const fs::path& pipeline) {
  fs::path lock = pipeline;
  return lock.replace_extension(".lock");
}

absl::Status WriteLockFile(const Pipeline& pipeline, const fs::path& path) {
  const fs::path dir = fs::absolute(path).parent_path();
  json plugins = json::array();
  for (const auto& [role, resolved] : pipeline.plugins()) {
    const LoadedPlugin& p = resolved->plugin;
    json entry = json::object();
    entry["role"] = role;
    entry["plugin"] = p.descriptor->name;
    entry["version"] = p.version.ToString();
    entry["sha256"] = p.sha256;
    entry["library"] = p.path.lexically_relative(dir).string();
    plugins.push_back(std::move(entry));
  }
  json root = json::object();
  root["format"] = kLockFormat;
  root["pipeline"] = pipeline.config().file.lexically_relative(dir).string();
  root["plugins"] = std::move(plugins);

  // Written beside, then renamed: a reader never sees half a lock file.
  const fs::path temporary = fs::path(path).concat(".tmp");
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << root.dump(2) << "\n";
    if (!out) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot write '", temporary.string(), "': ", std::strerror(errno)));
    }
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write '", path.string(), "': ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<LockFile> ReadLockFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("lock file '", path.string(),
                     "': cannot open: ", std::strerror(errno)));
  }
  const json root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a JSON object"));
  }
  const auto format = root.find("format");
  if (format == root.end() || *format != kLockFormat) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": format: expected \"", kLockFormat, "\", got ",
        format == root.end() ? "nothing" : format->dump()));
  }
  const auto plugins = root.find("plugins");
  if (plugins == root.end() || !plugins->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": plugins: expected a list"));
  }
  LockFile lock;
  lock.file = path;
  std::set<std::string> roles;
  for (std::size_t i = 0; i < plugins->size(); ++i) {
    const json& item = (*plugins)[i];
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ": plugins[", i, "]: expected an object"));
    }
    LockEntry entry;
    LATEFUSE_ASSIGN_OR_RETURN(entry.role, EntryString(path, i, item, "role"));
    LATEFUSE_ASSIGN_OR_RETURN(entry.plugin,
                              EntryString(path, i, item, "plugin"));
    LATEFUSE_ASSIGN_OR_RETURN(const std::string version,
                              EntryString(path, i, item, "version"));
    absl::StatusOr<Version> parsed = ParseVersion(version);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": plugins[", i,
                       "].version: ", parsed.status().message()));
    }
    entry.version = *std::move(parsed);
    LATEFUSE_ASSIGN_OR_RETURN(entry.sha256,
                              EntryString(path, i, item, "sha256"));
    LATEFUSE_ASSIGN_OR_RETURN(entry.library,
                              EntryString(path, i, item, "library"));
    if (!roles.insert(entry.role).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": plugins[", i, "].role: '", entry.role,
                       "' appears twice"));
    }
    lock.entries.push_back(std::move(entry));
  }
  return lock;
}

absl::Status ApplyLock(const LockFile& lock, PipelineConfig& config) {
  std::map<std::string, const LockEntry*> by_role;
  for (const LockEntry& entry : lock.entries) by_role[entry.role] = &entry;
  absl::Status status;
  ForEachPluginRef(config, [&](const std::string& role, PluginRef& ref) {
    if (!status.ok()) return;
    const auto it = by_role.find(role);
    if (it == by_role.end()) {
      status = absl::FailedPreconditionError(absl::StrCat(
          "lock file '", lock.file.string(), "' locks no ", role, " (plugin '",
          ref.plugin, "')", Relock(lock.file, config)));
      return;
    }
    const LockEntry& entry = *it->second;
    by_role.erase(it);
    const std::string where =
        absl::StrCat(ref.location.ToString(), ": ", role, ": ");
    if (entry.plugin != ref.plugin) {
      status = absl::FailedPreconditionError(absl::StrCat(
          where, "the pipeline names plugin '", ref.plugin,
          "', the lock file '", entry.plugin, "'", Relock(lock.file, config)));
    } else if (!ref.constraint.Matches(entry.version)) {
      status = absl::FailedPreconditionError(absl::StrCat(
          where, "the lock file's version ", entry.version.ToString(),
          " does not satisfy the pipeline's constraint '", ref.version, "'",
          Relock(lock.file, config)));
    } else if (!ref.sha256.empty() && ref.sha256 != entry.sha256) {
      status = absl::FailedPreconditionError(absl::StrCat(
          where, "the pipeline pins sha256 ", ref.sha256,
          ", the lock file has ", entry.sha256, Relock(lock.file, config)));
    }
    if (!status.ok()) return;
    const std::string exact = absl::StrCat("=", entry.version.ToString());
    ref.constraint = *VersionConstraint::Parse(exact);
    ref.sha256 = entry.sha256;
    ref.lock_file = lock.file;
  });
  LATEFUSE_RETURN_IF_ERROR(status);
  if (!by_role.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lock file '", lock.file.string(), "' locks ", by_role.begin()->first,
        ", which the pipeline does not have", Relock(lock.file, config)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Pipeline>> LoadPipeline(const fs::path& pipeline,
                                                       const fs::path& lock,
                                                       LoadMode mode) {
  LATEFUSE_ASSIGN_OR_RETURN(PipelineConfig config, LoadPipelineFile(pipeline));
  if (!lock.empty()) {
    LATEFUSE_ASSIGN_OR_RETURN(const LockFile lock_file, ReadLockFile(lock));
    LATEFUSE_RETURN_IF_ERROR(ApplyLock(lock_file, config));
  }
  return Pipeline::Load(std::move(config), mode);
}

}  // namespace latefuse
