// `latefuse run`: streams JSONL records through a pipeline, one output line per
// input line, in order, in batches, so memory stays bounded whatever the
// input's size. The stages overlap: a reader thread splits large reads into
// batches of lines, worker threads (one per core) parse batches and format
// fused ones side by side, the calling thread runs the engine on one batch
// after another, and a writer thread writes the records in order;
// RunOptions::kBatchesInFlight batches circulate between them.
//
//   ASSIGN_OR_RETURN(RunSummary summary, RunStream(*pipeline, std::cin,
//   std::cout, {})); std::cerr << FormatSummary(pipeline->config(), summary);
//
//   // The CLI: file descriptors, and SIGINT/SIGTERM stop the reading.
//   ASSIGN_OR_RETURN(StopSignals stop, StopSignals::Install());
//   options.stop_fd = stop.fd();
//   ASSIGN_OR_RETURN(RunSummary summary, RunFiles(*pipeline, 0, 1, options));
//   // summary.stopped: a signal came; every line read has its record.
#ifndef LATEFUSE_CORE_RUN_H_
#define LATEFUSE_CORE_RUN_H_

#include <istream>
#include <memory>
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
  // Batches read, parsed, being fused or formatted or written at any one
  // time: memory is bounded by this many batches of `batch_size` lines. More
  // than one per stage: on a shared machine a stage that is descheduled for a
  // moment then does not stall the others.
  static constexpr std::size_t kBatchesInFlight = 8;

  std::size_t batch_size = 1024;  // input lines per engine batch
  // Threads that parse and format batches; 0: one per core.
  std::size_t threads = 0;
  bool progress = false;  // a live line of counts on stderr
  // RunFiles only: when this descriptor becomes readable, reading stops as if
  // the input had ended there; every line read so far (an unfinished last
  // line included) is still fused and written. -1: none.
  int stop_fd = -1;
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
  bool stopped = false;  // reading stopped on RunOptions::stop_fd
};

// Reads every line of `in`, writes one record per line to `out`. Fails only
// when the input cannot be read (after writing the records of the lines read
// before) or the output cannot be written; bad input lines become error
// records.
absl::StatusOr<RunSummary> RunStream(Pipeline& pipeline, std::istream& in,
                                     std::ostream& out,
                                     const RunOptions& options);

// RunStream on file descriptors, read and written in large blocks with no
// stream in between; honours options.stop_fd. While the input has nothing
// more to read right now (a pipe), the lines read so far go on as a batch
// rather than waiting for `batch_size` lines. The descriptors stay open.
absl::StatusOr<RunSummary> RunFiles(Pipeline& pipeline, int in_fd, int out_fd,
                                    const RunOptions& options);

// Turns the first SIGINT or SIGTERM into a stop request: the handler makes
// fd() readable and records the signal; a second signal has its default
// effect (the process ends at once). At most one may be installed at a time;
// the destructor restores the previous handlers.
class StopSignals {
 public:
  static absl::StatusOr<std::unique_ptr<StopSignals>> Install();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int fd() const { return read_fd_; }
  // The signal that came (SIGINT or SIGTERM), or 0.
  int signal() const;

 private:
  StopSignals() = default;

  int read_fd_ = -1;
  int write_fd_ = -1;
};

// A few human lines: rows, ok/abstain/error, presence rate per modality, and
// for each shadowed modality how its shadow compared.
std::string FormatSummary(const PipelineConfig& config,
                          const RunSummary& summary);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_RUN_H_
