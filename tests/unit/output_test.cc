// Tests for core/output.h's RecordWriter: records byte for byte as DESIGN's
// "Records in and out" gives them, written out by hand here with numbers as
// fmt::format("{}", x) writes them: every kind of row (ok, abstain, error,
// a line that did not parse), names and messages that need escaping, strings
// longer than a record's first guess at its room, per-modality
// probabilities, weights, shadows, regression; AppendOutcome alone; and one
// writer shared by threads.
#include "core/output.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace latefuse {
namespace {

std::string N(double x) { return fmt::format("{}", x); }

PipelineConfig Config(Task task) {
  PipelineConfig config;
  config.name = "test";
  config.task = task;
  if (task == Task::kClassification) config.classes = {"stable", "dete\"rio"};
  for (const char* name : {"vitals", "notes\n", "xray"})
    config.modalities.emplace_back().name = name;
  return config;
}

// Rows of three modalities; `present` and `used` per row as "101"-style
// masks, C values per row.
struct Rows {
  InputBatch batch;
  BatchResult result;

  Rows(std::size_t C, const std::vector<std::string>& present,
       const std::vector<std::string>& used) {
    const std::size_t rows = present.size(), K = 3;
    batch.rows = result.rows = rows;
    batch.ids.assign(rows, "");
    batch.has_id.assign(rows, 1);
    batch.labels.assign(rows, "");
    batch.has_label.assign(rows, 0);
    batch.errors.assign(rows, "");
    batch.columns.resize(K);
    result.status.assign(rows, RowStatus::kOk);
    result.errors.assign(rows, "");
    result.probabilities.assign(rows * C, 0.0);
    result.used.assign(K * rows, 0);
    result.failed.assign(K * rows, 0);
    result.failures.assign(K, "");
    result.modality_probabilities.assign(K * rows * C, 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      for (std::size_t r = 0; r < rows; ++r) {
        batch.columns[k].present.push_back(present[r][k] == '1');
        result.used[k * rows + r] = used[r][k] == '1';
      }
    }
  }
};

std::vector<std::string> Lines(const RecordWriter& writer, const Rows& rows) {
  std::vector<std::string> lines;
  for (std::size_t r = 0; r < rows.batch.rows; ++r) {
    std::string out = "before ";
    writer.Append(rows.batch, rows.result, r, out);
    EXPECT_EQ(out.substr(0, 7), "before ");
    lines.push_back(out.substr(7));
  }
  return lines;
}

TEST(RecordWriterTest, ClassificationRowsOfEveryStatus) {
  const PipelineConfig config = Config(Task::kClassification);
  Rows rows(2, {"110", "000", "111", "111"}, {"110", "000", "000", "011"});
  rows.batch.ids[0] = "p-1";
  rows.result.probabilities[0] = 0.91;
  rows.result.probabilities[1] = 0.09000000000000001;
  // An id far longer than a record's first guess at its room, all escapes.
  rows.batch.ids[1] = std::string(3000, '"');
  rows.result.status[1] = RowStatus::kAbstain;
  rows.batch.has_id[2] = 0;
  rows.batch.errors[2] = rows.result.errors[2] = "bad line:\t\"x\"";
  rows.result.status[2] = RowStatus::kError;
  rows.batch.ids[3] = "p-3";
  rows.result.probabilities[6] = 1.5e-7;
  rows.result.probabilities[7] = 0.99999985;
  rows.result.failed[0 * 4 + 3] = 1;
  rows.result.failures[0] = std::string(5000, '\x01');

  const std::vector<std::string> lines = Lines(RecordWriter(config, {}), rows);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            R"({"id": "p-1", "status": "ok", "label": "stable", )"
            R"("probabilities": {"stable": 0.91, "dete\"rio": )" +
                N(0.09000000000000001) +
                R"(}, "used": ["vitals", "notes\n"], "missing": ["xray"], )"
                R"("failed": {}})"
                "\n");
  std::string quotes;
  for (int i = 0; i < 3000; ++i) quotes += "\\\"";
  EXPECT_EQ(lines[1], R"({"id": ")" + quotes +
                          R"(", "status": "abstain", "label": null, )"
                          R"("probabilities": null, "used": [], "missing": )"
                          R"(["vitals", "notes\n", "xray"], "failed": {}})"
                          "\n");
  EXPECT_EQ(lines[2], R"({"id": null, "status": "error", "label": null, )"
                      R"("probabilities": null, "used": [], "missing": [], )"
                      R"("failed": {}, "error": "bad line:\t\"x\""})"
                      "\n");
  std::string controls;
  for (int i = 0; i < 5000; ++i) controls += "\\u0001";
  EXPECT_EQ(lines[3],
            R"({"id": "p-3", "status": "ok", "label": "dete\"rio", )"
            R"("probabilities": {"stable": 1.5e-07, "dete\"rio": 0.99999985}, )"
            R"("used": ["notes\n", "xray"], "missing": [], )"
            R"("failed": {"vitals": ")" +
                controls + "\"}}\n");
}

TEST(RecordWriterTest, PerModalityWeightsAndShadows) {
  const PipelineConfig config = Config(Task::kClassification);
  Rows rows(2, {"111", "011"}, {"101", "011"});
  rows.batch.ids = {"a", "b"};
  rows.result.status[1] = RowStatus::kAbstain;
  rows.result.probabilities = {0.25, 0.75, 0, 0};
  // [K, rows, C]
  rows.result.modality_probabilities = {0.1, 0.9, 0,       0,         // vitals
                                        0,   0,   0.6,     0.4,       // notes
                                        0.4, 0.6, 1.0 / 3, 2.0 / 3};  // xray
  rows.result.failed[1 * 2 + 0] = 1;
  rows.result.failures[1] = "no text";
  rows.result.explanation = {0.5, 0, 0.5, 0, 0, 0};
  rows.result.shadowed = {1, 0, 1};
  rows.result.shadow_answered = {0, 0, 0, 0, 1, 1};
  rows.result.shadow_failed = {1, 0, 0, 0, 0, 0};
  rows.result.shadow_failures = {"shadow \"down\"", "", ""};
  rows.result.shadow_probabilities.assign(3 * 2 * 2, 0.0);
  rows.result.shadow_probabilities[(2 * 2 + 0) * 2] = 0.35;
  rows.result.shadow_probabilities[(2 * 2 + 0) * 2 + 1] = 0.65;
  rows.result.shadow_probabilities[(2 * 2 + 1) * 2] = 0.5;
  rows.result.shadow_probabilities[(2 * 2 + 1) * 2 + 1] = 0.5;
  rows.result.shadow_agree = {0, 0, 0, 0, 1, 0};
  rows.result.shadow_abs_diff = {0, 0, 0, 0, 0.05, 0};

  const std::vector<std::string> lines = Lines(
      RecordWriter(config, {.per_modality = true, .explain = true}), rows);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            R"({"id": "a", "status": "ok", "label": "dete\"rio", )"
            R"("probabilities": {"stable": 0.25, "dete\"rio": 0.75}, )"
            R"("used": ["vitals", "xray"], "missing": [], )"
            R"("failed": {"notes\n": "no text"}, )"
            R"("modalities": {"vitals": {"stable": 0.1, "dete\"rio": 0.9}, )"
            R"("xray": {"stable": 0.4, "dete\"rio": 0.6}}, )"
            R"("weights": {"vitals": 0.5, "notes\n": 0, "xray": 0.5}, )"
            R"("shadow": {"vitals": {"error": "shadow \"down\""}, )"
            R"("xray": {"probabilities": {"stable": 0.35, "dete\"rio": 0.65}, )"
            R"("agree": true, "abs_diff": 0.05}}})"
            "\n");
  // Abstained: no weights; the shadow compared where the model answered.
  EXPECT_EQ(lines[1],
            R"({"id": "b", "status": "abstain", "label": null, )"
            R"("probabilities": null, "used": ["notes\n", "xray"], )"
            R"("missing": ["vitals"], "failed": {}, )"
            R"("modalities": {"notes\n": {"stable": 0.6, "dete\"rio": 0.4}, )"
            R"("xray": {"stable": )" +
                N(1.0 / 3) + R"(, "dete\"rio": )" + N(2.0 / 3) +
                R"(}}, "shadow": {"xray": {"probabilities": )"
                R"({"stable": 0.5, "dete\"rio": 0.5}, "agree": false, )"
                R"("abs_diff": 0}}})"
                "\n");

  // A shadow that answered where its model did not.
  rows.result.used[2 * 2 + 1] = 0;
  rows.result.used[1 * 2 + 1] = 0;
  const std::vector<std::string> unanswered =
      Lines(RecordWriter(config, {}), rows);
  EXPECT_EQ(unanswered[1],
            R"({"id": "b", "status": "abstain", "label": null, )"
            R"("probabilities": null, "used": [], "missing": ["vitals"], )"
            R"("failed": {}, "shadow": {"xray": {"probabilities": )"
            R"({"stable": 0.5, "dete\"rio": 0.5}, "agree": null, )"
            R"("abs_diff": null}}})"
            "\n");
}

TEST(RecordWriterTest, RegressionRows) {
  const PipelineConfig config = Config(Task::kRegression);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Rows rows(2, {"110", "100", "000"}, {"110", "100", "000"});
  rows.batch.ids = {"r0", "r1", "r2"};
  rows.result.probabilities = {12.5, 0.8, -3.0000000000000004, nan, 0, 0};
  rows.result.status[2] = RowStatus::kAbstain;
  rows.result.modality_probabilities = {12.0, 0.5, 1e21, nan, 0, 0,  // vitals
                                        13.0, nan, 0,    0,   0, 0,  // notes
                                        0,    0,   0,    0,   0, 0};
  rows.result.shadowed = {1, 0, 0};
  rows.result.shadow_answered = {1, 0, 0, 0, 0, 0, 0, 0, 0};
  rows.result.shadow_failed.assign(9, 0);
  rows.result.shadow_failures.assign(3, "");
  rows.result.shadow_probabilities.assign(3 * 3 * 2, 0.0);
  rows.result.shadow_probabilities[0] = 11.0;
  rows.result.shadow_probabilities[1] = nan;
  rows.result.shadow_agree.assign(9, 0);
  rows.result.shadow_abs_diff.assign(9, 0.0);
  rows.result.shadow_abs_diff[0] = 1.0;

  const std::vector<std::string> lines =
      Lines(RecordWriter(config, {.per_modality = true}), rows);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], R"({"id": "r0", "status": "ok", "prediction": 12.5, )"
                      R"("variance": 0.8, "used": ["vitals", "notes\n"], )"
                      R"("missing": ["xray"], "failed": {}, "modalities": )"
                      R"({"vitals": {"prediction": 12, "variance": 0.5}, )"
                      R"("notes\n": {"prediction": 13}}, "shadow": {"vitals": )"
                      R"({"prediction": 11, "abs_diff": 1}}})"
                      "\n");
  EXPECT_EQ(lines[1],
            R"({"id": "r1", "status": "ok", "prediction": )" +
                N(-3.0000000000000004) +
                R"(, "used": ["vitals"], "missing": ["notes\n", "xray"], )"
                R"("failed": {}, "modalities": {"vitals": {"prediction": )"
                R"(1e+21}}, "shadow": {}})"
                "\n");
  EXPECT_EQ(lines[2],
            R"({"id": "r2", "status": "abstain", "prediction": null, )"
            R"("used": [], "missing": ["vitals", "notes\n", "xray"], )"
            R"("failed": {}, "modalities": {}, "shadow": {}})"
            "\n");
}

TEST(RecordWriterTest, AppendOutcomeWritesTheListsAlone) {
  const PipelineConfig config = Config(Task::kClassification);
  Rows rows(2, {"111"}, {"001"});
  rows.result.failed[0] = rows.result.failed[1] = 1;
  rows.result.failures = {"a", "b\\c", ""};
  rows.result.status[0] = RowStatus::kError;
  rows.result.errors[0] = "too few";
  std::string out = "{";
  RecordWriter(config, {}).AppendOutcome(rows.batch, rows.result, 0, out);
  EXPECT_EQ(out, R"({"used": ["xray"], "missing": [], )"
                 R"("failed": {"vitals": "a", "notes\n": "b\\c"}, )"
                 R"("error": "too few")");
}

// Threads writing their own rows with one writer get what one thread gets.
TEST(RecordWriterTest, ThreadsShareOneWriter) {
  const PipelineConfig config = Config(Task::kClassification);
  std::vector<std::string> present, used;
  for (int r = 0; r < 512; ++r) {
    present.push_back(r % 3 ? "111" : "101");
    used.push_back(r % 3 ? "110" : "100");
  }
  Rows rows(2, present, used);
  for (std::size_t r = 0; r < 512; ++r) {
    rows.batch.ids[r] = std::string(r % 40, 'x');
    rows.result.probabilities[2 * r] = 1.0 / static_cast<double>(r + 2);
    rows.result.probabilities[2 * r + 1] = 1 - 1.0 / static_cast<double>(r + 2);
  }
  const RecordWriter writer(config, {.per_modality = true});
  const std::vector<std::string> want = Lines(writer, rows);
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int pass = 0; pass < 20; ++pass) got[t] = Lines(writer, rows);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::vector<std::string>& lines : got) EXPECT_EQ(lines, want);
}

}  // namespace
}  // namespace latefuse
