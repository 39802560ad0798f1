// latefuse-plugin-harness: run one latefuse plugin on a batch, with no host.
//
//   latefuse-plugin-harness describe build/linear/1.1.0/linear.so
//   latefuse-plugin-harness run threshold.so --params '{"cut": 2}'
//       --classes low,high --input rows.jsonl
//
// A thin command line over <latefuse/testing.hpp>, built from the SDK alone.
// latefuse_add_plugin() runs `describe` on every plugin it builds to write the
// manifest from the plugin's own descriptor; plugin teams use `run` to try a
// plugin on rows without writing a pipeline. `--help` says everything.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <latefuse/testing.hpp>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace lft = latefuse::sdk::testing;
using latefuse::sdk::InvalidArgument;
using latefuse::sdk::Result;
using latefuse::sdk::Status;
using Json = nlohmann::ordered_json;

constexpr char kUsage[] =
    R"(latefuse-plugin-harness: run one latefuse plugin on a batch, with no host.

Usage:
  latefuse-plugin-harness describe PLUGIN.so [--params JSON] [--classes A,B,...]
                          [--modalities M,N,...] [--task T] [--base-dir DIR]
  latefuse-plugin-harness run PLUGIN.so [--params JSON] [--classes A,B,...]
                          [--modalities M,N,...] [--task T] [--base-dir DIR]
                          [--input FILE|-]
  latefuse-plugin-harness --help | --version

The plugin is loaded with the host's checks: a regular file that neither it nor
its folder lets group or others write, the entry symbol latefuse_plugin_v1, the
ABI (same major, minor not newer than this SDK's), a sane descriptor.

describe  Prints the descriptor as one JSON object: name, version, kind (model |
          combiner), abi {major, minor}, description, license, build. With
          --params it also creates an instance and adds what describe says as
          "contract": a model's {"input": {"kind": dense|text|bytes, "size": N
          (dense only)}, "classes": [...], "reports_variance": bool}, a
          combiner's {"explains": bool}; without --params "contract" is null.
          latefuse_add_plugin() writes each plugin's manifest.json from this.

run       Creates an instance (params default {}) and makes ONE call on the
          whole input: a model's infer, a combiner's combine. The input is JSON
          Lines, one row per line:
            dense model   an array of exactly WIDTH numbers    [72.0, 118.5, 0.3]
            text model    a string                             "pt alert, oriented"
            bytes model   a base64 string                      "AAEC/w=="
            combiner      an object: modality -> an array of C numbers, or null
                          (or absent) when missing    {"a": [0.9, 0.1], "b": null}
          Prints one JSON array per input line, in order: the probabilities in
          the contract's class order; regression: [prediction, variance], the
          variance null when the plugin reports none. The answer is checked as
          the host checks it (finite, in [0, 1], summing to 1).

Options:
  --params JSON       the plugin's params, a JSON object (a pipeline's `params`)
  --classes A,B,...   the class labels, in order (classification); a model must
                      describe exactly these
  --modalities M,...  combiners: the pipeline's modalities, in order (the K axis)
  --task T            classification (default) or regression
  --base-dir DIR      where relative paths in params resolve (default: the
                      current directory)
  --input FILE|-      run: the rows (default -, standard input)

Exit status: 0 on success; 1 when the plugin fails a check or a call, or the
input is bad (the message names the line and what is wrong); 2 on a usage error.
)";

struct Args {
  std::string command;
  std::string plugin;
  std::optional<std::string> params;
  std::vector<std::string> classes;
  std::vector<std::string> modalities;
  LfTask task = LF_TASK_CLASSIFICATION;
  std::string base_dir;
  std::string input = "-";
};

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

// Fills `args` from argv; on a usage error returns why.
std::string ParseArgs(int argc, char** argv, Args& args) {
  args.command = argv[1];
  if (args.command != "describe" && args.command != "run") {
    return "unknown command '" + args.command + "' (describe or run)";
  }
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> value;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
    }
    const bool takes_value = arg == "--params" || arg == "--classes" ||
                             arg == "--modalities" || arg == "--task" ||
                             arg == "--base-dir" || arg == "--input";
    if (takes_value && !value) {
      if (i + 1 == argc) return arg + " needs a value";
      value = argv[++i];
    }
    if (arg == "--params") {
      args.params = *value;
    } else if (arg == "--classes") {
      args.classes = SplitCommas(*value);
    } else if (arg == "--modalities") {
      args.modalities = SplitCommas(*value);
    } else if (arg == "--task") {
      if (*value == "classification") {
        args.task = LF_TASK_CLASSIFICATION;
      } else if (*value == "regression") {
        args.task = LF_TASK_REGRESSION;
      } else {
        return "--task: expected classification or regression, got '" + *value +
               "'";
      }
    } else if (arg == "--base-dir") {
      args.base_dir = *value;
    } else if (arg == "--input" && args.command == "run") {
      args.input = *value;
    } else if (arg.rfind("-", 0) == 0 && arg != "-") {
      return "unknown option '" + arg + "' for " + args.command;
    } else if (args.plugin.empty()) {
      args.plugin = arg;
    } else {
      return "unexpected argument '" + arg + "'";
    }
  }
  if (args.plugin.empty()) return args.command + ": PLUGIN.so is required";
  for (const std::string& label : args.classes) {
    if (label.empty()) return "--classes: an empty class label";
  }
  for (const std::string& name : args.modalities) {
    if (name.empty()) return "--modalities: an empty modality name";
  }
  return "";
}

lft::InstanceOptions Options(const Args& args) {
  lft::InstanceOptions options;
  options.params_json = args.params.value_or("{}");
  options.classes = args.classes;
  options.modalities = args.modalities;
  options.task = args.task;
  options.base_dir = args.base_dir;
  return options;
}

const char* InputKindName(LfInputKind kind) {
  switch (kind) {
    case LF_INPUT_DENSE:
      return "dense";
    case LF_INPUT_TEXT:
      return "text";
    case LF_INPUT_BYTES:
      return "bytes";
  }
  return "unknown";
}

Json ModelContractJson(const latefuse::sdk::ModelContract& contract) {
  Json input = {{"kind", InputKindName(contract.input_kind)}};
  if (contract.input_kind == LF_INPUT_DENSE) {
    input["size"] = contract.input_width;
  }
  return {{"input", std::move(input)},
          {"classes", contract.classes},
          {"reports_variance", contract.reports_variance}};
}

Result<Json> Describe(const Args& args, const lft::Plugin& plugin) {
  const lft::PluginInfo& info = plugin.info();
  Json out = {
      {"name", info.name},
      {"version", info.version},
      {"kind", info.kind == LF_KIND_MODEL ? "model" : "combiner"},
      {"abi", {{"major", info.abi_major}, {"minor", info.abi_minor}}},
      {"description", info.description},
      {"license", info.license},
      {"build", info.build_info},
      {"contract", nullptr},
  };
  if (!args.params) return out;
  if (info.kind == LF_KIND_MODEL) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(lft::Model model,
                                  plugin.CreateModel(Options(args)));
    out["contract"] = ModelContractJson(model.contract());
  } else {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(lft::Combiner combiner,
                                  plugin.CreateCombiner(Options(args)));
    out["contract"] = {{"explains", combiner.contract().explains}};
  }
  return out;
}

// ---- Reading rows

// The input's lines, each parsed, with the name used in messages.
struct Lines {
  std::string name;
  std::vector<nlohmann::json> rows;
};

std::string Where(const Lines& lines, std::size_t index) {
  return lines.name + ":" + std::to_string(index + 1) + ": ";
}

Result<Lines> ReadLines(const std::string& input) {
  std::ifstream file;
  if (input != "-") {
    file.open(input);
    if (!file) {
      return latefuse::sdk::NotFound("cannot open input '" + input +
                                     "': " + std::strerror(errno));
    }
  }
  std::istream& in = input == "-" ? std::cin : file;
  Lines lines{input == "-" ? "<stdin>" : input, {}};
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = lines.name + ":" + std::to_string(number) + ": ";
    if (line.find_first_not_of(" \t") == std::string::npos) {
      return InvalidArgument(where + "empty line (one row per line)");
    }
    try {
      lines.rows.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::parse_error& e) {
      const std::string what = e.what();
      const std::size_t colon = what.find(": ");
      return InvalidArgument(
          where + "column " + std::to_string(e.byte) + ": not valid JSON: " +
          (colon == std::string::npos ? what : what.substr(colon + 2)));
    }
  }
  if (in.bad()) {
    return InvalidArgument("cannot read input '" + lines.name + "'");
  }
  return lines;
}

// Appends the numbers of `value` (an array of `size` finite numbers) to `out`
// as T, or says what is wrong with it.
template <typename T>
std::string ReadNumbers(const nlohmann::json& value, std::size_t size,
                        const std::string& what, std::vector<T>& out) {
  if (!value.is_array()) {
    return "expected " + what + ", an array of " + std::to_string(size) +
           " numbers, got " + std::string(value.type_name());
  }
  if (value.size() != size) {
    return "expected " + what + ", an array of " + std::to_string(size) +
           " numbers, got " + std::to_string(value.size());
  }
  for (std::size_t i = 0; i < size; ++i) {
    const nlohmann::json& item = value[i];
    if (!item.is_number()) {
      return what + "[" + std::to_string(i) + "]: expected a number, got " +
             item.dump();
    }
    const double v = item.get<double>();
    if (!std::isfinite(v) ||
        std::abs(v) > static_cast<double>(std::numeric_limits<T>::max())) {
      return what + "[" + std::to_string(i) + "]: " + item.dump() +
             " is not a finite " +
             (sizeof(T) == sizeof(float) ? "float32" : "float64");
    }
    out.push_back(static_cast<T>(v));
  }
  return "";
}

// Decodes standard base64 (with padding), as the host reads bytes modalities.
std::optional<std::string> DecodeBase64(const std::string& text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    uint32_t bits = 0;
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      uint32_t digit = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
      } else {
        const char* found = std::strchr(kAlphabet, c);
        if (c == '\0' || found == nullptr || padding > 0) return std::nullopt;
        digit = static_cast<uint32_t>(found - kAlphabet);
      }
      bits = (bits << 6) | digit;
    }
    out.push_back(static_cast<char>((bits >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((bits >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(bits & 0xff));
  }
  return out;
}

// ---- Running

void PrintRows(const lft::Matrix& m) {
  Json row = Json::array();
  for (std::size_t r = 0; r < m.rows; ++r) {
    row.clear();
    for (std::size_t c = 0; c < m.columns; ++c) {
      const double v = m.At(r, c);
      // JSON has no NaN: a regression row's "no variance" prints as null.
      if (std::isnan(v)) {
        row.push_back(nullptr);
      } else {
        row.push_back(v);
      }
    }
    std::cout << row.dump() << "\n";
  }
}

// Creates the model, then reads the input and makes one infer call (none for
// no rows).
Result<lft::Matrix> RunModel(const Args& args, const lft::Plugin& plugin) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(lft::Model model,
                                plugin.CreateModel(Options(args)));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(Lines lines, ReadLines(args.input));
  const latefuse::sdk::ModelContract& contract = model.contract();
  const std::size_t rows = lines.rows.size();
  if (rows == 0) return lft::Matrix{};
  if (contract.input_kind == LF_INPUT_DENSE) {
    std::vector<float> values;
    values.reserve(rows * contract.input_width);
    for (std::size_t i = 0; i < rows; ++i) {
      const std::string why =
          ReadNumbers(lines.rows[i], contract.input_width,
                      "a dense row (the model's width)", values);
      if (!why.empty()) return InvalidArgument(Where(lines, i) + why);
    }
    return model.InferDense(values.data(), rows, contract.input_width);
  }
  const bool bytes = contract.input_kind == LF_INPUT_BYTES;
  std::vector<std::string> items;
  items.reserve(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const nlohmann::json& row = lines.rows[i];
    if (!row.is_string()) {
      return InvalidArgument(
          Where(lines, i) + "expected a " +
          (bytes ? "base64 string (bytes input)" : "string (text input)") +
          ", got " + row.type_name());
    }
    if (!bytes) {
      items.push_back(row.get<std::string>());
      continue;
    }
    std::optional<std::string> decoded = DecodeBase64(row.get<std::string>());
    if (!decoded) {
      return InvalidArgument(Where(lines, i) + "not valid base64");
    }
    items.push_back(*std::move(decoded));
  }
  return bytes ? model.InferBytes(items) : model.InferText(items);
}

// Creates the combiner, then reads the input and makes one combine call (none
// for no rows).
Result<lft::Matrix> RunCombiner(const Args& args, const lft::Plugin& plugin) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(lft::Combiner combiner,
                                plugin.CreateCombiner(Options(args)));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(Lines lines, ReadLines(args.input));
  const std::size_t k_count = args.modalities.size();
  const std::size_t c_count =
      args.task == LF_TASK_REGRESSION ? 2 : args.classes.size();
  const std::size_t rows = lines.rows.size();
  if (rows == 0) return lft::Matrix{};
  std::map<std::string, std::size_t> index;
  for (std::size_t k = 0; k < k_count; ++k) index[args.modalities[k]] = k;
  // [K, rows, C] and [K, rows]; absent entries stay NaN and 0.
  std::vector<double> block(k_count * rows * c_count,
                            std::numeric_limits<double>::quiet_NaN());
  std::vector<uint8_t> present(k_count * rows, 0);
  std::vector<double> numbers;
  numbers.reserve(c_count);
  for (std::size_t r = 0; r < rows; ++r) {
    const nlohmann::json& row = lines.rows[r];
    if (!row.is_object()) {
      return InvalidArgument(Where(lines, r) +
                             "expected an object: modality -> probabilities, "
                             "got " +
                             row.type_name());
    }
    for (const auto& [name, value] : row.items()) {
      auto found = index.find(name);
      if (found == index.end()) {
        return InvalidArgument(
            Where(lines, r) + "unknown modality '" + name +
            "' (--modalities: " + lft::internal::Join(args.modalities) + ")");
      }
      if (value.is_null()) continue;
      numbers.clear();
      const std::string why =
          ReadNumbers(value, c_count, "'" + name + "'", numbers);
      if (!why.empty()) return InvalidArgument(Where(lines, r) + why);
      const std::size_t k = found->second;
      present[k * rows + r] = 1;
      std::copy(numbers.begin(), numbers.end(),
                block.begin() +
                    static_cast<std::ptrdiff_t>((k * rows + r) * c_count));
    }
  }
  for (std::size_t r = 0; r < rows; ++r) {
    bool any = false;
    for (std::size_t k = 0; k < k_count; ++k) any |= present[k * rows + r] != 0;
    if (!any) {
      return InvalidArgument(Where(lines, r) +
                             "no modality present (the host abstains on such "
                             "a row and never combines it)");
    }
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      lft::Fused fused, combiner.Combine(block.data(), present.data(), rows));
  return std::move(fused.probabilities);
}

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "latefuse-plugin-harness: error: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (std::string(argv[1]) == "--version") {
    std::printf("latefuse-plugin-harness (latefuse plugin ABI %d.%d)\n",
                LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR);
    return 0;
  }
  Args args;
  if (const std::string why = ParseArgs(argc, argv, args); !why.empty()) {
    return Fail(why + " (see --help)", 2);
  }
  Result<lft::Plugin> plugin = lft::Plugin::Load(args.plugin);
  if (!plugin.ok()) return Fail(plugin.status().message(), 1);

  if (args.command == "describe") {
    Result<Json> described = Describe(args, *plugin);
    if (!described.ok()) return Fail(described.status().message(), 1);
    std::cout << described->dump(2) << "\n";
    return 0;
  }
  const bool model = plugin->info().kind == LF_KIND_MODEL;
  if (!model && args.modalities.empty()) {
    return Fail("run: a combiner needs --modalities", 2);
  }
  Result<lft::Matrix> out =
      model ? RunModel(args, *plugin) : RunCombiner(args, *plugin);
  if (!out.ok()) return Fail(out.status().message(), 1);
  PrintRows(*out);
  return std::cout.flush() ? 0 : Fail("cannot write the output", 1);
}
