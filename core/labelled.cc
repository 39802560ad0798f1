#include "core/labelled.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/engine.h"
#include "core/records.h"
#include "fmt/format.h"

namespace latefuse {

std::optional<std::int32_t> ClassIndex(const std::vector<std::string>& classes,
                                       const std::string& label) {
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (classes[c] == label) return static_cast<std::int32_t>(c);
  }
  return std::nullopt;
}

std::string UnknownLabel(std::size_t line, const std::string& label) {
  return fmt::format(
      "line {}: label \"{}\" is not one of the pipeline's classes", line,
      label);
}

absl::Status RunLabelled(Pipeline& pipeline, const std::filesystem::path& data,
                         const LabelledOptions& options, LabelledRows& out,
                         LabelledReport& report) {
  const PipelineConfig& config = pipeline.config();
  std::ifstream in(data);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open data '", data.string(), "'"));
  }
  const std::size_t K = config.modalities.size();
  const std::size_t C = config.classes.size();
  RecordParser parser(Engine::RecordSpecs(config));
  Engine engine(pipeline, {});
  InputBatch batch;
  BatchResult result;
  std::size_t first_line = 1;
  auto flush = [&] {
    if (batch.rows == 0) return;
    engine.Run(batch, result);
    for (std::size_t r = 0; r < batch.rows; ++r) {
      const std::size_t line = first_line + r;
      std::optional<std::int32_t> label;
      if (!batch.errors[r].empty()) {
        report.skipped.push_back(batch.errors[r]);
      } else if (!batch.has_label[r]) {
        report.skipped.push_back(fmt::format("line {}: no label", line));
      } else if (!(label = ClassIndex(config.classes, batch.labels[r]))) {
        report.skipped.push_back(UnknownLabel(line, batch.labels[r]));
      }
      if (!label) continue;
      out.labels.push_back(*label);
      for (std::size_t k = 0; k < K; ++k) {
        out.present[k].push_back(batch.columns[k].present[r]);
        out.used[k].push_back(result.used[k * batch.rows + r]);
        const double* p =
            result.modality_probabilities.data() + (k * batch.rows + r) * C;
        out.probabilities[k].insert(out.probabilities[k].end(), p, p + C);
      }
      ++out.rows;
    }
    first_line += batch.rows;
    batch.Clear();
    if (options.progress) options.progress(report.lines);
  };
  std::string line;
  while (std::getline(in, line)) {
    ++report.lines;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    parser.Append(line, report.lines, batch);
    if (batch.rows >= options.batch_size) flush();
  }
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read data '", data.string(),
                                            "' after line ", report.lines));
  }
  flush();
  return absl::OkStatus();
}

}  // namespace latefuse
