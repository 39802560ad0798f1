// `latefuse run`: streams JSONL records through a pipeline, one output line per
// input line, in order, in batches, so memory stays bounded whatever the
// input's size.
//
//   ASSIGN_OR_RETURN(RunSummary summary, RunStream(*pipeline, std::cin,
//   std::cout, {})); std::cerr << FormatSummary(pipeline->config(), summary);
#ifndef LATEFUSE_CORE_RUN_H_
#define LATEFUSE_CORE_RUN_H_

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine.h"
#include "core/output.h"
#include "core/pipeline.h"

namespace latefuse {

struct RunOptions {
  std::size_t batch_size = 256;  // input lines per engine batch
  bool progress = false;         // a live line of counts on stderr
  EngineOptions engine;
  OutputOptions output;
};

// How a modality's shadow model compared with its model over a run.
struct ShadowCounts {
  std::size_t compared =
      0;                   // rows where both the shadow and the model answered
  std::size_t agreed = 0;  // ... and their argmaxes agree (classification)
  double abs_diff_sum = 0.0;  // sum over compared rows of the row's abs_diff
  std::size_t failed = 0;     // rows where the shadow failed or timed out

  // agreed / compared; 0 when nothing was compared.
  double AgreementRate() const;
  // The mean over compared rows of |p_shadow - p_model| averaged over classes
  // (regression: |prediction difference|); 0 when nothing was compared.
  double MeanAbsDiff() const;
};

struct ModalityCounts {
  std::size_t present = 0;             // rows where the record held it
  std::size_t used = 0;                // ... and its model answered
  std::size_t failed = 0;              // ... and its model failed or timed out
  std::optional<ShadowCounts> shadow;  // when the modality has a shadow
};

struct RunSummary {
  std::size_t rows = 0;
  std::size_t ok = 0;
  std::size_t abstain = 0;
  std::size_t error = 0;
  std::vector<ModalityCounts> modalities;  // pipeline order
  double seconds = 0.0;
};

// Reads every line of `in`, writes one record per line to `out`. Fails only
// when the output cannot be written; bad input lines become error records.
absl::StatusOr<RunSummary> RunStream(Pipeline& pipeline, std::istream& in,
                                     std::ostream& out,
                                     const RunOptions& options);

// A few human lines: rows, ok/abstain/error, presence rate per modality, and
// for each shadowed modality how its shadow compared.
std::string FormatSummary(const PipelineConfig& config,
                          const RunSummary& summary);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_RUN_H_
