// The metrics of `latefuse eval` against scikit-learn's numbers
// (tests/fixtures/eval/, made by tests/fixtures/make_eval_fixtures.py), and
// the bootstrap's resampling.
#include "core/metrics.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/calibration.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

constexpr double kTolerance = 1e-9;

struct Case {
  std::size_t classes = 0;
  std::vector<double> probabilities;
  std::vector<std::int32_t> labels;
  std::vector<double> weights;
  nlohmann::json expected;
  nlohmann::json expected_weighted;
};

Case LoadCase(const std::string& name) {
  const nlohmann::json json =
      testing::ReadJson(testing::SourceDir() / "tests/fixtures/eval" / name);
  Case c;
  c.classes = json["classes"].size();
  for (const auto& row : json["probabilities"])
    for (const auto& v : row) c.probabilities.push_back(v.get<double>());
  for (const auto& v : json["labels"])
    c.labels.push_back(v.get<std::int32_t>());
  for (const auto& v : json["weights"]) c.weights.push_back(v.get<double>());
  c.expected = json["expected"];
  c.expected_weighted = json["expected_weighted"];
  return c;
}

// Worst absolute difference over the metrics, each checked to 1e-9.
double ExpectMatches(const MetricValues& values, const nlohmann::json& expected,
                     const std::string& what) {
  double worst = 0.0;
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    const std::string name(kMetricNames[m]);
    SCOPED_TRACE(what + " " + name);
    EXPECT_TRUE(expected.contains(name));
    if (!expected.contains(name)) continue;
    if (expected[name].is_null()) {
      EXPECT_TRUE(std::isnan(values[m]));
      continue;
    }
    const double diff = std::abs(values[m] - expected[name].get<double>());
    EXPECT_LE(diff, kTolerance) << values[m] << " vs " << expected[name];
    worst = std::max(worst, diff);
  }
  return worst;
}

class MetricsFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MetricsFixtureTest, MatchScikitLearn) {
  const Case c = LoadCase(GetParam());
  Scorer scorer(c.probabilities.data(), c.labels.data(), c.labels.size(),
                c.classes);
  const double worst = ExpectMatches(scorer.Score(), c.expected, "unweighted");
  std::printf("%s: worst difference from scikit-learn %.3g\n", GetParam(),
              worst);
}

TEST_P(MetricsFixtureTest, WeightsMatchScikitLearnSampleWeight) {
  const Case c = LoadCase(GetParam());
  Scorer scorer(c.probabilities.data(), c.labels.data(), c.labels.size(),
                c.classes);
  const double worst = ExpectMatches(scorer.Score(c.weights.data()),
                                     c.expected_weighted, "weighted");
  std::printf("%s: worst weighted difference from scikit-learn %.3g\n",
              GetParam(), worst);
}

// A bootstrap replicate scored by weights is the replicate's rows scored
// whole.
TEST_P(MetricsFixtureTest, WeightsEqualRepeatedRows) {
  const Case c = LoadCase(GetParam());
  std::vector<double> p;
  std::vector<std::int32_t> labels;
  for (std::size_t r = 0; r < c.labels.size(); ++r) {
    for (int i = 0; i < static_cast<int>(c.weights[r]); ++i) {
      p.insert(p.end(), c.probabilities.begin() + r * c.classes,
               c.probabilities.begin() + (r + 1) * c.classes);
      labels.push_back(c.labels[r]);
    }
  }
  const MetricValues weighted = Scorer(c.probabilities.data(), c.labels.data(),
                                       c.labels.size(), c.classes)
                                    .Score(c.weights.data());
  const MetricValues repeated =
      Scorer(p.data(), labels.data(), labels.size(), c.classes).Score();
  for (std::size_t m = 0; m < kMetricCount; ++m)
    EXPECT_NEAR(weighted[m], repeated[m], 1e-12) << kMetricNames[m];
}

// The ECE is core/calibration's.
TEST_P(MetricsFixtureTest, EceIsTheCalibrationModulesEce) {
  const Case c = LoadCase(GetParam());
  Scorer scorer(c.probabilities.data(), c.labels.data(), c.labels.size(),
                c.classes, 10);
  EXPECT_EQ(scorer.Score()[kEce],
            ExpectedCalibrationError(c.probabilities.data(), c.labels.data(),
                                     c.labels.size(), c.classes, 10));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MetricsFixtureTest,
                         ::testing::Values("metrics_binary.json",
                                           "metrics_multiclass.json"));

TEST(MetricsTest, RocAucIsUndefinedWithOneClass) {
  const std::vector<double> p = {0.2, 0.8, 0.6, 0.4};
  const std::vector<std::int32_t> labels = {1, 1};
  const MetricValues m = Scorer(p.data(), labels.data(), 2, 2).Score();
  EXPECT_TRUE(std::isnan(m[kRocAuc]));
  EXPECT_DOUBLE_EQ(m[kAccuracy], 0.5);
}

TEST(MetricsTest, RocAucCountsTiesAsHalf) {
  // Scores of P(pos): positive 0.5 and 0.9, negatives 0.5 and 0.1: pairs
  // (0.5+, 0.5-) tie (1/2), all other pairs ordered right: 3.5 / 4.
  const std::vector<double> p = {0.5, 0.5, 0.1, 0.9, 0.5, 0.5, 0.9, 0.1};
  const std::vector<std::int32_t> labels = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(Scorer(p.data(), labels.data(), 4, 2).Score()[kRocAuc],
                   3.5 / 4.0);
}

TEST(MetricsTest, NoRowsIsUndefined) {
  const MetricValues m = Scorer(nullptr, nullptr, 0, 2).Score();
  for (double v : m) EXPECT_TRUE(std::isnan(v));
}

TEST(QuantileTest, MatchesNumpyPercentile) {
  const nlohmann::json json = testing::ReadJson(
      testing::SourceDir() / "tests/fixtures/eval/quantiles.json");
  for (std::size_t i = 0; i < json["q"].size(); ++i) {
    std::vector<double> values = json["values"].get<std::vector<double>>();
    EXPECT_NEAR(Quantile(values, json["q"][i].get<double>()),
                json["expected"][i].get<double>(), 1e-15)
        << "q = " << json["q"][i];
  }
}

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override { c_ = LoadCase("metrics_binary.json"); }
  Scorer MakeScorer() const {
    return Scorer(c_.probabilities.data(), c_.labels.data(), c_.labels.size(),
                  c_.classes);
  }
  Case c_;
};

TEST_F(BootstrapTest, SameSeedSameIntervalsOtherSeedOthers) {
  const Scorer scorer = MakeScorer();
  const auto a = BootstrapIntervals(scorer, nullptr, {200, 7, 0.95}, 3);
  const auto b = BootstrapIntervals(scorer, nullptr, {200, 7, 0.95}, 3);
  const auto other_seed =
      BootstrapIntervals(scorer, nullptr, {200, 8, 0.95}, 3);
  const auto other_stream =
      BootstrapIntervals(scorer, nullptr, {200, 7, 0.95}, 4);
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    EXPECT_EQ(a[m].low, b[m].low);
    EXPECT_EQ(a[m].high, b[m].high);
  }
  EXPECT_NE(a[kLogLoss].low, other_seed[kLogLoss].low);
  EXPECT_NE(a[kLogLoss].low, other_stream[kLogLoss].low);
}

TEST_F(BootstrapTest, IntervalsHoldTheEstimateAndNarrowWithConfidence) {
  const Scorer scorer = MakeScorer();
  const MetricValues value = scorer.Score();
  const auto wide = BootstrapIntervals(scorer, nullptr, {1000, 1, 0.95}, 0);
  const auto narrow = BootstrapIntervals(scorer, nullptr, {1000, 1, 0.5}, 0);
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    SCOPED_TRACE(kMetricNames[m]);
    EXPECT_LT(wide[m].low, value[m]);
    EXPECT_GT(wide[m].high, value[m]);
    EXPECT_LT(wide[m].low, narrow[m].low);
    EXPECT_GT(wide[m].high, narrow[m].high);
  }
  // The accuracy of 200 rows: a binomial standard error of about
  // sqrt(p(1-p)/n); the 95% interval spans about 4 of them.
  const double p = value[kAccuracy];
  const double se = std::sqrt(p * (1 - p) / 200.0);
  EXPECT_NEAR(wide[kAccuracy].high - wide[kAccuracy].low, 3.92 * se, 0.3 * se);
}

TEST_F(BootstrapTest, PairedDifferenceOfAScorerWithItselfIsZero) {
  const Scorer scorer = MakeScorer();
  const auto delta = BootstrapIntervals(scorer, &scorer, {100, 1, 0.95}, 0);
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    EXPECT_EQ(delta[m].low, 0.0) << kMetricNames[m];
    EXPECT_EQ(delta[m].high, 0.0) << kMetricNames[m];
  }
}

TEST_F(BootstrapTest, UndefinedMetricsHaveNoInterval) {
  // One class only: ROC-AUC is undefined in every replicate, so it has no
  // interval; the other metrics do.
  const std::vector<std::int32_t> labels(c_.labels.size(), 0);
  Scorer scorer(c_.probabilities.data(), labels.data(), labels.size(), 2);
  const auto ci = BootstrapIntervals(scorer, nullptr, {200, 1, 0.95}, 0);
  EXPECT_TRUE(std::isnan(ci[kRocAuc].low));
  EXPECT_TRUE(std::isnan(ci[kRocAuc].high));
  EXPECT_FALSE(std::isnan(ci[kAccuracy].low));
  EXPECT_FALSE(std::isnan(ci[kLogLoss].high));
}

}  // namespace
}  // namespace latefuse
