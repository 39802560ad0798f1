#include "core/drift.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_join.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Rate(std::size_t part, std::size_t whole) {
  return whole == 0 ? kNaN
                    : static_cast<double>(part) / static_cast<double>(whole);
}

// A Prometheus sample value: shortest round-trip text, NaN as "NaN".
std::string Value(double v) {
  return std::isnan(v) ? "NaN" : fmt::format("{}", v);
}

// A label value, escaped as the text format asks.
std::string Label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Appends one gauge: its HELP and TYPE lines, then each sample.
class Gauges {
 public:
  explicit Gauges(std::string& out) : out_(out) {}
  void Begin(const char* name, const char* help) {
    name_ = name;
    out_ += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  }
  void Sample(const std::string& labels, double value) {
    out_ += fmt::format("{}{} {}\n", name_,
                        labels.empty() ? "" : "{" + labels + "}", Value(value));
  }

 private:
  std::string& out_;
  const char* name_ = "";
};

}  // namespace

double PopulationStabilityIndex(const std::size_t* observed,
                                const std::size_t* reference,
                                std::size_t bins) {
  std::size_t observed_total = 0;
  std::size_t reference_total = 0;
  for (std::size_t b = 0; b < bins; ++b) {
    observed_total += observed[b];
    reference_total += reference[b];
  }
  if (observed_total == 0 || reference_total == 0) return kNaN;
  double psi = 0.0;
  for (std::size_t b = 0; b < bins; ++b) {
    const double a = std::max(
        static_cast<double>(observed[b]) / static_cast<double>(observed_total),
        kPsiFloor);
    const double e = std::max(static_cast<double>(reference[b]) /
                                  static_cast<double>(reference_total),
                              kPsiFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

absl::StatusOr<std::unique_ptr<DriftMonitor>> DriftMonitor::Create(
    const Profile& reference, const PipelineConfig& config) {
  if (config.task != Task::kClassification) {
    return absl::FailedPreconditionError(fmt::format(
        "pipeline '{}': drift is monitored on class probabilities; this "
        "pipeline's task is 'regression'",
        config.name));
  }
  if (reference.classes != config.classes) {
    return absl::InvalidArgumentError(fmt::format(
        "profile of pipeline '{}' has classes [{}], pipeline '{}' has [{}]: "
        "a profile is only comparable with the same classes in the same order",
        reference.pipeline, absl::StrJoin(reference.classes, ", "), config.name,
        absl::StrJoin(config.classes, ", ")));
  }
  const std::size_t C = config.classes.size();
  std::unique_ptr<DriftMonitor> monitor(
      new DriftMonitor(reference, config.classes));
  const Profile& profile = monitor->reference_;
  absl::MutexLock lock(&monitor->mutex_);
  for (const ModalityConfig& m : config.modalities) {
    Series& series = monitor->modalities_.emplace_back();
    series.name = m.name;
    series.observed = ProbabilityProfile(C, profile.bins);
    const int k = profile.ModalityIndex(m.name);
    if (k >= 0 && profile.distributions[k].used > 0) {
      series.reference = &profile.distributions[k];
      series.reference_presence_rate =
          Rate(series.reference->present, profile.rows);
    } else {
      series.reference_presence_rate =
          k >= 0 ? Rate(profile.distributions[k].present, profile.rows) : kNaN;
    }
  }
  for (const std::string& name : profile.modalities) {
    bool known = false;
    for (const ModalityConfig& m : config.modalities) known |= m.name == name;
    if (!known) monitor->unmatched_.push_back(name);
  }
  Series& fused = monitor->fused_;
  fused.name = "fused";
  fused.observed = ProbabilityProfile(C, profile.bins);
  if (profile.fused) {
    fused.reference_presence_rate = Rate(profile.fused->used, profile.rows);
    if (profile.fused->used > 0) fused.reference = &*profile.fused;
  } else {
    fused.reference_presence_rate = kNaN;
  }
  return monitor;
}

DriftMonitor::DriftMonitor(Profile reference, std::vector<std::string> classes)
    : reference_(std::move(reference)), classes_(std::move(classes)) {}

absl::Status DriftMonitor::Observe(const BatchResult& result) {
  const std::size_t N = result.rows;
  const std::size_t C = classes_.size();
  absl::MutexLock lock(&mutex_);
  const std::size_t K = modalities_.size();
  if (result.status.size() != N || result.used.size() != K * N ||
      result.failed.size() != K * N ||
      result.modality_probabilities.size() != K * N * C ||
      result.probabilities.size() != N * C) {
    return absl::InvalidArgumentError(fmt::format(
        "drift: a batch of {} rows with {} presence flags and {} "
        "probabilities is not one of this pipeline's ({} modalities, {} "
        "classes)",
        N, result.used.size(), result.modality_probabilities.size(), K, C));
  }
  batch_rows_ += N;
  for (std::size_t k = 0; k < K; ++k) {
    ProbabilityProfile& observed = modalities_[k].observed;
    const std::uint8_t* used = result.used.data() + k * N;
    const std::uint8_t* failed = result.failed.data() + k * N;
    const double* p = result.modality_probabilities.data() + k * N * C;
    for (std::size_t r = 0; r < N; ++r) {
      observed.present += used[r] | failed[r];
      if (used[r]) observed.Add(p + r * C);
    }
  }
  fused_.observed.present += N;
  for (std::size_t r = 0; r < N; ++r) {
    if (result.status[r] == RowStatus::kOk)
      fused_.observed.Add(result.probabilities.data() + r * C);
  }
  return absl::OkStatus();
}

DriftSeries DriftMonitor::Compute(const Series& series, bool fused,
                                  std::size_t batch_rows) const {
  DriftSeries out;
  out.name = series.name;
  out.has_reference = series.reference != nullptr;
  out.present = series.observed.present;
  out.rows = series.observed.used;
  // Fused: the share of rows answered; a modality: the share that held it.
  out.presence_rate = Rate(fused ? out.rows : out.present, batch_rows);
  out.reference_presence_rate = series.reference_presence_rate;
  out.max_psi = kNaN;
  if (!out.has_reference) return out;
  out.psi.resize(classes_.size());
  for (std::size_t c = 0; c < classes_.size(); ++c) {
    out.psi[c] =
        PopulationStabilityIndex(series.observed.histograms[c].data(),
                                 series.reference->histograms[c].data(),
                                 series.observed.histograms[c].size());
    if (std::isnan(out.max_psi) || out.psi[c] > out.max_psi)
      out.max_psi = out.psi[c];
  }
  return out;
}

DriftSnapshot DriftMonitor::Snapshot() const {
  DriftSnapshot snapshot;
  snapshot.classes = classes_;
  absl::ReaderMutexLock lock(&mutex_);
  snapshot.batch_rows = batch_rows_;
  for (const Series& series : modalities_)
    snapshot.modalities.push_back(Compute(series, false, batch_rows_));
  snapshot.fused = Compute(fused_, true, batch_rows_);
  return snapshot;
}

void DriftMonitor::Reset() {
  absl::MutexLock lock(&mutex_);
  batch_rows_ = 0;
  for (Series& series : modalities_)
    series.observed = ProbabilityProfile(classes_.size(), reference_.bins);
  fused_.observed = ProbabilityProfile(classes_.size(), reference_.bins);
}

std::string PrometheusDrift(const DriftSnapshot& snapshot) {
  std::string out;
  Gauges gauges(out);
  auto modality = [](const DriftSeries& s) {
    return fmt::format("modality=\"{}\"", Label(s.name));
  };
  gauges.Begin("latefuse_modality_psi",
               "Population stability index of a modality's probabilities "
               "for one class against the reference profile (<0.1 stable, "
               "0.1-0.25 moderate, >0.25 significant shift).");
  for (const DriftSeries& s : snapshot.modalities) {
    for (std::size_t c = 0; c < s.psi.size(); ++c) {
      gauges.Sample(fmt::format("{},class=\"{}\"", modality(s),
                                Label(snapshot.classes[c])),
                    s.psi[c]);
    }
  }
  gauges.Begin("latefuse_modality_psi_max",
               "The largest of a modality's per-class PSI.");
  for (const DriftSeries& s : snapshot.modalities) {
    if (s.has_reference) gauges.Sample(modality(s), s.max_psi);
  }
  gauges.Begin("latefuse_modality_drift_reference",
               "1 when the reference profile has rows of the modality, else "
               "0 (no PSI).");
  for (const DriftSeries& s : snapshot.modalities)
    gauges.Sample(modality(s), s.has_reference ? 1.0 : 0.0);
  gauges.Begin("latefuse_modality_drift_rows",
               "Rows where the modality's model answered, compared with the "
               "reference since the last reset.");
  for (const DriftSeries& s : snapshot.modalities)
    gauges.Sample(modality(s), static_cast<double>(s.rows));
  gauges.Begin("latefuse_modality_drift_presence_rate",
               "Share of the rows observed that held the modality.");
  for (const DriftSeries& s : snapshot.modalities)
    gauges.Sample(modality(s), s.presence_rate);
  gauges.Begin("latefuse_modality_reference_presence_rate",
               "Share of the reference profile's rows that held the "
               "modality.");
  for (const DriftSeries& s : snapshot.modalities)
    gauges.Sample(modality(s), s.reference_presence_rate);

  const DriftSeries& fused = snapshot.fused;
  if (fused.has_reference) {
    gauges.Begin("latefuse_fused_psi",
                 "Population stability index of the fused probabilities for "
                 "one class against the reference profile.");
    for (std::size_t c = 0; c < fused.psi.size(); ++c) {
      gauges.Sample(fmt::format("class=\"{}\"", Label(snapshot.classes[c])),
                    fused.psi[c]);
    }
    gauges.Begin("latefuse_fused_psi_max",
                 "The largest of the fused output's per-class PSI.");
    gauges.Sample("", fused.max_psi);
  }
  gauges.Begin("latefuse_fused_drift_rows",
               "Rows answered (status ok), compared with the reference since "
               "the last reset.");
  gauges.Sample("", static_cast<double>(fused.rows));
  gauges.Begin("latefuse_fused_drift_answered_rate",
               "Share of the rows observed that were answered.");
  gauges.Sample("", fused.presence_rate);
  gauges.Begin("latefuse_fused_reference_answered_rate",
               "Share of the reference profile's rows that were answered.");
  gauges.Sample("", fused.reference_presence_rate);
  return out;
}

}  // namespace latefuse
