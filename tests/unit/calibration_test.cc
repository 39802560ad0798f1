#include "core/calibration.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::latefuse::testing::TempDir;
using ::testing::HasSubstr;

// Tolerances against the references of tests/fixtures/calibration/ (see its
// README): fits are compared with these, applying a reference file with
// kApplyTolerance (the same formulas on the same numbers).
constexpr double kTemperatureTolerance = 1e-6;
constexpr double kPlattTolerance = 1e-6;
constexpr double kPlattOptimumTolerance = 1e-10;
constexpr double kIsotonicTolerance = 1e-9;
constexpr double kApplyTolerance = 1e-12;

fs::path FixtureDir() {
  return testing::SourceDir() / "tests" / "fixtures" / "calibration";
}

// A labelled [rows, C] table, row-major, as Fit and Apply take it.
struct Labelled {
  std::vector<double> probabilities;
  std::vector<std::int32_t> labels;
  std::size_t rows() const { return labels.size(); }
};

std::vector<double> Flatten(const nlohmann::json& rows) {
  std::vector<double> out;
  for (const nlohmann::json& row : rows) {
    for (const nlohmann::json& v : row) out.push_back(v.get<double>());
  }
  return out;
}

Labelled ReadLabelled(const nlohmann::json& part) {
  return {Flatten(part["probabilities"]),
          part["labels"].get<std::vector<std::int32_t>>()};
}

// One fixture folder: data.json, expected.json and the reference calibration
// files.
struct Fixture {
  std::string name;
  std::vector<std::string> classes;
  Labelled train;
  Labelled heldout;
  nlohmann::json expected;

  explicit Fixture(const std::string& folder) : name(folder) {
    const nlohmann::json data =
        ::latefuse::testing::ReadJson(FixtureDir() / folder / "data.json");
    classes = data["classes"].get<std::vector<std::string>>();
    train = ReadLabelled(data["train"]);
    heldout = ReadLabelled(data["heldout"]);
    expected =
        ::latefuse::testing::ReadJson(FixtureDir() / folder / "expected.json");
  }
  std::size_t C() const { return classes.size(); }
  fs::path File(CalibrationMethod method) const {
    return FixtureDir() / name /
           absl::StrCat(std::string(CalibrationMethodName(method)), ".json");
  }
  std::vector<double> ExpectedHeldout(CalibrationMethod method) const {
    return Flatten(
        expected["heldout"][std::string(CalibrationMethodName(method))]);
  }
};

const Fixture& GetFixture(const std::string& name) {
  static const Fixture* binary = new Fixture("binary");
  static const Fixture* multiclass = new Fixture("multiclass");
  return name == "binary" ? *binary : *multiclass;
}

double MaxAbsDifference(const std::vector<double>& a,
                        const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  return worst;
}

std::vector<double> Numbers(const nlohmann::json& value) {
  if (value.is_number()) return {value.get<double>()};
  std::vector<double> out;
  for (const nlohmann::json& v : value) {
    if (v.is_array()) {
      for (const nlohmann::json& w : v) out.push_back(w.get<double>());
    } else {
      out.push_back(v.get<double>());
    }
  }
  return out;
}

Calibrator FitOrDie(CalibrationMethod method, const Fixture& fixture) {
  absl::StatusOr<Calibrator> fitted = Calibrator::Fit(
      method, fixture.classes, fixture.train.probabilities.data(),
      fixture.train.labels.data(), fixture.train.rows());
  EXPECT_TRUE(fitted.ok()) << fitted.status();
  return *std::move(fitted);
}

std::vector<double> Applied(const Calibrator& calibrator,
                            std::vector<double> probabilities,
                            std::size_t rows) {
  calibrator.Apply(probabilities.data(), rows);
  return probabilities;
}

void ExpectRowsSumToOne(const std::vector<double>& p, std::size_t classes) {
  for (std::size_t r = 0; r * classes < p.size(); ++r) {
    double sum = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      const double v = p[r * classes + c];
      EXPECT_GE(v, 0.0) << "row " << r;
      EXPECT_LE(v, 1.0) << "row " << r;
      sum += v;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12) << "row " << r;
  }
}

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// ---------------------------------------------------------------------------
// Method names

TEST(CalibrationMethodTest, NamesRoundTrip) {
  for (CalibrationMethod method :
       {CalibrationMethod::kTemperature, CalibrationMethod::kPlatt,
        CalibrationMethod::kIsotonic}) {
    absl::StatusOr<CalibrationMethod> parsed =
        ParseCalibrationMethod(CalibrationMethodName(method));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, method);
  }
  EXPECT_EQ(CalibrationMethodName(CalibrationMethod::kTemperature),
            "temperature");
  EXPECT_EQ(CalibrationMethodName(CalibrationMethod::kPlatt), "platt");
  EXPECT_EQ(CalibrationMethodName(CalibrationMethod::kIsotonic), "isotonic");
}

TEST(CalibrationMethodTest, UnknownNameIsRejected) {
  absl::StatusOr<CalibrationMethod> parsed = ParseCalibrationMethod("Platt");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(parsed.status()), HasSubstr("'Platt'"));
  EXPECT_THAT(Message(parsed.status()),
              HasSubstr("temperature, platt or isotonic"));
}

// ---------------------------------------------------------------------------
// Against the scikit-learn / SciPy references, per fixture and method

class CalibrationReferenceTest
    : public ::testing::TestWithParam<
          std::tuple<std::string, CalibrationMethod>> {
 protected:
  const Fixture& fixture() const { return GetFixture(std::get<0>(GetParam())); }
  CalibrationMethod method() const { return std::get<1>(GetParam()); }
  nlohmann::json Reference() const {
    return ::latefuse::testing::ReadJson(fixture().File(method()));
  }
};

TEST_P(CalibrationReferenceTest, FitMatchesReference) {
  const Calibrator fitted = FitOrDie(method(), fixture());
  EXPECT_EQ(fitted.method(), method());
  const nlohmann::json ours = nlohmann::json::parse(fitted.ToJson());
  const nlohmann::json reference = Reference();
  EXPECT_EQ(ours["classes"], reference["classes"]);
  const std::vector<double> held = Applied(
      fitted, fixture().heldout.probabilities, fixture().heldout.rows());
  const double held_difference =
      MaxAbsDifference(held, fixture().ExpectedHeldout(method()));
  switch (method()) {
    case CalibrationMethod::kTemperature: {
      const double t = ours["temperature"].get<double>();
      const double t_ref = reference["temperature"].get<double>();
      EXPECT_NEAR(t, t_ref, kTemperatureTolerance);
      std::cout << fixture().name << " temperature: T " << t << ", |T - T_ref| "
                << std::abs(t - t_ref) << ", held-out max |p - p_ref| "
                << held_difference << "\n";
      EXPECT_LE(held_difference, kTemperatureTolerance);
      break;
    }
    case CalibrationMethod::kPlatt: {
      ASSERT_EQ(ours["a"].is_array(), fixture().C() > 2);
      const double a_difference =
          MaxAbsDifference(Numbers(ours["a"]), Numbers(reference["a"]));
      const double b_difference =
          MaxAbsDifference(Numbers(ours["b"]), Numbers(reference["b"]));
      EXPECT_LE(a_difference, kPlattTolerance);
      EXPECT_LE(b_difference, kPlattTolerance);
      // scikit-learn's BFGS stops at a gradient norm of 1e-5; against the
      // optimum itself (NumPy Newton) the fit is much closer.
      const nlohmann::json& newton = fixture().expected["platt_newton"];
      const double a_newton =
          MaxAbsDifference(Numbers(ours["a"]), Numbers(newton["a"]));
      const double b_newton =
          MaxAbsDifference(Numbers(ours["b"]), Numbers(newton["b"]));
      EXPECT_LE(a_newton, kPlattOptimumTolerance);
      EXPECT_LE(b_newton, kPlattOptimumTolerance);
      std::cout << fixture().name << " platt: max |a - a_ref| " << a_difference
                << ", max |b - b_ref| " << b_difference
                << " (to the Newton optimum: " << a_newton << ", " << b_newton
                << "), held-out max |p - p_ref| " << held_difference << "\n";
      EXPECT_LE(held_difference, kPlattTolerance);
      break;
    }
    case CalibrationMethod::kIsotonic: {
      // The thresholds are scikit-learn's X_thresholds_ exactly (they are
      // input values), and y_thresholds_ up to summation order.
      EXPECT_EQ(ours["x"], reference["x"]);
      const double y_difference =
          MaxAbsDifference(Numbers(ours["y"]), Numbers(reference["y"]));
      EXPECT_LE(y_difference, kIsotonicTolerance);
      std::cout << fixture().name << " isotonic: thresholds "
                << Numbers(ours["x"]).size() << ", max |y - y_ref| "
                << y_difference << ", held-out max |p - p_ref| "
                << held_difference << "\n";
      EXPECT_LE(held_difference, kIsotonicTolerance);
      break;
    }
  }
}

TEST_P(CalibrationReferenceTest, ReferenceFileAppliesAsScikitLearnPredicts) {
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(fixture().File(method()), method(), fixture().classes);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const std::vector<double> held = Applied(
      *loaded, fixture().heldout.probabilities, fixture().heldout.rows());
  EXPECT_LE(MaxAbsDifference(held, fixture().ExpectedHeldout(method())),
            kApplyTolerance);
}

TEST_P(CalibrationReferenceTest, FittedCalibratorLowersHeldOutEce) {
  const Labelled& held = fixture().heldout;
  const std::size_t C = fixture().C();
  const double before = ExpectedCalibrationError(
      held.probabilities.data(), held.labels.data(), held.rows(), C);
  const std::vector<double> calibrated =
      Applied(FitOrDie(method(), fixture()), held.probabilities, held.rows());
  const double after = ExpectedCalibrationError(
      calibrated.data(), held.labels.data(), held.rows(), C);
  const std::string method_name(CalibrationMethodName(method()));
  RecordProperty("ece_uncalibrated", absl::StrCat(before));
  RecordProperty("ece_calibrated", absl::StrCat(after));
  std::cout << fixture().name << " " << method_name
            << ": held-out ECE (15 bins) uncalibrated " << before
            << ", calibrated " << after << "\n";
  EXPECT_LT(after, before);
  EXPECT_LT(after, 0.5 * before);
  // The C++ ECE agrees with the NumPy one on identical inputs.
  EXPECT_NEAR(before,
              fixture().expected["heldout_ece_uncalibrated"].get<double>(),
              1e-12);
  const std::vector<double> reference_calibrated =
      fixture().ExpectedHeldout(method());
  EXPECT_NEAR(ExpectedCalibrationError(reference_calibrated.data(),
                                       held.labels.data(), held.rows(), C),
              fixture().expected["heldout_ece"][method_name].get<double>(),
              1e-12);
}

TEST_P(CalibrationReferenceTest, LoadOfToJsonRoundTripsExactly) {
  const Calibrator fitted = FitOrDie(method(), fixture());
  TempDir dir;
  const fs::path file = dir.Write("calibration.json", fitted.ToJson());
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(file, method(), fixture().classes);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->method(), method());
  EXPECT_EQ(loaded->ToJson(), fitted.ToJson());
  const Labelled& held = fixture().heldout;
  // Bit for bit: every parameter survived the text.
  EXPECT_EQ(Applied(*loaded, held.probabilities, held.rows()),
            Applied(fitted, held.probabilities, held.rows()));
}

TEST_P(CalibrationReferenceTest, ApplyKeepsRowsSummingToOne) {
  const Calibrator fitted = FitOrDie(method(), fixture());
  ExpectRowsSumToOne(Applied(fitted, fixture().heldout.probabilities,
                             fixture().heldout.rows()),
                     fixture().C());
  // Saturated and uniform rows too.
  const std::size_t C = fixture().C();
  std::vector<double> edges;
  for (std::size_t hot = 0; hot < C; ++hot) {
    for (std::size_t c = 0; c < C; ++c) edges.push_back(c == hot ? 1.0 : 0.0);
  }
  for (std::size_t c = 0; c < C; ++c) {
    edges.push_back(1.0 / static_cast<double>(C));
  }
  ExpectRowsSumToOne(Applied(fitted, edges, C + 1), C);
}

std::string ReferenceTestName(
    const ::testing::TestParamInfo<CalibrationReferenceTest::ParamType>& info) {
  return absl::StrCat(
      std::get<0>(info.param), "_",
      std::string(CalibrationMethodName(std::get<1>(info.param))));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CalibrationReferenceTest,
    ::testing::Combine(::testing::Values("binary", "multiclass"),
                       ::testing::Values(CalibrationMethod::kTemperature,
                                         CalibrationMethod::kPlatt,
                                         CalibrationMethod::kIsotonic)),
    ReferenceTestName);

// ---------------------------------------------------------------------------
// Semantics on small hand-made cases

absl::StatusOr<Calibrator> LoadText(const TempDir& dir, const std::string& text,
                                    CalibrationMethod method,
                                    const std::vector<std::string>& classes) {
  return Calibrator::Load(dir.Write("c.json", text), method, classes);
}

TEST(CalibratorTest, TemperatureSoftensProbabilities) {
  TempDir dir;
  absl::StatusOr<Calibrator> calibrator =
      LoadText(dir,
               R"({"format": "latefuse.calibration/v1", "method": "temperature",
          "classes": ["a", "b"], "temperature": 2})",
               CalibrationMethod::kTemperature, {"a", "b"});
  ASSERT_TRUE(calibrator.ok()) << calibrator.status();
  // softmax(log p / 2) = sqrt(p) normalised: (0.2, 0.8) -> (1/3, 2/3).
  std::vector<double> p = {0.2, 0.8, 0.0, 1.0};
  calibrator->Apply(p.data(), 2);
  EXPECT_NEAR(p[0], 1.0 / 3.0, 1e-15);
  EXPECT_NEAR(p[1], 2.0 / 3.0, 1e-15);
  // A zero is floored at 1e-12 before the log: sqrt(1e-12) = 1e-6.
  EXPECT_NEAR(p[2], 1e-6 / (1.0 + 1e-6), 1e-18);
  EXPECT_NEAR(p[3], 1.0 / (1.0 + 1e-6), 1e-15);
}

TEST(CalibratorTest, BinaryPlattUsesOnlyTheSecondClass) {
  TempDir dir;
  absl::StatusOr<Calibrator> calibrator =
      LoadText(dir,
               R"({"format": "latefuse.calibration/v1", "method": "platt",
          "classes": ["a", "b"], "a": 1, "b": 0.5})",
               CalibrationMethod::kPlatt, {"a", "b"});
  ASSERT_TRUE(calibrator.ok()) << calibrator.status();
  // P0 = 0.9 is ignored: P1' = sigmoid(logit(0.25) + 0.5).
  std::vector<double> p = {0.9, 0.25};
  calibrator->Apply(p.data(), 1);
  const double expected =
      1.0 / (1.0 + std::exp(-(std::log(0.25 / 0.75) + 0.5)));
  EXPECT_NEAR(p[1], expected, 1e-15);
  EXPECT_NEAR(p[0], 1.0 - expected, 1e-15);
}

TEST(CalibratorTest, IsotonicInterpolatesAndClips) {
  TempDir dir;
  absl::StatusOr<Calibrator> calibrator =
      LoadText(dir,
               R"({"format": "latefuse.calibration/v1", "method": "isotonic",
          "classes": ["a", "b"], "x": [0.2, 0.6, 0.8], "y": [0.1, 0.3, 0.9]})",
               CalibrationMethod::kIsotonic, {"a", "b"});
  ASSERT_TRUE(calibrator.ok()) << calibrator.status();
  std::vector<double> p = {0.6, 0.4, 1.0, 0.0, 0.0, 1.0, 0.3, 0.7};
  calibrator->Apply(p.data(), 4);
  EXPECT_NEAR(p[1], 0.2, 1e-15);  // halfway between 0.2 and 0.6
  EXPECT_NEAR(p[3], 0.1, 1e-15);  // below x_min: y of x_min
  EXPECT_NEAR(p[5], 0.9, 1e-15);  // above x_max: y of x_max
  EXPECT_NEAR(p[7], 0.6, 1e-15);  // halfway between 0.6 and 0.8
  EXPECT_NEAR(p[6], 0.4, 1e-15);
}

TEST(CalibratorTest, MulticlassRowWithNoMassBecomesUniform) {
  TempDir dir;
  absl::StatusOr<Calibrator> calibrator =
      LoadText(dir,
               R"({"format": "latefuse.calibration/v1", "method": "isotonic",
          "classes": ["a", "b", "c"],
          "x": [[0.0, 0.5], [0.0, 0.5], [0.0, 0.5]],
          "y": [[0.0, 0.0], [0.0, 0.6], [0.0, 0.2]]})",
               CalibrationMethod::kIsotonic, {"a", "b", "c"});
  ASSERT_TRUE(calibrator.ok()) << calibrator.status();
  std::vector<double> p = {1.0, 0.0, 0.0, 0.0, 0.5, 0.5};
  calibrator->Apply(p.data(), 2);
  EXPECT_THAT(std::vector<double>(p.begin(), p.begin() + 3),
              ::testing::Each(::testing::DoubleEq(1.0 / 3.0)));
  EXPECT_DOUBLE_EQ(p[3], 0.0);
  EXPECT_DOUBLE_EQ(p[4], 0.75);
  EXPECT_DOUBLE_EQ(p[5], 0.25);
}

TEST(CalibratorTest, IsotonicFitAveragesTiesAndDropsRedundantThresholds) {
  // The two rows at 0.3 become one point with label mean 0.5; 0.2 (label 1),
  // 0.3 (0.5) and 0.6 (0) violate and pool to 0.5; points whose y equals both
  // neighbours' (0.3 and 0.8) are dropped. scikit-learn 1.2.1 gives
  // X_thresholds_ [0.1 0.2 0.6 0.7 0.9], y_thresholds_ [0 0.5 0.5 1 1].
  const std::vector<double> p1 = {0.1, 0.2, 0.3, 0.3, 0.6, 0.7, 0.8, 0.9};
  const std::vector<std::int32_t> labels = {0, 1, 0, 1, 0, 1, 1, 1};
  std::vector<double> p;
  for (double v : p1) {
    p.push_back(1.0 - v);
    p.push_back(v);
  }
  absl::StatusOr<Calibrator> fitted =
      Calibrator::Fit(CalibrationMethod::kIsotonic, {"n", "y"}, p.data(),
                      labels.data(), labels.size());
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  const nlohmann::json json = nlohmann::json::parse(fitted->ToJson());
  EXPECT_EQ(json["x"], nlohmann::json({0.1, 0.2, 0.6, 0.7, 0.9}));
  EXPECT_EQ(json["y"], nlohmann::json({0.0, 0.5, 0.5, 1.0, 1.0}));
}

TEST(CalibratorTest, TemperatureFitOfUniformRowsIsOne) {
  const std::vector<double> p = {0.5, 0.5, 0.5, 0.5};
  const std::vector<std::int32_t> labels = {0, 1};
  absl::StatusOr<Calibrator> fitted = Calibrator::Fit(
      CalibrationMethod::kTemperature, {"a", "b"}, p.data(), labels.data(), 2);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(nlohmann::json::parse(fitted->ToJson())["temperature"], 1.0);
}

TEST(CalibratorTest, TemperatureFitOfSeparatedRowsStopsAtTheBound) {
  // Every top class right: the NLL keeps falling as T -> 0, so T = 0.01.
  const std::vector<double> p = {0.9, 0.1, 0.3, 0.7};
  const std::vector<std::int32_t> labels = {0, 1};
  absl::StatusOr<Calibrator> fitted = Calibrator::Fit(
      CalibrationMethod::kTemperature, {"a", "b"}, p.data(), labels.data(), 2);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(nlohmann::json::parse(fitted->ToJson())["temperature"], 0.01);
}

TEST(CalibratorTest, PlattFitOfOneClassIsFlatAtTheSmoothedTarget) {
  // Four negatives: every target is 1 / (4 + 2), which a = 0 and
  // b = logit(1/6) = log(1/5) fit exactly.
  const std::vector<double> p = {0.9, 0.1, 0.6, 0.4, 0.3, 0.7, 0.5, 0.5};
  const std::vector<std::int32_t> labels = {0, 0, 0, 0};
  absl::StatusOr<Calibrator> fitted = Calibrator::Fit(
      CalibrationMethod::kPlatt, {"a", "b"}, p.data(), labels.data(), 4);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  const nlohmann::json json = nlohmann::json::parse(fitted->ToJson());
  EXPECT_NEAR(json["a"].get<double>(), 0.0, 1e-12);
  EXPECT_NEAR(json["b"].get<double>(), std::log(0.2), 1e-12);
}

TEST(CalibratorTest, PlattFitOfConstantScoresPredictsTheSmoothedBaseRate) {
  // logit(P1) is the same on every row, so only a * f + b is identified: it
  // must give the mean smoothed target, (2 * 3/4 + 1 * 1/3) / 3.
  const std::vector<double> p = {0.4, 0.6, 0.4, 0.6, 0.4, 0.6};
  const std::vector<std::int32_t> labels = {1, 1, 0};
  absl::StatusOr<Calibrator> fitted = Calibrator::Fit(
      CalibrationMethod::kPlatt, {"a", "b"}, p.data(), labels.data(), 3);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  std::vector<double> row = {0.4, 0.6};
  fitted->Apply(row.data(), 1);
  EXPECT_NEAR(row[1], (2 * 0.75 + 1.0 / 3.0) / 3, 1e-9);
}

TEST(CalibratorTest, FitRejectsBadInput) {
  const std::vector<double> p = {0.4, 0.6, 0.7, 0.3};
  const std::vector<std::int32_t> labels = {0, 1};
  const std::vector<std::string> classes = {"a", "b"};
  absl::StatusOr<Calibrator> fitted;

  fitted = Calibrator::Fit(CalibrationMethod::kPlatt, classes, p.data(),
                           labels.data(), 0);
  ASSERT_FALSE(fitted.ok());
  EXPECT_THAT(Message(fitted.status()), HasSubstr("no labelled rows"));

  const std::vector<std::int32_t> bad_labels = {0, 2};
  fitted = Calibrator::Fit(CalibrationMethod::kPlatt, classes, p.data(),
                           bad_labels.data(), 2);
  ASSERT_FALSE(fitted.ok());
  EXPECT_EQ(fitted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(fitted.status()),
              HasSubstr("calibration fit (platt): row 1: label 2 is not a "
                        "class index in [0, 2)"));

  const std::vector<double> bad_p = {0.4, 0.6, std::nan(""), 0.3};
  fitted = Calibrator::Fit(CalibrationMethod::kIsotonic, classes, bad_p.data(),
                           labels.data(), 2);
  ASSERT_FALSE(fitted.ok());
  EXPECT_THAT(Message(fitted.status()),
              HasSubstr("row 1: probability of class 'a' is nan"));

  fitted = Calibrator::Fit(CalibrationMethod::kTemperature, {"only"}, p.data(),
                           labels.data(), 1);
  ASSERT_FALSE(fitted.ok());
  EXPECT_THAT(Message(fitted.status()), HasSubstr("at least 2 classes"));
}

// ---------------------------------------------------------------------------
// Load: wrong method or classes, bad files

TEST(CalibratorLoadTest, WrongMethodIsRejected) {
  const Fixture& fixture = GetFixture("binary");
  const fs::path file = fixture.File(CalibrationMethod::kPlatt);
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(file, CalibrationMethod::kIsotonic, fixture.classes);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(loaded.status()),
              HasSubstr(absl::StrCat("calibration file '", file.string(),
                                     "': method: the file holds a \"platt\" "
                                     "calibrator, the pipeline asks for "
                                     "\"isotonic\"")));
}

TEST(CalibratorLoadTest, ClassesInAnotherOrderAreRejected) {
  const Fixture& fixture = GetFixture("multiclass");
  absl::StatusOr<Calibrator> loaded = Calibrator::Load(
      fixture.File(CalibrationMethod::kTemperature),
      CalibrationMethod::kTemperature, {"green", "red", "blue"});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(
      Message(loaded.status()),
      HasSubstr("classes: [\"red\",\"green\",\"blue\"] do not match the "
                "pipeline's [\"green\",\"red\",\"blue\"]"));
}

TEST(CalibratorLoadTest, OtherClassesAreRejected) {
  const Fixture& fixture = GetFixture("binary");
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(fixture.File(CalibrationMethod::kIsotonic),
                       CalibrationMethod::kIsotonic, {"neg", "pos", "unsure"});
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(Message(loaded.status()), HasSubstr("classes: "));
  EXPECT_THAT(Message(loaded.status()), HasSubstr("do not match"));
}

TEST(CalibratorLoadTest, MissingFileIsNotFound) {
  TempDir dir;
  const fs::path file = dir.path() / "absent.json";
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(file, CalibrationMethod::kPlatt, {"a", "b"});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      Message(loaded.status()),
      HasSubstr(absl::StrCat("calibration file '", file.string(), "'")));
}

struct BadFile {
  std::string test_name;
  CalibrationMethod method;
  std::vector<std::string> classes;
  std::string text;
  std::string message;  // after "calibration file '<path>': "
};

class BadCalibrationFileTest : public ::testing::TestWithParam<BadFile> {};

TEST_P(BadCalibrationFileTest, IsRejectedNamingFileAndKey) {
  TempDir dir;
  const fs::path file = dir.Write("bad.json", GetParam().text);
  absl::StatusOr<Calibrator> loaded =
      Calibrator::Load(file, GetParam().method, GetParam().classes);
  ASSERT_FALSE(loaded.ok()) << "accepted:\n" << GetParam().text;
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(loaded.status()),
              HasSubstr(absl::StrCat("calibration file '", file.string(),
                                     "': ", GetParam().message)));
}

const std::string kHead2 =
    R"("format": "latefuse.calibration/v1", "classes": ["a", "b"], )";
const std::string kHead3 =
    R"("format": "latefuse.calibration/v1", "classes": ["a", "b", "c"], )";
const std::vector<std::string> kTwo = {"a", "b"};
const std::vector<std::string> kThree = {"a", "b", "c"};
constexpr CalibrationMethod kT = CalibrationMethod::kTemperature;
constexpr CalibrationMethod kP = CalibrationMethod::kPlatt;
constexpr CalibrationMethod kI = CalibrationMethod::kIsotonic;

INSTANTIATE_TEST_SUITE_P(
    Files, BadCalibrationFileTest,
    ::testing::Values(
        BadFile{"NotJson", kP, kTwo, "{\"a\": 1,",
                "not valid JSON: parse error at line 1, column 9"},
        BadFile{"NumberOverflow", kP, kTwo,
                "{" + kHead2 + R"("method": "platt", "a": 1e400, "b": 0})",
                "not valid JSON: number overflow parsing '1e400'"},
        BadFile{"NotAnObject", kP, kTwo, "[1, 2]", "expected a JSON object"},
        BadFile{"FormatMissing", kP, kTwo, R"({"method": "platt"})",
                "format: missing"},
        BadFile{"FormatWrong", kP, kTwo,
                R"({"format": "latefuse.linear/v1", "method": "platt"})",
                "format: expected \"latefuse.calibration/v1\", got "
                "\"latefuse.linear/v1\""},
        BadFile{"MethodNotAString", kP, kTwo, "{" + kHead2 + R"("method": 1})",
                "method: expected a string"},
        BadFile{"MethodUnknown", kP, kTwo,
                "{" + kHead2 + R"("method": "beta"})",
                "method: unknown method \"beta\""},
        BadFile{"ClassesNotStrings", kP, kTwo,
                R"({"format": "latefuse.calibration/v1", "method": "platt",
                    "classes": [1, 2], "a": 1, "b": 0})",
                "classes: expected an array of strings"},
        BadFile{"PlattSlopeNotANumber", kP, kTwo,
                "{" + kHead2 + R"("method": "platt", "a": "1", "b": 0})",
                "a: expected a number"},
        BadFile{"PlattBinaryGivenArray", kP, kTwo,
                "{" + kHead2 + R"("method": "platt", "a": [1, 1], "b": 0})",
                "a: expected a number (binary classes)"},
        BadFile{
            "PlattMulticlassWrongLength", kP, kThree,
            "{" + kHead3 + R"("method": "platt", "a": [1, 1, 1], "b": [0, 0]})",
            "b: expected an array of 3 numbers (one per class)"},
        BadFile{"PlattMulticlassElementNotANumber", kP, kThree,
                "{" + kHead3 +
                    R"("method": "platt", "a": [1, null, 1], "b": [0, 0, 0]})",
                "a[1]: expected a number"},
        BadFile{"PlattInterceptMissing", kP, kTwo,
                "{" + kHead2 + R"("method": "platt", "a": 1})", "b: missing"},
        BadFile{"UnknownKey", kP, kTwo,
                "{" + kHead2 +
                    R"("method": "platt", "a": 1, "b": 0, "temperature": 2})",
                "temperature: unknown key for a \"platt\" calibration file"},
        BadFile{"TemperatureNotPositive", kT, kTwo,
                "{" + kHead2 + R"("method": "temperature", "temperature": 0})",
                "temperature: expected a number > 0, got 0"},
        BadFile{
            "TemperatureNotANumber", kT, kTwo,
            "{" + kHead2 + R"("method": "temperature", "temperature": "2"})",
            "temperature: expected a number"},
        BadFile{"IsotonicXNotIncreasing", kI, kTwo,
                "{" + kHead2 +
                    R"("method": "isotonic", "x": [0.1, 0.5, 0.5],
                        "y": [0, 0.5, 1]})",
                "x[2]: expected more than the value before (0.5), got 0.5"},
        BadFile{
            "IsotonicYDecreasing", kI, kTwo,
            "{" + kHead2 +
                R"("method": "isotonic", "x": [0.1, 0.5], "y": [0.6, 0.5]})",
            "y[1]: expected at least the value before (0.6), got 0.5"},
        BadFile{"IsotonicYOutsideUnitInterval", kI, kTwo,
                "{" + kHead2 +
                    R"("method": "isotonic", "x": [0.1, 0.5], "y": [0, 1.5]})",
                "y[1]: expected a probability within [0, 1], got 1.5"},
        BadFile{"IsotonicLengthsDiffer", kI, kTwo,
                "{" + kHead2 +
                    R"("method": "isotonic", "x": [0.1, 0.5], "y": [0]})",
                "y: expected as many values as x (2), got 1"},
        BadFile{"IsotonicEmpty", kI, kTwo,
                "{" + kHead2 + R"("method": "isotonic", "x": [], "y": []})",
                "x: expected at least one threshold"},
        BadFile{"IsotonicMulticlassNotNested", kI, kThree,
                "{" + kHead3 +
                    R"("method": "isotonic", "x": [0.1, 0.5, 0.9],
                        "y": [[0], [0], [0]]})",
                "x[0]: expected an array of numbers"},
        BadFile{"IsotonicMulticlassBadElement", kI, kThree,
                "{" + kHead3 +
                    R"("method": "isotonic", "x": [[0.1], [0.2], [0.3, true]],
                        "y": [[0], [0], [0, 1]]})",
                "x[2][1]: expected a number"}),
    [](const ::testing::TestParamInfo<BadFile>& param_info) {
      return param_info.param.test_name;
    });

// ---------------------------------------------------------------------------
// ExpectedCalibrationError

TEST(ExpectedCalibrationErrorTest, MatchesAHandComputedValue) {
  // Confidences 0.9 (right), 0.9 (wrong) share bin (13/15, 14/15]: |0.5 -
  // 0.9|; 0.6 (right) alone in (8/15, 9/15]: |1 - 0.6|; (0.5, 0.5) predicts
  // class 0 (first argmax) with 0.5 in (7/15, 8/15]: |1 - 0.5|.
  const std::vector<double> p = {0.9, 0.1, 0.1, 0.9, 0.4, 0.6, 0.5, 0.5};
  const std::vector<std::int32_t> labels = {0, 0, 1, 0};
  EXPECT_NEAR(ExpectedCalibrationError(p.data(), labels.data(), 4, 2),
              (2 * 0.4 + 0.4 + 0.5) / 4, 1e-15);
  // One bin: |accuracy - mean confidence| = |3/4 - 0.725|.
  EXPECT_NEAR(ExpectedCalibrationError(p.data(), labels.data(), 4, 2, 1), 0.025,
              1e-15);
}

TEST(ExpectedCalibrationErrorTest, BinEdgesBelongToTheLowerBin) {
  // With 5 bins, 0.6 closes (0.4, 0.6] and shares it with 0.5: |1/2 - 0.55|.
  // Were it put in (0.6, 0.8], the ECE would be (0.4 + 0.5) / 2.
  const std::vector<double> p = {0.6, 0.4, 0.5, 0.5};
  const std::vector<std::int32_t> labels = {0, 1};
  EXPECT_NEAR(ExpectedCalibrationError(p.data(), labels.data(), 2, 2, 5), 0.05,
              1e-15);
}

TEST(ExpectedCalibrationErrorTest, NoRowsIsZero) {
  EXPECT_EQ(ExpectedCalibrationError(nullptr, nullptr, 0, 3), 0.0);
}

}  // namespace
}  // namespace latefuse
