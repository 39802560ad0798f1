#include "core/eval.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/engine.h"
#include "core/eval_report.h"
#include "core/labelled.h"
#include "core/status_macros.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Rows per combiner call when fusing a set.
constexpr std::size_t kFuseChunk = 4096;

int Count(std::uint64_t mask) { return std::popcount(mask); }

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The probabilities and labels of one set's scored rows, contiguous, as a
// Scorer reads them.
struct Scored {
  std::vector<double> probabilities;  // [n, C]
  std::vector<std::int32_t> labels;   // [n]
};

// Fuses kept per-modality probabilities under presence masks: only the
// combiner runs, with the pipeline's policy applied first, as the engine
// does.
class Fuser {
 public:
  Fuser(Pipeline& pipeline, const LabelledRows& data)
      : pipeline_(pipeline), data_(data) {}

  // Fuses row rows[i] with the modalities of mask(i) (a subset of those its
  // model answered for): status[i], and out [n, C], valid where ok. The
  // first combiner failure's message goes to *error.
  template <typename MaskOf>
  void Fuse(const std::vector<std::uint32_t>& rows, MaskOf mask,
            std::vector<RowStatus>& status, std::vector<double>& out,
            std::string* error) {
    const PipelineConfig& config = pipeline_.config();
    const std::size_t K = config.modalities.size();
    const std::size_t C = config.classes.size();
    const std::size_t n = rows.size();
    status.assign(n, RowStatus::kOk);
    out.assign(n * C, 0.0);
    pending_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (Count(mask(i)) >= config.policy.min_modalities) {
        pending_.push_back(i);
      } else {
        status[i] = config.policy.on_insufficient == OnInsufficient::kAbstain
                        ? RowStatus::kAbstain
                        : RowStatus::kError;
      }
    }
    for (std::size_t start = 0; start < pending_.size(); start += kFuseChunk) {
      const std::size_t m = std::min(kFuseChunk, pending_.size() - start);
      block_.assign(K * m * C, 0.0);
      present_.assign(K * m, 0);
      for (std::size_t k = 0; k < K; ++k) {
        for (std::size_t j = 0; j < m; ++j) {
          const std::size_t i = pending_[start + j];
          if (((mask(i) >> k) & 1) == 0) continue;
          present_[k * m + j] = 1;
          std::copy_n(data_.probabilities[k].data() + rows[i] * C, C,
                      block_.data() + (k * m + j) * C);
        }
      }
      fused_.assign(m * C, 0.0);
      const LfCombineInput input{sizeof(LfCombineInput), K, m, C, block_.data(),
                                 present_.data()};
      LfCombineOutput output{sizeof(LfCombineOutput), fused_.data(), nullptr};
      absl::Status result = pipeline_.combiner().Combine(input, output);
      std::size_t bad_row = 0;
      if (result.ok()) {
        const std::string bad =
            CheckDistributions(fused_.data(), m, C, &bad_row);
        if (!bad.empty()) {
          result = absl::InternalError(
              fmt::format("{}: {}", pipeline_.combiner().context(), bad));
        }
      }
      for (std::size_t j = 0; j < m; ++j) {
        const std::size_t i = pending_[start + j];
        if (!result.ok()) {
          status[i] = RowStatus::kError;
        } else {
          std::copy_n(fused_.data() + j * C, C, out.data() + i * C);
        }
      }
      if (!result.ok() && error->empty())
        *error = std::string(result.message());
    }
  }

 private:
  Pipeline& pipeline_;
  const LabelledRows& data_;
  std::vector<std::size_t> pending_;
  std::vector<double> block_;
  std::vector<std::uint8_t> present_;
  std::vector<double> fused_;
};

// Counts a set's outcomes and gathers its scored rows.
void Tally(const std::vector<std::uint32_t>& rows,
           const std::vector<RowStatus>& status,
           const std::vector<double>& probabilities, const LabelledRows& data,
           std::size_t C, Evaluation& evaluation, Scored& scored) {
  evaluation.rows = rows.size();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (status[i] == RowStatus::kAbstain) ++evaluation.abstained;
    if (status[i] == RowStatus::kError) ++evaluation.errors;
    if (status[i] != RowStatus::kOk) continue;
    ++evaluation.scored;
    scored.probabilities.insert(scored.probabilities.end(),
                                probabilities.begin() + i * C,
                                probabilities.begin() + (i + 1) * C);
    scored.labels.push_back(data.labels[rows[i]]);
  }
}

// One set's metrics still to compute: its own, or with `baseline` the paired
// contribution.
struct Job {
  Scored scored;
  Scored baseline;
  bool paired = false;
  std::uint64_t stream = 0;
  MetricValues* metrics = nullptr;
  MetricValues* baseline_metrics = nullptr;
  std::array<Interval, kMetricCount>* intervals = nullptr;
};

// Streams of the bootstrap's random numbers: one per evaluated set.
enum StreamKind : std::uint64_t {
  kAsGiven,
  kAlone,
  kPattern,
  kObserved,
  kContribution
};
std::uint64_t Stream(StreamKind kind, std::uint64_t id) {
  return (static_cast<std::uint64_t>(kind) << 56) | id;
}

void RunJobs(std::vector<Job>& jobs, const EvalOptions& options, std::size_t C,
             const std::function<void(const std::string&)>& progress) {
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;  // under progress_mutex
  std::mutex progress_mutex;
  auto work = [&] {
    for (std::size_t j = next++; j < jobs.size(); j = next++) {
      Job& job = jobs[j];
      const std::size_t n = job.scored.labels.size();
      Scorer scorer(job.scored.probabilities.data(), job.scored.labels.data(),
                    n, C, options.ece_bins);
      *job.metrics = scorer.Score();
      if (job.paired) {
        Scorer baseline(job.baseline.probabilities.data(),
                        job.baseline.labels.data(), n, C, options.ece_bins);
        *job.baseline_metrics = baseline.Score();
        *job.intervals = BootstrapIntervals(scorer, &baseline,
                                            options.bootstrap, job.stream);
      } else {
        *job.intervals =
            BootstrapIntervals(scorer, nullptr, options.bootstrap, job.stream);
      }
      job = Job{};  // its rows are no longer needed
      std::lock_guard<std::mutex> lock(progress_mutex);
      ++done;
      if (progress) {
        progress(fmt::format("bootstrap: {}/{} sets", done, jobs.size()));
      }
    }
  };
  unsigned threads = options.threads != 0 ? options.threads
                                          : std::thread::hardware_concurrency();
  threads = std::max(
      1u, std::min<unsigned>(threads, static_cast<unsigned>(jobs.size())));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

// The simulated patterns: the options' list, or the default.
absl::StatusOr<std::vector<std::uint64_t>> ChoosePatterns(
    const PipelineConfig& config, const EvalOptions& options,
    const std::vector<std::uint64_t>& observed, std::string& how) {
  const std::size_t K = config.modalities.size();
  const std::uint64_t all = (std::uint64_t{1} << K) - 1;
  std::vector<std::uint64_t> masks;
  if (!options.patterns.empty()) {
    for (const std::vector<std::string>& names : options.patterns) {
      std::uint64_t mask = 0;
      for (const std::string& name : names) {
        std::size_t k = 0;
        while (k < K && config.modalities[k].name != name) ++k;
        if (k == K) {
          std::vector<std::string> known;
          for (const ModalityConfig& m : config.modalities)
            known.push_back(m.name);
          return absl::InvalidArgumentError(fmt::format(
              "patterns: '{}' is not a modality of pipeline '{}' ({})", name,
              config.name, absl::StrJoin(known, ", ")));
        }
        mask |= std::uint64_t{1} << k;
      }
      if (mask == 0)
        return absl::InvalidArgumentError("patterns: an empty pattern");
      masks.push_back(mask);
    }
    how = "as listed (--patterns)";
  } else if (options.all_patterns || K <= kMaxDefaultModalities) {
    if (K > kMaxAllPatternsModalities) {
      return absl::InvalidArgumentError(fmt::format(
          "patterns: every subset of {} modalities is {} patterns; list the "
          "ones to simulate (at most {} modalities for all)",
          K, all, kMaxAllPatternsModalities));
    }
    for (std::uint64_t mask = 1; mask <= all; ++mask) masks.push_back(mask);
    how =
        fmt::format("every non-empty subset of the {} modalities ({})", K, all);
  } else {
    for (std::size_t k = 0; k < K; ++k) {
      masks.push_back(std::uint64_t{1} << k);
      masks.push_back(all & ~(std::uint64_t{1} << k));
    }
    masks.push_back(all);
    for (std::uint64_t mask : observed) {
      if (mask != 0) masks.push_back(mask);
    }
    how = fmt::format(
        "{} modalities make {} subsets: each modality alone, each "
        "leave-one-out, all of them, and the patterns observed in the data "
        "(--patterns all for every subset)",
        K, all);
  }
  std::sort(masks.begin(), masks.end(), [](std::uint64_t a, std::uint64_t b) {
    return Count(a) != Count(b) ? Count(a) < Count(b) : a < b;
  });
  masks.erase(std::unique(masks.begin(), masks.end()), masks.end());
  return masks;
}

Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json MetricsJson(const MetricValues& values,
                 const std::array<Interval, kMetricCount>* intervals) {
  Json out = Json::object();
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    const std::string name(kMetricNames[m]);
    if (intervals == nullptr) {
      out[name] = Number(values[m]);
      continue;
    }
    const Interval& ci = (*intervals)[m];
    out[name] = {{"value", Number(values[m])},
                 {"ci", std::isfinite(ci.low) ? Json::array({ci.low, ci.high})
                                              : Json(nullptr)}};
  }
  return out;
}

Json Names(const EvalResult& result, std::uint64_t mask) {
  Json names = Json::array();
  for (std::size_t k = 0; k < result.modalities.size(); ++k) {
    if ((mask >> k) & 1) names.push_back(result.modalities[k]);
  }
  return names;
}

Json SetJson(const EvalResult& result, const Evaluation& e) {
  return {{"modalities", Names(result, e.mask)},
          {"rows", e.rows},
          {"scored", e.scored},
          {"abstained", e.abstained},
          {"errors", e.errors},
          {"coverage", Number(e.rows == 0 ? kNaN
                                          : static_cast<double>(e.scored) /
                                                static_cast<double>(e.rows))},
          {"metrics", MetricsJson(e.metrics, &e.intervals)}};
}

Json BinsJson(const std::vector<ReliabilityBin>& bins) {
  Json out = Json::array();
  const double width = 1.0 / static_cast<double>(bins.size());
  for (std::size_t b = 0; b < bins.size(); ++b) {
    const ReliabilityBin& bin = bins[b];
    out.push_back({{"low", static_cast<double>(b) * width},
                   {"high", static_cast<double>(b + 1) * width},
                   {"rows", bin.weight},
                   {"confidence", Number(bin.confidence / bin.weight)},
                   {"accuracy", Number(bin.correct / bin.weight)}});
  }
  return out;
}

}  // namespace

std::string PatternName(const EvalResult& result, std::uint64_t mask) {
  std::vector<std::string> names;
  for (std::size_t k = 0; k < result.modalities.size(); ++k) {
    if ((mask >> k) & 1) names.push_back(result.modalities[k]);
  }
  return names.empty() ? "none" : absl::StrJoin(names, "+");
}

absl::StatusOr<EvalResult> Evaluate(Pipeline& pipeline,
                                    const EvalOptions& options) {
  const Clock::time_point start = Clock::now();
  const PipelineConfig& config = pipeline.config();
  if (config.task == Task::kRegression) {
    return absl::FailedPreconditionError(fmt::format(
        "pipeline '{}': `latefuse eval` scores class probabilities (accuracy, "
        "log loss, Brier, ROC-AUC, calibration); this pipeline's task is "
        "'regression'",
        config.name));
  }
  const std::size_t K = config.modalities.size();
  const std::size_t C = config.classes.size();
  if (K > kMaxModalities) {
    return absl::InvalidArgumentError(
        fmt::format("pipeline '{}' has {} modalities; `latefuse eval` handles "
                    "up to {}",
                    config.name, K, kMaxModalities));
  }
  if (options.bootstrap.confidence <= 0.0 ||
      options.bootstrap.confidence >= 1.0) {
    return absl::InvalidArgumentError(fmt::format(
        "confidence {} is not within (0, 1)", options.bootstrap.confidence));
  }

  EvalResult result;
  result.pipeline_name = config.name;
  // As the user would type it: relative to the working folder.
  result.pipeline_file = fs::proximate(config.file).string();
  result.classes = config.classes;
  for (const ModalityConfig& m : config.modalities)
    result.modalities.push_back(m.name);
  const LfPluginDescriptor* combiner =
      pipeline.combiner_plugin().plugin.descriptor;
  result.combiner = absl::StrCat(combiner->name, " ", combiner->version);
  result.min_modalities = config.policy.min_modalities;
  result.on_insufficient =
      config.policy.on_insufficient == OnInsufficient::kAbstain ? "abstain"
                                                                : "error";
  result.data_file = options.data.string();
  result.bootstrap = options.bootstrap;
  result.ece_bins = options.ece_bins;

  // Every model, once per row.
  LabelledRows data(K);
  LabelledReport report;
  LabelledOptions labelled;
  labelled.batch_size = options.batch_size;
  if (options.progress) {
    labelled.progress = [&](std::size_t lines) {
      options.progress(fmt::format("models: {} lines", lines));
    };
  }
  LATEFUSE_RETURN_IF_ERROR(
      RunLabelled(pipeline, options.data, labelled, data, report));
  if (!report.skipped.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "data '{}': {}; `latefuse eval` needs every line to be a record "
        "labelled with one of the pipeline's classes ({}){}",
        options.data.string(), report.skipped[0],
        absl::StrJoin(config.classes, ", "),
        report.skipped.size() == 1 ? ""
                                   : fmt::format(", and {} more lines are not",
                                                 report.skipped.size() - 1)));
  }
  if (data.rows == 0) {
    return absl::InvalidArgumentError(
        fmt::format("data '{}': no records", options.data.string()));
  }
  result.seconds_models = Seconds(start);
  const std::size_t N = data.rows;
  result.rows = N;
  result.class_counts.assign(C, 0);
  for (std::int32_t y : data.labels) ++result.class_counts[y];

  std::vector<std::uint64_t> used(N, 0);
  std::vector<std::uint64_t> present(N, 0);
  // Rows a model with on_error: fail failed on: errors, as the engine has
  // them.
  std::vector<std::uint8_t> failed(N, 0);
  result.profile = ModalityProfiles(config, data, options.profile_bins);
  for (std::size_t k = 0; k < K; ++k) {
    const ProbabilityProfile& profile = result.profile.distributions[k];
    const bool fail = config.modalities[k].on_error == OnError::kFail;
    for (std::size_t r = 0; r < N; ++r) {
      present[r] |= std::uint64_t{data.present[k][r]} << k;
      used[r] |= std::uint64_t{data.used[k][r]} << k;
      if (fail && data.present[k][r] && !data.used[k][r]) failed[r] = 1;
    }
    if (profile.present > profile.used) {
      result.warnings.push_back(fmt::format(
          "modality '{}': its model failed on {} of the {} rows that hold it",
          config.modalities[k].name, profile.present - profile.used,
          profile.present));
    }
  }

  Fuser fuser(pipeline, data);
  std::vector<Job> jobs;
  std::vector<RowStatus> status;
  std::vector<double> fused;
  std::vector<std::uint32_t> rows;
  auto fuse = [&](const std::string& what, auto mask) {
    std::string error;
    fuser.Fuse(rows, mask, status, fused, &error);
    if (!error.empty())
      result.warnings.push_back(absl::StrCat(what, ": ", error));
  };
  auto job = [&](Evaluation& e, std::uint64_t stream) {
    Job& j = jobs.emplace_back();
    Tally(rows, status, fused, data, C, e, j.scored);
    j.stream = stream;
    return &j;
  };

  // As given. Pointers into `result` are taken only once its vectors have
  // their final sizes.
  const std::uint64_t all = (std::uint64_t{1} << K) - 1;
  rows.resize(N);
  std::iota(rows.begin(), rows.end(), std::uint32_t{0});
  fuse("as given", [&](std::size_t i) { return used[i]; });
  for (std::size_t r = 0; r < N; ++r) {
    if (failed[r]) status[r] = RowStatus::kError;
  }
  const std::vector<RowStatus> given_status = status;
  const std::vector<double> given = fused;
  result.as_given.mask = all;
  job(result.as_given, Stream(kAsGiven, 0));
  ProbabilityProfile& fused_profile =
      result.profile.fused.emplace(C, options.profile_bins);
  fused_profile.present = N;
  for (std::size_t r = 0; r < N; ++r) {
    if (given_status[r] == RowStatus::kOk)
      fused_profile.Add(given.data() + r * C);
  }
  result.reliability.resize(static_cast<std::size_t>(options.ece_bins));
  ReliabilityBins(jobs[0].scored.probabilities.data(),
                  jobs[0].scored.labels.data(), jobs[0].scored.labels.size(), C,
                  nullptr, result.reliability);

  // Each modality alone: its model's (calibrated) output, no combiner.
  result.alone.resize(K);
  result.alone_reliability.resize(K);
  for (std::size_t k = 0; k < K; ++k) {
    rows.clear();
    for (std::size_t r = 0; r < N; ++r) {
      if (data.present[k][r]) rows.push_back(static_cast<std::uint32_t>(r));
    }
    status.assign(rows.size(), RowStatus::kOk);
    fused.resize(rows.size() * C);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (!data.used[k][rows[i]]) status[i] = RowStatus::kError;
      std::copy_n(data.probabilities[k].data() + rows[i] * C, C,
                  fused.data() + i * C);
    }
    result.alone[k].mask = std::uint64_t{1} << k;
    Job* j = job(result.alone[k], Stream(kAlone, k));
    result.alone_reliability[k].resize(
        static_cast<std::size_t>(options.ece_bins));
    ReliabilityBins(j->scored.probabilities.data(), j->scored.labels.data(),
                    j->scored.labels.size(), C, nullptr,
                    result.alone_reliability[k]);
  }

  // The patterns as they occur in the data, scored as given.
  std::map<std::uint64_t, std::vector<std::uint32_t>> groups;
  for (std::size_t r = 0; r < N; ++r)
    groups[present[r]].push_back(static_cast<std::uint32_t>(r));
  std::vector<std::uint64_t> observed;
  for (const auto& [mask, members] : groups) observed.push_back(mask);
  std::stable_sort(observed.begin(), observed.end(),
                   [&](std::uint64_t a, std::uint64_t b) {
                     return groups[a].size() > groups[b].size();
                   });
  result.observed.resize(observed.size());
  for (std::size_t o = 0; o < observed.size(); ++o) {
    rows = groups[observed[o]];
    status.resize(rows.size());
    fused.resize(rows.size() * C);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      status[i] = given_status[rows[i]];
      std::copy_n(given.data() + rows[i] * C, C, fused.data() + i * C);
    }
    result.observed[o].mask = observed[o];
    job(result.observed[o], Stream(kObserved, observed[o]));
  }

  // Every simulated availability pattern: mask what is outside it.
  LATEFUSE_ASSIGN_OR_RETURN(
      std::vector<std::uint64_t> patterns,
      ChoosePatterns(config, options, observed, result.patterns_chosen));
  result.patterns.resize(patterns.size());
  for (std::size_t p = 0; p < patterns.size(); ++p) {
    const std::uint64_t mask = patterns[p];
    if (options.progress) {
      options.progress(
          fmt::format("fusing: pattern {}/{}", p + 1, patterns.size()));
    }
    rows.clear();
    for (std::size_t r = 0; r < N; ++r) {
      if ((used[r] & mask) == mask)
        rows.push_back(static_cast<std::uint32_t>(r));
    }
    fuse(absl::StrCat("pattern ", PatternName(result, mask)),
         [&](std::size_t) { return mask; });
    result.patterns[p].mask = mask;
    job(result.patterns[p], Stream(kPattern, mask));
  }

  // Each modality's contribution: as given against the same rows with it
  // masked, on the rows where both are scored.
  result.contributions.resize(K);
  for (std::size_t k = 0; k < K; ++k) {
    const std::uint64_t bit = std::uint64_t{1} << k;
    rows.clear();
    for (std::size_t r = 0; r < N; ++r) {
      if ((used[r] & bit) != 0 && given_status[r] == RowStatus::kOk &&
          Count(used[r] & ~bit) >= config.policy.min_modalities) {
        rows.push_back(static_cast<std::uint32_t>(r));
      }
    }
    fuse(absl::StrCat("contribution of ", config.modalities[k].name),
         [&](std::size_t i) { return used[rows[i]] & ~bit; });
    Contribution& contribution = result.contributions[k];
    contribution.modality = k;
    Job& j = jobs.emplace_back();
    j.paired = true;
    j.stream = Stream(kContribution, k);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (status[i] != RowStatus::kOk) continue;
      ++contribution.rows;
      const std::size_t r = rows[i];
      j.scored.probabilities.insert(j.scored.probabilities.end(),
                                    given.begin() + r * C,
                                    given.begin() + (r + 1) * C);
      j.scored.labels.push_back(data.labels[r]);
      j.baseline.probabilities.insert(j.baseline.probabilities.end(),
                                      fused.begin() + i * C,
                                      fused.begin() + (i + 1) * C);
      j.baseline.labels.push_back(data.labels[r]);
    }
  }

  // Now that `result` holds every set, point each job at its target, in the
  // order the jobs were made.
  std::size_t next = 0;
  auto target = [&](Evaluation& e) {
    jobs[next].metrics = &e.metrics;
    jobs[next++].intervals = &e.intervals;
  };
  target(result.as_given);
  for (Evaluation& e : result.alone) target(e);
  for (Evaluation& e : result.observed) target(e);
  for (Evaluation& e : result.patterns) target(e);
  for (Contribution& c : result.contributions) {
    jobs[next].metrics = &c.with;
    jobs[next].baseline_metrics = &c.without;
    jobs[next++].intervals = &c.delta;
  }
  RunJobs(jobs, options, C, options.progress);
  result.seconds_total = Seconds(start);
  return result;
}

std::string ReportJson(const EvalResult& result) {
  Json class_counts = Json::object();
  for (std::size_t c = 0; c < result.classes.size(); ++c)
    class_counts[result.classes[c]] = result.class_counts[c];
  Json modalities = Json::array();
  for (std::size_t k = 0; k < result.modalities.size(); ++k) {
    const ProbabilityProfile& p = result.profile.distributions[k];
    modalities.push_back({{"name", result.modalities[k]},
                          {"present", p.present},
                          {"used", p.used},
                          {"failed", p.present - p.used}});
  }
  Json definitions = Json::object();
  definitions["accuracy"] = "sklearn.metrics.accuracy_score(y, argmax p)";
  definitions["log_loss"] =
      "sklearn.metrics.log_loss(y, p, labels=classes), probabilities clipped "
      "to [eps, 1 - eps] and renormalised";
  definitions["brier"] =
      result.classes.size() == 2
          ? "sklearn.metrics.brier_score_loss(y, p[:, 1]): mean of (p_1 - "
            "[y = 1])^2"
          : "mean over rows of sum over classes of (p_c - [y = c])^2 (Brier's "
            "multiclass score)";
  definitions["roc_auc"] =
      result.classes.size() == 2
          ? "sklearn.metrics.roc_auc_score(y, p[:, 1])"
          : "sklearn.metrics.roc_auc_score(y, p, multi_class='ovr', "
            "average='macro')";
  definitions["ece"] =
      fmt::format("top-label expected calibration error, {} equal-width bins",
                  result.ece_bins);
  Json json = {
      {"format", "latefuse.eval/v1"},
      {"pipeline",
       {{"name", result.pipeline_name},
        {"file", result.pipeline_file},
        {"classes", result.classes},
        {"modalities", result.modalities},
        {"combiner", result.combiner},
        {"min_modalities", result.min_modalities},
        {"on_insufficient", result.on_insufficient}}},
      {"data",
       {{"file", result.data_file},
        {"rows", result.rows},
        {"class_counts", class_counts},
        {"modalities", modalities}}},
      {"settings",
       {{"bootstrap", result.bootstrap.replicates},
        {"seed", result.bootstrap.seed},
        {"confidence", result.bootstrap.confidence},
        {"ece_bins", result.ece_bins},
        {"patterns", result.patterns_chosen},
        {"scored_rows",
         "metrics are over the rows neither abstained nor failed; coverage = "
         "scored / rows"},
        {"definitions", definitions}}},
      {"as_given", SetJson(result, result.as_given)}};
  Json alone = Json::array();
  for (const Evaluation& e : result.alone) alone.push_back(SetJson(result, e));
  json["alone"] = alone;
  Json patterns = Json::array();
  for (const Evaluation& e : result.patterns)
    patterns.push_back(SetJson(result, e));
  json["patterns"] = patterns;
  Json observed = Json::array();
  for (const Evaluation& e : result.observed)
    observed.push_back(SetJson(result, e));
  json["observed"] = observed;
  Json contributions = Json::array();
  for (const Contribution& c : result.contributions) {
    MetricValues delta;
    for (std::size_t m = 0; m < kMetricCount; ++m)
      delta[m] = c.with[m] - c.without[m];
    contributions.push_back({{"modality", result.modalities[c.modality]},
                             {"rows", c.rows},
                             {"with", MetricsJson(c.with, nullptr)},
                             {"without", MetricsJson(c.without, nullptr)},
                             {"delta", MetricsJson(delta, &c.delta)}});
  }
  json["contributions"] = contributions;
  Json alone_bins = Json::object();
  for (std::size_t k = 0; k < result.modalities.size(); ++k)
    alone_bins[result.modalities[k]] = BinsJson(result.alone_reliability[k]);
  json["reliability"] = {{"as_given", BinsJson(result.reliability)},
                         {"alone", alone_bins}};
  json["warnings"] = result.warnings;
  return json.dump(1) + "\n";
}

absl::Status WriteEvalReport(const EvalResult& result, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(fmt::format(
        "cannot create report folder '{}': {}", dir.string(), ec.message()));
  }
  const std::pair<const char*, std::string> files[] = {
      {"report.json", ReportJson(result)},
      {"profile.json", ProfileJson(result.profile)},
      {"report.html", ReportHtml(result)}};
  for (const auto& [name, text] : files) {
    const fs::path path = dir / name;
    std::ofstream out(path);
    out << text;
    out.close();
    if (!out) {
      return absl::UnavailableError(
          fmt::format("cannot write '{}'", path.string()));
    }
  }
  return absl::OkStatus();
}

}  // namespace latefuse
