// The `stacking` combiner, through the real host and the real plugin
// libraries, against the references in tests/fixtures/stacking (made by
// tests/fixtures/make_stacking_fixtures.py; see tests/fixtures/stacking/
// README.md): scikit-learn's StackingClassifier(cv="prefit") with every
// modality present, a NumPy implementation of DESIGN's formula for missing
// modalities, and scikit-learn's LogisticRegression for the fit, which is
// called through the ABI's `fit` as the host's `latefuse fit` calls it.
//
// Tolerance for probabilities and explanations: 1e-9 absolute (see
// reference_test.cc for why absolute). Worst differences observed (each test
// prints its own): StackingClassifier 1.1e-16 (binary), 2.2e-16 (multiclass);
// NumPy formula with missing modalities, probabilities and explanation,
// 2.2e-16 to 4.4e-16. Fit without dropout: held-out log loss within 2.1e-6
// (relative) of scikit-learn's lbfgs, coefficients within 4.9e-7 of the
// optimum (Newton-CG); scikit-learn's lbfgs itself is 4.7e-4 away from it.
#include <latefuse/plugin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
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

constexpr double kTolerance = 1e-9;
const std::vector<std::string> kModalities = {"a", "b", "c"};

fs::path FixtureDir() {
  return testing::SourceDir() / "tests" / "fixtures" / "stacking";
}

// A pipeline over the fixture's three linear modalities and the given
// combiner, written as JSON (which YAML reads as flow mappings).
std::string StackingPipeline(const fs::path& folder, const json& combiner) {
  const std::vector<std::size_t> widths = {5, 3, 4};
  json modalities = json::array();
  for (std::size_t k = 0; k < kModalities.size(); ++k) {
    modalities.push_back(
        {{"name", kModalities[k]},
         {"input", {{"kind", "dense"}, {"size", widths[k]}}},
         {"model",
          {{"plugin", "linear"},
           {"params",
            {{"model", (folder / (kModalities[k] + ".json")).string()}}}}}});
  }
  return json{
      {"apiVersion", "latefuse/v1"},
      {"name", "stacking"},
      {"task", "classification"},
      {"classes", testing::ReadJson(folder / "a.json")["classes"]},
      {"plugin_dirs", {testing::PluginDir().string()}},
      {"modalities", modalities},
      {"combiner", combiner},
      {"policy", {{"min_modalities", 1}, {"on_insufficient", "abstain"}}}}
      .dump(1);
}

json StackingCombiner(const fs::path& model) {
  return {{"plugin", "stacking"}, {"params", {{"model", model.string()}}}};
}

// Checks that two {name: number} objects have the same names and numbers
// within kTolerance; returns the larger of `worst` and their largest
// difference (infinite when the names differ).
double CheckClose(const json& got, const json& want, const std::string& where,
                  double worst) {
  double distance =
      got.is_object() && got.size() == want.size() ? 0.0 : INFINITY;
  for (auto it = want.begin(); it != want.end() && distance < INFINITY; ++it) {
    const auto found = got.find(it.key());
    distance = found == got.end() || !found->is_number()
                   ? INFINITY
                   : std::max(distance, std::abs(found->get<double>() -
                                                 it->get<double>()));
  }
  EXPECT_LE(distance, kTolerance)
      << where << ": got " << got << ", want " << want;
  return std::max(worst, distance);
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

// ---- Inference through the host ---------------------------------------

class StackingReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StackingReferenceTest,
       AllModalitiesPresentMatchesStackingClassifierPredictProba) {
  const fs::path folder = FixtureDir() / GetParam();
  const std::vector<std::string> lines =
      testing::ReadLines(folder / "input.jsonl");
  const std::vector<std::string> expected =
      testing::ReadLines(folder / "expected.jsonl");
  ASSERT_EQ(lines.size(), 40u);
  ASSERT_EQ(expected.size(), lines.size());

  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(
          dir,
          StackingPipeline(folder, StackingCombiner(folder / "stacking.json")));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const std::vector<json> records = testing::RunLines(**pipeline, lines);
  ASSERT_EQ(records.size(), lines.size());

  double worst = 0.0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json want = json::parse(expected[i]);
    const std::string where = GetParam() + " " + want["id"].dump();
    ASSERT_EQ(records[i]["id"], want["id"]);
    ASSERT_EQ(records[i]["status"], "ok") << where << ": " << records[i];
    EXPECT_EQ(records[i]["used"], json(kModalities)) << where;
    worst = CheckClose(records[i]["probabilities"], want["probabilities"],
                       where, worst);
  }
  std::cout << "stacking/" << GetParam()
            << ": worst absolute difference from StackingClassifier " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StackingReferenceTest,
                         ::testing::Values("binary", "multiclass"), CaseName);

struct MissingCase {
  std::string fixture;  // "binary" | "multiclass"
  std::string model;    // "stacking" | "stacking_indicators"
};

void PrintTo(const MissingCase& c, std::ostream* os) {
  *os << c.fixture << "/" << c.model;
}

std::string MissingCaseName(
    const ::testing::TestParamInfo<MissingCase>& case_info) {
  return case_info.param.fixture + "_" + case_info.param.model;
}

class StackingMissingTest : public ::testing::TestWithParam<MissingCase> {};

TEST_P(StackingMissingTest,
       MissingModalitiesTakeTheirFillAndIndicatorAsTheFormulaSays) {
  const MissingCase& param = GetParam();
  const fs::path folder = FixtureDir() / param.fixture;
  const std::vector<std::string> lines =
      testing::ReadLines(folder / "input_missing.jsonl");
  const std::vector<std::string> expected = testing::ReadLines(
      folder / ("expected_missing_" + param.model + ".jsonl"));
  ASSERT_EQ(lines.size(), 44u);
  ASSERT_EQ(expected.size(), lines.size());

  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(
          dir, StackingPipeline(
                   folder, StackingCombiner(folder / (param.model + ".json"))));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();

  // One batch, then batches of 5 that cut across the presence patterns.
  double worst = 0.0;
  for (const std::size_t batch_size : {std::size_t{256}, std::size_t{5}}) {
    RunOptions options;
    options.batch_size = batch_size;
    options.engine.explain = true;
    options.output.explain = true;
    const std::vector<json> records =
        testing::RunLines(**pipeline, lines, options);
    ASSERT_EQ(records.size(), lines.size());
    int abstained = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const json want = json::parse(expected[i]);
      const json& got = records[i];
      const std::string where = param.fixture + "/" + param.model + " " +
                                want["id"].dump() + " (batch size " +
                                std::to_string(batch_size) + ")";
      ASSERT_EQ(got["id"], want["id"]);
      EXPECT_EQ(got["used"], want["used"]) << where;
      EXPECT_EQ(got["missing"], want["missing"]) << where;
      if (want["probabilities"].is_null()) {
        ++abstained;
        EXPECT_EQ(got["status"], "abstain") << where << ": " << got;
        continue;
      }
      ASSERT_EQ(got["status"], "ok") << where << ": " << got;
      worst =
          CheckClose(got["probabilities"], want["probabilities"], where, worst);
      worst = CheckClose(got["weights"], want["weights"],
                         where + " explanation", worst);
    }
    EXPECT_EQ(abstained, 2) << "the fixture has two rows with no modality";
  }
  std::cout << param.fixture << "/" << param.model
            << ": worst absolute difference from the NumPy formula " << worst
            << "\n";
  RecordProperty("worst_difference", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, StackingMissingTest,
    ::testing::Values(MissingCase{"binary", "stacking"},
                      MissingCase{"binary", "stacking_indicators"},
                      MissingCase{"multiclass", "stacking"},
                      MissingCase{"multiclass", "stacking_indicators"}),
    MissingCaseName);

// ---- Bad parameter files ------------------------------------------------

struct BadFile {
  std::string name;
  std::string key;  // what to change in binary/stacking_indicators.json
  json value;       // its new value (null: remove the key)
  std::string message;
};

void PrintTo(const BadFile& file, std::ostream* os) { *os << file.name; }

std::string BadFileName(const ::testing::TestParamInfo<BadFile>& file) {
  return file.param.name;
}

class StackingBadFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(StackingBadFileTest, IsRejectedWithAMessageNamingTheKey) {
  const BadFile& param = GetParam();
  const fs::path folder = FixtureDir() / "binary";
  json file = testing::ReadJson(folder / "stacking_indicators.json");
  if (param.value.is_null()) {
    file.erase(param.key);
  } else {
    file[param.key] = param.value;
  }
  testing::TempDir dir;
  const fs::path model = dir.Write("bad.json", file.dump());
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(
          dir, StackingPipeline(folder, StackingCombiner(model)));
  ASSERT_FALSE(pipeline.ok());
  const std::string message(pipeline.status().message());
  EXPECT_THAT(message, HasSubstr("stacking file '" + model.string() + "': "));
  EXPECT_THAT(message, HasSubstr(param.message));
}

INSTANTIATE_TEST_SUITE_P(
    Files, StackingBadFileTest,
    ::testing::Values(
        BadFile{"WrongModalityOrder", "modalities", json{"a", "c", "b"},
                "modalities: [\"a\",\"c\",\"b\"] differ from the pipeline's "
                "modalities [\"a\",\"b\",\"c\"] (the coefficients follow the "
                "file's order"},
        BadFile{"OtherModalities", "modalities", json{"a", "b", "d"},
                "fill.c: not one of modalities"},
        BadFile{"WrongClassList", "classes", json{"pos", "neg"},
                "classes: [\"pos\",\"neg\"] differ from the pipeline's "
                "classes [\"neg\",\"pos\"]"},
        BadFile{"WrongCoefWidth", "coef", json{{1.0, 2.0, 3.0, 4.0, 5.0}},
                "coef[0]: expected a list of 6 values (3 modalities x 1 "
                "probability column + 3 missing indicators), got a list of 5"},
        BadFile{"TwoCoefRowsForTwoClasses", "coef",
                json{{1, 2, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6}},
                "coef: expected 1 row (binary: P(classes[1]) = expit(z)), got "
                "a list of 2"},
        BadFile{"IndicatorsOffForACoefWithThem", "missing_indicators", false,
                "coef[0]: expected a list of 3 values (3 modalities x 1 "
                "probability column), got a list of 6"},
        BadFile{"NonNumericCoef", "coef", json{{1, 2, "x", 4, 5, 6}},
                "coef[0][2]: expected a finite number, got \"x\""},
        BadFile{"InterceptTooLong", "intercept", json{0.1, 0.2},
                "intercept: expected a list of 1 value, one per coef row, got "
                "a list of 2"},
        BadFile{"FillMissingAModality", "fill",
                json{{"a", {0.5, 0.5}}, {"b", {0.5, 0.5}}},
                "fill.c: missing (every modality needs a fill)"},
        BadFile{"FillNotADistribution", "fill",
                json{{"a", {0.5, 0.6}}, {"b", {0.5, 0.5}}, {"c", {0.5, 0.5}}},
                "fill.a: probabilities sum to 1.1"},
        BadFile{"FillWrongLength", "fill",
                json{{"a", {1.0}}, {"b", {0.5, 0.5}}, {"c", {0.5, 0.5}}},
                "fill.a: expected a list of 2 probabilities (one per class), "
                "got a list of 1"},
        BadFile{"IndicatorsNotBoolean", "missing_indicators", "yes",
                "missing_indicators: expected true or false, got \"yes\""},
        BadFile{"WrongFormat", "format", "latefuse.linear/v1",
                "format: expected \"latefuse.stacking/v1\", got "
                "\"latefuse.linear/v1\""},
        BadFile{"UnknownKey", "scaler", json::object(),
                "unknown key 'scaler' (expected format, classes, modalities, "
                "missing_indicators, fill, coef, intercept)"},
        BadFile{"NoIntercept", "intercept", nullptr, "intercept: missing"}),
    BadFileName);

TEST(StackingParamsTest, UnknownParameterIsRejected) {
  const fs::path folder = FixtureDir() / "binary";
  testing::TempDir dir;
  json combiner = StackingCombiner(folder / "stacking.json");
  combiner["params"]["weights"] = {{"a", 1.0}};
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, StackingPipeline(folder, combiner));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(pipeline.status().message(),
              HasSubstr("params.weights: unknown parameter (expected model)"));
}

TEST(StackingParamsTest, MissingFileIsNamed) {
  const fs::path folder = FixtureDir() / "binary";
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(
          dir,
          StackingPipeline(folder, StackingCombiner(dir.path() / "no.json")));
  ASSERT_FALSE(pipeline.ok());
  EXPECT_THAT(pipeline.status().message(),
              HasSubstr("cannot open stacking file '" +
                        (dir.path() / "no.json").string() + "'"));
}

TEST(StackingParamsTest, ReadmePipelineLoadsTheFileRelativeToThePipeline) {
  const fs::path folder = FixtureDir() / "binary";
  testing::TempDir dir;
  dir.Write("fitted/stacking.json",
            testing::ReadFile(folder / "stacking.json"));
  const json combiner = {{"plugin", "stacking"},
                         {"params", {{"model", "fitted/stacking.json"}}},
                         {"fit", {{"l2_C", 1.0}, {"modality_dropout", 0.3}}}};
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      testing::LoadPipelineText(dir, StackingPipeline(folder, combiner));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const std::vector<json> records = testing::RunLines(
      **pipeline, {testing::ReadLines(folder / "input.jsonl")[0]});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["status"], "ok") << records[0];
}

// ---- Fit, through the ABI -------------------------------------------------

// One split of a fit fixture as the ABI carries it: [K, rows, C] probabilities
// (NaN where absent, so reading them would show), [K, rows] presence, labels.
struct Split {
  std::size_t modalities = 0;
  std::size_t rows = 0;
  std::size_t classes = 0;
  std::vector<double> probabilities;
  std::vector<std::uint8_t> present;
  std::vector<std::int32_t> labels;
};

Split ReadSplit(const json& split, std::size_t classes) {
  Split out;
  out.modalities = split["present"].size();
  out.rows = split["labels"].size();
  out.classes = classes;
  out.labels = split["labels"].get<std::vector<std::int32_t>>();
  out.probabilities.assign(out.modalities * out.rows * classes,
                           std::numeric_limits<double>::quiet_NaN());
  for (std::size_t k = 0; k < out.modalities; ++k) {
    for (std::size_t r = 0; r < out.rows; ++r) {
      out.present.push_back(split["present"][k][r].get<std::uint8_t>());
      const json& p = split["probabilities"][k][r];
      for (std::size_t c = 0; c < classes && !p.is_null(); ++c) {
        out.probabilities[(k * out.rows + r) * classes + c] = p[c];
      }
    }
  }
  return out;
}

// The in-tree stacking plugin's combiner table, loaded as the host loads it.
const LfCombinerApi* StackingApi() {
  absl::StatusOr<LoadedPlugin> plugin =
      LoadPluginFile(testing::PluginFile("stacking"));
  EXPECT_TRUE(plugin.ok()) << plugin.status();
  if (!plugin.ok()) return nullptr;
  EXPECT_EQ(std::string(plugin->descriptor->version), "1.0.0");
  return plugin->descriptor->combiner;
}

// A fit fixture: classes, modalities, the splits, scikit-learn's results.
struct FitFixture {
  std::vector<std::string> classes;
  std::vector<std::string> modalities;
  double l2_c = 1.0;
  Split train;
  Split heldout;
  json sklearn;
};

FitFixture ReadFitFixture(const std::string& name) {
  const json file = testing::ReadJson(FixtureDir() / (name + ".json"));
  FitFixture out;
  out.classes = file["classes"].get<std::vector<std::string>>();
  out.modalities = file["modalities"].get<std::vector<std::string>>();
  out.l2_c = file["l2_C"];
  out.train = ReadSplit(file["train"], out.classes.size());
  out.heldout = ReadSplit(file["heldout"], out.classes.size());
  out.sklearn = file["sklearn"];
  return out;
}

// Calls the plugin's fit with `options` as the pipeline's fit block.
absl::StatusOr<std::string> Fit(const FitFixture& fixture, const Split& split,
                                const json& options, std::uint64_t seed) {
  const LfCombinerApi* api = StackingApi();
  if (api == nullptr || api->fit == nullptr) {
    return absl::InternalError("stacking has no fit");
  }
  const testing::PluginContext context(options.dump(), testing::SourceDir(),
                                       fixture.classes, fixture.modalities);
  const LfFitData data{sizeof(LfFitData),
                       split.modalities,
                       split.rows,
                       split.classes,
                       split.probabilities.data(),
                       split.present.data(),
                       split.labels.data(),
                       seed};
  return testing::FitThroughAbi(*api, context, data);
}

// Creates the combiner from a fitted file, as the pipeline's params {model:
// PATH} would, and fuses the rows of `split` that have a modality present.
// Returns [rows, C] probabilities and the index of each row in `split`.
absl::StatusOr<std::vector<double>> FuseWithFile(
    const FitFixture& fixture, const std::string& text, const Split& split,
    std::vector<std::size_t>* kept) {
  const LfCombinerApi* api = StackingApi();
  if (api == nullptr) return absl::InternalError("no stacking plugin");
  testing::TempDir dir;
  dir.Write("fitted/stacking.json", text);
  const testing::PluginContext context(
      json{{"model", "fitted/stacking.json"}}.dump(), dir.path(),
      fixture.classes, fixture.modalities);
  void* instance = nullptr;
  absl::Status status =
      TakeStatus(api->create(context.get(), &instance), "create");
  if (!status.ok()) return status;

  kept->clear();
  for (std::size_t r = 0; r < split.rows; ++r) {
    for (std::size_t k = 0; k < split.modalities; ++k) {
      if (split.present[k * split.rows + r]) {
        kept->push_back(r);
        break;
      }
    }
  }
  const std::size_t n = kept->size(), K = split.modalities, C = split.classes;
  std::vector<double> probabilities(K * n * C);
  std::vector<std::uint8_t> present(K * n);
  for (std::size_t k = 0; k < K; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t r = (*kept)[i];
      present[k * n + i] = split.present[k * split.rows + r];
      std::copy_n(split.probabilities.data() + (k * split.rows + r) * C, C,
                  probabilities.data() + (k * n + i) * C);
    }
  }
  std::vector<double> fused(n * C);
  const LfCombineInput input{
      sizeof(LfCombineInput), K, n, C, probabilities.data(), present.data()};
  LfCombineOutput output{sizeof(LfCombineOutput), fused.data(), nullptr};
  status = TakeStatus(api->combine(instance, &input, &output), "combine");
  api->destroy(instance);
  if (!status.ok()) return status;
  return fused;
}

// Mean -log p(label) of fused rows.
double LogLoss(const std::vector<double>& fused, const Split& split,
               const std::vector<std::size_t>& rows) {
  double total = 0.0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    total -= std::log(fused[i * split.classes + split.labels[rows[i]]]);
  }
  return total / static_cast<double>(rows.size());
}

// The held-out split restricted to its rows with every modality present, then
// showing only the modalities in `subset` (a bit mask).
Split Subset(const Split& split, unsigned subset) {
  Split out = split;
  for (std::size_t r = 0; r < split.rows; ++r) {
    bool all = true;
    for (std::size_t k = 0; k < split.modalities; ++k) {
      all = all && split.present[k * split.rows + r] != 0;
    }
    for (std::size_t k = 0; k < split.modalities; ++k) {
      out.present[k * split.rows + r] = all && ((subset >> k) & 1u) != 0;
    }
  }
  return out;
}

// Largest difference between the coef and intercept values of two files.
double LargestDifference(const json& a, const json& b) {
  double worst = 0.0;
  EXPECT_EQ(a["coef"].size(), b["coef"].size());
  for (std::size_t o = 0; o < a["coef"].size(); ++o) {
    EXPECT_EQ(a["coef"][o].size(), b["coef"][o].size());
    for (std::size_t j = 0; j < a["coef"][o].size(); ++j) {
      worst = std::max(worst, std::abs(a["coef"][o][j].get<double>() -
                                       b["coef"][o][j].get<double>()));
    }
    worst = std::max(worst, std::abs(a["intercept"][o].get<double>() -
                                     b["intercept"][o].get<double>()));
  }
  return worst;
}

class StackingFitTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StackingFitTest, WithoutDropoutHeldOutLogLossMatchesScikitLearn) {
  const FitFixture fixture = ReadFitFixture(GetParam());
  absl::StatusOr<std::string> text =
      Fit(fixture, fixture.train,
          {{"l2_C", fixture.l2_c}, {"modality_dropout", 0.0}}, 1);
  ASSERT_TRUE(text.ok()) << text.status();

  const json fitted = json::parse(*text);
  const json& reference = fixture.sklearn["model"];
  EXPECT_EQ(fitted["format"], "latefuse.stacking/v1");
  EXPECT_EQ(fitted["classes"], reference["classes"]);
  EXPECT_EQ(fitted["modalities"], reference["modalities"]);
  EXPECT_EQ(fitted["missing_indicators"], true);
  // The fill is the training prior, computed as scikit-learn's side did.
  EXPECT_EQ(fitted["fill"], reference["fill"]);
  // scikit-learn's lbfgs stops on scipy's relative-decrease test with a
  // gradient near 1e-5; the optimum itself is Newton-CG's (gradient < 1e-8).
  const double from_lbfgs = LargestDifference(fitted, reference);
  const double from_optimum =
      LargestDifference(fitted, fixture.sklearn["optimum"]);
  EXPECT_LT(from_optimum, 1e-6);

  std::vector<std::size_t> rows;
  absl::StatusOr<std::vector<double>> fused =
      FuseWithFile(fixture, *text, fixture.heldout, &rows);
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_EQ(rows.size(), fixture.sklearn["heldout_rows"].get<std::size_t>());
  const double ours = LogLoss(*fused, fixture.heldout, rows);
  const double theirs = fixture.sklearn["heldout_log_loss"].get<double>();
  EXPECT_LT(std::abs(ours - theirs), 0.01 * theirs);
  std::cout << GetParam() << ": held-out log loss " << ours << ", scikit-learn "
            << theirs << " (relative difference "
            << std::abs(ours - theirs) / theirs
            << "); largest coef/intercept difference from its lbfgs "
            << from_lbfgs << ", from the optimum (Newton-CG) " << from_optimum
            << "\n";
  RecordProperty("heldout_log_loss", std::to_string(ours));
  RecordProperty("sklearn_heldout_log_loss", std::to_string(theirs));
}

TEST_P(StackingFitTest, WithDropoutTheFittedFileFusesEverySubset) {
  const FitFixture fixture = ReadFitFixture(GetParam());
  absl::StatusOr<std::string> text =
      Fit(fixture, fixture.train, {{"l2_C", fixture.l2_c}}, 7);
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<std::string> without =
      Fit(fixture, fixture.train,
          {{"l2_C", fixture.l2_c}, {"modality_dropout", 0.0}}, 7);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_NE(*text, *without) << "dropout changes what is learnt";

  const double prior = fixture.sklearn["prior_log_loss"].get<double>();
  const unsigned all = (1u << fixture.modalities.size()) - 1;
  for (unsigned subset = 1; subset <= all; ++subset) {
    const Split split = Subset(fixture.heldout, subset);
    std::vector<std::size_t> rows;
    absl::StatusOr<std::vector<double>> fused =
        FuseWithFile(fixture, *text, split, &rows);
    ASSERT_TRUE(fused.ok()) << fused.status();
    ASSERT_GT(rows.size(), 100u);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double sum = 0.0;
      for (std::size_t c = 0; c < split.classes; ++c) {
        const double p = (*fused)[i * split.classes + c];
        ASSERT_TRUE(p > 0.0 && p < 1.0) << "subset " << subset << " row " << i;
        sum += p;
      }
      ASSERT_NEAR(sum, 1.0, 1e-12);
    }
    const double loss = LogLoss(*fused, split, rows);
    std::cout << GetParam() << ": modalities {";
    for (std::size_t k = 0; k < fixture.modalities.size(); ++k) {
      if ((subset >> k) & 1u) std::cout << " " << fixture.modalities[k];
    }
    std::cout << " }: held-out log loss " << loss << " (prior " << prior
              << ")\n";
    EXPECT_LT(loss, prior) << "subset " << subset;
  }
}

TEST_P(StackingFitTest, SameSeedGivesAByteIdenticalFile) {
  const FitFixture fixture = ReadFitFixture(GetParam());
  const json options = {{"l2_C", fixture.l2_c}, {"modality_dropout", 0.3}};
  absl::StatusOr<std::string> first = Fit(fixture, fixture.train, options, 42);
  absl::StatusOr<std::string> second = Fit(fixture, fixture.train, options, 42);
  absl::StatusOr<std::string> other = Fit(fixture, fixture.train, options, 43);
  ASSERT_TRUE(first.ok() && second.ok() && other.ok()) << first.status();
  EXPECT_EQ(*first, *second);
  EXPECT_NE(*first, *other) << "the seed drives the dropout";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StackingFitTest,
                         ::testing::Values("fit_binary", "fit_multiclass"),
                         CaseName);

TEST(StackingFitOptionsTest, BadOptionsAndDataAreRejected) {
  const FitFixture fixture = ReadFitFixture("fit_binary");
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"l2_c", 1.0}},
       "params.l2_c: unknown fit option (expected l2_C, missing_indicators, "
       "modality_dropout, dropout_copies, model_path_hint)"},
      {{{"l2_C", 0.0}}, "params.l2_C: expected a positive number, got 0.0"},
      {{{"modality_dropout", 1.0}},
       "params.modality_dropout: expected a probability in [0, 1), got 1.0"},
      {{{"dropout_copies", 2.5}},
       "params.dropout_copies: expected an integer from 0 to 1000, got 2.5"},
      {{{"missing_indicators", "no"}},
       "params.missing_indicators: expected a boolean"},
  };
  for (const auto& [options, message] : cases) {
    absl::StatusOr<std::string> text = Fit(fixture, fixture.train, options, 1);
    ASSERT_FALSE(text.ok()) << options;
    EXPECT_THAT(text.status().message(), HasSubstr(message)) << options;
  }
  // model_path_hint is the host's business and is ignored.
  EXPECT_TRUE(Fit(fixture, fixture.train,
                  {{"model_path_hint", "fitted/stacking.json"}}, 1)
                  .ok());

  Split bad = fixture.train;
  bad.labels[3] = 2;
  absl::StatusOr<std::string> text = Fit(fixture, bad, json::object(), 1);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(),
              HasSubstr("fit: row 3 has label index 2, not one of the 2 "
                        "classes"));

  Split none = fixture.train;
  std::fill(none.present.begin(), none.present.end(), 0);
  text = Fit(fixture, none, json::object(), 1);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.status().message(),
              HasSubstr("fit: no row has any modality present"));
}

}  // namespace
}  // namespace latefuse
