// Labelled data through a pipeline's models: what `latefuse fit` and
// `latefuse eval` both start from. Every modality's model runs once per row
// (calibrated when the pipeline says so), and each row keeps its label and,
// per modality, whether the record held it, whether its model answered, and
// its probabilities.
//
//   LabelledRows rows(config.modalities.size());
//   LabelledReport report;
//   RETURN_IF_ERROR(RunLabelled(*pipeline, "labelled.jsonl", {}, rows,
//   report));
//   // rows.probabilities[k]: [rows.rows, C]; rows.used[k][r]: 0 or 1
//
// Only the models' outputs are kept: fusing is the caller's business (eval
// fuses each row under many presence masks).
#ifndef LATEFUSE_CORE_LABELLED_H_
#define LATEFUSE_CORE_LABELLED_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/pipeline.h"

namespace latefuse {

// Labelled rows' per-modality probabilities, gathered modality by modality
// since the row count is known only at the end.
struct LabelledRows {
  std::size_t rows = 0;
  std::vector<std::vector<double>> probabilities;  // per k: [rows, C]
  std::vector<std::vector<std::uint8_t>> present;  // per k: the record held it
  std::vector<std::vector<std::uint8_t>>
      used;                          // per k: ...and its model answered
  std::vector<std::int32_t> labels;  // [rows], class indices

  explicit LabelledRows(std::size_t modalities)
      : probabilities(modalities), present(modalities), used(modalities) {}
};

struct LabelledReport {
  std::size_t lines = 0;             // lines read
  std::vector<std::string> skipped;  // why each skipped line was skipped,
                                     // "line N: ..."
};

struct LabelledOptions {
  std::size_t batch_size = 256;
  // Called after each batch with the number of lines read so far.
  std::function<void(std::size_t lines)> progress;
};

// The index of `label` among `classes`, if it is one of them.
std::optional<std::int32_t> ClassIndex(const std::vector<std::string>& classes,
                                       const std::string& label);

// "line N: label "x" is not one of the pipeline's classes".
std::string UnknownLabel(std::size_t line, const std::string& label);

// Runs the pipeline's models over the labelled records of `data` (the input
// format plus "label") and appends each usable line to `out`. A line that
// does not parse, has no label or a label that is not one of the pipeline's
// classes is skipped and reported, never fatal: the caller decides. Fails
// only when `data` cannot be opened or read. Classification pipelines only.
absl::Status RunLabelled(Pipeline& pipeline, const std::filesystem::path& data,
                         const LabelledOptions& options, LabelledRows& out,
                         LabelledReport& report);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_LABELLED_H_
