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

// ", "shadow": {...}": for each shadowed modality present in the row, what
// its shadow answered and how that compares with the model, or its error.
void AppendShadows(const PipelineConfig& config, const BatchResult& result,
                   std::size_t row, std::string& out) {
  const std::size_t rows = result.rows;
  const bool regression = config.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config);
  out += ", \"shadow\": {";
  bool first = true;
  for (std::size_t k = 0; k < result.shadowed.size(); ++k) {
    const std::size_t at = k * rows + row;
    if (!result.shadow_answered[at] && !result.shadow_failed[at]) continue;
    if (!first) out += ", ";
    first = false;
    AppendJsonString(config.modalities[k].name, out);
    if (result.shadow_failed[at]) {
      out += ": {\"error\": ";
      AppendJsonString(result.shadow_failures[k], out);
      out += '}';
      continue;
    }
    const double* values = result.shadow_probabilities.data() + at * C;
    if (regression) {
      out += ": {";
      AppendPrediction(values, out);
    } else {
      out += ": {\"probabilities\": ";
      AppendDistribution(config.classes, values, out);
      // Compared only where the model answered too.
      out += result.used[at] ? (result.shadow_agree[at] ? ", \"agree\": true"
                                                        : ", \"agree\": false")
                             : ", \"agree\": null";
    }
    if (result.used[at]) {
      fmt::format_to(std::back_inserter(out), ", \"abs_diff\": {}}}",
                     result.shadow_abs_diff[at]);
    } else {
      out += ", \"abs_diff\": null}";
    }
  }
  out += '}';
}

}  // namespace

const char* RowStatusName(RowStatus status) {
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

void AppendOutcome(const PipelineConfig& config, const InputBatch& batch,
                   const BatchResult& result, std::size_t row,
                   std::string& out) {
  const std::size_t rows = result.rows;
  const std::size_t K = config.modalities.size();
  const bool parsed = batch.errors[row].empty();
  // In pipeline order. A line that did not parse has none.
  out += "\"used\": [";
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
  if (result.status[row] == RowStatus::kError) {
    out += ", \"error\": ";
    AppendJsonString(result.errors[row], out);
  }
}

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
                 RowStatusName(status));
  if (regression) {
    if (status == RowStatus::kOk) {
      out += ", ";
      AppendPrediction(result.probabilities.data() + row * C, out);
    } else {
      out += ", \"prediction\": null";
    }
  } else if (status == RowStatus::kOk) {
    const double* p = result.probabilities.data() + row * C;
    out += ", \"label\": ";
    AppendJsonString(config.classes[ArgMax(p, C)], out);
    out += ", \"probabilities\": ";
    AppendDistribution(config.classes, p, out);
  } else {
    out += ", \"label\": null, \"probabilities\": null";
  }

  out += ", ";
  AppendOutcome(config, batch, result, row, out);
  if (options.per_modality && parsed) {
    out += ", \"modalities\": {";
    bool first = true;
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
  if (!result.shadowed.empty() && parsed)
    AppendShadows(config, result, row, out);
  out += "}\n";
}

}  // namespace latefuse
