// The probability profile (format "latefuse.profile/v1"): per modality and for
// the fused output, a histogram per class of the probabilities a pipeline gave
// on reference data. `latefuse eval` and `latefuse fit` write it; a drift
// monitor (core/drift.h) reads it and compares live traffic with it.
//
//   Profile profile = ModalityProfiles(config, labelled_rows, 10);
//   std::ofstream("report/profile.json") << ProfileJson(profile);
//   ASSIGN_OR_RETURN(Profile reference, ReadProfile("report/profile.json"));
//
// profile.json:
//   {"format": "latefuse.profile/v1", "pipeline", "classes": [...],
//    "rows": N, "bins": B, "edges": [0, 1/B, ..., 1],
//    "modalities": {name: {"present": n, "presence_rate": n / N, "used": u,
//                          "histograms": {class: [B counts]}}},
//    "fused": {"rows": ok rows, "histograms": {class: [B counts]}}}
// A probability p (after the modality's calibration, as the combiner gets it)
// falls in bin ProfileBin(p, B) = min(floor(p * B), B - 1); a modality's
// histograms count its `used` rows (present and its model answered), so each
// class's histogram sums to `used`; the fused ones count the rows the pipeline
// answered (status ok) and sum to fused.rows. `fused` is absent from a
// profile written by `latefuse fit`, which fits the combiner but does not run
// it.
#ifndef LATEFUSE_CORE_PROFILE_H_
#define LATEFUSE_CORE_PROFILE_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/labelled.h"
#include "core/pipeline_config.h"

namespace latefuse {

inline constexpr char kProfileFormat[] = "latefuse.profile/v1";
inline constexpr int kDefaultProfileBins = 10;

// The bin of probability p among `bins` equal-width bins of [0, 1]; p = 1
// falls in the last one.
inline std::size_t ProfileBin(double p, int bins) {
  return static_cast<std::size_t>(
      std::min(std::floor(p * bins), static_cast<double>(bins - 1)));
}

// A modality's or the fused output's probabilities on fixed bins.
struct ProbabilityProfile {
  std::size_t present = 0;  // rows that held the modality (fused: all rows)
  std::size_t used = 0;     // rows counted in the histograms
  std::vector<std::vector<std::size_t>> histograms;  // [C][bins]

  // Empty histograms of `classes` x `bins`, counts zero.
  ProbabilityProfile(std::size_t classes, int bins);
  ProbabilityProfile() = default;

  // Counts one row's C probabilities (used += 1).
  void Add(const double* probabilities);
};

struct Profile {
  std::string pipeline;
  std::vector<std::string> classes;
  std::size_t rows = 0;
  int bins = kDefaultProfileBins;
  std::vector<std::string> modalities;            // names, in file order
  std::vector<ProbabilityProfile> distributions;  // per modality
  std::optional<ProbabilityProfile> fused;

  // The index of modality `name`, or -1.
  int ModalityIndex(const std::string& name) const;
};

// The modalities' profiles of labelled rows (as RunLabelled gathers them):
// every row's used modalities counted; no fused output.
Profile ModalityProfiles(const PipelineConfig& config, const LabelledRows& data,
                         int bins);

// profile.json's text, as documented above.
std::string ProfileJson(const Profile& profile);

// Parses profile.json text and checks it whole: the format, B >= 1 bins and
// their edges, unique classes, every histogram of every class with B
// non-negative counts summing to its `used` (fused: `rows`), present <= rows,
// used <= present. Errors name `source` and the key, e.g.
//   profile 'ref.json': modalities.vitals.histograms.stable: 9 counts, expected
//   10 (bins)
absl::StatusOr<Profile> ParseProfile(const std::string& text,
                                     const std::string& source);
absl::StatusOr<Profile> ReadProfile(const std::filesystem::path& file);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_PROFILE_H_
