// DriftMonitor and the profile reader against NumPy
// (tests/fixtures/drift/unit.json and unit_profile.json, made by
// make_drift_fixtures.py): rows handed over as engine batches, PSI per class
// to 1e-12, exact zeros for an identical distribution, refusals, threads and
// the Prometheus text.
#include "core/drift.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
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

constexpr double kTolerance = 1e-12;

fs::path Fixtures() { return testing::SourceDir() / "tests/fixtures/drift"; }

const json& Unit() {
  static const json* unit =
      new json(testing::ReadJson(Fixtures() / "unit.json"));
  return *unit;
}

Profile UnitProfile() {
  absl::StatusOr<Profile> profile =
      ReadProfile(Fixtures() / "unit_profile.json");
  EXPECT_TRUE(profile.ok()) << profile.status();
  return profile.ok() ? *std::move(profile) : Profile{};
}

PipelineConfig UnitConfig() {
  PipelineConfig config;
  config.name = "drift-unit";
  config.classes = Unit()["classes"].get<std::vector<std::string>>();
  for (const json& name : Unit()["modalities"]) {
    ModalityConfig& m = config.modalities.emplace_back();
    m.name = name.get<std::string>();
  }
  return config;
}

std::unique_ptr<DriftMonitor> UnitMonitor() {
  absl::StatusOr<std::unique_ptr<DriftMonitor>> monitor =
      DriftMonitor::Create(UnitProfile(), UnitConfig());
  EXPECT_TRUE(monitor.ok()) << monitor.status();
  return monitor.ok() ? *std::move(monitor) : nullptr;
}

// Fixture rows [begin, end) as the engine lays out one batch of them.
BatchResult Batch(const json& rows, std::size_t begin, std::size_t end) {
  const std::vector<std::string> names =
      Unit()["modalities"].get<std::vector<std::string>>();
  const std::size_t K = names.size();
  const std::size_t C = Unit()["classes"].size();
  const std::size_t N = end - begin;
  BatchResult result;
  result.rows = N;
  result.status.assign(N, RowStatus::kOk);
  result.errors.assign(N, "");
  result.probabilities.assign(N * C, 0.0);
  result.used.assign(K * N, 0);
  result.failed.assign(K * N, 0);
  result.modality_probabilities.assign(K * N * C, 0.0);
  for (std::size_t r = 0; r < N; ++r) {
    const json& row = rows[begin + r];
    const std::string status = row["status"];
    result.status[r] = status == "ok"        ? RowStatus::kOk
                       : status == "abstain" ? RowStatus::kAbstain
                                             : RowStatus::kError;
    if (status == "ok") {
      for (std::size_t c = 0; c < C; ++c)
        result.probabilities[r * C + c] = row["fused"][c].get<double>();
    }
    for (std::size_t k = 0; k < K; ++k) {
      if (!row["modalities"].contains(names[k])) continue;
      const json& p = row["modalities"][names[k]];
      if (p.is_string()) {
        result.failed[k * N + r] = 1;
        continue;
      }
      result.used[k * N + r] = 1;
      for (std::size_t c = 0; c < C; ++c)
        result.modality_probabilities[(k * N + r) * C + c] = p[c].get<double>();
    }
  }
  return result;
}

// Observes every row of `rows` in batches of `batch` rows.
void ObserveAll(DriftMonitor& monitor, const json& rows, std::size_t batch) {
  for (std::size_t begin = 0; begin < rows.size(); begin += batch) {
    const absl::Status status = monitor.Observe(
        Batch(rows, begin, std::min(rows.size(), begin + batch)));
    ASSERT_TRUE(status.ok()) << status;
  }
}

void ExpectNear(double actual, const json& expected, const std::string& what) {
  if (expected.is_null()) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": " << actual;
  } else {
    EXPECT_NEAR(actual, expected.get<double>(), kTolerance) << what;
  }
}

void ExpectSeries(const DriftSeries& actual, const json& expected) {
  EXPECT_EQ(actual.present, expected["present"].get<std::size_t>())
      << actual.name;
  EXPECT_EQ(actual.rows, expected["rows"].get<std::size_t>()) << actual.name;
  ExpectNear(actual.presence_rate, expected["presence_rate"],
             actual.name + " presence_rate");
  ExpectNear(actual.reference_presence_rate,
             expected["reference_presence_rate"],
             actual.name + " reference_presence_rate");
  EXPECT_EQ(actual.has_reference, !expected["psi"].is_null()) << actual.name;
  if (expected["psi"].is_null()) {
    EXPECT_TRUE(actual.psi.empty()) << actual.name;
  } else {
    ASSERT_EQ(actual.psi.size(), expected["psi"].size()) << actual.name;
    for (std::size_t c = 0; c < actual.psi.size(); ++c)
      ExpectNear(actual.psi[c], expected["psi"][c],
                 fmt::format("{} psi[{}]", actual.name, c));
  }
  ExpectNear(actual.max_psi, expected["max_psi"], actual.name + " max_psi");
}

void ExpectSnapshot(const DriftSnapshot& actual, const json& expected) {
  EXPECT_EQ(actual.batch_rows, expected["batch_rows"].get<std::size_t>());
  ASSERT_EQ(actual.modalities.size(), expected["modalities"].size());
  for (const DriftSeries& s : actual.modalities)
    ExpectSeries(s, expected["modalities"][s.name]);
  EXPECT_EQ(actual.fused.name, "fused");
  ExpectSeries(actual.fused, expected["fused"]);
}

TEST(PsiTest, EmptyBinsAreFlooredAtTheDocumentedShare) {
  // Reference all in bin 0, observed all in bin 1; bin 2 empty on both
  // sides contributes (f - f) ln(f / f) = 0.
  const std::size_t observed[] = {0, 10, 0};
  const std::size_t reference[] = {4, 0, 0};
  const double f = kPsiFloor;
  EXPECT_NEAR(PopulationStabilityIndex(observed, reference, 3),
              (f - 1.0) * std::log(f / 1.0) + (1.0 - f) * std::log(1.0 / f),
              1e-15);
  EXPECT_EQ(PopulationStabilityIndex(reference, reference, 3), 0.0);
  const std::size_t doubled[] = {8, 0, 0};
  EXPECT_EQ(PopulationStabilityIndex(doubled, reference, 3), 0.0);
  const std::size_t none[] = {0, 0, 0};
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex(none, reference, 3)));
  EXPECT_TRUE(std::isnan(PopulationStabilityIndex(reference, none, 3)));
}

TEST(DriftMonitorTest, IdenticalDistributionGivesZeroPsi) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  const json& rows = Unit()["reference_rows"];
  ObserveAll(*monitor, rows, 37);
  const DriftSnapshot once = monitor->Snapshot();
  ExpectSnapshot(once, Unit()["expected"]["identical"]);
  for (const DriftSeries* s :
       {&once.modalities[0], &once.modalities[1], &once.fused}) {
    for (double psi : s->psi) EXPECT_EQ(psi, 0.0) << s->name;
  }
  // Twice the same rows: the same shares, still exactly 0.
  ObserveAll(*monitor, rows, 64);
  const DriftSnapshot twice = monitor->Snapshot();
  EXPECT_EQ(twice.batch_rows, 2 * rows.size());
  EXPECT_EQ(twice.modalities[0].rows, 2 * once.modalities[0].rows);
  for (double psi : twice.modalities[0].psi) EXPECT_EQ(psi, 0.0);
  for (double psi : twice.fused.psi) EXPECT_EQ(psi, 0.0);
}

TEST(DriftMonitorTest, ShiftedDistributionMatchesNumPy) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  ObserveAll(*monitor, Unit()["observed_rows"], 50);
  const DriftSnapshot snapshot = monitor->Snapshot();
  ExpectSnapshot(snapshot, Unit()["expected"]["shifted"]);
  // Large shifts, as the fixture was made: m2 spreads out from a
  // concentrated reference, so its empty reference bins weigh in.
  EXPECT_GT(snapshot.modalities[1].max_psi, 0.25);
}

TEST(DriftMonitorTest, BatchSizeDoesNotMatter) {
  std::unique_ptr<DriftMonitor> one = UnitMonitor();
  std::unique_ptr<DriftMonitor> all = UnitMonitor();
  ASSERT_NE(one, nullptr);
  ASSERT_NE(all, nullptr);
  const json& rows = Unit()["observed_rows"];
  ObserveAll(*one, rows, 1);
  ObserveAll(*all, rows, rows.size());
  const DriftSnapshot a = one->Snapshot();
  const DriftSnapshot b = all->Snapshot();
  for (std::size_t k = 0; k < a.modalities.size(); ++k)
    EXPECT_EQ(a.modalities[k].psi, b.modalities[k].psi);
  EXPECT_EQ(a.fused.psi, b.fused.psi);
}

TEST(DriftMonitorTest, NothingObservedIsNaNAndResetForgets) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  DriftSnapshot empty = monitor->Snapshot();
  EXPECT_EQ(empty.batch_rows, 0u);
  EXPECT_TRUE(std::isnan(empty.modalities[0].presence_rate));
  ASSERT_EQ(empty.modalities[0].psi.size(), 3u);
  EXPECT_TRUE(std::isnan(empty.modalities[0].psi[0]));
  EXPECT_TRUE(std::isnan(empty.fused.max_psi));

  ObserveAll(*monitor, Unit()["observed_rows"], 50);
  monitor->Reset();
  EXPECT_EQ(monitor->Snapshot().batch_rows, 0u);
  EXPECT_EQ(monitor->Snapshot().modalities[0].rows, 0u);
  ObserveAll(*monitor, Unit()["reference_rows"], 100);
  ExpectSnapshot(monitor->Snapshot(), Unit()["expected"]["identical"]);
}

TEST(DriftMonitorTest, TwoThreadsObservingCountEveryRow) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  std::unique_ptr<DriftMonitor> single = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  ASSERT_NE(single, nullptr);
  const json& rows = Unit()["observed_rows"];
  ObserveAll(*single, rows, 10);
  constexpr int kRepeats = 20;
  std::vector<BatchResult> batches;
  for (std::size_t begin = 0; begin < rows.size(); begin += 10)
    batches.push_back(Batch(rows, begin, std::min(rows.size(), begin + 10)));
  auto observe = [&] {
    for (int i = 0; i < kRepeats; ++i) {
      for (const BatchResult& b : batches)
        ASSERT_TRUE(monitor->Observe(b).ok());
    }
  };
  std::thread a(observe);
  std::thread b(observe);
  // A reader at the same time sees whole batches only.
  for (int i = 0; i < 50; ++i) {
    const DriftSnapshot s = monitor->Snapshot();
    EXPECT_EQ(s.batch_rows % 10, 0u);
  }
  a.join();
  b.join();
  const DriftSnapshot expected = single->Snapshot();
  const DriftSnapshot got = monitor->Snapshot();
  EXPECT_EQ(got.batch_rows, 2 * kRepeats * rows.size());
  for (std::size_t k = 0; k < got.modalities.size(); ++k) {
    EXPECT_EQ(got.modalities[k].present,
              2 * kRepeats * expected.modalities[k].present);
    EXPECT_EQ(got.modalities[k].rows,
              2 * kRepeats * expected.modalities[k].rows);
    // The same shares, so bit for bit the same PSI.
    EXPECT_EQ(got.modalities[k].psi, expected.modalities[k].psi);
  }
  EXPECT_EQ(got.fused.rows, 2 * kRepeats * expected.fused.rows);
  EXPECT_EQ(got.fused.psi, expected.fused.psi);
}

TEST(DriftMonitorTest, ModalitiesAreMatchedByName) {
  PipelineConfig config = UnitConfig();
  // Another order: matched by name, reported in pipeline order.
  std::swap(config.modalities[0], config.modalities[2]);
  absl::StatusOr<std::unique_ptr<DriftMonitor>> monitor =
      DriftMonitor::Create(UnitProfile(), config);
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  EXPECT_EQ((*monitor)->unmatched(), std::vector<std::string>{"old"});
  const DriftSnapshot s = (*monitor)->Snapshot();
  EXPECT_EQ(s.modalities[0].name, "m3");
  EXPECT_FALSE(s.modalities[0].has_reference);
  EXPECT_TRUE(std::isnan(s.modalities[0].reference_presence_rate));
  EXPECT_EQ(s.modalities[2].name, "m1");
  EXPECT_TRUE(s.modalities[2].has_reference);
  EXPECT_DOUBLE_EQ(s.modalities[2].reference_presence_rate,
                   Unit()["expected"]["shifted"]["modalities"]["m1"]
                         ["reference_presence_rate"]
                             .get<double>());
}

TEST(DriftMonitorTest, DifferentClassesAreRefused) {
  PipelineConfig config = UnitConfig();
  std::swap(config.classes[0], config.classes[1]);
  absl::StatusOr<std::unique_ptr<DriftMonitor>> monitor =
      DriftMonitor::Create(UnitProfile(), config);
  ASSERT_FALSE(monitor.ok());
  EXPECT_THAT(monitor.status().message(),
              HasSubstr("profile of pipeline 'drift-unit' has classes [low, "
                        "mid, high], pipeline 'drift-unit' has [mid, low, "
                        "high]"));

  config = UnitConfig();
  config.task = Task::kRegression;
  config.classes.clear();
  monitor = DriftMonitor::Create(UnitProfile(), config);
  ASSERT_FALSE(monitor.ok());
  EXPECT_THAT(monitor.status().message(), HasSubstr("task is 'regression'"));
}

TEST(DriftMonitorTest, BatchOfAnotherShapeIsRefusedAndNotCounted) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  BatchResult batch = Batch(Unit()["observed_rows"], 0, 5);
  batch.used.resize(2 * 5);  // two modalities, not three
  const absl::Status status = monitor->Observe(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("3 modalities, 3 classes"));
  EXPECT_EQ(monitor->Snapshot().batch_rows, 0u);
}

TEST(ProfileTest, WrittenProfileReadsBackTheSame) {
  const Profile profile = UnitProfile();
  ASSERT_EQ(profile.modalities, (std::vector<std::string>{"m1", "m2", "old"}));
  absl::StatusOr<Profile> again = ParseProfile(ProfileJson(profile), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->classes, profile.classes);
  EXPECT_EQ(again->rows, profile.rows);
  EXPECT_EQ(again->bins, profile.bins);
  EXPECT_EQ(again->modalities, profile.modalities);
  for (std::size_t k = 0; k < profile.modalities.size(); ++k) {
    EXPECT_EQ(again->distributions[k].present,
              profile.distributions[k].present);
    EXPECT_EQ(again->distributions[k].used, profile.distributions[k].used);
    EXPECT_EQ(again->distributions[k].histograms,
              profile.distributions[k].histograms);
  }
  ASSERT_TRUE(again->fused.has_value());
  EXPECT_EQ(again->fused->histograms, profile.fused->histograms);
  // What NumPy wrote is what the writer writes.
  EXPECT_EQ(testing::ReadJson(Fixtures() / "unit_profile.json"),
            json::parse(ProfileJson(profile)));
}

TEST(ProfileTest, BadProfilesAreRefusedNamingTheKey) {
  const json good = testing::ReadJson(Fixtures() / "unit_profile.json");
  auto error = [&](const std::function<void(json&)>& edit) {
    json doc = good;
    edit(doc);
    absl::StatusOr<Profile> profile = ParseProfile(doc.dump(), "p.json");
    return profile.ok() ? std::string("accepted")
                        : std::string(profile.status().message());
  };
  EXPECT_EQ(error([](json&) {}), "accepted");
  EXPECT_EQ(error([](json& d) { d["format"] = "latefuse.eval/v1"; }),
            "profile 'p.json': format: expected \"latefuse.profile/v1\", got "
            "\"latefuse.eval/v1\"");
  EXPECT_EQ(error([](json& d) { d.erase("bins"); }),
            "profile 'p.json': bins: missing");
  EXPECT_EQ(error([](json& d) { d["bins"] = 0; }),
            "profile 'p.json': bins: expected 1 to 1000000, got 0");
  EXPECT_EQ(error([](json& d) { d["edges"][3] = 0.31; }),
            "profile 'p.json': edges: expected the 10 equal-width bins' edges "
            "[0, 1/10, ..., 1]");
  EXPECT_EQ(error([](json& d) {
              d["classes"] = {"low", "low", "high"};
            }),
            "profile 'p.json': classes: \"low\" twice");
  EXPECT_EQ(error([](json& d) {
              d["modalities"]["m1"]["histograms"]["mid"].erase(0);
            }),
            "profile 'p.json': modalities.m1.histograms.mid: 9 counts, "
            "expected 10 (bins)");
  EXPECT_EQ(error([](json& d) {
              d["modalities"]["m1"]["histograms"]["mid"][2] = -1;
            }),
            "profile 'p.json': modalities.m1.histograms.mid[2]: expected a "
            "non-negative integer, got -1");
  EXPECT_THAT(error([](json& d) {
                d["modalities"]["m2"]["histograms"]["high"][5] =
                    d["modalities"]["m2"]["histograms"]["high"][5].get<int>() +
                    1;
              }),
              HasSubstr("modalities.m2.histograms.high: counts sum to"));
  EXPECT_EQ(error([](json& d) {
              d["modalities"]["m1"]["histograms"]["extra"] = json::array();
            }),
            "profile 'p.json': modalities.m1.histograms.extra: not one of the "
            "profile's classes");
  EXPECT_THAT(error([](json& d) { d["modalities"]["m1"]["used"] = 1000; }),
              HasSubstr("modalities.m1.used: 1000 is more than the"));
  EXPECT_THAT(error([](json& d) { d["fused"]["rows"] = 1; }),
              HasSubstr("fused.histograms.low: counts sum to"));
  EXPECT_EQ(error([](json& d) { d.erase("fused"); }), "accepted");

  absl::StatusOr<Profile> missing = ReadProfile("/nonexistent/profile.json");
  EXPECT_EQ(missing.status().message(),
            "profile '/nonexistent/profile.json': cannot be opened");
  absl::StatusOr<Profile> broken = ParseProfile("{", "b.json");
  EXPECT_EQ(broken.status().message(), "profile 'b.json': not valid JSON");
}

TEST(PrometheusDriftTest, GaugesOfEveryModalityAndTheFusedOutput) {
  std::unique_ptr<DriftMonitor> monitor = UnitMonitor();
  ASSERT_NE(monitor, nullptr);
  EXPECT_THAT(PrometheusDrift(monitor->Snapshot()),
              HasSubstr("latefuse_modality_psi{modality=\"m1\",class=\"low\"} "
                        "NaN\n"));
  ObserveAll(*monitor, Unit()["observed_rows"], 50);
  const DriftSnapshot s = monitor->Snapshot();
  const std::string text = PrometheusDrift(s);
  const json& expected = Unit()["expected"]["shifted"];
  EXPECT_THAT(text, HasSubstr("# TYPE latefuse_modality_psi gauge\n"));
  EXPECT_THAT(text,
              HasSubstr(fmt::format(
                  "latefuse_modality_psi{{modality=\"m2\",class=\"high\"}} "
                  "{}\n",
                  s.modalities[1].psi[2])));
  EXPECT_NEAR(s.modalities[1].psi[2],
              expected["modalities"]["m2"]["psi"][2].get<double>(), kTolerance);
  EXPECT_THAT(text, HasSubstr(fmt::format(
                        "latefuse_modality_psi_max{{modality=\"m1\"}} {}\n",
                        s.modalities[0].max_psi)));
  EXPECT_THAT(text, HasSubstr("latefuse_modality_drift_reference{modality="
                              "\"m3\"} 0\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("latefuse_modality_psi{modality="
                                             "\"m3\"")));
  EXPECT_THAT(text, HasSubstr("latefuse_modality_drift_rows{modality=\"m3\"} "
                              "144\n"));
  EXPECT_THAT(text, HasSubstr(fmt::format("latefuse_fused_psi_max {}\n",
                                          s.fused.max_psi)));
  EXPECT_THAT(text, HasSubstr("latefuse_fused_drift_rows 280\n"));
  // Each metric is declared once, before its samples.
  std::size_t declared = 0;
  for (std::size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos;
       ++at)
    ++declared;
  EXPECT_EQ(declared, 11u);

  // Label values are escaped.
  DriftSnapshot odd = s;
  odd.classes[0] = "a \"b\"\\c";
  EXPECT_THAT(PrometheusDrift(odd), HasSubstr("class=\"a \\\"b\\\"\\\\c\"} "));
}

}  // namespace
}  // namespace latefuse
