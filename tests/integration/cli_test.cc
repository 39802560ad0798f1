// The built `latefuse` program, run as a user runs it: the demo pipeline over
// the demo records, `validate`, `plugins inspect`, `--help`, broken pipeline
// files and malformed input lines.
#include <latefuse/plugin.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

const std::vector<std::string> kModalities = {"vitals", "labs", "imaging",
                                              "notes", "wearable"};
// The demo combiner's weights (configs/demo/pipeline.yaml).
const std::map<std::string, double> kDemoWeights = {{"vitals", 1.0},
                                                    {"labs", 0.69},
                                                    {"imaging", 0.7},
                                                    {"notes", 0.59},
                                                    {"wearable", 0.44}};

fs::path DemoDir() { return testing::SourceDir() / "configs/demo"; }
fs::path DemoInput() { return DemoDir() / "data/patients.jsonl"; }

std::string Quote(const fs::path& path) {
  return testing::ShellQuote(path.string());
}

// Replaces every `from` in `text` with `to`; returns how many there were.
int ReplaceAll(std::string& text, const std::string& from,
               const std::string& to) {
  int count = 0;
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    ++count;
  }
  return count;
}

// The demo pipeline copied into `dir`, its plugin_dirs pointing at this build's
// plugins and its model paths made absolute, so that it does not depend on the
// source tree's build/ folder.
fs::path DemoPipeline(const testing::TempDir& dir) {
  std::string yaml = testing::ReadFile(DemoDir() / "pipeline.yaml");
  EXPECT_EQ(ReplaceAll(yaml, "plugin_dirs: [../../build/plugins]",
                       absl::StrCat("plugin_dirs: ['",
                                    testing::PluginDir().string(), "']")),
            1);
  EXPECT_EQ(
      ReplaceAll(yaml, "{model: models/",
                 absl::StrCat("{model: ", DemoDir().string(), "/models/")),
      5);
  return dir.Write("pipeline.yaml", yaml);
}

using Result = testing::CommandResult;

// Runs `latefuse <args>`.
Result Latefuse(const std::string& args) {
  return testing::RunProgram(testing::CliPath(), args);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<json> ParseLines(const std::string& text) {
  std::vector<json> records;
  for (const std::string& line : Lines(text)) {
    records.push_back(json::parse(line, nullptr, /*allow_exceptions=*/false));
    EXPECT_FALSE(records.back().is_discarded()) << "not JSON: " << line;
  }
  return records;
}

// What the demo input holds, read independently of the host.
struct DemoCounts {
  std::vector<std::string> ids;
  std::vector<std::set<std::string>> present;  // per row
  std::size_t none = 0;                        // rows with no modality
  std::map<std::string, std::size_t> present_rows;
};

DemoCounts ReadDemoInput() {
  DemoCounts counts;
  for (const std::string& line : testing::ReadLines(DemoInput())) {
    const json record = json::parse(line);
    counts.ids.push_back(record["id"]);
    std::set<std::string> present;
    for (const std::string& m : kModalities) {
      if (record["modalities"].contains(m) &&
          !record["modalities"][m].is_null()) {
        present.insert(m);
        ++counts.present_rows[m];
      }
    }
    if (present.empty()) ++counts.none;
    counts.present.push_back(std::move(present));
  }
  return counts;
}

// Every record of the demo run: same ids in the same order, the keys every
// record carries, used + missing = the pipeline's modalities.
void ExpectDemoRecords(const std::vector<json>& records,
                       const DemoCounts& input) {
  ASSERT_EQ(records.size(), input.ids.size());
  for (std::size_t r = 0; r < records.size(); ++r) {
    SCOPED_TRACE(absl::StrCat("output line ", r + 1));
    const json& record = records[r];
    ASSERT_TRUE(record.is_object());
    EXPECT_EQ(record["id"], input.ids[r]);
    for (const char* key : {"status", "used", "missing", "failed"}) {
      EXPECT_TRUE(record.contains(key)) << key;
    }
    std::set<std::string> used(record["used"].begin(), record["used"].end());
    std::set<std::string> missing(record["missing"].begin(),
                                  record["missing"].end());
    EXPECT_EQ(used, input.present[r]);
    EXPECT_EQ(used.size() + missing.size(), kModalities.size());
    EXPECT_TRUE(record["failed"].is_object() && record["failed"].empty());
    if (input.present[r].empty()) {
      EXPECT_EQ(record["status"], "abstain");
    } else {
      EXPECT_EQ(record["status"], "ok");
      const json& p = record["probabilities"];
      EXPECT_NEAR(p["stable"].get<double>() + p["deteriorating"].get<double>(),
                  1.0, 1e-12);
    }
  }
}

// The summary on stderr: rows, ok/abstain/error, presence per modality.
void ExpectDemoSummary(const std::string& err, const DemoCounts& input) {
  const std::size_t rows = input.ids.size();
  EXPECT_THAT(err, HasSubstr(absl::StrCat(
                       "pipeline 'icu-deterioration': ", rows, " rows")));
  EXPECT_THAT(err, HasSubstr(absl::StrCat(rows - input.none, " ok, ",
                                          input.none, " abstain, 0 error")));
  for (const std::string& m : kModalities) {
    const double percent = 100.0 *
                           static_cast<double>(input.present_rows.at(m)) /
                           static_cast<double>(rows);
    bool found = false;
    for (const std::string& line : Lines(err)) {
      if (absl::StrContains(line, absl::StrCat("  ", m, " "))) {
        found = true;
        EXPECT_THAT(line,
                    HasSubstr(absl::StrFormat("present %5.1f%%", percent)));
      }
    }
    EXPECT_TRUE(found) << "no summary line for " << m << " in:\n" << err;
  }
}

TEST(CliTest, RunWritesOneRecordPerInputLineInOrderAndASummary) {
  testing::TempDir dir;
  const fs::path pipeline = DemoPipeline(dir);
  const DemoCounts input = ReadDemoInput();
  ASSERT_EQ(input.ids.size(), 1000u);
  ASSERT_GT(input.none, 0u);  // the demo has rows that abstain

  const Result result = Latefuse(
      absl::StrCat("run ", Quote(pipeline), " --input ", Quote(DemoInput())));
  ASSERT_EQ(result.code, 0) << result.err;
  const std::vector<json> records = ParseLines(result.out);
  ExpectDemoRecords(records, input);
  ExpectDemoSummary(result.err, input);
  for (const json& record : records) {
    EXPECT_FALSE(record.contains("modalities"));
    EXPECT_FALSE(record.contains("weights"));
  }
}

TEST(CliTest, RunReadsStdinAndWritesAnOutputFile) {
  testing::TempDir dir;
  const fs::path pipeline = DemoPipeline(dir);
  const DemoCounts input = ReadDemoInput();
  const Result from_file = Latefuse(
      absl::StrCat("run ", Quote(pipeline), " --input ", Quote(DemoInput())));
  ASSERT_EQ(from_file.code, 0) << from_file.err;

  // Braces, so that this `<` wins over RunCommand's own `</dev/null`.
  Result from_stdin;
  from_stdin.code = testing::RunCommand(
      absl::StrCat("{ ", Quote(testing::CliPath()), " run ", Quote(pipeline),
                   " --input - < ", Quote(DemoInput()), "; }"),
      &from_stdin.out, &from_stdin.err);
  ASSERT_EQ(from_stdin.code, 0) << from_stdin.err;
  ExpectDemoRecords(ParseLines(from_stdin.out), input);
  ExpectDemoSummary(from_stdin.err, input);
  EXPECT_EQ(from_stdin.out, from_file.out);

  const fs::path output = dir.path() / "out.jsonl";
  const Result to_file =
      Latefuse(absl::StrCat("run ", Quote(pipeline), " --input ",
                            Quote(DemoInput()), " --output ", Quote(output)));
  ASSERT_EQ(to_file.code, 0) << to_file.err;
  EXPECT_THAT(to_file.out, IsEmpty());
  ExpectDemoSummary(to_file.err, input);
  const std::string written = testing::ReadFile(output);
  ExpectDemoRecords(ParseLines(written), input);
  EXPECT_EQ(written, from_file.out);
}

TEST(CliTest, QuietRunPrintsNoSummary) {
  testing::TempDir dir;
  const Result result =
      Latefuse(absl::StrCat("run ", Quote(DemoPipeline(dir)), " --input ",
                            Quote(DemoInput()), " --quiet"));
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(Lines(result.out).size(), 1000u);
  EXPECT_THAT(result.err, IsEmpty());
}

TEST(CliTest, PerModalityAndExplainAddProbabilitiesAndWeights) {
  testing::TempDir dir;
  const DemoCounts input = ReadDemoInput();
  const Result result =
      Latefuse(absl::StrCat("run ", Quote(DemoPipeline(dir)), " --input ",
                            Quote(DemoInput()), " --per-modality --explain"));
  ASSERT_EQ(result.code, 0) << result.err;
  const std::vector<json> records = ParseLines(result.out);
  ExpectDemoRecords(records, input);

  for (std::size_t r = 0; r < records.size(); ++r) {
    SCOPED_TRACE(absl::StrCat("output line ", r + 1));
    const json& record = records[r];
    ASSERT_TRUE(record.contains("modalities"));
    const json& per_modality = record["modalities"];
    std::set<std::string> with_probabilities;
    for (const auto& [name, p] : per_modality.items()) {
      with_probabilities.insert(name);
      EXPECT_NEAR(p["stable"].get<double>() + p["deteriorating"].get<double>(),
                  1.0, 1e-12);
    }
    EXPECT_EQ(with_probabilities, input.present[r]);
    if (record["status"] != "ok") {
      EXPECT_FALSE(record.contains("weights"));
      continue;
    }

    ASSERT_TRUE(record.contains("weights"));
    const json& weights = record["weights"];
    double used_total = 0;
    double configured_total = 0;
    for (const std::string& m : input.present[r]) {
      configured_total += kDemoWeights.at(m);
    }
    double fused = 0;
    for (const std::string& m : kModalities) {
      ASSERT_TRUE(weights.contains(m)) << m;
      const double w = weights[m].get<double>();
      if (input.present[r].count(m) == 0) {
        EXPECT_EQ(w, 0.0) << m << " is absent";
        continue;
      }
      used_total += w;
      // weighted_mean: the configured weights, renormalised over the present.
      EXPECT_NEAR(w, kDemoWeights.at(m) / configured_total, 1e-12) << m;
      fused += w * per_modality[m]["deteriorating"].get<double>();
    }
    EXPECT_NEAR(used_total, 1.0, 1e-12);
    EXPECT_NEAR(record["probabilities"]["deteriorating"].get<double>(), fused,
                1e-12);
  }
}

TEST(CliTest, ValidatePrintsThePlan) {
  testing::TempDir dir;
  const fs::path pipeline = DemoPipeline(dir);
  const Result result = Latefuse(absl::StrCat("validate ", Quote(pipeline)));
  ASSERT_EQ(result.code, 0) << result.err;

  const fs::path linear = fs::canonical(testing::PluginFile("linear"));
  const fs::path weighted_mean =
      fs::canonical(testing::PluginFile("weighted_mean"));
  absl::StatusOr<std::string> linear_sha = Sha256OfFile(linear.string());
  absl::StatusOr<std::string> combiner_sha =
      Sha256OfFile(weighted_mean.string());
  ASSERT_TRUE(linear_sha.ok()) << linear_sha.status();
  ASSERT_TRUE(combiner_sha.ok()) << combiner_sha.status();

  const std::string& plan = result.out;
  EXPECT_THAT(plan, StartsWith("pipeline 'icu-deterioration' ("));
  EXPECT_THAT(plan, HasSubstr("): OK"));
  for (const std::string& m : kModalities) {
    EXPECT_THAT(plan, HasSubstr(absl::StrCat("modality '", m, "'")));
  }
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("modality 'vitals': dense 12")));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("modality 'notes': text")));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("modality 'wearable': dense 6")));
  EXPECT_THAT(plan, HasSubstr("plugin:  linear 1.1.0 (ABI "));
  EXPECT_THAT(plan, HasSubstr("plugin:  tfidf_linear "));
  EXPECT_THAT(plan, HasSubstr("plugin:  xgboost "));
  EXPECT_THAT(plan, HasSubstr("constraint '^1.0'"));
  EXPECT_THAT(plan, HasSubstr("plugin:  weighted_mean "));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("file:    ", linear.string())));
  EXPECT_THAT(plan,
              HasSubstr(absl::StrCat("file:    ", weighted_mean.string())));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("sha256:  ", *linear_sha)));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("sha256:  ", *combiner_sha)));
  // One "chosen:" per plugin: five models and the combiner.
  std::size_t chosen = 0;
  for (const std::string& line : Lines(plan)) {
    if (absl::StrContains(line, "chosen:  ")) ++chosen;
  }
  EXPECT_EQ(chosen, 6u);
}

TEST(CliTest, ValidateOfABrokenPipelineFileNamesFileLineColumnAndKey) {
  testing::TempDir dir;
  const std::string head =
      "apiVersion: latefuse/v1\n"
      "name: broken\n"
      "task: classification\n"
      "classes: [stable, deteriorating]\n"
      "plugin_dirs: ['" +
      testing::PluginDir().string() +
      "']\n"
      "modalities:\n"
      "  - name: vitals\n";
  const std::string tail = "    model: {plugin: linear, params: {model: '" +
                           (DemoDir() / "models/vitals.json").string() +
                           "'}}\n"
                           "combiner: {plugin: mean}\n";

  // Line 8, column 32: the value "twelve".
  const fs::path twelve = dir.Write(
      "twelve.yaml", head + "    input: {kind: dense, size: twelve}\n" + tail);
  Result result = Latefuse(absl::StrCat("validate ", Quote(twelve)));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err,
              HasSubstr(absl::StrCat(twelve.string(),
                                     ":8:32: modalities[0].input.size: "
                                     "expected a positive integer, got "
                                     "\"twelve\"")));

  // Line 9, column 5: the key `colour`.
  const fs::path unknown = dir.Write(
      "unknown.yaml",
      head + "    input: {kind: dense, size: 12}\n    colour: blue\n" + tail);
  result = Latefuse(absl::StrCat("validate ", Quote(unknown)));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err,
              HasSubstr(absl::StrCat(unknown.string(),
                                     ":9:5: modalities[0].colour: unknown key "
                                     "'colour'")));

  // The same file, fixed, validates.
  const fs::path fixed = dir.Write(
      "fixed.yaml", head + "    input: {kind: dense, size: 12}\n" + tail);
  result = Latefuse(absl::StrCat("validate ", Quote(fixed)));
  EXPECT_EQ(result.code, 0) << result.err;
}

TEST(CliTest, PluginsInspectPrintsTheDescriptor) {
  const fs::path linear = testing::PluginFile("linear");
  const Result result =
      Latefuse(absl::StrCat("plugins inspect ", Quote(linear)));
  ASSERT_EQ(result.code, 0) << result.err;
  absl::StatusOr<std::string> sha = Sha256OfFile(linear.string());
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_THAT(result.out, HasSubstr("name:        linear\n"));
  EXPECT_THAT(result.out, HasSubstr("version:     1.1.0\n"));
  EXPECT_THAT(result.out, HasSubstr("kind:        model\n"));
  EXPECT_THAT(result.out, HasSubstr(absl::StrCat(
                              "abi:         ", LATEFUSE_ABI_MAJOR, ".")));
  EXPECT_THAT(result.out,
              HasSubstr(absl::StrCat("(this host: ", LATEFUSE_ABI_MAJOR, ".",
                                     LATEFUSE_ABI_MINOR, ")")));
  EXPECT_THAT(result.out, HasSubstr(absl::StrCat("sha256:      ", *sha)));

  const Result mean = Latefuse(
      absl::StrCat("plugins inspect ", Quote(testing::PluginFile("mean"))));
  ASSERT_EQ(mean.code, 0) << mean.err;
  EXPECT_THAT(mean.out, HasSubstr("kind:        combiner\n"));
}

TEST(CliTest, PluginsInspectOfAPluginWithoutEntrySymbolFails) {
  const fs::path broken = testing::TestPluginDir() / "no_entry.so";
  const Result result =
      Latefuse(absl::StrCat("plugins inspect ", Quote(broken)));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err,
              AllOf(HasSubstr(absl::StrCat("plugin 'no_entry' (",
                                           broken.string(), "): ")),
                    HasSubstr(absl::StrCat("no entry symbol '",
                                           LATEFUSE_ENTRY_SYMBOL, "'"))));
}

TEST(CliTest, HelpExitsZeroAndNamesTheOptions) {
  const Result top = Latefuse("--help");
  EXPECT_EQ(top.code, 0) << top.err;
  EXPECT_THAT(top.out, AllOf(HasSubstr("run"), HasSubstr("validate"),
                             HasSubstr("plugins"), HasSubstr("--version")));

  const Result run = Latefuse("run --help");
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out,
              AllOf(HasSubstr("--input"), HasSubstr("--output"),
                    HasSubstr("--batch-size"), HasSubstr("--per-modality"),
                    HasSubstr("--explain"), HasSubstr("--quiet")));

  const Result validate = Latefuse("validate --help");
  EXPECT_EQ(validate.code, 0) << validate.err;
  EXPECT_THAT(validate.out,
              AllOf(HasSubstr("pipeline"), HasSubstr("resolved plan")));

  const Result inspect = Latefuse("plugins inspect --help");
  EXPECT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_THAT(inspect.out,
              AllOf(HasSubstr("path"), HasSubstr("Plugin shared library")));

  const Result version = Latefuse("--version");
  EXPECT_EQ(version.code, 0) << version.err;
  EXPECT_THAT(version.out,
              HasSubstr(absl::StrCat("plugin ABI ", LATEFUSE_ABI_MAJOR, ".",
                                     LATEFUSE_ABI_MINOR)));
}

TEST(CliTest, MalformedInputLinesBecomeErrorRecordsInOrder) {
  testing::TempDir dir;
  const std::vector<std::string> demo = testing::ReadLines(DemoInput());
  const std::string good_1 = demo[0];  // p-0001
  const std::string good_2 = demo[1];  // p-0002
  const std::string lines[] = {
      good_1,
      R"({"id": "bad-json", "modalities": {"vitals": [1, 2,)",
      R"({"id": "short", "modalities": {"vitals": [1, 2, 3]}})",
      R"({"id": "xray", "modalities": {"xray": [1.0]}})",
      R"({"modalities": {"vitals": null}})",
      "",
      good_2,
  };
  std::string text;
  for (const std::string& line : lines) absl::StrAppend(&text, line, "\n");
  const fs::path input = dir.Write("input.jsonl", text);

  const Result result = Latefuse(absl::StrCat("run ", Quote(DemoPipeline(dir)),
                                              " --input ", Quote(input)));
  ASSERT_EQ(result.code, 0) << result.err;
  const std::vector<json> records = ParseLines(result.out);
  ASSERT_EQ(records.size(), std::size(lines));

  EXPECT_EQ(records[0]["id"], "p-0001");
  EXPECT_EQ(records[0]["status"], "ok");
  EXPECT_EQ(records[6]["id"], "p-0002");
  EXPECT_EQ(records[6]["status"], "ok");

  struct Expected {
    std::size_t line;  // 1-based
    json id;
    std::string error;
  };
  const Expected errors[] = {
      {2, "bad-json", "line 2: invalid JSON"},
      {3, "short", "line 3: modalities.vitals: expected 12 numbers, got 3"},
      {4, "xray",
       "line 4: modalities.xray: unknown modality (the pipeline has "},
      {5, nullptr, "line 5: missing \"id\""},
      {6, nullptr, "line 6: empty line"},
  };
  for (const Expected& e : errors) {
    SCOPED_TRACE(absl::StrCat("line ", e.line));
    const json& record = records[e.line - 1];
    EXPECT_EQ(record["status"], "error");
    EXPECT_EQ(record["id"], e.id);
    ASSERT_TRUE(record.contains("error"));
    EXPECT_THAT(record["error"].get<std::string>(), StartsWith(e.error));
    EXPECT_TRUE(record["probabilities"].is_null());
    EXPECT_THAT(record["used"], IsEmpty());
  }
  EXPECT_THAT(result.err, HasSubstr("7 rows"));
  EXPECT_THAT(result.err, HasSubstr("2 ok, 0 abstain, 5 error"));
}

TEST(CliTest, RunOfAPipelineThatFailsALoadCheckExitsOne) {
  testing::TempDir dir;
  std::string yaml = testing::ReadFile(DemoPipeline(dir));
  ASSERT_EQ(ReplaceAll(yaml, "plugin: weighted_mean", "plugin: linear"), 1);
  const fs::path pipeline = dir.Write("pipeline.yaml", yaml);
  const Result result = Latefuse(
      absl::StrCat("run ", Quote(pipeline), " --input ", Quote(DemoInput())));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.out, IsEmpty());
  EXPECT_THAT(result.err,
              AllOf(StartsWith("latefuse: error: plugin 'linear' ("),
                    HasSubstr("is a model plugin, but the pipeline uses it as "
                              "the combiner")));
}

}  // namespace
}  // namespace latefuse
