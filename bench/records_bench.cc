// The two ends of `latefuse run` without the engine: parsing JSONL records
// into batches (RecordParser, fast path beside simdjson for every line) and
// writing output records (RecordWriter), in MB/s and rows/s, on lines shaped
// like issue 9's workloads: breast cancer as 3 views of 10 decimals
// (2 classes) and digits as 4 quadrants of 16 small integers (10 classes),
// 30% of modalities missing at random.
//
//   build/bench/records_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/output.h"
#include "core/pipeline_config.h"
#include "core/records.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

constexpr std::size_t kBatchRows = 1024;
constexpr std::size_t kLines = 8 * kBatchRows;

struct Workload {
  const char* name;
  std::size_t views;
  std::size_t width;
  std::size_t classes;
  bool integers;  // digits' pixel values 0..16; else decimals like 0.07405
  // As bench/make_workloads.py writes records (the input of `latefuse run` in
  // bench/run.sh): no spaces after ',' and ':', pixels as integers ("16").
  // Otherwise as Python's json.dumps writes float64 lists: ", " and ": "
  // separators, pixels as "16.0".
  bool compact;
};

constexpr Workload kBreastCancer = {"bc", 3, 10, 2, false, false};
constexpr Workload kDigits = {"digits", 4, 16, 10, true, false};
constexpr Workload kBreastCancerCompact = {"bc", 3, 10, 2, false, true};
constexpr Workload kDigitsCompact = {"digits", 4, 16, 10, true, true};

std::vector<RecordModalitySpec> Specs(const Workload& w) {
  std::vector<RecordModalitySpec> specs;
  for (std::size_t k = 0; k < w.views; ++k)
    specs.push_back({fmt::format("v{}", k), RecordInputKind::kDense, w.width});
  return specs;
}

// kLines records as a generator script writes them (shortest round trip
// decimals).
std::vector<std::string> Lines(const Workload& w) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> pixel(0, 16);
  const char* comma = w.compact ? "," : ", ";
  const char* colon = w.compact ? ":" : ": ";
  std::vector<std::string> lines;
  for (std::size_t r = 0; r < kLines; ++r) {
    std::string line = fmt::format(R"({{"id"{1}"r-{0:07}"{2}"modalities"{1}{{)",
                                   r, colon, comma);
    bool first = true;
    for (std::size_t k = 0; k < w.views; ++k) {
      if (unit(rng) < 0.3) continue;
      line += fmt::format(R"({}"v{}"{}[)", first ? "" : comma, k, colon);
      first = false;
      for (std::size_t i = 0; i < w.width; ++i) {
        if (i > 0) line += comma;
        if (w.integers) {
          line += w.compact
                      ? fmt::format("{}", pixel(rng))
                      : fmt::format("{:.1f}", static_cast<double>(pixel(rng)));
        } else {
          // Four significant digits over several magnitudes: 0.07405, 406.4.
          const double v = std::pow(10.0, static_cast<int>(unit(rng) * 5) - 2) *
                           (1.0 + 9.0 * unit(rng));
          line += fmt::format("{}", std::stod(fmt::format("{:.4g}", v)));
        }
      }
      line += ']';
    }
    line +=
        fmt::format(R"(}}{}"label"{}"{}"}})", comma, colon, rng() % w.classes);
    lines.push_back(std::move(line));
  }
  return lines;
}

void BM_Parse(benchmark::State& state, Workload w, RecordParseMode mode) {
  const std::vector<std::string> lines = Lines(w);
  std::size_t bytes = 0;
  for (const std::string& line : lines) bytes += line.size() + 1;
  RecordParser parser(Specs(w), mode);
  InputBatch batch;
  for (auto _ : state) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (batch.rows == kBatchRows) batch.Clear();
      parser.Append(lines[i], i + 1, batch);
    }
    benchmark::DoNotOptimize(batch.columns.data());
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(
      static_cast<std::int64_t>(state.iterations() * lines.size()));
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * lines.size()),
                         benchmark::Counter::kIsRate);
}

// A batch of parsed lines with what the engine would make of them: each
// present modality used, random class distributions, every row ok.
void BM_Write(benchmark::State& state, Workload w) {
  PipelineConfig config;
  config.name = "bench";
  for (std::size_t c = 0; c < w.classes; ++c)
    config.classes.push_back(w.classes == 2 ? (c == 0 ? "malignant" : "benign")
                                            : fmt::format("{}", c));
  const std::vector<RecordModalitySpec> specs = Specs(w);
  for (const RecordModalitySpec& spec : specs)
    config.modalities.emplace_back().name = spec.name;
  const std::vector<std::string> lines = Lines(w);
  RecordParser parser(specs);
  InputBatch batch;
  for (std::size_t i = 0; i < kBatchRows; ++i)
    parser.Append(lines[i], i + 1, batch);

  const std::size_t K = w.views, C = w.classes, rows = batch.rows;
  BatchResult result;
  result.rows = rows;
  result.status.assign(rows, RowStatus::kOk);
  result.errors.assign(rows, "");
  result.failures.assign(K, "");
  result.used.resize(K * rows);
  result.failed.assign(K * rows, 0);
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t r = 0; r < rows; ++r)
      result.used[k * rows + r] = batch.columns[k].present[r];
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  result.probabilities.resize(rows * C);
  for (std::size_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::size_t c = 0; c < C; ++c)
      sum += result.probabilities[r * C + c] = unit(rng);
    for (std::size_t c = 0; c < C; ++c) result.probabilities[r * C + c] /= sum;
  }

  const RecordWriter writer(config, {});
  std::string text;
  std::size_t bytes = 0;
  for (auto _ : state) {
    text.clear();
    for (std::size_t r = 0; r < rows; ++r)
      writer.Append(batch, result, r, text);
    bytes += text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * rows),
                         benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Parse, bc_fast, kBreastCancer, RecordParseMode::kFast);
BENCHMARK_CAPTURE(BM_Parse, bc_simdjson, kBreastCancer,
                  RecordParseMode::kGeneral);
BENCHMARK_CAPTURE(BM_Parse, digits_fast, kDigits, RecordParseMode::kFast);
BENCHMARK_CAPTURE(BM_Parse, digits_simdjson, kDigits,
                  RecordParseMode::kGeneral);
BENCHMARK_CAPTURE(BM_Parse, bc_compact_fast, kBreastCancerCompact,
                  RecordParseMode::kFast);
BENCHMARK_CAPTURE(BM_Parse, digits_compact_fast, kDigitsCompact,
                  RecordParseMode::kFast);
BENCHMARK_CAPTURE(BM_Write, bc, kBreastCancer);
BENCHMARK_CAPTURE(BM_Write, digits, kDigits);

}  // namespace
}  // namespace latefuse

BENCHMARK_MAIN();
