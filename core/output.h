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
#include <cstring>
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

namespace output_internal {

// Names as JSON string literals, each stored once as `, "name": ` with 15
// bytes of padding after it, so that a record copies the part it needs in
// 16-byte blocks (a copy of a variable length would be a call to memcpy).
class QuotedNames {
 public:
  explicit QuotedNames(const std::vector<std::string>& names);

  // Writes name `i` as a list's item, `"name"`, after ", " unless first; at
  // `out`, which has room for max_key() + 15 bytes. Returns the end.
  char* WriteItem(std::size_t i, bool first, char* out) const {
    return Write(i, first ? 2 : 0, 2, out);
  }
  // The same as an object's key: `"name": `.
  char* WriteKey(std::size_t i, bool first, char* out) const {
    return Write(i, first ? 2 : 0, 0, out);
  }

  // The longest key with its ", ", and all of them together.
  std::size_t max_key() const { return max_key_; }
  std::size_t total() const { return total_; }

 private:
  static constexpr std::size_t kPadding = 15;

  char* Write(std::size_t i, std::size_t skip_front, std::size_t skip_back,
              char* out) const {
    const char* from = text_.data() + begin_[i] + skip_front;
    const std::size_t n =
        begin_[i + 1] - begin_[i] - kPadding - skip_front - skip_back;
    for (std::size_t at = 0; at < n; at += 16)
      std::memcpy(out + at, from + at, 16);
    return out + n;
  }

  std::string text_;
  std::vector<std::size_t> begin_;  // [names + 1]: each key's ", " in text_
  std::size_t max_key_ = 0;
  std::size_t total_ = 0;
};

}  // namespace output_internal

// Writes the records of one pipeline: the class and modality names are
// quoted once, and each record is written through a char* into `out`, grown
// once to a bound and trimmed to the text. What `latefuse run`, `serve` and
// OIP responses write with, row after row; holds a reference to `config`.
// Const methods only: several threads may share one writer.
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
  class Sink;  // grows the output string for writing through a char*

  char* WriteOutcome(const InputBatch& batch, const BatchResult& result,
                     std::size_t row, Sink& sink, char* p) const;
  char* WriteShadows(const BatchResult& result, std::size_t row, Sink& sink,
                     char* p) const;
  char* WriteDistribution(const double* values, char* p) const;

  const PipelineConfig& config_;
  OutputOptions options_;
  output_internal::QuotedNames classes_;
  output_internal::QuotedNames modalities_;
  // The most text of one {"class": p, ...}, and of a record of an ok row
  // without strings (the first guess at a record's room).
  std::size_t distribution_bound_ = 0;
  std::size_t record_bound_ = 0;
};

// "ok", "abstain" or "error": a record's "status".
const char* RowStatusName(RowStatus status);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_OUTPUT_H_
