// The SDK's latefuse-plugin-harness program on the real plugin libraries:
// `describe` (what latefuse_add_plugin() writes manifests from) and `run`
// against scikit-learn's outputs in tests/fixtures/linear (made by
// tests/fixtures/make_fixtures.py), its errors for bad input, and the manifest
// the build wrote beside each in-tree plugin.
//
// Tolerance: 1e-12 absolute, the fixtures' own; the program prints doubles in
// their shortest round-trip form, so nothing is lost on the way. Worst
// differences observed: 1.1e-16 (linear/binary and linear/multiclass).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr double kTolerance = 1e-12;

using Result = testing::CommandResult;

std::string Quote(const std::string& text) { return testing::ShellQuote(text); }

// Runs `latefuse-plugin-harness <args>`.
Result Harness(const std::string& args) {
  return testing::RunProgram(testing::HarnessPath(), args);
}

fs::path LinearFixture(const std::string& name) {
  return testing::SourceDir() / "tests" / "fixtures" / "linear" / name;
}

std::string ModelParams(const fs::path& model) {
  return Quote(json{{"model", model.string()}}.dump());
}

TEST(PluginHarnessTest, HelpExplainsTheCommands) {
  const Result result = Harness("--help");
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("describe PLUGIN.so"));
  EXPECT_THAT(result.out, HasSubstr("run PLUGIN.so"));
  EXPECT_THAT(result.out, HasSubstr("one row per line"));
  EXPECT_EQ(Harness("").code, 2);
}

TEST(PluginHarnessTest, DescribePrintsTheDescriptor) {
  const fs::path linear = testing::PluginFile("linear");
  const Result result = Harness("describe " + Quote(linear.string()));
  ASSERT_EQ(result.code, 0) << result.err;
  const json described = json::parse(result.out);
  EXPECT_EQ(described["name"], "linear");
  EXPECT_EQ(described["version"], "1.1.0");
  EXPECT_EQ(described["kind"], "model");
  EXPECT_EQ(described["abi"], json({{"major", LATEFUSE_ABI_MAJOR},
                                    {"minor", LATEFUSE_ABI_MINOR}}));
  EXPECT_EQ(described["license"], "Apache-2.0");
  EXPECT_THAT(described["description"].get<std::string>(),
              HasSubstr("latefuse.linear/v1"));
  EXPECT_THAT(described["build"].get<std::string>(), HasSubstr("C++"));
  EXPECT_TRUE(described["contract"].is_null());

  const Result mean =
      Harness("describe " + Quote(testing::PluginFile("mean").string()) +
              " --params '{}' --classes a,b --modalities x,y");
  ASSERT_EQ(mean.code, 0) << mean.err;
  EXPECT_EQ(json::parse(mean.out)["kind"], "combiner");
  EXPECT_EQ(json::parse(mean.out)["contract"], json({{"explains", true}}));
}

TEST(PluginHarnessTest, DescribeWithParamsAddsTheContract) {
  const Result result = Harness(
      "describe " + Quote(testing::PluginFile("linear").string()) +
      " --params " + ModelParams(LinearFixture("multiclass") / "model.json"));
  ASSERT_EQ(result.code, 0) << result.err;
  const json contract = json::parse(result.out)["contract"];
  EXPECT_EQ(contract["input"], json({{"kind", "dense"}, {"size", 7}}));
  EXPECT_EQ(contract["classes"], json({"home", "icu", "theatre", "ward"}));
  EXPECT_EQ(contract["reports_variance"], false);

  const fs::path notes = testing::SourceDir() / "tests" / "fixtures" / "tfidf" /
                         "unigram_binary" / "model.json";
  const Result text = Harness(
      "describe " + Quote(testing::PluginFile("tfidf_linear").string()) +
      " --params " + ModelParams(notes));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(json::parse(text.out)["contract"]["input"],
            json({{"kind", "text"}}));
}

TEST(PluginHarnessTest, RunMatchesScikitLearn) {
  for (const std::string name : {"binary", "multiclass"}) {
    const json cases = testing::ReadJson(LinearFixture(name) / "cases.json");
    testing::TempDir dir;
    std::string rows;
    for (const json& input : cases["inputs"]) rows += input.dump() + "\n";
    const fs::path input = dir.Write("rows.jsonl", rows);
    const std::vector<std::string> classes = cases["classes"];
    std::string class_list;
    for (const std::string& c : classes) {
      class_list += (class_list.empty() ? "" : ",") + c;
    }
    const Result result = Harness(
        "run " + Quote(testing::PluginFile("linear").string()) + " --params " +
        ModelParams(LinearFixture(name) / "model.json") + " --classes " +
        class_list + " --input " + Quote(input.string()));
    ASSERT_EQ(result.code, 0) << result.err;
    EXPECT_THAT(result.err, IsEmpty());

    std::vector<std::string> lines;
    std::istringstream out(result.out);
    for (std::string line; std::getline(out, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), cases["inputs"].size());
    double worst = 0.0;
    for (std::size_t r = 0; r < lines.size(); ++r) {
      const std::vector<double> got = json::parse(lines[r]);
      const std::vector<double> expected = cases["expected"][r];
      ASSERT_EQ(got.size(), expected.size());
      for (std::size_t c = 0; c < got.size(); ++c) {
        worst = std::max(worst, std::abs(got[c] - expected[c]));
      }
    }
    std::cout << "linear/" << name << " through the harness: worst difference "
              << worst << "\n";
    EXPECT_LE(worst, kTolerance) << name;
  }
}

TEST(PluginHarnessTest, RunFusesWithACombiner) {
  testing::TempDir dir;
  const fs::path input = dir.Write("rows.jsonl",
                                   "{\"x\": [0.2, 0.8], \"y\": [0.6, "
                                   "0.4]}\n{\"y\": [0.1, 0.9], \"x\": null}\n");
  const Result result =
      Harness("run " + Quote(testing::PluginFile("weighted_mean").string()) +
              " --params '{\"weights\": {\"x\": 3, \"y\": 1}}' --classes a,b "
              "--modalities x,y --input " +
              Quote(input.string()));
  ASSERT_EQ(result.code, 0) << result.err;
  std::istringstream out(result.out);
  std::string first, second;
  std::getline(out, first);
  std::getline(out, second);
  const std::vector<double> p0 = json::parse(first);
  const std::vector<double> p1 = json::parse(second);
  // (3 * 0.2 + 1 * 0.6) / 4 = 0.3; the second row has y alone.
  EXPECT_NEAR(p0[0], 0.3, 1e-15);
  EXPECT_NEAR(p0[1], 0.7, 1e-15);
  EXPECT_NEAR(p1[0], 0.1, 1e-15);
  EXPECT_NEAR(p1[1], 0.9, 1e-15);
}

TEST(PluginHarnessTest, BadInputNamesTheLineAndWhatIsWrong) {
  const std::string run =
      "run " + Quote(testing::PluginFile("linear").string()) + " --params " +
      ModelParams(LinearFixture("binary_noscaler") / "model.json") +
      " --input ";
  const std::string good = "[1, 2, 3, 4]\n";
  const std::pair<std::string, std::string> cases[] = {
      {good + good + "[1, 2, 3]\n",
       "rows.jsonl:3: expected a dense row (the model's width), an array of "
       "4 numbers, got 3"},
      {good + "\"text\"\n",
       "rows.jsonl:2: expected a dense row (the model's width), an array of "
       "4 numbers, got string"},
      {good + "[1, 2, \"x\", 4]\n",
       "rows.jsonl:2: a dense row (the model's width)[2]: expected a number, "
       "got \"x\""},
      {"[1, 2, 3, 1e39]\n",
       "rows.jsonl:1: a dense row (the model's width)[3]: 1e+39 is not a "
       "finite float32"},
      {good + "[1, 2,\n", "rows.jsonl:2: column 7: not valid JSON"},
      {good + "\n" + good, "rows.jsonl:2: empty line (one row per line)"},
  };
  for (const auto& [rows, message] : cases) {
    testing::TempDir dir;
    const fs::path input = dir.Write("rows.jsonl", rows);
    const Result result = Harness(run + Quote(input.string()));
    EXPECT_EQ(result.code, 1) << rows;
    EXPECT_THAT(result.out, IsEmpty()) << rows;
    EXPECT_THAT(result.err, HasSubstr(message)) << rows;
  }
}

TEST(PluginHarnessTest, UsageAndPluginErrors) {
  const std::string linear = Quote(testing::PluginFile("linear").string());
  Result result = Harness("describe " + linear + " --colour blue");
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, HasSubstr("unknown option '--colour' for describe"));

  result = Harness("run " + linear + " --task ranking");
  EXPECT_EQ(result.code, 2);
  EXPECT_THAT(result.err, HasSubstr("--task: expected classification or "
                                    "regression, got 'ranking'"));

  result = Harness("run " + linear + " --params '{}' --input /dev/null");
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err, HasSubstr("plugin 'linear' ("));
  EXPECT_THAT(result.err, HasSubstr("create failed: params.model: missing"));

  const fs::path broken = testing::TestPluginDir() / "abi_minor.so";
  result = Harness("describe " + Quote(broken.string()));
  EXPECT_EQ(result.code, 1);
  EXPECT_THAT(result.err, HasSubstr("newer than this SDK's"));
}

// latefuse_add_plugin() wrote each in-tree plugin's manifest from its
// descriptor, with the library's hash.
TEST(PluginHarnessTest, TheBuildWroteEachPluginsManifest) {
  for (const std::string name : {"linear", "tfidf_linear", "xgboost", "remote",
                                 "mean", "weighted_mean", "stacking"}) {
    const fs::path library = testing::PluginFile(name);
    const fs::path folder = library.parent_path();
    const json manifest = testing::ReadJson(folder / "manifest.json");
    const json described =
        json::parse(Harness("describe " + Quote(library.string())).out);
    absl::StatusOr<std::string> sha = Sha256OfFile(library.string());
    ASSERT_TRUE(sha.ok()) << sha.status();
    EXPECT_EQ(manifest["format"], "latefuse.manifest/v1") << name;
    EXPECT_EQ(manifest["name"], name);
    EXPECT_EQ(manifest["version"], described["version"]) << name;
    EXPECT_EQ(folder.filename().string(), described["version"]) << name;
    EXPECT_EQ(manifest["kind"], described["kind"]) << name;
    EXPECT_EQ(manifest["abi"], described["abi"]) << name;
    EXPECT_EQ(manifest["library"], name + ".so");
    EXPECT_EQ(manifest["sha256"], *sha) << name;
    EXPECT_EQ(manifest["description"], described["description"]) << name;
    EXPECT_EQ(manifest["license"], described["license"]) << name;
    EXPECT_EQ(manifest["build"], described["build"]) << name;
    // In-tree plugins are generic (they read a model file): no fixed contract.
    EXPECT_TRUE(manifest["input"].is_null()) << name;
    EXPECT_TRUE(manifest["classes"].is_null()) << name;
    EXPECT_EQ(manifest.size(), 12u) << manifest.dump();
    for (const fs::path& path :
         {library, folder / "manifest.json", folder, folder.parent_path()}) {
      const fs::perms perms = fs::status(path).permissions();
      EXPECT_EQ(perms & (fs::perms::group_write | fs::perms::others_write),
                fs::perms::none)
          << path;
    }
  }
}

}  // namespace
}  // namespace latefuse
