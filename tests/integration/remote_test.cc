// The `remote` model plugin through the real host, against two kinds of Open
// Inference Protocol (KServe v2 REST) server on loopback:
//
// - FakeOip, an httplib::Server in this process whose answers come from the
//   demo's vitals model (the `linear` plugin) run through the host here, and
//   which can be told to misbehave: sleep, answer HTTP 500, a malformed body, a
//   wrong shape, probabilities that are not a distribution. It counts requests
//   and connections (distinct client ports) and records the Authorization
//   header.
// - A second `latefuse serve` process hosting a one-modality pipeline (combiner
//   mean), per /work/notes/oip.md. Skipped when the `latefuse` program has no
//   `serve` subcommand.
//
// A remote modality's probabilities must equal those of the same model run
// locally, exactly: FP32 inputs travel as the shortest text that reads back as
// the same float32, FP64 answers with 17 significant digits.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

std::string Quoted(const std::string& s) { return json(s).dump(); }

fs::path DemoDir() { return testing::SourceDir() / "configs" / "demo"; }

// A pipeline named `name` of one modality, vitals (dense, 12 features), whose
// model is `model` (a YAML flow mapping) found in `plugin_dirs`, fused by mean;
// `extra` adds keys to the modality.
std::string VitalsPipelineYaml(const std::string& name,
                               const std::vector<fs::path>& plugin_dirs,
                               const std::string& model,
                               const std::string& extra = "") {
  std::string dirs;
  for (const fs::path& dir : plugin_dirs) {
    dirs += (dirs.empty() ? "" : ", ") + Quoted(dir.string());
  }
  return "apiVersion: latefuse/v1\nname: " + name +
         "\nclasses: [stable, deteriorating]\nplugin_dirs: [" + dirs +
         "]\nmodalities:\n"
         "  - name: vitals\n"
         "    input: {kind: dense, size: 12}\n"
         "    model: " +
         model + "\n" + extra + "combiner: {plugin: mean}\n";
}

// The demo's vitals model, run here.
std::string LocalVitalsYaml(const std::string& name) {
  return VitalsPipelineYaml(
      name, {testing::PluginDir()},
      "{plugin: linear, params: {model: " +
          Quoted((DemoDir() / "models" / "vitals.json").string()) + "}}");
}

// The same modality through the remote plugin; `params` is a YAML flow
// mapping's inside.
std::string RemoteVitalsYaml(const std::string& params,
                             const std::string& extra = "") {
  return VitalsPipelineYaml(
      "remote-test", {testing::PluginDir()},
      "{plugin: remote, params: {input: vitals, width: 12, " + params + "}}",
      extra);
}

// The demo's patients with only their vitals (present or not), as records.
std::vector<std::string> VitalsRecords(std::size_t n) {
  std::vector<std::string> lines;
  for (const std::string& line :
       testing::ReadLines(DemoDir() / "data" / "patients.jsonl")) {
    if (lines.size() == n) break;
    const json record = json::parse(line);
    json vitals = record["modalities"].value("vitals", json());
    lines.push_back(
        json{{"id", record["id"]}, {"modalities", {{"vitals", vitals}}}}
            .dump());
  }
  return lines;
}

// A free loopback port: bound, read and released (nothing listens on it after).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof(address);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// An httplib::Server on 127.0.0.1, on a port of its own, running on a thread
// from Start() until destroyed. Routes are added to server() before Start().
class LoopbackServer {
 public:
  // TCP_NODELAY: httplib writes an answer's headers and body apart, and
  // without it Nagle's algorithm holds the body for the client's delayed ACK
  // (~40 ms a request).
  LoopbackServer() {
    server_.set_keep_alive_max_count(100000);
    server_.set_tcp_nodelay(true);
  }
  ~LoopbackServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Server& server() { return server_; }
  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound and listening already: connections wait in the backlog until the
    // thread accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
};

// How FakeOip answers an infer request.
enum class Behaviour {
  kModel,            // the vitals model's probabilities
  kSleep,            // the same, after sleep_ms
  kHttp500,          // 500 {"error": "model crashed"}
  kFail500Once,      // 500 on the first infer request, then the model
  kHttp400,          // 400 {"error": "bad tensor"}
  kMalformed,        // 200 with a body that is not JSON
  kWrongShape,       // [rows, 3]
  kNotDistribution,  // [-0.5, 1.5] per row
  kUniform           // [0.5, 0.5] per row, without running a model
};

// An OIP server on 127.0.0.1 serving model "vitals" from the local pipeline.
class FakeOip {
 public:
  explicit FakeOip(std::string metadata_output_shape = "[-1, 2]")
      : metadata_output_shape_(std::move(metadata_output_shape)) {
    local_ = testing::LoadPipelineOrFail(dir_, LocalVitalsYaml("local"));
    http_.server().Get("/v2/models/vitals", [this](const httplib::Request& req,
                                                   httplib::Response& res) {
      Count(req);
      res.set_content(Metadata(), "application/json");
    });
    http_.server().Post(
        "/v2/models/vitals/infer",
        [this](const httplib::Request& req, httplib::Response& res) {
          Count(req);
          Infer(req, res);
        });
    http_.Start();
  }

  std::string url() const { return http_.url(); }
  void set_behaviour(Behaviour b) { behaviour_ = b; }
  void set_sleep_ms(int ms) { sleep_ms_ = ms; }
  int infer_requests() const { return infer_requests_; }
  std::size_t connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return client_ports_.size();
  }
  std::vector<std::size_t> rows_per_request() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return rows_per_request_;
  }
  std::string authorization() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return authorization_;
  }

 private:
  void Count(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mutex_);
    client_ports_.insert(req.remote_port);
    authorization_ = req.get_header_value("Authorization");
  }

  std::string Metadata() const {
    return R"({"name": "vitals", "versions": ["1"], "platform": "fake",
               "inputs": [{"name": "vitals", "datatype": "FP32", "shape": [-1, 12]}],
               "outputs": [{"name": "probabilities", "datatype": "FP64", "shape": )" +
           metadata_output_shape_ + "}]}";
  }

  void Infer(const httplib::Request& req, httplib::Response& res) {
    const int call = ++infer_requests_;
    const json request = json::parse(req.body);
    const json& input = request["inputs"][0];
    const std::size_t rows = input["shape"][0].get<std::size_t>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      rows_per_request_.push_back(rows);
    }
    if (input["name"] != "vitals" || input["datatype"] != "FP32" ||
        input["shape"] != json{rows, 12} || input["data"].size() != rows * 12) {
      res.status = 400;
      res.set_content(R"({"error": "unexpected input tensor"})",
                      "application/json");
      return;
    }
    switch (behaviour_.load()) {
      case Behaviour::kHttp500:
        res.status = 500;
        res.set_content(R"({"error": "model crashed"})", "application/json");
        return;
      case Behaviour::kFail500Once:
        if (call == 1) {
          res.status = 500;
          res.set_content(R"({"error": "warming up"})", "application/json");
          return;
        }
        break;
      case Behaviour::kHttp400:
        res.status = 400;
        res.set_content(R"({"error": "bad tensor"})", "application/json");
        return;
      case Behaviour::kMalformed:
        res.set_content(R"({"outputs": [{"name": "probabilities", "data": [0.)",
                        "application/json");
        return;
      case Behaviour::kSleep:
        std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
        break;
      default:
        break;
    }
    json data = json::array();
    std::size_t classes = 2;
    if (behaviour_ == Behaviour::kWrongShape) {
      classes = 3;
      for (std::size_t i = 0; i < rows * 3; ++i) data.push_back(1.0 / 3);
    } else if (behaviour_ == Behaviour::kUniform) {
      data = std::vector<double>(rows * 2, 0.5);
    } else if (behaviour_ == Behaviour::kNotDistribution) {
      for (std::size_t i = 0; i < rows; ++i) {
        data.push_back(-0.5);
        data.push_back(1.5);
      }
    } else {
      data = Model(input["data"], rows);
    }
    const json answer = {{"model_name", "vitals"},
                         {"outputs",
                          {{{"name", "probabilities"},
                            {"datatype", "FP64"},
                            {"shape", {rows, classes}},
                            {"data", data}}}}};
    res.set_content(answer.dump(), "application/json");
  }

  // The rows' probabilities from the local pipeline (one server thread at a
  // time: a pipeline runs one batch at once).
  json Model(const json& values, std::size_t rows) {
    std::vector<std::string> lines;
    for (std::size_t r = 0; r < rows; ++r) {
      json vitals = json::array();
      for (std::size_t i = 0; i < 12; ++i) {
        vitals.push_back(values[r * 12 + i].get<double>());
      }
      lines.push_back(
          json{{"id", std::to_string(r)}, {"modalities", {{"vitals", vitals}}}}
              .dump());
    }
    std::lock_guard<std::mutex> lock(model_mutex_);
    RunOptions options;
    options.output.per_modality = true;
    json data = json::array();
    for (const json& record : testing::RunLines(*local_, lines, options)) {
      const json& p = record["modalities"]["vitals"];
      data.push_back(p["stable"]);
      data.push_back(p["deteriorating"]);
    }
    return data;
  }

  testing::TempDir dir_;
  std::unique_ptr<Pipeline> local_;
  std::mutex model_mutex_;
  std::string metadata_output_shape_;
  std::atomic<Behaviour> behaviour_{Behaviour::kModel};
  std::atomic<int> sleep_ms_{0};
  std::atomic<int> infer_requests_{0};
  mutable std::mutex mutex_;
  std::set<int> client_ports_;
  std::vector<std::size_t> rows_per_request_;
  std::string authorization_;
  LoopbackServer http_;  // last: stopped before the members its routes use
};

// The records of running `lines` through the local vitals model.
std::vector<json> RunLocally(const std::vector<std::string>& lines,
                             std::size_t batch_size) {
  testing::TempDir dir;
  auto local = testing::LoadPipelineOrFail(dir, LocalVitalsYaml("local"));
  RunOptions options;
  options.batch_size = batch_size;
  options.output.per_modality = true;
  return local ? testing::RunLines(*local, lines, options)
               : std::vector<json>{};
}

class RemoteTest : public ::testing::Test {
 protected:
  // Runs `lines` through a remote pipeline; the test stops if it does not load.
  std::vector<json> Run(const std::string& yaml,
                        const std::vector<std::string>& lines,
                        std::size_t batch_size = 256) {
    auto pipeline = testing::LoadPipelineText(dir_, yaml);
    EXPECT_TRUE(pipeline.ok()) << pipeline.status() << "\n" << yaml;
    if (!pipeline.ok()) return {};
    RunOptions options;
    options.batch_size = batch_size;
    options.output.per_modality = true;
    return testing::RunLines(**pipeline, lines, options);
  }

  std::string Params(const FakeOip& server, const std::string& more = "") {
    return "url: " + Quoted(server.url()) + ", model: vitals" +
           (more.empty() ? "" : ", " + more);
  }

  // Every record with vitals present failed with a reason holding `why`.
  void ExpectVitalsFailed(const std::vector<json>& records,
                          const std::string& why) {
    std::size_t failed = 0;
    for (const json& record : records) {
      if (record["missing"] == json{"vitals"}) continue;
      ++failed;
      EXPECT_EQ(record["status"], "abstain") << record;
      EXPECT_EQ(record["used"], json::array()) << record;
      ASSERT_TRUE(record["failed"].contains("vitals")) << record;
      EXPECT_THAT(record["failed"]["vitals"].get<std::string>(),
                  HasSubstr(why));
    }
    EXPECT_GT(failed, 0u);
  }

  testing::TempDir dir_;
};

TEST_F(RemoteTest, ProbabilitiesEqualTheModelRunLocally) {
  FakeOip server;
  const std::vector<std::string> lines = VitalsRecords(100);
  constexpr std::size_t kBatch = 32;
  const Clock::time_point start = Clock::now();
  const std::vector<json> remote =
      Run(RemoteVitalsYaml(Params(server)), lines, kBatch);
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  const std::vector<json> local = RunLocally(lines, kBatch);
  ASSERT_EQ(remote.size(), local.size());
  std::size_t present = 0;
  for (std::size_t i = 0; i < remote.size(); ++i) {
    EXPECT_EQ(remote[i]["status"], local[i]["status"]) << remote[i];
    EXPECT_EQ(remote[i]["failed"], json::object()) << remote[i];
    EXPECT_EQ(remote[i]["probabilities"], local[i]["probabilities"]);
    EXPECT_EQ(remote[i]["modalities"], local[i]["modalities"]);
    present += remote[i]["used"] == json{"vitals"};
  }
  EXPECT_GT(present, 90u);
  // One request per batch of present rows, all on one kept-alive connection
  // (with create's metadata request).
  std::size_t batches = 0;
  std::vector<std::size_t> expected_rows;
  for (std::size_t b = 0; b < lines.size(); b += kBatch) {
    std::size_t rows = 0;
    for (std::size_t i = b; i < std::min(b + kBatch, lines.size()); ++i) {
      rows += remote[i]["used"] == json{"vitals"};
    }
    if (rows > 0) expected_rows.push_back(rows);
    ++batches;
  }
  EXPECT_EQ(server.rows_per_request(), expected_rows);
  EXPECT_EQ(server.connections(), 1u);
  std::cout << "remote: " << lines.size() << " records in " << batches
            << " batches of up to " << kBatch << " rows, "
            << seconds * 1000 / static_cast<double>(batches)
            << " ms per batch on loopback (load included)\n";
}

TEST_F(RemoteTest, LatencyPerBatchOnLoopback) {
  FakeOip server;
  testing::TempDir dir;
  auto pipeline =
      testing::LoadPipelineOrFail(dir, RemoteVitalsYaml(Params(server)));
  ASSERT_NE(pipeline, nullptr);
  // 256 records with vitals, one batch each run.
  std::vector<std::string> lines;
  for (const std::string& line : VitalsRecords(400)) {
    if (json::parse(line)["modalities"]["vitals"].is_null()) continue;
    if (lines.size() < 256) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 256u);
  // Milliseconds per batch: with the fake server running the model, and
  // answering at once (what the plugin and HTTP on loopback cost).
  constexpr int kRuns = 20;
  auto per_batch = [&](Behaviour behaviour) {
    server.set_behaviour(behaviour);
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < kRuns; ++i) {
      for (const json& record : testing::RunLines(*pipeline, lines)) {
        EXPECT_EQ(record["status"], "ok") << record;
      }
    }
    return std::chrono::duration<double, std::milli>(Clock::now() - start)
               .count() /
           kRuns;
  };
  const double model_ms = per_batch(Behaviour::kModel);
  const double uniform_ms = per_batch(Behaviour::kUniform);
  EXPECT_EQ(server.infer_requests(), 2 * kRuns);
  EXPECT_EQ(server.connections(), 1u);
  std::cout << "remote: per batch of 256 rows x 12 features on loopback, "
            << "whole pipeline run: " << model_ms
            << " ms with the fake server running the model, " << uniform_ms
            << " ms with it answering at once\n";
}

TEST_F(RemoteTest, TextTravelsAsBytesExactly) {
  const std::vector<std::string> notes = {
      "plain note",
      "quote \" backslash \\ slash /",
      "line\nbreak\ttab\rreturn",
      std::string("controls \x01 \x1f"),
      "accents \u00e9 \u00fc, Greek \u03b1\u03b2, CJK \u6f22\u5b57, emoji "
      "\U0001F642",
      ""};
  LoopbackServer http;
  std::mutex mutex;
  std::vector<std::string> received;
  http.server().Post("/v2/models/notes/infer", [&](const httplib::Request& req,
                                                   httplib::Response& res) {
    const json input = json::parse(req.body)["inputs"][0];
    const std::size_t rows = input["shape"][0].get<std::size_t>();
    EXPECT_EQ(input["datatype"], "BYTES");
    EXPECT_EQ(input["shape"], json{rows});
    // P(deteriorating) = 1 / (2 + bytes of the note).
    json data = json::array();
    std::lock_guard<std::mutex> lock(mutex);
    for (const json& item : input["data"]) {
      received.push_back(item.get<std::string>());
      const double p =
          1.0 / (2.0 + static_cast<double>(received.back().size()));
      data.push_back(1.0 - p);
      data.push_back(p);
    }
    res.set_content(json{{"outputs",
                          {{{"name", "probabilities"},
                            {"datatype", "FP64"},
                            {"shape", {rows, 2}},
                            {"data", data}}}}}
                        .dump(),
                    "application/json");
  });
  http.Start();
  const std::string yaml =
      "apiVersion: latefuse/v1\nname: remote-text\n"
      "classes: [stable, deteriorating]\n"
      "plugin_dirs: [" +
      Quoted(testing::PluginDir().string()) +
      "]\n"
      "modalities:\n"
      "  - name: notes\n"
      "    input: {kind: text}\n"
      "    model: {plugin: remote, params: {url: " +
      Quoted(http.url()) +
      ", model: notes, input: notes, datatype: BYTES, "
      "check_metadata: false}}\n"
      "combiner: {plugin: mean}\n";
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < notes.size(); ++i) {
    lines.push_back(
        json{{"id", std::to_string(i)}, {"modalities", {{"notes", notes[i]}}}}
            .dump());
  }
  const std::vector<json> records = Run(yaml, lines);
  EXPECT_EQ(received, notes);
  ASSERT_EQ(records.size(), notes.size());
  for (std::size_t i = 0; i < notes.size(); ++i) {
    ASSERT_EQ(records[i]["status"], "ok") << records[i];
    EXPECT_DOUBLE_EQ(records[i]["probabilities"]["deteriorating"].get<double>(),
                     1.0 / (2.0 + static_cast<double>(notes[i].size())));
  }
}

TEST_F(RemoteTest, BearerTokenIsSentFromAnEnvironmentVariable) {
  FakeOip server;
  ASSERT_EQ(setenv("LATEFUSE_REMOTE_TEST_TOKEN", "s3cret-token", 1), 0);
  const auto records = Run(
      RemoteVitalsYaml(Params(server, "token_env: LATEFUSE_REMOTE_TEST_TOKEN")),
      VitalsRecords(3));
  EXPECT_EQ(records[0]["status"], "ok");
  EXPECT_EQ(server.authorization(), "Bearer s3cret-token");
}

TEST_F(RemoteTest, BearerTokenIsSentFromAFileAndNeverInAReason) {
  FakeOip server;
  dir_.Write("token", "file-token\n");
  server.set_behaviour(Behaviour::kHttp500);
  const auto records =
      Run(RemoteVitalsYaml(Params(server, "token_file: token, retries: 0")),
          VitalsRecords(3));
  EXPECT_EQ(server.authorization(), "Bearer file-token");
  ExpectVitalsFailed(records, "HTTP 500");
  for (const json& record : records) {
    EXPECT_THAT(record.dump(), Not(HasSubstr("file-token")));
  }
}

TEST_F(RemoteTest, TimeoutMakesTheModalityMissingWithoutRetrying) {
  FakeOip server;
  server.set_behaviour(Behaviour::kSleep);
  server.set_sleep_ms(600);
  const std::vector<std::string> lines = VitalsRecords(10);
  const Clock::time_point start = Clock::now();
  const auto records = Run(
      RemoteVitalsYaml(Params(server, "timeout_ms: 100, retries: 2")), lines);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  ExpectVitalsFailed(records, "timed out after 100 ms waiting for the answer");
  // One batch, one request: a timeout is not retried.
  EXPECT_EQ(server.infer_requests(), 1);
  EXPECT_LT(elapsed.count(), 500) << "the call waits about timeout_ms";
  std::cout << "remote: a 100 ms timeout returned after " << elapsed.count()
            << " ms (pipeline load included)\n";
}

TEST_F(RemoteTest, RefusedConnectionIsRetriedThenMissing) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string params =
      "url: " + Quoted("http://127.0.0.1:" + std::to_string(port)) +
      ", model: vitals, retries: 2, retry_backoff_ms: 10";
  const Clock::time_point start = Clock::now();
  // Create succeeds: a remote that is down is a missing modality, not a
  // pipeline that cannot start.
  const auto records = Run(RemoteVitalsYaml(params), VitalsRecords(5));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  ExpectVitalsFailed(records, "cannot connect (refused or unreachable)");
  ExpectVitalsFailed(records, "(after 3 attempts)");
  // Backoffs of 10 and 20 ms.
  EXPECT_GE(elapsed.count(), 30);
  EXPECT_LT(elapsed.count(), 1000);
}

// Each way a remote can fail makes the modality missing with the reason; only
// what may pass on a second try is retried.
TEST_F(RemoteTest, FailuresMakeTheModalityMissingWithTheReason) {
  const std::vector<std::string> lines = VitalsRecords(5);
  std::size_t rows = 0;
  for (const std::string& line : lines) {
    rows += !json::parse(line)["modalities"]["vitals"].is_null();
  }
  const std::string r = std::to_string(rows);
  struct Case {
    Behaviour behaviour;
    std::string params;
    std::string reason;
    int requests;
  };
  const std::vector<Case> cases = {
      {Behaviour::kHttp500, "retries: 2, retry_backoff_ms: 5",
       "HTTP 500: model crashed (after 3 attempts)", 3},
      {Behaviour::kHttp400, "retries: 3", "HTTP 400: bad tensor", 1},
      {Behaviour::kMalformed, "retries: 3", "the answer is not valid JSON", 1},
      {Behaviour::kWrongShape, "retries: 3",
       "output 'probabilities' has shape [" + r + ",3], expected [" + r +
           ",2] (" + r + " rows sent, the pipeline's 2 classes)",
       1},
      // The engine's check, as for every model.
      {Behaviour::kNotDistribution, "retries: 3",
       "returned -0.5 as a probability", 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    FakeOip server;
    server.set_behaviour(c.behaviour);
    ExpectVitalsFailed(Run(RemoteVitalsYaml(Params(server, c.params)), lines),
                       c.reason);
    EXPECT_EQ(server.infer_requests(), c.requests);
  }
}

TEST_F(RemoteTest, Http500OnceIsRecoveredByARetry) {
  FakeOip server;
  server.set_behaviour(Behaviour::kFail500Once);
  const std::vector<std::string> lines = VitalsRecords(20);
  const auto records =
      Run(RemoteVitalsYaml(Params(server, "retries: 1")), lines);
  const auto local = RunLocally(lines, 256);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i]["failed"], json::object());
    EXPECT_EQ(records[i]["probabilities"], local[i]["probabilities"]);
  }
  EXPECT_EQ(server.infer_requests(), 2);
}

TEST_F(RemoteTest, OnErrorFailMakesTheRowsErrors) {
  FakeOip server;
  server.set_behaviour(Behaviour::kHttp500);
  const auto records = Run(
      RemoteVitalsYaml(Params(server, "retries: 0"), "    on_error: fail\n"),
      VitalsRecords(4));
  for (const json& record : records) {
    if (record["missing"] == json{"vitals"}) continue;
    EXPECT_EQ(record["status"], "error") << record;
    EXPECT_THAT(record["error"].get<std::string>(), HasSubstr("HTTP 500"));
  }
}

TEST_F(RemoteTest, MetadataThatContradictsThePipelineFailsCreate) {
  FakeOip server("[-1, 3]");
  auto pipeline =
      testing::LoadPipelineText(dir_, RemoteVitalsYaml(Params(server)));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(std::string(pipeline.status().message()),
              HasSubstr("gives output 'probabilities' shape [-1,3], but the "
                        "pipeline has 2 classes"));
  // The check can be turned off; the answers are then checked per call.
  EXPECT_TRUE(
      testing::LoadPipelineText(
          dir_, RemoteVitalsYaml(Params(server, "check_metadata: false")))
          .ok());
}

TEST_F(RemoteTest, UnknownInputNameFailsCreateAgainstMetadata) {
  FakeOip server;
  auto pipeline = testing::LoadPipelineText(
      dir_, RemoteVitalsYaml(Params(server))
                .replace(RemoteVitalsYaml(Params(server)).find("input: vitals"),
                         13, "input: vitalz"));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(std::string(pipeline.status().message()),
              HasSubstr("has no input 'vitalz' (its inputs: vitals)"));
}

TEST_F(RemoteTest, BadParamsAreRefusedAtCreate) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"url: \"127.0.0.1:80\", model: m", "params.url: expected http://"},
      {"url: \"http://h:1\", model: \"a/b\"", "params.model: expected a name"},
      {"url: \"http://h:1\", model: m, timeout_ms: 0",
       "params.timeout_ms: expected an integer from 1"},
      {"url: \"http://h:1\", model: m, retries: 11",
       "params.retries: expected an integer from 0 to 10"},
      {"url: \"http://h:1\", model: m, datatype: INT8",
       "params.datatype: expected FP32"},
      {"url: \"http://h:1\", model: m, token_env: LATEFUSE_NO_SUCH_VARIABLE",
       "the environment variable 'LATEFUSE_NO_SUCH_VARIABLE' is not set"},
      {"url: \"http://h:1\", model: m, colour: red",
       "params.colour: unknown parameter"},
  };
  for (const auto& [params, why] : cases) {
    auto pipeline = testing::LoadPipelineText(dir_, RemoteVitalsYaml(params));
    ASSERT_FALSE(pipeline.ok()) << params;
    EXPECT_THAT(std::string(pipeline.status().message()), HasSubstr(why));
  }
  auto no_width = testing::LoadPipelineText(
      dir_, VitalsPipelineYaml("no-width", {testing::PluginDir()},
                               "{plugin: remote, params: {url: \"http://h:1\", "
                               "model: m, input: x}}"));
  ASSERT_FALSE(no_width.ok());
  EXPECT_THAT(std::string(no_width.status().message()),
              HasSubstr("params.width: missing required parameter"));
}

// ---- Against a second `latefuse serve` process (/work/notes/oip.md)

class RemoteServeTest : public RemoteTest {
 protected:
  // Starts `latefuse serve` on `yaml` (written as host-<name>.yaml); null,
  // with a test failure, when it does not get ready.
  std::unique_ptr<testing::ServerProcess> Serve(const std::string& name,
                                                const std::string& yaml) {
    const fs::path file = dir_.Write("host-" + name + ".yaml", yaml);
    absl::StatusOr<std::unique_ptr<testing::ServerProcess>> process =
        testing::ServerProcess::Start(file);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? *std::move(process) : nullptr;
  }
  static std::string Url(const testing::ServerProcess& server) {
    return "http://127.0.0.1:" + std::to_string(server.port());
  }
};

// test_model as the vitals model, to make the hosted model slow or fail.
std::string HostedTestModelYaml(const std::string& name,
                                const std::string& params,
                                const std::string& on_error) {
  return VitalsPipelineYaml(
      name, {testing::TestPluginDir(), testing::PluginDir()},
      "{plugin: test_model, params: {width: 12, " + params + "}}",
      "    on_error: " + on_error + "\n");
}

TEST_F(RemoteServeTest, ProbabilitiesEqualTheModelRunLocally) {
  const auto host = Serve("vitals", LocalVitalsYaml("vitals-host"));
  ASSERT_NE(host, nullptr);
  const std::vector<std::string> lines = VitalsRecords(100);
  const std::string params =
      "url: " + Quoted(Url(*host)) + ", model: vitals-host";
  const std::vector<json> remote = Run(RemoteVitalsYaml(params), lines, 32);
  const std::vector<json> local = RunLocally(lines, 32);
  ASSERT_EQ(remote.size(), local.size());
  for (std::size_t i = 0; i < remote.size(); ++i) {
    EXPECT_EQ(remote[i]["failed"], json::object()) << remote[i];
    EXPECT_EQ(remote[i]["status"], local[i]["status"]);
    EXPECT_EQ(remote[i]["probabilities"], local[i]["probabilities"]);
  }
}

TEST_F(RemoteServeTest, MetadataOfTheWrongClassesFailsCreate) {
  const auto host = Serve("vitals", LocalVitalsYaml("vitals-host"));
  ASSERT_NE(host, nullptr);
  std::string yaml =
      RemoteVitalsYaml("url: " + Quoted(Url(*host)) + ", model: vitals-host");
  yaml.replace(yaml.find("[stable, deteriorating]"), 23,
               "[deteriorating, stable]");
  auto pipeline = testing::LoadPipelineText(dir_, yaml);
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(std::string(pipeline.status().message()),
              HasSubstr("the same labels in the same order are needed"));
}

TEST_F(RemoteServeTest, SlowServerTimesOut) {
  const auto host = Serve(
      "slow", HostedTestModelYaml("slow-host", "sleep_ms: 600", "missing"));
  ASSERT_NE(host, nullptr);
  const std::string params =
      "url: " + Quoted(Url(*host)) + ", model: slow-host, timeout_ms: 150";
  const Clock::time_point start = Clock::now();
  const auto records = Run(RemoteVitalsYaml(params), VitalsRecords(5));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      Clock::now() - start);
  ExpectVitalsFailed(records, "timed out after 150 ms");
  EXPECT_LT(elapsed.count(), 600);
}

TEST_F(RemoteServeTest, HostedModelFailureIsTheReason) {
  const auto host = Serve(
      "failing", HostedTestModelYaml("failing-host", "fail: always", "fail"));
  ASSERT_NE(host, nullptr);
  const std::string params =
      "url: " + Quoted(Url(*host)) + ", model: failing-host";
  const auto records = Run(RemoteVitalsYaml(params), VitalsRecords(5));
  ExpectVitalsFailed(records, "test_model refuses row 0");
}

TEST_F(RemoteServeTest, WrongInputNameIsA4xxFromTheServer) {
  const auto host = Serve("vitals", LocalVitalsYaml("vitals-host"));
  ASSERT_NE(host, nullptr);
  std::string params = "url: " + Quoted(Url(*host)) +
                       ", model: vitals-host, check_metadata: false";
  std::string yaml = RemoteVitalsYaml(params);
  yaml.replace(yaml.find("input: vitals"), 13, "input: vitalz");
  const auto records = Run(yaml, VitalsRecords(5));
  ExpectVitalsFailed(records, "HTTP 4");
}

TEST_F(RemoteServeTest, StoppedServerIsARefusedConnection) {
  const auto host = Serve("vitals", LocalVitalsYaml("vitals-host"));
  ASSERT_NE(host, nullptr);
  const std::string params =
      "url: " + Quoted(Url(*host)) + ", model: vitals-host, retries: 1";
  auto pipeline = testing::LoadPipelineText(dir_, RemoteVitalsYaml(params));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const std::vector<std::string> lines = VitalsRecords(5);
  for (const json& record : testing::RunLines(**pipeline, lines)) {
    if (record["missing"].empty()) {
      EXPECT_EQ(record["status"], "ok") << record;
    }
  }
  host->Stop();
  ExpectVitalsFailed(testing::RunLines(**pipeline, lines), "cannot connect");
}

}  // namespace
}  // namespace latefuse
