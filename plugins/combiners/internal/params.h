// Parameter checks shared by the in-tree combiners, each error naming the key
// it is about (`params.weights.labs: expected a positive finite weight, got
// -1`), and the reading of their JSON parameter files (`params: {model:
// PATH}`).
//
//   LATEFUSE_SDK_RETURN_IF_ERROR(
//       RejectUnknownKeys(context.params.json(), "params.", {"weights"}));
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(std::vector<double> w,
//                                 OptionalWeights(context));
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_PARAMS_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_PARAMS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <latefuse/plugin.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace latefuse::combiners_internal {

// "a, b and c", for messages.
inline std::string JoinNames(std::initializer_list<const char*> names) {
  std::string out;
  std::size_t i = 0;
  for (const char* name : names) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += name;
    ++i;
  }
  return out;
}

// Fails on the first key of the JSON object `object` that is not in `allowed`;
// the message is `<prefix><key>: unknown <what> (expected ...)`.
inline sdk::Status RejectUnknownKeys(const nlohmann::json& object,
                                     const std::string& prefix,
                                     std::initializer_list<const char*> allowed,
                                     const char* what = "parameter") {
  for (const auto& item : object.items()) {
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const std::string& key = item.key();
    if (std::find_if(allowed.begin(), allowed.end(), [&](const char* name) {
          return key == name;
        }) != allowed.end()) {
      continue;
    }
    const std::string message = prefix + key + ": unknown " + what;
    if (allowed.size() == 0) {
      return sdk::InvalidArgument(message + " (this plugin takes none)");
    }
    return sdk::InvalidArgument(message + " (expected " + JoinNames(allowed) +
                                ")");
  }
  return sdk::Status();
}

enum class ValueRule {
  kPositive,  // a weight: finite and > 0
  kFinite,    // any finite number
};

// One number per pipeline modality, in pipeline order, from the mapping
// `{modality: number}` found at `where`. Every modality needs a value and every
// key must name a modality.
inline sdk::Result<std::vector<double>> ModalityValues(
    const nlohmann::json& mapping, const std::string& where,
    const std::vector<std::string>& modalities, ValueRule rule) {
  if (!mapping.is_object()) {
    return sdk::InvalidArgument(where +
                                ": expected a mapping of modality to number, "
                                "got " +
                                mapping.dump());
  }
  for (const auto& [name, value] : mapping.items()) {
    if (std::find(modalities.begin(), modalities.end(), name) ==
        modalities.end()) {
      return sdk::InvalidArgument(where + "." + name +
                                  ": no such modality in the pipeline");
    }
  }
  std::vector<double> values;
  for (const std::string& name : modalities) {
    if (!mapping.contains(name)) {
      return sdk::InvalidArgument(where + ": no value for modality '" + name +
                                  "'");
    }
    const std::string key = where + "." + name;
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        double v, sdk::Params::Convert<double>(mapping[name], key));
    if (rule == ValueRule::kPositive && !(std::isfinite(v) && v > 0.0)) {
      return sdk::InvalidArgument(key +
                                  ": expected a positive finite weight, got " +
                                  mapping[name].dump());
    }
    if (rule == ValueRule::kFinite && !std::isfinite(v)) {
      return sdk::InvalidArgument(key + ": expected a finite number, got " +
                                  mapping[name].dump());
    }
    values.push_back(v);
  }
  return values;
}

// The optional `weights: {modality: w}` parameter; 1 for every modality when
// absent.
inline sdk::Result<std::vector<double>> OptionalWeights(
    const sdk::CreateContext& context) {
  if (!context.params.Has("weights")) {
    return std::vector<double>(context.modalities.size(), 1.0);
  }
  return ModalityValues(context.params.json().at("weights"), "params.weights",
                        context.modalities, ValueRule::kPositive);
}

// A non-negative finite number option (such as `l2`), `fallback` when absent.
inline sdk::Result<double> NonNegativeOption(const sdk::Params& params,
                                             const std::string& key,
                                             double fallback) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(double v, params.GetOr(key, fallback));
  if (!(std::isfinite(v) && v >= 0.0)) {
    return sdk::InvalidArgument(
        "params." + key + ": expected a non-negative finite number, got " +
        params.json().at(key).dump());
  }
  return v;
}

// A string option restricted to `choices`, `fallback` when absent; `where`
// names it in messages.
inline sdk::Result<std::string> ChoiceOption(
    const nlohmann::json& object, const std::string& key,
    const std::string& where, std::initializer_list<const char*> choices,
    const std::string& fallback) {
  if (!object.contains(key) || object.at(key).is_null()) return fallback;
  const nlohmann::json& value = object.at(key);
  for (const char* choice : choices) {
    if (value.is_string() && value.get<std::string>() == choice) {
      return std::string(choice);
    }
  }
  return sdk::InvalidArgument(where + ": expected " + JoinNames(choices) +
                              ", got " + value.dump());
}

// A JSON parameter file a combiner reads back (what its fit wrote), opened from
// the path in `params.model`.
struct ParameterFile {
  nlohmann::json json;
  // "params.model ('/abs/path.json')": the prefix of every message about the
  // file's contents.
  std::string where;
};

// Reads the file named by `params.model`; checks that it is a JSON object whose
// "format" is `format` and whose keys are all in `keys` ("format" included).
inline sdk::Result<ParameterFile> ReadParameterFile(
    const sdk::Params& params, const std::string& format,
    std::initializer_list<const char*> keys) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(std::filesystem::path path,
                                params.GetPath("model"));
  const std::string where = "params.model ('" + path.string() + "')";
  std::ifstream in(path);
  if (!in) return sdk::NotFound(where + ": cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return sdk::InvalidArgument(where + ": not a JSON object");
  }
  if (!json.contains("format") || json["format"] != format) {
    return sdk::InvalidArgument(
        where + ": format: expected \"" + format + "\", got " +
        (json.contains("format") ? json["format"].dump() : "nothing"));
  }
  LATEFUSE_SDK_RETURN_IF_ERROR(
      RejectUnknownKeys(json, where + ": ", keys, "key"));
  return ParameterFile{std::move(json), where};
}

// For each pipeline modality, its position in the parameter file's
// "modalities" list, which must name exactly the pipeline's modalities (in any
// order).
inline sdk::Result<std::vector<std::size_t>> FileModalityOrder(
    const ParameterFile& file, const std::vector<std::string>& modalities) {
  const std::string where = file.where + ": modalities";
  const nlohmann::json* listed =
      file.json.contains("modalities") ? &file.json["modalities"] : nullptr;
  if (listed == nullptr || !listed->is_array()) {
    return sdk::InvalidArgument(where + ": expected a list of modality names");
  }
  std::vector<std::string> names;
  for (const nlohmann::json& name : *listed) {
    if (!name.is_string()) {
      return sdk::InvalidArgument(where +
                                  ": expected a list of modality names");
    }
    names.push_back(name.get<std::string>());
  }
  std::vector<std::string> sorted_file = names;
  std::vector<std::string> sorted_pipeline = modalities;
  std::sort(sorted_file.begin(), sorted_file.end());
  std::sort(sorted_pipeline.begin(), sorted_pipeline.end());
  if (sorted_file != sorted_pipeline) {
    return sdk::InvalidArgument(where + ": " + listed->dump() +
                                " are not the pipeline's modalities " +
                                nlohmann::json(modalities).dump());
  }
  std::vector<std::size_t> order;
  for (const std::string& name : modalities) {
    order.push_back(static_cast<std::size_t>(
        std::find(names.begin(), names.end(), name) - names.begin()));
  }
  return order;
}

// The list of numbers at `key` in the file, one per entry of its "modalities",
// taken in pipeline order through `order` (from FileModalityOrder).
inline sdk::Result<std::vector<double>> FileModalityList(
    const ParameterFile& file, const std::string& key,
    const std::vector<std::size_t>& order) {
  const std::string where = file.where + ": " + key;
  if (!file.json.contains(key) || !file.json[key].is_array() ||
      file.json[key].size() != order.size()) {
    return sdk::InvalidArgument(where + ": expected a list of " +
                                std::to_string(order.size()) +
                                " numbers, one per modality");
  }
  std::vector<double> values;
  for (std::size_t i : order) {
    const std::string item = where + "[" + std::to_string(i) + "]";
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        double v, sdk::Params::Convert<double>(file.json[key][i], item));
    if (!std::isfinite(v)) {
      return sdk::InvalidArgument(item + ": expected a finite number");
    }
    values.push_back(v);
  }
  return values;
}

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_PARAMS_H_
