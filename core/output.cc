#include "core/output.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/json_text.h"

namespace latefuse {
namespace {

// What a section's stores may reach past the text it asked room for:
// WriteShortestDouble's (its room past its longest text is less) and
// QuotedNames' block copies (under 16 bytes).
constexpr std::size_t kSlack = kShortestDoubleRoom;

// The most text of "prediction": x, "variance": v.
constexpr std::size_t kPredictionBound = 32 + 2 * kShortestDoubleMaxSize;

// Writes a string literal: a copy of a constant length, a few moves.
template <std::size_t N>
char* Put(const char (&text)[N], char* out) {
  std::memcpy(out, text, N - 1);
  return out + N - 1;
}

// "prediction": x, and "variance": v unless v (a regression row's second
// value) is NaN, i.e. not reported: at most kPredictionBound bytes.
char* WritePrediction(const double* values, char* out) {
  out = Put("\"prediction\": ", out);
  out = WriteShortestDouble(values[0], out);
  if (!std::isnan(values[1])) {
    out = Put(", \"variance\": ", out);
    out = WriteShortestDouble(values[1], out);
  }
  return out;
}

std::vector<std::string> ModalityNames(const PipelineConfig& config) {
  std::vector<std::string> names;
  for (const ModalityConfig& m : config.modalities) names.push_back(m.name);
  return names;
}

}  // namespace

namespace output_internal {

QuotedNames::QuotedNames(const std::vector<std::string>& names) {
  begin_.push_back(0);
  for (const std::string& name : names) {
    text_ += ", ";
    AppendJsonString(name, text_);
    text_ += ": ";
    const std::size_t size = text_.size() - begin_.back();
    max_key_ = std::max(max_key_, size);
    total_ += size;
    text_.append(kPadding, '\0');
    begin_.push_back(text_.size());
  }
}

}  // namespace output_internal

// Room(p, n) makes `out` writable from p for n bytes of text and kSlack
// past them, growing it (zero-filled) when it is shorter; Finish(p) trims it
// to the text before p. A record asks once for its likely size first, so
// that the later sections' calls only compare.
class RecordWriter::Sink {
 public:
  explicit Sink(std::string& out) : out_(out) {}

  char* End() { return out_.data() + out_.size(); }

  char* Room(char* p, std::size_t n) {
    const auto at = static_cast<std::size_t>(p - out_.data());
    if (out_.size() - at < n + kSlack) [[unlikely]]
      Grow(at + n + kSlack);
    return out_.data() + at;
  }

  void Finish(char* p) {
    out_.resize(static_cast<std::size_t>(p - out_.data()));
  }

 private:
  void Grow(std::size_t size);

  std::string& out_;
};

// Out of line (GCC would inline the string's growth into every Room): the
// check is all that a record's later sections run.
[[gnu::noinline]] void RecordWriter::Sink::Grow(std::size_t size) {
  out_.resize(size);
}

const char* RowStatusName(RowStatus status) {
  switch (status) {
    case RowStatus::kOk:
      return "ok";
    case RowStatus::kAbstain:
      return "abstain";
    case RowStatus::kError:
      return "error";
  }
  return "error";
}

RecordWriter::RecordWriter(const PipelineConfig& config,
                           const OutputOptions& options)
    : config_(config),
      options_(options),
      classes_(config.classes),
      modalities_(ModalityNames(config)) {
  const std::size_t K = config.modalities.size();
  distribution_bound_ =
      2 + classes_.total() + config.classes.size() * kShortestDoubleMaxSize;
  const bool regression = config.task == Task::kRegression;
  // The room Append's sections ask for on an ok row with each modality
  // used and none failed, in order: head (without the id), label and
  // values, ", ", lists, per-modality, weights, "}\n".
  const std::size_t values =
      regression ? 2 + kPredictionBound : distribution_bound_;
  record_bound_ = 32 +
                  (regression ? values : 32 + classes_.max_key() + values) + 2 +
                  64 + 2 * modalities_.total() + 2;
  if (options.per_modality)
    record_bound_ += 32 + K * (modalities_.max_key() + values);
  if (options.explain)
    record_bound_ += 32 + K * (modalities_.max_key() + kShortestDoubleMaxSize);
}

char* RecordWriter::WriteDistribution(const double* values, char* p) const {
  *p++ = '{';
  const std::size_t C = config_.classes.size();
  ShortestDecimal next = FindShortestDecimal(values[0]);
  for (std::size_t c = 0; c < C; ++c) {
    const ShortestDecimal decimal = next;
    if (c + 1 < C) next = FindShortestDecimal(values[c + 1]);
    p = classes_.WriteKey(c, c == 0, p);
    p = WriteShortestDecimal(decimal, p);
  }
  *p++ = '}';
  return p;
}

char* RecordWriter::WriteOutcome(const InputBatch& batch,
                                 const BatchResult& result, std::size_t row,
                                 Sink& sink, char* p) const {
  const std::size_t rows = result.rows;
  const std::size_t K = config_.modalities.size();
  const bool parsed = batch.errors[row].empty();
  // The two lists name each modality at most once.
  p = sink.Room(p, 64 + 2 * modalities_.total());
  // In pipeline order. A line that did not parse has none.
  p = Put("\"used\": [", p);
  bool first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.used[k * rows + row]) continue;
    p = modalities_.WriteItem(k, first, p);
    first = false;
  }
  p = Put("], \"missing\": [", p);
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (batch.columns[k].present[row]) continue;
    p = modalities_.WriteItem(k, first, p);
    first = false;
  }
  p = Put("], \"failed\": {", p);
  first = true;
  for (std::size_t k = 0; k < K && parsed; ++k) {
    if (!result.failed[k * rows + row]) continue;
    p = sink.Room(p, modalities_.max_key() +
                         JsonStringBound(result.failures[k].size()) + 1);
    p = modalities_.WriteKey(k, first, p);
    first = false;
    p = WriteJsonString(result.failures[k], p);
  }
  *p++ = '}';
  if (result.status[row] == RowStatus::kError) {
    p = sink.Room(p, 16 + JsonStringBound(result.errors[row].size()));
    p = Put(", \"error\": ", p);
    p = WriteJsonString(result.errors[row], p);
  }
  return p;
}

void RecordWriter::AppendOutcome(const InputBatch& batch,
                                 const BatchResult& result, std::size_t row,
                                 std::string& out) const {
  Sink sink(out);
  sink.Finish(WriteOutcome(batch, result, row, sink, sink.End()));
}

char* RecordWriter::WriteShadows(const BatchResult& result, std::size_t row,
                                 Sink& sink, char* p) const {
  const std::size_t rows = result.rows;
  const bool regression = config_.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config_);
  p = sink.Room(p, 16);
  p = Put(", \"shadow\": {", p);
  bool first = true;
  for (std::size_t k = 0; k < result.shadowed.size(); ++k) {
    const std::size_t at = k * rows + row;
    if (!result.shadow_answered[at] && !result.shadow_failed[at]) continue;
    if (result.shadow_failed[at]) {
      p = sink.Room(p, modalities_.max_key() + 16 +
                           JsonStringBound(result.shadow_failures[k].size()));
      p = modalities_.WriteKey(k, first, p);
      first = false;
      p = Put("{\"error\": ", p);
      p = WriteJsonString(result.shadow_failures[k], p);
      *p++ = '}';
      continue;
    }
    p = sink.Room(p, modalities_.max_key() + 64 +
                         (regression ? kPredictionBound : distribution_bound_) +
                         kShortestDoubleMaxSize);
    p = modalities_.WriteKey(k, first, p);
    first = false;
    const double* values = result.shadow_probabilities.data() + at * C;
    *p++ = '{';
    if (regression) {
      p = WritePrediction(values, p);
    } else {
      p = Put("\"probabilities\": ", p);
      p = WriteDistribution(values, p);
      // Compared only where the model answered too.
      if (!result.used[at]) {
        p = Put(", \"agree\": null", p);
      } else if (result.shadow_agree[at]) {
        p = Put(", \"agree\": true", p);
      } else {
        p = Put(", \"agree\": false", p);
      }
    }
    if (result.used[at]) {
      p = Put(", \"abs_diff\": ", p);
      p = WriteShortestDouble(result.shadow_abs_diff[at], p);
      *p++ = '}';
    } else {
      p = Put(", \"abs_diff\": null}", p);
    }
  }
  p = sink.Room(p, 1);
  *p++ = '}';
  return p;
}

void RecordWriter::Append(const InputBatch& batch, const BatchResult& result,
                          std::size_t row, std::string& out) const {
  const std::size_t rows = result.rows;
  const std::size_t K = config_.modalities.size();
  const bool regression = config_.task == Task::kRegression;
  const std::size_t C = ValuesPerRow(config_);
  const RowStatus status = result.status[row];
  const bool parsed = batch.errors[row].empty();
  const std::string& id = batch.ids[row];

  Sink sink(out);
  char* p = sink.Room(sink.End(), record_bound_ + JsonStringBound(id.size()));
  p = Put("{\"id\": ", p);
  p = batch.has_id[row] ? WriteJsonString(id, p) : Put("null", p);
  p = Put(", \"status\": \"", p);
  const char* const status_name = RowStatusName(status);
  const std::size_t status_size = std::strlen(status_name);
  std::memcpy(p, status_name, status_size);
  p += status_size;
  *p++ = '"';
  if (regression) {
    p = sink.Room(p, 2 + kPredictionBound);
    if (status == RowStatus::kOk) {
      p = Put(", ", p);
      p = WritePrediction(result.probabilities.data() + row * C, p);
    } else {
      p = Put(", \"prediction\": null", p);
    }
  } else if (status == RowStatus::kOk) {
    p = sink.Room(p, 32 + classes_.max_key() + distribution_bound_);
    const double* values = result.probabilities.data() + row * C;
    p = Put(", \"label\": ", p);
    p = classes_.WriteItem(ArgMax(values, C), true, p);
    p = Put(", \"probabilities\": ", p);
    p = WriteDistribution(values, p);
  } else {
    p = sink.Room(p, 64);
    p = Put(", \"label\": null, \"probabilities\": null", p);
  }

  p = sink.Room(p, 2);
  p = Put(", ", p);
  p = WriteOutcome(batch, result, row, sink, p);
  if (options_.per_modality && parsed) {
    p = sink.Room(p, 32);
    p = Put(", \"modalities\": {", p);
    bool first = true;
    for (std::size_t k = 0; k < K; ++k) {
      if (!result.used[k * rows + row]) continue;
      p = sink.Room(
          p, modalities_.max_key() +
                 (regression ? 2 + kPredictionBound : distribution_bound_));
      p = modalities_.WriteKey(k, first, p);
      first = false;
      const double* values =
          result.modality_probabilities.data() + (k * rows + row) * C;
      if (regression) {
        *p++ = '{';
        p = WritePrediction(values, p);
        *p++ = '}';
      } else {
        p = WriteDistribution(values, p);
      }
    }
    p = sink.Room(p, 1);
    *p++ = '}';
  }
  if (options_.explain && status == RowStatus::kOk &&
      !result.explanation.empty()) {
    p = sink.Room(p, 32 + K * (modalities_.max_key() + kShortestDoubleMaxSize));
    p = Put(", \"weights\": {", p);
    for (std::size_t k = 0; k < K; ++k) {
      p = modalities_.WriteKey(k, k == 0, p);
      p = WriteShortestDouble(result.explanation[row * K + k], p);
    }
    *p++ = '}';
  }
  if (!result.shadowed.empty() && parsed)
    p = WriteShadows(result, row, sink, p);
  p = sink.Room(p, 2);
  p = Put("}\n", p);
  sink.Finish(p);
}

}  // namespace latefuse
