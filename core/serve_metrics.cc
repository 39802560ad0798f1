#include "core/serve_metrics.h"

#include <cmath>

#include "core/json_text.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

// A label value: Prometheus escapes backslash, quote and newline as JSON does.
std::string Label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += '=';
  AppendJsonString(value, out);
  return out;
}

void Header(std::string_view name, std::string_view type, std::string_view help,
            std::string& out) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name,
                 help, name, type);
}

}  // namespace

void ServeMetrics::Histogram::Observe(double seconds) {
  std::size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  ++counts[b];
  sum += seconds;
  ++count;
}

void ServeMetrics::CountRequest(std::string_view route, int code,
                                double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{std::string(route), code}];
  latency_[std::string(route)].Observe(seconds);
}

void ServeMetrics::ObserveBatch(const PipelineConfig& config,
                                const InputBatch& batch,
                                const BatchResult& result) {
  const std::size_t rows = result.rows;
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t r = 0; r < rows; ++r) {
    switch (result.status[r]) {
      case RowStatus::kOk:
        ++rows_ok_;
        break;
      case RowStatus::kAbstain:
        ++rows_abstain_;
        break;
      case RowStatus::kError:
        ++rows_error_;
        break;
    }
  }
  for (std::size_t k = 0; k < config.modalities.size(); ++k) {
    ModalityStats& m = modalities_[config.modalities[k].name];
    m.rows += rows;
    std::uint64_t failed = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      m.present += batch.columns[k].present[r];
      m.used += result.used[k * rows + r];
      failed += result.failed[k * rows + r];
    }
    (result.timed_out[k] ? m.timeouts : m.errors) += failed;
    if (!std::isnan(result.model_seconds[k]))
      m.duration.Observe(result.model_seconds[k]);
    if (result.shadowed.empty() || !result.shadowed[k]) continue;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t at = k * rows + r;
      if (!result.shadow_answered[at] || !result.used[at]) continue;
      ++m.shadow_compared;
      m.shadow_agreed += result.shadow_agree[at];
    }
  }
}

void ServeMetrics::CountReload(bool ok, std::uint64_t generation) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++(ok ? reloads_ok_ : reloads_error_);
  generation_ = generation;
}

void ServeMetrics::RenderHistogram(std::string_view name,
                                   std::string_view labels, const Histogram& h,
                                   std::string& out) {
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
    cumulative += h.counts[b];
    const std::string le =
        b < kBuckets.size() ? fmt::format("{}", kBuckets[b]) : "+Inf";
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n",
                   name, labels, le, cumulative);
  }
  fmt::format_to(std::back_inserter(out),
                 "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum,
                 name, labels, h.count);
}

std::string ServeMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  Header("latefuse_http_requests_total", "counter",
         "HTTP requests answered, by route and status code", out);
  for (const auto& [key, count] : requests_) {
    fmt::format_to(std::back_inserter(out),
                   "latefuse_http_requests_total{{{},code=\"{}\"}} {}\n",
                   Label("route", key.first), key.second, count);
  }
  Header("latefuse_http_request_duration_seconds", "histogram",
         "End-to-end request latency (body read to answer), by route", out);
  for (const auto& [route, h] : latency_) {
    RenderHistogram("latefuse_http_request_duration_seconds",
                    Label("route", route), h, out);
  }
  Header("latefuse_rows_total", "counter",
         "Rows inferred, by outcome (abstain: the policy's abstentions)", out);
  fmt::format_to(std::back_inserter(out),
                 "latefuse_rows_total{{status=\"ok\"}} {}\n"
                 "latefuse_rows_total{{status=\"abstain\"}} {}\n"
                 "latefuse_rows_total{{status=\"error\"}} {}\n",
                 rows_ok_, rows_abstain_, rows_error_);
  auto per_modality = [&](std::string_view name, std::string_view help,
                          std::uint64_t ModalityStats::*field) {
    Header(name, "counter", help, out);
    for (const auto& [modality, m] : modalities_) {
      fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name,
                     Label("modality", modality), m.*field);
    }
  };
  per_modality("latefuse_modality_rows_total",
               "Rows inferred while the pipeline had this modality",
               &ModalityStats::rows);
  per_modality("latefuse_modality_present_total",
               "Rows where the modality was present (presence rate: "
               "present / rows)",
               &ModalityStats::present);
  per_modality("latefuse_modality_used_total",
               "Rows where the modality was present and its model answered",
               &ModalityStats::used);
  per_modality("latefuse_modality_errors_total",
               "Rows where the modality's model failed (not by timeout)",
               &ModalityStats::errors);
  per_modality("latefuse_modality_timeouts_total",
               "Rows where the modality's model overran timeout_ms",
               &ModalityStats::timeouts);
  Header("latefuse_model_duration_seconds", "histogram",
         "Duration of each model call (one per batch), by modality", out);
  for (const auto& [modality, m] : modalities_) {
    RenderHistogram("latefuse_model_duration_seconds",
                    Label("modality", modality), m.duration, out);
  }
  per_modality("latefuse_shadow_compared_total",
               "Rows where a modality's shadow and model both answered",
               &ModalityStats::shadow_compared);
  per_modality("latefuse_shadow_agreed_total",
               "Compared rows where the shadow's and model's argmax agree",
               &ModalityStats::shadow_agreed);
  Header("latefuse_reloads_total", "counter",
         "Pipeline reloads (SIGHUP or the repository load call), by result",
         out);
  fmt::format_to(std::back_inserter(out),
                 "latefuse_reloads_total{{result=\"ok\"}} {}\n"
                 "latefuse_reloads_total{{result=\"error\"}} {}\n",
                 reloads_ok_, reloads_error_);
  Header("latefuse_pipeline_generation", "gauge",
         "Pipeline loads that succeeded; the one serving is this one", out);
  fmt::format_to(std::back_inserter(out), "latefuse_pipeline_generation {}\n",
                 generation_);
  return out;
}

}  // namespace latefuse
