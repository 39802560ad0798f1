// The `xgboost` model plugin against xgboost's own predict_proba
// (tests/fixtures/xgboost, made by tests/fixtures/make_xgboost_fixtures.py with
// Debian's python3-xgboost 1.7.4, the same library the plugin links).
//
// Rows with NaN features cannot travel in host records (JSON has no NaN), so
// every row, NaN included, goes through the plugin's ABI directly (loaded as
// the host loads it); the rows without NaN also go through the real host with a
// pipeline.
//
// Tolerance: 1e-6 absolute. xgboost computes in float32 and predict_proba
// writes a binary model's P(class 0) as the float32 1 - p, where the plugin
// computes 1 - p in float64. Worst differences observed (each test prints its
// own), the same for JSON and UBJSON, NaN rows included: binary 2.98e-08
// (P(class 0) only; P(class 1) exact), multiclass 0 (exact), through the ABI
// and as the pipeline's per-modality output; after the `mean` combiner the
// multiclass rows differ by up to 7.9e-08 (xgboost's float32 softmax rows sum
// to 1 within ~1e-7, and the fused rows are made to sum to 1).
#include <latefuse/plugin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/host_api.h"
#include "core/plugin_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-6;

fs::path FixtureDir() {
  return testing::SourceDir() / "tests" / "fixtures" / "xgboost";
}

// A fixture's cases; NaN where the file has null.
struct Cases {
  std::vector<std::string> classes;
  std::size_t width = 0;
  std::vector<std::size_t> nan_rows;
  std::vector<std::vector<float>> inputs;
  std::vector<std::vector<double>> expected;
};

Cases ReadCases(const std::string& name) {
  const json file = testing::ReadJson(FixtureDir() / name / "cases.json");
  Cases cases;
  cases.classes = file["classes"].get<std::vector<std::string>>();
  cases.width = file["num_features"].get<std::size_t>();
  cases.nan_rows = file["nan_rows"].get<std::vector<std::size_t>>();
  for (const json& row : file["inputs"]) {
    std::vector<float> values;
    for (const json& v : row) {
      values.push_back(v.is_null() ? std::numeric_limits<float>::quiet_NaN()
                                   : v.get<float>());
    }
    cases.inputs.push_back(std::move(values));
  }
  cases.expected = file["expected"].get<std::vector<std::vector<double>>>();
  return cases;
}

// The plugin's model table, loaded as `latefuse plugins inspect` loads it.
const LfModelApi* XgboostApi() {
  absl::StatusOr<LoadedPlugin> plugin =
      LoadPluginFile(testing::PluginFile("xgboost"));
  EXPECT_TRUE(plugin.ok()) << plugin.status();
  if (!plugin.ok()) return nullptr;
  EXPECT_EQ(std::string(plugin->descriptor->name), "xgboost");
  EXPECT_EQ(plugin->descriptor->kind, LF_KIND_MODEL);
  return plugin->descriptor->model;
}

// What the host hands a model's create: a model has no modality names.
class ModelContext {
 public:
  ModelContext(const json& params, const std::vector<std::string>& classes)
      : params_(params.dump()),
        base_dir_(FixtureDir().string()),
        classes_(classes) {
    for (const std::string& c : classes_) labels_.push_back(c.c_str());
    context_ = LfCreateContext{};
    context_.struct_size = sizeof(LfCreateContext);
    context_.params_json = params_.data();
    context_.params_json_size = params_.size();
    context_.base_dir = base_dir_.c_str();
    context_.instance_name = "x";
    context_.num_classes = labels_.size();
    context_.class_labels = labels_.data();
    context_.task = LF_TASK_CLASSIFICATION;
  }
  const LfCreateContext* get() const { return &context_; }

 private:
  std::string params_;
  std::string base_dir_;
  std::vector<std::string> classes_;
  std::vector<const char*> labels_;
  LfCreateContext context_;
};

// An instance, destroyed at scope exit.
class Instance {
 public:
  static absl::StatusOr<std::unique_ptr<Instance>> Create(
      const LfModelApi& api, const json& params,
      const std::vector<std::string>& classes) {
    const ModelContext context(params, classes);
    void* handle = nullptr;
    absl::Status status =
        TakeStatus(api.create(context.get(), &handle), "create");
    if (!status.ok()) return status;
    return std::unique_ptr<Instance>(new Instance(api, handle));
  }
  ~Instance() { api_.destroy(handle_); }

  absl::StatusOr<LfModelContract> Describe() {
    LfModelContract contract{};
    contract.struct_size = sizeof(LfModelContract);
    absl::Status status =
        TakeStatus(api_.describe(handle_, &contract), "describe");
    if (!status.ok()) return status;
    return contract;
  }

  // [rows, classes] probabilities of `rows`, in one infer call.
  absl::StatusOr<std::vector<double>> Infer(
      const std::vector<std::vector<float>>& rows, std::size_t width,
      std::size_t classes) {
    std::vector<float> dense;
    for (const std::vector<float>& row : rows) {
      dense.insert(dense.end(), row.begin(), row.end());
    }
    const LfBatch batch{sizeof(LfBatch), LF_INPUT_DENSE, rows.size(),
                        width,           dense.data(),   nullptr};
    std::vector<double> out(rows.size() * classes,
                            std::numeric_limits<double>::quiet_NaN());
    LfProbabilities probabilities{sizeof(LfProbabilities), rows.size(), classes,
                                  out.data()};
    absl::Status status =
        TakeStatus(api_.infer(handle_, &batch, &probabilities), "infer");
    if (!status.ok()) return status;
    return out;
  }

 private:
  Instance(const LfModelApi& api, void* handle) : api_(api), handle_(handle) {}
  const LfModelApi& api_;
  void* handle_;
};

// Creates the plugin with `params` and returns the create error (OK if none).
absl::Status CreateError(const json& params,
                         const std::vector<std::string>& classes) {
  const LfModelApi* api = XgboostApi();
  if (api == nullptr) return absl::InternalError("no xgboost plugin");
  return Instance::Create(*api, params, classes).status();
}

// `s` as a YAML double-quoted scalar.
std::string Quoted(const std::string& s) { return json(s).dump(); }

// One xgboost modality `x` fused by `mean`.
std::string PipelineYaml(const std::vector<std::string>& classes,
                         std::size_t width, const json& params) {
  std::string yaml = "apiVersion: latefuse/v1\nname: xgboost\n";
  yaml += "task: classification\nclasses: " + json(classes).dump() + "\n";
  yaml += "plugin_dirs: [" + Quoted(testing::PluginDir().string()) + "]\n";
  yaml += "modalities:\n  - name: x\n";
  yaml += "    input: {kind: dense, size: " + std::to_string(width) + "}\n";
  yaml += "    model: {plugin: xgboost, params: " + params.dump() + "}\n";
  yaml += "combiner: {plugin: mean}\n";
  return yaml;
}

struct Fixture {
  std::string name;   // "binary" | "multiclass"
  std::string model;  // "model.json" | "model.ubj"
};

void PrintTo(const Fixture& fixture, std::ostream* os) {
  *os << fixture.name << "/" << fixture.model;
}

std::string FixtureName(const ::testing::TestParamInfo<Fixture>& info) {
  return info.param.name + "_" +
         (info.param.model == "model.json" ? "json" : "ubjson");
}

class XgboostReferenceTest : public ::testing::TestWithParam<Fixture> {
 protected:
  fs::path ModelPath() const {
    return FixtureDir() / GetParam().name / GetParam().model;
  }
};

TEST_P(XgboostReferenceTest, AbiInferEqualsXgboostPredictProbaWithNanRows) {
  const Cases cases = ReadCases(GetParam().name);
  ASSERT_EQ(cases.inputs.size(), 52u);
  ASSERT_EQ(cases.nan_rows.size(), 10u);
  const LfModelApi* api = XgboostApi();
  ASSERT_NE(api, nullptr);
  auto instance =
      Instance::Create(*api, {{"model", ModelPath().string()}}, cases.classes);
  ASSERT_TRUE(instance.ok()) << instance.status();
  absl::StatusOr<LfModelContract> contract = (*instance)->Describe();
  ASSERT_TRUE(contract.ok()) << contract.status();
  EXPECT_EQ(contract->input_kind, LF_INPUT_DENSE);
  EXPECT_EQ(contract->input_width, cases.width);
  ASSERT_EQ(contract->num_classes, cases.classes.size());
  for (std::size_t c = 0; c < cases.classes.size(); ++c) {
    EXPECT_EQ(std::string(contract->class_labels[c]), cases.classes[c]);
  }

  const std::size_t classes = cases.classes.size();
  double worst = 0.0;
  // All rows in one batch, then batches of 7 and of 1.
  for (const std::size_t batch_size :
       {std::size_t{52}, std::size_t{7}, std::size_t{1}}) {
    for (std::size_t begin = 0; begin < cases.inputs.size();
         begin += batch_size) {
      const std::size_t end = std::min(begin + batch_size, cases.inputs.size());
      const std::vector<std::vector<float>> rows(cases.inputs.begin() + begin,
                                                 cases.inputs.begin() + end);
      absl::StatusOr<std::vector<double>> p =
          (*instance)->Infer(rows, cases.width, classes);
      ASSERT_TRUE(p.ok()) << p.status();
      for (std::size_t r = begin; r < end; ++r) {
        double sum = 0.0;
        for (std::size_t c = 0; c < classes; ++c) {
          const double actual = (*p)[(r - begin) * classes + c];
          EXPECT_NEAR(actual, cases.expected[r][c], kTolerance)
              << GetParam().name << " row " << r << " class " << c
              << " (batch size " << batch_size << ")";
          worst = std::max(worst, std::abs(actual - cases.expected[r][c]));
          sum += actual;
        }
        EXPECT_NEAR(sum, 1.0, 1e-6) << "row " << r;
      }
    }
  }
  std::cout << "xgboost/" << GetParam().name << "/" << GetParam().model
            << ": worst absolute difference from predict_proba " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

TEST_P(XgboostReferenceTest,
       PipelineEqualsXgboostPredictProbaOnRowsWithoutNan) {
  const Cases cases = ReadCases(GetParam().name);
  testing::TempDir dir;
  std::unique_ptr<Pipeline> pipeline = testing::LoadPipelineOrFail(
      dir, PipelineYaml(cases.classes, cases.width,
                        {{"model", ModelPath().string()}}));
  ASSERT_NE(pipeline, nullptr);

  std::vector<std::string> lines;
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < cases.inputs.size(); ++i) {
    if (std::find(cases.nan_rows.begin(), cases.nan_rows.end(), i) !=
        cases.nan_rows.end()) {
      continue;
    }
    std::vector<double> values(cases.inputs[i].begin(), cases.inputs[i].end());
    lines.push_back(json{{"id", "case-" + std::to_string(i)},
                         {"modalities", {{"x", values}}}}
                        .dump());
    rows.push_back(i);
  }
  ASSERT_EQ(lines.size(), 42u);
  // One record with the modality missing: skipped, not a zero vector.
  lines.push_back(R"({"id": "none", "modalities": {"x": null}})");
  RunOptions options;
  options.output.per_modality = true;
  const std::vector<json> records =
      testing::RunLines(*pipeline, lines, options);
  ASSERT_EQ(records.size(), lines.size());

  double worst = 0.0;        // the model's own output
  double worst_fused = 0.0;  // after the `mean` combiner
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const json& record = records[k];
    ASSERT_EQ(record["status"], "ok") << record;
    EXPECT_EQ(record["used"], json::array({"x"}));
    for (std::size_t c = 0; c < cases.classes.size(); ++c) {
      const double want = cases.expected[rows[k]][c];
      const double model =
          record["modalities"]["x"][cases.classes[c]].get<double>();
      const double fused =
          record["probabilities"][cases.classes[c]].get<double>();
      EXPECT_NEAR(model, want, kTolerance)
          << "row " << rows[k] << " class " << cases.classes[c];
      EXPECT_NEAR(fused, want, kTolerance)
          << "row " << rows[k] << " class " << cases.classes[c];
      worst = std::max(worst, std::abs(model - want));
      worst_fused = std::max(worst_fused, std::abs(fused - want));
    }
  }
  EXPECT_EQ(records.back()["status"], "abstain") << records.back();
  EXPECT_EQ(records.back()["missing"], json::array({"x"}));
  std::cout << "xgboost/" << GetParam().name << "/" << GetParam().model
            << " through the host: worst absolute difference " << worst
            << " (model), " << worst_fused << " (fused by mean)\n";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, XgboostReferenceTest,
                         ::testing::Values(Fixture{"binary", "model.json"},
                                           Fixture{"binary", "model.ubj"},
                                           Fixture{"multiclass", "model.json"},
                                           Fixture{"multiclass", "model.ubj"}),
                         FixtureName);

// ---- Create refuses what it cannot run, with clear messages -------------

const std::vector<std::string> kThree = {"low", "medium", "high"};

TEST(XgboostCreateTest, PipelineWithWrongClassCountIsRefused) {
  testing::TempDir dir;
  const auto pipeline = testing::LoadPipelineText(
      dir, PipelineYaml(
               {"a", "b"}, 6,
               {{"model", (FixtureDir() / "multiclass/model.json").string()}}));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(pipeline.status().message(),
              HasSubstr("has 3 classes (objective multi:softprob), but the "
                        "pipeline has 2"));
  EXPECT_THAT(pipeline.status().message(), HasSubstr("multiclass/model.json"));
}

TEST(XgboostCreateTest, PipelineWithWrongWidthIsRefused) {
  testing::TempDir dir;
  const auto pipeline = testing::LoadPipelineText(
      dir, PipelineYaml(
               kThree, 5,
               {{"model", (FixtureDir() / "multiclass/model.ubj").string()}}));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(pipeline.status().message(), HasSubstr("6"));
}

TEST(XgboostCreateTest, MissingFileIsNotFoundNamingTheFile) {
  const absl::Status status =
      CreateError({{"model", "no/such/model.json"}}, kThree);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(status.message(), HasSubstr("cannot open model file"));
  EXPECT_THAT(status.message(), HasSubstr("no/such/model.json"));
}

TEST(XgboostCreateTest, FileThatIsNoModelIsRefusedNamingTheFile) {
  testing::TempDir dir;
  for (const std::string name : {"bad.json", "bad.ubj"}) {
    const fs::path path = dir.Write(name, "this is not a model\n");
    const absl::Status status = CreateError({{"model", path.string()}}, kThree);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr("model file '" + path.string()));
    EXPECT_THAT(status.message(), HasSubstr("not an XGBoost model"));
  }
}

TEST(XgboostCreateTest, SoftmaxObjectiveIsRefusedPointingToSoftprob) {
  const absl::Status status =
      CreateError({{"model", "unsupported/softmax.json"}}, kThree);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("multi:softmax"));
  EXPECT_THAT(status.message(), HasSubstr("use multi:softprob"));
}

TEST(XgboostCreateTest, RegressionObjectiveIsRefused) {
  const absl::Status status =
      CreateError({{"model", "unsupported/regression.json"}}, {"a", "b"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("unsupported objective 'reg:squarederror' (expected "
                        "binary:logistic or multi:softprob)"));
}

TEST(XgboostCreateTest, UnknownParameterIsRefused) {
  const absl::Status status =
      CreateError({{"model", "multiclass/model.json"}, {"threads", 2}}, kThree);
  EXPECT_THAT(status.message(), HasSubstr("params.threads: unknown parameter"));
}

// ---- nthread ---------------------------------------------------------------

TEST(XgboostThreadsTest, NthreadTwoGivesTheSameProbabilities) {
  const Cases cases = ReadCases("multiclass");
  const LfModelApi* api = XgboostApi();
  ASSERT_NE(api, nullptr);
  std::vector<std::vector<double>> results;
  for (const int nthread : {1, 2}) {
    auto instance = Instance::Create(
        *api, {{"model", "multiclass/model.ubj"}, {"nthread", nthread}},
        cases.classes);
    ASSERT_TRUE(instance.ok()) << instance.status();
    absl::StatusOr<std::vector<double>> p =
        (*instance)->Infer(cases.inputs, cases.width, cases.classes.size());
    ASSERT_TRUE(p.ok()) << p.status();
    results.push_back(*p);
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST(XgboostThreadsTest, NthreadThatIsNotAPositiveIntegerIsRefused) {
  for (const json& value : {json(0), json(-1), json(2.5), json("two")}) {
    const absl::Status status = CreateError(
        {{"model", "multiclass/model.json"}, {"nthread", value}}, kThree);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << value << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("params.nthread: expected"))
        << value;
  }
}

}  // namespace
}  // namespace latefuse
