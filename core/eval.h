// `latefuse eval`: how good a pipeline is on labelled data, and how it
// degrades under every pattern of missing modalities.
//
//   ASSIGN_OR_RETURN(auto pipeline, Pipeline::Load(std::move(config)));
//   ASSIGN_OR_RETURN(EvalResult result, Evaluate(*pipeline, options));
//   RETURN_IF_ERROR(WriteEvalReport(result, "report/"));  // json, profile,
//   html std::cout << FormatEvalSummary(result);  // core/eval_report.h
//
// Every modality's model runs once per row (calibrated as the pipeline says);
// each evaluated set then only calls the combiner, on the kept per-modality
// probabilities with a presence mask. The sets:
//   as given      the pipeline on the data as it is (what `latefuse run`
//   gives); alone         each modality's own (calibrated) probabilities on the
//   rows
//                 where its model answered; no combiner, no policy;
//   patterns      each simulated availability pattern S: the rows where every
//                 modality of S is present (and its model answered), with the
//                 others masked out, then fused;
//   observed      the rows grouped by the modalities their records hold, each
//                 group scored as given;
//   contributions for each modality k, the rows where it was used and the rest
//                 still meet min_modalities: as given minus with k masked
//                 (paired, so the same rows and resamples).
// The pipeline's policy holds throughout: a row with fewer usable modalities
// than min_modalities abstains (or is an error, per on_insufficient), and so
// does a row where a model with on_error: fail failed. Metrics are computed
// on the rows that are neither (the "scored" rows); coverage = scored / rows.
//
// report.json (format "latefuse.eval/v1"):
//   {"format": "latefuse.eval/v1",
//    "pipeline": {"name", "file", "classes": [...], "modalities": [...],
//                 "combiner": "weighted_mean 1.2.0", "min_modalities",
//                 "on_insufficient"},
//    "data": {"file", "rows", "class_counts": {class: n},
//             "modalities": [{"name", "present", "used", "failed"}]},
//    "settings": {"bootstrap", "seed", "confidence", "ece_bins",
//                 "patterns": how the simulated patterns were chosen,
//                 "definitions": {metric: text}},
//    "as_given": SET, "alone": [SET...], "patterns": [SET...],
//    "observed": [SET...],
//    "contributions": [{"modality", "rows", "with": METRICS, "without":
//    METRICS,
//                       "delta": {metric: {"value", "ci": [low, high]}}}],
//    "reliability": {"as_given": BINS, "alone": {modality: BINS}},
//    "warnings": [text...]}
//   SET = {"modalities": [names] (alone: one name), "rows", "scored",
//          "abstained", "errors", "coverage",
//          "metrics": {metric: {"value", "ci": [low, high]}}}
//   METRICS = {metric: value};  BINS = [{"low", "high", "rows", "confidence",
//          "accuracy"}] (mean confidence and accuracy of the bin's rows)
// Metrics are "accuracy", "log_loss", "brier", "roc_auc", "ece" (defined in
// core/metrics.h); an undefined value (no scored rows, or ROC-AUC with a
// class absent) is null, as is an interval fewer than half the bootstrap
// replicates define.
//
// profile.json (format "latefuse.profile/v1", documented in core/profile.h),
// the reference a drift monitor (core/drift.h) compares live traffic with:
// per modality, histograms of its `used` rows' probabilities; fused, those of
// the rows the pipeline answered as given.
#ifndef LATEFUSE_CORE_EVAL_H_
#define LATEFUSE_CORE_EVAL_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/calibration.h"
#include "core/metrics.h"
#include "core/pipeline.h"
#include "core/profile.h"

namespace latefuse {

struct EvalOptions {
  std::filesystem::path data;  // labelled records
  std::size_t batch_size = 256;
  BootstrapOptions bootstrap;
  // The simulated availability patterns, each a list of modality names;
  // empty: every non-empty subset when there are at most
  // kMaxDefaultModalities modalities, else each modality alone, each
  // leave-one-out, all of them, and the patterns observed in the data.
  std::vector<std::vector<std::string>> patterns;
  bool all_patterns = false;  // every non-empty subset, whatever K
  int ece_bins = 15;
  int profile_bins = kDefaultProfileBins;
  unsigned threads = 0;  // for the bootstrap; 0: one per core
  // Progress for long work ("models: 4096 lines", "bootstrap: 12/80 sets").
  std::function<void(const std::string&)> progress;
};

// Up to this many modalities, every subset is simulated by default (63).
inline constexpr std::size_t kMaxDefaultModalities = 6;
// `all_patterns` stops here (2^16 - 1 patterns).
inline constexpr std::size_t kMaxAllPatternsModalities = 16;
// Patterns are bit masks, and each evaluated set's random stream is its kind
// in the top byte of a 64-bit number above its mask: up to 48 modalities.
inline constexpr std::size_t kMaxModalities = 48;

// One evaluated set of rows.
struct Evaluation {
  std::uint64_t mask = 0;  // its modalities, bit k = modality k
  std::size_t rows = 0;    // rows in the set
  std::size_t scored = 0;  // neither abstained nor errors
  std::size_t abstained = 0;
  std::size_t errors = 0;
  MetricValues metrics{};
  std::array<Interval, kMetricCount> intervals{};
};

struct Contribution {
  std::size_t modality = 0;
  std::size_t rows = 0;  // paired rows scored both ways
  MetricValues with{};
  MetricValues without{};
  std::array<Interval, kMetricCount> delta{};  // of with - without
};

struct EvalResult {
  std::string pipeline_name;
  std::string pipeline_file;
  std::string combiner;  // "name version"
  std::vector<std::string> classes;
  std::vector<std::string> modalities;
  int min_modalities = 1;
  std::string on_insufficient;
  std::string data_file;
  std::size_t rows = 0;
  std::vector<std::size_t> class_counts;
  BootstrapOptions bootstrap;
  int ece_bins = 15;
  std::string patterns_chosen;  // how the simulated patterns were chosen

  Evaluation as_given;
  std::vector<Evaluation> alone;            // pipeline order
  std::vector<Evaluation> patterns;         // by size, then modality order
  std::vector<Evaluation> observed;         // by count, most frequent first
  std::vector<Contribution> contributions;  // pipeline order
  std::vector<ReliabilityBin> reliability;  // as given
  std::vector<std::vector<ReliabilityBin>> alone_reliability;
  Profile profile;  // per modality (present, used) and fused
  std::vector<std::string> warnings;
  double seconds_models = 0.0;
  double seconds_total = 0.0;
};

// Evaluates a classification pipeline (loaded for running) on labelled data.
// Every line must be a valid record labelled with one of the pipeline's
// classes: eval refuses the data otherwise, naming the first bad line.
absl::StatusOr<EvalResult> Evaluate(Pipeline& pipeline,
                                    const EvalOptions& options);

// "vitals+labs" ("none" for the empty pattern).
std::string PatternName(const EvalResult& result, std::uint64_t mask);

// report.json, as documented above (profile.json: ProfileJson(result.profile)).
std::string ReportJson(const EvalResult& result);

// Writes report.json, profile.json and report.html to `dir` (created).
absl::Status WriteEvalReport(const EvalResult& result,
                             const std::filesystem::path& dir);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_EVAL_H_
