// libFuzzer target: the input record parser (core/records.h) on any text, one
// record per line, for a pipeline with a dense, a text and a bytes modality.
// Beyond crashes, leaks and undefined behaviour: the batch keeps its contract
// (core/records.h), it is the batch simdjson alone gives (RecordParseMode::
// kGeneral: the fast path takes only lines it reads the same), and the output
// records written from it (ids, labels and error messages quoting the input)
// are valid JSON.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine.h"
#include "core/records.h"
#include "fuzz/fuzz_util.h"

namespace {

// The same batch, field by field; dense values bit for bit (-0.0 is not 0.0).
void CheckSameBatch(const latefuse::InputBatch& fast,
                    const latefuse::InputBatch& general) {
  using latefuse::fuzz::Check;
  Check(fast.rows == general.rows && fast.ids == general.ids &&
            fast.has_id == general.has_id && fast.labels == general.labels &&
            fast.has_label == general.has_label &&
            fast.errors == general.errors &&
            fast.columns.size() == general.columns.size(),
        "the fast path gives simdjson's rows");
  for (std::size_t k = 0; k < fast.columns.size(); ++k) {
    const latefuse::InputColumn& a = fast.columns[k];
    const latefuse::InputColumn& b = general.columns[k];
    Check(a.present == b.present && a.items == b.items &&
              a.dense.size() == b.dense.size(),
          "the fast path gives simdjson's columns");
    for (std::size_t i = 0; i < a.dense.size(); ++i) {
      Check(std::bit_cast<std::uint32_t>(a.dense[i]) ==
                std::bit_cast<std::uint32_t>(b.dense[i]),
            "the fast path gives simdjson's numbers");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace latefuse;
  using namespace latefuse::fuzz;
  const PipelineConfig& config = FuzzPipeline(FuzzTask::kClassification);
  // One parser for the whole run, as `latefuse run` keeps one for its input:
  // a line must not leave state behind that changes the next one's parse.
  static RecordParser parser(Engine::RecordSpecs(config));
  static RecordParser general(Engine::RecordSpecs(config),
                              RecordParseMode::kGeneral);
  static InputBatch batch;
  static InputBatch general_batch;
  static std::string out;
  batch.Clear();
  general_batch.Clear();
  out.clear();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t at = 0;
  std::size_t line_number = 0;
  while (at < text.size()) {
    // Each line in a heap buffer of its exact size (no terminator, no small
    // string buffer), so that ASan sees any read past its end: in the input,
    // a line is followed by the next one.
    const std::string_view view = NextLine(text, at);
    const std::vector<char> copy(view.begin(), view.end());
    const std::string_view line(copy.data(), copy.size());
    ++line_number;
    parser.Append(line, line_number, batch);
    general.Append(line, line_number, general_batch);
  }
  Check(batch.rows == line_number, "one row per line");
  CheckBatch(config, batch);
  CheckSameBatch(batch, general_batch);
  AppendEchoRecords(config, batch, out);
  CheckJsonLines(out);
  return 0;
}
