// `latefuse run` stopped by SIGINT or SIGTERM loses nothing: the real program
// reads records from a pipe, the test feeds it lines, waits until the program
// has taken every byte out of the pipe, sends the signal, and expects exactly
// one record per line fed, in order, the summary, and exit code 128 + signal.
// Also while a slow model (test_model with sleep_ms) is in the middle of a
// batch, and with an unfinished last line.
#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

extern char** environ;

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::HasSubstr;

using Clock = std::chrono::steady_clock;

// A `latefuse run PIPELINE ARGS...` process whose stdin is a pipe the test
// writes to; stdout and stderr go to files.
class RunProcess {
 public:
  static std::unique_ptr<RunProcess> Start(
      const fs::path& pipeline, const std::vector<std::string>& args) {
    auto process = std::unique_ptr<RunProcess>(new RunProcess());
    std::vector<std::string> argv = {testing::CliPath().string(), "run",
                                     pipeline.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> pointers;
    for (std::string& arg : argv) pointers.push_back(arg.data());
    pointers.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "cannot make a pipe";
      return nullptr;
    }
    const std::string out = process->OutPath().string();
    const std::string err = process->ErrPath().string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = -1;
    const int spawned = posix_spawn(&pid, pointers[0], &actions, nullptr,
                                    pointers.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    process->stdin_ = fds[1];
    if (spawned != 0) {
      ADD_FAILURE() << "cannot start " << argv[0];
      return nullptr;
    }
    process->pid_ = pid;
    return process;
  }

  ~RunProcess() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Writes `text` to the program's stdin.
  void Feed(std::string_view text) {
    while (!text.empty()) {
      const ssize_t wrote = write(stdin_, text.data(), text.size());
      ASSERT_GT(wrote, 0) << "cannot write to latefuse run";
      text.remove_prefix(static_cast<std::size_t>(wrote));
    }
  }

  // Waits (up to 20 s) until the program has read everything fed so far,
  // i.e. the pipe holds no byte; false on the timeout.
  bool WaitUntilRead() const {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      int unread = -1;
      if (ioctl(stdin_, FIONREAD, &unread) == 0 && unread == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // Sends `signal`, then waits (up to 20 s) for the program to exit; its
  // exit code, or -1 when a signal ended it or it had to be killed. The
  // input pipe stays open: the program must not need its end to stop.
  int SignalAndWait(int signal) {
    kill(pid_, signal);
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "latefuse run did not exit after signal " << signal;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::vector<json> Records() const {
    std::vector<json> records;
    std::istringstream in(testing::ReadFile(OutPath()));
    for (std::string line; std::getline(in, line);) {
      records.push_back(json::parse(line, nullptr, /*allow_exceptions=*/false));
      EXPECT_FALSE(records.back().is_discarded()) << "not JSON: " << line;
    }
    return records;
  }
  std::string Stderr() const { return testing::ReadFile(ErrPath()); }

 private:
  RunProcess() = default;
  fs::path OutPath() const { return dir_.path() / "out.jsonl"; }
  fs::path ErrPath() const { return dir_.path() / "stderr"; }

  testing::TempDir dir_;
  int pid_ = -1;
  int stdin_ = -1;
};

// One modality "x" of width 1, test_model with `params`, the mean combiner.
fs::path WritePipeline(const testing::TempDir& dir, const std::string& params) {
  return dir.Write("pipeline.yaml",
                   absl::StrCat("apiVersion: latefuse/v1\nname: signal-test\n"
                                "task: classification\nclasses: [neg, pos]\n"
                                "plugin_dirs: ['",
                                testing::TestPluginDir().string(), "', '",
                                testing::PluginDir().string(),
                                "']\nmodalities:\n  - name: x\n"
                                "    input: {kind: dense, size: 1}\n"
                                "    model: {plugin: test_model, params: ",
                                params, "}\ncombiner: {plugin: mean}\n"));
}

std::string Line(int i) {
  return absl::StrCat(R"({"id": "r-)", i, R"(", "modalities": {"x": [)",
                      i % 7 - 3, "]}}\n");
}

// Expects records r-0 ... r-(n-1), in order, all ok.
void ExpectOkRecords(const std::vector<json>& records, int n) {
  ASSERT_EQ(records.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(records[i]["id"], absl::StrCat("r-", i)) << i;
    EXPECT_EQ(records[i]["status"], "ok") << records[i].dump();
  }
}

class RunSignalTest : public ::testing::TestWithParam<int> {
 protected:
  int signal() const { return GetParam(); }
  std::string SignalName() const {
    return signal() == SIGINT ? "SIGINT" : "SIGTERM";
  }
};

// Lines fed in several writes, some read while earlier batches are written:
// every one of them comes out once the signal stops the reading.
TEST_P(RunSignalTest, EveryLineReadGetsItsRecord) {
  testing::TempDir dir;
  auto run = RunProcess::Start(WritePipeline(dir, "{}"), {"--batch-size", "8"});
  ASSERT_NE(run, nullptr);
  constexpr int kLines = 203;
  for (int i = 0; i < kLines; ++i) {
    run->Feed(Line(i));
    if (i % 50 == 0) {
      ASSERT_TRUE(run->WaitUntilRead());
    }
  }
  ASSERT_TRUE(run->WaitUntilRead());
  EXPECT_EQ(run->SignalAndWait(signal()), 128 + signal()) << run->Stderr();
  ExpectOkRecords(run->Records(), kLines);
  EXPECT_THAT(
      run->Stderr(),
      HasSubstr(absl::StrCat("pipeline 'signal-test': ", kLines, " rows in")));
  EXPECT_THAT(run->Stderr(),
              HasSubstr(absl::StrCat("latefuse: stopped by ", SignalName(),
                                     ": every line read has its record")));
}

// The signal comes while the model sleeps over a batch: the batch is still
// fused (its rows ok, not failed) and written before the program exits.
TEST_P(RunSignalTest, ABatchInTheSlowModelIsFinishedAndWritten) {
  testing::TempDir dir;
  constexpr int kSleepMs = 1500;
  auto run = RunProcess::Start(
      WritePipeline(dir, absl::StrCat("{sleep_ms: ", kSleepMs, "}")),
      {"--batch-size", "1000", "-q"});
  ASSERT_NE(run, nullptr);
  constexpr int kLines = 11;
  std::string lines;
  for (int i = 0; i < kLines; ++i) lines += Line(i);
  run->Feed(lines);
  ASSERT_TRUE(run->WaitUntilRead());
  // The input now pauses, so the 11 lines go on as a batch and the model
  // starts its sleep; the signal lands well inside it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Clock::time_point signalled = Clock::now();
  EXPECT_EQ(run->SignalAndWait(signal()), 128 + signal()) << run->Stderr();
  // It waited for the model rather than leaving at once.
  EXPECT_GT(Clock::now() - signalled, std::chrono::milliseconds(kSleepMs / 2));
  ExpectOkRecords(run->Records(), kLines);
  EXPECT_EQ(run->Stderr(), "");  // -q: no summary, no note
}

// An unfinished last line (no newline yet) was read too: it gets a record,
// an error one, after the complete lines.
TEST_P(RunSignalTest, AnUnfinishedLastLineGetsAnErrorRecord) {
  testing::TempDir dir;
  auto run = RunProcess::Start(WritePipeline(dir, "{}"), {});
  ASSERT_NE(run, nullptr);
  constexpr int kLines = 5;
  for (int i = 0; i < kLines; ++i) run->Feed(Line(i));
  run->Feed(R"({"id": "r-5", "modal)");
  ASSERT_TRUE(run->WaitUntilRead());
  EXPECT_EQ(run->SignalAndWait(signal()), 128 + signal()) << run->Stderr();
  std::vector<json> records = run->Records();
  ASSERT_EQ(records.size(), static_cast<std::size_t>(kLines + 1));
  const json last = records.back();
  records.pop_back();
  ExpectOkRecords(records, kLines);
  EXPECT_EQ(last["status"], "error");
  EXPECT_EQ(last["id"], "r-5");  // salvaged from before the cut
  EXPECT_THAT(last["error"].get<std::string>(),
              HasSubstr(absl::StrCat("line ", kLines + 1, ": invalid JSON")));
}

std::string SignalTestName(const ::testing::TestParamInfo<int>& param) {
  return param.param == SIGINT ? "Sigint" : "Sigterm";
}

INSTANTIATE_TEST_SUITE_P(Signals, RunSignalTest,
                         ::testing::Values(SIGINT, SIGTERM), SignalTestName);

}  // namespace
}  // namespace latefuse
