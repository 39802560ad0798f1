#include "core/run.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using Clock = std::chrono::steady_clock;

double Percent(std::size_t part, std::size_t whole) {
  return whole == 0
             ? 0.0
             : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

void Tally(const InputBatch& batch, const BatchResult& result,
           RunSummary& summary) {
  const std::size_t rows = result.rows;
  summary.rows += rows;
  for (std::size_t r = 0; r < rows; ++r) {
    switch (result.status[r]) {
      case RowStatus::kOk:
        ++summary.ok;
        break;
      case RowStatus::kAbstain:
        ++summary.abstain;
        break;
      case RowStatus::kError:
        ++summary.error;
        break;
    }
  }
  for (std::size_t k = 0; k < summary.modalities.size(); ++k) {
    ModalityCounts& counts = summary.modalities[k];
    for (std::size_t r = 0; r < rows; ++r) {
      counts.present += batch.columns[k].present[r];
      counts.used += result.used[k * rows + r];
      counts.failed += result.failed[k * rows + r];
    }
    if (result.shadowed.empty() || !result.shadowed[k]) continue;
    ShadowCounts& shadow =
        counts.shadow ? *counts.shadow : counts.shadow.emplace();
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t at = k * rows + r;
      shadow.failed += result.shadow_failed[at];
      if (!result.shadow_answered[at] || !result.used[at]) continue;
      ++shadow.compared;
      shadow.agreed += result.shadow_agree[at];
      shadow.abs_diff_sum += result.shadow_abs_diff[at];
    }
  }
}

// Where the input comes from.
class Source {
 public:
  virtual ~Source() = default;
  // Reads up to `n` bytes into `data`; 0 at the end of the input, or when the
  // run is asked to stop (stopped() then says so). An error's message is why
  // (possibly empty), without saying where.
  virtual absl::StatusOr<std::size_t> Read(char* data, std::size_t n) = 0;
  // Whether a Read now would wait for input that has not come yet.
  virtual bool WouldWait() { return false; }
  bool stopped() const { return stopped_; }

 protected:
  bool stopped_ = false;
};

class StreamSource : public Source {
 public:
  explicit StreamSource(std::istream& in) : in_(in) {}
  absl::StatusOr<std::size_t> Read(char* data, std::size_t n) override {
    in_.read(data, static_cast<std::streamsize>(n));
    if (in_.bad()) return absl::DataLossError("");
    return static_cast<std::size_t>(in_.gcount());
  }

 private:
  std::istream& in_;
};

class FdSource : public Source {
 public:
  FdSource(int fd, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {}

  absl::StatusOr<std::size_t> Read(char* data, std::size_t n) override {
    while (true) {
      if (Poll(-1) == Ready::kStop) {
        stopped_ = true;
        return 0;
      }
      const ssize_t got = read(fd_, data, n);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::DataLossError(std::strerror(errno));
    }
  }

  bool WouldWait() override { return Poll(0) == Ready::kNothing; }

 private:
  enum class Ready { kNothing, kInput, kStop };

  // What is ready within `timeout_ms` (-1: wait for either); a stop request
  // wins over input.
  Ready Poll(int timeout_ms) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const nfds_t count = stop_fd_ >= 0 ? 2 : 1;
    int ready = 0;
    do {
      ready = poll(fds, count, timeout_ms);
    } while (ready < 0 && errno == EINTR && timeout_ms != 0);
    if (ready < 0) return Ready::kInput;  // let read() report the problem
    if (count == 2 && fds[1].revents != 0) return Ready::kStop;
    return fds[0].revents != 0 ? Ready::kInput : Ready::kNothing;
  }

  int fd_;
  int stop_fd_;
};

// Where the records go.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual bool Write(std::string_view text) = 0;
};

class StreamSink : public Sink {
 public:
  explicit StreamSink(std::ostream& out) : out_(out) {}
  bool Write(std::string_view text) override {
    out_.write(text.data(), static_cast<std::streamsize>(text.size()));
    out_.flush();
    return static_cast<bool>(out_);
  }

 private:
  std::ostream& out_;
};

class FdSink : public Sink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  bool Write(std::string_view text) override {
    while (!text.empty()) {
      const ssize_t wrote = write(fd_, text.data(), text.size());
      if (wrote < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      text.remove_prefix(static_cast<std::size_t>(wrote));
    }
    return true;
  }

 private:
  int fd_;
};

// Splits a Source into lines, reading large blocks into one buffer that
// grows only for a line longer than it.
class LineReader {
 public:
  enum class Next { kLine, kEnd, kWouldWait };

  explicit LineReader(Source& source) : source_(source), buffer_(kBlock) {}

  // The next line, without its newline or a '\r' before it; valid until the
  // next call. Unless `may_wait`, gives kWouldWait rather than wait for input
  // that has not come yet. The last line need not end with a newline. kEnd
  // also after a read error (status() says which).
  Next Read(bool may_wait, std::string_view& line) {
    while (true) {
      const char* begin = buffer_.data() + begin_;
      if (const void* newline = std::memchr(begin, '\n', end_ - begin_)) {
        const std::size_t length =
            static_cast<std::size_t>(static_cast<const char*>(newline) - begin);
        line = std::string_view(begin, length);
        begin_ += length + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return Next::kLine;
      }
      if (at_end_) {
        if (begin_ == end_) return Next::kEnd;
        line = std::string_view(begin, end_ - begin_);
        begin_ = end_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return Next::kLine;
      }
      if (!may_wait && source_.WouldWait()) return Next::kWouldWait;
      Fill();
    }
  }

  const absl::Status& status() const { return status_; }

 private:
  static constexpr std::size_t kBlock = std::size_t{1} << 20;

  // Keeps the unfinished line, makes room after it and reads once.
  void Fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - end_ < kBlock / 2) buffer_.resize(buffer_.size() * 2);
    absl::StatusOr<std::size_t> got =
        source_.Read(buffer_.data() + end_, buffer_.size() - end_);
    if (!got.ok()) {
      status_ = got.status();
      at_end_ = true;
    } else if (*got == 0) {
      at_end_ = true;
    } else {
      end_ += *got;
    }
  }

  Source& source_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool at_end_ = false;
  absl::Status status_;
};

// One batch on its way through the stages: its lines as read, the batch
// parsed from them, the engine's result, and its records as text.
struct Slot {
  enum class Stage {
    kFree,        // for the reader to fill
    kRead,        // lines read, waiting for a worker to parse them
    kParsing,     // a worker parses it
    kParsed,      // waiting for the engine
    kFused,       // fused, waiting for a worker to format it
    kFormatting,  // a worker formats it
    kFormatted,   // waiting for the writer
  };
  Stage stage = Stage::kFree;
  std::size_t first_line = 0;     // 1-based number of its first line
  std::string lines;              // the lines, back to back
  std::vector<std::size_t> ends;  // where each line ends in `lines`
  InputBatch batch;
  BatchResult result;
  std::string records;  // the output records, one line each
};

// The run itself. A reader thread splits large reads into batches of lines;
// worker threads (one per core) parse batches and format fused ones; the
// calling thread runs the engine on one batch after another, in order (a
// plugin instance may not be called from two threads at once); a writer
// thread writes the records in order. Batch number n lives in slot
// n % kBatchesInFlight, so the slots go round in order and each stage finds
// its next batch without a queue: the reader refills a slot once the writer
// has written it.
class Stages {
 public:
  Stages(Pipeline& pipeline, Source& source, Sink& sink,
         const RunOptions& options)
      : config_(pipeline.config()),
        source_(source),
        sink_(sink),
        options_(options),
        batch_size_(std::max<std::size_t>(options.batch_size, 1)),
        engine_(pipeline, options.engine),
        records_(config_, options.output),
        slots_(RunOptions::kBatchesInFlight) {
    summary_.modalities.resize(config_.modalities.size());
  }

  absl::StatusOr<RunSummary> Run() {
    start_ = Clock::now();
    const std::size_t workers =
        options_.threads > 0
            ? options_.threads
            : std::max<std::size_t>(std::thread::hardware_concurrency(), 1);
    std::thread reader([this] { Read(); });
    std::thread writer([this] { Write(); });
    std::vector<std::thread> pool;
    for (std::size_t i = 0; i < workers; ++i)
      pool.emplace_back([this] { Work(); });
    Fuse();
    reader.join();
    writer.join();
    for (std::thread& worker : pool) worker.join();

    if (options_.progress) fmt::print(stderr, "\r\033[K");
    if (output_failed_.load())
      return absl::UnavailableError("cannot write the output");
    if (!read_status_.ok()) return read_status_;
    summary_.stopped = source_.stopped();
    summary_.seconds =
        std::chrono::duration<double>(Clock::now() - start_).count();
    return summary_;
  }

 private:
  using Stage = Slot::Stage;

  Slot& SlotOf(std::size_t batch) { return slots_[batch % slots_.size()]; }

  // Waits until batch number `batch` reaches `stage` (true), or the reader
  // has handed on every batch and this one is not among them (false).
  bool Await(std::condition_variable& ready, std::size_t batch, Stage stage) {
    const Slot& slot = SlotOf(batch);
    std::unique_lock<std::mutex> lock(mutex_);
    ready.wait(lock, [&] {
      return slot.stage == stage || (reading_done_ && batch == batches_read_);
    });
    return slot.stage == stage;
  }

  void Read() {
    LineReader lines(source_);
    std::size_t line_number = 0;
    LineReader::Next next = LineReader::Next::kLine;
    for (std::size_t batch = 0;
         next != LineReader::Next::kEnd && !output_failed_.load();) {
      Slot& slot = SlotOf(batch);
      {
        std::unique_lock<std::mutex> lock(mutex_);
        slot_freed_.wait(lock, [&] { return slot.stage == Stage::kFree; });
      }
      slot.lines.clear();
      slot.ends.clear();
      slot.first_line = line_number + 1;
      std::string_view line;
      while (slot.ends.size() < batch_size_) {
        // A batch goes on as soon as the input pauses: records of a slow
        // stream come out without waiting for batch_size lines.
        next = lines.Read(/*may_wait=*/slot.ends.empty(), line);
        if (next != LineReader::Next::kLine) break;
        slot.lines.append(line);
        slot.ends.push_back(slot.lines.size());
        ++line_number;
      }
      if (slot.ends.empty()) continue;  // the input ended
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot.stage = Stage::kRead;
        batches_read_ = ++batch;
      }
      task_ready_.notify_one();
    }
    if (!lines.status().ok()) {
      const std::string why(lines.status().message());
      read_status_ = absl::DataLossError(
          absl::StrCat("cannot read the input after line ", line_number,
                       why.empty() ? "" : ": ", why));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reading_done_ = true;
    }
    parsed_ready_.notify_all();
    formatted_ready_.notify_all();
  }

  // The oldest batch waiting for a worker, or null. Formatting comes first:
  // a fused batch is older than any batch waiting to be parsed.
  Slot* NextTask() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = SlotOf(batches_written_ + i);
      if (slot.stage == Stage::kRead || slot.stage == Stage::kFused)
        return &slot;
    }
    return nullptr;
  }

  void Work() {
    RecordParser parser(Engine::RecordSpecs(config_));
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      Slot* slot = nullptr;
      task_ready_.wait(lock, [&] {
        slot = NextTask();
        return slot != nullptr || writing_done_;
      });
      if (slot == nullptr) return;
      const bool parse = slot->stage == Stage::kRead;
      slot->stage = parse ? Stage::kParsing : Stage::kFormatting;
      lock.unlock();
      if (parse) {
        Parse(parser, *slot);
      } else {
        Format(*slot);
      }
      lock.lock();
      slot->stage = parse ? Stage::kParsed : Stage::kFormatted;
      (parse ? parsed_ready_ : formatted_ready_).notify_one();
    }
  }

  static void Parse(RecordParser& parser, Slot& slot) {
    slot.batch.Clear();
    std::size_t begin = 0;
    for (std::size_t i = 0; i < slot.ends.size(); ++i) {
      const std::string_view line(slot.lines.data() + begin,
                                  slot.ends[i] - begin);
      parser.Append(line, slot.first_line + i, slot.batch);
      begin = slot.ends[i];
    }
  }

  void Format(Slot& slot) const {
    slot.records.clear();
    if (output_failed_.load()) return;
    for (std::size_t r = 0; r < slot.batch.rows; ++r)
      records_.Append(slot.batch, slot.result, r, slot.records);
  }

  // On the calling thread: the engine, batch after batch.
  void Fuse() {
    for (std::size_t batch = 0;; ++batch) {
      if (!Await(parsed_ready_, batch, Stage::kParsed)) return;
      Slot& slot = SlotOf(batch);
      engine_.Run(slot.batch, slot.result);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot.stage = Stage::kFused;
      }
      task_ready_.notify_one();
    }
  }

  void Write() {
    Clock::time_point last_progress = start_;
    for (std::size_t batch = 0;; ++batch) {
      if (!Await(formatted_ready_, batch, Stage::kFormatted)) break;
      Slot& slot = SlotOf(batch);
      if (!output_failed_.load() && !sink_.Write(slot.records))
        output_failed_.store(true);
      Tally(slot.batch, slot.result, summary_);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot.stage = Stage::kFree;
        batches_written_ = batch + 1;
      }
      slot_freed_.notify_one();
      if (options_.progress &&
          Clock::now() - last_progress > std::chrono::milliseconds(250)) {
        last_progress = Clock::now();
        const double seconds =
            std::chrono::duration<double>(last_progress - start_).count();
        fmt::print(stderr, "\rlatefuse: {} rows, {:.0f} rows/s", summary_.rows,
                   static_cast<double>(summary_.rows) / seconds);
        std::fflush(stderr);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      writing_done_ = true;
    }
    task_ready_.notify_all();
  }

  const PipelineConfig& config_;
  Source& source_;
  Sink& sink_;
  const RunOptions& options_;
  const std::size_t batch_size_;
  Engine engine_;
  const RecordWriter records_;
  Clock::time_point start_;

  std::vector<Slot> slots_;
  // Guards the slots' stages and the counts below; each condition variable
  // wakes one kind of waiter.
  std::mutex mutex_;
  std::condition_variable slot_freed_;       // the reader
  std::condition_variable task_ready_;       // the workers
  std::condition_variable parsed_ready_;     // the engine
  std::condition_variable formatted_ready_;  // the writer
  std::size_t batches_read_ = 0;             // handed on by the reader
  std::size_t batches_written_ = 0;  // written (or dropped) by the writer
  bool reading_done_ = false;        // batches_read_ is final
  bool writing_done_ = false;        // every batch written: workers end

  // Set by the writer when the output fails: the reader then stops reading.
  std::atomic<bool> output_failed_{false};
  absl::Status read_status_;  // the reader's, read after it is joined
  RunSummary summary_;        // the writer's, read after it is joined
};

absl::StatusOr<RunSummary> RunLines(Pipeline& pipeline, Source& source,
                                    Sink& sink, const RunOptions& options) {
  return Stages(pipeline, source, sink, options).Run();
}

// What StopSignals' handler needs: async-signal-safe globals.
std::atomic<int> g_stop_signal{0};
std::atomic<int> g_stop_write_fd{-1};
struct sigaction g_previous_sigint;
struct sigaction g_previous_sigterm;

void OnStopSignal(int signal) {
  const int saved_errno = errno;
  int none = 0;
  g_stop_signal.compare_exchange_strong(none, signal);
  const int fd = g_stop_write_fd.load();
  if (fd >= 0) {
    [[maybe_unused]] const ssize_t ignored = write(fd, "", 1);
  }
  errno = saved_errno;
}

}  // namespace

double ShadowCounts::AgreementRate() const {
  return compared == 0
             ? 0.0
             : static_cast<double>(agreed) / static_cast<double>(compared);
}

double ShadowCounts::MeanAbsDiff() const {
  return compared == 0 ? 0.0 : abs_diff_sum / static_cast<double>(compared);
}

absl::StatusOr<RunSummary> RunStream(Pipeline& pipeline, std::istream& in,
                                     std::ostream& out,
                                     const RunOptions& options) {
  StreamSource source(in);
  StreamSink sink(out);
  return RunLines(pipeline, source, sink, options);
}

absl::StatusOr<RunSummary> RunFiles(Pipeline& pipeline, int in_fd, int out_fd,
                                    const RunOptions& options) {
  FdSource source(in_fd, options.stop_fd);
  FdSink sink(out_fd);
  return RunLines(pipeline, source, sink, options);
}

absl::StatusOr<std::unique_ptr<StopSignals>> StopSignals::Install() {
  if (g_stop_write_fd.load() >= 0) {
    return absl::FailedPreconditionError("StopSignals is already installed");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot make a pipe: ", std::strerror(errno)));
  }
  std::unique_ptr<StopSignals> stop(new StopSignals());
  stop->read_fd_ = fds[0];
  stop->write_fd_ = fds[1];
  g_stop_signal.store(0);
  g_stop_write_fd.store(fds[1]);
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: a second signal ends the process at once.
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  sigaction(SIGINT, &action, &g_previous_sigint);
  sigaction(SIGTERM, &action, &g_previous_sigterm);
  return stop;
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_previous_sigint, nullptr);
  sigaction(SIGTERM, &g_previous_sigterm, nullptr);
  g_stop_write_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
}

int StopSignals::signal() const { return g_stop_signal.load(); }

std::string FormatSummary(const PipelineConfig& config,
                          const RunSummary& summary) {
  std::string out = fmt::format(
      "latefuse: pipeline '{}': {} rows in {:.3f} s: {} ok, {} abstain, {} "
      "error\n",
      config.name, summary.rows, summary.seconds, summary.ok, summary.abstain,
      summary.error);
  std::size_t width = 0;
  for (const ModalityConfig& m : config.modalities)
    width = std::max(width, m.name.size());
  for (std::size_t k = 0; k < summary.modalities.size(); ++k) {
    const ModalityCounts& counts = summary.modalities[k];
    absl::StrAppend(
        &out,
        fmt::format("  {:<{}}  present {:5.1f}%  used {:5.1f}%  failed {}\n",
                    config.modalities[k].name, width,
                    Percent(counts.present, summary.rows),
                    Percent(counts.used, summary.rows), counts.failed));
    if (!counts.shadow) continue;
    const ShadowCounts& shadow = *counts.shadow;
    const bool regression = config.task == Task::kRegression;
    absl::StrAppend(&out,
                    fmt::format("  {:<{}}  shadow: {} rows compared", "", width,
                                shadow.compared),
                    regression ? ""
                               : fmt::format(", argmax agreement {:.1f}%",
                                             100.0 * shadow.AgreementRate()),
                    fmt::format(", mean |{}| {:.4g}, failed {}\n",
                                regression ? "prediction diff" : "p diff",
                                shadow.MeanAbsDiff(), shadow.failed));
  }
  return out;
}

}  // namespace latefuse
