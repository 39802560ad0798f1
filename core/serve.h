// `latefuse serve`: a pipeline behind the Open Inference Protocol (KServe v2
// REST) over HTTP, with DESIGN's JSON records, Prometheus metrics, hot reload
// and the operations a service needs.
//
//   ServeOptions options;
//   options.pipeline = "pipeline.yaml";
//   options.port = 8080;
//   absl::Status status = Serve(options);  // returns after SIGTERM's drain
//
// Concurrency: HTTP threads parse and answer requests side by side; the
// engine runs one batch at a time per loaded pipeline, since the plugin ABI
// forbids calling one instance from two threads at once (a batch's models
// still run in parallel, one thread per modality).
//
// Reload (SIGHUP, or POST /v2/repository/models/{name}/load): the pipeline
// file is read and loaded whole (every plugin checked and created) beside the
// serving one, then swapped in under a mutex; requests that hold the old one
// finish on it, and it is freed when the last of them lets go. A pipeline
// that fails to load is refused, logged, and the old one keeps serving.
#ifndef LATEFUSE_CORE_SERVE_H_
#define LATEFUSE_CORE_SERVE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace latefuse {

struct ServeOptions {
  std::string pipeline;  // the pipeline file, re-read on every reload
  std::string lock;      // lock file, "" for none (LoadPipeline)
  std::string host = "127.0.0.1";
  int port = 8080;
  // Bodies longer than this get 413 before they are read.
  std::size_t max_body_bytes = 16 << 20;
  // Per request, from its body read to its answer: a request still waiting
  // for the engine, or whose engine run ends, past it gets 504. 0: none.
  int deadline_ms = 30000;
  // When non-empty, a file holding a token (its first line): every route but
  // /v2/health/* then needs "Authorization: Bearer <token>" (401 otherwise).
  std::string token_file;
  // A reference profile (latefuse.profile/v1), re-read on every reload: when
  // set, /metrics adds each modality's drift against it (core/drift.h), over
  // the rows served since the pipeline was (re)loaded. "" for none.
  std::string profile;
  // One line per request: "" for none, "-" for stdout, else a file appended.
  std::string access_log;
  int threads = 0;  // HTTP worker threads; 0: max(8, cores - 1)
};

// Loads the pipeline, listens, and serves until SIGTERM or SIGINT; then stops
// accepting, lets requests in flight finish, and returns OK. Fails when the
// pipeline does not load or the address cannot be bound.
absl::Status Serve(const ServeOptions& options);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_SERVE_H_
