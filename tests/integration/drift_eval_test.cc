// Drift end to end with the real plugins: `latefuse eval` writes the profile
// of tests/fixtures/fusion3 (weighted_mean over modalities a, b, c), the
// engine runs shifted records (tests/fixtures/drift/shifted.jsonl) batch by
// batch into a DriftMonitor, and the PSI is NumPy's
// (tests/fixtures/drift/fusion3.json, make_drift_fixtures.py). `latefuse fit`
// writes the same modality histograms.
#include <httplib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/drift.h"
#include "core/engine.h"
#include "core/records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kTolerance = 1e-12;

fs::path Fixtures() { return testing::SourceDir() / "tests/fixtures"; }

// The fusion3 pipeline, `combiner_extra` added to its combiner (JSON is
// YAML).
std::string Fusion3Pipeline(const json& combiner_extra = json::object()) {
  const fs::path folder = Fixtures() / "fusion3";
  json combiner = {
      {"plugin", "weighted_mean"},
      {"params", {{"weights", testing::ReadJson(folder / "weights.json")}}}};
  combiner.update(combiner_extra);
  json doc = {{"apiVersion", "latefuse/v1"},
              {"name", "eval-test"},
              {"classes", {"red", "green", "blue"}},
              {"plugin_dirs", {testing::PluginDir().string()}},
              {"combiner", combiner}};
  for (const auto& [name, width] :
       std::vector<std::pair<std::string, int>>{{"a", 5}, {"b", 3}, {"c", 4}}) {
    doc["modalities"].push_back(
        {{"name", name},
         {"input", {{"kind", "dense"}, {"size", width}}},
         {"model",
          {{"plugin", "linear"},
           {"params", {{"model", (folder / (name + ".json")).string()}}}}}});
  }
  return doc.dump() + "\n";
}

std::string Quote(const fs::path& path) {
  return testing::ShellQuote(path.string());
}

void ExpectHistograms(const json& actual, const json& expected,
                      const std::string& what) {
  for (const auto& [c, counts] : expected.items())
    EXPECT_EQ(actual[c], counts) << what << " " << c;
}

// The fusion3 pipeline loaded for running, and a monitor of it against the
// profile in `profile_file`; a null monitor after a test failure.
struct Monitored {
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<DriftMonitor> monitor;
};

Monitored Monitor(const testing::TempDir& dir, const fs::path& profile_file) {
  Monitored m;
  absl::StatusOr<Profile> profile = ReadProfile(profile_file);
  EXPECT_TRUE(profile.ok()) << profile.status();
  m.pipeline = testing::LoadPipelineOrFail(dir, Fusion3Pipeline());
  if (!profile.ok() || m.pipeline == nullptr) return m;
  absl::StatusOr<std::unique_ptr<DriftMonitor>> monitor =
      DriftMonitor::Create(*profile, m.pipeline->config());
  EXPECT_TRUE(monitor.ok()) << monitor.status();
  if (monitor.ok()) m.monitor = *std::move(monitor);
  return m;
}

TEST(DriftEvalTest, EvalProfileThenShiftedTrafficGivesNumPysPsi) {
  const json expected = testing::ReadJson(Fixtures() / "drift/fusion3.json");
  testing::TempDir dir;
  const fs::path pipeline_file = dir.Write("pipeline.yaml", Fusion3Pipeline());
  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline_file), " --data ",
                   Quote(Fixtures() / "fusion3/input.jsonl"), " --report ",
                   Quote(dir.path() / "report"), " --bootstrap 10"));
  ASSERT_EQ(eval.code, 0) << eval.err;

  // The profile eval wrote: NumPy's histograms, count for count.
  const fs::path profile_file = dir.path() / "report/profile.json";
  const json written = testing::ReadJson(profile_file);
  const json& numpy = expected["profile"];
  EXPECT_EQ(written["rows"], numpy["rows"]);
  for (const std::string m : {"a", "b", "c"}) {
    EXPECT_EQ(written["modalities"][m]["present"],
              numpy["modalities"][m]["present"]);
    ExpectHistograms(written["modalities"][m]["histograms"],
                     numpy["modalities"][m]["histograms"], m);
  }
  EXPECT_EQ(written["fused"]["rows"], numpy["fused"]["rows"]);
  ExpectHistograms(written["fused"]["histograms"], numpy["fused"]["histograms"],
                   "fused");

  // Shifted traffic through the engine, as `latefuse run` feeds it.
  Monitored m = Monitor(dir, profile_file);
  ASSERT_NE(m.monitor, nullptr);
  EXPECT_TRUE(m.monitor->unmatched().empty());
  Engine engine(*m.pipeline, {});
  RecordParser parser(Engine::RecordSpecs(m.pipeline->config()));
  InputBatch batch;
  BatchResult result;
  std::size_t line = 0;
  auto flush = [&] {
    engine.Run(batch, result);
    const absl::Status status = m.monitor->Observe(result);
    EXPECT_TRUE(status.ok()) << status;
    batch.Clear();
  };
  for (const std::string& text :
       testing::ReadLines(Fixtures() / "drift/shifted.jsonl")) {
    parser.Append(text, ++line, batch);
    if (batch.rows == 16) flush();
  }
  if (batch.rows > 0) flush();
  ASSERT_EQ(line, 60u);

  const DriftSnapshot snapshot = m.monitor->Snapshot();
  const json& shifted = expected["shifted"];
  EXPECT_EQ(snapshot.batch_rows, shifted["batch_rows"].get<std::size_t>());
  std::vector<const DriftSeries*> series;
  for (const DriftSeries& s : snapshot.modalities) series.push_back(&s);
  series.push_back(&snapshot.fused);
  for (const DriftSeries* s : series) {
    const json& e =
        s->name == "fused" ? shifted["fused"] : shifted["modalities"][s->name];
    SCOPED_TRACE(s->name);
    EXPECT_TRUE(s->has_reference);
    EXPECT_EQ(s->present, e["present"].get<std::size_t>());
    EXPECT_EQ(s->rows, e["rows"].get<std::size_t>());
    EXPECT_NEAR(s->presence_rate, e["presence_rate"].get<double>(), kTolerance);
    EXPECT_NEAR(s->reference_presence_rate,
                e["reference_presence_rate"].get<double>(), kTolerance);
    ASSERT_EQ(s->psi.size(), 3u);
    for (std::size_t c = 0; c < 3; ++c)
      EXPECT_NEAR(s->psi[c], e["psi"][c].get<double>(), kTolerance) << c;
    EXPECT_NEAR(s->max_psi, e["max_psi"].get<double>(), kTolerance);
  }
  // Modality a was moved: significant; b was not touched: exactly 0.
  EXPECT_GT(snapshot.modalities[0].max_psi, 0.25);
  EXPECT_EQ(snapshot.modalities[1].max_psi, 0.0);
}

// The value of the series `name` (with its labels) on a /metrics page; NaN
// when absent.
double Series(const std::string& text, const std::string& name) {
  const std::string start = name + " ";
  for (const absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, start))
      return std::stod(std::string(line.substr(start.size())));
  }
  ADD_FAILURE() << "no series " << name;
  return std::nan("");
}

TEST(DriftEvalTest, ServeReportsEachModalitysPsiOnMetrics) {
  const json expected = testing::ReadJson(Fixtures() / "drift/fusion3.json");
  testing::TempDir dir;
  const fs::path pipeline_file = dir.Write("pipeline.yaml", Fusion3Pipeline());
  ASSERT_EQ(
      testing::RunLatefuse(
          absl::StrCat("eval ", Quote(pipeline_file), " --data ",
                       Quote(Fixtures() / "fusion3/input.jsonl"), " --report ",
                       Quote(dir.path() / "report"), " --bootstrap 0"))
          .code,
      0);
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server =
      testing::ServerProcess::Start(
          pipeline_file,
          {"--profile", (dir.path() / "report/profile.json").string()});
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  const httplib::Result served =
      client.Post("/v2/models/eval-test/records",
                  testing::ReadFile(Fixtures() / "drift/shifted.jsonl"),
                  "application/x-ndjson");
  ASSERT_TRUE(served);
  ASSERT_EQ(served->status, 200) << served->body;
  const httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  const json& shifted = expected["shifted"];
  const std::vector<std::string> classes = {"red", "green", "blue"};
  for (const std::string m : {"a", "b", "c"}) {
    const json& e = shifted["modalities"][m];
    for (std::size_t c = 0; c < classes.size(); ++c) {
      EXPECT_NEAR(Series(metrics->body,
                         absl::StrCat("latefuse_modality_psi{modality=\"", m,
                                      "\",class=\"", classes[c], "\"}")),
                  e["psi"][c].get<double>(), kTolerance)
          << m << " " << classes[c];
    }
    EXPECT_EQ(Series(metrics->body,
                     absl::StrCat("latefuse_modality_drift_rows{modality=\"", m,
                                  "\"}")),
              e["rows"].get<double>());
  }
  EXPECT_NEAR(Series(metrics->body, "latefuse_fused_psi_max"),
              shifted["fused"]["max_psi"].get<double>(), kTolerance);

  // A profile that does not fit the pipeline keeps the server from starting.
  json misfit = testing::ReadJson(dir.path() / "report/profile.json");
  misfit["classes"] = {"blue", "green", "red"};
  const fs::path misfit_file = dir.Write("misfit.json", misfit.dump());
  const absl::StatusOr<std::unique_ptr<testing::ServerProcess>> refused =
      testing::ServerProcess::Start(pipeline_file,
                                    {"--profile", misfit_file.string()});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("--profile: "));
}

TEST(DriftEvalTest, FitWritesTheModalitiesProfile) {
  const json expected = testing::ReadJson(Fixtures() / "drift/fusion3.json");
  testing::TempDir dir;
  const fs::path pipeline_file =
      dir.Write("pipeline.yaml", Fusion3Pipeline({{"fit", json::object()}}));
  const testing::CommandResult fit = testing::RunLatefuse(
      absl::StrCat("fit ", Quote(pipeline_file), " --data ",
                   Quote(Fixtures() / "fusion3/input.jsonl"), " --out ",
                   Quote(dir.path() / "fitted")));
  ASSERT_EQ(fit.code, 0) << fit.err;
  const fs::path profile_file = dir.path() / "fitted/profile.json";
  EXPECT_THAT(fit.err + fit.out, ::testing::HasSubstr("profile.json"));
  const json written = testing::ReadJson(profile_file);
  const json& numpy = expected["profile"];
  EXPECT_EQ(written["format"], "latefuse.profile/v1");
  EXPECT_EQ(written["rows"], numpy["rows"]);
  for (const std::string m : {"a", "b", "c"}) {
    EXPECT_EQ(written["modalities"][m], numpy["modalities"][m]) << m;
  }
  // The fitted combiner did not run: no fused reference, and the monitor
  // says so.
  EXPECT_FALSE(written.contains("fused"));
  Monitored m = Monitor(dir, profile_file);
  ASSERT_NE(m.monitor, nullptr);
  const DriftSnapshot snapshot = m.monitor->Snapshot();
  EXPECT_FALSE(snapshot.fused.has_reference);
  EXPECT_TRUE(snapshot.modalities[0].has_reference);
}

}  // namespace
}  // namespace latefuse
