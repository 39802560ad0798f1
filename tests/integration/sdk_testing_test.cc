// The SDK's test harness, <latefuse/testing.hpp>: the real plugin libraries
// run with no host, against scikit-learn's outputs in tests/fixtures (made by
// tests/fixtures/make_fixtures.py and make_tfidf_fixtures.py), and every check
// it makes as the host would. This program uses no host loader: a plugin keeps
// the host API of whoever called its entry point last, so one process should
// not load a plugin through both.
//
// Tolerance: 1e-12 absolute, the fixtures' own (see tests/fixtures/README.md).
// Worst differences observed (each test prints its own): linear/binary,
// linear/multiclass, linear/binary_noscaler and tfidf/unigram_binary 1.1e-16;
// fusion/mean 2.2e-16 and fusion/weighted_mean 1.1e-16 over 58 rows.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <latefuse/testing.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
namespace lft = sdk::testing;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-12;

fs::path Fixture(const std::string& name) {
  return testing::SourceDir() / "tests" / "fixtures" / name;
}

std::string ModelParams(const fs::path& model) {
  return json{{"model", model.string()}}.dump();
}

lft::Plugin LoadOrDie(const fs::path& path) {
  sdk::Result<lft::Plugin> plugin = lft::Plugin::Load(path);
  if (!plugin.ok()) {
    ADD_FAILURE() << plugin.status().message();
    std::abort();
  }
  return *plugin;
}

// The largest |got - expected| over every value; fails on a shape mismatch.
double WorstDifference(const lft::Matrix& got,
                       const std::vector<std::vector<double>>& expected) {
  EXPECT_EQ(got.rows, expected.size());
  double worst = 0.0;
  for (std::size_t r = 0; r < std::min(got.rows, expected.size()); ++r) {
    EXPECT_EQ(got.columns, expected[r].size());
    for (std::size_t c = 0; c < std::min(got.columns, expected[r].size());
         ++c) {
      worst = std::max(worst, std::abs(got.At(r, c) - expected[r][c]));
    }
  }
  return worst;
}

TEST(SdkTestingTest, LoadReadsTheDescriptor) {
  const lft::Plugin plugin = LoadOrDie(testing::PluginFile("linear"));
  EXPECT_EQ(plugin.info().name, "linear");
  EXPECT_EQ(plugin.info().version, "1.1.0");
  EXPECT_EQ(plugin.info().kind, LF_KIND_MODEL);
  EXPECT_EQ(plugin.info().abi_major, LATEFUSE_ABI_MAJOR);
  EXPECT_EQ(plugin.info().abi_minor, LATEFUSE_ABI_MINOR);
  EXPECT_THAT(plugin.info().description, HasSubstr("latefuse.linear/v1"));
  EXPECT_EQ(plugin.info().license, "Apache-2.0");
  EXPECT_THAT(plugin.info().build_info, HasSubstr("C++"));
}

TEST(SdkTestingTest, LinearModelMatchesScikitLearnInOneCall) {
  const lft::Plugin plugin = LoadOrDie(testing::PluginFile("linear"));
  for (const std::string name : {"binary", "multiclass", "binary_noscaler"}) {
    const fs::path dir = Fixture("linear") / name;
    const json cases = testing::ReadJson(dir / "cases.json");
    const auto classes = cases["classes"].get<std::vector<std::string>>();
    const auto inputs = cases["inputs"].get<std::vector<std::vector<float>>>();
    sdk::Result<lft::Model> model =
        plugin.CreateModel({ModelParams(dir / "model.json"), classes});
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_EQ(model->contract().input_kind, LF_INPUT_DENSE);
    EXPECT_EQ(model->contract().classes, classes);
    const std::size_t width = model->contract().input_width;
    ASSERT_EQ(width, inputs[0].size()) << name;

    std::vector<float> rows;
    for (const std::vector<float>& row : inputs) {
      rows.insert(rows.end(), row.begin(), row.end());
    }
    sdk::Result<lft::Matrix> p =
        model->InferDense(rows.data(), inputs.size(), width);
    ASSERT_TRUE(p.ok()) << p.status().message();
    const double worst = WorstDifference(
        *p, cases["expected"].get<std::vector<std::vector<double>>>());
    std::cout << "linear/" << name << ": worst difference " << worst << "\n";
    EXPECT_LE(worst, kTolerance) << name;
  }
}

TEST(SdkTestingTest, TextModelMatchesScikitLearn) {
  const lft::Plugin plugin = LoadOrDie(testing::PluginFile("tfidf_linear"));
  const fs::path dir = Fixture("tfidf") / "unigram_binary";
  const json cases = testing::ReadJson(dir / "cases.json");
  sdk::Result<lft::Model> model =
      plugin.CreateModel({ModelParams(dir / "model.json"),
                          cases["classes"].get<std::vector<std::string>>()});
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->contract().input_kind, LF_INPUT_TEXT);
  sdk::Result<lft::Matrix> p =
      model->InferText(cases["texts"].get<std::vector<std::string>>());
  ASSERT_TRUE(p.ok()) << p.status().message();
  const double worst = WorstDifference(
      *p, cases["expected"].get<std::vector<std::vector<double>>>());
  std::cout << "tfidf/unigram_binary: worst difference " << worst << "\n";
  EXPECT_LE(worst, kTolerance);
}

// tests/fixtures/fusion through the harness alone: each modality's `linear`
// model on its present rows, then the combiner on the [K, rows, C] block,
// against scikit-learn's VotingClassifier and NumPy's formula over the present
// modalities.
TEST(SdkTestingTest, CombinersFuseOnlyThePresentModalities) {
  const fs::path dir = Fixture("fusion");
  const std::vector<std::string> modalities = {"a", "b", "c"};
  const std::vector<std::string> classes = {"neg", "pos"};
  const std::vector<std::string> inputs =
      testing::ReadLines(dir / "input.jsonl");

  // Rows with at least one modality: the host abstains on the others.
  std::vector<json> records;
  for (const std::string& line : inputs) {
    json record = json::parse(line);
    bool any = false;
    for (const std::string& m : modalities) {
      any |= record["modalities"].contains(m) &&
             !record["modalities"][m].is_null();
    }
    if (any) records.push_back(std::move(record));
  }
  const std::size_t rows = records.size();
  const std::size_t k_count = modalities.size();
  const std::size_t c_count = classes.size();
  std::vector<double> block(k_count * rows * c_count, 0.0);
  std::vector<uint8_t> present(k_count * rows, 0);

  const lft::Plugin linear = LoadOrDie(testing::PluginFile("linear"));
  for (std::size_t k = 0; k < k_count; ++k) {
    const std::string& m = modalities[k];
    sdk::Result<lft::Model> model =
        linear.CreateModel({ModelParams(dir / (m + ".json")), classes});
    ASSERT_TRUE(model.ok()) << model.status().message();
    std::vector<float> values;
    std::vector<std::size_t> where;
    for (std::size_t r = 0; r < rows; ++r) {
      const json& x = records[r]["modalities"].value(m, json());
      if (x.is_null()) continue;
      for (const json& v : x) values.push_back(v.get<float>());
      where.push_back(r);
    }
    sdk::Result<lft::Matrix> p = model->InferDense(
        values.data(), where.size(), model->contract().input_width);
    ASSERT_TRUE(p.ok()) << p.status().message();
    for (std::size_t i = 0; i < where.size(); ++i) {
      present[k * rows + where[i]] = 1;
      std::copy(p->Row(i), p->Row(i) + c_count,
                block.begin() + static_cast<std::ptrdiff_t>(
                                    (k * rows + where[i]) * c_count));
    }
  }

  const json weights = testing::ReadJson(dir / "weights.json");
  for (const auto& [combiner_name, params] :
       {std::pair{std::string("mean"), std::string("{}")},
        std::pair{std::string("weighted_mean"),
                  json{{"weights", weights}}.dump()}}) {
    const lft::Plugin plugin = LoadOrDie(testing::PluginFile(combiner_name));
    sdk::Result<lft::Combiner> combiner =
        plugin.CreateCombiner({params, classes, modalities});
    ASSERT_TRUE(combiner.ok()) << combiner.status().message();
    EXPECT_TRUE(combiner->contract().explains);
    sdk::Result<lft::Fused> fused =
        combiner->Combine(block.data(), present.data(), rows, true);
    ASSERT_TRUE(fused.ok()) << fused.status().message();
    EXPECT_EQ(fused->explanation.rows, rows);
    EXPECT_EQ(fused->explanation.columns, k_count);

    std::map<std::string, std::vector<double>> expected;
    for (const std::string& line :
         testing::ReadLines(dir / ("expected_" + combiner_name + ".jsonl"))) {
      const json e = json::parse(line);
      if (e["probabilities"].is_null()) continue;
      expected[e["id"].get<std::string>()] = {e["probabilities"]["neg"],
                                              e["probabilities"]["pos"]};
    }
    std::vector<std::vector<double>> ordered;
    for (const json& record : records) {
      ordered.push_back(expected.at(record["id"].get<std::string>()));
    }
    const double worst = WorstDifference(fused->probabilities, ordered);
    std::cout << "fusion/" << combiner_name << ": worst difference " << worst
              << " over " << rows << " rows\n";
    EXPECT_LE(worst, kTolerance) << combiner_name;
    // A missing modality counts for nothing.
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t k = 0; k < k_count; ++k) {
        if (present[k * rows + r] == 0) {
          EXPECT_EQ(fused->explanation.At(r, k), 0.0) << combiner_name;
        }
      }
    }
  }
}

TEST(SdkTestingTest, EveryLoadCheckHasItsMessage) {
  const std::pair<std::string, std::string> cases[] = {
      {"no_entry", "no entry symbol 'latefuse_plugin_v1'"},
      {"abi_v2_only", "built for a newer ABI (major 2)"},
      {"abi_major", "built for ABI 2.0, but this SDK speaks ABI"},
      {"abi_minor", "newer than this SDK's"},
  };
  for (const auto& [name, message] : cases) {
    const fs::path path = testing::TestPluginDir() / (name + ".so");
    sdk::Result<lft::Plugin> plugin = lft::Plugin::Load(path);
    ASSERT_FALSE(plugin.ok()) << name;
    EXPECT_THAT(plugin.status().message(),
                HasSubstr("plugin '" + name + "' (" + path.string() + "): "));
    EXPECT_THAT(plugin.status().message(), HasSubstr(message));
  }
  sdk::Result<lft::Plugin> missing =
      lft::Plugin::Load(testing::TestPluginDir() / "nowhere.so");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no such file"));
}

TEST(SdkTestingTest, AGroupWritableLibraryIsRefusedAsTheHostWould) {
  testing::TempDir dir;
  const fs::path copy = dir.path() / "test_model.so";
  fs::copy_file(testing::TestPluginFile("test_model"), copy);
  fs::permissions(copy, fs::perms::group_write, fs::perm_options::add);
  sdk::Result<lft::Plugin> plugin = lft::Plugin::Load(copy);
  ASSERT_FALSE(plugin.ok());
  EXPECT_THAT(plugin.status().message(),
              HasSubstr("writable by group or others"));
}

TEST(SdkTestingTest, ModelErrorsSayWhatAndWhere) {
  const lft::Plugin plugin = LoadOrDie(testing::TestPluginFile("test_model"));
  const std::string prefix = "plugin 'test_model' (";
  const std::vector<std::string> classes = {"a", "b"};
  const std::vector<float> rows = {0.5f, -1.0f};

  sdk::Result<lft::Model> failing =
      plugin.CreateModel({R"({"fail_create": true})", classes});
  ASSERT_FALSE(failing.ok());
  EXPECT_THAT(failing.status().message(),
              HasSubstr("create failed: asked to fail (fail_create: true)"));

  sdk::Result<lft::Model> wrong_classes =
      plugin.CreateModel({R"({"classes": ["b", "a"]})", classes});
  ASSERT_FALSE(wrong_classes.ok());
  EXPECT_THAT(wrong_classes.status().message(),
              HasSubstr("describes classes [b, a], but the given classes are "
                        "[a, b]"));

  sdk::Result<lft::Model> model = plugin.CreateModel({"{}", classes});
  ASSERT_TRUE(model.ok()) << model.status().message();
  sdk::Result<lft::Matrix> wide = model->InferDense(rows.data(), 1, 2);
  ASSERT_FALSE(wide.ok());
  EXPECT_THAT(wide.status().message(),
              HasSubstr("its contract's input is dense of width 1, but the "
                        "batch is dense of width 2"));
  sdk::Result<lft::Matrix> text = model->InferText({"x"});
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(), HasSubstr("but the batch is text"));

  sdk::Result<lft::Model> refusing =
      plugin.CreateModel({R"({"fail": "negative"})", classes});
  ASSERT_TRUE(refusing.ok());
  sdk::Result<lft::Matrix> refused = refusing->InferDense(rows.data(), 2, 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(prefix));
  EXPECT_THAT(refused.status().message(),
              HasSubstr("infer failed: test_model refuses row 1"));

  sdk::Result<lft::Model> throwing =
      plugin.CreateModel({R"({"throw": true})", classes});
  ASSERT_TRUE(throwing.ok());
  sdk::Result<lft::Matrix> thrown = throwing->InferDense(rows.data(), 2, 1);
  ASSERT_FALSE(thrown.ok());
  EXPECT_THAT(thrown.status().message(),
              HasSubstr("unhandled exception: test_model was told to throw"));

  sdk::Result<lft::Model> nan =
      plugin.CreateModel({R"({"nan": true})", classes});
  ASSERT_TRUE(nan.ok());
  sdk::Result<lft::Matrix> bad = nan->InferDense(rows.data(), 2, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("infer: row 0: returned nan as a probability"));

  EXPECT_THAT(plugin.CreateCombiner({"{}", classes, {"x"}}).status().message(),
              HasSubstr("is a model, not a combiner"));
}

TEST(SdkTestingTest, RegressionChecksTheTask) {
  const lft::Plugin linear = LoadOrDie(testing::PluginFile("linear"));
  lft::InstanceOptions options;
  options.params_json =
      ModelParams(Fixture("linear") / "binary" / "model.json");
  options.task = LF_TASK_REGRESSION;
  sdk::Result<lft::Model> classifier = linear.CreateModel(options);
  ASSERT_FALSE(classifier.ok());
  EXPECT_THAT(classifier.status().message(), HasSubstr("create failed"));

  options.params_json = ModelParams(Fixture("regression") / "vitals.json");
  sdk::Result<lft::Model> regression = linear.CreateModel(options);
  ASSERT_TRUE(regression.ok()) << regression.status().message();
  EXPECT_TRUE(regression->contract().classes.empty());
  const std::vector<float> rows(regression->contract().input_width, 0.0f);
  sdk::Result<lft::Matrix> p =
      regression->InferDense(rows.data(), 1, rows.size());
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->columns, 2u);
  EXPECT_TRUE(std::isfinite(p->At(0, 0)));

  const lft::Plugin old =
      LoadOrDie(testing::TestPluginDir() / "abi_1_1_model.so");
  options.params_json = "{}";
  EXPECT_THAT(old.CreateModel(options).status().message(),
              HasSubstr("before regression pipelines (ABI 1.2)"));
}

TEST(SdkTestingTest, ACombinerRowWithNothingPresentIsRefused) {
  const lft::Plugin mean = LoadOrDie(testing::PluginFile("mean"));
  sdk::Result<lft::Combiner> combiner =
      mean.CreateCombiner({"{}", {"a", "b"}, {"x", "y"}});
  ASSERT_TRUE(combiner.ok()) << combiner.status().message();
  const std::vector<double> block = {0.2, 0.8, 0.4, 0.6, 0.6, 0.4, 0.1, 0.9};
  const std::vector<uint8_t> present = {1, 0, 1, 0};  // row 1: none
  sdk::Result<lft::Fused> fused =
      combiner->Combine(block.data(), present.data(), 2);
  ASSERT_FALSE(fused.ok());
  EXPECT_THAT(fused.status().message(),
              HasSubstr("row 1 has no modality present"));
}

}  // namespace
}  // namespace latefuse
