// What `latefuse serve` counts, and GET /metrics: the Prometheus text
// exposition format 0.0.4.
//
//   ServeMetrics metrics;
//   metrics.ObserveBatch(config, batch, result);     // after each engine run
//   metrics.CountRequest("infer", 200, 0.0012);       // after each answer
//   std::string text = metrics.Render();              // the /metrics body
//
// Series (README "latefuse serve" lists them with their meaning):
//   latefuse_http_requests_total{route,code}          counter
//   latefuse_http_request_duration_seconds{route}     histogram, end to end
//   latefuse_rows_total{status}                       ok | abstain | error
//   latefuse_modality_rows_total{modality}            rows the modality saw
//   latefuse_modality_present_total{modality}         ... where it was present
//   latefuse_modality_used_total{modality}            ... and its model
//   answered latefuse_modality_errors_total{modality}          ... its model
//   failed latefuse_modality_timeouts_total{modality}        ... its model
//   overran latefuse_model_duration_seconds{modality}         histogram, per
//   model call latefuse_shadow_compared_total{modality},
//   latefuse_shadow_agreed_total latefuse_reloads_total{result} ok | error
//   latefuse_pipeline_generation                      gauge, loads so far
// Modalities are keyed by name, so series survive a reload that keeps them.
// Thread-safe: every call takes one mutex, held for O(K * rows) work.
#ifndef LATEFUSE_CORE_SERVE_METRICS_H_
#define LATEFUSE_CORE_SERVE_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/engine.h"
#include "core/pipeline_config.h"
#include "core/records.h"

namespace latefuse {

class ServeMetrics {
 public:
  // One answered HTTP request: its route ("infer", "records", ..., "other"
  // for an unknown path), status code and end-to-end seconds.
  void CountRequest(std::string_view route, int code, double seconds);

  // One engine run's rows, per modality.
  void ObserveBatch(const PipelineConfig& config, const InputBatch& batch,
                    const BatchResult& result);

  // A reload attempt; `generation` is the number of loads that succeeded.
  void CountReload(bool ok, std::uint64_t generation);

  std::string Render() const;

 private:
  // Upper bounds, in seconds, of the latency buckets (+Inf is implied).
  static constexpr std::array<double, 14> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

  struct Histogram {
    std::array<std::uint64_t, kBuckets.size() + 1> counts{};  // last: +Inf
    double sum = 0.0;
    std::uint64_t count = 0;
    void Observe(double seconds);
  };

  struct ModalityStats {
    std::uint64_t rows = 0;
    std::uint64_t present = 0;
    std::uint64_t used = 0;
    std::uint64_t errors = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t shadow_compared = 0;
    std::uint64_t shadow_agreed = 0;
    Histogram duration;
  };

  static void RenderHistogram(std::string_view name, std::string_view labels,
                              const Histogram& h, std::string& out);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by route
  std::uint64_t rows_ok_ = 0;
  std::uint64_t rows_abstain_ = 0;
  std::uint64_t rows_error_ = 0;
  std::map<std::string, ModalityStats> modalities_;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_error_ = 0;
  std::uint64_t generation_ = 0;
  // Drift per modality (population stability index against the reference
  // profile) is core/drift.h's: the server's DriftMonitor observes the same
  // batches and /metrics appends its gauges after these series.
};

}  // namespace latefuse

#endif  // LATEFUSE_CORE_SERVE_METRICS_H_
