#include "tests/test_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace latefuse::testing {

namespace fs = std::filesystem;

fs::path SourceDir() { return LATEFUSE_SOURCE_DIR; }
fs::path PluginDir() { return LATEFUSE_PLUGIN_DIR; }
fs::path TestPluginDir() { return LATEFUSE_TEST_PLUGIN_DIR; }
fs::path CliPath() { return LATEFUSE_CLI; }

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

}  // namespace latefuse::testing
