#include "fuzz/fuzz_util.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>

#include "core/output.h"

namespace latefuse::fuzz {
namespace {

constexpr char kClassification[] = R"(apiVersion: latefuse/v1
name: fuzz
classes: [stable, deteriorating]
plugin_dirs: [plugins]
modalities:
  - {name: vitals, input: {kind: dense, size: 3}, model: {plugin: linear}}
  - {name: notes, input: {kind: text}, model: {plugin: tfidf_linear}}
  - {name: scan, input: {kind: bytes}, model: {plugin: scan_model}}
combiner: {plugin: mean}
)";

constexpr char kRegression[] = R"(apiVersion: latefuse/v1
name: fuzz
task: regression
plugin_dirs: [plugins]
modalities:
  - {name: vitals, input: {kind: dense, size: 3}, model: {plugin: linear}}
  - {name: notes, input: {kind: text}, model: {plugin: tfidf_linear}}
  - {name: scan, input: {kind: bytes}, model: {plugin: scan_model}}
combiner: {plugin: inverse_variance}
)";

PipelineConfig Parse(const char* yaml) {
  absl::StatusOr<PipelineConfig> config =
      ParsePipeline(yaml, "/fuzz/pipeline.yaml");
  Check(config.ok(), "the fuzz pipeline parses");
  return *std::move(config);
}

// The result of an engine whose models all answered: every parsed row is ok
// with a uniform distribution (regression: prediction 0, variance 1), using
// every modality present in it.
void EchoResult(const PipelineConfig& config, const InputBatch& batch,
                BatchResult& result) {
  const std::size_t rows = batch.rows;
  const std::size_t K = config.modalities.size();
  const std::size_t C = ValuesPerRow(config);
  const bool regression = config.task == Task::kRegression;
  result = BatchResult();
  result.rows = rows;
  result.status.assign(rows, RowStatus::kOk);
  result.errors.assign(rows, std::string());
  result.probabilities.assign(rows * C, 1.0 / static_cast<double>(C));
  result.used.assign(K * rows, 0);
  result.failed.assign(K * rows, 0);
  result.failures.assign(K, std::string());
  result.modality_probabilities.assign(K * rows * C, 0.5);
  for (std::size_t r = 0; r < rows; ++r) {
    if (regression) {
      result.probabilities[r * C] = 0.0;
      result.probabilities[r * C + 1] = 1.0;
    }
    if (!batch.errors[r].empty()) {
      result.status[r] = RowStatus::kError;
      result.errors[r] = batch.errors[r];
      continue;
    }
    for (std::size_t k = 0; k < K; ++k)
      result.used[k * rows + r] = batch.columns[k].present[r];
  }
}

}  // namespace

const PipelineConfig& FuzzPipeline(FuzzTask task) {
  static const PipelineConfig classification = Parse(kClassification);
  static const PipelineConfig regression = Parse(kRegression);
  return task == FuzzTask::kRegression ? regression : classification;
}

void Check(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz check failed: %.*s\n",
               static_cast<int>(what.size()), what.data());
  std::abort();
}

void CheckBatch(const PipelineConfig& config, const InputBatch& batch) {
  const std::size_t rows = batch.rows;
  Check(batch.ids.size() == rows && batch.has_id.size() == rows &&
            batch.labels.size() == rows && batch.has_label.size() == rows &&
            batch.errors.size() == rows,
        "every per-row vector has `rows` entries");
  // The parser gives a batch its columns with its first row.
  if (rows == 0) return;
  Check(batch.columns.size() == config.modalities.size(),
        "one column per modality");
  for (std::size_t k = 0; k < batch.columns.size(); ++k) {
    const ModalityConfig& m = config.modalities[k];
    const InputColumn& column = batch.columns[k];
    Check(column.present.size() == rows, "present has `rows` entries");
    std::size_t present = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      Check(column.present[r] <= 1, "present is 0 or 1");
      Check(!column.present[r] || batch.errors[r].empty(),
            "a bad row has no modality present");
      present += column.present[r];
    }
    if (m.input_kind == InputKind::kDense) {
      Check(
          column.dense.size() == present * m.input_size && column.items.empty(),
          "a dense column holds width values per present row");
      for (float value : column.dense)
        Check(std::isfinite(value), "dense values are finite");
    } else {
      Check(column.items.size() == present && column.dense.empty(),
            "a text or bytes column holds one item per present row");
    }
  }
  for (std::size_t r = 0; r < rows; ++r) {
    Check(batch.has_id[r] || batch.ids[r].empty(), "no id is empty");
    Check(!batch.has_label[r] || batch.errors[r].empty(),
          "a bad row has no label");
  }
}

void AppendEchoRecords(const PipelineConfig& config, const InputBatch& batch,
                       std::string& out) {
  BatchResult result;
  EchoResult(config, batch, result);
  OutputOptions options;
  options.per_modality = true;
  const RecordWriter writer(config, options);
  for (std::size_t r = 0; r < batch.rows; ++r)
    writer.Append(batch, result, r, out);
}

void AppendEchoResponse(const PipelineConfig& config, const OipRequest& request,
                        const InputBatch& batch, std::string& out) {
  BatchResult result;
  EchoResult(config, batch, result);
  AppendInferResponse(config, request, batch, result, out);
  out += '\n';
}

void CheckJsonLines(std::string_view text) {
  static simdjson::dom::parser parser;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::string_view line = NextLine(text, at);
    simdjson::dom::element doc;
    const simdjson::error_code error =
        parser.parse(line.data(), line.size()).get(doc);
    if (error != simdjson::SUCCESS) {
      std::fprintf(stderr, "not valid JSON (%s): %.*s\n",
                   simdjson::error_message(error),
                   static_cast<int>(line.size()), line.data());
    }
    Check(error == simdjson::SUCCESS, "every output line is valid JSON");
  }
}

}  // namespace latefuse::fuzz
