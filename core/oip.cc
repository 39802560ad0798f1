#include "core/oip.h"

#include <simdjson.h>

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/json_text.h"
#include "core/output.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using simdjson::dom::element;

// Nesting deeper than a [R, width] tensor needs is refused, not followed.
constexpr int kMaxTensorDepth = 2;

absl::Status Invalid(std::string_view input, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("input '", absl::string_view(input.data(), input.size()),
                   "': ", absl::string_view(problem.data(), problem.size())));
}

// The leaves of `data` (flat, or nested up to kMaxTensorDepth), in row-major
// order; false when nesting goes deeper.
bool Flatten(element data, int depth, std::vector<element>& leaves) {
  simdjson::dom::array array;
  if (data.get_array().get(array) != simdjson::SUCCESS) {
    leaves.push_back(data);
    return true;
  }
  if (depth == kMaxTensorDepth) return false;
  for (element item : array) {
    if (!Flatten(item, depth + 1, leaves)) return false;
  }
  return true;
}

// The tensor's shape, checked against what modality `m` takes; the number of
// rows.
absl::StatusOr<std::size_t> ReadShape(const ModalityConfig& m, element input) {
  simdjson::dom::array shape;
  if (input["shape"].get_array().get(shape) != simdjson::SUCCESS) {
    return Invalid(m.name, "\"shape\": expected a list of integers");
  }
  std::vector<std::int64_t> dims;
  for (element dim : shape) {
    std::int64_t d = 0;
    if (dim.get_int64().get(d) != simdjson::SUCCESS || d < 0) {
      return Invalid(m.name, "\"shape\": expected non-negative integers");
    }
    dims.push_back(d);
  }
  const bool dense = m.input_kind == InputKind::kDense;
  const bool fits =
      dense ? dims.size() == 2 &&
                  dims[1] == static_cast<std::int64_t>(m.input_size)
            : dims.size() == 1 || (dims.size() == 2 && dims[1] == 1);
  if (!fits) {
    std::string got = "[";
    for (std::size_t i = 0; i < dims.size(); ++i)
      absl::StrAppend(&got, i > 0 ? ", " : "", dims[i]);
    got += "]";
    return Invalid(
        m.name, dense ? fmt::format("\"shape\": expected [rows, {}], got {}",
                                    m.input_size, got)
                      : fmt::format("\"shape\": expected [rows], got {}", got));
  }
  return static_cast<std::size_t>(dims[0]);
}

// Fills `column` from one input tensor of `rows` rows.
absl::Status ReadInput(const ModalityConfig& m, element input, std::size_t rows,
                       std::vector<element>& leaves, InputColumn& column) {
  std::string_view datatype;
  if (input["datatype"].get_string().get(datatype) != simdjson::SUCCESS) {
    return Invalid(m.name, "\"datatype\": expected a string");
  }
  const bool dense = m.input_kind == InputKind::kDense;
  if (dense ? datatype != "FP32" && datatype != "FP64" : datatype != "BYTES") {
    return Invalid(m.name, fmt::format("\"datatype\": expected {}, got {}",
                                       dense ? "FP32 or FP64" : "BYTES",
                                       std::string(datatype).substr(0, 16)));
  }
  element data;
  leaves.clear();
  if (input["data"].get(data) != simdjson::SUCCESS ||
      !data.is<simdjson::dom::array>() || !Flatten(data, /*depth=*/0, leaves)) {
    return Invalid(m.name,
                   "\"data\": expected a list (flat or nested as the "
                   "shape)");
  }
  const std::size_t width = dense ? m.input_size : 1;
  // Compared by division: rows comes from the client and rows * width may
  // overflow.
  if (leaves.size() % width != 0 || leaves.size() / width != rows) {
    return Invalid(m.name,
                   fmt::format("\"data\": expected one value per "
                               "element of shape [{}{}], got {}",
                               rows, dense ? fmt::format(", {}", width) : "",
                               leaves.size()));
  }
  column.present.assign(rows, 1);
  element present;
  if (input["parameters"]["present"].get(present) == simdjson::SUCCESS) {
    simdjson::dom::array flags;
    std::size_t r = 0;
    if (present.get_array().get(flags) == simdjson::SUCCESS) {
      for (element flag : flags) {
        bool value = false;
        if (r == rows || flag.get_bool().get(value) != simdjson::SUCCESS) {
          r = rows + 1;
          break;
        }
        column.present[r++] = value ? 1 : 0;
      }
    }
    if (r != rows) {
      return Invalid(m.name, fmt::format("\"parameters.present\": expected a "
                                         "list of {} booleans",
                                         rows));
    }
  }
  // Every value is checked, also those of rows marked missing: a tensor
  // holds values of its datatype throughout.
  for (std::size_t r = 0; r < rows; ++r) {
    if (dense) {
      for (std::size_t j = 0; j < width; ++j) {
        double number = 0;
        if (leaves[r * width + j].get_double().get(number) !=
                simdjson::SUCCESS ||
            !(std::fabs(number) < kFloat32Overflow)) {
          return Invalid(m.name, fmt::format("\"data\"[{}]: expected a finite "
                                             "float32 number",
                                             r * width + j));
        }
        if (column.present[r])
          column.dense.push_back(static_cast<float>(number));
      }
      continue;
    }
    std::string_view text;
    if (leaves[r].get_string().get(text) != simdjson::SUCCESS) {
      return Invalid(m.name, fmt::format("\"data\"[{}]: expected a string", r));
    }
    if (!column.present[r]) continue;
    if (m.input_kind == InputKind::kText) {
      column.items.emplace_back(text);
    } else if (!absl::Base64Unescape(
                   absl::string_view(text.data(), text.size()),
                   &column.items.emplace_back())) {
      return Invalid(m.name,
                     fmt::format("\"data\"[{}]: expected base64 text", r));
    }
  }
  return absl::OkStatus();
}

void AppendShape(std::size_t rows, std::size_t width, std::string& out) {
  if (width == 0) {
    fmt::format_to(std::back_inserter(out), "[{}]", rows);
  } else {
    fmt::format_to(std::back_inserter(out), "[{}, {}]", rows, width);
  }
}

}  // namespace

absl::Status ParseInferRequest(const PipelineConfig& config,
                               std::string_view body, InputBatch& batch,
                               OipRequest& request) {
  // One parser per server thread: it keeps its buffers between requests.
  thread_local simdjson::dom::parser parser;
  thread_local std::vector<element> leaves;
  request = OipRequest();
  const std::size_t K = config.modalities.size();
  batch.Clear();
  batch.columns.resize(K);
  element doc;
  if (const auto error = parser.parse(body.data(), body.size()).get(doc);
      error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the body is not valid JSON: ", simdjson::error_message(error)));
  }
  simdjson::dom::object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  element id;
  if (root["id"].get(id) == simdjson::SUCCESS) {
    std::string_view text;
    if (id.get_string().get(text) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("\"id\": expected a string");
    }
    request.has_id = true;
    request.id = std::string(text);
  }
  element outputs;
  if (root["outputs"].get(outputs) == simdjson::SUCCESS) {
    simdjson::dom::array list;
    if (outputs.get_array().get(list) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          "\"outputs\": expected a list of {\"name\": ...}");
    }
    request.probabilities = request.label = false;
    const bool regression = config.task == Task::kRegression;
    for (element output : list) {
      std::string_view name;
      if (output["name"].get_string().get(name) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            "\"outputs\": expected a list of {\"name\": ...}");
      }
      if (name == (regression ? "prediction" : "probabilities")) {
        request.probabilities = true;
      } else if (name == "label" && !regression) {
        request.label = true;
      } else {
        return absl::InvalidArgumentError(fmt::format(
            "\"outputs\": unknown output '{}'; this model has {}",
            std::string(name).substr(0, 64),
            regression ? "'prediction'" : "'probabilities' and 'label'"));
      }
    }
  }
  simdjson::dom::array inputs;
  if (root["inputs"].get_array().get(inputs) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        "\"inputs\": expected a list of input tensors");
  }
  std::vector<std::uint8_t> seen(K, 0);
  bool have_rows = false;
  for (element input : inputs) {
    std::string_view name;
    if (input["name"].get_string().get(name) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          "\"inputs\": each input needs a \"name\" (a string)");
    }
    std::size_t k = 0;
    while (k < K && config.modalities[k].name != name) ++k;
    if (k == K) {
      std::string names;
      for (const ModalityConfig& m : config.modalities)
        absl::StrAppend(&names, names.empty() ? "" : ", ", "'", m.name, "'");
      return absl::InvalidArgumentError(
          fmt::format("unknown input '{}'; this model's inputs are {}",
                      std::string(name).substr(0, 64), names));
    }
    if (seen[k]) return Invalid(name, "sent twice");
    seen[k] = 1;
    const ModalityConfig& m = config.modalities[k];
    absl::StatusOr<std::size_t> rows = ReadShape(m, input);
    if (!rows.ok()) return rows.status();
    if (have_rows && *rows != batch.rows) {
      return Invalid(name, fmt::format("{} rows, but an earlier input has {}; "
                                       "every input must have the same rows",
                                       *rows, batch.rows));
    }
    have_rows = true;
    batch.rows = *rows;
    LATEFUSE_RETURN_IF_ERROR(
        ReadInput(m, input, *rows, leaves, batch.columns[k]));
  }
  if (!have_rows) {
    return absl::InvalidArgumentError(
        "\"inputs\": no input tensor, so no rows to infer");
  }
  const std::size_t rows = batch.rows;
  for (std::size_t k = 0; k < K; ++k) {
    if (!seen[k]) batch.columns[k].present.assign(rows, 0);
  }
  batch.ids.assign(rows, std::string());
  batch.has_id.assign(rows, 0);
  batch.labels.assign(rows, std::string());
  batch.has_label.assign(rows, 0);
  batch.errors.assign(rows, std::string());
  return absl::OkStatus();
}

void AppendInferResponse(const PipelineConfig& config,
                         const OipRequest& request, const InputBatch& batch,
                         const BatchResult& result, std::string& out) {
  const std::size_t rows = result.rows;
  const std::size_t C = ValuesPerRow(config);
  const bool regression = config.task == Task::kRegression;
  out += "{\"model_name\": ";
  AppendJsonString(config.name, out);
  if (request.has_id) {
    out += ", \"id\": ";
    AppendJsonString(request.id, out);
  }
  out += ", \"outputs\": [";
  bool first = true;
  if (request.probabilities) {
    first = false;
    out += regression ? "{\"name\": \"prediction\", \"datatype\": \"FP64\", "
                        "\"shape\": "
                      : "{\"name\": \"probabilities\", \"datatype\": \"FP64\", "
                        "\"shape\": ";
    AppendShape(rows, regression ? 0 : C, out);
    out += ", \"data\": [";
    const std::size_t width = regression ? 1 : C;
    for (std::size_t r = 0; r < rows; ++r) {
      const bool ok = result.status[r] == RowStatus::kOk;
      for (std::size_t c = 0; c < width; ++c) {
        if (r + c > 0) out += ", ";
        fmt::format_to(std::back_inserter(out), "{}",
                       ok ? result.probabilities[r * C + c] : 0.0);
      }
    }
    out += "]}";
  }
  if (request.label && !regression) {
    if (!first) out += ", ";
    out += "{\"name\": \"label\", \"datatype\": \"BYTES\", \"shape\": ";
    AppendShape(rows, 0, out);
    out += ", \"data\": [";
    for (std::size_t r = 0; r < rows; ++r) {
      if (r > 0) out += ", ";
      if (result.status[r] == RowStatus::kOk) {
        AppendJsonString(
            config.classes[ArgMax(result.probabilities.data() + r * C, C)],
            out);
      } else {
        out += "\"\"";
      }
    }
    out += "]}";
  }
  out += "], \"parameters\": {\"rows\": [";
  const RecordWriter records(config, {});
  for (std::size_t r = 0; r < rows; ++r) {
    if (r > 0) out += ", ";
    fmt::format_to(std::back_inserter(out), "{{\"status\": \"{}\", ",
                   RowStatusName(result.status[r]));
    if (regression && result.status[r] == RowStatus::kOk &&
        !std::isnan(result.probabilities[r * C + 1])) {
      fmt::format_to(std::back_inserter(out), "\"variance\": {}, ",
                     result.probabilities[r * C + 1]);
    }
    records.AppendOutcome(batch, result, r, out);
    out += '}';
  }
  out += "]}}";
}

std::string ModelMetadata(const PipelineConfig& config,
                          std::string_view version) {
  std::string out = "{\"name\": ";
  AppendJsonString(config.name, out);
  out += ", \"versions\": [";
  AppendJsonString(version, out);
  out += "], \"platform\": \"latefuse\", \"inputs\": [";
  for (std::size_t k = 0; k < config.modalities.size(); ++k) {
    const ModalityConfig& m = config.modalities[k];
    if (k > 0) out += ", ";
    out += "{\"name\": ";
    AppendJsonString(m.name, out);
    if (m.input_kind == InputKind::kDense) {
      fmt::format_to(std::back_inserter(out),
                     ", \"datatype\": \"FP32\", \"shape\": [-1, {}]}}",
                     m.input_size);
    } else {
      out += ", \"datatype\": \"BYTES\", \"shape\": [-1]}";
    }
  }
  out += "], \"outputs\": [";
  if (config.task == Task::kRegression) {
    out +=
        "{\"name\": \"prediction\", \"datatype\": \"FP64\", \"shape\": [-1]}";
  } else {
    fmt::format_to(std::back_inserter(out),
                   "{{\"name\": \"probabilities\", \"datatype\": \"FP64\", "
                   "\"shape\": [-1, {}]}}, {{\"name\": \"label\", "
                   "\"datatype\": \"BYTES\", \"shape\": [-1]}}",
                   config.classes.size());
  }
  out += "], \"parameters\": {\"task\": ";
  AppendJsonString(TaskName(config.task), out);
  out += ", \"classes\": [";
  for (std::size_t c = 0; c < config.classes.size(); ++c) {
    if (c > 0) out += ", ";
    AppendJsonString(config.classes[c], out);
  }
  out += "]}}";
  return out;
}

}  // namespace latefuse
