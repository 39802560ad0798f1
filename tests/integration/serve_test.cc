// `latefuse serve` as a client sees it: the built program on a free loopback
// port, the demo pipeline (configs/demo) with the real plugins, every route
// called with httplib's client. Answers are checked against `latefuse run` on
// the same records: identical probabilities.
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::ServerProcess;
using testing::TempDir;

constexpr char kModel[] = "icu-deterioration";
constexpr char kInfer[] = "/v2/models/icu-deterioration/infer";
constexpr char kRecords[] = "/v2/models/icu-deterioration/records";
constexpr char kLoad[] = "/v2/repository/models/icu-deterioration/load";

fs::path DemoDir() { return testing::SourceDir() / "configs/demo"; }

// configs/demo/pipeline.yaml with absolute plugin and model paths, so a copy
// of it anywhere loads; each (from, to) of `edits` is applied to the text.
std::string DemoPipeline(
    const std::vector<std::pair<std::string, std::string>>& edits = {}) {
  std::string text = testing::ReadFile(DemoDir() / "pipeline.yaml");
  auto replace = [&text](const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    if (at == std::string::npos) {
      ADD_FAILURE() << "the demo pipeline has no '" << from << "'";
      return;
    }
    text.replace(at, from.size(), to);
  };
  replace("plugin_dirs: [../../build/plugins]",
          "plugin_dirs: ['" + testing::PluginDir().string() + "']");
  for (const char* model : {"vitals", "labs", "imaging", "notes", "wearable"}) {
    const std::string file = (DemoDir() / "models" / model).string();
    replace(std::string("{model: models/") + model + ".json}",
            "{model: '" + file + ".json'}");
  }
  // imaging's 250 ms timeout can pass on a loaded machine, and then the
  // server's answers and `latefuse run`'s would differ by chance: the tests
  // here compare them, so they give it a minute.
  replace("timeout_ms: 250", "timeout_ms: 60000");
  for (const auto& [from, to] : edits) replace(from, to);
  return text;
}

// The first `n` demo records, as text lines.
std::vector<std::string> DemoLines(std::size_t n) {
  std::vector<std::string> lines =
      testing::ReadLines(DemoDir() / "data/patients.jsonl");
  lines.resize(std::min(n, lines.size()));
  return lines;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// `latefuse run` over `lines` with `pipeline`: its stdout.
std::string RunOutput(const TempDir& dir, const fs::path& pipeline,
                      const std::vector<std::string>& lines) {
  const fs::path input = dir.Write("run-input.jsonl", Joined(lines));
  testing::CommandResult run =
      testing::RunLatefuse("run " + testing::ShellQuote(pipeline.string()) +
                           " -q -i " + testing::ShellQuote(input.string()));
  EXPECT_EQ(run.code, 0) << run.err;
  return run.out;
}

// An OIP infer request holding `lines`' records: one tensor per modality the
// metadata lists, every row, with "present" marking the rows that have it.
json InferRequest(const json& metadata, const std::vector<std::string>& lines) {
  json request = {{"id", "req-1"}, {"inputs", json::array()}};
  const std::size_t rows = lines.size();
  std::vector<json> records;
  for (const std::string& line : lines) records.push_back(json::parse(line));
  for (const json& input : metadata["inputs"]) {
    const std::string name = input["name"];
    const bool dense = input["datatype"] == "FP32";
    const std::size_t width = dense ? input["shape"][1].get<std::size_t>() : 1;
    json data = json::array();
    json present = json::array();
    for (const json& record : records) {
      const json& value = record["modalities"].value(name, json());
      present.push_back(!value.is_null());
      for (std::size_t j = 0; j < width; ++j) {
        if (value.is_null()) {
          data.push_back(dense ? json(0.0) : json(""));
        } else {
          data.push_back(dense ? value[j] : value);
        }
      }
    }
    json shape = dense ? json::array({rows, width}) : json::array({rows});
    request["inputs"].push_back({{"name", name},
                                 {"datatype", input["datatype"]},
                                 {"shape", shape},
                                 {"data", data},
                                 {"parameters", {{"present", present}}}});
  }
  return request;
}

// Checks an infer response row by row against `latefuse run`'s records.
void ExpectSameAsRun(const json& response, const std::string& run_output) {
  std::vector<json> expected;
  std::istringstream lines(run_output);
  for (std::string line; std::getline(lines, line);)
    expected.push_back(json::parse(line));
  ASSERT_EQ(response["outputs"][0]["name"], "probabilities");
  ASSERT_EQ(response["outputs"][1]["name"], "label");
  const json& p = response["outputs"][0]["data"];
  const json& label = response["outputs"][1]["data"];
  const json& rows = response["parameters"]["rows"];
  ASSERT_EQ(rows.size(), expected.size());
  ASSERT_EQ(response["outputs"][0]["shape"], json::array({expected.size(), 2}));
  for (std::size_t r = 0; r < expected.size(); ++r) {
    const json& want = expected[r];
    SCOPED_TRACE("row " + std::to_string(r));
    EXPECT_EQ(rows[r]["status"], want["status"]);
    EXPECT_EQ(rows[r]["used"], want["used"]);
    EXPECT_EQ(rows[r]["missing"], want["missing"]);
    EXPECT_EQ(rows[r]["failed"], want["failed"]);
    if (want["status"] == "ok") {
      // Identical doubles: both print the shortest text that reads back.
      EXPECT_EQ(p[2 * r].get<double>(),
                want["probabilities"]["stable"].get<double>());
      EXPECT_EQ(p[2 * r + 1].get<double>(),
                want["probabilities"]["deteriorating"].get<double>());
      EXPECT_EQ(label[r], want["label"]);
    } else {
      EXPECT_EQ(p[2 * r].get<double>(), 0.0);
      EXPECT_EQ(label[r], "");
    }
  }
}

std::unique_ptr<ServerProcess> StartOrFail(
    const fs::path& pipeline, const std::vector<std::string>& args = {}) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(pipeline, args);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

// The value of one series line ("name{labels} value") of /metrics text; -1
// when absent.
double Series(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// One server on the demo pipeline for the tests that only read.
class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pipeline_ = dir_->Write("pipeline.yaml", DemoPipeline());
    server_ = StartOrFail(pipeline_, {"--max-body-bytes", "1000000"}).release();
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0);
    }
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  static httplib::Client Client() {
    return httplib::Client("127.0.0.1", server_->port());
  }
  static json Metadata() {
    httplib::Result res = Client().Get("/v2/models/icu-deterioration");
    EXPECT_TRUE(res);
    return res ? json::parse(res->body) : json();
  }

  static TempDir* dir_;
  static fs::path pipeline_;
  static ServerProcess* server_;
};

TempDir* ServeTest::dir_ = nullptr;
fs::path ServeTest::pipeline_;
ServerProcess* ServeTest::server_ = nullptr;

TEST_F(ServeTest, HealthAndServerMetadata) {
  httplib::Client client = Client();
  httplib::Result live = client.Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(json::parse(live->body), json({{"live", true}}));
  httplib::Result ready = client.Get("/v2/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body), json({{"ready", true}}));
  httplib::Result server = client.Get("/v2");
  ASSERT_TRUE(server);
  EXPECT_EQ(server->status, 200);
  const json meta = json::parse(server->body);
  EXPECT_EQ(meta["name"], "latefuse");
  EXPECT_EQ(meta["version"], "1.0.0");
  EXPECT_TRUE(meta["extensions"].is_array());
}

TEST_F(ServeTest, ModelMetadataHasAnInputPerModality) {
  const json meta = Metadata();
  EXPECT_EQ(meta["name"], kModel);
  EXPECT_EQ(meta["platform"], "latefuse");
  EXPECT_EQ(meta["versions"].size(), 1u);
  const json inputs = json::array(
      {{{"name", "vitals"}, {"datatype", "FP32"}, {"shape", {-1, 12}}},
       {{"name", "labs"}, {"datatype", "FP32"}, {"shape", {-1, 8}}},
       {{"name", "imaging"}, {"datatype", "FP32"}, {"shape", {-1, 16}}},
       {{"name", "notes"}, {"datatype", "BYTES"}, {"shape", {-1}}},
       {{"name", "wearable"}, {"datatype", "FP32"}, {"shape", {-1, 6}}}});
  EXPECT_EQ(meta["inputs"], inputs);
  const json outputs = json::array(
      {{{"name", "probabilities"}, {"datatype", "FP64"}, {"shape", {-1, 2}}},
       {{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  EXPECT_EQ(meta["outputs"], outputs);
  EXPECT_EQ(meta["parameters"]["classes"],
            json::array({"stable", "deteriorating"}));
  httplib::Result ready = Client().Get("/v2/models/icu-deterioration/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(json::parse(ready->body)["ready"], true);
}

TEST_F(ServeTest, UnknownModelIs404) {
  httplib::Client client = Client();
  for (const char* path : {"/v2/models/nope", "/v2/models/nope/ready"}) {
    httplib::Result res = client.Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_NE(json::parse(res->body)["error"].get<std::string>().find("nope"),
              std::string::npos);
  }
  for (const char* path : {"/v2/models/nope/infer", "/v2/models/nope/records",
                           "/v2/repository/models/nope/load"}) {
    httplib::Result res = client.Post(path, "{}", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << path;
  }
}

TEST_F(ServeTest, InferMatchesLatefuseRun) {
  const std::vector<std::string> lines = DemoLines(300);
  const json request = InferRequest(Metadata(), lines);
  httplib::Result res =
      Client().Post(kInfer, request.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json response = json::parse(res->body);
  EXPECT_EQ(response["model_name"], kModel);
  EXPECT_EQ(response["id"], "req-1");
  ExpectSameAsRun(response, RunOutput(*dir_, pipeline_, lines));
}

TEST_F(ServeTest, NestedDataAndChosenOutputs) {
  const std::vector<std::string> lines = DemoLines(3);
  json request = InferRequest(Metadata(), lines);
  // vitals as [[12 values] x 3]: the same rows, nested.
  json& vitals = request["inputs"][0];
  ASSERT_EQ(vitals["name"], "vitals");
  json nested = json::array();
  for (std::size_t r = 0; r < 3; ++r) {
    nested.push_back(
        json(std::vector<json>(vitals["data"].begin() + 12 * r,
                               vitals["data"].begin() + 12 * r + 12)));
  }
  vitals["data"] = nested;
  request["outputs"] = json::array({{{"name", "label"}}});
  httplib::Result res =
      Client().Post(kInfer, request.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json response = json::parse(res->body);
  ASSERT_EQ(response["outputs"].size(), 1u);
  EXPECT_EQ(response["outputs"][0]["name"], "label");
  std::vector<json> expected;
  std::istringstream out(RunOutput(*dir_, pipeline_, lines));
  for (std::string line; std::getline(out, line);)
    expected.push_back(json::parse(line));
  for (std::size_t r = 0; r < 3; ++r)
    EXPECT_EQ(response["outputs"][0]["data"][r], expected[r]["label"]);
}

TEST_F(ServeTest, AModalityNotSentIsMissing) {
  json request = {{"inputs",
                   {{{"name", "notes"},
                     {"datatype", "BYTES"},
                     {"shape", {2}},
                     {"data", {"pt alert, obs stable", "drowsy, mottled"}}}}}};
  httplib::Result res =
      Client().Post(kInfer, request.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json response = json::parse(res->body);
  EXPECT_FALSE(response.contains("id"));
  for (const json& row : response["parameters"]["rows"]) {
    EXPECT_EQ(row["status"], "ok");
    EXPECT_EQ(row["used"], json::array({"notes"}));
    EXPECT_EQ(row["missing"],
              json::array({"vitals", "labs", "imaging", "wearable"}));
  }
}

TEST_F(ServeTest, RecordsAreWhatLatefuseRunWrites) {
  const std::vector<std::string> lines = DemoLines(600);
  std::vector<std::string> with_bad = lines;
  with_bad.insert(with_bad.begin() + 10, "{not json");
  with_bad.insert(with_bad.begin() + 20,
                  R"({"id": "x", "modalities": {"vitals": [1, 2]}})");
  httplib::Result res =
      Client().Post(kRecords, Joined(with_bad), "application/x-ndjson");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->body, RunOutput(*dir_, pipeline_, with_bad));
  EXPECT_NE(res->body.find("line 11: "), std::string::npos);
}

TEST_F(ServeTest, MalformedRequestsAre400WithTheReason) {
  const json good = InferRequest(Metadata(), DemoLines(2));
  auto with = [&good](const std::function<void(json&)>& edit) {
    json request = good;
    edit(request);
    return request.dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {"{}", "\"inputs\""},
      {with([](json& r) { r["inputs"][0]["name"] = "xray"; }),
       "unknown input 'xray'"},
      {with([](json& r) { r["inputs"][0]["datatype"] = "INT64"; }),
       "expected FP32 or FP64"},
      {with([](json& r) { r["inputs"][3]["datatype"] = "FP32"; }),
       "expected BYTES"},
      {with([](json& r) {
         r["inputs"][0]["shape"] = {2, 11};
       }),
       "expected [rows, 12], got [2, 11]"},
      {with([](json& r) { r["inputs"][0]["shape"] = {24}; }),
       "expected [rows, 12]"},
      {with([](json& r) { r["inputs"][0]["data"].erase(0); }),
       "one value per element of shape [2, 12], got 23"},
      {with([](json& r) { r["inputs"][0]["data"][5] = "x"; }),
       "\"data\"[5]: expected a finite float32 number"},
      {with([](json& r) { r["inputs"][0]["data"][5] = 1e39; }),
       "finite float32"},
      {with([](json& r) { r["inputs"][3]["data"][1] = 7; }),
       "\"data\"[1]: expected a string"},
      {with([](json& r) { r["inputs"][0]["parameters"]["present"] = {true}; }),
       "2 booleans"},
      {with([](json& r) {
         r["inputs"][1]["shape"] = {1, 8};
         r["inputs"][1]["data"] = std::vector<double>(8, 0.0);
         r["inputs"][1]["parameters"]["present"] = {false};
       }),
       "every input must have the same rows"},
      {with([](json& r) { r["inputs"].push_back(r["inputs"][0]); }),
       "sent twice"},
      {with([](json& r) {
         r["outputs"] = {{{"name", "logits"}}};
       }),
       "unknown output 'logits'"},
      {with([](json& r) { r["id"] = 5; }), "\"id\""},
      {with([](json& r) { r["inputs"] = json::array(); }), "no input"},
      {with([](json& r) {
         r["inputs"][0]["shape"] = {std::int64_t{1} << 60, 12};
       }),
       "one value per element"},
  };
  httplib::Client client = Client();
  for (const auto& [body, reason] : cases) {
    httplib::Result res = client.Post(kInfer, body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body.substr(0, 200);
    const std::string error = json::parse(res->body).value("error", "");
    EXPECT_NE(error.find(reason), std::string::npos)
        << "error: " << error << "\nexpected to contain: " << reason;
  }
}

TEST_F(ServeTest, OversizeBodyIs413) {
  httplib::Client client = Client();
  httplib::Result res =
      client.Post(kInfer, std::string(1500000, ' '), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  // And the server goes on.
  httplib::Result live = client.Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
}

TEST(ServeMetrics, CountRequestsRowsAndModalities) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  std::unique_ptr<ServerProcess> server = StartOrFail(pipeline);
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  const json meta =
      json::parse(client.Get("/v2/models/icu-deterioration")->body);
  const std::vector<std::string> lines = DemoLines(100);
  const std::string request = InferRequest(meta, lines).dump();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(client.Post(kInfer, request, "application/json")->status, 200);
  }
  ASSERT_EQ(client.Post(kInfer, "{", "application/json")->status, 400);
  httplib::Result res = client.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  const std::string& text = res->body;
  EXPECT_EQ(
      Series(text, R"(latefuse_http_requests_total{route="infer",code="200"})"),
      3);
  EXPECT_EQ(
      Series(text, R"(latefuse_http_requests_total{route="infer",code="400"})"),
      1);
  EXPECT_EQ(
      Series(text,
             R"(latefuse_http_request_duration_seconds_count{route="infer"})"),
      4);
  EXPECT_EQ(
      Series(
          text,
          R"(latefuse_http_request_duration_seconds_bucket{route="infer",le="+Inf"})"),
      4);
  // The rows' outcomes and presence, as `latefuse run` summarises them.
  int ok = 0;
  int abstain = 0;
  std::map<std::string, int> present;
  for (const std::string& line : lines) {
    const json record = json::parse(line);
    for (const auto& [name, value] : record["modalities"].items())
      present[name] += !value.is_null();
  }
  std::istringstream out(RunOutput(dir, pipeline, lines));
  for (std::string line; std::getline(out, line);) {
    const json record = json::parse(line);
    ok += record["status"] == "ok";
    abstain += record["status"] == "abstain";
  }
  EXPECT_EQ(Series(text, R"(latefuse_rows_total{status="ok"})"), 3 * ok);
  EXPECT_EQ(Series(text, R"(latefuse_rows_total{status="abstain"})"),
            3 * abstain);
  for (const char* m : {"vitals", "labs", "imaging", "notes", "wearable"}) {
    const std::string label = std::string("{modality=\"") + m + "\"}";
    EXPECT_EQ(Series(text, "latefuse_modality_rows_total" + label), 300) << m;
    EXPECT_EQ(Series(text, "latefuse_modality_present_total" + label),
              3 * present[m])
        << m;
    EXPECT_EQ(Series(text, "latefuse_modality_used_total" + label),
              3 * present[m])
        << m;
    EXPECT_EQ(Series(text, "latefuse_modality_errors_total" + label), 0) << m;
    EXPECT_EQ(Series(text, "latefuse_modality_timeouts_total" + label), 0) << m;
    // One model call per request with rows present.
    EXPECT_EQ(Series(text, "latefuse_model_duration_seconds_count" + label),
              present[m] > 0 ? 3 : 0)
        << m;
  }
  EXPECT_EQ(Series(text, R"(latefuse_reloads_total{result="ok"})"), 1);
  EXPECT_EQ(Series(text, "latefuse_pipeline_generation"), 1);
  // Every line is a comment or "name{labels} value".
  std::istringstream all(text);
  const std::regex sample(R"(^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$)");
  for (std::string line; std::getline(all, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
  }
}

TEST(ServeOperations, BearerTokenGuardsAllButHealth) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  const fs::path token = dir.Write("token", "s3cret\n");
  std::unique_ptr<ServerProcess> server =
      StartOrFail(pipeline, {"--token-file", token.string()});
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  EXPECT_EQ(client.Get("/v2/health/live")->status, 200);
  EXPECT_EQ(client.Get("/v2/health/ready")->status, 200);
  for (const char* path : {"/v2", "/metrics", "/v2/models/icu-deterioration",
                           "/v2/models/icu-deterioration/ready"}) {
    httplib::Result res = client.Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer");
  }
  EXPECT_EQ(client.Post(kInfer, "{}", "application/json")->status, 401);
  EXPECT_EQ(client.Post(kLoad, "{}", "application/json")->status, 401);
  client.set_bearer_token_auth("wrong");
  EXPECT_EQ(client.Get("/v2/models/icu-deterioration")->status, 401);
  client.set_bearer_token_auth("s3cret");
  EXPECT_EQ(client.Get("/v2/models/icu-deterioration")->status, 200);
  EXPECT_EQ(client.Get("/metrics")->status, 200);
  httplib::Result infer = client.Post(
      kInfer,
      InferRequest(
          json::parse(client.Get("/v2/models/icu-deterioration")->body),
          DemoLines(2))
          .dump(),
      "application/json");
  EXPECT_EQ(infer->status, 200);
}

TEST(ServeOperations, AccessLogHasALinePerRequest) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  const fs::path log = dir.path() / "access.log";
  std::unique_ptr<ServerProcess> server =
      StartOrFail(pipeline, {"--access-log", log.string()});
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  EXPECT_EQ(client.Get("/v2/models/nope")->status, 404);
  EXPECT_EQ(client.Post(kInfer, "{", "application/json")->status, 400);
  EXPECT_EQ(server->Stop(), 0);
  const std::vector<std::string> lines = testing::ReadLines(log);
  // Beside the readiness polls of ServerProcess::Start, a line for each.
  const std::regex line(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 (GET|POST) (\S+) (\d{3}) (\d+) [0-9.]+ms$)");
  std::map<std::string, std::string> seen;  // path -> "METHOD code bytes"
  for (const std::string& text : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(text, m, line)) << text;
    seen[m[2]] =
        std::string(m[1]) + " " + std::string(m[3]) + " " + std::string(m[4]);
  }
  EXPECT_EQ(seen["/v2/models/nope"], "GET 404 73");
  EXPECT_EQ(seen[kInfer], "POST 400 143");
}

// A one-modality pipeline whose model sleeps: requests that stay in flight.
// With `calls_file`, each model call first appends a line to it.
std::string SlowPipeline(int sleep_ms, const std::string& calls_file = "") {
  std::string params = "{sleep_ms: " + std::to_string(sleep_ms);
  if (!calls_file.empty()) params += ", calls_file: '" + calls_file + "'";
  params += "}";
  return "apiVersion: latefuse/v1\nname: slow\nclasses: [a, b]\n"
         "plugin_dirs: ['" +
         testing::TestPluginDir().string() + "', '" +
         testing::PluginDir().string() +
         "']\nmodalities:\n  - name: x\n    input: {kind: dense, size: 1}\n"
         "    model: {plugin: test_model, params: " +
         params + "}\ncombiner: {plugin: mean}\n";
}

constexpr char kSlowRequest[] =
    R"({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [0.5]}]})";

TEST(ServeOperations, SigtermDrainsRequestsInFlightAndExitsZero) {
  TempDir dir;
  const fs::path calls = dir.path() / "calls";
  const fs::path pipeline =
      dir.Write("slow.yaml", SlowPipeline(600, calls.string()));
  std::unique_ptr<ServerProcess> server = StartOrFail(pipeline);
  ASSERT_NE(server, nullptr);
  std::atomic<int> status{0};
  std::thread in_flight([&] {
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(std::chrono::seconds(10));
    httplib::Result res =
        client.Post("/v2/models/slow/infer", kSlowRequest, "application/json");
    status = res ? res->status : -1;
  });
  // SIGTERM once the model is in its call.
  for (int i = 0; i < 1000 && !fs::exists(calls); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(fs::exists(calls));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server->Stop(), 0) << server->Stderr();
  in_flight.join();
  EXPECT_EQ(status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  EXPECT_NE(server->Stderr().find("draining"), std::string::npos);
  // Nobody listens any more.
  httplib::Client after("127.0.0.1", server->port());
  EXPECT_FALSE(after.Get("/v2/health/live"));
}

TEST(ServeOperations, PastTheDeadlineIs504) {
  TempDir dir;
  const fs::path pipeline = dir.Write("slow.yaml", SlowPipeline(400));
  std::unique_ptr<ServerProcess> server =
      StartOrFail(pipeline, {"--deadline-ms", "150"});
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  httplib::Result res =
      client.Post("/v2/models/slow/infer", kSlowRequest, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504);
  EXPECT_NE(res->body.find("deadline of 150 ms"), std::string::npos);
}

// Runs `lines` through the server's infer route.
json InferLines(httplib::Client& client,
                const std::vector<std::string>& lines) {
  const json meta =
      json::parse(client.Get("/v2/models/icu-deterioration")->body);
  httplib::Result res =
      client.Post(kInfer, InferRequest(meta, lines).dump(), "application/json");
  EXPECT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  return res ? json::parse(res->body) : json();
}

std::string Version(httplib::Client& client) {
  return json::parse(
      client.Get("/v2/models/icu-deterioration")->body)["versions"][0];
}

// Rewrites the served pipeline file in place, as an operator would.
void Rewrite(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::trunc) << text;
}

TEST(ServeReload, RepositoryLoadSwapsInAChangedPipelineAndRefusesABrokenOne) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  const fs::path other = dir.Write(
      "other.yaml",
      DemoPipeline({{"weights: {vitals: 1.0,", "weights: {vitals: 4.0,"}}));
  std::unique_ptr<ServerProcess> server = StartOrFail(pipeline);
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  const std::vector<std::string> lines = DemoLines(50);
  ExpectSameAsRun(InferLines(client, lines), RunOutput(dir, pipeline, lines));
  EXPECT_EQ(Version(client), "1");

  Rewrite(pipeline, testing::ReadFile(other));
  httplib::Result load = client.Post(kLoad, "{}", "application/json");
  ASSERT_TRUE(load);
  EXPECT_EQ(load->status, 200) << load->body;
  EXPECT_EQ(Version(client), "2");
  const std::string changed = RunOutput(dir, other, lines);
  ASSERT_NE(changed,
            RunOutput(dir, dir.Write("first.yaml", DemoPipeline()), lines));
  ExpectSameAsRun(InferLines(client, lines), changed);

  Rewrite(pipeline,
          DemoPipeline({{"plugin: tfidf_linear", "plugin: no_such_model"}}));
  load = client.Post(kLoad, "{}", "application/json");
  ASSERT_TRUE(load);
  EXPECT_EQ(load->status, 400);
  EXPECT_NE(
      json::parse(load->body)["error"].get<std::string>().find("no_such_model"),
      std::string::npos)
      << load->body;
  EXPECT_EQ(Version(client), "2");
  ExpectSameAsRun(InferLines(client, lines), changed);
  const std::string metrics = client.Get("/metrics")->body;
  EXPECT_EQ(Series(metrics, R"(latefuse_reloads_total{result="ok"})"), 2);
  EXPECT_EQ(Series(metrics, R"(latefuse_reloads_total{result="error"})"), 1);
  EXPECT_NE(server->Stderr().find("refused"), std::string::npos);
}

TEST(ServeReload, SighupSwapsInAChangedPipelineAndRefusesABrokenOne) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  const fs::path other = dir.Write(
      "other.yaml",
      DemoPipeline({{"weights: {vitals: 1.0,", "weights: {vitals: 4.0,"}}));
  std::unique_ptr<ServerProcess> server = StartOrFail(pipeline);
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  const std::vector<std::string> lines = DemoLines(50);
  auto reloads = [&](const std::string& result) {
    return Series(client.Get("/metrics")->body,
                  "latefuse_reloads_total{result=\"" + result + "\"}");
  };
  auto await = [&](const std::string& result, double count) {
    for (int i = 0; i < 500 && reloads(result) < count; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(reloads(result), count);
  };

  Rewrite(pipeline, testing::ReadFile(other));
  server->Signal(SIGHUP);
  await("ok", 2);
  EXPECT_EQ(Version(client), "2");
  const std::string changed = RunOutput(dir, other, lines);
  ExpectSameAsRun(InferLines(client, lines), changed);

  Rewrite(pipeline, "apiVersion: latefuse/v1\nname: [broken\n");
  server->Signal(SIGHUP);
  await("error", 1);
  EXPECT_EQ(Version(client), "2");
  ExpectSameAsRun(InferLines(client, lines), changed);
  EXPECT_EQ(server->Stop(), 0);
}

// Requests in flight while the pipeline is swapped finish on the pipeline
// they started with, and none fails.
TEST(ServeReload, NoRequestFailsWhileReloading) {
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  std::unique_ptr<ServerProcess> server = StartOrFail(pipeline);
  ASSERT_NE(server, nullptr);
  httplib::Client meta_client("127.0.0.1", server->port());
  const std::string request =
      InferRequest(
          json::parse(meta_client.Get("/v2/models/icu-deterioration")->body),
          DemoLines(20))
          .dump();
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      httplib::Client client("127.0.0.1", server->port());
      while (!done) {
        httplib::Result res = client.Post(kInfer, request, "application/json");
        if (!res || res->status != 200) ++failures;
        ++answered;
      }
    });
  }
  for (int i = 0; i < 10; ++i) {
    server->Signal(SIGHUP);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  done = true;
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(answered, 40);
  EXPECT_EQ(server->Stop(), 0);
}

// In the sanitizer build (tools/sanitize.sh), AddressSanitizer holds freed
// memory in a quarantine (256 MB) before reusing it, so a server's RSS grows
// with every request whether or not it leaks. Servers started after this
// reuse freed memory at once, so RSS measures them again; leaks are still
// LeakSanitizer's to find when they exit.
void WithoutAsanQuarantine() {
#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
  const char* options = std::getenv("ASAN_OPTIONS");
  const std::string merged =
      std::string(options == nullptr ? "" : options) +
      ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
  ::setenv("ASAN_OPTIONS", merged.c_str(), /*overwrite=*/1);
#endif
#endif
}

// 10,000 malformed requests from a seeded generator: every one gets a 4xx,
// valid requests between them keep their answers, and the server's memory
// stays where it was.
TEST(ServeRobustness, TenThousandMalformedRequestsGet4xxAndMemoryStaysFlat) {
  WithoutAsanQuarantine();
  TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", DemoPipeline());
  std::unique_ptr<ServerProcess> server =
      StartOrFail(pipeline, {"--max-body-bytes", "65536", "--threads", "4"});
  ASSERT_NE(server, nullptr);
  httplib::Client first("127.0.0.1", server->port());
  const json meta =
      json::parse(first.Get("/v2/models/icu-deterioration")->body);
  const json valid = InferRequest(meta, DemoLines(4));
  const std::string valid_body = valid.dump();
  const std::string expected =
      first.Post(kInfer, valid_body, "application/json")->body;
  // Warm up every server thread's buffers before measuring.
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(first.Post(kInfer, valid_body, "application/json")->status, 200);
  const long rss_before = server->RssKb();
  ASSERT_GT(rss_before, 0);

  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::atomic<int> not_4xx{0};
  std::atomic<int> valid_wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      httplib::Client client("127.0.0.1", server->port());
      auto pick = [&rng](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
      };
      for (int i = 0; i < kPerThread; ++i) {
        std::string body;
        bool raw = true;  // else the edited request `r` is sent
        std::string path = kInfer;
        json r = valid;
        json& input = r["inputs"][pick(r["inputs"].size())];
        const json original_shape = input["shape"];
        switch (pick(12)) {
          case 0:  // random bytes
            body.resize(pick(400));
            for (char& c : body) c = static_cast<char>(pick(256));
            break;
          case 1:  // truncated JSON
            body = valid_body.substr(0, pick(valid_body.size() - 1));
            break;
          case 2:  // wrong shape
            raw = false;
            input["shape"] = json::array();
            for (std::size_t d = pick(4); d > 0; --d)
              input["shape"].push_back(static_cast<std::int64_t>(pick(30)) - 3);
            if (input["shape"] == original_shape ||
                input["shape"] == json::array({4, 1}))
              input["shape"] = {1};
            break;
          case 3:  // wrong datatype
            raw = false;
            input["datatype"] = std::vector<std::string>{
                "INT32", "FP16", "BOOL", "UINT8", "", "fp32"}[pick(6)];
            break;
          case 4:  // a value of the wrong kind
            raw = false;
            input["data"][pick(input["data"].size())] =
                std::vector<json>{json(nullptr), json::object(), json(true),
                                  json::array({1, 2, 3}), json(1e300)}[pick(5)];
            break;
          case 5:  // too few values
            raw = false;
            input["data"].erase(input["data"].size() - 1);
            break;
          case 6:  // unknown input or output
            raw = false;
            if (pick(2) == 0) {
              input["name"] = "m" + std::to_string(pick(1000));
            } else {
              r["outputs"] = {{{"name", "o" + std::to_string(pick(1000))}}};
            }
            break;
          case 7:  // oversized
            body = valid_body;
            body.resize(65537 + pick(10000), ' ');
            break;
          case 8:  // bad presence flags
            raw = false;
            input["parameters"]["present"] =
                pick(2) == 0 ? json::array({true}) : json("yes");
            break;
          case 9:  // deep nesting
            body = std::string(1 + pick(5000), '[') + "1";
            break;
          case 10:  // a huge claimed shape
            raw = false;
            input["shape"] =
                input["datatype"] == "BYTES"
                    ? json::array({std::int64_t{1} << 62})
                    : json::array({std::int64_t{1} << 61, input["shape"][1]});
            break;
          case 11:  // unknown model
            path = "/v2/models/m" + std::to_string(pick(100)) + "/infer";
            body = valid_body;
            break;
        }
        if (!raw) body = r.dump();
        httplib::Result res = client.Post(path, body, "application/json");
        if (!res || res->status < 400 || res->status >= 500) {
          ++not_4xx;
          if (res)
            ADD_FAILURE() << res->status << " for " << body.substr(0, 300);
        }
        if (i % 250 == 0) {
          httplib::Result ok =
              client.Post(kInfer, valid_body, "application/json");
          if (!ok || ok->status != 200 || ok->body != expected) ++valid_wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const long rss_after = server->RssKb();
  EXPECT_EQ(not_4xx, 0);
  EXPECT_EQ(valid_wrong, 0);
  std::cout << "[ measured ] RSS before " << rss_before << " kB, after "
            << rss_after << " kB (" << kThreads * kPerThread
            << " malformed requests)\n";
  EXPECT_LT(rss_after - rss_before, 20 * 1024);
  httplib::Result still = first.Post(kInfer, valid_body, "application/json");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->body, expected);
  const std::string metrics = first.Get("/metrics")->body;
  EXPECT_GE(Series(metrics,
                   R"(latefuse_http_requests_total{route="infer",code="400"})"),
            8000);
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace latefuse
