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
    ModalityCounts& counts = summary.modalities[k];
    for (std::size_t r = 0; r < rows; ++r) {
      counts.present += batch.columns[k].present[r];
      counts.used += result.used[k * rows + r];
      counts.failed += result.failed[k * rows + r];
    }
    if (result.shadowed.empty() || !result.shadowed[k]) continue;
    ShadowCounts& shadow =
        counts.shadow ? *counts.shadow : counts.shadow.emplace();
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t at = k * rows + r;
      shadow.failed += result.shadow_failed[at];
      if (!result.shadow_answered[at] || !result.used[at]) continue;
      ++shadow.compared;
      shadow.agreed += result.shadow_agree[at];
      shadow.abs_diff_sum += result.shadow_abs_diff[at];
    }
  }
}

}  // namespace

double ShadowCounts::AgreementRate() const {
  return compared == 0
             ? 0.0
             : static_cast<double>(agreed) / static_cast<double>(compared);
}

double ShadowCounts::MeanAbsDiff() const {
  return compared == 0 ? 0.0 : abs_diff_sum / static_cast<double>(compared);
}

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
    if (!counts.shadow) continue;
    const ShadowCounts& shadow = *counts.shadow;
    const bool regression = config.task == Task::kRegression;
    absl::StrAppend(&out,
                    fmt::format("  {:<{}}  shadow: {} rows compared", "", width,
                                shadow.compared),
                    regression ? ""
                               : fmt::format(", argmax agreement {:.1f}%",
                                             100.0 * shadow.AgreementRate()),
                    fmt::format(", mean |{}| {:.4g}, failed {}\n",
                                regression ? "prediction diff" : "p diff",
                                shadow.MeanAbsDiff(), shadow.failed));
  }
  return out;
}

}  // namespace latefuse
