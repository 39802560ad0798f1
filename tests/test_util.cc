#include "tests/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

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

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    ADD_FAILURE() << "cannot find a free port";
  }
  close(fd);
  return ntohs(address.sin_port);
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const fs::path& pipeline, const std::vector<std::string>& args) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->port_ = FreePort();
  std::vector<std::string> argv = {CliPath().string(), "serve",
                                   pipeline.string(), "--port",
                                   std::to_string(server->port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> pointers;
  for (std::string& arg : argv) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  const std::string err = (server->dir_.path() / "stderr").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, pointers[0], &actions, nullptr,
                                  pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return absl::InternalError("cannot start " + argv[0]);
  }
  server->pid_ = pid;
  httplib::Client client("127.0.0.1", server->port_);
  client.set_connection_timeout(std::chrono::milliseconds(200));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      server->pid_ = -1;
      return absl::FailedPreconditionError("latefuse serve exited: " +
                                           server->Stderr());
    }
    httplib::Result ready = client.Get("/v2/health/ready");
    if (ready && ready->status == 200) return server;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("latefuse serve never got ready: " +
                                     server->Stderr());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop();
}

void ServerProcess::Signal(int signal) const {
  if (pid_ > 0) kill(pid_, signal);
}

int ServerProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ServerProcess::Stderr() const {
  return ReadFile(dir_.path() / "stderr");
}

long ServerProcess::RssKb() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace latefuse::testing
