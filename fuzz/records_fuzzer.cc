// libFuzzer target: the input record parser (core/records.h) on any text, one
// record per line, for a pipeline with a dense, a text and a bytes modality.
// Beyond crashes, leaks and undefined behaviour: the batch keeps its contract
// (core/records.h), and the output records written from it (ids, labels and
// error messages quoting the input) are valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/engine.h"
#include "core/records.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace latefuse;
  using namespace latefuse::fuzz;
  const PipelineConfig& config = FuzzPipeline(FuzzTask::kClassification);
  // One parser for the whole run, as `latefuse run` keeps one for its input:
  // a line must not leave state behind that changes the next one's parse.
  static RecordParser parser(Engine::RecordSpecs(config));
  static InputBatch batch;
  static std::string out;
  batch.Clear();
  out.clear();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t at = 0;
  std::size_t line_number = 0;
  while (at < text.size())
    parser.Append(NextLine(text, at), ++line_number, batch);
  Check(batch.rows == line_number, "one row per line");
  CheckBatch(config, batch);
  AppendEchoRecords(config, batch, out);
  CheckJsonLines(out);
  return 0;
}
