// The fusion engine: one batch of parsed records in, one fused outcome per row
// out.
//
//   Engine engine(*pipeline, {.explain = true});
//   BatchResult result;
//   engine.Run(batch, result);
//
// Each model sees one call per batch holding only the rows where its modality
// is present, reading the batch's own column data (no copy) unless the call
// has a timeout and so may outlive Run. The models of a batch run in parallel,
// each on its own worker thread, except those the options run inline: on the
// calling thread, one after the other, when the modality has no timeout_ms and
// the batch is small (EngineOptions::inline_rows). A model that fails or
// overruns its timeout makes its modality missing for those rows (on_error:
// missing) or fails them (on_error: fail). Rows with fewer usable modalities
// than min_modalities abstain (or fail, per on_insufficient). The combiner then
// gets one call for the rest: a [K, rows, C] probability block with a [K, rows]
// presence mask. In a regression pipeline C is 2, (prediction, variance), and
// the checks on the models' outputs are those of a prediction and its variance
// (see plugin.h).
//
// A modality's shadow model gets the same rows in a call of its own, always on
// its own worker thread, under the modality's timeout. It is waited for only
// once the batch is fused, and whatever it does (answer, fail, overrun, return
// NaN) touches nothing but the shadow_* fields of the result: the fused
// output, the models' outputs and the rows' statuses are those of the same
// pipeline without the shadow, bit for bit.
#ifndef LATEFUSE_CORE_ENGINE_H_
#define LATEFUSE_CORE_ENGINE_H_

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline.h"
#include "core/records.h"

namespace latefuse {

struct EngineOptions {
  bool explain = false;  // ask the combiner for its per-row modality weights
  // Batches of at most this many rows run the models of modalities without a
  // timeout_ms on the calling thread, one after the other: with little work per
  // call, handing it to a worker thread and waking up again costs more than the
  // call (tens of microseconds on a busy machine, against about one for a row
  // of a linear model). Larger batches run every model on its own worker
  // thread, in parallel. A model with a timeout_ms always runs on its worker,
  // so that the engine can stop waiting at the deadline and the timeout means
  // what it says, and so does every shadow model, which must not slow the live
  // ones. 0: every model on its worker; SIZE_MAX: everything without a timeout
  // on the calling thread (one thread, for a caller that runs several engines
  // or batches at once).
  std::size_t inline_rows = 64;
};

enum class RowStatus : std::uint8_t { kOk, kAbstain, kError };

// The index of the largest of the n values at p, the first of equals: the
// label of a row of class probabilities.
std::size_t ArgMax(const double* p, std::size_t n);

// The outcome of one batch; vectors are reused between batches. C is
// ValuesPerRow(config): the number of classes, or 2 for regression
// (prediction, variance).
struct BatchResult {
  std::size_t rows = 0;
  std::vector<RowStatus> status;      // [rows]
  std::vector<std::string> errors;    // [rows], for kError rows
  std::vector<double> probabilities;  // [rows, C], valid for kOk rows
  std::vector<std::uint8_t> used;     // [K, rows]: present and answered
  std::vector<std::uint8_t> failed;  // [K, rows]: present, but its model failed
  std::vector<std::string>
      failures;  // [K]: why modality k failed in this batch
  // [K]: how long modality k's model call took, in seconds (what a server's
  // per-modality latency histogram observes); NaN when it made no call or
  // the call overran its timeout.
  std::vector<double> model_seconds;
  std::vector<std::uint8_t> timed_out;  // [K]: its call overran timeout_ms
  std::vector<double> modality_probabilities;  // [K, rows, C], valid where used
  std::vector<double>
      explanation;  // [rows, K] when explaining, valid for kOk rows

  // Shadow models; every shadow_* vector is empty when the pipeline runs
  // none. A shadow runs on the rows where its modality is present.
  std::vector<std::uint8_t> shadowed;  // [K]: 1 when modality k has a shadow
  std::vector<std::uint8_t> shadow_answered;  // [K, rows]: present, answered
  std::vector<std::uint8_t> shadow_failed;    // [K, rows]: present, it failed
  std::vector<std::string> shadow_failures;   // [K]: why, in this batch
  std::vector<double> shadow_probabilities;   // [K, rows, C], where answered
  // Where the shadow answered and the model was used (the row is compared),
  // against the model's output before calibration: whether the two argmaxes
  // agree (classification; 0 for regression), and the mean over the classes
  // of |p_shadow - p_model| (regression: |prediction difference|).
  std::vector<std::uint8_t> shadow_agree;  // [K, rows]
  std::vector<double> shadow_abs_diff;     // [K, rows]
};

class Engine {
 public:
  Engine(Pipeline& pipeline, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs every row of `batch`. Never fails as a whole: problems land in rows'
  // outcomes.
  void Run(const InputBatch& batch, BatchResult& result);

  // The modality specs a RecordParser for this pipeline needs.
  static std::vector<RecordModalitySpec> RecordSpecs(
      const PipelineConfig& config);

 private:
  class Worker;
  struct Job;

  // Fuses the rows still ok whose usable modalities meet the policy, or marks
  // them abstain or error.
  void Fuse(bool explain, BatchResult& result);

  Pipeline& pipeline_;
  EngineOptions options_;
  // [K]: the calls run inline, reused from batch to batch so that a batch
  // allocates nothing once the buffers have grown.
  std::vector<std::shared_ptr<Job>> inline_jobs_;
  // [K]: this batch's calls (null where a modality has no present row) and,
  // for those on a worker, the futures they signal.
  std::vector<std::shared_ptr<Job>> jobs_;
  std::vector<std::future<void>> done_;
  std::vector<std::shared_ptr<Job>> shadow_jobs_;
  std::vector<std::future<void>> shadow_done_;
  std::vector<std::unique_ptr<Worker>> workers_;  // one per modality
  // One per modality, null where the modality has no shadow.
  std::vector<std::unique_ptr<Worker>> shadow_workers_;
  bool has_shadow_ = false;
  // [K]: a shadowed model's output of this batch before calibration, for
  // its shadow to be compared with.
  std::vector<std::vector<double>> uncalibrated_;
  // The combiner's input and output, reused between batches.
  std::vector<std::size_t> combine_rows_;
  struct RowSpan {
    std::size_t index;   // of its first row among the combined rows
    std::size_t row;     // its first row in the batch
    std::size_t length;  // consecutive rows
  };
  std::vector<RowSpan> combine_runs_;
  std::vector<double> combine_probabilities_;
  std::vector<std::uint8_t> combine_present_;
  std::vector<double> combine_output_;
  std::vector<double> combine_explanation_;
};

// A model's output buffer as the host allocates it (in process and in a
// worker process alike): rows * C values, then C guard values, every one set
// to a NaN no computation produces. A model that writes fewer values than
// asked leaves a marker in place; one that writes more overwrites a guard.
std::size_t ModelOutputSize(std::size_t rows, std::size_t C);
void PrepareModelOutput(std::size_t rows, std::size_t C,
                        std::vector<double>& buffer, LfProbabilities& out);

// Empty when the model left `out` as PrepareModelOutput made it (rows, C and
// buffer) and wrote exactly rows * C values into `buffer`; else why not, with
// *bad_row the row. The first `filled` columns of each row must be written
// (a regression model without variance may leave column 1).
std::string CheckModelOutput(const LfProbabilities& out,
                             const std::vector<double>& buffer,
                             std::size_t rows, std::size_t C,
                             std::size_t filled, std::size_t* bad_row);

// Empty when every row of `p` ([rows, classes]) is a probability
// distribution (finite values in [0, 1] summing to 1 within 1e-6), else why
// not, with *bad_row the first bad row: how the engine checks what models and
// combiners return.
std::string CheckDistributions(const double* p, std::size_t rows,
                               std::size_t classes, std::size_t* bad_row);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_ENGINE_H_
