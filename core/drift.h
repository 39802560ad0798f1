// Drift monitoring: how far live predictions have moved from a reference
// profile (core/profile.h, written by `latefuse eval` or `latefuse fit`), per
// modality and for the fused output, as a population stability index.
//
//   ASSIGN_OR_RETURN(Profile reference, ReadProfile("report/profile.json"));
//   ASSIGN_OR_RETURN(auto monitor, DriftMonitor::Create(reference, config));
//   engine.Run(batch, result);
//   RETURN_IF_ERROR(monitor->Observe(result));      // any thread
//   metrics_text += PrometheusDrift(monitor->Snapshot());
//
// The monitor counts the probabilities of every batch it observes in the
// profile's bins (ProfileBin): a modality's `used` rows, as the profile
// counts them, and the fused output of the rows answered (status ok). For
// each class c it compares the observed shares a_b of the bins with the
// reference shares e_b:
//   PSI_c = sum over bins b of (a_b - e_b) * ln(a_b / e_b),
// a share being count / total, floored at kPsiFloor so that an empty bin on
// either side gives a finite term (a bin empty on both sides gives 0). The
// usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift worth a
// look, above 0.25 a significant shift. Each modality's and the fused
// output's figure is the maximum over its classes.
//
// Thread-safety: Observe, Snapshot and Reset may be called from any number
// of threads at once; each Observe is counted whole.
#ifndef LATEFUSE_CORE_DRIFT_H_
#define LATEFUSE_CORE_DRIFT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/engine.h"
#include "core/pipeline_config.h"
#include "core/profile.h"

namespace latefuse {

// The smallest share a bin takes in the PSI, observed or reference.
inline constexpr double kPsiFloor = 1e-4;

// The population stability index of observed bin counts against reference
// ones ([bins] each), shares floored at kPsiFloor; NaN when either side has
// no count at all.
double PopulationStabilityIndex(const std::size_t* observed,
                                const std::size_t* reference, std::size_t bins);

// Drift of one modality or of the fused output since the monitor was made or
// last reset.
struct DriftSeries {
  std::string name;  // the modality's; "fused" for the fused output
  // The profile has rows for it: a modality absent from the profile or with
  // no used rows there has no reference, and no PSI.
  bool has_reference = false;
  // Modality: batch rows that held it (present: used or failed), rows its
  // model answered (used, the rows compared). Fused: batch rows, and rows
  // answered (status ok).
  std::size_t present = 0;
  std::size_t rows = 0;
  // present / batch rows observed (fused: answered / batch rows), and the
  // same in the reference (fused: fused.rows / rows); NaN when undefined.
  double presence_rate = 0.0;
  double reference_presence_rate = 0.0;
  // Per class (the pipeline's order), and their maximum; NaN when there is
  // no reference or nothing observed yet.
  std::vector<double> psi;
  double max_psi = 0.0;
};

struct DriftSnapshot {
  std::size_t batch_rows = 0;  // rows of every batch observed
  std::vector<std::string> classes;
  std::vector<DriftSeries> modalities;  // pipeline order
  DriftSeries fused;
};

class DriftMonitor {
 public:
  // A monitor of `config`'s pipeline against `reference`. Fails when the
  // pipeline is not a classification one or its classes differ from the
  // profile's (names and order). A pipeline modality absent from the profile
  // is monitored with no reference; a profile modality absent from the
  // pipeline is ignored (unmatched() lists them).
  static absl::StatusOr<std::unique_ptr<DriftMonitor>> Create(
      const Profile& reference, const PipelineConfig& config);

  // Counts one engine batch of this pipeline. Fails, counting nothing, when
  // the result's shapes are not those of this pipeline's batches.
  absl::Status Observe(const BatchResult& result) ABSL_LOCKS_EXCLUDED(mutex_);

  // The PSI of everything observed since creation or the last Reset.
  DriftSnapshot Snapshot() const ABSL_LOCKS_EXCLUDED(mutex_);

  // Forgets every observation (the reference stays).
  void Reset() ABSL_LOCKS_EXCLUDED(mutex_);

  // The profile's modalities that the pipeline does not have.
  const std::vector<std::string>& unmatched() const { return unmatched_; }

 private:
  // Counts of one modality or the fused output: as ProbabilityProfile, with
  // `present` the rows that held it.
  struct Series {
    std::string name;
    const ProbabilityProfile* reference = nullptr;  // null: no reference
    double reference_presence_rate = 0.0;
    ProbabilityProfile observed;
  };

  DriftMonitor(Profile reference, std::vector<std::string> classes);
  // `fused`: the presence rate is that of rows answered.
  DriftSeries Compute(const Series& series, bool fused,
                      std::size_t batch_rows) const
      ABSL_SHARED_LOCKS_REQUIRED(mutex_);

  const Profile reference_;
  const std::vector<std::string> classes_;
  std::vector<std::string> unmatched_;
  mutable absl::Mutex mutex_;
  std::size_t batch_rows_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<Series> modalities_ ABSL_GUARDED_BY(mutex_);
  Series fused_ ABSL_GUARDED_BY(mutex_);
};

// The snapshot as Prometheus text-format gauges, one "# HELP" and "# TYPE"
// per metric, for a /metrics page to append:
//   latefuse_modality_psi{modality="vitals",class="stable"} 0.013
//   latefuse_modality_psi_max{modality="vitals"} 0.013
//   latefuse_modality_drift_reference{modality="vitals"} 1
//   latefuse_modality_drift_rows{modality="vitals"} 412
//   latefuse_modality_drift_presence_rate{modality="vitals"} 0.97
//   latefuse_modality_reference_presence_rate{modality="vitals"} 0.979
//   latefuse_fused_psi{class="stable"} 0.004
//   latefuse_fused_psi_max 0.004
//   latefuse_fused_drift_rows 420
//   latefuse_fused_drift_answered_rate 0.99
//   latefuse_fused_reference_answered_rate 0.991
// PSI lines are left out where there is no reference; an undefined value
// (nothing observed yet) is NaN, as Prometheus writes it.
std::string PrometheusDrift(const DriftSnapshot& snapshot);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_DRIFT_H_
