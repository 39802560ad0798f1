// Input records: one JSON object per line, parsed into a column-wise batch
// (InputBatch) that the engine hands to the models, with a precise error for
// every bad line. This is the hot path of `latefuse run`.
//
//   RecordParser parser({{"vitals", RecordInputKind::kDense, 3},
//                        {"notes", RecordInputKind::kText}});
//   InputBatch batch;
//   parser.Append(R"({"id": "p-1", "modalities": {"vitals": [72, 118, 0.5]}})",
//                 /*line_number=*/1, batch);
//   parser.Append(R"({"id": "p-2", "modalities": {"notes": 7}})", 2, batch);
//   // batch.rows == 2
//   // batch.columns[0].present == {1, 0}, batch.columns[0].dense == {72, 118,
//   // 0.5f}; batch.columns[1].present == {0, 0}
//   // batch.errors[1] == "line 2: modalities.notes: expected a string, got 7"
//   batch.Clear();  // next chunk of lines, same memory
//
// The record format (DESIGN.md, "Records in and out"):
//   {"id": "p-0001", "modalities": {"vitals": [72.0, ...], "notes": "pt alert",
//    "xray": null}, "label": "stable"}
// A modality absent from `modalities` or null is missing: a normal state, not
// an error. Other top-level keys are ignored.
#ifndef LATEFUSE_CORE_RECORDS_H_
#define LATEFUSE_CORE_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace latefuse {

// Doubles below this magnitude round to a finite float32 (at most FLT_MAX);
// from here on (FLT_MAX plus half an ulp) they round to infinity. Comparing
// with this rather than with FLT_MAX itself accepts "3.4028235e38", which is
// how FLT_MAX prints at float32 precision (numpy, printf("%g")).
inline constexpr double kFloat32Overflow = 0x1.ffffffp127;

// How a modality's value is written in a record.
enum class RecordInputKind {
  kDense,  // a list of exactly `width` numbers, stored as float32
  kText,   // a UTF-8 string
  kBytes,  // a base64 string (standard alphabet, padding optional), decoded
};

// What the parser needs to know about one modality of the pipeline. The engine
// fills these from the pipeline config, which has already checked them
// (unique non-empty names, positive dense widths).
struct RecordModalitySpec {
  std::string name;
  RecordInputKind kind = RecordInputKind::kDense;
  std::size_t width = 0;  // dense only: the number of values per row
};

// The values of one modality over the rows of a batch.
struct InputColumn {
  // [rows]: 1 when the modality is present in that row.
  std::vector<std::uint8_t> present;
  // Dense: `width` values per PRESENT row, in row order (row-major
  // [present rows, width]).
  std::vector<float> dense;
  // Text: the UTF-8 string; bytes: the decoded bytes. One per PRESENT row, in
  // row order.
  std::vector<std::string> items;
};

// One batch of input lines, column-wise. Every per-row vector holds exactly
// `rows` entries; a column's `dense` and `items` hold entries for its present
// rows only.
struct InputBatch {
  std::size_t rows = 0;
  std::vector<std::string> ids;         // [rows]; "" when no usable id
  std::vector<std::uint8_t> has_id;     // [rows]
  std::vector<std::string> labels;      // [rows]; "" when absent, null or bad
  std::vector<std::uint8_t> has_label;  // [rows]
  std::vector<std::string> errors;      // [rows]; "" = the line parsed fine
  std::vector<InputColumn> columns;     // one per modality, spec order

  // Empties the batch (rows = 0) and keeps the vectors' capacity and the
  // number of columns, so a reader can refill it chunk after chunk.
  void Clear();
};

// How a RecordParser reads lines. Both give the same batch for every line,
// bad lines and their messages included.
enum class RecordParseMode {
  // A hand parser reads plain lines (strings without escapes, numbers that
  // convert exactly, nothing wrong) straight into the batch without building
  // a simdjson DOM (1.8-2.7x faster, bench/records_bench); every other line
  // goes to simdjson.
  kFast,
  // simdjson for every line: what tests and fuzzers compare kFast with.
  kGeneral,
};

// Parses input lines into an InputBatch. Holds a simdjson parser and scratch
// space that are reused from line to line, so steady-state parsing allocates
// only when the batch's vectors grow (and for strings longer than the small
// string buffer). Not thread-safe: use one parser per thread.
class RecordParser {
 public:
  explicit RecordParser(std::vector<RecordModalitySpec> modalities,
                        RecordParseMode mode = RecordParseMode::kFast);
  ~RecordParser();
  RecordParser(RecordParser&&) noexcept;
  RecordParser& operator=(RecordParser&&) noexcept;
  RecordParser(const RecordParser&) = delete;
  RecordParser& operator=(const RecordParser&) = delete;

  // Parses one line (without its newline; a trailing '\r' is fine) into the
  // next row of `batch`, giving `batch.columns` one column per modality if it
  // has a different number. Never fails: a bad line becomes a row whose
  // errors[row] says why, in the form `line N: <key path>: <problem>`, e.g.
  //   line 3: modalities.vitals[4]: expected a number, got "abc"
  // A bad row has no modality present and no label; its id is kept when one
  // could still be read (even from a line that is not valid JSON, when the id
  // comes before the fault). `line_number` is 1-based and only used in
  // messages.
  void Append(std::string_view line, std::size_t line_number,
              InputBatch& batch);

  const std::vector<RecordModalitySpec>& modalities() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The line of `text` that starts at `at`, without its '\n' and a '\r' before
// it; moves `at` past it. Call while at < text.size(): a text that ends with
// '\n' has no empty last line.
std::string_view NextLine(std::string_view text, std::size_t& at);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_RECORDS_H_
