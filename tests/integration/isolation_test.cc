// Fault containment (README "Fault containment: isolation: process"): faulty
// models, from the configurable `test_model` plugin (tests/plugins/
// test_model.cc), run in worker processes (`isolation: process`) and in
// process, beside a good modality and the real `mean` combiner.
//
// Every faulty batch must give exactly the records of the same pipeline
// without the faulty modality, with the fault named; a crashed or hung worker
// must be killed, reaped and restarted, and answer a later batch; bad outputs
// (NaN, unnormalised, wrong size, an exception) are refused in both modes.
#include "core/isolation.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::string Quoted(const std::string& s) { return json(s).dump(); }

// A pipeline of a faulty modality `a` (test_model with `params`, absent when
// empty) and a good modality `b`, fused by `mean`.
std::string PipelineYaml(const std::string& params,
                         const std::string& isolation, int timeout_ms = 0,
                         const std::string& on_error = "missing") {
  std::string yaml =
      "apiVersion: latefuse/v1\nname: isolation-test\ntask: "
      "classification\nclasses: [neg, pos]\n";
  yaml += "plugin_dirs: [" + Quoted(testing::TestPluginDir().string()) + ", " +
          Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n";
  if (!params.empty()) {
    yaml += "  - name: a\n    input: {kind: dense, size: 1}\n";
    yaml += "    model: {plugin: test_model, params: " + params + "}\n";
    yaml +=
        "    isolation: " + isolation + "\n    on_error: " + on_error + "\n";
    if (timeout_ms > 0)
      yaml += "    timeout_ms: " + std::to_string(timeout_ms) + "\n";
  }
  yaml += "  - name: b\n    input: {kind: dense, size: 1}\n";
  yaml += "    model: {plugin: test_model}\n";
  yaml += "combiner: {plugin: mean}\n";
  return yaml;
}

// The pids of `parent`'s children running latefuse-worker (zombies
// included: they are still children until reaped).
std::vector<pid_t> Workers(pid_t parent = ::getpid()) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...
    const std::size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string comm = line.substr(open + 1, close - open - 1);
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && comm == "latefuse-worker")
      pids.push_back(std::stoi(name));
  }
  return pids;
}

bool Exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Whether `pid` still runs: neither gone nor a zombie (a process whose parent
// died is reaped by init, which in a container may take its time).
bool Running(pid_t pid) {
  std::ifstream stat(fs::path("/proc") / std::to_string(pid) / "stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  return line.substr(line.rfind(')') + 2, 1) != "Z";
}

// Waits up to `limit` for `done()`.
template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit) {
  const Clock::time_point until = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The batch where `a`'s first row is negative (the faults' trigger), one row
// where `a` is positive, and one without `a`.
const std::vector<std::string> kFaultyBatch = {
    R"({"id": "r1", "modalities": {"a": [-1.0], "b": [0.5]}})",
    R"({"id": "r2", "modalities": {"a": [2.0], "b": [-0.25]}})",
    R"({"id": "r3", "modalities": {"b": [1.5]}})",
};
const std::vector<std::string> kGoodBatch = {
    R"({"id": "g1", "modalities": {"a": [1.0], "b": [0.5]}})",
    R"({"id": "g2", "modalities": {"a": [0.75], "b": [-1.0]}})",
};

// `lines` without modality `a`, for the pipeline without it.
std::vector<std::string> DropA(const std::vector<std::string>& lines) {
  std::vector<std::string> dropped;
  for (const std::string& line : lines) {
    json record = json::parse(line);
    record["modalities"].erase("a");
    dropped.push_back(record.dump());
  }
  return dropped;
}

// The records of `lines` through the pipeline without modality `a`.
std::vector<json> WithoutA(const testing::TempDir& dir,
                           const std::vector<std::string>& lines) {
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, PipelineYaml("", ""));
  if (pipeline == nullptr) return {};
  return testing::RunLines(*pipeline, DropA(lines));
}

// The records of `lines` through the pipeline with a good `a`, in process.
std::vector<json> GoodInProcess(const testing::TempDir& dir,
                                const std::vector<std::string>& lines) {
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, PipelineYaml("{}", "in_process"));
  if (pipeline == nullptr) return {};
  return testing::RunLines(*pipeline, lines);
}

// Same id, status, fused probabilities (bit for bit) and modalities used.
void ExpectSameRecords(const std::vector<json>& actual,
                       const std::vector<json>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i]["id"], expected[i]["id"]);
    EXPECT_EQ(actual[i]["status"], expected[i]["status"]) << actual[i];
    EXPECT_EQ(actual[i]["label"], expected[i]["label"]) << actual[i];
    EXPECT_EQ(actual[i]["used"], expected[i]["used"]) << actual[i];
    for (const char* c : {"neg", "pos"}) {
      EXPECT_EQ(actual[i]["probabilities"][c].get<double>(),
                expected[i]["probabilities"][c].get<double>())
          << actual[i];
    }
  }
}

struct Fault {
  std::string name;
  std::string params;     // test_model's, triggered by a negative row
  std::string reason;     // what the failure must say
  bool restarts = false;  // the worker dies and is started again
  int timeout_ms = 0;
};

void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

std::string FaultName(const ::testing::TestParamInfo<Fault>& info) {
  return info.param.name;
}

const Fault kSegfault{"Segfault", "{crash: segfault, when: negative}",
                      "worker killed by signal 11 (SIGSEGV)", true};
const Fault kAbort{"Abort", "{crash: abort, when: negative}",
                   "worker killed by signal 6 (SIGABRT)", true};
const Fault kLoop{"EndlessLoop", "{loop: true, when: negative}",
                  "worker overran its 300 ms deadline and was killed", true,
                  300};
// Refused in both modes; the worker lives on.
const Fault kThrow{"Throw", "{throw: true, when: negative}",
                   "test_model was told to throw"};
const Fault kNaN{"NaN", "{nan: true, when: negative}",
                 "returned nan as a probability"};
const Fault kUnnormalised{"Unnormalised",
                          "{unnormalised: true, when: negative}",
                          "returned probabilities summing to 0.5"};
const Fault kMore{"WrongSizeMore", "{wrong_size: more, when: negative}",
                  "wrote past the end of its output (2 rows x 2 values)"};
const Fault kFewer{"WrongSizeFewer", "{wrong_size: fewer, when: negative}",
                   "did not fill row 1 of its output"};

class ProcessFaultTest : public ::testing::TestWithParam<Fault> {};

// The host survives; the faulty batch's records are those of the pipeline
// without `a`; the reason names the fault; a later good batch is answered by
// the (restarted) worker.
TEST_P(ProcessFaultTest, HostSurvivesAndRecordsAreThoseWithoutTheModality) {
  const Fault& fault = GetParam();
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml(fault.params, "process", fault.timeout_ms));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<pid_t> before = Workers();
  ASSERT_EQ(before.size(), 1u) << "one worker, for modality a";

  const std::vector<json> out = testing::RunLines(*pipeline, kFaultyBatch);
  ExpectSameRecords(out, WithoutA(dir, kFaultyBatch));
  for (int i : {0, 1}) {
    const std::string failure = out[i]["failed"].value("a", "");
    EXPECT_THAT(failure, HasSubstr("pipeline 'isolation-test' modality 'a' "
                                   "(test_model 1.0.0)"));
    EXPECT_THAT(failure, HasSubstr(fault.reason));
  }
  EXPECT_FALSE(out[2]["failed"].contains("a"));
  if (fault.restarts) {
    EXPECT_THAT(out[0]["failed"]["a"].get<std::string>(),
                HasSubstr("restarting it in 100 ms"));
    EXPECT_FALSE(Exists(before[0])) << "the dead worker was reaped";
    EXPECT_TRUE(Workers().empty());
    std::this_thread::sleep_for(kFirstRestartDelay +
                                std::chrono::milliseconds(50));
  }

  ExpectSameRecords(testing::RunLines(*pipeline, kGoodBatch),
                    GoodInProcess(dir, kGoodBatch));
  const std::vector<pid_t> after = Workers();
  ASSERT_EQ(after.size(), 1u);
  if (fault.restarts) {
    EXPECT_NE(after[0], before[0]) << "a new worker answered";
  } else {
    EXPECT_EQ(after[0], before[0]) << "the worker lived through the fault";
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, ProcessFaultTest,
                         ::testing::Values(kSegfault, kAbort, kLoop, kThrow,
                                           kNaN, kUnnormalised, kMore, kFewer),
                         FaultName);

class InProcessFaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(InProcessFaultTest, BadOutputIsRefused) {
  const Fault& fault = GetParam();
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml(fault.params, "in_process"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<json> out = testing::RunLines(*pipeline, kFaultyBatch);
  ExpectSameRecords(out, WithoutA(dir, kFaultyBatch));
  EXPECT_THAT(out[0]["failed"].value("a", ""), HasSubstr(fault.reason));
  ExpectSameRecords(testing::RunLines(*pipeline, kGoodBatch),
                    GoodInProcess(dir, kGoodBatch));
}

INSTANTIATE_TEST_SUITE_P(Faults, InProcessFaultTest,
                         ::testing::Values(kThrow, kNaN, kUnnormalised, kMore,
                                           kFewer),
                         FaultName);

TEST(IsolationTest, OnErrorFailFailsTheRowsOfACrash) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml(kSegfault.params, "process", 0, "fail"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<json> out = testing::RunLines(*pipeline, kFaultyBatch);
  for (int i : {0, 1}) {
    EXPECT_EQ(out[i]["status"], "error") << out[i];
    EXPECT_THAT(out[i].value("error", ""), HasSubstr(kSegfault.reason));
  }
  EXPECT_EQ(out[2]["status"], "ok");
}

TEST(IsolationTest, CallsDuringBackoffFailFast) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml(kSegfault.params, "process"));
  ASSERT_NE(pipeline, nullptr);
  testing::RunLines(*pipeline, kFaultyBatch);
  const Clock::time_point start = Clock::now();
  const std::vector<json> out = testing::RunLines(*pipeline, kGoodBatch);
  const auto took = Clock::now() - start;
  ExpectSameRecords(out, WithoutA(dir, kGoodBatch));
  EXPECT_THAT(out[0]["failed"].value("a", ""),
              HasSubstr("worker down after a failure (killed by signal 11 "
                        "(SIGSEGV)); restarting it in"));
  EXPECT_THAT(out[0]["failed"].value("a", ""),
              HasSubstr("(backoff after 1 consecutive failure)"));
  EXPECT_LT(took, kFirstRestartDelay) << "no wait for the backoff";
  EXPECT_TRUE(Workers().empty()) << "not restarted during the backoff";
}

TEST(IsolationTest, BackoffDoublesWithConsecutiveFailures) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml("{crash: abort}", "process"));
  ASSERT_NE(pipeline, nullptr);
  testing::RunLines(*pipeline, kGoodBatch);
  std::this_thread::sleep_for(kFirstRestartDelay +
                              std::chrono::milliseconds(20));
  const std::vector<json> out = testing::RunLines(*pipeline, kGoodBatch);
  EXPECT_THAT(out[0]["failed"].value("a", ""),
              HasSubstr("killed by signal 6 (SIGABRT); restarting it in 200 "
                        "ms"));
}

TEST(IsolationTest, DeadlineKillIsBounded) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml("{loop: true}", "process", 200));
  ASSERT_NE(pipeline, nullptr);
  const pid_t worker = Workers().at(0);
  const Clock::time_point start = Clock::now();
  const std::vector<json> out = testing::RunLines(*pipeline, kGoodBatch);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  EXPECT_GE(took.count(), 200);
  EXPECT_LT(took.count(), 1500) << "killed at its deadline, not later";
  EXPECT_THAT(out[0]["failed"].value("a", ""),
              HasSubstr("worker overran its 200 ms deadline and was killed"));
  EXPECT_FALSE(Exists(worker));
}

// The sockets this process holds.
std::size_t OpenSockets() {
  std::size_t sockets = 0;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    sockets += fs::read_symlink(fd.path(), ec).string().starts_with("socket:");
  }
  return sockets;
}

TEST(IsolationTest, NoWorkerOutlivesItsPipeline) {
  testing::TempDir dir;
  const std::size_t sockets = OpenSockets();
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, PipelineYaml("{}", "process"));
  ASSERT_NE(pipeline, nullptr);
  const std::vector<pid_t> workers = Workers();
  ASSERT_EQ(workers.size(), 1u);
  { Engine engine(*pipeline, {}); }
  EXPECT_TRUE(Exists(workers[0])) << "the pipeline's worker outlives engines";
  ExpectSameRecords(testing::RunLines(*pipeline, kGoodBatch),
                    GoodInProcess(dir, kGoodBatch));
  pipeline.reset();
  EXPECT_FALSE(Exists(workers[0])) << "ended and reaped, no zombie";
  EXPECT_TRUE(Workers().empty());
  EXPECT_EQ(OpenSockets(), sockets) << "the host's end is closed";
}

TEST(IsolationTest, WorkerHoldsOnlyItsSocket) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline =
      testing::LoadPipelineOrFail(dir, PipelineYaml("{}", "process"));
  ASSERT_NE(pipeline, nullptr);
  const pid_t worker = Workers().at(0);
  std::vector<std::string> fds;
  for (const auto& fd : fs::directory_iterator(fs::path("/proc") /
                                               std::to_string(worker) / "fd")) {
    fds.push_back(fd.path().filename().string());
  }
  std::sort(fds.begin(), fds.end());
  // stdin (/dev/null), stdout and stderr (the host's stderr), the socket,
  // and what the worker opened itself: the plugin library it loaded.
  EXPECT_THAT(fds, ::testing::IsSupersetOf({"0", "1", "2", "3"}));
  for (const std::string& fd : fds) {
    if (fd == "0" || fd == "1" || fd == "2" || fd == "3") continue;
    const fs::path target = fs::read_symlink(
        fs::path("/proc") / std::to_string(worker) / "fd" / fd);
    EXPECT_EQ(target.extension(), ".so") << "fd " << fd << " -> " << target;
  }
}

// Load errors are those of the same pipeline in process, word for word.
TEST(IsolationTest, LoadErrorsAreThoseOfInProcess) {
  for (const std::string& params :
       {std::string("{fail_create: true}"), std::string("{width: 3}"),
        std::string("{classes: [x, y]}")}) {
    testing::TempDir dir;
    absl::StatusOr<std::unique_ptr<Pipeline>> in_process =
        testing::LoadPipelineText(dir, PipelineYaml(params, "in_process"));
    absl::StatusOr<std::unique_ptr<Pipeline>> isolated =
        testing::LoadPipelineText(dir, PipelineYaml(params, "process"));
    ASSERT_FALSE(in_process.ok()) << params;
    ASSERT_FALSE(isolated.ok()) << params;
    EXPECT_EQ(isolated.status(), in_process.status()) << params;
  }
  EXPECT_TRUE(Workers().empty()) << "a worker that failed to load is reaped";
}

// The plan says which modality runs isolated, and which file the worker
// loaded, with its hash: the same as in process.
TEST(IsolationTest, PlanNamesTheFileTheWorkerLoaded) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> isolated =
      testing::LoadPipelineOrFail(dir, PipelineYaml("{}", "process"));
  std::unique_ptr<Pipeline> in_process =
      testing::LoadPipelineOrFail(dir, PipelineYaml("{}", "in_process"));
  ASSERT_NE(isolated, nullptr);
  ASSERT_NE(in_process, nullptr);
  std::string expected = in_process->Plan();
  const std::string missing = "on_error missing\n";
  expected.replace(expected.find(missing), missing.size(),
                   "on_error missing, isolation process\n");
  EXPECT_EQ(isolated->Plan(), expected);
}

TEST(IsolationTest, ModelChangingItsOutputShapeIsRefused) {
  std::vector<double> buffer;
  LfProbabilities out{};
  PrepareModelOutput(3, 2, buffer, out);
  std::size_t bad_row = 0;
  out.rows = 4;
  EXPECT_EQ(CheckModelOutput(out, buffer, 3, 2, 2, &bad_row),
            "changed its output's shape from 3 rows x 2 to 4 rows x 2");
  out.rows = 3;
  for (std::size_t i = 0; i < 6; ++i) buffer[i] = 0.5;
  EXPECT_EQ(CheckModelOutput(out, buffer, 3, 2, 2, &bad_row), "");
  buffer[6] = 0.5;
  EXPECT_EQ(CheckModelOutput(out, buffer, 3, 2, 2, &bad_row),
            "wrote past the end of its output (3 rows x 2 values)");
}

// A shadow runs isolated with its modality: its crash touches nothing but the
// record's "shadow" field.
TEST(IsolationTest, IsolatedShadowCrashLeavesTheFusedOutputAlone) {
  testing::TempDir dir;
  std::string yaml = PipelineYaml("{}", "process");
  const std::string model = "    model: {plugin: test_model, params: {}}\n";
  yaml.replace(yaml.find(model), model.size(),
               model + "    shadow: {plugin: test_model, params: " +
                   kSegfault.params + "}\n");
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(dir, yaml);
  ASSERT_NE(pipeline, nullptr);
  EXPECT_EQ(Workers().size(), 2u) << "the model's and the shadow's";
  const std::vector<json> out = testing::RunLines(*pipeline, kFaultyBatch);
  ExpectSameRecords(out, GoodInProcess(dir, kFaultyBatch));
  EXPECT_THAT(out[0]["shadow"]["a"].value("error", ""),
              HasSubstr("modality 'a' shadow (test_model 1.0.0): infer "
                        "failed: worker killed by signal 11 (SIGSEGV)"));
  EXPECT_EQ(Workers().size(), 1u) << "the model's worker is untouched";
}

// `latefuse serve`: a reload replaces the pipeline's workers, ending the old
// ones; a host killed outright takes its workers with it.
TEST(IsolationTest, ServeReloadReplacesWorkersAndWorkersDieWithTheirHost) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", PipelineYaml("{}", "process"));
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server =
      testing::ServerProcess::Start(pipeline);
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t host = (*server)->pid();
  const std::vector<pid_t> first = Workers(host);
  ASSERT_EQ(first.size(), 1u);

  (*server)->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::vector<pid_t> now = Workers(host);
        return now.size() == 1 && now[0] != first[0];
      },
      std::chrono::milliseconds(10000)))
      << (*server)->Stderr();
  EXPECT_FALSE(Running(first[0])) << "the old generation's worker ended";
  const pid_t second = Workers(host).at(0);

  (*server)->Signal(SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return !Running(second); },
                      std::chrono::milliseconds(5000)))
      << "the worker outlived its host";
}

// The real program end to end: a segfaulting isolated modality leaves the
// run whole, with the records of the pipeline without it.
TEST(IsolationTest, LatefuseRunSurvivesASegfaultingModel) {
  testing::TempDir dir;
  const fs::path faulty =
      dir.Write("faulty.yaml", PipelineYaml(kSegfault.params, "process"));
  const fs::path without = dir.Write("without.yaml", PipelineYaml("", ""));
  std::string lines;
  for (const std::string& line : kFaultyBatch) lines += line + "\n";
  const fs::path input = dir.Write("in.jsonl", lines);
  lines.clear();
  for (const std::string& line : DropA(kFaultyBatch)) lines += line + "\n";
  const fs::path input_without = dir.Write("without.jsonl", lines);
  const testing::CommandResult run =
      testing::RunLatefuse("run " + testing::ShellQuote(faulty.string()) +
                           " -i " + testing::ShellQuote(input.string()));
  ASSERT_EQ(run.code, 0) << run.err;
  const testing::CommandResult reference = testing::RunLatefuse(
      "run " + testing::ShellQuote(without.string()) + " -i " +
      testing::ShellQuote(input_without.string()));
  ASSERT_EQ(reference.code, 0) << reference.err;
  std::vector<json> out, expected;
  std::istringstream a(run.out), b(reference.out);
  for (std::string line; std::getline(a, line);)
    out.push_back(json::parse(line));
  for (std::string line; std::getline(b, line);)
    expected.push_back(json::parse(line));
  ExpectSameRecords(out, expected);
  EXPECT_THAT(out[0]["failed"].value("a", ""), HasSubstr(kSegfault.reason));
}

}  // namespace
}  // namespace latefuse
