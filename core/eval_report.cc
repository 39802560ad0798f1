#include "core/eval_report.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

// One colour per pattern size, and for the modalities' lines.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f",
                                    "#e15759", "#b07aa1", "#76b7b2",
                                    "#edc948", "#9c755f", "#ff9da7"};
constexpr std::size_t kPaletteSize = std::size(kPalette);

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Fixed(double v, int digits = 3) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "–";
}

std::string Signed(double v) {
  return std::isfinite(v) ? fmt::format("{:+.3f}", v) : "–";
}

std::string Percent(std::size_t part, std::size_t whole) {
  return whole == 0 ? "–"
                    : fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) /
                                                 static_cast<double>(whole));
}

std::string WithInterval(double v, const Interval& ci, bool sign = false) {
  const std::string value = sign ? Signed(v) : Fixed(v);
  if (!std::isfinite(ci.low)) return value;
  return sign ? fmt::format("{} [{:+.3f}, {:+.3f}]", value, ci.low, ci.high)
              : fmt::format("{} [{:.3f}, {:.3f}]", value, ci.low, ci.high);
}

// ------------------------------------------------------------------ charts

// One horizontal bar: a value with its interval.
struct Bar {
  std::string label;
  std::string note;  // right of the plot, e.g. "n=312"
  double value;
  Interval ci;
  const char* colour;
};

// Horizontal bars from `origin` on an axis [low, high], with interval
// whiskers and an optional dashed reference line.
std::string BarChart(const std::string& title, const std::vector<Bar>& bars,
                     double low, double high, double origin,
                     std::optional<std::pair<double, std::string>> reference,
                     const std::string& legend) {
  constexpr double kPlotWidth = 320, kNoteWidth = 70;
  constexpr double kRow = 18, kTop = 30, kAxis = 34;
  // Room for the longest label at about 6.5 px a character (11 px text).
  std::size_t longest = 0;
  for (const Bar& bar : bars) longest = std::max(longest, bar.label.size());
  const double label_width =
      std::max(120.0, 6.5 * static_cast<double>(longest) + 12.0);
  const double height = kTop + kRow * static_cast<double>(bars.size()) + kAxis;
  const double width = label_width + kPlotWidth + kNoteWidth;
  auto x = [&](double v) {
    return label_width +
           kPlotWidth * (std::clamp(v, low, high) - low) / (high - low);
  };
  std::string svg = fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" role=\"img\" "
      "aria-label=\"{2}\">\n<text class=\"title\" x=\"0\" "
      "y=\"16\">{2}</text>\n",
      width, height, Escape(title));
  for (int t = 0; t <= 5; ++t) {
    const double v = low + (high - low) * t / 5.0;
    absl::StrAppend(
        &svg, fmt::format(
                  "<line class=\"grid\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" "
                  "y1=\"{1}\" y2=\"{2}\"/>\n<text class=\"tick\" "
                  "x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                  x(v), kTop - 4, height - kAxis + 4, height - kAxis + 18,
                  fmt::format("{:.2f}", v)));
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& bar = bars[i];
    const double y = kTop + kRow * static_cast<double>(i);
    absl::StrAppend(&svg,
                    fmt::format("<text class=\"label\" x=\"{}\" y=\"{}\" "
                                "text-anchor=\"end\">{}</text>\n",
                                label_width - 6, y + 13, Escape(bar.label)));
    if (std::isfinite(bar.value)) {
      const double a = x(std::min(origin, bar.value));
      const double b = x(std::max(origin, bar.value));
      absl::StrAppend(
          &svg,
          fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" "
                      "height=\"{}\" fill=\"{}\"><title>{}: {}</title>"
                      "</rect>\n",
                      a, y + 3, std::max(b - a, 1.0), kRow - 6, bar.colour,
                      Escape(bar.label), WithInterval(bar.value, bar.ci)));
    }
    if (std::isfinite(bar.ci.low)) {
      const double mid = y + kRow / 2;
      absl::StrAppend(
          &svg, fmt::format(
                    "<path class=\"whisker\" d=\"M{0:.1f} {2}H{1:.1f}M{0:.1f} "
                    "{3}V{4}M{1:.1f} {3}V{4}\"/>\n",
                    x(bar.ci.low), x(bar.ci.high), mid, mid - 4, mid + 4));
    }
    absl::StrAppend(&svg, fmt::format("<text class=\"note\" x=\"{}\" y=\"{}\">"
                                      "{}</text>\n",
                                      label_width + kPlotWidth + 6, y + 13,
                                      Escape(bar.note)));
  }
  if (reference && reference->first >= low && reference->first <= high) {
    absl::StrAppend(
        &svg, fmt::format("<line class=\"reference\" x1=\"{0:.1f}\" "
                          "x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\"/>\n<text "
                          "class=\"tick\" x=\"{0:.1f}\" y=\"{1}\" "
                          "text-anchor=\"middle\">{3}</text>\n",
                          x(reference->first), kTop - 6, height - kAxis + 4,
                          Escape(reference->second)));
  }
  absl::StrAppend(&svg, fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" "
                                    "text-anchor=\"middle\">{}</text>\n",
                                    label_width + kPlotWidth / 2, height - 2,
                                    Escape(legend)));
  return svg + "</svg>\n";
}

// An axis [low, high] around every finite value and interval end: rounded
// out to tenths, within [0, 1] for metrics in it.
std::pair<double, double> AxisFor(const std::vector<Bar>& bars, bool unit) {
  double low = unit ? 1.0 : 0.0;
  double high = unit ? 0.0 : 0.0;
  for (const Bar& bar : bars) {
    for (double v : {bar.value, bar.ci.low, bar.ci.high}) {
      if (!std::isfinite(v)) continue;
      low = std::min(low, v);
      high = std::max(high, v);
    }
  }
  if (unit) {
    low = std::max(0.0, std::floor(low * 10.0 - 0.5) / 10.0);
    high = std::min(1.0, std::ceil(high * 10.0 + 0.5) / 10.0);
    if (high <= low) return {0.0, 1.0};
    return {low, high};
  }
  // Deltas: symmetric around 0.
  const double reach = std::max({std::abs(low), std::abs(high), 1e-3}) * 1.1;
  return {-reach, reach};
}

std::string PatternChart(const EvalResult& result, MetricIndex metric,
                         const std::string& title) {
  std::vector<Bar> bars;
  for (const Evaluation& e : result.patterns) {
    bars.push_back({PatternName(result, e.mask), fmt::format("n={}", e.scored),
                    e.metrics[metric], e.intervals[metric],
                    kPalette[(std::popcount(e.mask) - 1) % kPaletteSize]});
  }
  const auto [low, high] = AxisFor(bars, true);
  std::string svg = BarChart(
      title, bars, low, high, low,
      std::make_pair(result.as_given.metrics[metric], std::string("as given")),
      "whiskers: bootstrap interval; dashed line: the pipeline as given");
  // A key of the colours by pattern size.
  std::string key = "<p class=\"key\">Bar colour = modalities in the pattern: ";
  for (std::size_t s = 1; s <= result.modalities.size(); ++s) {
    absl::StrAppend(
        &key, fmt::format("<span class=\"swatch\" style=\"background:{}\">"
                          "</span>{} ",
                          kPalette[(s - 1) % kPaletteSize], s));
  }
  return svg + key + "</p>\n";
}

std::string ContributionChart(const EvalResult& result, MetricIndex metric,
                              const std::string& title) {
  std::vector<Bar> bars;
  for (const Contribution& c : result.contributions) {
    // Shown as improvement: positive = the modality helps.
    const double sign = kHigherIsBetter[metric] ? 1.0 : -1.0;
    Interval ci = c.delta[metric];
    if (!kHigherIsBetter[metric]) ci = {-ci.high, -ci.low};
    bars.push_back({result.modalities[c.modality], fmt::format("n={}", c.rows),
                    sign * (c.with[metric] - c.without[metric]), ci,
                    kPalette[c.modality % kPaletteSize]});
  }
  const auto [low, high] = AxisFor(bars, false);
  return BarChart(title, bars, low, high, 0.0, std::nullopt,
                  "> 0: the pipeline does better with the modality than with "
                  "it masked");
}

std::string ReliabilityChart(const EvalResult& result) {
  constexpr double kLeft = 44, kTop = 30, kSize = 300, kHist = 50;
  constexpr double kWidth = kLeft + kSize + 150;
  constexpr double kHeight = kTop + kSize + 30 + kHist + 20;
  auto x = [&](double v) { return kLeft + kSize * v; };
  auto y = [&](double v) { return kTop + kSize * (1.0 - v); };
  std::string svg = fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" role=\"img\" "
      "aria-label=\"Reliability diagram\">\n<text class=\"title\" x=\"0\" "
      "y=\"16\">Reliability diagram (top label, {2} bins)</text>\n",
      kWidth, kHeight, result.ece_bins);
  for (int t = 0; t <= 5; ++t) {
    const double v = t / 5.0;
    absl::StrAppend(
        &svg,
        fmt::format(
            "<line class=\"grid\" x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" "
            "y2=\"{2:.1f}\"/><line class=\"grid\" x1=\"{3:.1f}\" "
            "x2=\"{3:.1f}\" y1=\"{4}\" y2=\"{5}\"/>\n<text class=\"tick\" "
            "x=\"{6}\" y=\"{7:.1f}\" text-anchor=\"end\">{8:.1f}</text><text "
            "class=\"tick\" x=\"{3:.1f}\" y=\"{9}\" "
            "text-anchor=\"middle\">{8:.1f}</text>\n",
            kLeft, kLeft + kSize, y(v), x(v), kTop, kTop + kSize, kLeft - 4,
            y(v) + 4, v, kTop + kSize + 14));
  }
  absl::StrAppend(
      &svg,
      fmt::format("<line class=\"reference\" x1=\"{}\" y1=\"{}\" x2=\"{}\" "
                  "y2=\"{}\"/>\n<text class=\"tick\" x=\"{}\" y=\"{}\" "
                  "text-anchor=\"middle\">mean confidence</text>\n<text "
                  "class=\"tick\" transform=\"translate(10 {}) rotate(-90)\" "
                  "text-anchor=\"middle\">accuracy</text>\n",
                  x(0), y(0), x(1), y(1), kLeft + kSize / 2, kTop + kSize + 28,
                  kTop + kSize / 2));
  auto curve = [&](const std::vector<ReliabilityBin>& bins, const char* colour,
                   double stroke, bool points) {
    std::string path;
    std::string dots;
    for (const ReliabilityBin& bin : bins) {
      if (bin.weight == 0.0) continue;
      const double cx = x(bin.confidence / bin.weight);
      const double cy = y(bin.correct / bin.weight);
      absl::StrAppend(&path, path.empty() ? "M" : "L",
                      fmt::format("{:.1f} {:.1f}", cx, cy));
      if (points) {
        absl::StrAppend(
            &dots,
            fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" "
                        "fill=\"{}\"><title>{:.0f} rows: confidence "
                        "{:.3f}, accuracy {:.3f}</title></circle>\n",
                        cx, cy, colour, bin.weight, bin.confidence / bin.weight,
                        bin.correct / bin.weight));
      }
    }
    if (path.empty()) return std::string();
    return fmt::format(
               "<path d=\"{}\" fill=\"none\" stroke=\"{}\" "
               "stroke-width=\"{}\"/>\n",
               path, colour, stroke) +
           dots;
  };
  std::string legend;
  double legend_y = kTop + 10;
  auto key = [&](const std::string& name, const char* colour, double stroke) {
    absl::StrAppend(
        &legend,
        fmt::format(
            "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" "
            "stroke=\"{3}\" stroke-width=\"{4}\"/><text class=\"label\" "
            "x=\"{5}\" y=\"{6}\">{7}</text>\n",
            kLeft + kSize + 14, kLeft + kSize + 34, legend_y, colour, stroke,
            kLeft + kSize + 40, legend_y + 4, Escape(name)));
    legend_y += 18;
  };
  for (std::size_t k = 0; k < result.modalities.size(); ++k) {
    const char* colour = kPalette[(k + 1) % kPaletteSize];
    absl::StrAppend(&svg,
                    curve(result.alone_reliability[k], colour, 1.2, false));
    key(result.modalities[k] + " alone", colour, 1.2);
  }
  absl::StrAppend(&svg, curve(result.reliability, "#222", 2.5, true));
  key("as given", "#222", 2.5);
  // How many rows each bin holds, as given.
  double most = 0.0;
  for (const ReliabilityBin& bin : result.reliability)
    most = std::max(most, bin.weight);
  const double base = kTop + kSize + 30 + kHist;
  const double step = kSize / static_cast<double>(result.reliability.size());
  for (std::size_t b = 0; b < result.reliability.size() && most > 0; ++b) {
    const double h = kHist * result.reliability[b].weight / most;
    absl::StrAppend(
        &svg, fmt::format("<rect class=\"hist\" x=\"{:.1f}\" y=\"{:.1f}\" "
                          "width=\"{:.1f}\" height=\"{:.1f}\"><title>{:.0f} "
                          "rows</title></rect>\n",
                          kLeft + step * static_cast<double>(b) + 1, base - h,
                          step - 2, h, result.reliability[b].weight));
  }
  absl::StrAppend(&svg,
                  fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\">rows per "
                              "bin, as given</text>\n",
                              kLeft + kSize + 8, base - 4));
  return svg + legend + "</svg>\n";
}

// ------------------------------------------------------------------ tables

std::string MetricHeader(const std::string& first, bool counts) {
  std::string row = "<tr><th>" + first + "</th>";
  if (counts) row += "<th>rows</th><th>scored</th><th>coverage</th>";
  for (std::string_view name : kMetricNames)
    absl::StrAppend(&row, "<th>", std::string(name), "</th>");
  return row + "</tr>\n";
}

std::string SetRow(const std::string& name, const Evaluation& e) {
  std::string row =
      fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                  Escape(name), e.rows, e.scored, Percent(e.scored, e.rows));
  for (std::size_t m = 0; m < kMetricCount; ++m) {
    absl::StrAppend(&row, "<td>", WithInterval(e.metrics[m], e.intervals[m]),
                    "</td>");
  }
  return row + "</tr>\n";
}

std::string SetTable(const EvalResult& result, const std::string& first,
                     const std::vector<Evaluation>& sets) {
  std::string table = "<table>\n" + MetricHeader(first, true);
  for (const Evaluation& e : sets)
    table += SetRow(PatternName(result, e.mask), e);
  return table + "</table>\n";
}

constexpr const char* kStyle = R"(
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 24px; color: #222; background: #fff; max-width: 1280px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
p.meta { margin: 2px 0; color: #444; }
p.note { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.charts > div { flex: 0 0 auto; }
svg.chart { font-size: 11px; display: block; }
svg .title { font-size: 13px; font-weight: 600; }
svg .label { fill: #333; }
svg .note, svg .tick { fill: #666; }
svg .grid { stroke: #eee; }
svg .whisker { stroke: #222; stroke-width: 1.2; fill: none; }
svg .reference { stroke: #888; stroke-dasharray: 4 3; }
svg .hist { fill: #bbb; }
p.key { font-size: 12px; color: #555; margin: 4px 0 0; }
.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; }
ul.warnings { color: #a33; }
)";

}  // namespace

std::string ReportHtml(const EvalResult& result) {
  std::string counts;
  for (std::size_t c = 0; c < result.classes.size(); ++c) {
    absl::StrAppend(&counts, c == 0 ? "" : ", ", Escape(result.classes[c]), " ",
                    result.class_counts[c]);
  }
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
      "charset=\"utf-8\">\n<title>latefuse eval: {0}</title>\n<style>{1}"
      "</style>\n</head>\n<body>\n<h1>latefuse eval: pipeline '{0}'</h1>\n"
      "<p class=\"meta\">{2} ({3}), combiner {4}; data {5}: {6} rows "
      "({7}).</p>\n"
      "<p class=\"meta\">Policy: min_modalities {8}, on_insufficient {9}. "
      "Intervals: {10:.0f}% percentile bootstrap, {11} replicates, seed {12}."
      "</p>\n<p class=\"note\">Metrics are over the scored rows: those neither "
      "abstained (fewer usable modalities than min_modalities) nor failed; "
      "coverage = scored / rows. Simulated patterns mask, on the rows where "
      "every modality of the pattern is present, all the others.</p>\n",
      Escape(result.pipeline_name), kStyle, Escape(result.pipeline_file),
      Escape(absl::StrJoin(result.modalities, ", ")), Escape(result.combiner),
      Escape(result.data_file), result.rows, counts, result.min_modalities,
      result.on_insufficient, 100.0 * result.bootstrap.confidence,
      result.bootstrap.replicates, result.bootstrap.seed);

  html += "<h2>The pipeline as given, and each modality alone</h2>\n<table>\n" +
          MetricHeader("", true) + SetRow("as given", result.as_given);
  for (std::size_t k = 0; k < result.alone.size(); ++k) {
    html += SetRow(result.modalities[k] + " alone", result.alone[k]);
  }
  html += "</table>\n";

  html +=
      "<h2>Degradation under missing modalities</h2>\n<div class=\"charts\">\n";
  html +=
      "<div>" +
      PatternChart(result, kRocAuc,
                   "ROC-AUC per availability pattern (simulated)") +
      "</div>\n<div>" + ReliabilityChart(result) + "</div>\n<div>" +
      ContributionChart(result, kRocAuc,
                        "Contribution: ROC-AUC gained with each modality") +
      ContributionChart(result, kLogLoss,
                        "Contribution: log loss reduced with each modality") +
      "</div>\n<div>" +
      PatternChart(result, kAccuracy,
                   "Accuracy per availability pattern (simulated)") +
      "</div>\n</div>\n";

  html += fmt::format(
      "<h2>Availability patterns, simulated</h2>\n<p "
      "class=\"note\">Patterns: {}.</p>\n",
      Escape(result.patterns_chosen));
  html += SetTable(result, "pattern", result.patterns);
  html += "<h2>Patterns as they occur in the data</h2>\n";
  html += SetTable(result, "present in the records", result.observed);

  html +=
      "<h2>Contributions</h2>\n<p class=\"note\">On the rows where the "
      "modality was used and the others still meet min_modalities: the "
      "pipeline as given minus the same rows with the modality masked (paired "
      "bootstrap).</p>\n<table>\n<tr><th>modality</th><th>rows</th>";
  for (std::string_view name : kMetricNames)
    absl::StrAppend(&html, "<th>&Delta; ", std::string(name), "</th>");
  html += "</tr>\n";
  for (const Contribution& c : result.contributions) {
    html += fmt::format("<tr><td>{}</td><td>{}</td>",
                        Escape(result.modalities[c.modality]), c.rows);
    for (std::size_t m = 0; m < kMetricCount; ++m) {
      absl::StrAppend(&html, "<td>",
                      WithInterval(c.with[m] - c.without[m], c.delta[m], true),
                      "</td>");
    }
    html += "</tr>\n";
  }
  html += "</table>\n";
  if (!result.warnings.empty()) {
    html += "<h2>Warnings</h2>\n<ul class=\"warnings\">\n";
    for (const std::string& w : result.warnings)
      html += "<li>" + Escape(w) + "</li>\n";
    html += "</ul>\n";
  }
  html += fmt::format(
      "<p class=\"note\">Brier: {}. ROC-AUC: {}. ECE: top-label, {} "
      "equal-width bins. Made by latefuse eval in {:.2f} s.</p>\n</body>\n"
      "</html>\n",
      result.classes.size() == 2
          ? "mean of (p(" + Escape(result.classes[1]) + ") − y)²"
          : "mean over rows of the sum over classes of (p_c − y_c)²",
      result.classes.size() == 2 ? "binary" : "one-vs-rest, macro average",
      result.ece_bins, result.seconds_total);
  return html;
}

std::string FormatEvalSummary(const EvalResult& result) {
  std::size_t width = 24;
  auto name_of = [&](const std::string& kind, std::uint64_t mask) {
    return kind + PatternName(result, mask);
  };
  for (const Evaluation& e : result.patterns)
    width = std::max(width, name_of("", e.mask).size() + 2);
  for (const Evaluation& e : result.observed)
    width = std::max(width, name_of("", e.mask).size() + 2);
  const std::string header = fmt::format(
      "{:<{}} {:>6} {:>7}  {:<21}  {:>8}  {:>6}  {:<21}  {:>6}\n", "", width,
      "rows", "scored", "accuracy", "log loss", "brier", "roc_auc", "ece");
  auto line = [&](const std::string& name, const Evaluation& e) {
    return fmt::format(
        "{:<{}} {:>6} {:>7}  {:<21}  {:>8}  {:>6}  {:<21}  {:>6}\n", name,
        width, e.rows, Percent(e.scored, e.rows),
        WithInterval(e.metrics[kAccuracy], e.intervals[kAccuracy]),
        Fixed(e.metrics[kLogLoss]), Fixed(e.metrics[kBrier]),
        WithInterval(e.metrics[kRocAuc], e.intervals[kRocAuc]),
        Fixed(e.metrics[kEce]));
  };
  std::string out = fmt::format(
      "latefuse eval: pipeline '{}', {} rows, {:.2f} s (models {:.2f} s); "
      "[{:.0f}% bootstrap interval, {} replicates, seed {}]\n\n",
      result.pipeline_name, result.rows, result.seconds_total,
      result.seconds_models, 100.0 * result.bootstrap.confidence,
      result.bootstrap.replicates, result.bootstrap.seed);
  out += header + line("as given", result.as_given);
  for (std::size_t k = 0; k < result.alone.size(); ++k)
    out += line(result.modalities[k] + " alone", result.alone[k]);
  out += "\nsimulated patterns (the others masked)\n";
  for (const Evaluation& e : result.patterns)
    out += line("  " + PatternName(result, e.mask), e);
  out += "\npatterns as observed in the data\n";
  for (const Evaluation& e : result.observed)
    out += line("  " + PatternName(result, e.mask), e);
  out += fmt::format(
      "\ncontribution: as given minus the modality masked (paired rows)\n"
      "{:<{}} {:>6}  {:<24}  {:>9}  {}\n",
      "", width, "rows", "accuracy", "log loss", "roc_auc");
  for (const Contribution& c : result.contributions) {
    out += fmt::format("{:<{}} {:>6}  {:<24}  {:>9}  {}\n",
                       "  " + result.modalities[c.modality], width, c.rows,
                       WithInterval(c.with[kAccuracy] - c.without[kAccuracy],
                                    c.delta[kAccuracy], true),
                       Signed(c.with[kLogLoss] - c.without[kLogLoss]),
                       WithInterval(c.with[kRocAuc] - c.without[kRocAuc],
                                    c.delta[kRocAuc], true));
  }
  for (const std::string& w : result.warnings)
    out += fmt::format("warning: {}\n", w);
  return out;
}

}  // namespace latefuse
