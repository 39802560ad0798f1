#include "core/run.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using Clock = std::chrono::steady_clock;

double Percent(std::size_t part, std::size_t whole) {
  return whole == 0
             ? 0.0
             : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

void Tally(const InputBatch& batch, const BatchResult& result,
           RunSummary& summary) {
  const std::size_t rows = result.rows;
  summary.rows += rows;
  for (std::size_t r = 0; r < rows; ++r) {
    switch (result.status[r]) {
      case RowStatus::kOk:
        ++summary.ok;
        break;
      case RowStatus::kAbstain:
        ++summary.abstain;
        break;
      case RowStatus::kError:
        ++summary.error;
        break;
    }
  }
  for (std::size_t k = 0; k < summary.modalities.size(); ++k) {
    for (std::size_t r = 0; r < rows; ++r) {
      summary.modalities[k].present += batch.columns[k].present[r];
      summary.modalities[k].used += result.used[k * rows + r];
      summary.modalities[k].failed += result.failed[k * rows + r];
    }
  }
}

}  // namespace

absl::StatusOr<RunSummary> RunStream(Pipeline& pipeline, std::istream& in,
                                     std::ostream& out,
                                     const RunOptions& options) {
  const PipelineConfig& config = pipeline.config();
  RecordParser parser(Engine::RecordSpecs(config));
  Engine engine(pipeline, options.engine);
  InputBatch batch;
  BatchResult result;
  RunSummary summary;
  summary.modalities.resize(config.modalities.size());
  std::string line;
  std::string text;
  std::size_t line_number = 0;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_progress = start;

  auto flush = [&]() -> absl::Status {
    if (batch.rows == 0) return absl::OkStatus();
    engine.Run(batch, result);
    text.clear();
    for (std::size_t r = 0; r < batch.rows; ++r) {
      AppendRecord(config, batch, result, r, options.output, text);
    }
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) return absl::UnavailableError("cannot write the output");
    Tally(batch, result, summary);
    batch.Clear();
    if (options.progress &&
        Clock::now() - last_progress > std::chrono::milliseconds(250)) {
      last_progress = Clock::now();
      const double seconds =
          std::chrono::duration<double>(last_progress - start).count();
      fmt::print(stderr, "\rlatefuse: {} rows, {:.0f} rows/s", summary.rows,
                 static_cast<double>(summary.rows) / seconds);
      std::fflush(stderr);
    }
    return absl::OkStatus();
  };

  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    parser.Append(line, line_number, batch);
    if (batch.rows >= options.batch_size) {
      if (absl::Status status = flush(); !status.ok()) return status;
    }
  }
  if (in.bad())
    return absl::DataLossError(
        absl::StrCat("cannot read the input after line ", line_number));
  if (absl::Status status = flush(); !status.ok()) return status;
  if (options.progress) fmt::print(stderr, "\r\033[K");
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

std::string FormatSummary(const PipelineConfig& config,
                          const RunSummary& summary) {
  std::string out = fmt::format(
      "latefuse: pipeline '{}': {} rows in {:.3f} s: {} ok, {} abstain, {} "
      "error\n",
      config.name, summary.rows, summary.seconds, summary.ok, summary.abstain,
      summary.error);
  std::size_t width = 0;
  for (const ModalityConfig& m : config.modalities)
    width = std::max(width, m.name.size());
  for (std::size_t k = 0; k < summary.modalities.size(); ++k) {
    const ModalityCounts& counts = summary.modalities[k];
    absl::StrAppend(
        &out,
        fmt::format("  {:<{}}  present {:5.1f}%  used {:5.1f}%  failed {}\n",
                    config.modalities[k].name, width,
                    Percent(counts.present, summary.rows),
                    Percent(counts.used, summary.rows), counts.failed));
  }
  return out;
}

}  // namespace latefuse
