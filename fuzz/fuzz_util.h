// What the libFuzzer targets of fuzz/ share: the pipelines they parse requests
// for, and the checks that make a wrong answer (not only a crash) a finding.
//
//   const PipelineConfig& config = FuzzPipeline(FuzzTask::kClassification);
//   RecordParser parser(Engine::RecordSpecs(config));
//   InputBatch batch;
//   parser.Append(line, 1, batch);
//   CheckBatch(config, batch);      // aborts, naming the broken invariant
//   std::string out;
//   AppendEchoRecords(config, batch, out);
//   CheckJsonLines(out);            // every output line is valid JSON
#ifndef LATEFUSE_FUZZ_FUZZ_UTIL_H_
#define LATEFUSE_FUZZ_FUZZ_UTIL_H_

#include <string>
#include <string_view>

#include "core/engine.h"
#include "core/oip.h"
#include "core/pipeline_config.h"
#include "core/records.h"

namespace latefuse::fuzz {

enum class FuzzTask { kClassification, kRegression };

// A pipeline with one modality of each input kind (dense "vitals" of 3
// values, text "notes", bytes "scan"), parsed once; no plugin is loaded.
const PipelineConfig& FuzzPipeline(FuzzTask task);

// Aborts with `what` on stderr unless `ok`: a finding for libFuzzer.
void Check(bool ok, std::string_view what);

// The InputBatch contract of core/records.h: every per-row vector has `rows`
// entries, each column holds values for its present rows only, a bad row has
// an error and nothing present.
void CheckBatch(const PipelineConfig& config, const InputBatch& batch);

// Appends the output record of every row of `batch` as `latefuse run` writes
// it, for an engine whose models all answered a uniform distribution: the
// ids, errors and labels the parser read pass through the writer.
void AppendEchoRecords(const PipelineConfig& config, const InputBatch& batch,
                       std::string& out);

// As AppendEchoRecords, the infer response of `batch` for `request`.
void AppendEchoResponse(const PipelineConfig& config, const OipRequest& request,
                        const InputBatch& batch, std::string& out);

// Every line of `text` is one valid JSON document (UTF-8 included).
void CheckJsonLines(std::string_view text);

}  // namespace latefuse::fuzz

#endif  // LATEFUSE_FUZZ_FUZZ_UTIL_H_
