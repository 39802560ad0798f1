#include "tests/test_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/host_api.h"
#include "core/sha256.h"
#include "gtest/gtest.h"

namespace latefuse::testing {

namespace fs = std::filesystem;

fs::path SourceDir() { return LATEFUSE_SOURCE_DIR; }
fs::path PluginDir() { return LATEFUSE_PLUGIN_DIR; }
fs::path TestPluginDir() { return LATEFUSE_TEST_PLUGIN_DIR; }
fs::path CliPath() { return LATEFUSE_CLI; }
fs::path HarnessPath() { return LATEFUSE_HARNESS; }

namespace {

fs::path ArtefactFile(const fs::path& dir, std::string_view name) {
  const std::string file = std::string(name) + ".so";
  std::vector<fs::path> found;
  std::error_code ec;
  for (const fs::directory_entry& version :
       fs::directory_iterator(dir / name, ec)) {
    if (fs::exists(version.path() / file))
      found.push_back(version.path() / file);
  }
  if (found.empty() && fs::exists(dir / file)) return dir / file;
  if (found.size() != 1) {
    ADD_FAILURE() << "expected one built version of plugin '" << name << "' in "
                  << (dir / name) << ", found " << found.size();
    return found.empty() ? dir / name / "missing" / file : found.front();
  }
  return found.front();
}

}  // namespace

fs::path PluginFile(std::string_view name) {
  return ArtefactFile(PluginDir(), name);
}
fs::path TestPluginFile(std::string_view name) {
  return ArtefactFile(TestPluginDir(), name);
}

fs::path InstallArtefact(const fs::path& dir, const fs::path& library,
                         const ArtefactSpec& spec) {
  const fs::path folder = dir / spec.name / spec.version;
  fs::create_directories(folder);
  for (fs::path d = folder; d != dir.parent_path() && d.has_relative_path();
       d = d.parent_path()) {
    fs::permissions(d, fs::perms(0755));
  }
  const fs::path to = folder / (spec.name + ".so");
  // A new file, never rewritten in place: a library already loaded from `to`
  // stays mapped, and overwriting its pages would crash the process.
  fs::remove(to);
  fs::copy_file(library, to);
  fs::permissions(to, fs::perms(0755));
  absl::StatusOr<std::string> sha256 = Sha256OfFile(to.string());
  EXPECT_TRUE(sha256.ok()) << sha256.status();
  nlohmann::json manifest = {
      {"format", "latefuse.manifest/v1"},
      {"name", spec.name},
      {"version", spec.version},
      {"kind", spec.kind},
      {"abi", {{"major", spec.abi_major}, {"minor", spec.abi_minor}}},
      {"library", spec.name + ".so"},
      {"sha256", sha256.value_or("")},
      {"description", "installed by a test"},
      {"license", "Apache-2.0"},
      {"build", "test"},
      {"input", nullptr},
      {"classes", nullptr}};
  std::ofstream(folder / "manifest.json") << manifest.dump(2) << "\n";
  return to;
}

TempDir::TempDir() {
  std::string pattern =
      (fs::temp_directory_path() / "latefuse-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
  fs::permissions(path_, fs::perms(0755));
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::Write(const std::string& name,
                        const std::string& text) const {
  const fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
  return file;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

absl::StatusOr<std::unique_ptr<Pipeline>> LoadPipelineText(
    const TempDir& dir, const std::string& yaml) {
  absl::StatusOr<PipelineConfig> config =
      LoadPipelineFile(dir.Write("pipeline.yaml", yaml));
  if (!config.ok()) return config.status();
  return Pipeline::Load(*std::move(config));
}

std::unique_ptr<Pipeline> LoadPipelineOrFail(const TempDir& dir,
                                             const std::string& yaml) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      LoadPipelineText(dir, yaml);
  EXPECT_TRUE(pipeline.ok()) << pipeline.status() << "\n" << yaml;
  return pipeline.ok() ? *std::move(pipeline) : nullptr;
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return nlohmann::json::parse(in);
}

std::vector<nlohmann::json> RunLines(Pipeline& pipeline,
                                     const std::vector<std::string>& lines,
                                     RunOptions options) {
  std::stringstream in;
  for (const std::string& line : lines) in << line << "\n";
  std::stringstream out;
  absl::StatusOr<RunSummary> summary = RunStream(pipeline, in, out, options);
  EXPECT_TRUE(summary.ok()) << summary.status();
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(out, line);) {
    records.push_back(nlohmann::json::parse(line));
  }
  EXPECT_EQ(records.size(), lines.size()) << "one output line per input line";
  return records;
}

PluginContext::PluginContext(std::string params_json, const fs::path& base_dir,
                             const std::vector<std::string>& classes,
                             const std::vector<std::string>& modalities)
    : params_json_(std::move(params_json)), base_dir_(base_dir.string()) {
  for (const std::string& c : classes) classes_.push_back(c.c_str());
  for (const std::string& m : modalities) modalities_.push_back(m.c_str());
  context_ = LfCreateContext{};
  context_.struct_size = sizeof(LfCreateContext);
  context_.params_json = params_json_.data();
  context_.params_json_size = params_json_.size();
  context_.base_dir = base_dir_.c_str();
  context_.instance_name = "combiner";
  context_.num_classes = classes_.size();
  context_.class_labels = classes_.data();
  context_.num_modalities = modalities_.size();
  context_.modality_names = modalities_.data();
}

absl::StatusOr<std::string> FitThroughAbi(const LfCombinerApi& api,
                                          const PluginContext& context,
                                          const LfFitData& data) {
  if (api.fit == nullptr) return absl::UnimplementedError("not trainable");
  std::string text;
  const LfTextSink sink{sizeof(LfTextSink), &text,
                        [](void* to, const char* piece, std::size_t size) {
                          static_cast<std::string*>(to)->append(piece, size);
                        }};
  absl::Status status = TakeStatus(api.fit(context.get(), &data, &sink), "fit");
  if (!status.ok()) return status;
  return text;
}

int RunCommand(const std::string& command, std::string* out, std::string* err) {
  TempDir dir;
  const fs::path out_file = dir.path() / "stdout";
  const fs::path err_file = dir.path() / "stderr";
  const std::string full = command + " >'" + out_file.string() + "' 2>'" +
                           err_file.string() + "' </dev/null";
  const int status = std::system(full.c_str());
  if (out != nullptr) *out = ReadFile(out_file);
  if (err != nullptr) *err = ReadFile(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ShellQuote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

CommandResult RunProgram(const fs::path& program, const std::string& args) {
  CommandResult result;
  result.code = RunCommand(ShellQuote(program.string()) + " " + args,
                           &result.out, &result.err);
  return result;
}

CommandResult RunLatefuse(const std::string& args) {
  return RunProgram(CliPath(), args);
}

}  // namespace latefuse::testing
