// libFuzzer target: the pipeline file parser (core/pipeline_config.h) on any
// text. Beyond crashes, leaks and undefined behaviour, a pipeline it accepts
// must keep DESIGN's rules, and every `params` / `fit` it hands a plugin must
// be valid JSON.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "core/pipeline_config.h"
#include "fuzz/fuzz_util.h"

namespace latefuse::fuzz {
namespace {

void CheckJson(std::string_view json) {
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  Check(parser.parse(json.data(), json.size()).get(doc) == simdjson::SUCCESS,
        "params and fit are valid JSON");
}

void CheckAccepted(const PipelineConfig& config) {
  Check(!config.name.empty(), "a pipeline has a name");
  Check(!config.modalities.empty(), "a pipeline has a modality");
  Check(!config.plugin_dirs.empty(), "a pipeline has plugin_dirs");
  const std::set<std::string> classes(config.classes.begin(),
                                      config.classes.end());
  Check(classes.size() == config.classes.size(), "classes are unique");
  Check(config.task == Task::kRegression ? config.classes.empty()
                                         : config.classes.size() >= 2,
        "classification has two or more classes, regression none");
  std::set<std::string> names;
  for (const ModalityConfig& m : config.modalities) {
    Check(names.insert(m.name).second, "modality names are unique");
    Check((m.input_kind == InputKind::kDense) == (m.input_size > 0),
          "dense inputs, and only they, have a size");
  }
  Check(config.policy.min_modalities >= 1 &&
            static_cast<std::size_t>(config.policy.min_modalities) <=
                config.modalities.size(),
        "min_modalities is 1..modalities");
  ForEachPluginRef(config, [](const std::string&, const PluginRef& ref) {
    Check(!ref.plugin.empty(), "every plugin reference names a plugin");
    CheckJson(ref.params_json);
    if (ref.fit_json) CheckJson(*ref.fit_json);
  });
}

}  // namespace
}  // namespace latefuse::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<latefuse::PipelineConfig> config =
      latefuse::ParsePipeline(text, "/fuzz/pipeline.yaml");
  if (config.ok()) {
    latefuse::fuzz::CheckAccepted(*config);
  } else {
    latefuse::fuzz::Check(!config.status().message().empty(),
                          "a refusal says why");
  }
  return 0;
}
