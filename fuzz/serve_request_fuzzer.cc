// libFuzzer target: what `latefuse serve` parses from a request body
// (core/oip.h ParseInferRequest for /infer, the JSONL body of /records), for
// a classification and a regression pipeline with a dense, a text and a bytes
// modality. The first byte picks the route and the pipeline, the rest is the
// body. Beyond crashes, leaks and undefined behaviour: a request either is
// refused with a message or gives a batch that keeps its contract, and the
// answer written from it is valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "core/oip.h"
#include "core/records.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace latefuse;
  using namespace latefuse::fuzz;
  if (size == 0) return 0;
  const bool records = (data[0] & 1) != 0;
  const PipelineConfig& config = FuzzPipeline(
      (data[0] & 2) != 0 ? FuzzTask::kRegression : FuzzTask::kClassification);
  const std::string_view body(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  // Reused from request to request, as a server thread reuses its own.
  static InputBatch batch;
  static std::string out;
  out.clear();
  if (records) {
    // The /records route: one RecordParser per request.
    RecordParser parser(Engine::RecordSpecs(config));
    batch.Clear();
    std::size_t at = 0;
    std::size_t line_number = 0;
    while (at < body.size())
      parser.Append(NextLine(body, at), ++line_number, batch);
    CheckBatch(config, batch);
    AppendEchoRecords(config, batch, out);
  } else {
    OipRequest request;
    const absl::Status parsed = ParseInferRequest(config, body, batch, request);
    if (!parsed.ok()) {
      Check(parsed.code() == absl::StatusCode::kInvalidArgument &&
                !parsed.message().empty(),
            "a refused request is an InvalidArgument with a message");
      return 0;
    }
    CheckBatch(config, batch);
    AppendEchoResponse(config, request, batch, out);
  }
  CheckJsonLines(out);
  return 0;
}
