#include "core/output.h"

#include <cmath>

#include "core/json_text.h"

namespace latefuse {
namespace {

// Each name as a JSON string literal, quotes included.
std::vector<std::string> Quoted(const std::vector<std::string>& names) {
  std::vector<std::string> out(names.size());
  for (std::size_t i = 0; i < names.size(); ++i)
    AppendJsonString(names[i], out[i]);
  return out;
}

std::vector<std::string> QuotedModalities(const PipelineConfig& config) {
  std::vector<std::string> out(config.modalities.size());
  for (std::size_t k = 0; k < out.size(); ++k)
    AppendJsonString(config.modalities[k].name, out[k]);
  return out;
}

// {"class": p, ...} for the C values at p.
void AppendDistribution(const std::vector<std::string>& quoted_classes,
                        const double* p, std::string& out) {
  out += '{';
  for (std::size_t c = 0; c < quoted_classes.size(); ++c) {
    if (c > 0) out += ", ";
    out += quoted_classes[c];
    out += ": ";
    AppendShortestDouble(p[c], out);
  }
  out += '}';
}

// "prediction": x, and "variance": v unless v (a regression row's second
// value) is NaN, i.e. not reported.
void AppendPrediction(const double* values, std::string& out) {
  out += "\"prediction\": ";
  AppendShortestDouble(values[0], out);
  if (!std::isnan(values[1])) {
    out += ", \"variance\": ";
    AppendShortestDouble(values[1], out);
  }
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

RecordWriter::RecordWriter(const PipelineConfig& config,
                           const OutputOptions& options)
    : config_(config),
      options_(options),
      classes_(Quoted(config.classes)),
      modalities_(QuotedModalities(config)) {}

void RecordWriter::AppendOutcome(const InputBatch& batch,
                                 const BatchResult& result, std::size_t row,
                                 std::string& out) const {
  const std::size_t rows = result.rows;
  const std::size_t K = modalities_.size();
  const bool parsed = batch.errors[row].empty();
  // In pipeline order. A line that did not parse has none.
  out += "\"used\": [";
  bool first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.used[k * rows + row]) continue;
    if (!first) out += ", ";
    first = false;
    out += modalities_[k];
  }
  out += "], \"missing\": [";
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (batch.columns[k].present[row]) continue;
    if (!first) out += ", ";
    first = false;
    out += modalities_[k];
  }
  out += "], \"failed\": {";
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.failed[k * rows + row]) continue;
    if (!first) out += ", ";
    first = false;
    out += modalities_[k];
    out += ": ";
    AppendJsonString(result.failures[k], out);
  }
  out += '}';
  if (result.status[row] == RowStatus::kError) {
    out += ", \"error\": ";
    AppendJsonString(result.errors[row], out);
  }
}

void RecordWriter::AppendShadows(const BatchResult& result, std::size_t row,
                                 std::string& out) const {
  const std::size_t rows = result.rows;
  const bool regression = config_.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config_);
  out += ", \"shadow\": {";
  bool first = true;
  for (std::size_t k = 0; k < result.shadowed.size(); ++k) {
    const std::size_t at = k * rows + row;
    if (!result.shadow_answered[at] && !result.shadow_failed[at]) continue;
    if (!first) out += ", ";
    first = false;
    out += modalities_[k];
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
      AppendDistribution(classes_, values, out);
      // Compared only where the model answered too.
      out += result.used[at] ? (result.shadow_agree[at] ? ", \"agree\": true"
                                                        : ", \"agree\": false")
                             : ", \"agree\": null";
    }
    if (result.used[at]) {
      out += ", \"abs_diff\": ";
      AppendShortestDouble(result.shadow_abs_diff[at], out);
      out += '}';
    } else {
      out += ", \"abs_diff\": null}";
    }
  }
  out += '}';
}

void RecordWriter::Append(const InputBatch& batch, const BatchResult& result,
                          std::size_t row, std::string& out) const {
  const std::size_t rows = result.rows;
  const std::size_t K = modalities_.size();
  const bool regression = config_.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config_);
  const RowStatus status = result.status[row];
  const bool parsed = batch.errors[row].empty();

  out += "{\"id\": ";
  if (batch.has_id[row]) {
    AppendJsonString(batch.ids[row], out);
  } else {
    out += "null";
  }
  out += ", \"status\": \"";
  out += RowStatusName(status);
  out += '"';
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
    out += classes_[ArgMax(p, C)];
    out += ", \"probabilities\": ";
    AppendDistribution(classes_, p, out);
  } else {
    out += ", \"label\": null, \"probabilities\": null";
  }

  out += ", ";
  AppendOutcome(batch, result, row, out);
  if (options_.per_modality && parsed) {
    out += ", \"modalities\": {";
    bool first = true;
    for (std::size_t k = 0; k < K; ++k) {
      if (!result.used[k * rows + row]) continue;
      if (!first) out += ", ";
      first = false;
      out += modalities_[k];
      out += ": ";
      const double* values =
          result.modality_probabilities.data() + (k * rows + row) * C;
      if (regression) {
        out += '{';
        AppendPrediction(values, out);
        out += '}';
      } else {
        AppendDistribution(classes_, values, out);
      }
    }
    out += '}';
  }
  if (options_.explain && status == RowStatus::kOk &&
      !result.explanation.empty()) {
    out += ", \"weights\": {";
    for (std::size_t k = 0; k < K; ++k) {
      if (k > 0) out += ", ";
      out += modalities_[k];
      out += ": ";
      AppendShortestDouble(result.explanation[row * K + k], out);
    }
    out += '}';
  }
  if (!result.shadowed.empty() && parsed) AppendShadows(result, row, out);
  out += "}\n";
}

}  // namespace latefuse
