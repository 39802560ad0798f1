// The Open Inference Protocol (KServe v2 REST) as `latefuse serve` speaks it:
// an infer request's tensors into the engine's InputBatch, a BatchResult into
// the infer response, and the model metadata document. The wire format is
// README's "latefuse serve" section; the `remote` model plugin speaks the
// client side of it.
//
//   InputBatch batch;
//   OipRequest request;
//   if (absl::Status s = ParseInferRequest(config, body, batch, request);
//       !s.ok()) { /* 400 with s.message() */ }
//   engine.Run(batch, result);
//   std::string out;
//   AppendInferResponse(config, request, batch, result, out);
//
// One input tensor per modality, named as the modality: dense modalities
// FP32 (or FP64) of shape [R, width], text and bytes modalities BYTES of
// shape [R] (bytes as base64 strings, as in records). A modality not sent is
// missing in every row; an input's optional "parameters": {"present": [...]}
// (R booleans) marks the rows where it is missing (their values are ignored).
// `data` is flat row-major or nested.
#ifndef LATEFUSE_CORE_OIP_H_
#define LATEFUSE_CORE_OIP_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/engine.h"
#include "core/pipeline_config.h"
#include "core/records.h"

namespace latefuse {

// What an infer request asks besides its tensors.
struct OipRequest {
  bool has_id = false;
  std::string id;  // echoed in the response
  // The outputs to return ("outputs" in the request; default every one).
  bool probabilities = true;  // regression: "prediction"
  bool label = true;          // classification only
};

// Parses an infer request body into `batch` (cleared first; one column per
// modality, in pipeline order) and `request`. Every problem is an
// InvalidArgument error naming the input and what is wrong, for a 400.
absl::Status ParseInferRequest(const PipelineConfig& config,
                               std::string_view body, InputBatch& batch,
                               OipRequest& request);

// Appends the infer response of `result` (the engine's outcome of `batch`).
// Rows that abstain or fail carry 0.0 probabilities and an empty label; the
// per-row "parameters.rows" says each row's status, used, missing and failed
// modalities, as output records do.
void AppendInferResponse(const PipelineConfig& config,
                         const OipRequest& request, const InputBatch& batch,
                         const BatchResult& result, std::string& out);

// GET /v2/models/{name}: name, versions (`version`: the server counts loads
// of the pipeline, so a reload shows), platform, one input per modality, the
// outputs, and the classes in "parameters".
std::string ModelMetadata(const PipelineConfig& config,
                          std::string_view version);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_OIP_H_
