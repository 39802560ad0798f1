#include "core/isolation.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/engine.h"
#include "core/status_macros.h"
#include "fmt/format.h"

extern char** environ;

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The worker's end of the socket, as the worker program finds it.
constexpr int kWorkerFd = 3;
constexpr char kWorkerName[] = "latefuse-worker";

// ---- Messages: a u64 length, then the payload, in the machine's byte order
// (both ends are the same build on the same machine).

class Writer {
 public:
  // Starts a message, reusing the buffer's storage.
  explicit Writer(std::string& buffer) : buffer_(buffer) {
    buffer_.assign(sizeof(std::uint64_t), '\0');
  }
  template <typename T>
  void Put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    buffer_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void PutBytes(const void* data, std::size_t size) {
    buffer_.append(static_cast<const char*>(data), size);
  }
  void PutString(std::string_view text) {
    Put<std::uint64_t>(text.size());
    PutBytes(text.data(), text.size());
  }
  void PutStatus(const absl::Status& status) {
    Put<std::int32_t>(static_cast<std::int32_t>(status.code()));
    PutString(std::string(status.message()));
  }
  // Fills in the length; the buffer is then ready to send.
  const std::string& Finish() {
    const std::uint64_t size = buffer_.size() - sizeof(std::uint64_t);
    std::memcpy(buffer_.data(), &size, sizeof(size));
    return buffer_;
  }

 private:
  std::string& buffer_;
};

// Reads a payload; every read past its end fails the whole message (ok()).
class Reader {
 public:
  explicit Reader(std::string_view payload) : rest_(payload) {}
  bool ok() const { return ok_; }
  template <typename T>
  T Get() {
    T value{};
    GetBytes(&value, sizeof(T));
    return value;
  }
  void GetBytes(void* out, std::size_t size) {
    if (size > rest_.size()) {
      ok_ = false;
      rest_ = {};
      return;
    }
    std::memcpy(out, rest_.data(), size);
    rest_.remove_prefix(size);
  }
  std::string_view GetView(std::size_t size) {
    if (size > rest_.size()) {
      ok_ = false;
      rest_ = {};
      return {};
    }
    std::string_view view = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return view;
  }
  std::string GetString() { return std::string(GetView(Get<std::uint64_t>())); }
  absl::Status GetStatus() {
    const auto code = static_cast<absl::StatusCode>(Get<std::int32_t>());
    std::string message = GetString();
    return absl::Status(code, message);
  }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

enum class Io { kOk, kTimeout, kClosed };

// Sends or receives all `size` bytes by `deadline` (time_point::max(): no
// deadline), waiting in poll so that a stuck peer cannot hold the caller past
// it.
Io Transfer(int fd, char* data, std::size_t size, bool send_side,
            Clock::time_point deadline) {
  while (size > 0) {
    const ssize_t n = send_side ? ::send(fd, data, size, MSG_NOSIGNAL)
                                : ::recv(fd, data, size, 0);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0 && !send_side) return Io::kClosed;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Io::kClosed;
    int timeout_ms = -1;
    if (deadline != Clock::time_point::max()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Io::kTimeout;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p{fd, static_cast<short>(send_side ? POLLOUT : POLLIN), 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready == 0) return Io::kTimeout;
    if (ready < 0 && errno != EINTR) return Io::kClosed;
  }
  return Io::kOk;
}

Io SendMessage(int fd, const std::string& message, Clock::time_point deadline) {
  return Transfer(fd, const_cast<char*>(message.data()), message.size(),
                  /*send_side=*/true, deadline);
}

// Receives one message's payload into `payload`.
Io ReceiveMessage(int fd, std::string& payload, Clock::time_point deadline) {
  std::uint64_t size = 0;
  Io io = Transfer(fd, reinterpret_cast<char*>(&size), sizeof(size),
                   /*send_side=*/false, deadline);
  if (io != Io::kOk) return io;
  // More than any batch: a peer that says so is broken.
  if (size > (std::uint64_t{1} << 36)) return Io::kClosed;
  payload.resize(size);
  return Transfer(fd, payload.data(), size, /*send_side=*/false, deadline);
}

// ---- What the host asks a worker to load.

// The parts of a pipeline a model's load checks and creation read.
void PutLoadRequest(Writer& w, const ModalityConfig& modality,
                    const PipelineConfig& pipeline, ModelRole role,
                    const std::string& role_name) {
  const PluginRef& ref =
      role == ModelRole::kShadow ? *modality.shadow : modality.model;
  w.Put<std::uint8_t>(role == ModelRole::kShadow);
  w.PutString(role_name);
  w.PutString(pipeline.name);
  w.PutString(pipeline.base_dir.string());
  w.Put<std::uint8_t>(pipeline.task == Task::kRegression);
  w.Put<std::uint64_t>(pipeline.classes.size());
  for (const std::string& label : pipeline.classes) w.PutString(label);
  w.Put<std::uint64_t>(pipeline.plugin_dirs.size());
  for (const fs::path& dir : pipeline.plugin_dirs) w.PutString(dir.string());
  w.PutString(modality.name);
  w.Put<std::uint8_t>(static_cast<std::uint8_t>(modality.input_kind));
  w.Put<std::uint64_t>(modality.input_size);
  w.PutString(ref.plugin);
  w.PutString(ref.version);
  w.PutString(ref.constraint.ToString());
  w.PutString(ref.sha256);
  w.PutString(ref.params_json);
  w.PutString(ref.lock_file.string());
}

struct LoadRequest {
  PipelineConfig pipeline;
  ModelRole role = ModelRole::kLive;
  std::string role_name;
};

absl::StatusOr<LoadRequest> GetLoadRequest(Reader& r) {
  LoadRequest request;
  PipelineConfig& p = request.pipeline;
  request.role = r.Get<std::uint8_t>() ? ModelRole::kShadow : ModelRole::kLive;
  request.role_name = r.GetString();
  p.name = r.GetString();
  p.base_dir = r.GetString();
  p.task = r.Get<std::uint8_t>() ? Task::kRegression : Task::kClassification;
  const std::uint64_t classes = r.Get<std::uint64_t>();
  for (std::uint64_t i = 0; i < classes && r.ok(); ++i)
    p.classes.push_back(r.GetString());
  const std::uint64_t dirs = r.Get<std::uint64_t>();
  for (std::uint64_t i = 0; i < dirs && r.ok(); ++i)
    p.plugin_dirs.emplace_back(r.GetString());
  ModalityConfig& m = p.modalities.emplace_back();
  m.name = r.GetString();
  m.input_kind = static_cast<InputKind>(r.Get<std::uint8_t>());
  m.input_size = r.Get<std::uint64_t>();
  PluginRef& ref =
      request.role == ModelRole::kShadow ? m.shadow.emplace() : m.model;
  ref.plugin = r.GetString();
  ref.version = r.GetString();
  const std::string constraint = r.GetString();
  ref.sha256 = r.GetString();
  ref.params_json = r.GetString();
  ref.lock_file = r.GetString();
  if (!r.ok()) return absl::InternalError("malformed load request");
  LATEFUSE_ASSIGN_OR_RETURN(ref.constraint,
                            VersionConstraint::Parse(constraint));
  return request;
}

// The host's copy of a descriptor loaded in a worker: its strings, and a
// descriptor pointing at them with no function tables (the host never calls
// the plugin).
struct DescriptorCopy {
  std::string name, version, description, license, build_info;
  LfPluginDescriptor descriptor{};
};

void PutLoaded(Writer& w, const ResolvedPlugin& plugin,
               const ModelInstance& instance) {
  const LfPluginDescriptor* d = plugin.plugin.descriptor;
  auto text = [](const char* s) { return s == nullptr ? "" : s; };
  w.PutString(plugin.plugin.path.string());
  w.PutString(plugin.plugin.sha256);
  w.PutString(plugin.reason);
  w.Put<std::uint16_t>(d->abi_major);
  w.Put<std::uint16_t>(d->abi_minor);
  w.Put<std::int32_t>(d->kind);
  w.PutString(text(d->name));
  w.PutString(text(d->version));
  w.PutString(text(d->description));
  w.PutString(text(d->license));
  w.PutString(text(d->build_info));
  w.PutString(instance.context());
  w.Put<std::uint8_t>(instance.reports_variance());
}

// What a worker answered to its load request, for the host.
struct Loaded {
  ResolvedPlugin plugin;
  std::string context;
  bool reports_variance = false;
};

absl::StatusOr<Loaded> GetLoaded(Reader& r) {
  Loaded loaded;
  LoadedPlugin& p = loaded.plugin.plugin;
  p.path = r.GetString();
  p.sha256 = r.GetString();
  loaded.plugin.reason = r.GetString();
  auto copy = std::make_shared<DescriptorCopy>();
  LfPluginDescriptor& d = copy->descriptor;
  d.struct_size = sizeof(LfPluginDescriptor);
  d.abi_major = r.Get<std::uint16_t>();
  d.abi_minor = r.Get<std::uint16_t>();
  d.kind = r.Get<std::int32_t>();
  copy->name = r.GetString();
  copy->version = r.GetString();
  copy->description = r.GetString();
  copy->license = r.GetString();
  copy->build_info = r.GetString();
  loaded.context = r.GetString();
  loaded.reports_variance = r.Get<std::uint8_t>() != 0;
  if (!r.ok()) return absl::InternalError("malformed load answer");
  d.name = copy->name.c_str();
  d.version = copy->version.c_str();
  d.description = copy->description.c_str();
  d.license = copy->license.c_str();
  d.build_info = copy->build_info.c_str();
  LATEFUSE_ASSIGN_OR_RETURN(p.version, ParseVersion(copy->version));
  p.descriptor = &copy->descriptor;
  p.descriptor_owner = std::shared_ptr<const void>(copy, &copy->descriptor);
  return loaded;
}

// ---- The worker's side.

// The worker's body once loaded: one answer per batch until the host hangs
// up.
int Serve(int fd, ModelInstance& model) {
  std::string payload;
  std::string answer;
  std::vector<float> dense;
  std::vector<LfBytesView> items;
  std::vector<double> out;
  while (ReceiveMessage(fd, payload, Clock::time_point::max()) == Io::kOk) {
    Reader r(payload);
    LfBatch batch{};
    batch.struct_size = sizeof(LfBatch);
    batch.kind = r.Get<std::int32_t>();
    batch.rows = r.Get<std::uint64_t>();
    batch.width = r.Get<std::uint64_t>();
    const auto C = r.Get<std::uint64_t>();
    if (!r.ok() || batch.rows > payload.size() || batch.width > payload.size())
      return 3;  // the host sent garbage: nothing to answer
    if (batch.kind == LF_INPUT_DENSE) {
      dense.resize(batch.rows * batch.width);
      r.GetBytes(dense.data(), dense.size() * sizeof(float));
      batch.dense = dense.data();
    } else {
      items.resize(batch.rows);
      for (LfBytesView& item : items) {
        const std::string_view view = r.GetView(r.Get<std::uint64_t>());
        item = {view.data(), view.size()};
      }
      batch.items = items.data();
    }
    if (!r.ok()) return 3;  // the host sent garbage: nothing to answer
    LfProbabilities probabilities{};
    PrepareModelOutput(batch.rows, C, out, probabilities);
    const absl::Status status = model.Infer(batch, probabilities);
    Writer w(answer);
    w.PutStatus(status);
    w.Put<std::uint64_t>(probabilities.rows);
    w.Put<std::uint64_t>(probabilities.classes);
    w.Put<std::uint8_t>(probabilities.data != out.data());
    w.PutBytes(out.data(), out.size() * sizeof(double));
    if (SendMessage(fd, w.Finish(), Clock::time_point::max()) != Io::kOk)
      return 0;
  }
  return 0;
}

// ---- The host's side.

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev == nullptr ? std::string("unknown signal")
                           : absl::StrCat("SIG", abbrev);
}

// A worker process and the host's end of its socket.
class WorkerProcess {
 public:
  explicit WorkerProcess(fs::path program) : program_(std::move(program)) {}
  ~WorkerProcess() { Stop(); }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  bool running() const { return pid_ >= 0; }
  int fd() const { return fd_; }

  // Starts the worker and sends it `load_request`; fills `answer` with its
  // answer, or says why it gave none (the worker is then reaped).
  absl::Status Start(const std::string& load_request, std::string& answer);

  // Kills (SIGKILL) and reaps the worker unless it has ended, and says how it
  // ended. `hung_up`: the worker closed its end, so it is probably ending by
  // itself, and its own end (a signal, an exit code) is what to report.
  std::string Reap(bool hung_up);

  // Ends a healthy worker: EOF lets it destroy its instance and exit; one that
  // does not within 200 ms is killed. Reaped either way.
  void Stop();

 private:
  const fs::path program_;
  pid_t pid_ = -1;
  int fd_ = -1;
};

absl::Status WorkerProcess::Start(const std::string& load_request,
                                  std::string& answer) {
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return absl::InternalError(
        absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  // dup2 onto itself would keep FD_CLOEXEC: move the worker's end off 3.
  if (sockets[1] == kWorkerFd) {
    const int moved = ::fcntl(sockets[1], F_DUPFD_CLOEXEC, kWorkerFd + 1);
    ::close(sockets[1]);
    sockets[1] = moved;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sockets[1], kWorkerFd);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // The host's stdout carries records: whatever a plugin prints goes to
  // stderr.
  posix_spawn_file_actions_adddup2(&actions, 2, 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  // Its own process group: a Ctrl-C meant for the host reaches the host
  // only, which ends its workers itself.
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP);
  const std::string program = program_.string();
  char* argv[] = {const_cast<char*>(kWorkerName), nullptr};
  const int spawned = ::posix_spawn(&pid_, program.c_str(), &actions,
                                    &attributes, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(sockets[1]);
  if (spawned != 0) {
    ::close(sockets[0]);
    pid_ = -1;
    return absl::InternalError(absl::StrCat("cannot start worker '", program,
                                            "': ", std::strerror(spawned)));
  }
  fd_ = sockets[0];
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  const Clock::time_point deadline = Clock::now() + kWorkerStartDeadline;
  Io io = SendMessage(fd_, load_request, deadline);
  if (io == Io::kOk) io = ReceiveMessage(fd_, answer, deadline);
  if (io == Io::kOk) return absl::OkStatus();
  const std::string end = Reap(io == Io::kClosed);
  return absl::InternalError(
      io == Io::kTimeout
          ? fmt::format("worker did not load its model within {} ms and was "
                        "killed",
                        kWorkerStartDeadline.count())
          : absl::StrCat("worker ", end, " while loading its model"));
}

std::string WorkerProcess::Reap(bool hung_up) {
  ::close(fd_);
  fd_ = -1;
  int status = 0;
  pid_t reaped = 0;
  const Clock::time_point until = Clock::now() + std::chrono::milliseconds(500);
  while (hung_up && (reaped = ::waitpid(pid_, &status, WNOHANG)) == 0 &&
         Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const bool killed = reaped != pid_;
  if (killed) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
  if (killed)
    return hung_up ? "closed its connection and was killed" : "killed";
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status),
                       SignalName(WTERMSIG(status)));
  }
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

void WorkerProcess::Stop() {
  if (pid_ < 0) return;
  ::shutdown(fd_, SHUT_RDWR);
  int status = 0;
  const Clock::time_point until = Clock::now() + std::chrono::milliseconds(200);
  while (Clock::now() < until) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      ::close(fd_);
      fd_ = -1;
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Reap(/*hung_up=*/false);
}

// A model plugin's instance in a worker process: each call sends the batch
// and receives the output buffer back, under the call's deadline.
class ProcessModel final : public ModelInstance {
 public:
  ProcessModel(std::unique_ptr<WorkerProcess> worker, std::string load_request,
               std::string sha256, std::chrono::milliseconds deadline,
               std::string context, bool reports_variance)
      : ModelInstance(std::move(context), reports_variance),
        worker_(std::move(worker)),
        load_request_(std::move(load_request)),
        sha256_(std::move(sha256)),
        deadline_(deadline) {}

  absl::Status Infer(const LfBatch& batch, LfProbabilities& out) override;
  // A call may first have to start the worker again.
  std::optional<std::chrono::milliseconds> deadline() const override {
    return deadline_ + kWorkerStartDeadline;
  }

 private:
  // Starts the worker again, after a failure.
  absl::Status Restart();
  // Records a failed call and schedules the restart; the call's status.
  absl::Status Failed(absl::StatusCode code, const std::string& what);

  std::unique_ptr<WorkerProcess> worker_;
  const std::string load_request_;  // a finished message, sent on each start
  const std::string sha256_;        // of the library first loaded
  const std::chrono::milliseconds deadline_;
  int failures_ = 0;  // consecutive
  Clock::time_point restart_at_;
  std::string last_failure_;
  std::string request_;  // reused between calls
  std::string answer_;
};

absl::Status ProcessModel::Restart() {
  LATEFUSE_RETURN_IF_ERROR(worker_->Start(load_request_, answer_));
  Reader r(answer_);
  absl::Status status = r.GetStatus();
  if (status.ok()) {
    absl::StatusOr<Loaded> loaded = GetLoaded(r);
    status = loaded.status();
    if (loaded.ok() && loaded->plugin.plugin.sha256 != sha256_) {
      status = absl::FailedPreconditionError(
          absl::StrCat("loaded '", loaded->plugin.plugin.path.string(),
                       "' with sha256 ", loaded->plugin.plugin.sha256,
                       ", not the library first loaded (", sha256_, ")"));
    }
  }
  if (!status.ok()) worker_->Reap(/*hung_up=*/false);
  return status;
}

absl::Status ProcessModel::Failed(absl::StatusCode code,
                                  const std::string& what) {
  ++failures_;
  const auto delay = std::min<std::chrono::milliseconds>(
      kMaxRestartDelay,
      kFirstRestartDelay * (std::int64_t{1} << std::min(failures_ - 1, 20)));
  restart_at_ = Clock::now() + delay;
  last_failure_ = what;
  return absl::Status(
      code, fmt::format("{}: infer failed: worker {}; restarting it in {} ms",
                        context(), what, delay.count()));
}

absl::Status ProcessModel::Infer(const LfBatch& batch, LfProbabilities& out) {
  if (!worker_->running()) {
    const Clock::time_point now = Clock::now();
    if (now < restart_at_) {
      return absl::UnavailableError(fmt::format(
          "{}: infer failed: worker down after a failure ({}); restarting "
          "it in {} ms (backoff after {} consecutive failure{})",
          context(), last_failure_,
          std::chrono::ceil<std::chrono::milliseconds>(restart_at_ - now)
              .count(),
          failures_, failures_ == 1 ? "" : "s"));
    }
    if (absl::Status started = Restart(); !started.ok()) {
      return Failed(started.code(),
                    absl::StrCat("could not be restarted: ",
                                 std::string(started.message())));
    }
  }
  const Clock::time_point deadline = Clock::now() + deadline_;
  const std::size_t C = out.classes;
  Writer w(request_);
  w.Put<std::int32_t>(batch.kind);
  w.Put<std::uint64_t>(batch.rows);
  w.Put<std::uint64_t>(batch.width);
  w.Put<std::uint64_t>(C);
  if (batch.kind == LF_INPUT_DENSE) {
    w.PutBytes(batch.dense, batch.rows * batch.width * sizeof(float));
  } else {
    for (std::size_t i = 0; i < batch.rows; ++i)
      w.PutString({batch.items[i].data, batch.items[i].size});
  }
  Io io = SendMessage(worker_->fd(), w.Finish(), deadline);
  if (io == Io::kOk) io = ReceiveMessage(worker_->fd(), answer_, deadline);
  if (io == Io::kTimeout) {
    worker_->Reap(/*hung_up=*/false);
    return Failed(absl::StatusCode::kDeadlineExceeded,
                  fmt::format("overran its {} ms deadline and was killed",
                              deadline_.count()));
  }
  if (io == Io::kClosed) {
    return Failed(absl::StatusCode::kInternal, worker_->Reap(/*hung_up=*/true));
  }
  Reader r(answer_);
  absl::Status status = r.GetStatus();
  const auto rows = r.Get<std::uint64_t>();
  const auto classes = r.Get<std::uint64_t>();
  const bool moved = r.Get<std::uint8_t>() != 0;
  // The worker's whole output buffer, guard included (engine.h), into the
  // host's, laid out alike, for the host to check as it checks its own.
  r.GetBytes(out.data, ModelOutputSize(batch.rows, C) * sizeof(double));
  if (!r.ok()) {
    worker_->Reap(/*hung_up=*/false);
    return Failed(absl::StatusCode::kInternal, "sent a malformed answer");
  }
  failures_ = 0;
  out.rows = rows;
  out.classes = classes;
  if (moved) out.data = nullptr;  // the model replaced the buffer's pointer
  return status;
}

}  // namespace

absl::StatusOr<fs::path> WorkerPath() {
  if (const char* env = std::getenv("LATEFUSE_WORKER"); env && *env) {
    if (::access(env, X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(
          "$LATEFUSE_WORKER names '", env,
          "', which is not an executable file: ", std::strerror(errno)));
    }
    return fs::path(env);
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(self.parent_path() / kWorkerName);
    candidates.push_back((self.parent_path() / ".." / "libexec" / kWorkerName)
                             .lexically_normal());
  }
  candidates.emplace_back(LATEFUSE_WORKER_BUILD_PATH);
  std::string looked;
  for (const fs::path& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    absl::StrAppend(&looked, looked.empty() ? "" : ", ", "'",
                    candidate.string(), "'");
  }
  return absl::NotFoundError(absl::StrCat(
      "cannot find the worker program ", kWorkerName, " (looked at ", looked,
      "); set $LATEFUSE_WORKER to its path"));
}

absl::StatusOr<LoadedModel> LoadIsolatedModel(const ModalityConfig& modality,
                                              const PipelineConfig& pipeline,
                                              ModelRole role,
                                              const std::string& role_name) {
  auto where = [&](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("modality '", modality.name,
                                                    "' (isolation: process): ",
                                                    status.message()));
  };
  absl::StatusOr<fs::path> program = WorkerPath();
  if (!program.ok()) return where(program.status());
  std::string request;
  Writer w(request);
  PutLoadRequest(w, modality, pipeline, role, role_name);
  w.Finish();
  auto worker = std::make_unique<WorkerProcess>(*std::move(program));
  std::string answer;
  if (absl::Status started = worker->Start(request, answer); !started.ok())
    return where(started);
  Reader r(answer);
  // The worker's own load error, exactly as in process.
  LATEFUSE_RETURN_IF_ERROR(r.GetStatus());
  absl::StatusOr<Loaded> loaded = GetLoaded(r);
  if (!loaded.ok()) return where(loaded.status());
  LoadedModel model{std::move(loaded->plugin), nullptr};
  model.instance = std::make_unique<ProcessModel>(
      std::move(worker), std::move(request), model.plugin.plugin.sha256,
      modality.timeout.value_or(kDefaultIsolatedDeadline),
      std::move(loaded->context), loaded->reports_variance);
  return model;
}

int RunWorker(int fd) {
  struct stat info;
  if (::fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) {
    std::fprintf(stderr,
                 "%s serves the latefuse host for a modality with `isolation: "
                 "process`; the host starts it, it is not run by hand\n",
                 kWorkerName);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Whatever else the host left open is not ours.
  ::close_range(static_cast<unsigned>(fd) + 1, ~0U, 0);
  // The host is gone (it closed the socket, or died): so is the worker, even
  // while its model is stuck in a call. A worker that is not stuck sees EOF
  // first and ends normally, destroying its instance, well within the grace
  // given here (and within the host's 200 ms before SIGKILL).
  std::thread([fd] {
    pollfd p{fd, POLLRDHUP, 0};
    while (::poll(&p, 1, -1) <= 0 ||
           (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::_Exit(0);
  }).detach();

  std::string payload;
  if (ReceiveMessage(fd, payload, Clock::time_point::max()) != Io::kOk)
    return 0;
  Reader r(payload);
  absl::StatusOr<LoadRequest> request = GetLoadRequest(r);
  std::string answer;
  Writer w(answer);
  absl::StatusOr<ResolvedPlugin> plugin = absl::InternalError("not loaded");
  absl::StatusOr<std::unique_ptr<ModelInstance>> model =
      absl::InternalError("not loaded");
  if (request.ok()) {
    const PipelineConfig& p = request->pipeline;
    const ModalityConfig& m = p.modalities[0];
    plugin =
        ResolvePlugin(request->role == ModelRole::kShadow ? *m.shadow : m.model,
                      LF_KIND_MODEL, request->role_name, p.plugin_dirs);
    if (plugin.ok())
      model = ModelInstance::Create(*plugin, m, p, request->role);
  }
  const absl::Status status = !request.ok()  ? request.status()
                              : !plugin.ok() ? plugin.status()
                                             : model.status();
  w.PutStatus(status);
  if (status.ok()) PutLoaded(w, *plugin, **model);
  if (SendMessage(fd, w.Finish(), Clock::time_point::max()) != Io::kOk ||
      !status.ok()) {
    return 0;
  }
  return Serve(fd, **model);
}

}  // namespace latefuse
