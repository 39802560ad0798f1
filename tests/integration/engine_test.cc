// The engine's behaviour (DESIGN.md, "Engine" and "Records in and out"), run
// through the real host with the configurable `test_model` plugin
// (tests/plugins/test_model.cc) and the real `mean` combiner.
//
// test_model's binary output for a row whose first feature is x is
// {P(neg), P(pos)} = {1 / (1 + e^x), e^x / (1 + e^x)}; Binary(x) below computes
// it with the same float64 operations, so results compare exactly.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Modality {
  std::string name;
  std::string params = "{}";  // test_model's params, a YAML flow mapping
  int width = 1;
  std::string on_error = "missing";
  int timeout_ms = 0;  // 0 = none
};

struct Policy {
  int min_modalities = 1;
  std::string on_insufficient = "abstain";
};

std::string Quoted(const std::string& s) { return json(s).dump(); }

std::string PipelineYaml(const std::vector<Modality>& modalities,
                         const Policy& policy = {}) {
  std::string yaml =
      "apiVersion: latefuse/v1\nname: engine-test\ntask: classification\n"
      "classes: [neg, pos]\n";
  yaml += "plugin_dirs: [" + Quoted(testing::TestPluginDir().string()) + ", " +
          Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n";
  for (const Modality& m : modalities) {
    yaml += "  - name: " + m.name + "\n";
    yaml += "    input: {kind: dense, size: " + std::to_string(m.width) + "}\n";
    yaml += "    model: {plugin: test_model, params: " + m.params + "}\n";
    yaml += "    on_error: " + m.on_error + "\n";
    if (m.timeout_ms > 0) {
      yaml += "    timeout_ms: " + std::to_string(m.timeout_ms) + "\n";
    }
  }
  yaml += "combiner: {plugin: mean}\n";
  yaml += "policy: {min_modalities: " + std::to_string(policy.min_modalities) +
          ", on_insufficient: " + policy.on_insufficient + "}\n";
  return yaml;
}

class EngineTest : public ::testing::Test {
 protected:
  // Loads the pipeline; the test stops if it does not load.
  void Load(const std::vector<Modality>& modalities,
            const Policy& policy = {}) {
    const std::string yaml = PipelineYaml(modalities, policy);
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
        testing::LoadPipelineText(dir_, yaml);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status() << "\n" << yaml;
    pipeline_ = *std::move(pipeline);
  }

  std::vector<json> Run(const std::vector<std::string>& lines,
                        RunOptions options = {}) {
    return testing::RunLines(*pipeline_, lines, options);
  }

  // Runs one row through two models that each sleep 200 ms, with
  // `inline_rows`; checks the record and returns how long the run took.
  std::chrono::milliseconds RunTwoSleepingModels(std::size_t inline_rows);

  testing::TempDir dir_;
  std::unique_ptr<Pipeline> pipeline_;
};

// test_model's probabilities for first feature x.
json Binary(double x) {
  const double total = 1.0 + std::exp(x);
  return {{"neg", 1.0 / total}, {"pos", std::exp(x) / total}};
}

// The mean of two binary distributions.
json Mean(const json& p, const json& q) {
  return {{"neg", (p["neg"].get<double>() + q["neg"].get<double>()) / 2},
          {"pos", (p["pos"].get<double>() + q["pos"].get<double>()) / 2}};
}

void ExpectProbabilities(const json& record, const json& expected) {
  ASSERT_TRUE(record["probabilities"].is_object()) << record;
  for (const char* c : {"neg", "pos"}) {
    EXPECT_NEAR(record["probabilities"][c].get<double>(),
                expected[c].get<double>(), 1e-15)
        << "class " << c << " of " << record;
  }
}

TEST_F(EngineTest, MissingModalityIsSkipped) {
  ASSERT_NO_FATAL_FAILURE(Load({{"a"}, {"b"}}));
  const std::vector<json> out = Run({
      R"({"id": "both", "modalities": {"a": [1.0], "b": [-2.0]}})",
      R"({"id": "absent", "modalities": {"b": [-2.0]}})",
      R"({"id": "null", "modalities": {"a": null, "b": [-2.0]}})",
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["status"], "ok");
  ExpectProbabilities(out[0], Mean(Binary(1.0), Binary(-2.0)));
  EXPECT_EQ(out[0]["missing"], json::array());

  for (const json& record : {out[1], out[2]}) {
    ASSERT_EQ(record["status"], "ok") << record;
    // b's own answer, not (b + a zero vector) / 2 nor any padding.
    ExpectProbabilities(record, Binary(-2.0));
    EXPECT_EQ(record["used"], json::array({"b"})) << record;
    EXPECT_EQ(record["missing"], json::array({"a"})) << record;
    EXPECT_EQ(record["failed"], json::object()) << record;
    EXPECT_EQ(record["label"], "neg") << record;
  }
}

TEST_F(EngineTest, ModelErrorMakesModalityMissingUnderOnErrorMissing) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{fail: negative}"}, {.name = "b"}}));
  RunOptions options;
  options.batch_size = 2;
  const std::vector<json> out = Run(
      {// Batch 1: a's one call holds a negative row, so both rows lose a.
       R"({"id": "r1", "modalities": {"a": [1.0], "b": [0.5]}})",
       R"({"id": "r2", "modalities": {"a": [-1.0], "b": [0.5]}})",
       // Batch 2: a answers; r4 simply has no a.
       R"({"id": "r3", "modalities": {"a": [2.0], "b": [0.5]}})",
       R"({"id": "r4", "modalities": {"b": [0.5]}})",
       // Batch 3: a fails on the only row holding it, which is left with
       // nothing and abstains; r6 does not hold a and is unaffected.
       R"({"id": "r5", "modalities": {"a": [-3.0]}})",
       R"({"id": "r6", "modalities": {"b": [0.5]}})"},
      options);
  ASSERT_EQ(out.size(), 6u);

  for (const json& record : {out[0], out[1]}) {
    ASSERT_EQ(record["status"], "ok") << record;
    ExpectProbabilities(record, Binary(0.5));
    EXPECT_EQ(record["used"], json::array({"b"})) << record;
    ASSERT_TRUE(record["failed"].contains("a")) << record;
    EXPECT_EQ(record["failed"].size(), 1u) << record;
    EXPECT_THAT(record["failed"]["a"].get<std::string>(),
                HasSubstr("modality 'a'"));
    EXPECT_THAT(record["failed"]["a"].get<std::string>(),
                HasSubstr("test_model refuses row 1"));
  }

  EXPECT_EQ(out[2]["status"], "ok");
  ExpectProbabilities(out[2], Mean(Binary(2.0), Binary(0.5)));
  EXPECT_EQ(out[2]["used"], json::array({"a", "b"}));
  EXPECT_EQ(out[2]["failed"], json::object());
  EXPECT_EQ(out[3]["status"], "ok");
  EXPECT_EQ(out[3]["missing"], json::array({"a"}));
  EXPECT_EQ(out[3]["failed"], json::object());

  EXPECT_EQ(out[4]["status"], "abstain") << out[4];
  EXPECT_EQ(out[4]["used"], json::array());
  EXPECT_TRUE(out[4]["failed"].contains("a")) << out[4];
  EXPECT_EQ(out[5]["status"], "ok") << out[5];
  ExpectProbabilities(out[5], Binary(0.5));
  EXPECT_EQ(out[5]["failed"], json::object());
}

TEST_F(EngineTest, ModelErrorFailsRowsUnderOnErrorFail) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{fail: always}", .on_error = "fail"},
            {.name = "b"}}));
  const std::vector<json> out = Run({
      R"({"id": "with-a", "modalities": {"a": [1.0], "b": [0.5]}})",
      R"({"id": "without-a", "modalities": {"b": [0.5]}})",
  });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["status"], "error") << out[0];
  EXPECT_TRUE(out[0]["probabilities"].is_null());
  EXPECT_TRUE(out[0]["label"].is_null());
  const std::string error = out[0].value("error", "");
  EXPECT_THAT(error, HasSubstr("pipeline 'engine-test'"));
  EXPECT_THAT(error, HasSubstr("modality 'a'"));
  EXPECT_THAT(error, HasSubstr("test_model"));
  EXPECT_THAT(error, HasSubstr("test_model refuses row 0"));
  EXPECT_TRUE(out[0]["failed"].contains("a")) << out[0];

  // A row without the failing modality is not touched by its failure.
  EXPECT_EQ(out[1]["status"], "ok") << out[1];
  ExpectProbabilities(out[1], Binary(0.5));
  EXPECT_FALSE(out[1].contains("error"));
}

TEST_F(EngineTest, ModelExceptionIsCaughtByTheSdk) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{throw: true}"}, {.name = "b"}}));
  const std::vector<json> out = Run({
      R"({"id": "r1", "modalities": {"a": [1.0], "b": [0.5]}})",
      R"({"id": "r2", "modalities": {"a": [1.0]}})",
  });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["status"], "ok") << out[0];
  ExpectProbabilities(out[0], Binary(0.5));
  EXPECT_EQ(out[0]["used"], json::array({"b"}));
  const std::string failure = out[0]["failed"].value("a", "");
  EXPECT_THAT(failure, HasSubstr("unhandled exception"));
  EXPECT_THAT(failure, HasSubstr("test_model was told to throw"));
  EXPECT_EQ(out[1]["status"], "abstain") << out[1];
  EXPECT_TRUE(out[1]["failed"].contains("a")) << out[1];
}

TEST_F(EngineTest, ModelReturningNaNIsTreatedAsFailure) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{nan: true}"}, {.name = "b"}}));
  const std::vector<json> out = Run({
      R"({"id": "r1", "modalities": {"a": [1.0], "b": [0.5]}})",
  });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["status"], "ok") << out[0];
  // b alone: the NaN did not reach the combiner (nor the output, which would
  // not have parsed as JSON).
  ExpectProbabilities(out[0], Binary(0.5));
  EXPECT_EQ(out[0]["used"], json::array({"b"}));
  const std::string failure = out[0]["failed"].value("a", "");
  EXPECT_THAT(failure, HasSubstr("modality 'a'"));
  EXPECT_THAT(failure, HasSubstr("nan"));
}

// A batch of one row is small enough for the engine to run models inline
// (EngineOptions::inline_rows), but a model with a timeout still runs on its
// worker, and the engine stops waiting for it at the deadline.
TEST_F(EngineTest, ModelTimeoutMakesModalityMissing) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{sleep_ms: 300}", .timeout_ms = 50},
            {.name = "b"}}));
  const std::vector<json> out = Run({
      R"({"id": "r1", "modalities": {"a": [1.0], "b": [0.5]}})",
  });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["status"], "ok") << out[0];
  ExpectProbabilities(out[0], Binary(0.5));
  EXPECT_EQ(out[0]["used"], json::array({"b"}));
  const std::string failure = out[0]["failed"].value("a", "");
  EXPECT_THAT(failure, HasSubstr("modality 'a'"));
  EXPECT_THAT(failure, HasSubstr("timed out"));
}

// A call that is still queued behind an overrunning one when its own deadline
// passes is withdrawn rather than made later for nobody: a model that keeps
// overrunning does not pile up a backlog of calls (and copies of their inputs)
// that the run would then wait for at the end.
TEST_F(EngineTest, TimedOutCallsDoNotPileUp) {
  const fs::path calls = dir_.path() / "calls.txt";
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a",
             .params = "{sleep_ms: 300, calls_file: " + Quoted(calls) + "}",
             .timeout_ms = 50},
            {.name = "b"}}));
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) {
    lines.push_back(R"({"id": "r", "modalities": {"a": [1.0], "b": [0.5]}})");
  }
  RunOptions options;
  options.batch_size = 1;
  const std::vector<json> out = Run(lines, options);
  ASSERT_EQ(out.size(), lines.size());
  for (const json& record : out) {
    EXPECT_EQ(record["status"], "ok") << record;
    EXPECT_EQ(record["used"], json::array({"b"})) << record;
    EXPECT_THAT(record["failed"].value("a", ""), HasSubstr("timed out"));
  }
  // Each batch waits 50 ms for a, each call takes 300 ms: a few calls fit in
  // the run; one per batch would mean the timed-out ones were all made anyway.
  const std::size_t made = testing::ReadLines(calls).size();
  EXPECT_GE(made, 1u);
  EXPECT_LT(made, lines.size());
  // When the run returns, no stale call is left queued for a detached worker
  // to make later: the count stays put (past the length of one call).
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(testing::ReadLines(calls).size(), made);
}

TEST_F(EngineTest, AbstainWhenFewerThanMinModalities) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{fail: negative}"}, {.name = "b"}},
           {.min_modalities = 2}));
  const std::vector<json> out = Run({
      R"({"id": "both", "modalities": {"a": [1.0], "b": [0.5]}})",
      R"({"id": "only-a", "modalities": {"a": [1.0], "b": null}})",
      R"({"id": "none", "modalities": {}})",
  });
  const std::vector<json> failing = Run({
      R"({"id": "a-fails", "modalities": {"a": [-1.0], "b": [0.5]}})",
  });
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(failing.size(), 1u);
  EXPECT_EQ(out[0]["status"], "ok") << out[0];
  ExpectProbabilities(out[0], Mean(Binary(1.0), Binary(0.5)));
  for (const json& record : {out[1], out[2], failing[0]}) {
    EXPECT_EQ(record["status"], "abstain") << record;
    EXPECT_TRUE(record["probabilities"].is_null()) << record;
    EXPECT_TRUE(record["label"].is_null()) << record;
    EXPECT_FALSE(record.contains("error")) << record;
  }
  EXPECT_EQ(out[1]["used"], json::array({"a"}));
  EXPECT_EQ(out[1]["missing"], json::array({"b"}));
  EXPECT_EQ(out[2]["missing"], json::array({"a", "b"}));
  // A failed model counts as missing towards min_modalities.
  EXPECT_EQ(failing[0]["used"], json::array({"b"}));
  EXPECT_TRUE(failing[0]["failed"].contains("a")) << failing[0];
}

TEST_F(EngineTest, RowWithNoModalityAbstainsUnderMinModalitiesOne) {
  ASSERT_NO_FATAL_FAILURE(Load({{.name = "a"}, {.name = "b"}}));
  const std::vector<json> out = Run({
      R"({"id": "empty", "modalities": {}})",
      R"({"id": "nulls", "modalities": {"a": null, "b": null}})",
      R"({"id": "some", "modalities": {"a": [0.0]}})",
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["status"], "abstain") << out[0];
  EXPECT_EQ(out[1]["status"], "abstain") << out[1];
  EXPECT_EQ(out[1]["missing"], json::array({"a", "b"}));
  EXPECT_EQ(out[2]["status"], "ok") << out[2];
  ExpectProbabilities(out[2], Binary(0.0));
}

TEST_F(EngineTest, ErrorWhenOnInsufficientIsError) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a"}, {.name = "b"}},
           {.min_modalities = 2, .on_insufficient = "error"}));
  const std::vector<json> out = Run({
      R"({"id": "only-a", "modalities": {"a": [1.0]}})",
      R"({"id": "both", "modalities": {"a": [1.0], "b": [0.5]}})",
      R"({"id": "none", "modalities": {}})",
  });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]["status"], "error") << out[0];
  EXPECT_TRUE(out[0]["probabilities"].is_null());
  EXPECT_THAT(out[0].value("error", ""), HasSubstr("min_modalities 2"));
  EXPECT_THAT(out[0].value("error", ""), HasSubstr("1 usable modality"));
  EXPECT_EQ(out[0]["used"], json::array({"a"}));
  EXPECT_EQ(out[1]["status"], "ok") << out[1];
  ExpectProbabilities(out[1], Mean(Binary(1.0), Binary(0.5)));
  EXPECT_EQ(out[2]["status"], "error") << out[2];
  EXPECT_THAT(out[2].value("error", ""), HasSubstr("0 usable modalities"));
}

TEST_F(EngineTest, MalformedInputGivesOneRecordPerLineInOrder) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{width: 2}", .width = 2}, {.name = "b"}}));
  const std::vector<std::string> lines = {
      R"({"id": "g1", "modalities": {"a": [1.0, 7.0], "b": [0.5]}})",
      R"({"id": "bad-json", "modalities": {"a": [1.0, 2.0])",
      R"({"id": "width", "modalities": {"a": [1.0, 2.0, 3.0], "b": [0.5]}})",
      R"({"id": "g2", "modalities": {"b": [-1.0]}})",
      R"({"id": "type", "modalities": {"a": "not numbers"}})",
      R"({"id": "inf", "modalities": {"a": [1e400, 1.0]}})",
      R"({"id": "f32", "modalities": {"a": [2.0, 1e39], "b": [0.5]}})",
      R"({"id": "g3", "modalities": {"a": [-0.5, 0.0]}})",
      R"({"id": "unknown", "modalities": {"zzz": [1.0]}})",
      R"({"modalities": {"b": [1.0]}})",
      "",
      R"({"id": "g4", "modalities": {"a": [0.25, 0.0], "b": [-0.75]}})",
      R"({"id": "g5", "modalities": {"b": [3.0]}, "label": "pos"})",
  };
  RunOptions options;
  options.batch_size = 3;
  const std::vector<json> out = Run(lines, options);
  ASSERT_EQ(out.size(), lines.size());

  const std::vector<json> ids = {
      "g1", "bad-json", "width", "g2",    "type", "inf", "f32",
      "g3", "unknown",  nullptr, nullptr, "g4",   "g5"};
  const std::vector<bool> good = {true,  false, false, true,  false,
                                  false, false, true,  false, false,
                                  false, true,  true};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1) + ": " + lines[i]);
    EXPECT_EQ(out[i]["id"], ids[i]) << out[i];
    if (good[i]) {
      EXPECT_EQ(out[i]["status"], "ok") << out[i];
      EXPECT_FALSE(out[i].contains("error")) << out[i];
    } else {
      EXPECT_EQ(out[i]["status"], "error") << out[i];
      EXPECT_THAT(out[i].value("error", ""),
                  StartsWith("line " + std::to_string(i + 1) + ": "));
      EXPECT_TRUE(out[i]["probabilities"].is_null()) << out[i];
      EXPECT_EQ(out[i]["used"], json::array()) << out[i];
      EXPECT_EQ(out[i]["failed"], json::object()) << out[i];
    }
  }
  EXPECT_THAT(out[2].value("error", ""), HasSubstr("modalities.a"));
  EXPECT_THAT(out[4].value("error", ""), HasSubstr("modalities.a"));
  EXPECT_THAT(out[5].value("error", ""), HasSubstr("finite"));
  EXPECT_THAT(out[6].value("error", ""), HasSubstr("modalities.a[1]"));
  EXPECT_THAT(out[6].value("error", ""), HasSubstr("finite"));
  EXPECT_THAT(out[8].value("error", ""), HasSubstr("zzz"));
  EXPECT_THAT(out[9].value("error", ""), HasSubstr("id"));

  // The good rows got their own values, whatever the bad rows around them.
  ExpectProbabilities(out[0], Mean(Binary(1.0), Binary(0.5)));
  EXPECT_EQ(out[0]["used"], json::array({"a", "b"}));
  ExpectProbabilities(out[3], Binary(-1.0));
  EXPECT_EQ(out[3]["used"], json::array({"b"}));
  ExpectProbabilities(out[7], Binary(-0.5));
  EXPECT_EQ(out[7]["used"], json::array({"a"}));
  ExpectProbabilities(out[11], Mean(Binary(0.25), Binary(-0.75)));
  ExpectProbabilities(out[12], Binary(3.0));
}

TEST_F(EngineTest, OneModelCallPerBatch) {
  const fs::path a_calls = dir_.path() / "a_calls.txt";
  const fs::path b_calls = dir_.path() / "b_calls.txt";
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{calls_file: " + Quoted(a_calls) + "}"},
            {.name = "b", .params = "{calls_file: " + Quoted(b_calls) + "}"}}));
  // Distinct values per row and modality, so a row handed the wrong slot of
  // its model's output would show.
  const std::vector<std::string> lines = {
      // Batch 1: a in 3 rows, b in 2.
      R"({"id": "1", "modalities": {"a": [0.1], "b": [-0.1]}})",
      R"({"id": "2", "modalities": {"a": [0.2]}})",
      R"({"id": "3", "modalities": {"b": [-0.3]}})",
      R"({"id": "4", "modalities": {"a": [0.4], "b": null}})",
      // Batch 2: a in all 4 rows, b in none: no call for b.
      R"({"id": "5", "modalities": {"a": [0.5]}})",
      R"({"id": "6", "modalities": {"a": [0.6]}})",
      R"({"id": "7", "modalities": {"a": [0.7]}})",
      R"({"id": "8", "modalities": {"a": [0.8]}})",
      // Batch 3: b in both rows, a in none: no call for a.
      R"({"id": "9", "modalities": {"b": [-0.9]}})",
      R"({"id": "10", "modalities": {"a": null, "b": [-1.0]}})",
  };
  RunOptions options;
  options.batch_size = 4;
  options.output.per_modality = true;
  const std::vector<json> out = Run(lines, options);
  ASSERT_EQ(out.size(), lines.size());

  EXPECT_EQ(testing::ReadLines(a_calls), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(testing::ReadLines(b_calls), (std::vector<std::string>{"2", "2"}));

  for (std::size_t i = 0; i < out.size(); ++i) {
    const json input = json::parse(lines[i])["modalities"];
    SCOPED_TRACE(lines[i]);
    ASSERT_EQ(out[i]["status"], "ok") << out[i];
    for (const char* name : {"a", "b"}) {
      const bool present = input.contains(name) && !input[name].is_null();
      EXPECT_EQ(out[i]["modalities"].contains(name), present) << out[i];
      if (!present) continue;
      const json expected =
          Binary(static_cast<float>(input[name][0].get<double>()));
      EXPECT_EQ(out[i]["modalities"][name]["pos"].get<double>(),
                expected["pos"].get<double>())
          << name << " of " << out[i];
    }
  }
}

std::chrono::milliseconds EngineTest::RunTwoSleepingModels(
    std::size_t inline_rows) {
  Load({{.name = "a", .params = "{sleep_ms: 200}"},
        {.name = "b", .params = "{sleep_ms: 200}"}});
  if (pipeline_ == nullptr) return {};
  RunOptions options;
  options.engine.inline_rows = inline_rows;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<json> out =
      Run({R"({"id": "r1", "modalities": {"a": [1.0], "b": [0.5]}})"}, options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.size(), 1u);
  if (out.size() == 1) {
    EXPECT_EQ(out[0]["status"], "ok") << out[0];
    EXPECT_EQ(out[0]["used"], json::array({"a", "b"}));
    ExpectProbabilities(out[0], Mean(Binary(1.0), Binary(0.5)));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
}

TEST_F(EngineTest, ModelsOfABatchRunInParallel) {
  // 0: not even a small batch runs inline. One after the other would take at
  // least 400 ms.
  const std::chrono::milliseconds elapsed = RunTwoSleepingModels(0);
  EXPECT_LT(elapsed, std::chrono::milliseconds(350))
      << elapsed.count() << " ms";
}

// A batch of at most inline_rows rows runs its models without a timeout on the
// calling thread, one after the other.
TEST_F(EngineTest, ModelsOfASmallBatchRunInlineOneAfterTheOther) {
  const std::chrono::milliseconds elapsed = RunTwoSleepingModels(1);
  EXPECT_GE(elapsed, std::chrono::milliseconds(400))
      << elapsed.count() << " ms";
}

// Inline or on workers, the same calls give the same records, failures and
// abstentions included.
TEST_F(EngineTest, InlineAndParallelRunsGiveTheSameRecords) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a"},
            {.name = "b", .params = "{fail: negative}"},
            {.name = "c", .params = "{fail: negative}", .on_error = "fail"}},
           {.min_modalities = 2}));
  std::vector<std::string> lines;
  for (int i = 0; i < 40; ++i) {
    const double x = i / 40.0;
    json modalities = json::object();
    if (i % 2 == 0) modalities["a"] = {x};
    // b fails the batch of rows 0-7; c fails the batches of rows 0-15
    if (i % 3 != 0) modalities["b"] = {x - 0.1};
    if (i % 5 == 0) modalities["c"] = {x - 0.3};
    lines.push_back(
        json{{"id", std::to_string(i)}, {"modalities", modalities}}.dump());
  }
  RunOptions parallel;
  parallel.batch_size = 8;
  parallel.output.per_modality = true;
  parallel.engine.inline_rows = 0;
  RunOptions one_thread = parallel;
  one_thread.engine.inline_rows = static_cast<std::size_t>(-1);
  const std::vector<json> expected = Run(lines, parallel);
  const std::vector<json> actual = Run(lines, one_thread);
  ASSERT_EQ(actual.size(), lines.size());
  EXPECT_EQ(actual, expected);
  std::set<std::string> statuses;
  for (const json& record : actual) statuses.insert(record["status"]);
  EXPECT_EQ(statuses, (std::set<std::string>{"ok", "abstain", "error"}));
}

// `run` parses and formats batches on several threads at once and fuses them
// one after the other: whatever the threads and batch sizes, each line gets
// its record in its place, bad lines their own line numbers, and every
// configuration writes the same records.
TEST_F(EngineTest, ParallelStagesKeepEveryRecordInItsPlace) {
  ASSERT_NO_FATAL_FAILURE(
      Load({{.name = "a", .params = "{width: 2}", .width = 2}, {.name = "b"}}));
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) {
    const double x = (i % 97) / 32.0 - 1.5;  // exact in float32
    if (i % 211 == 5) {
      lines.push_back(R"({"id": "bad)" + std::to_string(i) + R"(", "mod)");
      continue;
    }
    json modalities = json::object();
    if (i % 3 != 0) modalities["a"] = {x, 1.0};
    if (i % 4 != 1) modalities["b"] = {-x};
    lines.push_back(
        json{{"id", std::to_string(i)}, {"modalities", modalities}}.dump());
  }
  RunOptions reference;
  reference.batch_size = 1024;
  reference.threads = 1;
  const std::vector<json> expected = Run(lines, reference);
  ASSERT_EQ(expected.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i % 211 == 5) {
      EXPECT_EQ(expected[i]["status"], "error") << expected[i];
      EXPECT_THAT(expected[i].value("error", ""),
                  StartsWith("line " + std::to_string(i + 1) + ": "));
      continue;
    }
    ASSERT_EQ(expected[i]["id"], std::to_string(i)) << expected[i];
    const double x = (static_cast<int>(i) % 97) / 32.0 - 1.5;
    if (i % 3 != 0 && i % 4 != 1) {
      ExpectProbabilities(expected[i], Mean(Binary(x), Binary(-x)));
    } else if (i % 3 != 0) {
      ExpectProbabilities(expected[i], Binary(x));
    } else if (i % 4 != 1) {
      ExpectProbabilities(expected[i], Binary(-x));
    } else {
      EXPECT_EQ(expected[i]["status"], "abstain") << expected[i];
    }
  }
  for (const std::size_t threads : {std::size_t{2}, std::size_t{7}}) {
    for (const std::size_t batch_size :
         {std::size_t{1}, std::size_t{3}, std::size_t{64}}) {
      SCOPED_TRACE(
          fmt::format("{} threads, batches of {}", threads, batch_size));
      RunOptions options;
      options.threads = threads;
      options.batch_size = batch_size;
      EXPECT_EQ(Run(lines, options), expected);
    }
  }
}

}  // namespace
}  // namespace latefuse
