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

// One model call: the job owns its inputs and outputs, so a call that overruns
// its timeout can finish later without touching memory the engine has moved on
// from. A shadow's call shares its model's call's inputs rather than copying
// them: it holds that job, whose batch it points at.
struct Job {
  LfBatch batch{};
  std::vector<float> dense;
  std::vector<std::string> items;
  std::vector<LfBytesView> views;
  std::shared_ptr<const Job> input;  // a shadow's call: its model's call
  std::vector<double> out;
  LfProbabilities probabilities{};
  absl::Status status;
  double seconds = 0.0;  // how long Infer took
  std::promise<void> done;
};

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
      const Clock::time_point call_start = Clock::now();
      job->status = instance_->Infer(job->batch, job->probabilities);
      job->seconds =
          std::chrono::duration<double>(Clock::now() - call_start).count();
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
  uncalibrated_.resize(workers_.size());
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

  // Every model with present rows gets one call, and so does its shadow, all
  // of them running at once.
  std::vector<std::shared_ptr<Job>> jobs(K);
  std::vector<std::future<void>> done(K);
  std::vector<std::shared_ptr<Job>> shadow_jobs(K);
  std::vector<std::future<void>> shadow_done(K);
  const Clock::time_point start = Clock::now();
  for (std::size_t k = 0; k < K; ++k) {
    const InputColumn& column = batch.columns[k];
    std::size_t present = 0;
    for (std::size_t r = 0; r < rows; ++r) present += column.present[r];
    if (present == 0) continue;
    auto job = std::make_shared<Job>();
    const ModalityConfig& m = config.modalities[k];
    job->batch.struct_size = sizeof(LfBatch);
    job->batch.rows = present;
    if (m.input_kind == InputKind::kDense) {
      job->dense = column.dense;
      job->batch.kind = LF_INPUT_DENSE;
      job->batch.width = m.input_size;
      job->batch.dense = job->dense.data();
    } else {
      job->items = column.items;
      for (const std::string& item : job->items)
        job->views.push_back({item.data(), item.size()});
      job->batch.kind =
          m.input_kind == InputKind::kText ? LF_INPUT_TEXT : LF_INPUT_BYTES;
      job->batch.items = job->views.data();
    }
    PrepareModelOutput(present, C, job->out, job->probabilities);
    done[k] = workers_[k]->Submit(job);
    if (shadow_workers_[k]) {
      auto shadow = std::make_shared<Job>();
      shadow->input = job;
      shadow->batch = job->batch;
      PrepareModelOutput(present, C, shadow->out, shadow->probabilities);
      shadow_done[k] = shadow_workers_[k]->Submit(shadow);
      shadow_jobs[k] = std::move(shadow);
    }
    jobs[k] = std::move(job);
  }

  // Waits for a call until its modality's deadline; returns why it failed, or
  // "" when its output is good.
  auto await = [&](std::size_t k, Worker& worker,
                   const std::shared_ptr<Job>& job,
                   std::future<void>& call_done, const ModelInstance& model) {
    const ModalityConfig& m = config.modalities[k];
    const bool live = &worker == workers_[k].get();
    // An isolated model keeps its own deadline: it kills its worker process
    // and says so.
    if (m.timeout && !model.deadline() &&
        call_done.wait_until(start + *m.timeout) ==
            std::future_status::timeout) {
      worker.Withdraw(job);
      if (live) result.timed_out[k] = 1;
      return fmt::format("{}: timed out after {} ms", model.context(),
                         m.timeout->count());
    }
    call_done.wait();
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
    if (!jobs[k]) continue;
    const ModalityConfig& m = config.modalities[k];
    const Pipeline::Modality& modality = pipeline_.modalities()[k];
    const InputColumn& column = batch.columns[k];
    std::string failure =
        await(k, *workers_[k], jobs[k], done[k], *modality.instance);
    if (!result.timed_out[k]) result.model_seconds[k] = jobs[k]->seconds;
    if (failure.empty() && shadow_jobs[k]) {
      uncalibrated_[k].assign(
          jobs[k]->out.begin(),
          jobs[k]->out.end() - static_cast<std::ptrdiff_t>(C));
    }
    if (failure.empty() && modality.calibrator) {
      modality.calibrator->Apply(jobs[k]->out.data(), jobs[k]->batch.rows);
    }
    std::size_t i = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      if (!column.present[r]) continue;
      if (!failure.empty()) {
        result.failed[k * rows + r] = 1;
        if (m.on_error == OnError::kFail &&
            result.status[r] != RowStatus::kError) {
          result.status[r] = RowStatus::kError;
          result.errors[r] = failure;
        }
      } else {
        result.used[k * rows + r] = 1;
        std::copy_n(jobs[k]->out.data() + i * C, C,
                    result.modality_probabilities.data() + (k * rows + r) * C);
      }
      ++i;
    }
    result.failures[k] = std::move(failure);
  }

  Fuse(explain, result);

  // The shadows last: the batch's fused results are already settled.
  for (std::size_t k = 0; k < K; ++k) {
    if (!shadow_jobs[k]) continue;
    const InputColumn& column = batch.columns[k];
    const Job& shadow = *shadow_jobs[k];
    std::string failure =
        await(k, *shadow_workers_[k], shadow_jobs[k], shadow_done[k],
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
  for (std::size_t r = 0; r < rows; ++r) {
    if (result.status[r] != RowStatus::kOk) continue;
    int usable = 0;
    for (std::size_t k = 0; k < K; ++k) usable += result.used[k * rows + r];
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
  combine_probabilities_.assign(K * n * C, 0.0);
  combine_present_.assign(K * n, 0);
  for (std::size_t k = 0; k < K; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t r = combine_rows_[i];
      combine_present_[k * n + i] = result.used[k * rows + r];
      std::copy_n(result.modality_probabilities.data() + (k * rows + r) * C, C,
                  combine_probabilities_.data() + (k * n + i) * C);
    }
  }
  combine_output_.assign(n * C, 0.0);
  combine_explanation_.assign(explain ? n * K : 0, 0.0);
  LfCombineInput input{
      sizeof(LfCombineInput), K, n, C, combine_probabilities_.data(),
      combine_present_.data()};
  LfCombineOutput output{sizeof(LfCombineOutput), combine_output_.data(),
                         explain ? combine_explanation_.data() : nullptr};
  absl::Status status = pipeline_.combiner().Combine(input, output);
  std::size_t bad_row = 0;
  if (status.ok()) {
    // A fused regression row's variance is NaN when the combiner has none.
    std::string bad =
        regression ? CheckRegression(combine_output_.data(), n,
                                     Variance::kEither, &bad_row)
                   : CheckDistributions(combine_output_.data(), n, C, &bad_row);
    if (!bad.empty()) {
      status = absl::InternalError(fmt::format("{}: {} (row {} of the batch)",
                                               pipeline_.combiner().context(),
                                               bad, combine_rows_[bad_row]));
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t r = combine_rows_[i];
    if (!status.ok()) {
      result.status[r] = RowStatus::kError;
      result.errors[r] = std::string(status.message());
      continue;
    }
    std::copy_n(combine_output_.data() + i * C, C,
                result.probabilities.data() + r * C);
    if (explain) {
      std::copy_n(combine_explanation_.data() + i * K, K,
                  result.explanation.data() + r * K);
    }
  }
}

}  // namespace latefuse
