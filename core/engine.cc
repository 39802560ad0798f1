#include "core/engine.h"

#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string CheckDistributions(const double* p, std::size_t rows,
                               std::size_t classes, std::size_t* bad_row) {
  for (std::size_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      const double v = p[r * classes + c];
      if (!std::isfinite(v) || v < 0.0 || v > 1.0) {
        *bad_row = r;
        return fmt::format("returned {} as a probability", v);
      }
      sum += v;
    }
    if (std::abs(sum - 1.0) > 1e-6) {
      *bad_row = r;
      return fmt::format("returned probabilities summing to {}", sum);
    }
  }
  return "";
}

namespace {

// The marker PrepareModelOutput leaves in every value: a quiet NaN with a
// payload that arithmetic never produces (NaNs computed from numbers carry
// none).
constexpr std::uint64_t kUnwritten = 0x7ff8'1a7e'f05e'0000;

bool IsUnwritten(double v) {
  return std::bit_cast<std::uint64_t>(v) == kUnwritten;
}

}  // namespace

std::size_t ModelOutputSize(std::size_t rows, std::size_t C) {
  return (rows + 1) * C;
}

void PrepareModelOutput(std::size_t rows, std::size_t C,
                        std::vector<double>& buffer, LfProbabilities& out) {
  buffer.assign(ModelOutputSize(rows, C), std::bit_cast<double>(kUnwritten));
  out = {sizeof(LfProbabilities), rows, C, buffer.data()};
}

std::string CheckModelOutput(const LfProbabilities& out,
                             const std::vector<double>& buffer,
                             std::size_t rows, std::size_t C,
                             std::size_t filled, std::size_t* bad_row) {
  *bad_row = 0;
  if (out.rows != rows || out.classes != C || out.data != buffer.data()) {
    return fmt::format(
        "changed its output's shape from {} rows x {} to {} rows x {}{}", rows,
        C, out.rows, out.classes,
        out.data != buffer.data() ? " and its data pointer" : "");
  }
  for (std::size_t i = rows * C; i < buffer.size(); ++i) {
    if (!IsUnwritten(buffer[i])) {
      *bad_row = rows;
      return fmt::format(
          "wrote past the end of its output ({} rows x {} values)", rows, C);
    }
  }
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < filled; ++c) {
      if (IsUnwritten(buffer[r * C + c])) {
        *bad_row = r;
        return fmt::format("did not fill row {} of its output", r);
      }
    }
  }
  return "";
}

namespace {

// What a regression output's variance column must hold.
enum class Variance {
  kNone,      // NaN: the model reports no variance
  kReported,  // finite and >= 0
  kEither,    // either: a combiner's fused variance
};

// Empty when every row of `v` ([rows, 2]: prediction, variance) has a finite
// prediction and a variance as `rule` says; else why not.
std::string CheckRegression(const double* v, std::size_t rows, Variance rule,
                            std::size_t* bad_row) {
  for (std::size_t r = 0; r < rows; ++r) {
    const double prediction = v[2 * r];
    const double variance = v[2 * r + 1];
    const bool reported = std::isfinite(variance) && variance >= 0.0;
    std::string bad;
    if (!std::isfinite(prediction)) {
      bad = fmt::format("returned {} as a prediction", prediction);
    } else if (rule == Variance::kNone && !std::isnan(variance)) {
      bad = fmt::format(
          "returned {} as a variance, but its contract reports none (NaN)",
          variance);
    } else if (!reported &&
               (rule == Variance::kReported || !std::isnan(variance))) {
      bad = fmt::format("returned {} as a variance", variance);
    }
    if (!bad.empty()) {
      *bad_row = r;
      return bad;
    }
  }
  return "";
}

}  // namespace

// One model call. A call with a timeout owns a copy of its inputs, so that if
// it overruns it can finish later without touching memory the engine has moved
// on from; any other call is waited for before Run returns and reads the
// batch's column data in place. A shadow's call shares its model's call's
// inputs: it holds that job, whose batch it points at. Inline calls are
// reused from batch to batch.
struct Engine::Job {
  LfBatch batch{};
  std::vector<float> dense;        // the owned copy of dense inputs
  std::vector<std::string> items;  // the owned copy of text or bytes inputs
  std::vector<LfBytesView> views;
  std::shared_ptr<const Job> input;  // a shadow's call: its model's call
  std::vector<double> out;
  LfProbabilities probabilities{};
  absl::Status status;
  double seconds = 0.0;  // how long Infer took
  std::promise<void> done;

  // Points the call at the `present` rows of `column`, copying them when
  // `own`, with room for C values per row out.
  void Prepare(const InputColumn& column, const ModalityConfig& m,
               std::size_t present, std::size_t C, bool own) {
    input.reset();
    batch = LfBatch{};
    batch.struct_size = sizeof(LfBatch);
    batch.rows = present;
    if (m.input_kind == InputKind::kDense) {
      batch.kind = LF_INPUT_DENSE;
      batch.width = m.input_size;
      if (own) dense = column.dense;
      batch.dense = own ? dense.data() : column.dense.data();
    } else {
      if (own) items = column.items;
      const std::vector<std::string>& from = own ? items : column.items;
      views.clear();
      for (const std::string& item : from)
        views.push_back({item.data(), item.size()});
      batch.kind =
          m.input_kind == InputKind::kText ? LF_INPUT_TEXT : LF_INPUT_BYTES;
      batch.items = views.data();
    }
    ShapeOutput(present, C);
  }

  // A shadow's call on its model's call's inputs.
  void Shadow(std::shared_ptr<const Job> model, std::size_t C) {
    batch = model->batch;
    input = std::move(model);
    ShapeOutput(batch.rows, C);
  }

  void ShapeOutput(std::size_t rows, std::size_t C) {
    PrepareModelOutput(rows, C, out, probabilities);
    status = absl::OkStatus();
    seconds = 0.0;
  }

  void Call(ModelInstance& instance) {
    const Clock::time_point call_start = Clock::now();
    status = instance.Infer(batch, probabilities);
    seconds = std::chrono::duration<double>(Clock::now() - call_start).count();
  }
};

// Runs one modality's model calls on its own thread, one at a time.
class Engine::Worker {
 public:
  explicit Worker(ModelInstance* instance)
      : instance_(instance), thread_([this] { Loop(); }) {}

  std::future<void> Submit(std::shared_ptr<Job> job) {
    std::future<void> done = job->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(job));
    }
    wake_.notify_all();
    return done;
  }

  // Takes `job` off the queue if the thread has not started it. A call whose
  // deadline has passed while it waited behind an overrunning one is not worth
  // making: left queued, a model that keeps overrunning would pile up one
  // stale call per batch, which Stop would then have to wait out.
  void Withdraw(const std::shared_ptr<Job>& job) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase(queue_, job);
  }

  // Stops the thread. Returns false when a call that overran its timeout has
  // still not returned after `grace`: the thread is then left running and its
  // instance must not be destroyed.
  bool Stop(std::chrono::milliseconds grace) {
    std::unique_lock<std::mutex> lock(mutex_);
    stop_ = true;
    wake_.notify_all();
    if (!wake_.wait_for(lock, grace, [this] { return !busy_; })) {
      thread_.detach();
      return false;
    }
    lock.unlock();
    thread_.join();
    return true;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left to do
      std::shared_ptr<Job> job = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      job->Call(*instance_);
      job->done.set_value();
      job.reset();
      lock.lock();
      busy_ = false;
      wake_.notify_all();
    }
  }

  ModelInstance* instance_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  bool busy_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

Engine::Engine(Pipeline& pipeline, EngineOptions options)
    : pipeline_(pipeline), options_(options) {
  for (Pipeline::Modality& modality : pipeline_.modalities()) {
    workers_.push_back(std::make_unique<Worker>(modality.instance.get()));
    shadow_workers_.push_back(
        modality.shadow ? std::make_unique<Worker>(modality.shadow.get())
                        : nullptr);
    has_shadow_ = has_shadow_ || modality.shadow != nullptr;
  }
  const std::size_t K = workers_.size();
  uncalibrated_.resize(K);
  for (std::size_t k = 0; k < K; ++k) {
    inline_jobs_.push_back(std::make_shared<Job>());
  }
  jobs_.resize(K);
  done_.resize(K);
  shadow_jobs_.resize(K);
  shadow_done_.resize(K);
}

Engine::~Engine() {
  // Its model is stuck in a call: leak the instance (and worker) rather than
  // free memory a running thread still uses. A model that keeps its own
  // deadline is waited for: its call ends by then.
  auto stop = [](std::unique_ptr<Worker>& worker,
                 std::unique_ptr<ModelInstance>& instance) {
    const std::chrono::milliseconds grace =
        std::chrono::milliseconds(1000) +
        (instance ? instance->deadline().value_or(std::chrono::milliseconds(0))
                  : std::chrono::milliseconds(0));
    if (worker && !worker->Stop(grace)) {
      (void)instance.release();
      (void)worker.release();
    }
  };
  for (std::size_t k = 0; k < workers_.size(); ++k) {
    Pipeline::Modality& modality = pipeline_.modalities()[k];
    stop(workers_[k], modality.instance);
    stop(shadow_workers_[k], modality.shadow);
  }
}

std::size_t ArgMax(const double* p, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t c = 1; c < n; ++c) {
    if (p[c] > p[best]) best = c;
  }
  return best;
}

std::vector<RecordModalitySpec> Engine::RecordSpecs(
    const PipelineConfig& config) {
  std::vector<RecordModalitySpec> specs;
  for (const ModalityConfig& m : config.modalities) {
    RecordInputKind kind = RecordInputKind::kDense;
    if (m.input_kind == InputKind::kText) kind = RecordInputKind::kText;
    if (m.input_kind == InputKind::kBytes) kind = RecordInputKind::kBytes;
    specs.push_back({m.name, kind, m.input_size});
  }
  return specs;
}

void Engine::Run(const InputBatch& batch, BatchResult& result) {
  const PipelineConfig& config = pipeline_.config();
  const std::size_t rows = batch.rows;
  const std::size_t K = config.modalities.size();
  const bool regression = config.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config);

  result.rows = rows;
  result.status.assign(rows, RowStatus::kOk);
  result.errors.assign(rows, std::string());
  result.probabilities.assign(rows * C, 0.0);
  result.used.assign(K * rows, 0);
  result.failed.assign(K * rows, 0);
  result.failures.assign(K, std::string());
  result.model_seconds.assign(K, std::numeric_limits<double>::quiet_NaN());
  result.timed_out.assign(K, 0);
  result.modality_probabilities.assign(K * rows * C, 0.0);
  const bool explain = options_.explain && pipeline_.has_combiner() &&
                       pipeline_.combiner().explains();
  result.explanation.assign(explain ? rows * K : 0, 0.0);
  const std::size_t shadow_size = has_shadow_ ? K * rows : 0;
  result.shadowed.clear();
  for (std::size_t k = 0; k < K && has_shadow_; ++k) {
    result.shadowed.push_back(shadow_workers_[k] != nullptr);
  }
  result.shadow_answered.assign(shadow_size, 0);
  result.shadow_failed.assign(shadow_size, 0);
  result.shadow_failures.assign(has_shadow_ ? K : 0, std::string());
  result.shadow_probabilities.assign(shadow_size * C, 0.0);
  result.shadow_agree.assign(shadow_size, 0);
  result.shadow_abs_diff.assign(shadow_size, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    if (!batch.errors[r].empty()) {
      result.status[r] = RowStatus::kError;
      result.errors[r] = batch.errors[r];
    }
  }

  // Every model with present rows gets one call, and so does its shadow: on
  // the workers, all at once, and then those run inline, one by one, while
  // the workers run.
  const Clock::time_point start = Clock::now();
  for (std::size_t k = 0; k < K; ++k) {
    jobs_[k].reset();
    shadow_jobs_[k].reset();
    done_[k] = {};
    shadow_done_[k] = {};
    const InputColumn& column = batch.columns[k];
    std::size_t present = 0;
    for (std::size_t r = 0; r < rows; ++r) present += column.present[r];
    if (present == 0) continue;
    const ModalityConfig& m = config.modalities[k];
    const bool on_worker = m.timeout.has_value() || rows > options_.inline_rows;
    std::shared_ptr<Job> job =
        on_worker ? std::make_shared<Job>() : inline_jobs_[k];
    job->Prepare(column, m, present, C, /*own=*/m.timeout.has_value());
    if (on_worker) done_[k] = workers_[k]->Submit(job);
    // A shadow always runs on its worker: it must add nothing to the time
    // the live models take.
    if (shadow_workers_[k]) {
      auto shadow = std::make_shared<Job>();
      shadow->Shadow(job, C);
      shadow_done_[k] = shadow_workers_[k]->Submit(shadow);
      shadow_jobs_[k] = std::move(shadow);
    }
    jobs_[k] = std::move(job);
  }
  for (std::size_t k = 0; k < K; ++k) {
    if (jobs_[k] && !done_[k].valid()) {
      jobs_[k]->Call(*pipeline_.modalities()[k].instance);
    }
  }

  // Waits for a call on a worker until its modality's deadline (an inline
  // call has already returned); returns why it failed, or "" when its output
  // is good.
  auto await = [&](std::size_t k, Worker& worker,
                   const std::shared_ptr<Job>& job,
                   std::future<void>& call_done, const ModelInstance& model) {
    const ModalityConfig& m = config.modalities[k];
    const bool live = &worker == workers_[k].get();
    if (call_done.valid()) {
      // An isolated model keeps its own deadline: it kills its worker process
      // and says so.
      if (m.timeout && !model.deadline() &&
          call_done.wait_until(start + *m.timeout) ==
              std::future_status::timeout) {
        call_done = {};
        worker.Withdraw(job);
        if (live) result.timed_out[k] = 1;
        return fmt::format("{}: timed out after {} ms", model.context(),
                           m.timeout->count());
      }
      call_done.get();
    }
    if (!job->status.ok()) {
      if (live && absl::IsDeadlineExceeded(job->status))
        result.timed_out[k] = 1;
      return std::string(job->status.message());
    }
    const std::size_t rows_out = job->batch.rows;
    const bool variance = !regression || model.reports_variance();
    std::size_t bad_row = 0;
    std::string bad = CheckModelOutput(job->probabilities, job->out, rows_out,
                                       C, variance ? C : 1, &bad_row);
    if (bad.empty()) {
      bad =
          regression
              ? CheckRegression(
                    job->out.data(), rows_out,
                    variance ? Variance::kReported : Variance::kNone, &bad_row)
              : CheckDistributions(job->out.data(), rows_out, C, &bad_row);
    }
    if (bad.empty()) return bad;
    return fmt::format("{}: {} (its row {} of the batch)", model.context(), bad,
                       bad_row);
  };

  for (std::size_t k = 0; k < K; ++k) {
    if (!jobs_[k]) continue;
    const ModalityConfig& m = config.modalities[k];
    const Pipeline::Modality& modality = pipeline_.modalities()[k];
    const InputColumn& column = batch.columns[k];
    std::string failure =
        await(k, *workers_[k], jobs_[k], done_[k], *modality.instance);
    if (!result.timed_out[k]) result.model_seconds[k] = jobs_[k]->seconds;
    if (failure.empty() && shadow_jobs_[k]) {
      uncalibrated_[k].assign(
          jobs_[k]->out.begin(),
          jobs_[k]->out.end() - static_cast<std::ptrdiff_t>(C));
    }
    if (failure.empty() && modality.calibrator) {
      modality.calibrator->Apply(jobs_[k]->out.data(), jobs_[k]->batch.rows);
    }
    // Hoisted into locals: the uint8_t stores below may alias anything, and
    // would make the compiler reload every vector's data pointer per row.
    const std::uint8_t* present = column.present.data();
    if (!failure.empty()) {
      std::uint8_t* failed = result.failed.data() + k * rows;
      for (std::size_t r = 0; r < rows; ++r) {
        if (!present[r]) continue;
        failed[r] = 1;
        if (m.on_error == OnError::kFail &&
            result.status[r] != RowStatus::kError) {
          result.status[r] = RowStatus::kError;
          result.errors[r] = failure;
        }
      }
    } else {
      std::uint8_t* used = result.used.data() + k * rows;
      const double* from = jobs_[k]->out.data();
      double* to = result.modality_probabilities.data() + k * rows * C;
      for (std::size_t r = 0; r < rows; ++r) {
        if (!present[r]) continue;
        used[r] = 1;
        for (std::size_t c = 0; c < C; ++c) to[r * C + c] = from[c];
        from += C;
      }
    }
    result.failures[k] = std::move(failure);
  }

  Fuse(explain, result);

  // The shadows last: the batch's fused results are already settled.
  for (std::size_t k = 0; k < K; ++k) {
    if (!shadow_jobs_[k]) continue;
    const InputColumn& column = batch.columns[k];
    const Job& shadow = *shadow_jobs_[k];
    std::string failure =
        await(k, *shadow_workers_[k], shadow_jobs_[k], shadow_done_[k],
              *pipeline_.modalities()[k].shadow);
    std::size_t i = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      if (!column.present[r]) continue;
      const std::size_t at = k * rows + r;
      if (!failure.empty()) {
        result.shadow_failed[at] = 1;
      } else {
        result.shadow_answered[at] = 1;
        const double* s = shadow.out.data() + i * C;
        std::copy_n(s, C, result.shadow_probabilities.data() + at * C);
        if (result.used[at]) {
          const double* live = uncalibrated_[k].data() + i * C;
          if (regression) {
            result.shadow_abs_diff[at] = std::abs(s[0] - live[0]);
          } else {
            result.shadow_agree[at] = ArgMax(s, C) == ArgMax(live, C);
            double sum = 0.0;
            for (std::size_t c = 0; c < C; ++c) sum += std::abs(s[c] - live[c]);
            result.shadow_abs_diff[at] = sum / static_cast<double>(C);
          }
        }
      }
      ++i;
    }
    result.shadow_failures[k] = std::move(failure);
  }
}

void Engine::Fuse(bool explain, BatchResult& result) {
  const PipelineConfig& config = pipeline_.config();
  const std::size_t rows = result.rows;
  const std::size_t K = config.modalities.size();
  const bool regression = config.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config);

  // Rows with too few usable modalities abstain; the rest go to the combiner
  // together.
  combine_rows_.clear();
  const std::uint8_t* used = result.used.data();
  for (std::size_t r = 0; r < rows; ++r) {
    if (result.status[r] != RowStatus::kOk) continue;
    int usable = 0;
    for (std::size_t k = 0; k < K; ++k) usable += used[k * rows + r];
    if (usable >= config.policy.min_modalities) {
      combine_rows_.push_back(r);
    } else if (config.policy.on_insufficient == OnInsufficient::kAbstain) {
      result.status[r] = RowStatus::kAbstain;
    } else {
      result.status[r] = RowStatus::kError;
      result.errors[r] = fmt::format(
          "{} usable modalit{}, fewer than min_modalities {}", usable,
          usable == 1 ? "y" : "ies", config.policy.min_modalities);
    }
  }
  const std::size_t n = combine_rows_.size();
  // A pipeline loaded for fitting has no combiner: its models' outputs are all
  // there is.
  if (n == 0 || !pipeline_.has_combiner()) return;
  // The combined rows, as runs of consecutive rows: (first combined index,
  // first row, length). Most rows are combined, so the runs are long, and
  // each is copied to and from the combiner's blocks in one go.
  combine_runs_.clear();
  for (std::size_t i = 0; i < n;) {
    std::size_t length = 1;
    while (i + length < n &&
           combine_rows_[i + length] == combine_rows_[i] + length) {
      ++length;
    }
    combine_runs_.push_back({i, combine_rows_[i], length});
    i += length;
  }
  // When every row is combined, the combiner reads and writes the result's
  // own blocks, which then have its layout.
  const bool in_place = n == rows;
  if (!in_place) {
    combine_probabilities_.resize(K * n * C);
    combine_present_.resize(K * n);
    combine_output_.resize(n * C);
    combine_explanation_.resize(explain ? n * K : 0);
    for (std::size_t k = 0; k < K; ++k) {
      for (const RowSpan& run : combine_runs_) {
        std::copy_n(result.used.data() + k * rows + run.row, run.length,
                    combine_present_.data() + k * n + run.index);
        std::copy_n(
            result.modality_probabilities.data() + (k * rows + run.row) * C,
            run.length * C,
            combine_probabilities_.data() + (k * n + run.index) * C);
      }
    }
  }
  double* fused =
      in_place ? result.probabilities.data() : combine_output_.data();
  double* explanation = !explain   ? nullptr
                        : in_place ? result.explanation.data()
                                   : combine_explanation_.data();
  LfCombineInput input{sizeof(LfCombineInput),
                       K,
                       n,
                       C,
                       in_place ? result.modality_probabilities.data()
                                : combine_probabilities_.data(),
                       in_place ? result.used.data() : combine_present_.data()};
  LfCombineOutput output{sizeof(LfCombineOutput), fused, explanation};
  absl::Status status = pipeline_.combiner().Combine(input, output);
  std::size_t bad_row = 0;
  if (status.ok()) {
    // A fused regression row's variance is NaN when the combiner has none.
    std::string bad =
        regression ? CheckRegression(fused, n, Variance::kEither, &bad_row)
                   : CheckDistributions(fused, n, C, &bad_row);
    if (!bad.empty()) {
      status = absl::InternalError(fmt::format("{}: {} (row {} of the batch)",
                                               pipeline_.combiner().context(),
                                               bad, combine_rows_[bad_row]));
    }
  }
  if (!status.ok()) {
    for (std::size_t r : combine_rows_) {
      result.status[r] = RowStatus::kError;
      result.errors[r] = std::string(status.message());
    }
    return;
  }
  if (in_place) return;
  for (const RowSpan& run : combine_runs_) {
    std::copy_n(combine_output_.data() + run.index * C, run.length * C,
                result.probabilities.data() + run.row * C);
    if (explain) {
      std::copy_n(combine_explanation_.data() + run.index * K, run.length * K,
                  result.explanation.data() + run.row * K);
    }
  }
}

}  // namespace latefuse
