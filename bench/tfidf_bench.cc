// The `tfidf_linear` plugin's infer on a batch of texts, called through the
// C ABI as the host calls it (rows/s in items_per_second).
//
//   build/bench/tfidf_bench
//   LATEFUSE_TFIDF_MODEL=m.json LATEFUSE_TFIDF_TEXTS=t.json tfidf_bench
//
// Without the variables it uses tests/fixtures/tfidf's
// bigram_sublinear_multiclass model and its cases, repeated to 10000 texts.
// bench/tfidf.sh runs it beside scikit-learn's predict_proba on the same texts
// and the same model.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <latefuse/plugin.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/host_api.h"

namespace {

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void Fail(benchmark::State& state, const std::string& what, LfStatus* status) {
  state.SkipWithError(
      std::string(latefuse::TakeStatus(status, what).message()).c_str());
}

void BM_TfidfLinearInfer(benchmark::State& state) {
  const std::string fixture =
      std::string(LATEFUSE_SOURCE_DIR) +
      "/tests/fixtures/tfidf/bigram_sublinear_multiclass/";
  const std::string model = Env("LATEFUSE_TFIDF_MODEL", fixture + "model.json");
  const std::string texts_path =
      Env("LATEFUSE_TFIDF_TEXTS", fixture + "cases.json");
  nlohmann::json texts_json = nlohmann::json::parse(ReadText(texts_path));
  std::vector<std::string> texts =
      texts_json.is_object()
          ? texts_json["texts"].get<std::vector<std::string>>()
          : texts_json.get<std::vector<std::string>>();
  if (!std::getenv("LATEFUSE_TFIDF_TEXTS")) {
    const std::size_t base = texts.size();
    while (texts.size() < 10000) texts.push_back(texts[texts.size() % base]);
  }

  void* handle = dlopen(LATEFUSE_PLUGIN_FILE, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return state.SkipWithError(dlerror());
  auto entry =
      reinterpret_cast<LfPluginEntryFn>(dlsym(handle, LATEFUSE_ENTRY_SYMBOL));
  const LfPluginDescriptor* plugin = entry(latefuse::HostApi());
  const LfModelApi* api = plugin->model;

  const std::string params = nlohmann::json{{"model", model}}.dump();
  LfCreateContext context{};
  context.struct_size = sizeof(context);
  context.params_json = params.data();
  context.params_json_size = params.size();
  context.base_dir = "/";
  context.instance_name = "notes";
  context.task = LF_TASK_CLASSIFICATION;
  void* instance = nullptr;
  if (LfStatus* s = api->create(&context, &instance)) {
    return Fail(state, "create", s);
  }
  LfModelContract contract{};
  contract.struct_size = sizeof(contract);
  if (LfStatus* s = api->describe(instance, &contract)) {
    return Fail(state, "describe", s);
  }

  std::vector<LfBytesView> items;
  for (const std::string& t : texts) items.push_back({t.data(), t.size()});
  LfBatch batch{sizeof(LfBatch), LF_INPUT_TEXT, items.size(), 0,
                nullptr,         items.data()};
  std::vector<double> probabilities(items.size() * contract.num_classes);
  LfProbabilities out{sizeof(LfProbabilities), items.size(),
                      contract.num_classes, probabilities.data()};
  for (auto _ : state) {
    if (LfStatus* s = api->infer(instance, &batch, &out)) {
      return Fail(state, "infer", s);
    }
    benchmark::DoNotOptimize(probabilities.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(items.size()));
  state.counters["rows"] = static_cast<double>(items.size());
  api->destroy(instance);
}
BENCHMARK(BM_TfidfLinearInfer)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
