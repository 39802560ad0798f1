#include "core/serve.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/drift.h"
#include "core/engine.h"
#include "core/json_text.h"
#include "core/lock.h"
#include "core/oip.h"
#include "core/output.h"
#include "core/profile.h"
#include "core/records.h"
#include "core/serve_metrics.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using Clock = std::chrono::steady_clock;

// Records per engine run on the records route, as `latefuse run` batches.
constexpr std::size_t kRecordsBatch = 256;

// When the request this thread is answering started (its headers read):
// httplib runs the pre-routing handler, the route's handler and the logger
// of one request on one thread, one after the other.
thread_local Clock::time_point request_start{};

// One loaded pipeline with the engine that runs it.
struct Served {
  std::unique_ptr<Pipeline> pipeline;  // declared first: outlives the engine
  std::unique_ptr<Engine> engine;
  std::unique_ptr<DriftMonitor> drift;  // with --profile; else null
  std::timed_mutex engine_mutex;        // one batch at a time per instance
  std::string version;                  // the generation, as text
};

// The route label of a path, for metrics and nothing else.
std::string_view RouteOf(std::string_view path) {
  if (path == "/v2/health/live") return "health_live";
  if (path == "/v2/health/ready") return "health_ready";
  if (path == "/v2" || path == "/v2/") return "server_metadata";
  if (path == "/metrics") return "metrics";
  if (path.starts_with("/v2/repository/models/") && path.ends_with("/load"))
    return "load";
  if (!path.starts_with("/v2/models/")) return "other";
  const std::string_view rest =
      path.substr(std::string_view("/v2/models/").size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return "model_metadata";
  const std::string_view tail = rest.substr(slash);
  if (tail == "/ready") return "model_ready";
  if (tail == "/infer") return "infer";
  if (tail == "/records") return "records";
  return "other";
}

void SetError(httplib::Response& res, int code, std::string_view message) {
  std::string body = "{\"error\": ";
  AppendJsonString(message, body);
  body += "}";
  res.status = code;
  res.set_content(body, "application/json");
}

// "2026-11-27T03:40:00.123Z", now.
std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                          now.time_since_epoch())
                          .count() %
                      1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", text, millis);
}

class Server {
 public:
  explicit Server(const ServeOptions& options) : options_(options) {}

  ~Server() {
    if (access_log_ != nullptr && access_log_ != stdout)
      std::fclose(access_log_);
  }

  // Everything before listening: token, access log, the pipeline.
  absl::Status Start() {
    if (!options_.token_file.empty()) {
      std::ifstream file(options_.token_file);
      if (!file || !std::getline(file, token_)) {
        return absl::NotFoundError(
            fmt::format("--token-file '{}': cannot read a token from it",
                        options_.token_file));
      }
      while (!token_.empty() && (token_.back() == '\r' || token_.back() == ' '))
        token_.pop_back();
      if (token_.empty()) {
        return absl::InvalidArgumentError(fmt::format(
            "--token-file '{}': the first line is empty", options_.token_file));
      }
    }
    if (options_.access_log == "-") {
      access_log_ = stdout;
    } else if (!options_.access_log.empty()) {
      access_log_ = std::fopen(options_.access_log.c_str(), "a");
      if (access_log_ == nullptr) {
        return absl::NotFoundError(
            fmt::format("--access-log '{}': cannot open it for appending",
                        options_.access_log));
      }
    }
    return Reload();
  }

  // Loads the pipeline file whole and swaps it in; on failure the serving
  // pipeline stays.
  absl::Status Reload() {
    std::lock_guard<std::mutex> reloading(reload_mutex_);
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
        LoadPipeline(options_.pipeline, options_.lock);
    absl::StatusOr<std::unique_ptr<DriftMonitor>> drift;
    if (pipeline.ok() && !options_.profile.empty()) {
      // The profile must fit the new pipeline: one that does not is refused
      // with it.
      absl::StatusOr<Profile> profile = ReadProfile(options_.profile);
      drift = profile.ok()
                  ? DriftMonitor::Create(*profile, (*pipeline)->config())
                  : profile.status();
      if (!drift.ok()) {
        pipeline =
            absl::Status(drift.status().code(),
                         absl::StrCat("--profile: ", drift.status().message()));
      }
    }
    if (!pipeline.ok()) {
      metrics_.CountReload(false, generation_);
      fmt::print(stderr,
                 "latefuse serve: pipeline '{}' refused, still serving "
                 "generation {}: {}\n",
                 options_.pipeline, generation_,
                 std::string(pipeline.status().message()));
      return pipeline.status();
    }
    auto served = std::make_shared<Served>();
    served->pipeline = std::move(*pipeline);
    served->engine =
        std::make_unique<Engine>(*served->pipeline, EngineOptions{});
    if (drift.ok()) served->drift = *std::move(drift);
    served->version = absl::StrCat(++generation_);
    fmt::print(stderr, "latefuse serve: serving pipeline '{}' generation {}\n",
               served->pipeline->config().name, generation_);
    {
      std::lock_guard<std::mutex> swapping(current_mutex_);
      current_.swap(served);
    }
    metrics_.CountReload(true, generation_);
    // `served` now holds the old pipeline, freed here unless a request still
    // holds it; then by the last such request.
    return absl::OkStatus();
  }

  void Route(httplib::Server& http) {
    http.set_pre_routing_handler(
        [](const httplib::Request&, httplib::Response&) {
          request_start = Clock::now();
          return httplib::Server::HandlerResponse::Unhandled;
        });
    http.set_logger([this](const httplib::Request& req,
                           const httplib::Response& res) { Log(req, res); });
    http.Get("/v2/health/live",
             [](const httplib::Request&, httplib::Response& res) {
               res.set_content("{\"live\": true}", "application/json");
             });
    http.Get("/v2/health/ready", [this](const httplib::Request&,
                                        httplib::Response& res) {
      const bool ready = !draining_ && Current() != nullptr;
      res.status = ready ? 200 : 503;
      res.set_content(ready ? "{\"ready\": true}" : "{\"ready\": false}",
                      "application/json");
    });
    http.Get("/v2",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!Authorized(req, res)) return;
               res.set_content(
                   fmt::format("{{\"name\": \"latefuse\", \"version\": \"{}\", "
                               "\"extensions\": [\"model_repository\", "
                               "\"latefuse_records\", \"metrics\"]}}",
                               LATEFUSE_VERSION_STRING),
                   "application/json");
             });
    http.Get("/metrics",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!Authorized(req, res)) return;
               std::string text = metrics_.Render();
               const std::shared_ptr<Served> served = Current();
               if (served != nullptr && served->drift != nullptr)
                 text += PrometheusDrift(served->drift->Snapshot());
               res.set_content(text, "text/plain; version=0.0.4");
             });
    http.Get(R"(/v2/models/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               std::shared_ptr<Served> served = Model(req, res);
               if (served == nullptr) return;
               res.set_content(
                   ModelMetadata(served->pipeline->config(), served->version),
                   "application/json");
             });
    http.Get(R"(/v2/models/([^/]+)/ready)",
             [this](const httplib::Request& req, httplib::Response& res) {
               std::shared_ptr<Served> served = Model(req, res);
               if (served == nullptr) return;
               std::string body = "{\"name\": ";
               AppendJsonString(served->pipeline->config().name, body);
               body += ", \"ready\": true}";
               res.set_content(body, "application/json");
             });
    http.Post(R"(/v2/models/([^/]+)/infer)",
              [this](const httplib::Request& req, httplib::Response& res) {
                Infer(req, res);
              });
    http.Post(R"(/v2/models/([^/]+)/records)",
              [this](const httplib::Request& req, httplib::Response& res) {
                Records(req, res);
              });
    http.Post(R"(/v2/repository/models/([^/]+)/load)",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (Model(req, res) == nullptr) return;
                const absl::Status status = Reload();
                if (!status.ok()) {
                  SetError(res, 400,
                           absl::StrCat("the pipeline was refused; the one "
                                        "loaded before keeps serving: ",
                                        status.message()));
                  return;
                }
                res.set_content("{}", "application/json");
              });
  }

  // Readiness answers 503 from here on; the caller then stops the listener.
  void Drain() { draining_ = true; }

 private:
  std::shared_ptr<Served> Current() {
    std::lock_guard<std::mutex> lock(current_mutex_);
    return current_;
  }

  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    if (token_.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + token_)
      return true;
    res.set_header("WWW-Authenticate", "Bearer");
    SetError(res, 401, "missing or wrong bearer token");
    return false;
  }

  // The serving pipeline when the path names it (and the token is right);
  // else null, with the answer set.
  std::shared_ptr<Served> Model(const httplib::Request& req,
                                httplib::Response& res) {
    if (!Authorized(req, res)) return nullptr;
    std::shared_ptr<Served> served = Current();
    const std::string& name = served->pipeline->config().name;
    if (req.matches[1] != name) {
      SetError(res, 404,
               fmt::format("unknown model '{}'; this server serves '{}'",
                           std::string(req.matches[1]).substr(0, 64), name));
      return nullptr;
    }
    return served;
  }

  // Runs one batch within the request's deadline; false (with 504 set) when
  // the deadline passed waiting for the engine or during the run.
  bool RunEngine(Served& served, const InputBatch& batch, BatchResult& result,
                 httplib::Response& res) {
    std::unique_lock<std::timed_mutex> engine(served.engine_mutex,
                                              std::defer_lock);
    if (options_.deadline_ms <= 0) {
      engine.lock();
    } else if (!engine.try_lock_until(
                   request_start +
                   std::chrono::milliseconds(options_.deadline_ms))) {
      SetError(res, 504,
               fmt::format("deadline of {} ms passed waiting for the engine",
                           options_.deadline_ms));
      return false;
    }
    served.engine->Run(batch, result);
    engine.unlock();
    metrics_.ObserveBatch(served.pipeline->config(), batch, result);
    // The batch has this pipeline's shape, so Observe cannot refuse it.
    if (served.drift != nullptr) (void)served.drift->Observe(result);
    if (options_.deadline_ms > 0 &&
        Clock::now() >
            request_start + std::chrono::milliseconds(options_.deadline_ms)) {
      SetError(res, 504,
               fmt::format("deadline of {} ms passed", options_.deadline_ms));
      return false;
    }
    return true;
  }

  void Infer(const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<Served> served = Model(req, res);
    if (served == nullptr) return;
    const PipelineConfig& config = served->pipeline->config();
    // Reused by the requests this thread answers.
    thread_local InputBatch batch;
    thread_local BatchResult result;
    OipRequest request;
    const absl::Status parsed =
        ParseInferRequest(config, req.body, batch, request);
    if (!parsed.ok()) {
      SetError(res, 400, std::string(parsed.message()));
      return;
    }
    if (!RunEngine(*served, batch, result, res)) return;
    std::string out;
    AppendInferResponse(config, request, batch, result, out);
    res.set_content(out, "application/json");
  }

  // DESIGN's records: exactly what `latefuse run` writes for the same lines.
  void Records(const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<Served> served = Model(req, res);
    if (served == nullptr) return;
    const PipelineConfig& config = served->pipeline->config();
    RecordParser parser(Engine::RecordSpecs(config));
    InputBatch batch;
    BatchResult result;
    OutputOptions output;
    output.per_modality = req.get_param_value("per_modality") == "true";
    const RecordWriter records(config, output);
    std::string out;
    const std::string_view body = req.body;
    std::size_t line_number = 0;
    std::size_t at = 0;
    while (at < body.size()) {
      parser.Append(NextLine(body, at), ++line_number, batch);
      if (batch.rows < kRecordsBatch && at < body.size()) continue;
      if (!RunEngine(*served, batch, result, res)) return;
      for (std::size_t r = 0; r < batch.rows; ++r)
        records.Append(batch, result, r, out);
      batch.Clear();
    }
    res.set_content(out, "application/x-ndjson");
  }

  void Log(const httplib::Request& req, const httplib::Response& res) {
    // A request refused before routing (a bad request line) has no start.
    const double seconds =
        request_start == Clock::time_point{}
            ? 0.0
            : std::chrono::duration<double>(Clock::now() - request_start)
                  .count();
    request_start = Clock::time_point{};
    metrics_.CountRequest(RouteOf(req.path), res.status, seconds);
    if (access_log_ == nullptr) return;
    const std::string line = fmt::format(
        "{} {} {} {} {} {} {:.3f}ms\n", UtcNow(), req.remote_addr, req.method,
        req.path, res.status, res.body.size(), seconds * 1e3);
    std::lock_guard<std::mutex> lock(log_mutex_);
    std::fwrite(line.data(), 1, line.size(), access_log_);
    std::fflush(access_log_);
  }

  const ServeOptions options_;
  std::string token_;
  std::FILE* access_log_ = nullptr;
  std::mutex log_mutex_;
  ServeMetrics metrics_;
  std::mutex reload_mutex_;       // one reload at a time
  std::uint64_t generation_ = 0;  // guarded by reload_mutex_
  std::mutex current_mutex_;
  std::shared_ptr<Served> current_;
  std::atomic<bool> draining_{false};
};

}  // namespace

absl::Status Serve(const ServeOptions& options) {
  // Signals go to one thread that waits for them, blocked everywhere else
  // (every thread started from here on inherits the mask): SIGHUP reloads,
  // SIGTERM and SIGINT drain.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Server server(options);
  if (absl::Status started = server.Start(); !started.ok()) return started;
  httplib::Server http;
  if (options.threads > 0) {
    const auto threads = static_cast<std::size_t>(options.threads);
    http.new_task_queue = [threads] {
      return new httplib::ThreadPool(threads);
    };
  }
  http.set_payload_max_length(options.max_body_bytes);
  // An answer goes out as headers then body: without this, Nagle's algorithm
  // holds the body for the client's delayed ACK (some 40 ms).
  http.set_tcp_nodelay(true);
  server.Route(http);
  if (!http.bind_to_port(options.host, options.port)) {
    return absl::UnavailableError(fmt::format(
        "cannot listen on {}:{} (in use, or not an address of this host)",
        options.host, options.port));
  }
  fmt::print(stderr, "latefuse serve: listening on http://{}:{}\n",
             options.host, options.port);

  std::atomic<bool> stopping{false};
  std::thread waiter([&] {
    while (true) {
      int signal = 0;
      if (sigwait(&signals, &signal) != 0) continue;
      if (signal == SIGHUP) {
        (void)server.Reload();  // a refusal is logged; the old one serves on
        continue;
      }
      fmt::print(stderr,
                 "latefuse serve: draining: no new connections, finishing "
                 "requests in flight\n");
      server.Drain();
      stopping = true;
      http.stop();
      return;
    }
  });
  http.listen_after_bind();
  // Unless the waiter stopped it, the listener failed: wake the waiter.
  if (!stopping) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  fmt::print(stderr, "latefuse serve: stopped\n");
  return absl::OkStatus();
}

}  // namespace latefuse
