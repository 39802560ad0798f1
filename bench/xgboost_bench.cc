// The `xgboost` plugin's infer through the ABI beside libxgboost's own C API
// predict on the same booster settings and the same rows, in one program.
//
//   build/bench/xgboost_bench [--benchmark_filter=...]
//
// Model: tests/fixtures/xgboost/multiclass/model.ubj (3 classes, 6 features,
// 20 rounds of depth-3 trees, multi:softprob). Rows: the fixture's 52 cases
// (10 with NaN features) repeated to the batch size. Both sides use nthread 1.
// Items per second are rows per second.
#include <benchmark/benchmark.h>
#include <latefuse/plugin.h>
#include <xgboost/c_api.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/host_api.h"
#include "core/plugin_loader.h"

namespace latefuse {
namespace {

const std::filesystem::path kFixture = std::filesystem::path(
    LATEFUSE_SOURCE_DIR "/tests/fixtures/xgboost/multiclass");
constexpr std::size_t kClasses = 3;

// The fixture's rows (NaN where null) repeated to `rows` rows, and the width.
std::vector<float> Rows(std::size_t rows, std::size_t* width) {
  std::ifstream in(kFixture / "cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  *width = cases["num_features"].get<std::size_t>();
  std::vector<float> out;
  out.reserve(rows * *width);
  for (std::size_t r = 0; r < rows; ++r) {
    for (const nlohmann::json& v :
         cases["inputs"][r % cases["inputs"].size()]) {
      out.push_back(v.is_null() ? std::numeric_limits<float>::quiet_NaN()
                                : v.get<float>());
    }
  }
  return out;
}

void PluginInfer(benchmark::State& state) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0));
  std::size_t width = 0;
  const std::vector<float> dense = Rows(rows, &width);
  absl::StatusOr<LoadedPlugin> plugin = LoadPluginFile(LATEFUSE_PLUGIN_FILE);
  if (!plugin.ok()) {
    state.SkipWithError(std::string(plugin.status().message()).c_str());
    return;
  }
  const LfModelApi& api = *plugin->descriptor->model;
  const std::string params = nlohmann::json{
      {"model", (kFixture / "model.ubj").string()},
      {"nthread", 1}}.dump();
  const std::string base_dir = kFixture.string();
  const char* labels[kClasses] = {"low", "medium", "high"};
  LfCreateContext context{};
  context.struct_size = sizeof(LfCreateContext);
  context.params_json = params.data();
  context.params_json_size = params.size();
  context.base_dir = base_dir.c_str();
  context.instance_name = "bench";
  context.num_classes = kClasses;
  context.class_labels = labels;
  context.task = LF_TASK_CLASSIFICATION;
  void* instance = nullptr;
  if (absl::Status status =
          TakeStatus(api.create(&context, &instance), "create");
      !status.ok()) {
    state.SkipWithError(std::string(status.message()).c_str());
    return;
  }
  const LfBatch batch{sizeof(LfBatch), LF_INPUT_DENSE, rows,
                      width,           dense.data(),   nullptr};
  std::vector<double> out(rows * kClasses);
  LfProbabilities probabilities{sizeof(LfProbabilities), rows, kClasses,
                                out.data()};
  for (auto _ : state) {
    if (absl::Status status =
            TakeStatus(api.infer(instance, &batch, &probabilities), "infer");
        !status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  api.destroy(instance);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows));
}

void XgboostPredictFromDense(benchmark::State& state) {
  const std::size_t rows = static_cast<std::size_t>(state.range(0));
  std::size_t width = 0;
  const std::vector<float> dense = Rows(rows, &width);
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0 ||
      XGBoosterLoadModel(booster, (kFixture / "model.ubj").c_str()) != 0 ||
      XGBoosterSetParam(booster, "nthread", "1") != 0) {
    state.SkipWithError(XGBGetLastError());
    if (booster != nullptr) XGBoosterFree(booster);
    return;
  }
  const std::string array =
      R"({"data": [)" +
      std::to_string(reinterpret_cast<std::uintptr_t>(dense.data())) +
      R"(, true], "shape": [)" + std::to_string(rows) + ", " +
      std::to_string(width) +
      R"(], "strides": null, "typestr": "<f4", "version": 3})";
  const char* config =
      R"({"type": 0, "training": false, "iteration_begin": 0, )"
      R"("iteration_end": 0, "strict_shape": false, "missing": NaN, "cache_id": 0})";
  for (auto _ : state) {
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster, array.c_str(), config, nullptr,
                                  &shape, &dims, &result) != 0) {
      state.SkipWithError(XGBGetLastError());
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  XGBoosterFree(booster);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows));
}

BENCHMARK(PluginInfer)->Arg(16)->Arg(1024);
BENCHMARK(XgboostPredictFromDense)->Arg(16)->Arg(1024);

}  // namespace
}  // namespace latefuse

BENCHMARK_MAIN();
