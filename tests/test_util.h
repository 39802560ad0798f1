// Helpers for latefuse's tests: temporary folders, pipelines written on the
// fly, running records through a real pipeline with the real plugin libraries.
//
//   TempDir dir;
//   auto pipeline = LoadPipelineText(dir, PipelineYaml({{"a", "linear", ...}},
//   "mean")); std::vector<nlohmann::json> out = RunLines(**pipeline, {R"({"id":
//   "x", ...})"});
#ifndef LATEFUSE_TESTS_TEST_UTIL_H_
#define LATEFUSE_TESTS_TEST_UTIL_H_

#include <latefuse/plugin.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/pipeline.h"
#include "core/run.h"

namespace latefuse::testing {

// The source tree, the folder of the in-tree plugins, the folder of the test
// plugins, and the programs, as the build placed them.
std::filesystem::path SourceDir();
std::filesystem::path PluginDir();
std::filesystem::path TestPluginDir();
std::filesystem::path CliPath();
// The SDK's latefuse-plugin-harness program.
std::filesystem::path HarnessPath();

// The library of the one built version of plugin `name`,
// <dir>/<name>/<version>/<name>.so, under PluginDir() or TestPluginDir(), or
// the bare <dir>/<name>.so of a test library built by hand. Fails the test
// when there is not exactly one.
std::filesystem::path PluginFile(std::string_view name);
std::filesystem::path TestPluginFile(std::string_view name);

// What an artefact folder's manifest says about its library.
struct ArtefactSpec {
  std::string name;
  std::string version;
  std::string kind = "model";
  int abi_major = LATEFUSE_ABI_MAJOR;
  int abi_minor = LATEFUSE_ABI_MINOR;
};

// Lays out dir/<name>/<version>/ as latefuse_add_plugin does: a copy of
// `library` as <name>.so and a manifest.json with its sha256 (folders 0755,
// file 0755). Returns the library's path.
std::filesystem::path InstallArtefact(const std::filesystem::path& dir,
                                      const std::filesystem::path& library,
                                      const ArtefactSpec& spec);

// A fresh folder (mode 0755), removed with its contents at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to path()/name (creating folders) and returns the full path.
  std::filesystem::path Write(const std::string& name,
                              const std::string& text) const;

 private:
  std::filesystem::path path_;
};

std::string ReadFile(const std::filesystem::path& path);
std::vector<std::string> ReadLines(const std::filesystem::path& path);

// Writes `yaml` as dir/pipeline.yaml and loads it with every check.
absl::StatusOr<std::unique_ptr<Pipeline>> LoadPipelineText(
    const TempDir& dir, const std::string& yaml);

// Like LoadPipelineText, but fails the test (and returns null) on an error.
std::unique_ptr<Pipeline> LoadPipelineOrFail(const TempDir& dir,
                                             const std::string& yaml);

// A JSON file's contents.
nlohmann::json ReadJson(const std::filesystem::path& path);

// Runs `lines` through the pipeline and returns the parsed output records;
// checks that there is exactly one output line per input line.
std::vector<nlohmann::json> RunLines(Pipeline& pipeline,
                                     const std::vector<std::string>& lines,
                                     RunOptions options = {});

// What the host hands a combiner's create or fit, with storage for the strings
// it points at.
class PluginContext {
 public:
  PluginContext(std::string params_json, const std::filesystem::path& base_dir,
                const std::vector<std::string>& classes,
                const std::vector<std::string>& modalities);
  PluginContext(const PluginContext&) = delete;
  PluginContext& operator=(const PluginContext&) = delete;
  const LfCreateContext* get() const { return &context_; }

 private:
  std::string params_json_;
  std::string base_dir_;
  std::vector<const char*> classes_;
  std::vector<const char*> modalities_;
  LfCreateContext context_;
};

// Calls a combiner's fit through the ABI, as `latefuse fit` does; returns the
// parameter file it wrote, or its error.
absl::StatusOr<std::string> FitThroughAbi(const LfCombinerApi& api,
                                          const PluginContext& context,
                                          const LfFitData& data);

// Runs a shell command; returns its exit code and fills stdout/stderr.
int RunCommand(const std::string& command, std::string* out, std::string* err);

// `text` single-quoted for the shell, whatever it holds.
std::string ShellQuote(std::string_view text);

// What a program run said.
struct CommandResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs `program` with `args` (a shell command line, quoted as needed).
CommandResult RunProgram(const std::filesystem::path& program,
                         const std::string& args);

// Runs the `latefuse` program with `args` (already quoted for the shell).
CommandResult RunLatefuse(const std::string& args);

// A `latefuse serve` process on a free loopback port, started from the built
// program and stopped (SIGTERM, then waited for) when it goes out of scope.
//
//   auto server = ServerProcess::Start(pipeline, {"--deadline-ms", "500"});
//   httplib::Client client("127.0.0.1", (*server)->port());
class ServerProcess {
 public:
  // Starts `latefuse serve PIPELINE --port P ARGS...` and waits until
  // /v2/health/ready answers 200 (up to 20 s); fails with the server's
  // stderr when it exits or never gets ready.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::filesystem::path& pipeline,
      const std::vector<std::string>& args = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  int pid() const { return pid_; }
  // Sends `signal` to the server.
  void Signal(int signal) const;
  // Sends SIGTERM and waits up to `timeout_ms` for the process to exit;
  // returns its exit code, or -1 when it had to be killed or died of a
  // signal.
  int Stop(int timeout_ms = 20000);
  // Everything the server wrote to stderr so far.
  std::string Stderr() const;
  // The server's resident memory (VmRSS in /proc/PID/status), in kB.
  long RssKb() const;

 private:
  ServerProcess() = default;

  TempDir dir_;  // holds the captured stderr
  int pid_ = -1;
  int port_ = 0;
};

// A TCP port on 127.0.0.1 nobody listens on right now.
int FreePort();

}  // namespace latefuse::testing

#endif  // LATEFUSE_TESTS_TEST_UTIL_H_
