/* latefuse plugin ABI, version 1 (currently 1.2).
 *
 * The only things that cross between the latefuse host and a plugin are the
 * plain C types in this header. A plugin is a shared library exporting one
 * symbol:
 *
 *   const LfPluginDescriptor* latefuse_plugin_v1(const LfHostApi* host);
 *
 * The host calls it once, right after loading, and keeps the descriptor for the
 * life of the process (plugins are never unloaded). The descriptor names the
 * plugin and points at the function table of its kind: a model turns one
 * modality's batch into class probabilities; a combiner fuses the probabilities
 * of the modalities present in each row.
 *
 * Since ABI 1.2 a pipeline is either a classification pipeline (the above) or
 * a regression pipeline (LfCreateContext::task). A regression pipeline uses
 * the same buffers with 2 values per row, (prediction, variance): see
 * LfProbabilities and LfCombineInput.
 *
 * Most plugin authors do not use this header directly: <latefuse/plugin.hpp>
 * turns a plain C++ class into these tables and catches every exception.
 *
 * Compatibility rules:
 *  - Every struct starts with `struct_size`, the size of the struct as its
 * writer knew it. Structs only grow at the end. A reader reads a member only
 * when offsetof(member) + sizeof(member) <= struct_size; LF_HAS_MEMBER() does
 * that test.
 *  - The host accepts a plugin with the same ABI major and a minor not newer
 * than its own.
 *  - A future incompatible ABI exports `latefuse_plugin_v2` instead.
 *
 * Errors: every call returns an LfStatus*; NULL means success. A plugin makes a
 * status only through LfHostApi::make_status, so the message is copied into
 * host-owned memory; ownership of the returned status passes to the host, which
 * frees it.
 *
 * Threading: the host never calls one instance from two threads at once;
 * different instances (of the same plugin or not) may be called concurrently.
 */
#ifndef LATEFUSE_PLUGIN_H_
#define LATEFUSE_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LATEFUSE_ABI_MAJOR 1
#define LATEFUSE_ABI_MINOR 2

/* The entry symbol's name carries the ABI major. */
#define LATEFUSE_ENTRY_SYMBOL "latefuse_plugin_v1"

#if defined(__GNUC__)
#define LATEFUSE_EXPORT __attribute__((visibility("default")))
#else
#define LATEFUSE_EXPORT
#endif

/* True when a struct whose writer set `struct_size` contains `member` in full.
 */
#define LF_HAS_MEMBER(ptr, type, member) \
  ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

/* ---- Status
 * ------------------------------------------------------------------------ */

/* Opaque, host-owned error object. NULL stands for success. */
typedef struct LfStatus LfStatus;

/* Error codes; numerically equal to absl::StatusCode's. */
typedef enum LfStatusCode {
  LF_CODE_CANCELLED = 1,
  LF_CODE_UNKNOWN = 2,
  LF_CODE_INVALID_ARGUMENT = 3,
  LF_CODE_DEADLINE_EXCEEDED = 4,
  LF_CODE_NOT_FOUND = 5,
  LF_CODE_RESOURCE_EXHAUSTED = 8,
  LF_CODE_FAILED_PRECONDITION = 9,
  LF_CODE_OUT_OF_RANGE = 11,
  LF_CODE_UNIMPLEMENTED = 12,
  LF_CODE_INTERNAL = 13,
  LF_CODE_UNAVAILABLE = 14,
  LF_CODE_DATA_LOSS = 15
} LfStatusCode;

typedef enum LfLogLevel {
  LF_LOG_DEBUG = 0,
  LF_LOG_INFO = 1,
  LF_LOG_WARNING = 2,
  LF_LOG_ERROR = 3
} LfLogLevel;

/* ---- What the host offers every plugin
 * --------------------------------------------- */

typedef struct LfHostApi {
  uint32_t struct_size;
  uint16_t abi_major; /* the host's ABI */
  uint16_t abi_minor;
  /* Makes an error status; `message` (UTF-8, `message_size` bytes) is copied.
   * Never returns NULL. Thread-safe. */
  LfStatus* (*make_status)(int32_t code, const char* message,
                           size_t message_size);
  /* Writes a line to the host's log. Thread-safe. */
  void (*log)(int32_t level, const char* message, size_t message_size);
} LfHostApi;

/* ---- Data views
 * ---------------------------------------------------------------------- */

typedef enum LfPluginKind {
  LF_KIND_MODEL = 1,
  LF_KIND_COMBINER = 2
} LfPluginKind;

typedef enum LfInputKind {
  LF_INPUT_DENSE = 1, /* float32 features, a fixed width per row */
  LF_INPUT_TEXT = 2,  /* UTF-8 text, one string per row */
  LF_INPUT_BYTES = 3  /* opaque bytes, one blob per row */
} LfInputKind;

/* A (pointer, length) pair; not NUL-terminated. */
typedef struct LfBytesView {
  const char* data;
  size_t size;
} LfBytesView;

/* One modality's rows, as the host hands them to a model. Only rows where the
 * modality is present are in a batch. Valid for the duration of the call only.
 */
typedef struct LfBatch {
  uint32_t struct_size;
  int32_t kind; /* LfInputKind */
  size_t rows;  /* >= 1 */
  size_t width; /* dense: features per row; 0 otherwise */
  const float*
      dense; /* dense: rows * width values, row-major; NULL otherwise */
  const LfBytesView* items; /* text, bytes: `rows` items; NULL for dense */
} LfBatch;

/* Where a model writes its answer: host-allocated, rows * classes float64
 * values, row-major, in the class order the model's contract declares. Each row
 * sums to 1.
 *
 * Regression pipelines (since ABI 1.2): `classes` is 2 and each row is
 * (prediction, variance): column 0 the model's prediction (finite), column 1
 * the variance of that prediction (finite and >= 0) when the model's contract
 * sets reports_variance, else NaN. The host makes a modality missing (or
 * failed) for the batch when a row breaks these rules. */
typedef struct LfProbabilities {
  uint32_t struct_size;
  size_t rows;
  size_t classes;
  double* data;
} LfProbabilities;

/* ---- Creation
 * -------------------------------------------------------------------------- */

/* Since ABI 1.2. What a pipeline predicts. */
typedef enum LfTask {
  LF_TASK_CLASSIFICATION = 0, /* class probabilities */
  LF_TASK_REGRESSION = 1      /* one real number (and its variance) per row */
} LfTask;

/* Everything a plugin instance is created from. Valid for the duration of
 * `create` only: copy what you keep. */
typedef struct LfCreateContext {
  uint32_t struct_size;
  /* The pipeline's `params` subtree for this plugin, as JSON text (an object).
   */
  const char* params_json;
  size_t params_json_size;
  /* Absolute directory of the pipeline file, NUL-terminated: relative paths in
   * params resolve against it. */
  const char* base_dir;
  /* Modality name (models) or "combiner", NUL-terminated; for messages and
   * logs. */
  const char* instance_name;
  /* The pipeline's class labels, in order. Regression: 0 and NULL. */
  size_t num_classes;
  const char* const* class_labels;
  /* Combiners: the pipeline's modality names, in pipeline order (the order of
   * the K axis of every combine call). Models: 0 and NULL. */
  size_t num_modalities;
  const char* const* modality_names;
  /* Since ABI 1.2. The pipeline's task, an LfTask; the host always sets it.
   * Absent (an older host): classification. */
  int32_t task;
} LfCreateContext;

/* ---- Models
 * -----------------------------------------------------------------------------
 */

/* A model's static contract, checked against the pipeline before anything runs.
 * The host allocates it and sets struct_size; `describe` fills it. Pointers
 * stay owned by the instance and valid until `destroy`. */
typedef struct LfModelContract {
  uint32_t struct_size;
  int32_t input_kind; /* LfInputKind */
  size_t input_width; /* dense: features per row; 0 otherwise */
  /* Classification: the labels, NUL-terminated, in output order. Regression:
   * 0 and NULL (the host refuses a model whose contract disagrees with the
   * pipeline's task). */
  size_t num_classes;
  const char* const* class_labels;
  /* Since ABI 1.2. Regression models: 1 when infer fills column 1 (the
   * variance) of every row, 0 when it leaves NaN there. Classification: 0. */
  int32_t reports_variance;
} LfModelContract;

typedef struct LfModelApi {
  uint32_t struct_size;
  /* Makes an instance from the pipeline's params. On success sets *instance. */
  LfStatus* (*create)(const LfCreateContext* context, void** instance);
  /* Frees an instance. Never fails. */
  void (*destroy)(void* instance);
  /* Fills the contract; called once after create. */
  LfStatus* (*describe)(void* instance, LfModelContract* contract);
  /* Computes class probabilities for every row of the batch, in one call. */
  LfStatus* (*infer)(void* instance, const LfBatch* batch,
                     LfProbabilities* out);
} LfModelApi;

/* ---- Combiners
 * ------------------------------------------------------------------------- */

/* The per-modality probabilities of a batch of rows. Valid for the call only.
 *
 * Regression pipelines (since ABI 1.2): C is 2 and each [k, row] entry is the
 * model's (prediction, variance), variance NaN when the model reports none.
 * The combiner writes (prediction, fused variance) per row to
 * LfCombineOutput::probabilities, the fused variance NaN when it has none;
 * such rows need not sum to 1. */
typedef struct LfCombineInput {
  uint32_t struct_size;
  size_t modalities; /* K, pipeline order */
  size_t rows;
  size_t classes; /* C */
  const double*
      probabilities; /* [K, rows, C]; rows where a modality is absent hold
                        unspecified values and must not be read */
  const uint8_t*
      present; /* [K, rows]; 1 = present. Every row has at least one. */
} LfCombineInput;

/* Where a combiner writes: host-allocated. */
typedef struct LfCombineOutput {
  uint32_t struct_size;
  double* probabilities; /* [rows, C], each row sums to 1 (classification) */
  /* [rows, K] what each modality counted for in each row, or NULL when the
   * host did not ask for an explanation. Usually the weight the combiner gave
   * it (0 when absent); a combiner documents its own meaning (a stacker's
   * signed contributions, where a missing modality's fill value counts too). */
  double* explanation;
} LfCombineOutput;

typedef struct LfCombinerContract {
  uint32_t struct_size;
  /* 1 when the combiner fills LfCombineOutput::explanation. */
  int32_t explains;
} LfCombinerContract;

/* Since ABI 1.1. Labelled data a trainable combiner is fitted on. Valid for the
 * call only. */
typedef struct LfFitData {
  uint32_t struct_size;
  size_t modalities; /* K, pipeline order */
  size_t rows;
  size_t classes;              /* C */
  const double* probabilities; /* [K, rows, C], as combine would get them (after
                                  any calibration); unspecified where absent */
  const uint8_t* present; /* [K, rows]; 1 = present. A row may have none. */
  const int32_t* labels;  /* [rows]: index into the pipeline's classes */
  uint64_t seed;          /* for any randomness, so fits are repeatable */
} LfFitData;

/* Since ABI 1.1. Where a fit writes its result, text appended in pieces. */
typedef struct LfTextSink {
  uint32_t struct_size;
  void* sink;
  void (*append)(void* sink, const char* data, size_t size);
} LfTextSink;

typedef struct LfCombinerApi {
  uint32_t struct_size;
  LfStatus* (*create)(const LfCreateContext* context, void** instance);
  void (*destroy)(void* instance);
  LfStatus* (*describe)(void* instance, LfCombinerContract* contract);
  /* Fuses every row of the input, in one call. */
  LfStatus* (*combine)(void* instance, const LfCombineInput* input,
                       LfCombineOutput* out);
  /* Since ABI 1.1. Optional (NULL: not trainable). Fits the combiner's
   * parameters and writes them to `out` as a JSON parameter file, which
   * `create` reads back when the pipeline's params give its path as `model`.
   * Static: no instance is needed, since a combiner that is yet to be fitted
   * may have nothing to be created from. The context's params are the
   * pipeline's `fit` options for the combiner. */
  LfStatus* (*fit)(const LfCreateContext* context, const LfFitData* data,
                   const LfTextSink* out);
} LfCombinerApi;

/* ---- The descriptor
 * -------------------------------------------------------------------- */

typedef struct LfPluginDescriptor {
  uint32_t struct_size;
  uint16_t abi_major; /* the ABI the plugin was built against */
  uint16_t abi_minor;
  int32_t kind;            /* LfPluginKind */
  const char* name;        /* e.g. "linear" */
  const char* version;     /* semantic version, e.g. "1.2.0" */
  const char* description; /* one line */
  const char* license;     /* SPDX identifier */
  const char* build_info;  /* compiler, date, anything useful in a bug report */
  const LfModelApi* model; /* kind == LF_KIND_MODEL, else NULL */
  const LfCombinerApi* combiner; /* kind == LF_KIND_COMBINER, else NULL */
} LfPluginDescriptor;

/* The entry point every plugin exports. Returns NULL only if the plugin cannot
 * run with this host at all. The descriptor must stay valid for the life of the
 * process. */
typedef const LfPluginDescriptor* (*LfPluginEntryFn)(const LfHostApi* host);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LATEFUSE_PLUGIN_H_ */
