// `latefuse fit`: fits what a pipeline marks as trainable, from labelled data:
// the calibrations marked `fit: true` (in the host) and a combiner with a
// `fit:` block (by the plugin's own fit), then writes their files and the
// pipeline snippet that uses them.
//
//   ASSIGN_OR_RETURN(auto pipeline, Pipeline::Load(config, LoadMode::kFit));
//   ASSIGN_OR_RETURN(FitReport report, FitPipeline(*pipeline, options));
//   std::cout << report.snippet;
//
// The modality models run over labelled records (`data`), or the per-modality
// probabilities come ready-made (`predictions`): predictions made out of fold
// are what a correct stacker needs, since a model's predictions on its own
// training rows are overconfident.
#ifndef LATEFUSE_CORE_FIT_H_
#define LATEFUSE_CORE_FIT_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/pipeline.h"

namespace latefuse {

struct FitOptions {
  // Exactly one of these: labelled records as `latefuse run` reads them, or
  // per-modality predictions, one JSON object per line:
  //   {"id": "p-1", "label": "stable",
  //    "modalities": {"vitals": [0.9, 0.1], "labs": {"stable": 0.7, ...},
  //    "imaging": null}}
  std::filesystem::path data;
  std::filesystem::path predictions;
  std::filesystem::path out_dir;  // created if missing
  std::uint64_t seed = 0;         // handed to the combiner's fit
  std::size_t batch_size = 256;
};

struct FitReport {
  std::size_t lines = 0;             // lines read
  std::size_t rows = 0;              // labelled rows fitted on
  std::vector<std::string> skipped;  // why each skipped line was skipped
  std::vector<std::size_t> present;  // per modality: rows where it was usable
  std::vector<std::filesystem::path> written;
  std::string snippet;  // the pipeline YAML that uses the fitted files
};

absl::StatusOr<FitReport> FitPipeline(Pipeline& pipeline,
                                      const FitOptions& options);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_FIT_H_
