// Output records: one JSON line per input line, as DESIGN's "Records in and
// out" gives them.
//
//   {"id": "p-0001", "status": "ok", "label": "stable",
//    "probabilities": {"stable": 0.91, "deteriorating": 0.09},
//    "used": ["vitals", "notes"], "missing": ["xray"], "failed": {}}
//
// Every record carries the same keys; `label` and `probabilities` are null
// unless the row is ok, and error rows add "error". Options add "modalities"
// (each used modality's own probabilities) and "weights" (the combiner's
// per-modality weights for the row).
//
// A regression pipeline's records carry "prediction" (null unless ok) and,
// when the fused variance is not NaN, "variance" in place of `label` and
// `probabilities`; "modalities" then maps each used modality to
// {"prediction": x} plus "variance" when its model reports one:
//
//   {"id": "p-0001", "status": "ok", "prediction": 12.5, "variance": 0.8,
//    "used": ["vitals", "labs"], "missing": ["notes"], "failed": {}}
//
// A pipeline with shadow models adds "shadow", last, to every record of a line
// that parsed: for each shadowed modality present in the row, the shadow's
// probabilities (regression: "prediction" and "variance"), "agree" (the two
// argmaxes are equal; classification only) and "abs_diff" (mean over classes
// of |p_shadow - p_model|; regression: |prediction difference|), both null
// when the model itself failed; or {"error": "..."} when the shadow failed:
//
//   "shadow": {"vitals": {"probabilities": {"stable": 0.88,
//              "deteriorating": 0.12}, "agree": true, "abs_diff": 0.03}}
#ifndef LATEFUSE_CORE_OUTPUT_H_
#define LATEFUSE_CORE_OUTPUT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "core/engine.h"
#include "core/pipeline_config.h"
#include "core/records.h"

namespace latefuse {

struct OutputOptions {
  bool per_modality = false;  // add "modalities": {name: {class: p}}
  bool explain = false;  // add "weights": {name: w} when the combiner explains
};

// Writes the records of one pipeline: the class and modality names are
// quoted once, and numbers are formatted straight into `out`. What `latefuse
// run`, `serve` and OIP responses write with, row after row; holds a
// reference to `config`. Const methods only: several threads may share one
// writer.
//
//   RecordWriter writer(pipeline.config(), options);
//   for (std::size_t r = 0; r < batch.rows; ++r)
//     writer.Append(batch, result, r, text);
class RecordWriter {
 public:
  RecordWriter(const PipelineConfig& config, const OutputOptions& options);

  // Appends row `row`'s record and a newline to `out`.
  void Append(const InputBatch& batch, const BatchResult& result,
              std::size_t row, std::string& out) const;

  // Appends row `row`'s "used": [...], "missing": [...], "failed": {...}
  // and, for an error row, "error": "...", without braces: the part of a
  // record an OIP response's per-row parameters share with it.
  void AppendOutcome(const InputBatch& batch, const BatchResult& result,
                     std::size_t row, std::string& out) const;

 private:
  void AppendShadows(const BatchResult& result, std::size_t row,
                     std::string& out) const;

  const PipelineConfig& config_;
  OutputOptions options_;
  std::vector<std::string> classes_;     // JSON string literals
  std::vector<std::string> modalities_;  // JSON string literals
};

// "ok", "abstain" or "error": a record's "status".
const char* RowStatusName(RowStatus status);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_OUTPUT_H_
