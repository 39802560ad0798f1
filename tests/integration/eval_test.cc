// `latefuse eval` with the real plugins: its numbers against scikit-learn
// (tests/fixtures/eval/fusion*.json, made by make_eval_fixtures.py from the
// tests/fixtures/fusion* pipelines), against `latefuse run` and against a
// pipeline without the masked modalities; its files; its refusals.
#include "core/eval.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-9;

fs::path Fixtures() { return testing::SourceDir() / "tests/fixtures"; }
fs::path DemoDir() { return testing::SourceDir() / "configs/demo"; }
fs::path DemoData() { return DemoDir() / "data/patients.jsonl"; }

std::string Quote(const fs::path& path) {
  return absl::StrCat("'", path.string(), "'");
}

struct Modality {
  std::string name;
  json input;
  std::string plugin;
  fs::path model;
};

// A pipeline file's text (JSON is YAML) over the in-tree plugins.
std::string PipelineText(const json& classes,
                         const std::vector<Modality>& modalities,
                         const json& combiner, int min_modalities = 1) {
  json doc = {
      {"apiVersion", "latefuse/v1"},
      {"name", "eval-test"},
      {"classes", classes},
      {"plugin_dirs", {testing::PluginDir().string()}},
      {"combiner", combiner},
      {"policy",
       {{"min_modalities", min_modalities}, {"on_insufficient", "abstain"}}}};
  for (const Modality& m : modalities) {
    doc["modalities"].push_back(
        {{"name", m.name},
         {"input", m.input},
         {"model",
          {{"plugin", m.plugin}, {"params", {{"model", m.model.string()}}}}}});
  }
  return doc.dump() + "\n";
}

// tests/fixtures/<fixture>/: modalities a, b, c and weighted_mean.
std::string FusionPipeline(const std::string& fixture, int min_modalities = 1) {
  const fs::path folder = Fixtures() / fixture;
  const json classes = testing::ReadJson(folder / "a.json")["classes"];
  std::vector<Modality> modalities;
  const std::vector<std::pair<std::string, int>> widths = {
      {"a", 5}, {"b", 3}, {"c", 4}};
  for (const auto& [name, width] : widths) {
    modalities.push_back({name,
                          {{"kind", "dense"}, {"size", width}},
                          "linear",
                          folder / (name + ".json")});
  }
  return PipelineText(
      classes, modalities,
      {{"plugin", "weighted_mean"},
       {"params", {{"weights", testing::ReadJson(folder / "weights.json")}}}},
      min_modalities);
}

// The demo's modalities (configs/demo/pipeline.yaml) named in `names`, fused
// by the demo's weighted mean.
std::string DemoPipeline(const std::vector<std::string>& names) {
  const std::vector<Modality> all = {
      {"vitals", {{"kind", "dense"}, {"size", 12}}, "linear", ""},
      {"labs", {{"kind", "dense"}, {"size", 8}}, "linear", ""},
      {"imaging", {{"kind", "dense"}, {"size", 16}}, "linear", ""},
      {"notes", {{"kind", "text"}}, "tfidf_linear", ""},
      {"wearable", {{"kind", "dense"}, {"size", 6}}, "xgboost", ""}};
  const json weights = {{"vitals", 1.0},
                        {"labs", 0.69},
                        {"imaging", 0.7},
                        {"notes", 0.59},
                        {"wearable", 0.44}};
  std::vector<Modality> chosen;
  json chosen_weights = json::object();
  for (Modality m : all) {
    if (std::find(names.begin(), names.end(), m.name) == names.end()) continue;
    m.model = DemoDir() / "models" / (m.name + ".json");
    chosen_weights[m.name] = weights[m.name];
    chosen.push_back(m);
  }
  return PipelineText(
      {"stable", "deteriorating"}, chosen,
      {{"plugin", "weighted_mean"}, {"params", {{"weights", chosen_weights}}}});
}

const std::vector<std::string> kDemoModalities = {"vitals", "labs", "imaging",
                                                  "notes", "wearable"};

std::string Join(const json& names) {
  std::vector<std::string> parts;
  for (const json& n : names) parts.push_back(n.get<std::string>());
  return parts.empty() ? "none" : absl::StrJoin(parts, "+");
}

// Compares one metric block ({metric: v} or {metric: {"value": v}}) with
// the reference's {metric: v | null}; returns the worst difference.
double CompareMetrics(const json& actual, const json& expected,
                      const std::string& where) {
  double worst = 0.0;
  for (std::string_view m : kMetricNames) {
    const std::string name(m);
    SCOPED_TRACE(where + " " + name);
    json value = actual.at(name);
    if (value.is_object()) value = value.at("value");
    if (expected.at(name).is_null()) {
      EXPECT_TRUE(value.is_null()) << value;
      continue;
    }
    EXPECT_TRUE(value.is_number()) << value;
    if (!value.is_number()) continue;
    const double diff =
        std::abs(value.get<double>() - expected[name].get<double>());
    EXPECT_LE(diff, kTolerance) << value << " vs " << expected[name];
    worst = std::max(worst, diff);
  }
  return worst;
}

double CompareSet(const json& actual, const json& expected,
                  const std::string& where) {
  EXPECT_EQ(actual.at("rows"), expected.at("rows")) << where;
  EXPECT_EQ(actual.at("scored"), expected.at("scored")) << where;
  return CompareMetrics(actual.at("metrics"), expected.at("metrics"), where);
}

class EvalFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(EvalFixtureTest, EverySetMatchesScikitLearn) {
  const std::string fixture = GetParam();
  testing::TempDir dir;
  const fs::path pipeline = dir.Write("pipeline.yaml", FusionPipeline(fixture));
  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ",
                   Quote(Fixtures() / fixture / "input.jsonl"), " --report ",
                   Quote(dir.path() / "report"), " --bootstrap 200 --seed 3"));
  ASSERT_EQ(eval.code, 0) << eval.err;
  const json report = testing::ReadJson(dir.path() / "report/report.json");
  const json expected =
      testing::ReadJson(Fixtures() / "eval" / (fixture + ".json"));

  double worst =
      CompareSet(report["as_given"], expected["as_given"], "as given");
  ASSERT_EQ(report["alone"].size(), 3u);
  for (const json& set : report["alone"]) {
    const std::string name = Join(set["modalities"]);
    worst = std::max(worst,
                     CompareSet(set, expected["alone"][name], "alone " + name));
  }
  // Every non-empty subset of 3 modalities, smallest first.
  ASSERT_EQ(report["patterns"].size(), 7u);
  EXPECT_EQ(Join(report["patterns"][0]["modalities"]), "a");
  EXPECT_EQ(Join(report["patterns"][6]["modalities"]), "a+b+c");
  for (const json& set : report["patterns"]) {
    const std::string name = Join(set["modalities"]);
    ASSERT_TRUE(expected["patterns"].contains(name)) << name;
    worst = std::max(
        worst, CompareSet(set, expected["patterns"][name], "pattern " + name));
  }
  ASSERT_EQ(report["observed"].size(), expected["observed"].size());
  for (const json& set : report["observed"]) {
    const std::string name = Join(set["modalities"]);
    ASSERT_TRUE(expected["observed"].contains(name)) << name;
    worst = std::max(
        worst, CompareSet(set, expected["observed"][name], "observed " + name));
  }
  ASSERT_EQ(report["contributions"].size(), 3u);
  for (const json& c : report["contributions"]) {
    const std::string name = c["modality"];
    const json& e = expected["contributions"][name];
    EXPECT_EQ(c["rows"], e["rows"]) << name;
    worst = std::max(worst, CompareMetrics(c["with"], e["with"], name));
    worst = std::max(worst, CompareMetrics(c["without"], e["without"], name));
  }
  std::printf("%s: worst difference from scikit-learn over every set %.3g\n",
              fixture.c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Fusion, EvalFixtureTest,
                         ::testing::Values("fusion", "fusion3"));

// The metrics as given are `latefuse run`'s output scored: run and eval fuse
// the same way.
TEST(EvalTest, AsGivenIsWhatRunOutputsScored) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", FusionPipeline("fusion3"));
  const fs::path input = Fixtures() / "fusion3/input.jsonl";
  const testing::CommandResult run = testing::RunLatefuse(
      absl::StrCat("run ", Quote(pipeline), " -q --input ", Quote(input)));
  ASSERT_EQ(run.code, 0) << run.err;
  const std::vector<std::string> lines = testing::ReadLines(input);
  std::istringstream out(run.out);
  const std::vector<std::string> classes = {"red", "green", "blue"};
  std::vector<double> p;
  std::vector<std::int32_t> labels;
  std::string line;
  for (std::size_t i = 0; std::getline(out, line); ++i) {
    const json record = json::parse(line);
    if (record["status"] != "ok") continue;
    for (const std::string& c : classes)
      p.push_back(record["probabilities"][c].get<double>());
    const std::string label = json::parse(lines.at(i))["label"];
    labels.push_back(static_cast<std::int32_t>(
        std::find(classes.begin(), classes.end(), label) - classes.begin()));
  }
  const MetricValues expected =
      Scorer(p.data(), labels.data(), labels.size(), 3).Score();

  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ", Quote(input),
                   " --report ", Quote(dir.path() / "r"), " --bootstrap 0"));
  ASSERT_EQ(eval.code, 0) << eval.err;
  const json given =
      testing::ReadJson(dir.path() / "r/report.json")["as_given"];
  EXPECT_EQ(given["scored"], labels.size());
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    const std::string name(kMetricNames[m]);
    EXPECT_NEAR(given["metrics"][name]["value"].get<double>(), expected[m],
                1e-12)
        << name;
    EXPECT_TRUE(given["metrics"][name]["ci"].is_null()) << "--bootstrap 0";
  }
}

// A simulated pattern is the pipeline without the masked modalities, on the
// rows that hold the pattern's: demo data, real linear, tfidf_linear and
// xgboost models.
TEST(EvalTest, MaskingEqualsAPipelineWithoutTheMaskedModalities) {
  testing::TempDir dir;
  std::unique_ptr<Pipeline> full =
      testing::LoadPipelineOrFail(dir, DemoPipeline(kDemoModalities));
  ASSERT_NE(full, nullptr);
  EvalOptions options;
  options.data = DemoData();
  options.patterns = {{"notes", "wearable"}, {"vitals", "labs", "imaging"}};
  options.bootstrap.replicates = 0;
  absl::StatusOr<EvalResult> result = Evaluate(*full, options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->patterns.size(), 2u);

  for (const Evaluation& pattern : result->patterns) {
    std::vector<std::string> names;
    for (std::size_t k = 0; k < kDemoModalities.size(); ++k) {
      if ((pattern.mask >> k) & 1) names.push_back(kDemoModalities[k]);
    }
    SCOPED_TRACE(absl::StrJoin(names, "+"));
    testing::TempDir small_dir;
    std::unique_ptr<Pipeline> small =
        testing::LoadPipelineOrFail(small_dir, DemoPipeline(names));
    ASSERT_NE(small, nullptr);
    // The records that hold every modality of the pattern, with only those.
    std::vector<std::string> lines;
    std::vector<std::int32_t> labels;
    for (const std::string& line : testing::ReadLines(DemoData())) {
      json record = json::parse(line);
      json kept = json::object();
      for (const std::string& n : names) {
        if (record["modalities"].value(n, json()).is_null()) break;
        kept[n] = record["modalities"][n];
      }
      if (kept.size() != names.size()) continue;
      record["modalities"] = kept;
      lines.push_back(record.dump());
      labels.push_back(record["label"] == "stable" ? 0 : 1);
    }
    ASSERT_GT(lines.size(), 50u);
    std::vector<double> p;
    for (const json& out : testing::RunLines(*small, lines)) {
      ASSERT_EQ(out["status"], "ok");
      p.push_back(out["probabilities"]["stable"].get<double>());
      p.push_back(out["probabilities"]["deteriorating"].get<double>());
    }
    const MetricValues expected =
        Scorer(p.data(), labels.data(), labels.size(), 2).Score();
    EXPECT_EQ(pattern.rows, lines.size());
    EXPECT_EQ(pattern.scored, lines.size());
    for (std::size_t m = 0; m < kMetricCount; ++m) {
      EXPECT_NEAR(pattern.metrics[m], expected[m], 1e-12) << kMetricNames[m];
    }
  }
}

// The demo end to end through the command: the documented fields of both
// files, and numbers that hang together.
TEST(EvalTest, DemoReportAndProfileHoldTheDocumentedFields) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", DemoPipeline(kDemoModalities));
  const fs::path report_dir = dir.path() / "report";
  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ", Quote(DemoData()),
                   " --report ", Quote(report_dir), " --bootstrap 200"));
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_THAT(eval.out, HasSubstr("as given"));
  EXPECT_THAT(eval.out, HasSubstr("wearable alone"));
  EXPECT_THAT(eval.out, HasSubstr("vitals+labs+imaging+notes+wearable"));
  EXPECT_THAT(eval.out, HasSubstr("contribution"));

  const json report = testing::ReadJson(report_dir / "report.json");
  EXPECT_EQ(report["format"], "latefuse.eval/v1");
  for (const char* key : {"name", "file", "classes", "modalities", "combiner",
                          "min_modalities", "on_insufficient"}) {
    EXPECT_TRUE(report["pipeline"].contains(key)) << key;
  }
  EXPECT_EQ(report["data"]["rows"], 1000);
  EXPECT_EQ(report["data"]["class_counts"]["stable"].get<int>() +
                report["data"]["class_counts"]["deteriorating"].get<int>(),
            1000);
  for (const char* key : {"bootstrap", "seed", "confidence", "ece_bins",
                          "patterns", "definitions"}) {
    EXPECT_TRUE(report["settings"].contains(key)) << key;
  }
  EXPECT_EQ(report["settings"]["bootstrap"], 200);
  auto check_set = [](const json& set) {
    for (const char* key : {"modalities", "rows", "scored", "abstained",
                            "errors", "coverage", "metrics"}) {
      EXPECT_TRUE(set.contains(key)) << key << " in " << set.dump();
    }
    EXPECT_EQ(set["rows"].get<int>(), set["scored"].get<int>() +
                                          set["abstained"].get<int>() +
                                          set["errors"].get<int>());
    for (std::string_view m : kMetricNames) {
      const json& metric = set["metrics"][std::string(m)];
      EXPECT_TRUE(metric.contains("value") && metric.contains("ci")) << m;
      // Enough rows: a value inside its interval (ECE aside: the resamples'
      // ECE is biased upward, so its interval may lie above the value).
      if (set["scored"].get<int>() >= 30 && m != "ece") {
        ASSERT_TRUE(metric["ci"].is_array()) << m << " " << set.dump();
        EXPECT_LE(metric["ci"][0].get<double>(), metric["value"].get<double>());
        EXPECT_GE(metric["ci"][1].get<double>(), metric["value"].get<double>());
      }
    }
  };
  check_set(report["as_given"]);
  EXPECT_EQ(report["alone"].size(), 5u);
  EXPECT_EQ(report["patterns"].size(), 31u);  // 2^5 - 1
  int observed_rows = 0;
  for (const json& set : report["observed"]) {
    check_set(set);
    observed_rows += set["rows"].get<int>();
  }
  EXPECT_EQ(observed_rows, 1000);
  for (const json& set : report["alone"]) check_set(set);
  for (const json& set : report["patterns"]) check_set(set);
  EXPECT_EQ(report["contributions"].size(), 5u);
  for (const json& c : report["contributions"]) {
    for (std::string_view m : kMetricNames) {
      const std::string name(m);
      EXPECT_NEAR(
          c["delta"][name]["value"].get<double>(),
          c["with"][name].get<double>() - c["without"][name].get<double>(),
          1e-15);
    }
  }
  EXPECT_EQ(report["reliability"]["as_given"].size(), 15u);
  double reliability_rows = 0;
  for (const json& bin : report["reliability"]["as_given"])
    reliability_rows += bin["rows"].get<double>();
  EXPECT_EQ(reliability_rows, report["as_given"]["scored"].get<double>());

  // The drift profile: counts that add up to the rows they describe.
  const json profile = testing::ReadJson(report_dir / "profile.json");
  EXPECT_EQ(profile["format"], "latefuse.profile/v1");
  EXPECT_EQ(profile["bins"], 10);
  EXPECT_EQ(profile["edges"].size(), 11u);
  const json& data_modalities = report["data"]["modalities"];
  for (std::size_t k = 0; k < kDemoModalities.size(); ++k) {
    const std::string& name = kDemoModalities[k];
    const json& m = profile["modalities"][name];
    EXPECT_EQ(m["present"], data_modalities[k]["present"]) << name;
    EXPECT_DOUBLE_EQ(m["presence_rate"].get<double>(),
                     m["present"].get<double>() / 1000.0);
    for (const char* c : {"stable", "deteriorating"}) {
      int total = 0;
      for (const json& n : m["histograms"][c]) total += n.get<int>();
      EXPECT_EQ(total, m["used"].get<int>()) << name << " " << c;
    }
  }
  int fused = 0;
  for (const json& n : profile["fused"]["histograms"]["stable"])
    fused += n.get<int>();
  EXPECT_EQ(fused, report["as_given"]["scored"].get<int>());

  const std::string html = testing::ReadFile(report_dir / "report.html");
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, ::testing::Not(HasSubstr("http://")))
      << "the report must fetch nothing";
}

// min_modalities 2: rows with a single modality abstain, and so does every
// single-modality pattern; coverage says so.
TEST(EvalTest, PolicyAbstentionsAreCountedNotScored) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", FusionPipeline("fusion", 2));
  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ",
                   Quote(Fixtures() / "fusion/input.jsonl"), " --report ",
                   Quote(dir.path() / "r"), " --bootstrap 20"));
  ASSERT_EQ(eval.code, 0) << eval.err;
  const json report = testing::ReadJson(dir.path() / "r/report.json");
  const json expected = testing::ReadJson(Fixtures() / "eval/fusion.json");
  int fewer_than_two = 0;
  for (const auto& [name, set] : expected["observed"].items()) {
    if (name == "none" || name.find('+') == std::string::npos)
      fewer_than_two += set["rows"].get<int>();
  }
  ASSERT_GT(fewer_than_two, 0);
  EXPECT_EQ(report["as_given"]["abstained"], fewer_than_two);
  EXPECT_EQ(report["as_given"]["scored"].get<int>(), 60 - fewer_than_two);
  for (const json& set : report["patterns"]) {
    const std::string name = Join(set["modalities"]);
    if (set["modalities"].size() == 1) {
      EXPECT_EQ(set["scored"], 0) << name;
      EXPECT_EQ(set["coverage"], 0.0) << name;
      EXPECT_TRUE(set["metrics"]["accuracy"]["value"].is_null()) << name;
    } else {
      CompareSet(set, expected["patterns"][name], name);  // as with 1
    }
  }
  // Each modality alone is its model, whatever the policy.
  CompareSet(report["alone"][0], expected["alone"]["a"], "a alone");
}

TEST(EvalTest, PatternsCanBeListed) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", FusionPipeline("fusion"));
  const std::string data = Quote(Fixtures() / "fusion/input.jsonl");
  const testing::CommandResult listed = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ", data, " --report ",
                   Quote(dir.path() / "r"), " --bootstrap 0 --patterns c+a,b"));
  ASSERT_EQ(listed.code, 0) << listed.err;
  const json report = testing::ReadJson(dir.path() / "r/report.json");
  ASSERT_EQ(report["patterns"].size(), 2u);
  EXPECT_EQ(Join(report["patterns"][0]["modalities"]), "b");
  EXPECT_EQ(Join(report["patterns"][1]["modalities"]), "a+c");

  const testing::CommandResult unknown = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ", data, " --report ",
                   Quote(dir.path() / "r2"), " --patterns a+x"));
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err,
              HasSubstr("patterns: 'x' is not a modality of pipeline "
                        "'eval-test' (a, b, c)"));
}

struct BadData {
  const char* name;
  const char* line;  // becomes line 3 of the data
  const char* message;
};

void PrintTo(const BadData& bad, std::ostream* os) { *os << bad.name; }

class EvalBadDataTest : public ::testing::TestWithParam<BadData> {};

TEST_P(EvalBadDataTest, IsRefusedNamingTheLine) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", FusionPipeline("fusion"));
  const std::vector<std::string> lines =
      testing::ReadLines(Fixtures() / "fusion/input.jsonl");
  const fs::path data = dir.Write(
      "data.jsonl", absl::StrCat(lines[0], "\n", lines[1], "\n",
                                 GetParam().line, "\n", lines[3], "\n"));
  const testing::CommandResult eval = testing::RunLatefuse(
      absl::StrCat("eval ", Quote(pipeline), " --data ", Quote(data),
                   " --report ", Quote(dir.path() / "r")));
  EXPECT_EQ(eval.code, 1);
  EXPECT_THAT(eval.err, HasSubstr(GetParam().message));
  EXPECT_THAT(eval.err, HasSubstr("needs every line to be a record labelled "
                                  "with one of the pipeline's classes (neg, "
                                  "pos)"));
  EXPECT_FALSE(fs::exists(dir.path() / "r/report.json"));
}

INSTANTIATE_TEST_SUITE_P(
    Lines, EvalBadDataTest,
    ::testing::Values(
        BadData{"Unlabelled", R"({"id": "u", "modalities": {}})",
                "line 3: no label"},
        BadData{"UnknownLabel",
                R"({"id": "u", "modalities": {}, "label": "unwell"})",
                "line 3: label \"unwell\" is not one of the pipeline's "
                "classes"},
        BadData{"NotJson", "{oops", "line 3: "},
        BadData{"WrongWidth",
                R"({"id": "u", "modalities": {"b": [1, 2]}, "label": "neg"})",
                "line 3: modalities.b"}),
    [](const ::testing::TestParamInfo<BadData>& param) {
      return std::string(param.param.name);
    });

// The bootstrap runs on several threads, each set on its own random stream:
// the report is the same whatever the number of threads.
TEST(EvalTest, ReportDoesNotDependOnThreads) {
  testing::TempDir dir;
  const fs::path pipeline =
      dir.Write("pipeline.yaml", FusionPipeline("fusion3"));
  std::string reports[2];
  for (int threads : {1, 3}) {
    const fs::path out = dir.path() / absl::StrCat("r", threads);
    const testing::CommandResult eval = testing::RunLatefuse(absl::StrCat(
        "eval ", Quote(pipeline), " --data ",
        Quote(Fixtures() / "fusion3/input.jsonl"), " --report ", Quote(out),
        " --bootstrap 300 --seed 11 --threads ", threads));
    ASSERT_EQ(eval.code, 0) << eval.err;
    reports[threads == 1 ? 0 : 1] = testing::ReadFile(out / "report.json");
  }
  EXPECT_EQ(reports[0], reports[1]);
  EXPECT_THAT(reports[0], HasSubstr("\"ci\": ["));
}

// A model that fails makes its rows errors with on_error: fail (as `run`
// does), and its modality absent from them with on_error: missing.
TEST(EvalTest, ModelFailuresFollowOnError) {
  for (const char* on_error : {"fail", "missing"}) {
    SCOPED_TRACE(on_error);
    testing::TempDir dir;
    json doc = json::parse(FusionPipeline("fusion"));
    doc["plugin_dirs"].push_back(testing::TestPluginDir().string());
    doc["modalities"].push_back(
        {{"name", "t"},
         {"input", {{"kind", "dense"}, {"size", 1}}},
         {"model",
          {{"plugin", "test_model"}, {"params", {{"fail", "always"}}}}},
         {"on_error", on_error}});
    doc["combiner"] = {{"plugin", "mean"}};
    const fs::path pipeline = dir.Write("pipeline.yaml", doc.dump());
    // The fixture's rows that hold `a`, half of them with `t` too.
    std::string data;
    int with_t = 0;
    int rows = 0;
    for (const std::string& line :
         testing::ReadLines(Fixtures() / "fusion/input.jsonl")) {
      json record = json::parse(line);
      if (record["modalities"].value("a", json()).is_null()) continue;
      if (rows++ % 2 == 0) {
        record["modalities"]["t"] = {1.0};
        ++with_t;
      }
      data += record.dump() + "\n";
    }
    const testing::CommandResult eval = testing::RunLatefuse(
        absl::StrCat("eval ", Quote(pipeline), " --data ",
                     Quote(dir.Write("data.jsonl", data)), " --report ",
                     Quote(dir.path() / "r"), " --bootstrap 0"));
    ASSERT_EQ(eval.code, 0) << eval.err;
    const json report = testing::ReadJson(dir.path() / "r/report.json");
    const bool fail = std::string(on_error) == "fail";
    EXPECT_EQ(report["as_given"]["rows"], rows);
    EXPECT_EQ(report["as_given"]["errors"], fail ? with_t : 0);
    EXPECT_EQ(report["as_given"]["scored"], fail ? rows - with_t : rows);
    EXPECT_EQ(report["data"]["modalities"][3]["failed"], with_t);
    EXPECT_EQ(report["alone"][3]["errors"], with_t);
    EXPECT_EQ(report["alone"][3]["scored"], 0);
    EXPECT_THAT(report["warnings"][0].get<std::string>(),
                HasSubstr(absl::StrCat("modality 't': its model failed on ",
                                       with_t, " of the ", with_t)));
    // Patterns with `t` have no rows; `a` alone has them all.
    for (const json& set : report["patterns"]) {
      const std::string name = Join(set["modalities"]);
      if (name == "a") {
        EXPECT_EQ(set["scored"], rows);
      }
      if (name.find('t') != std::string::npos) {
        EXPECT_EQ(set["rows"], 0) << name;
      }
    }
  }
}

TEST(EvalTest, RegressionPipelineIsRefused) {
  testing::TempDir dir;
  const fs::path folder = Fixtures() / "regression";
  json doc = json::parse(FusionPipeline("fusion"));
  doc.erase("classes");
  doc["task"] = "regression";
  doc["combiner"] = {{"plugin", "mean"}};
  doc["modalities"] = json::array();
  doc["modalities"].push_back(
      {{"name", "labs"},
       {"input", {{"kind", "dense"}, {"size", 3}}},
       {"model",
        {{"plugin", "linear"},
         {"params", {{"model", (folder / "labs.json").string()}}}}}});
  const fs::path pipeline = dir.Write("pipeline.yaml", doc.dump());
  const testing::CommandResult eval = testing::RunLatefuse(absl::StrCat(
      "eval ", Quote(pipeline), " --data ", Quote(folder / "input.jsonl"),
      " --report ", Quote(dir.path() / "r")));
  EXPECT_EQ(eval.code, 1);
  EXPECT_THAT(eval.err, HasSubstr("this pipeline's task is 'regression'"));
}

}  // namespace
}  // namespace latefuse
