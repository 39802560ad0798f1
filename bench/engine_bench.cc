// The fusion engine against a hand-fused loop, on bench/make_workloads.py's
// workloads (rows/s in items_per_second), and one row's latency through
// Engine::Run.
//
//   bench/fusion.sh build                      # generates, builds, runs all
//   LATEFUSE_BENCH_WORKLOADS=build/bench-fusion build/bench/engine_bench
//
// Each workload directory (breast_cancer, digits, mfeat when generated) holds
// a pipeline of `linear` models fused by `mean`, and rows_10000.jsonl, parsed
// once into memory before timing. Measured, all on the calling thread:
//   BM_Engine/<workload>/<batch>: Engine::Run over every row, in batches of
//     <batch> rows (EngineOptions::inline_rows unlimited: one thread).
//   BM_HandFused/<workload>: a loop written for this pipeline alone: the same
//     model files read into plain arrays, the same float64 arithmetic as the
//     `linear` plugin and the `mean` combiner, over the same parsed rows as
//     one block; no plugins, no records, no checks. The practical limit, as
//     one would write it: row by row.
//   BM_HandFusedBlocked/<workload>: the same loop with the `linear` plugin's
//     own 8-row kernel (plugins/models/internal/linear_kernel.h) for each
//     view's present rows, then the average row by row: what the engine's
//     models and combiner compute, without the engine.
//   BM_EngineOneRow/<workload>: Engine::Run on a batch of one row with every
//     view present; the median_ns counter is the median of the calls' own
//     timings.
// Every engine benchmark first checks that its fused probabilities equal the
// hand loop's within 1e-12 and reports the largest difference (max_abs_diff),
// so both compute the same thing, and counts the host's heap allocations per
// Engine::Run once its buffers have grown (allocs_per_run; operator new as
// this program sees it: the host's, not the plugins' own).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/pipeline.h"
#include "core/pipeline_config.h"
#include "core/records.h"
#include "plugins/combiners/internal/fuse_rows.h"
#include "plugins/models/internal/linear_kernel.h"
#include "plugins/models/internal/logistic.h"

// Heap allocations made through this program's operator new.
std::size_t allocations = 0;

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC takes free() on memory from operator new for a mismatch, not seeing
// that this operator new is malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace latefuse {
namespace {

namespace fs = std::filesystem;

// Allocations per engine.Run(batch) over `runs` runs, after one to grow the
// buffers.
double AllocationsPerRun(Engine& engine, const InputBatch& batch,
                         BatchResult& result, std::size_t runs) {
  engine.Run(batch, result);
  const std::size_t before = allocations;
  for (std::size_t i = 0; i < runs; ++i) engine.Run(batch, result);
  return static_cast<double>(allocations - before) / static_cast<double>(runs);
}

constexpr std::size_t kNoLimit = static_cast<std::size_t>(-1);

fs::path WorkloadRoot() {
  const char* root = std::getenv("LATEFUSE_BENCH_WORKLOADS");
  return root != nullptr && *root != '\0'
             ? fs::path(root)
             : fs::path(LATEFUSE_BINARY_DIR) / "bench-fusion";
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// One view's StandardScaler + LogisticRegression, from its latefuse.linear/v1
// file, as plain arrays.
struct HandModel {
  std::size_t width = 0;
  std::size_t outputs = 0;  // coefficient rows: 1 (binary) or the classes
  std::vector<double> mean, scale, coef, intercept;  // coef: [outputs, width]
  models_internal::LinearKernel kernel;  // the same, for the blocked loop
  std::vector<double> z;                 // the blocked loop's [kBlock, outputs]
  std::vector<double> probabilities;     // the blocked loop's [present rows, C]
};

HandModel ReadHandModel(const fs::path& path) {
  const nlohmann::json json = ReadJson(path);
  HandModel m;
  m.outputs = json["coef"].size();
  m.width = json["coef"][0].size();
  for (const auto& row : json["coef"]) {
    for (double v : row) m.coef.push_back(v);
  }
  m.intercept = json["intercept"].get<std::vector<double>>();
  m.mean = json["scaler"]["mean"].get<std::vector<double>>();
  m.scale = json["scaler"]["scale"].get<std::vector<double>>();
  m.kernel =
      models_internal::LinearKernel(m.coef, m.intercept, m.mean, m.scale);
  m.z.resize(models_internal::LinearKernel::kBlock * m.outputs);
  return m;
}

// Soft voting over the present views of every row of `batch`, written for
// this pipeline: out[r * C ..] is row r's fused distribution and ok[r] whether
// any view was present.
void HandFuse(const std::vector<HandModel>& models, std::size_t classes,
              const InputBatch& batch, std::vector<double>& out,
              std::vector<std::uint8_t>& ok) {
  const std::size_t views = models.size();
  std::size_t next[16] = {};  // each view's next present row
  double scaled[512];
  double z[16];
  double p[16];
  for (std::size_t r = 0; r < batch.rows; ++r) {
    double* fused = out.data() + r * classes;
    std::fill(fused, fused + classes, 0.0);
    std::size_t used = 0;
    for (std::size_t k = 0; k < views; ++k) {
      const InputColumn& column = batch.columns[k];
      if (!column.present[r]) continue;
      const HandModel& m = models[k];
      const float* x = column.dense.data() + next[k]++ * m.width;
      for (std::size_t j = 0; j < m.width; ++j) {
        scaled[j] = (static_cast<double>(x[j]) - m.mean[j]) / m.scale[j];
      }
      for (std::size_t c = 0; c < m.outputs; ++c) {
        const double* w = m.coef.data() + c * m.width;
        double sum = 0.0;
        for (std::size_t j = 0; j < m.width; ++j) sum += scaled[j] * w[j];
        z[c] = sum + m.intercept[c];
      }
      models_internal::LogisticProbabilities(z, m.outputs, p);
      for (std::size_t c = 0; c < classes; ++c) fused[c] += p[c];
      ++used;
    }
    ok[r] = used > 0;
    if (used > 0) combiners_internal::NormaliseOrUniform(fused, classes);
  }
}

// HandFuse with the `linear` plugin's kernel: each view's present rows first,
// 8 at a time, then the average of each row's present views (the same
// additions, in the same order).
void HandFuseBlocked(std::vector<HandModel>& models, std::size_t classes,
                     const InputBatch& batch, std::vector<double>& out,
                     std::vector<std::uint8_t>& ok) {
  constexpr std::size_t kBlock = models_internal::LinearKernel::kBlock;
  const std::size_t views = models.size();
  for (std::size_t k = 0; k < views; ++k) {
    HandModel& m = models[k];
    const std::vector<float>& dense = batch.columns[k].dense;
    const std::size_t present = dense.size() / m.width;
    m.probabilities.resize(present * classes);
    for (std::size_t begin = 0; begin < present; begin += kBlock) {
      const std::size_t n = std::min(kBlock, present - begin);
      m.kernel.Decisions(dense.data() + begin * m.width, n, m.z.data());
      for (std::size_t i = 0; i < n; ++i) {
        models_internal::LogisticProbabilities(
            m.z.data() + i * m.outputs, m.outputs,
            m.probabilities.data() + (begin + i) * classes);
      }
    }
  }
  std::size_t next[16] = {};  // each view's next present row
  for (std::size_t r = 0; r < batch.rows; ++r) {
    double* fused = out.data() + r * classes;
    std::fill(fused, fused + classes, 0.0);
    std::size_t used = 0;
    for (std::size_t k = 0; k < views; ++k) {
      if (!batch.columns[k].present[r]) continue;
      const double* p = models[k].probabilities.data() + next[k]++ * classes;
      for (std::size_t c = 0; c < classes; ++c) fused[c] += p[c];
      ++used;
    }
    ok[r] = used > 0;
    if (used > 0) combiners_internal::NormaliseOrUniform(fused, classes);
  }
}

// A workload loaded once: its pipeline, its rows parsed into one batch, and
// the hand loop's models and answer.
struct Workload {
  std::unique_ptr<Pipeline> pipeline;
  std::vector<HandModel> models;
  std::size_t classes = 0;
  InputBatch rows;
  std::vector<double> hand;  // the hand loop's output for `rows`
  std::vector<std::uint8_t> hand_ok;
  std::string error;  // why it could not be loaded
};

Workload& Load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Workload>> loaded;
  std::unique_ptr<Workload>& w = loaded[name];
  if (w) return *w;
  w = std::make_unique<Workload>();
  const fs::path dir = WorkloadRoot() / name;
  if (!fs::exists(dir / "workload.json")) {
    w->error = "no " + (dir / "workload.json").string() +
               " (run bench/make_workloads.py, or bench/fusion.sh)";
    return *w;
  }
  absl::StatusOr<PipelineConfig> config =
      LoadPipelineFile(dir / "pipeline.yaml");
  if (!config.ok()) {
    w->error = std::string(config.status().message());
    return *w;
  }
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Pipeline::Load(*std::move(config));
  if (!pipeline.ok()) {
    w->error = std::string(pipeline.status().message());
    return *w;
  }
  w->pipeline = *std::move(pipeline);
  w->classes = w->pipeline->config().classes.size();
  const nlohmann::json meta = ReadJson(dir / "workload.json");
  for (const auto& view : meta["views"]) {
    w->models.push_back(ReadHandModel(dir / view["model"].get<std::string>()));
  }
  RecordParser parser(Engine::RecordSpecs(w->pipeline->config()));
  std::ifstream in(dir / meta["records"]["10000"].get<std::string>());
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    parser.Append(line, n, w->rows);
  }
  w->hand.assign(w->rows.rows * w->classes, 0.0);
  w->hand_ok.assign(w->rows.rows, 0);
  HandFuse(w->models, w->classes, w->rows, w->hand, w->hand_ok);
  return *w;
}

// `all`'s rows [begin, begin + count) as a batch of their own.
InputBatch Slice(const InputBatch& all, std::size_t begin, std::size_t count) {
  InputBatch batch;
  batch.rows = count;
  batch.errors.assign(count, std::string());
  batch.columns.resize(all.columns.size());
  for (std::size_t k = 0; k < all.columns.size(); ++k) {
    const InputColumn& from = all.columns[k];
    const std::size_t width =
        from.dense.size() /
        std::max<std::size_t>(
            1, std::count(from.present.begin(), from.present.end(), 1));
    const std::size_t skip =
        std::count(from.present.begin(), from.present.begin() + begin, 1);
    const std::size_t take = std::count(
        from.present.begin() + begin, from.present.begin() + begin + count, 1);
    InputColumn& to = batch.columns[k];
    to.present.assign(from.present.begin() + begin,
                      from.present.begin() + begin + count);
    to.dense.assign(from.dense.begin() + skip * width,
                    from.dense.begin() + (skip + take) * width);
  }
  return batch;
}

// The largest |engine - hand| over the rows [begin, begin + result.rows),
// or infinity when the two disagree on which rows are fused.
double MaxDiff(const Workload& w, std::size_t begin,
               const BatchResult& result) {
  double worst = 0.0;
  for (std::size_t r = 0; r < result.rows; ++r) {
    const bool ok = result.status[r] == RowStatus::kOk;
    if (ok != static_cast<bool>(w.hand_ok[begin + r])) return INFINITY;
    if (!ok) continue;
    for (std::size_t c = 0; c < w.classes; ++c) {
      worst = std::max(worst, std::abs(result.probabilities[r * w.classes + c] -
                                       w.hand[(begin + r) * w.classes + c]));
    }
  }
  return worst;
}

void BM_Engine(benchmark::State& state, const std::string& name) {
  Workload& w = Load(name);
  if (!w.error.empty()) return state.SkipWithError(w.error.c_str());
  const std::size_t batch_size = static_cast<std::size_t>(state.range(0));
  std::vector<InputBatch> batches;
  for (std::size_t begin = 0; begin < w.rows.rows; begin += batch_size) {
    batches.push_back(
        Slice(w.rows, begin, std::min(batch_size, w.rows.rows - begin)));
  }
  Engine engine(*w.pipeline, {.inline_rows = kNoLimit});
  BatchResult result;
  double worst = 0.0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    engine.Run(batches[b], result);
    worst = std::max(worst, MaxDiff(w, b * batch_size, result));
  }
  state.counters["max_abs_diff"] = worst;
  state.counters["allocs_per_run"] =
      AllocationsPerRun(engine, batches.front(), result, 100);
  if (!(worst <= 1e-12)) {
    return state.SkipWithError(
        "the engine's output differs from the hand loop's");
  }
  for (auto _ : state) {
    for (const InputBatch& batch : batches) {
      engine.Run(batch, result);
      benchmark::DoNotOptimize(result.probabilities.data());
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.rows.rows));
}

void BM_HandFused(benchmark::State& state, const std::string& name) {
  Workload& w = Load(name);
  if (!w.error.empty()) return state.SkipWithError(w.error.c_str());
  std::vector<double> out(w.hand.size());
  std::vector<std::uint8_t> ok(w.hand_ok.size());
  for (auto _ : state) {
    HandFuse(w.models, w.classes, w.rows, out, ok);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.rows.rows));
}

void BM_HandFusedBlocked(benchmark::State& state, const std::string& name) {
  Workload& w = Load(name);
  if (!w.error.empty()) return state.SkipWithError(w.error.c_str());
  std::vector<double> out(w.hand.size());
  std::vector<std::uint8_t> ok(w.hand_ok.size());
  HandFuseBlocked(w.models, w.classes, w.rows, out, ok);
  if (ok != w.hand_ok || out != w.hand) {
    return state.SkipWithError("the blocked loop differs from the plain one");
  }
  for (auto _ : state) {
    HandFuseBlocked(w.models, w.classes, w.rows, out, ok);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w.rows.rows));
}

void BM_EngineOneRow(benchmark::State& state, const std::string& name) {
  Workload& w = Load(name);
  if (!w.error.empty()) return state.SkipWithError(w.error.c_str());
  // The first row with every view present: the most work a row can bring.
  std::size_t row = 0;
  auto all_present = [&](std::size_t r) {
    return std::all_of(
        w.rows.columns.begin(), w.rows.columns.end(),
        [r](const InputColumn& column) { return column.present[r] != 0; });
  };
  while (row < w.rows.rows && !all_present(row)) ++row;
  if (row == w.rows.rows) return state.SkipWithError("no row has every view");
  const InputBatch one = Slice(w.rows, row, 1);
  Engine engine(*w.pipeline, {});
  BatchResult result;
  engine.Run(one, result);
  state.counters["max_abs_diff"] = MaxDiff(w, row, result);
  state.counters["allocs_per_run"] =
      AllocationsPerRun(engine, one, result, 100);
  std::vector<double> seconds;
  seconds.reserve(1 << 20);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    engine.Run(one, result);
    benchmark::DoNotOptimize(result.probabilities.data());
    const auto stop = std::chrono::steady_clock::now();
    if (seconds.size() < seconds.capacity()) {
      seconds.push_back(std::chrono::duration<double>(stop - start).count());
    }
  }
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2,
                   seconds.end());
  state.counters["median_ns"] = seconds[seconds.size() / 2] * 1e9;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

const bool registered = [] {
  for (const std::string name : {"breast_cancer", "digits", "mfeat"}) {
    if (name == "mfeat" && !fs::exists(WorkloadRoot() / name)) continue;
    benchmark::RegisterBenchmark(("BM_HandFused/" + name).c_str(), BM_HandFused,
                                 name)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_HandFusedBlocked/" + name).c_str(),
                                 BM_HandFusedBlocked, name)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_Engine/" + name).c_str(), BM_Engine, name)
        ->Arg(64)
        ->Arg(256)
        ->Arg(1024)
        ->Arg(4096)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_EngineOneRow/" + name).c_str(),
                                 BM_EngineOneRow, name)
        ->Unit(benchmark::kNanosecond);
  }
  return true;
}();

}  // namespace
}  // namespace latefuse

BENCHMARK_MAIN();
