// How `latefuse eval` shows its results: a self-contained HTML report (inline
// CSS and SVG charts, no script, nothing fetched) and a summary table for the
// terminal.
//
//   ASSIGN_OR_RETURN(EvalResult result, Evaluate(*pipeline, options));
//   WriteText(dir / "report.html", ReportHtml(result));
//   std::cout << FormatEvalSummary(result);
//
// The report's charts: a metric (ROC-AUC, accuracy) per simulated availability
// pattern with its bootstrap interval, the reliability diagram of the
// pipeline as given and of each modality alone, and each modality's
// contribution (the paired change in ROC-AUC and log loss when it is
// masked); then every number as tables.
#ifndef LATEFUSE_CORE_EVAL_REPORT_H_
#define LATEFUSE_CORE_EVAL_REPORT_H_

#include <string>

#include "core/eval.h"

namespace latefuse {

// The HTML page, one string.
std::string ReportHtml(const EvalResult& result);

// The terminal summary: every set's rows, coverage and metrics (accuracy and
// ROC-AUC with their intervals), and each modality's contribution.
std::string FormatEvalSummary(const EvalResult& result);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_EVAL_REPORT_H_
