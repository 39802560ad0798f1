// The `latefuse` command: run a pipeline over JSONL records, validate a
// pipeline and print its resolved plan, inspect a plugin library.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "core/eval.h"
#include "core/eval_report.h"
#include "core/fit.h"
#include "core/lock.h"
#include "core/pipeline.h"
#include "core/pipeline_config.h"
#include "core/plugin_loader.h"
#include "core/registry.h"
#include "core/run.h"
#include "core/serve.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

int Fail(const absl::Status& status) {
  fmt::print(stderr, "latefuse: error: {}\n", std::string(status.message()));
  return 1;
}

// Adds `--lock FILE` to a command that loads a pipeline.
void AddLockOption(CLI::App& command, std::string& lock) {
  command
      .add_option("--lock", lock,
                  "Load exactly the plugins this lock file (from `latefuse "
                  "lock`) names, refusing any other version or hash")
      ->check(CLI::ExistingFile);
}

// A file descriptor, closed at scope exit when owned.
class FileDescriptor {
 public:
  FileDescriptor(int fd, bool owned) : fd_(fd), owned_(owned) {}
  FileDescriptor(FileDescriptor&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), owned_(other.owned_) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(owned_, other.owned_);
    return *this;
  }
  ~FileDescriptor() {
    if (owned_ && fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  bool owned_;
};

struct RunArgs {
  std::string pipeline;
  std::string lock;
  std::string input = "-";
  std::string output = "-";
  std::size_t batch_size = 1024;
  std::size_t threads = 0;
  bool per_modality = false;
  bool explain = false;
  bool quiet = false;
  bool no_progress = false;
};

// `run`'s exit code when SIGINT or SIGTERM stopped it: 128 + the signal, as a
// shell reports a process the signal ended (130, 143), though the run ended
// cleanly with every line read written.
int StoppedExitCode(int signal) { return 128 + signal; }

int Run(const RunArgs& args) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      LoadPipeline(args.pipeline, args.lock);
  if (!pipeline.ok()) return Fail(pipeline.status());
  // Descriptors rather than streams: RunFiles reads and writes large blocks
  // itself, and polls the input beside the stop signals.
  FileDescriptor in(STDIN_FILENO, /*owned=*/false);
  if (args.input != "-") {
    in = FileDescriptor(open(args.input.c_str(), O_RDONLY | O_CLOEXEC), true);
    if (in.fd() < 0)
      return Fail(absl::NotFoundError(
          fmt::format("cannot open input '{}'", args.input)));
  }
  FileDescriptor out(STDOUT_FILENO, /*owned=*/false);
  if (args.output != "-") {
    out = FileDescriptor(open(args.output.c_str(),
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666),
                         true);
    if (out.fd() < 0) {
      return Fail(absl::NotFoundError(
          fmt::format("cannot open output '{}'", args.output)));
    }
  }
  absl::StatusOr<std::unique_ptr<StopSignals>> stop = StopSignals::Install();
  if (!stop.ok()) return Fail(stop.status());
  RunOptions options;
  options.batch_size = args.batch_size;
  options.threads = args.threads;
  options.progress =
      !args.quiet && !args.no_progress && isatty(STDERR_FILENO) != 0;
  options.stop_fd = (*stop)->fd();
  options.engine.explain = args.explain;
  options.output.per_modality = args.per_modality;
  options.output.explain = args.explain;
  absl::StatusOr<RunSummary> summary =
      RunFiles(**pipeline, in.fd(), out.fd(), options);
  if (!summary.ok()) return Fail(summary.status());
  if (!args.quiet)
    fmt::print(stderr, "{}", FormatSummary((*pipeline)->config(), *summary));
  if (!summary->stopped) return 0;
  const int signal = (*stop)->signal();
  if (!args.quiet) {
    fmt::print(stderr,
               "latefuse: stopped by {}: every line read has its record\n",
               signal == SIGINT ? "SIGINT" : "SIGTERM");
  }
  return StoppedExitCode(signal);
}

struct FitArgs {
  std::string pipeline;
  std::string data;
  std::string predictions;
  std::string out;
  std::uint64_t seed = 0;
};

int Fit(const FitArgs& args) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      LoadPipeline(args.pipeline, "", LoadMode::kFit);
  if (!pipeline.ok()) return Fail(pipeline.status());
  FitOptions options;
  options.data = args.data;
  options.predictions = args.predictions;
  options.out_dir = args.out;
  options.seed = args.seed;
  absl::StatusOr<FitReport> report = FitPipeline(**pipeline, options);
  if (!report.ok()) return Fail(report.status());
  const PipelineConfig& config = (*pipeline)->config();
  fmt::print(stderr, "latefuse: fitted on {} of {} lines ({} skipped)\n",
             report->rows, report->lines, report->skipped.size());
  for (std::size_t i = 0; i < report->skipped.size() && i < 5; ++i) {
    fmt::print(stderr, "  skipped {}\n", report->skipped[i]);
  }
  for (std::size_t k = 0; k < config.modalities.size(); ++k) {
    fmt::print(stderr, "  {}: usable in {} rows\n", config.modalities[k].name,
               report->present[k]);
  }
  for (const auto& file : report->written) {
    fmt::print(stderr, "  wrote {}\n", file.string());
  }
  fmt::print("{}", report->snippet);
  return 0;
}

struct EvalArgs {
  std::string pipeline;
  std::string lock;
  std::string data;
  std::string report;
  std::size_t bootstrap = 1000;
  std::uint64_t seed = 0;
  std::vector<std::string> patterns;
  unsigned threads = 0;
  bool no_progress = false;
};

int Eval(const EvalArgs& args) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      LoadPipeline(args.pipeline, args.lock);
  if (!pipeline.ok()) return Fail(pipeline.status());
  EvalOptions options;
  options.data = args.data;
  options.bootstrap.replicates = args.bootstrap;
  options.bootstrap.seed = args.seed;
  options.threads = args.threads;
  for (const std::string& pattern : args.patterns) {
    if (pattern == "all") {
      options.all_patterns = true;
    } else {
      options.patterns.push_back(absl::StrSplit(pattern, '+'));
    }
  }
  if (!args.no_progress && isatty(STDERR_FILENO) != 0) {
    options.progress = [](const std::string& what) {
      fmt::print(stderr, "\r\033[Klatefuse eval: {}", what);
    };
  }
  absl::StatusOr<EvalResult> result = Evaluate(**pipeline, options);
  if (options.progress) fmt::print(stderr, "\r\033[K");
  if (!result.ok()) return Fail(result.status());
  if (absl::Status status = WriteEvalReport(*result, args.report); !status.ok())
    return Fail(status);
  fmt::print("{}", FormatEvalSummary(*result));
  fmt::print(stderr,
             "latefuse eval: wrote report.json, profile.json and "
             "report.html to {}\n",
             args.report);
  return 0;
}

int Validate(const std::string& path, const std::string& lock) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = LoadPipeline(path, lock);
  if (!pipeline.ok()) return Fail(pipeline.status());
  fmt::print("{}", (*pipeline)->Plan());
  return 0;
}

int Lock(const std::string& path, std::string out) {
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = LoadPipeline(path, "");
  if (!pipeline.ok()) return Fail(pipeline.status());
  if (out.empty()) out = DefaultLockPath(path).string();
  const absl::Status written = WriteLockFile(**pipeline, out);
  if (!written.ok()) return Fail(written);
  for (const auto& [role, resolved] : (*pipeline)->plugins()) {
    fmt::print("{:<28} {} {}  sha256 {}\n", role,
               resolved->plugin.descriptor->name,
               resolved->plugin.version.ToString(), resolved->plugin.sha256);
  }
  fmt::print(stderr, "latefuse: locked {} plugins in {}\n",
             (*pipeline)->plugins().size(), out);
  return 0;
}

struct ListArgs {
  std::vector<std::string> dirs;
  std::string pipeline;
  bool json = false;
};

// The folders `plugins list` looks in: --dir, else the pipeline's plugin_dirs,
// else $LATEFUSE_PLUGIN_PATH.
absl::StatusOr<std::vector<std::filesystem::path>> ListDirs(
    const ListArgs& args) {
  std::vector<std::filesystem::path> dirs(args.dirs.begin(), args.dirs.end());
  if (!args.pipeline.empty()) {
    absl::StatusOr<PipelineConfig> config = LoadPipelineFile(args.pipeline);
    if (!config.ok()) return config.status();
    dirs.insert(dirs.end(), config->plugin_dirs.begin(),
                config->plugin_dirs.end());
  }
  if (dirs.empty()) {
    const char* path = std::getenv("LATEFUSE_PLUGIN_PATH");
    for (const absl::string_view dir :
         absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty())) {
      dirs.emplace_back(std::string(dir));
    }
  }
  if (dirs.empty()) {
    return absl::InvalidArgumentError(
        "no plugin folder to list: give --dir DIR, --pipeline FILE (its "
        "plugin_dirs), or set LATEFUSE_PLUGIN_PATH");
  }
  return dirs;
}

int List(const ListArgs& args) {
  absl::StatusOr<std::vector<std::filesystem::path>> dirs = ListDirs(args);
  if (!dirs.ok()) return Fail(dirs.status());
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  const std::vector<Artefact> artefacts = FindArtefacts(*dirs);
  for (std::size_t i = 0; i < dirs->size(); ++i) {
    if (!args.json) {
      fmt::print("{}:\n  {:<18} {:<10} {:<9} {:<4} {}\n", (*dirs)[i].string(),
                 "NAME", "VERSION", "KIND", "ABI", "LOADABLE");
    }
    for (const Artefact& a : artefacts) {
      if (a.dir_index != i) continue;
      const absl::Status status = CheckArtefact(a);
      const Manifest* m = a.manifest.ok() ? &*a.manifest : nullptr;
      const std::string version = a.bare() ? "(bare)" : a.version->ToString();
      const std::string kind = m != nullptr ? PluginKindName(m->kind) : "?";
      const std::string abi =
          m != nullptr ? fmt::format("{}.{}", m->abi_major, m->abi_minor) : "?";
      std::string loadable =
          status.ok() ? "yes" : absl::StrCat("no: ", status.message());
      if (status.ok() && a.bare()) {
        loadable =
            "yes, if its code agrees (no manifest; `latefuse plugins "
            "inspect` loads it)";
      }
      if (args.json) {
        nlohmann::ordered_json row;
        row["name"] = a.name;
        row["version"] = a.bare() ? nullptr : nlohmann::ordered_json(version);
        row["kind"] = m != nullptr ? nlohmann::ordered_json(kind) : nullptr;
        row["abi"] = m != nullptr ? nlohmann::ordered_json(abi) : nullptr;
        row["description"] =
            m != nullptr ? nlohmann::ordered_json(m->description) : nullptr;
        row["library"] = a.library().string();
        row["loadable"] = status.ok();
        row["problem"] =
            status.ok() ? nlohmann::ordered_json(nullptr)
                        : nlohmann::ordered_json(std::string(status.message()));
        rows.push_back(std::move(row));
      } else {
        fmt::print("  {:<18} {:<10} {:<9} {:<4} {}\n", a.name, version, kind,
                   abi, loadable);
      }
    }
  }
  if (args.json) fmt::print("{}\n", rows.dump(2));
  return 0;
}

int Inspect(const std::string& path) {
  absl::StatusOr<LoadedPlugin> plugin = LoadPluginFile(path);
  if (!plugin.ok()) return Fail(plugin.status());
  const LfPluginDescriptor* d = plugin->descriptor;
  auto text = [](const char* s) { return s == nullptr ? "" : s; };
  fmt::print("name:        {}\n", d->name);
  fmt::print("version:     {}\n", d->version);
  fmt::print("kind:        {}\n", PluginKindName(d->kind));
  fmt::print("abi:         {}.{} (this host: {}.{})\n", d->abi_major,
             d->abi_minor, LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR);
  fmt::print("description: {}\n", text(d->description));
  fmt::print("license:     {}\n", text(d->license));
  fmt::print("build:       {}\n", text(d->build_info));
  fmt::print("file:        {}\n", plugin->path.string());
  fmt::print("sha256:      {}\n", plugin->sha256);
  return 0;
}

}  // namespace
}  // namespace latefuse

int main(int argc, char** argv) {
  CLI::App app{
      "latefuse: late-fusion multimodal inference. Each modality's model and "
      "the combiner are\n"
      "plugins named by a pipeline file; a missing modality is skipped, never "
      "zero-filled."};
  app.set_version_flag("--version",
                       "latefuse 1.0.0 (plugin ABI " +
                           std::to_string(LATEFUSE_ABI_MAJOR) + "." +
                           std::to_string(LATEFUSE_ABI_MINOR) + ")");
  app.require_subcommand(1);

  latefuse::RunArgs run_args;
  CLI::App* run = app.add_subcommand(
      "run",
      "Run a pipeline over JSONL records: one output line per input line, in "
      "order.\n"
      "Input lines: {\"id\": ..., \"modalities\": {name: value|null, ...}}. A "
      "bad line gives an\n"
      "error record, never a lost row. A summary goes to stderr at the end.");
  run->add_option("pipeline", run_args.pipeline, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("-i,--input", run_args.input,
                  "Input JSONL file, or - for stdin")
      ->capture_default_str();
  run->add_option("-o,--output", run_args.output,
                  "Output JSONL file, or - for stdout")
      ->capture_default_str();
  run->add_option("--batch-size", run_args.batch_size,
                  "Records per engine batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  run->add_option("--threads", run_args.threads,
                  "Threads that parse and format records (0: one per core; "
                  "the engine and models have their own)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  latefuse::AddLockOption(*run, run_args.lock);
  run->add_flag("--per-modality", run_args.per_modality,
                "Add each used modality's own probabilities (\"modalities\")");
  run->add_flag(
      "--explain", run_args.explain,
      "Add the combiner's per-modality weights for each row (\"weights\")");
  run->add_flag("--no-progress", run_args.no_progress,
                "No progress line on stderr");
  run->add_flag("-q,--quiet", run_args.quiet,
                "Neither progress nor summary on stderr");

  std::string validate_path;
  CLI::App* validate =
      app.add_subcommand("validate",
                         "Check a pipeline file and load every plugin it "
                         "names, with every check; print the\n"
                         "resolved plan (plugins, versions, files, hashes, why "
                         "each file was chosen).");
  validate->add_option("pipeline", validate_path, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  std::string validate_lock;
  latefuse::AddLockOption(*validate, validate_lock);

  std::string lock_path;
  std::string lock_out;
  CLI::App* lock = app.add_subcommand(
      "lock",
      "Resolve every plugin of a pipeline to one exact version and sha256, "
      "with every load\n"
      "check, and write them to a lock file. `run --lock FILE` then loads "
      "exactly those\n"
      "artefacts and refuses any other, as package managers' lock files do.");
  lock->add_option("pipeline", lock_path, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  lock->add_option("-o,--output", lock_out,
                   "Lock file to write (default: the pipeline's path with "
                   ".lock)");

  latefuse::FitArgs fit_args;
  CLI::App* fit = app.add_subcommand("fit",
                                     "Fit what the pipeline marks as trainable "
                                     "from labelled data: calibrations\n"
                                     "with `fit: true`, and a combiner with a "
                                     "`fit:` block (its options). Writes\n"
                                     "the fitted files to --out and prints the "
                                     "pipeline snippet that uses them.");
  fit->add_option("pipeline", fit_args.pipeline, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  CLI::Option* data =
      fit->add_option("--data", fit_args.data,
                      "Labelled records (JSONL with \"label\"); the pipeline's "
                      "models run over them")
          ->check(CLI::ExistingFile);
  fit->add_option("--predictions", fit_args.predictions,
                  "Or per-modality predictions made out of fold (JSONL: "
                  "{\"label\", \"modalities\": {name: [p...]|null}})")
      ->check(CLI::ExistingFile)
      ->excludes(data);
  fit->add_option("-o,--out", fit_args.out, "Folder for the fitted files")
      ->required();
  fit->add_option("--seed", fit_args.seed,
                  "Seed for any randomness in fitting (e.g. modality dropout)")
      ->capture_default_str();

  latefuse::EvalArgs eval_args;
  CLI::App* eval = app.add_subcommand(
      "eval",
      "Evaluate a classification pipeline on labelled records (JSONL with "
      "\"label\"):\n"
      "accuracy, log loss, Brier, ROC-AUC and calibration error, with "
      "bootstrap intervals,\n"
      "for the pipeline as given, each modality alone, every availability "
      "pattern\n"
      "(simulated by masking present modalities; only the combiner reruns), "
      "the patterns\n"
      "as they occur, and each modality's contribution. Writes report.json, "
      "profile.json\n"
      "(the drift reference) and report.html to --report; prints a summary "
      "table.");
  eval->add_option("pipeline", eval_args.pipeline, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--data", eval_args.data,
                   "Labelled records; every line needs a label that is one "
                   "of the pipeline's classes")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--report", eval_args.report, "Folder for the report files")
      ->required();
  eval->add_option("--bootstrap", eval_args.bootstrap,
                   "Bootstrap replicates for the 95% intervals (0: none)")
      ->capture_default_str();
  eval->add_option("--seed", eval_args.seed, "Seed of the bootstrap")
      ->capture_default_str();
  eval->add_option("--patterns", eval_args.patterns,
                   "Availability patterns to simulate, e.g. "
                   "vitals+labs,notes; or all. Default: every subset up to 6 "
                   "modalities, else singles, leave-one-outs, all, observed")
      ->delimiter(',');
  eval->add_option("--threads", eval_args.threads,
                   "Threads for the bootstrap (0: one per core)")
      ->capture_default_str();
  latefuse::AddLockOption(*eval, eval_args.lock);
  eval->add_flag("--no-progress", eval_args.no_progress,
                 "No progress line on stderr");

  latefuse::ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Serve a pipeline over HTTP: the Open Inference Protocol (KServe v2 "
      "REST) and DESIGN's\n"
      "JSON records. Model name = the pipeline's name. Routes: GET "
      "/v2/health/live,\n"
      "/v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready, "
      "/metrics (Prometheus);\n"
      "POST /v2/models/NAME/infer (one tensor per modality; a modality not "
      "sent is missing),\n"
      "/v2/models/NAME/records (JSONL in, `latefuse run`'s records out),\n"
      "/v2/repository/models/NAME/load (reload the pipeline file). SIGHUP "
      "reloads too: the\n"
      "new pipeline is loaded whole and swapped in, or refused while the old "
      "one serves on.\n"
      "SIGTERM drains: no new connections, requests in flight finish, exit "
      "0.");
  serve->add_option("pipeline", serve_options.pipeline, "Pipeline file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--host", serve_options.host,
                   "Address to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  serve->add_option("--port", serve_options.port, "Port to listen on")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  latefuse::AddLockOption(*serve, serve_options.lock);
  serve
      ->add_option("--max-body-bytes", serve_options.max_body_bytes,
                   "Larger request bodies get 413")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32));
  serve
      ->add_option("--deadline-ms", serve_options.deadline_ms,
                   "Per request: past this (waiting for the engine or "
                   "running), 504. 0: none")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve
      ->add_option("--token-file", serve_options.token_file,
                   "Require \"Authorization: Bearer TOKEN\" (TOKEN: the "
                   "file's first line) on every route but /v2/health/*")
      ->check(CLI::ExistingFile);
  serve
      ->add_option("--profile", serve_options.profile,
                   "Reference profile (profile.json from `latefuse eval` or "
                   "`fit`): /metrics then reports each modality's drift "
                   "(population stability index) against it")
      ->check(CLI::ExistingFile);
  serve->add_option("--access-log", serve_options.access_log,
                    "One line per request (time, client, method, path, "
                    "code, bytes, latency) to FILE, or - for stdout");
  serve
      ->add_option("--threads", serve_options.threads,
                   "HTTP worker threads (0: max(8, cores - 1))")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));

  CLI::App* plugins =
      app.add_subcommand("plugins", "Work with plugin libraries.");
  plugins->require_subcommand(1);
  std::string inspect_path;
  CLI::App* inspect =
      plugins->add_subcommand("inspect",
                              "Load one plugin library and print its "
                              "descriptor (name, version, kind, ABI).");
  inspect->add_option("path", inspect_path, "Plugin shared library")
      ->required()
      ->check(CLI::ExistingFile);
  latefuse::ListArgs list_args;
  CLI::App* list = plugins->add_subcommand(
      "list",
      "List the plugin artefacts in plugin folders (<dir>/<name>/<version>/ "
      "with a\n"
      "manifest.json, and bare <dir>/<name>.so): name, version, kind, ABI, "
      "and whether\n"
      "this host can load each or why not. Reads files only; runs no plugin "
      "code.");
  list->add_option("--dir", list_args.dirs,
                   "A plugin folder (repeatable); default: --pipeline's "
                   "plugin_dirs, else $LATEFUSE_PLUGIN_PATH (colon-separated)")
      ->check(CLI::ExistingDirectory);
  list->add_option("--pipeline", list_args.pipeline,
                   "List the plugin_dirs of this pipeline file")
      ->check(CLI::ExistingFile);
  list->add_flag("--json", list_args.json, "Print JSON instead of a table");

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return latefuse::Run(run_args);
  if (validate->parsed())
    return latefuse::Validate(validate_path, validate_lock);
  if (lock->parsed()) return latefuse::Lock(lock_path, lock_out);
  if (list->parsed()) return latefuse::List(list_args);
  if (fit->parsed()) return latefuse::Fit(fit_args);
  if (eval->parsed()) return latefuse::Eval(eval_args);
  if (inspect->parsed()) return latefuse::Inspect(inspect_path);
  if (serve->parsed()) {
    const absl::Status status = latefuse::Serve(serve_options);
    return status.ok() ? 0 : latefuse::Fail(status);
  }
  return 0;
}
