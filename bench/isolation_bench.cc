// The cost of `isolation: process`: one model call (ModelInstance::Infer, as
// the engine makes it) of the demo's `vitals` model (the `linear` plugin, 12
// features) in process and in a worker process, for 1 and 1024 rows.
//
//   build/bench/isolation_bench
//
// The difference between the two at the same row count is what isolation
// adds per batch: the batch's and the output's trip over the socket and the
// two context switches.
#include <benchmark/benchmark.h>
#include <latefuse/plugin.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/pipeline.h"
#include "core/pipeline_config.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;

// The demo's vitals modality alone, with the given isolation.
std::unique_ptr<Pipeline> LoadVitals(const std::string& isolation) {
  const fs::path plugins =
      fs::path(LATEFUSE_PLUGIN_FILE).parent_path().parent_path().parent_path();
  const fs::path demo = fs::path(LATEFUSE_SOURCE_DIR) / "configs" / "demo";
  const std::string yaml =
      "apiVersion: latefuse/v1\nname: bench\nclasses: [stable, "
      "deteriorating]\nplugin_dirs: [\"" +
      plugins.string() +
      "\"]\nmodalities:\n  - name: vitals\n    input: {kind: dense, size: "
      "12}\n    model: {plugin: linear, params: {model: models/vitals.json}}\n"
      "    isolation: " +
      isolation + "\ncombiner: {plugin: mean}\n";
  absl::StatusOr<PipelineConfig> config =
      ParsePipeline(yaml, demo / "bench.yaml");
  if (!config.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Pipeline::Load(*std::move(config));
  return pipeline.ok() ? *std::move(pipeline) : nullptr;
}

void BM_VitalsInfer(benchmark::State& state, const std::string& isolation) {
  std::unique_ptr<Pipeline> pipeline = LoadVitals(isolation);
  if (pipeline == nullptr) {
    state.SkipWithError("the pipeline did not load");
    return;
  }
  ModelInstance& model = *pipeline->modalities()[0].instance;
  const auto rows = static_cast<std::size_t>(state.range(0));
  std::mt19937 random(7);
  std::normal_distribution<float> feature(0.0f, 1.0f);
  std::vector<float> dense(rows * 12);
  for (float& x : dense) x = feature(random);
  LfBatch batch{sizeof(LfBatch), LF_INPUT_DENSE, rows, 12,
                dense.data(),    nullptr};
  std::vector<double> buffer;
  LfProbabilities out{};
  for (auto _ : state) {
    PrepareModelOutput(rows, 2, buffer, out);
    const absl::Status status = model.Infer(batch, out);
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<long>(rows));
}

BENCHMARK_CAPTURE(BM_VitalsInfer, in_process, std::string("in_process"))
    ->Arg(1)
    ->Arg(1024)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_VitalsInfer, process, std::string("process"))
    ->Arg(1)
    ->Arg(1024)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace latefuse

BENCHMARK_MAIN();
