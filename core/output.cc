#include "core/output.h"

#include <cmath>

#include "core/json_text.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

// {"class": p, ...} for the C values at p.
void AppendDistribution(const std::vector<std::string>& classes,
                        const double* p, std::string& out) {
  out += '{';
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (c > 0) out += ", ";
    AppendJsonString(classes[c], out);
    fmt::format_to(std::back_inserter(out), ": {}", p[c]);
  }
  out += '}';
}

// "prediction": x, and "variance": v unless v (a regression row's second
// value) is NaN, i.e. not reported.
void AppendPrediction(const double* values, std::string& out) {
  fmt::format_to(std::back_inserter(out), "\"prediction\": {}", values[0]);
  if (!std::isnan(values[1])) {
    fmt::format_to(std::back_inserter(out), ", \"variance\": {}", values[1]);
  }
}

const char* StatusName(RowStatus status) {
  switch (status) {
    case RowStatus::kOk:
      return "ok";
    case RowStatus::kAbstain:
      return "abstain";
    case RowStatus::kError:
      return "error";
  }
  return "error";
}

}  // namespace

void AppendRecord(const PipelineConfig& config, const InputBatch& batch,
                  const BatchResult& result, std::size_t row,
                  const OutputOptions& options, std::string& out) {
  const std::size_t rows = result.rows;
  const std::size_t K = config.modalities.size();
  const bool regression = config.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config);
  const RowStatus status = result.status[row];
  const bool parsed = batch.errors[row].empty();

  out += "{\"id\": ";
  if (batch.has_id[row]) {
    AppendJsonString(batch.ids[row], out);
  } else {
    out += "null";
  }
  fmt::format_to(std::back_inserter(out), ", \"status\": \"{}\"",
                 StatusName(status));
  if (regression) {
    if (status == RowStatus::kOk) {
      out += ", ";
      AppendPrediction(result.probabilities.data() + row * C, out);
    } else {
      out += ", \"prediction\": null";
    }
  } else if (status == RowStatus::kOk) {
    const double* p = result.probabilities.data() + row * C;
    std::size_t best = 0;
    for (std::size_t c = 1; c < C; ++c) {
      if (p[c] > p[best]) best = c;
    }
    out += ", \"label\": ";
    AppendJsonString(config.classes[best], out);
    out += ", \"probabilities\": ";
    AppendDistribution(config.classes, p, out);
  } else {
    out += ", \"label\": null, \"probabilities\": null";
  }

  // used / missing / failed, in pipeline order. A line that did not parse has
  // none.
  out += ", \"used\": [";
  bool first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.used[k * rows + row]) continue;
    if (!first) out += ", ";
    first = false;
    AppendJsonString(config.modalities[k].name, out);
  }
  out += "], \"missing\": [";
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (batch.columns[k].present[row]) continue;
    if (!first) out += ", ";
    first = false;
    AppendJsonString(config.modalities[k].name, out);
  }
  out += "], \"failed\": {";
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.failed[k * rows + row]) continue;
    if (!first) out += ", ";
    first = false;
    AppendJsonString(config.modalities[k].name, out);
    out += ": ";
    AppendJsonString(result.failures[k], out);
  }
  out += '}';
  if (status == RowStatus::kError) {
    out += ", \"error\": ";
    AppendJsonString(result.errors[row], out);
  }
  if (options.per_modality && parsed) {
    out += ", \"modalities\": {";
    first = true;
    for (std::size_t k = 0; k < K; ++k) {
      if (!result.used[k * rows + row]) continue;
      if (!first) out += ", ";
      first = false;
      AppendJsonString(config.modalities[k].name, out);
      out += ": ";
      const double* values =
          result.modality_probabilities.data() + (k * rows + row) * C;
      if (regression) {
        out += '{';
        AppendPrediction(values, out);
        out += '}';
      } else {
        AppendDistribution(config.classes, values, out);
      }
    }
    out += '}';
  }
  if (options.explain && status == RowStatus::kOk &&
      !result.explanation.empty()) {
    out += ", \"weights\": {";
    for (std::size_t k = 0; k < K; ++k) {
      if (k > 0) out += ", ";
      AppendJsonString(config.modalities[k].name, out);
      fmt::format_to(std::back_inserter(out), ": {}",
                     result.explanation[row * K + k]);
    }
    out += '}';
  }
  out += "}\n";
}

}  // namespace latefuse
