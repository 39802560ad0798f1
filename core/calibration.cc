#include "core/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kFormat = "latefuse.calibration/v1";

// Probabilities are floored (temperature) or clamped (Platt) by this before
// log / logit, so that a model's exact 0 or 1 stays finite.
constexpr double kProbabilityFloor = 1e-12;

// The search interval of 1/T (and so of T) for temperature scaling.
constexpr double kMinInverseTemperature = 1e-2;
constexpr double kMaxInverseTemperature = 1e2;

// scikit-learn's _make_unique merges sorted x values closer than
// np.finfo(np.float64).resolution to the first of their run.
constexpr double kIsotonicTieResolution = 1e-15;

// ---------------------------------------------------------------------------
// Elementwise maps shared by Fit and Apply.

double Sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// log(1 + exp(-x)) without overflow.
double LogOnePlusExpNeg(double x) {
  return x >= 0.0 ? std::log1p(std::exp(-x)) : -x + std::log1p(std::exp(x));
}

// logit(clamp(p)), written as scipy.special.logit so the fit sees the same
// numbers as the scikit-learn reference.
double PlattLogit(double p) {
  p = std::clamp(p, kProbabilityFloor, 1.0 - kProbabilityFloor);
  return std::log(p / (1.0 - p));
}

double FlooredLog(double p) { return std::log(std::max(p, kProbabilityFloor)); }

// p'_c = q_c / sum q, or uniform when the sum is 0.
void Renormalise(double* row, std::size_t classes) {
  double sum = 0.0;
  for (std::size_t c = 0; c < classes; ++c) sum += row[c];
  if (sum == 0.0) {
    std::fill(row, row + classes, 1.0 / static_cast<double>(classes));
    return;
  }
  for (std::size_t c = 0; c < classes; ++c) row[c] /= sum;
}

// scipy's interp1d(kind="linear") on thresholds (x, y), at v clipped to
// [x.front(), x.back()] as IsotonicRegression(out_of_bounds="clip") does.
double Interpolate(const std::vector<double>& x, const std::vector<double>& y,
                   double v) {
  if (x.size() == 1) return y[0];
  v = std::clamp(v, x.front(), x.back());
  std::size_t hi = static_cast<std::size_t>(
      std::lower_bound(x.begin(), x.end(), v) - x.begin());
  hi = std::clamp<std::size_t>(hi, 1, x.size() - 1);
  const std::size_t lo = hi - 1;
  const double slope = (y[hi] - y[lo]) / (x[hi] - x[lo]);
  return slope * (v - x[lo]) + y[lo];
}

// ---------------------------------------------------------------------------
// Fitting.

// Mean NLL of softmax(beta * z) and its first two derivatives in beta, where
// z = log(max(p, floor)). The NLL is convex in beta: h is a mean variance.
struct TemperatureObjective {
  double g = 0.0;  // d NLL / d beta: mean of (E_q[z] - z_label)
  double h = 0.0;  // d2 NLL / d beta2: mean of Var_q[z]
};

TemperatureObjective EvaluateTemperature(const std::vector<double>& z,
                                         const std::int32_t* labels,
                                         std::size_t rows, std::size_t classes,
                                         double beta) {
  TemperatureObjective out;
  std::vector<double> e(classes);
  for (std::size_t r = 0; r < rows; ++r) {
    const double* zr = z.data() + r * classes;
    double m = -std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < classes; ++c) m = std::max(m, beta * zr[c]);
    double sum = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      e[c] = std::exp(beta * zr[c] - m);
      sum += e[c];
    }
    double mean = 0.0;
    for (std::size_t c = 0; c < classes; ++c) mean += e[c] / sum * zr[c];
    double var = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      var += e[c] / sum * (zr[c] - mean) * (zr[c] - mean);
    }
    out.g += mean - zr[labels[r]];
    out.h += var;
  }
  out.g /= static_cast<double>(rows);
  out.h /= static_cast<double>(rows);
  return out;
}

// The NLL-minimising T: the root in beta = 1/T of the increasing derivative,
// by Newton's method safeguarded by a bracket (bisection in log beta when a
// Newton step leaves it).
double FitTemperature(const double* p, const std::int32_t* labels,
                      std::size_t rows, std::size_t classes) {
  std::vector<double> z(rows * classes);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = FlooredLog(p[i]);
  const bool any_signal = [&] {
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 1; c < classes; ++c) {
        if (z[r * classes + c] != z[r * classes]) return true;
      }
    }
    return false;
  }();
  if (!any_signal) return 1.0;  // every row uniform: T changes nothing

  double lo = kMinInverseTemperature;
  double hi = kMaxInverseTemperature;
  if (EvaluateTemperature(z, labels, rows, classes, lo).g >= 0.0) return 1 / lo;
  if (EvaluateTemperature(z, labels, rows, classes, hi).g <= 0.0) return 1 / hi;
  double beta = 1.0;
  for (int iteration = 0; iteration < 200; ++iteration) {
    const TemperatureObjective at =
        EvaluateTemperature(z, labels, rows, classes, beta);
    if (at.g == 0.0) break;
    (at.g < 0.0 ? lo : hi) = beta;
    double next = at.h > 0.0 ? beta - at.g / at.h : 0.0;
    if (!(next > lo && next < hi)) next = std::sqrt(lo * hi);
    const double step = next - beta;
    beta = next;
    if (std::abs(step) <= 1e-14 * beta || hi - lo <= 1e-15 * beta) break;
  }
  return 1.0 / beta;
}

// Platt's logistic fit of `positive` on f: (a, b) minimising the cross-entropy
// of sigmoid(a * f + b) against the smoothed targets, as scikit-learn's
// _sigmoid_calibration (which returns A = -a, B = -b) but solved to machine
// precision by Newton's method with a backtracking line search (Platt 2000;
// Lin, Lin and Weng 2007).
std::pair<double, double> FitPlatt(const std::vector<double>& f,
                                   const std::vector<bool>& positive) {
  const std::size_t n = f.size();
  const double prior1 =
      static_cast<double>(std::count(positive.begin(), positive.end(), true));
  const double prior0 = static_cast<double>(n) - prior1;
  const double target_pos = (prior1 + 1.0) / (prior1 + 2.0);
  const double target_neg = 1.0 / (prior0 + 2.0);
  auto target = [&](std::size_t i) {
    return positive[i] ? target_pos : target_neg;
  };
  auto objective = [&](double a, double b) {
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double x = a * f[i] + b;
      sum += LogOnePlusExpNeg(x) + (1.0 - target(i)) * x;
    }
    return sum;
  };

  double a = 0.0;
  double b = std::log((prior1 + 1.0) / (prior0 + 1.0));
  double value = objective(a, b);
  // Keeps the 2x2 system solvable when f is constant (Lin et al.'s sigma).
  constexpr double kRidge = 1e-12;
  for (int iteration = 0; iteration < 100; ++iteration) {
    double ga = 0.0, gb = 0.0, haa = kRidge, hab = 0.0, hbb = kRidge;
    for (std::size_t i = 0; i < n; ++i) {
      const double q = Sigmoid(a * f[i] + b);
      const double d = q - target(i);
      const double w = q * (1.0 - q);
      ga += d * f[i];
      gb += d;
      haa += w * f[i] * f[i];
      hab += w * f[i];
      hbb += w;
    }
    const double det = haa * hbb - hab * hab;
    if (!(det > 0.0)) break;
    const double da = -(hbb * ga - hab * gb) / det;
    const double db = -(haa * gb - hab * ga) / det;
    if (std::abs(da) <= 1e-12 * (1.0 + std::abs(a)) &&
        std::abs(db) <= 1e-12 * (1.0 + std::abs(b))) {
      // Quadratic convergence: this last step leaves rounding error only.
      a += da;
      b += db;
      break;
    }
    const double slope = ga * da + gb * db;  // < 0: a descent direction
    // Close to the optimum the decrease a step brings (about -slope / 2) is
    // below the rounding of the objective, so no line search can see it; the
    // Newton step is then taken whole, as the iteration converges
    // quadratically there.
    if (-slope <= 1e-10 * std::max(1.0, std::abs(value))) {
      a += da;
      b += db;
      value = objective(a, b);
      continue;
    }
    bool moved = false;
    for (double t = 1.0; t >= 1e-10; t /= 2) {
      const double candidate = objective(a + t * da, b + t * db);
      if (candidate < value + 1e-4 * t * slope) {
        a += t * da;
        b += t * db;
        value = candidate;
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
  return {a, b};
}

// IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(x, y) of
// scikit-learn, step by step; returns its (X_thresholds_, y_thresholds_).
std::pair<std::vector<double>, std::vector<double>> FitIsotonic(
    const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<std::size_t> order(x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
    return x[i] < x[j] || (x[i] == x[j] && y[i] < y[j]);
  });

  // _make_unique: runs of near-equal x become one point with the mean y.
  std::vector<double> ux, uy, uw;
  double run_x = x[order[0]], run_sum = 0.0, run_weight = 0.0;
  for (std::size_t i : order) {
    if (x[i] - run_x >= kIsotonicTieResolution) {
      ux.push_back(run_x);
      uy.push_back(run_sum / run_weight);
      uw.push_back(run_weight);
      run_x = x[i];
      run_sum = y[i];
      run_weight = 1.0;
    } else {
      run_sum += y[i];
      run_weight += 1.0;
    }
  }
  ux.push_back(run_x);
  uy.push_back(run_sum / run_weight);
  uw.push_back(run_weight);

  // _inplace_contiguous_isotonic_regression: pool adjacent violators. A block
  // [i..j] has target[i] == j and target[j] == i; uy[i], uw[i] hold its mean
  // and weight.
  const std::size_t n = uy.size();
  std::vector<std::size_t> target(n);
  std::iota(target.begin(), target.end(), std::size_t{0});
  std::size_t i = 0;
  while (i < n) {
    std::size_t k = target[i] + 1;
    if (k == n) break;
    if (uy[i] < uy[k]) {
      i = k;
      continue;
    }
    double sum_wy = uw[i] * uy[i];
    double sum_w = uw[i];
    while (true) {
      const double prev_y = uy[k];
      sum_wy += uw[k] * uy[k];
      sum_w += uw[k];
      k = target[k] + 1;
      if (k == n || prev_y < uy[k]) {
        uy[i] = sum_wy / sum_w;
        uw[i] = sum_w;
        target[i] = k - 1;
        target[k - 1] = i;
        if (i > 0)
          i = target[i - 1];  // backtrack: the pooled block may violate
        break;
      }
    }
  }
  for (i = 0; i < n;) {
    const std::size_t k = target[i] + 1;
    std::fill(uy.begin() + static_cast<std::ptrdiff_t>(i) + 1,
              uy.begin() + static_cast<std::ptrdiff_t>(k), uy[i]);
    i = k;
  }
  for (double& v : uy) v = std::clamp(v, 0.0, 1.0);

  // Drop interior points whose y equals both neighbours': they change nothing
  // in the interpolation.
  std::vector<double> tx, ty;
  for (std::size_t j = 0; j < n; ++j) {
    if (j == 0 || j + 1 == n || uy[j] != uy[j - 1] || uy[j] != uy[j + 1]) {
      tx.push_back(ux[j]);
      ty.push_back(uy[j]);
    }
  }
  return {std::move(tx), std::move(ty)};
}

// ---------------------------------------------------------------------------
// Reading latefuse.calibration/v1 files.

// Errors of one file: "calibration file 'x.json': <key>: <what>".
class FileErrors {
 public:
  explicit FileErrors(const fs::path& file) : file_(file.string()) {}

  absl::Status Key(std::string_view key, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("calibration file '", file_,
                                                   "': ", std::string(key),
                                                   ": ", std::string(what)));
  }
  absl::Status File(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("calibration file '", file_, "': ", std::string(what)));
  }
  const std::string& name() const { return file_; }

 private:
  std::string file_;
};

std::string Quoted(std::string_view s) { return Json(std::string(s)).dump(); }

std::string QuotedList(const std::vector<std::string>& items) {
  return Json(items).dump();
}

absl::StatusOr<double> ReadNumber(const FileErrors& errors, const Json& value,
                                  std::string_view key) {
  if (!value.is_number()) return errors.Key(key, "expected a number");
  const double v = value.get<double>();
  if (!std::isfinite(v)) return errors.Key(key, "expected a finite number");
  return v;
}

absl::StatusOr<std::vector<double>> ReadNumbers(const FileErrors& errors,
                                                const Json& value,
                                                std::string_view key) {
  if (!value.is_array()) return errors.Key(key, "expected an array of numbers");
  std::vector<double> out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    LATEFUSE_ASSIGN_OR_RETURN(
        double v, ReadNumber(errors, value[i],
                             absl::StrCat(std::string(key), "[", i, "]")));
    out.push_back(v);
  }
  return out;
}

// One class's Platt parameter: a number when binary, else element `c` of an
// array of C numbers.
absl::StatusOr<std::vector<double>> ReadPerClassNumbers(
    const FileErrors& errors, const Json& value, std::string_view key,
    std::size_t classes) {
  if (classes == 2) {
    if (!value.is_number()) {
      return errors.Key(key, "expected a number (binary classes)");
    }
    LATEFUSE_ASSIGN_OR_RETURN(double v, ReadNumber(errors, value, key));
    return std::vector<double>{v};
  }
  if (!value.is_array() || value.size() != classes) {
    return errors.Key(key, absl::StrCat("expected an array of ", classes,
                                        " numbers (one per class)"));
  }
  return ReadNumbers(errors, value, key);
}

// Checks one isotonic threshold list; `x_key` / `y_key` name it in errors.
absl::Status CheckThresholds(const FileErrors& errors,
                             const std::vector<double>& x,
                             const std::vector<double>& y,
                             std::string_view x_key, std::string_view y_key) {
  if (x.empty()) return errors.Key(x_key, "expected at least one threshold");
  if (y.size() != x.size()) {
    return errors.Key(
        y_key, absl::StrCat("expected as many values as ", std::string(x_key),
                            " (", x.size(), "), got ", y.size()));
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i > 0 && !(x[i] > x[i - 1])) {
      return errors.Key(
          absl::StrCat(std::string(x_key), "[", i, "]"),
          absl::StrCat("expected more than the value before (", x[i - 1],
                       "), got ", x[i],
                       ": thresholds must be strictly increasing"));
    }
    if (!(y[i] >= 0.0 && y[i] <= 1.0)) {
      return errors.Key(
          absl::StrCat(std::string(y_key), "[", i, "]"),
          absl::StrCat("expected a probability within [0, 1], got ", y[i]));
    }
    if (i > 0 && y[i] < y[i - 1]) {
      return errors.Key(
          absl::StrCat(std::string(y_key), "[", i, "]"),
          absl::StrCat("expected at least the value before (", y[i - 1],
                       "), got ", y[i], ": values must be non-decreasing"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Fit's input checks.

absl::Status CheckFitInput(CalibrationMethod method,
                           const std::vector<std::string>& classes,
                           const double* p, const std::int32_t* labels,
                           std::size_t rows) {
  const std::string where = absl::StrCat(
      "calibration fit (", std::string(CalibrationMethodName(method)), "): ");
  if (classes.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "expected at least 2 classes, got ", classes.size()));
  }
  if (rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "no labelled rows"));
  }
  const std::size_t C = classes.size();
  for (std::size_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || static_cast<std::size_t>(labels[r]) >= C) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "row ", r, ": label ", labels[r],
                       " is not a class index in [0, ", C, ")"));
    }
    for (std::size_t c = 0; c < C; ++c) {
      const double v = p[r * C + c];
      if (!(v >= 0.0 && v <= 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "row ", r, ": probability of class '",
                         classes[c], "' is ", v, ", not within [0, 1]"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view CalibrationMethodName(CalibrationMethod method) {
  switch (method) {
    case CalibrationMethod::kTemperature:
      return "temperature";
    case CalibrationMethod::kPlatt:
      return "platt";
    case CalibrationMethod::kIsotonic:
      return "isotonic";
  }
  return "unknown";
}

absl::StatusOr<CalibrationMethod> ParseCalibrationMethod(
    std::string_view name) {
  for (CalibrationMethod method :
       {CalibrationMethod::kTemperature, CalibrationMethod::kPlatt,
        CalibrationMethod::kIsotonic}) {
    if (name == CalibrationMethodName(method)) return method;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown calibration method '", std::string(name),
                   "' (expected temperature, platt or isotonic)"));
}

absl::StatusOr<Calibrator> Calibrator::Load(
    const std::filesystem::path& file, CalibrationMethod expected_method,
    const std::vector<std::string>& classes) {
  const FileErrors errors(file);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("calibration file '", errors.name(),
                                            "': cannot be opened"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return errors.File("cannot be read");

  Json json;
  try {
    json = Json::parse(text.str());
  } catch (const Json::exception& e) {  // parse_error; out_of_range for 1e400
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    std::string_view what = e.what();
    if (what.starts_with("[json.exception.")) {
      what.remove_prefix(std::min(what.size(), what.find("] ") + 2));
    }
    return errors.File(absl::StrCat("not valid JSON: ", std::string(what)));
  }
  if (!json.is_object()) return errors.File("expected a JSON object");

  // Keys in the order a reader would check them by eye.
  const auto at = [&json](std::string_view key) -> const Json* {
    auto it = json.find(std::string(key));
    return it == json.end() ? nullptr : &*it;
  };
  const Json* format = at("format");
  if (format == nullptr) return errors.Key("format", "missing");
  if (!format->is_string() || format->get<std::string>() != kFormat) {
    return errors.Key("format", absl::StrCat("expected ", Quoted(kFormat),
                                             ", got ", format->dump()));
  }

  const Json* method_json = at("method");
  if (method_json == nullptr) return errors.Key("method", "missing");
  if (!method_json->is_string()) {
    return errors.Key("method", "expected a string");
  }
  const std::string method_name = method_json->get<std::string>();
  absl::StatusOr<CalibrationMethod> method =
      ParseCalibrationMethod(method_name);
  if (!method.ok()) {
    return errors.Key(
        "method", absl::StrCat("unknown method ", Quoted(method_name),
                               " (expected temperature, platt or isotonic)"));
  }
  if (*method != expected_method) {
    return errors.Key(
        "method", absl::StrCat("the file holds a ", Quoted(method_name),
                               " calibrator, the pipeline asks for ",
                               Quoted(CalibrationMethodName(expected_method))));
  }

  const Json* classes_json = at("classes");
  if (classes_json == nullptr) return errors.Key("classes", "missing");
  std::vector<std::string> file_classes;
  if (!classes_json->is_array()) {
    return errors.Key("classes", "expected an array of strings");
  }
  for (const Json& label : *classes_json) {
    if (!label.is_string()) {
      return errors.Key("classes", "expected an array of strings");
    }
    file_classes.push_back(label.get<std::string>());
  }
  if (file_classes != classes) {
    return errors.Key(
        "classes",
        absl::StrCat(QuotedList(file_classes), " do not match the pipeline's ",
                     QuotedList(classes), " (same labels in the same order)"));
  }
  if (classes.size() < 2) {
    return errors.Key("classes", "expected at least 2 classes");
  }

  std::vector<std::string_view> params;
  switch (*method) {
    case CalibrationMethod::kTemperature:
      params = {"temperature"};
      break;
    case CalibrationMethod::kPlatt:
      params = {"a", "b"};
      break;
    case CalibrationMethod::kIsotonic:
      params = {"x", "y"};
      break;
  }
  for (const auto& [key, value] : json.items()) {
    if (key == "format" || key == "method" || key == "classes") continue;
    if (std::find(params.begin(), params.end(), key) == params.end()) {
      return errors.Key(key,
                        absl::StrCat("unknown key for a ", Quoted(method_name),
                                     " calibration file"));
    }
  }
  for (std::string_view key : params) {
    if (at(key) == nullptr) return errors.Key(key, "missing");
  }

  Calibrator calibrator(*method, classes);
  const std::size_t C = classes.size();
  switch (*method) {
    case CalibrationMethod::kTemperature: {
      LATEFUSE_ASSIGN_OR_RETURN(
          calibrator.temperature_,
          ReadNumber(errors, *at("temperature"), "temperature"));
      if (!(calibrator.temperature_ > 0.0)) {
        return errors.Key("temperature",
                          absl::StrCat("expected a number > 0, got ",
                                       calibrator.temperature_));
      }
      break;
    }
    case CalibrationMethod::kPlatt: {
      LATEFUSE_ASSIGN_OR_RETURN(calibrator.a_,
                                ReadPerClassNumbers(errors, *at("a"), "a", C));
      LATEFUSE_ASSIGN_OR_RETURN(calibrator.b_,
                                ReadPerClassNumbers(errors, *at("b"), "b", C));
      break;
    }
    case CalibrationMethod::kIsotonic: {
      const Json& x = *at("x");
      const Json& y = *at("y");
      if (C == 2) {
        LATEFUSE_ASSIGN_OR_RETURN(std::vector<double> xs,
                                  ReadNumbers(errors, x, "x"));
        LATEFUSE_ASSIGN_OR_RETURN(std::vector<double> ys,
                                  ReadNumbers(errors, y, "y"));
        LATEFUSE_RETURN_IF_ERROR(CheckThresholds(errors, xs, ys, "x", "y"));
        calibrator.x_.push_back(std::move(xs));
        calibrator.y_.push_back(std::move(ys));
        break;
      }
      for (const auto& [value, key] :
           {std::pair{&x, "x"}, std::pair{&y, "y"}}) {
        if (!value->is_array() || value->size() != C) {
          return errors.Key(key,
                            absl::StrCat("expected an array of ", C,
                                         " arrays of numbers (one per class)"));
        }
      }
      for (std::size_t c = 0; c < C; ++c) {
        const std::string x_key = absl::StrCat("x[", c, "]");
        const std::string y_key = absl::StrCat("y[", c, "]");
        LATEFUSE_ASSIGN_OR_RETURN(std::vector<double> xs,
                                  ReadNumbers(errors, x[c], x_key));
        LATEFUSE_ASSIGN_OR_RETURN(std::vector<double> ys,
                                  ReadNumbers(errors, y[c], y_key));
        LATEFUSE_RETURN_IF_ERROR(CheckThresholds(errors, xs, ys, x_key, y_key));
        calibrator.x_.push_back(std::move(xs));
        calibrator.y_.push_back(std::move(ys));
      }
      break;
    }
  }
  return calibrator;
}

absl::StatusOr<Calibrator> Calibrator::Fit(
    CalibrationMethod method, const std::vector<std::string>& classes,
    const double* probabilities, const std::int32_t* labels, std::size_t rows) {
  LATEFUSE_RETURN_IF_ERROR(
      CheckFitInput(method, classes, probabilities, labels, rows));
  Calibrator calibrator(method, classes);
  const std::size_t C = classes.size();
  if (method == CalibrationMethod::kTemperature) {
    calibrator.temperature_ = FitTemperature(probabilities, labels, rows, C);
    return calibrator;
  }
  for (std::size_t c = calibrator.FirstCalibratedClass(); c < C; ++c) {
    std::vector<double> column(rows);
    for (std::size_t r = 0; r < rows; ++r) column[r] = probabilities[r * C + c];
    if (method == CalibrationMethod::kPlatt) {
      std::vector<bool> positive(rows);
      for (std::size_t r = 0; r < rows; ++r) {
        column[r] = PlattLogit(column[r]);
        positive[r] = static_cast<std::size_t>(labels[r]) == c;
      }
      const auto [a, b] = FitPlatt(column, positive);
      calibrator.a_.push_back(a);
      calibrator.b_.push_back(b);
    } else {
      std::vector<double> target(rows);
      for (std::size_t r = 0; r < rows; ++r) {
        target[r] = static_cast<std::size_t>(labels[r]) == c ? 1.0 : 0.0;
      }
      auto [x, y] = FitIsotonic(column, target);
      calibrator.x_.push_back(std::move(x));
      calibrator.y_.push_back(std::move(y));
    }
  }
  return calibrator;
}

void Calibrator::Apply(double* probabilities, std::size_t rows) const {
  const std::size_t C = classes_.size();
  for (std::size_t r = 0; r < rows; ++r) {
    double* row = probabilities + r * C;
    if (method_ == CalibrationMethod::kTemperature) {
      double m = -std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < C; ++c) {
        row[c] = FlooredLog(row[c]) / temperature_;
        m = std::max(m, row[c]);
      }
      for (std::size_t c = 0; c < C; ++c) row[c] = std::exp(row[c] - m);
      Renormalise(row, C);
      continue;
    }
    for (std::size_t c = FirstCalibratedClass(); c < C; ++c) {
      const std::size_t k = c - FirstCalibratedClass();
      row[c] = method_ == CalibrationMethod::kPlatt
                   ? Sigmoid(a_[k] * PlattLogit(row[c]) + b_[k])
                   : Interpolate(x_[k], y_[k], row[c]);
    }
    if (binary()) {
      row[0] = 1.0 - row[1];
    } else {
      Renormalise(row, C);
    }
  }
}

std::string Calibrator::ToJson() const {
  // Top-level keys one per line, in the documented order; nlohmann's dump
  // writes doubles in shortest round-trip form.
  auto numbers = [](const std::vector<double>& v) {
    std::string text = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
      absl::StrAppend(&text, i > 0 ? ", " : "", Json(v[i]).dump());
    }
    return text + "]";
  };
  std::string out =
      absl::StrCat("{\n  \"format\": ", Quoted(kFormat),
                   ",\n  \"method\": ", Quoted(CalibrationMethodName(method_)),
                   ",\n  \"classes\": [");
  for (std::size_t c = 0; c < classes_.size(); ++c) {
    absl::StrAppend(&out, c > 0 ? ", " : "", Quoted(classes_[c]));
  }
  absl::StrAppend(&out, "]");
  switch (method_) {
    case CalibrationMethod::kTemperature:
      absl::StrAppend(&out,
                      ",\n  \"temperature\": ", Json(temperature_).dump());
      break;
    case CalibrationMethod::kPlatt:
      if (binary()) {
        absl::StrAppend(&out, ",\n  \"a\": ", Json(a_[0]).dump(),
                        ",\n  \"b\": ", Json(b_[0]).dump());
      } else {
        absl::StrAppend(&out, ",\n  \"a\": ", numbers(a_),
                        ",\n  \"b\": ", numbers(b_));
      }
      break;
    case CalibrationMethod::kIsotonic:
      if (binary()) {
        absl::StrAppend(&out, ",\n  \"x\": ", numbers(x_[0]),
                        ",\n  \"y\": ", numbers(y_[0]));
      } else {
        for (const auto& [key, lists] :
             {std::pair{"x", &x_}, std::pair{"y", &y_}}) {
          absl::StrAppend(&out, ",\n  \"", key, "\": [");
          for (std::size_t c = 0; c < lists->size(); ++c) {
            absl::StrAppend(&out, c > 0 ? ",\n    " : "\n    ",
                            numbers((*lists)[c]));
          }
          absl::StrAppend(&out, "\n  ]");
        }
      }
      break;
  }
  absl::StrAppend(&out, "\n}\n");
  return out;
}

void ReliabilityBins(const double* probabilities, const std::int32_t* labels,
                     std::size_t rows, std::size_t classes,
                     const double* weights, std::span<ReliabilityBin> bins) {
  std::fill(bins.begin(), bins.end(), ReliabilityBin{});
  if (bins.empty() || classes == 0) return;
  const int count = static_cast<int>(bins.size());
  for (std::size_t r = 0; r < rows; ++r) {
    const double weight = weights == nullptr ? 1.0 : weights[r];
    if (weight == 0.0) continue;
    const double* row = probabilities + r * classes;
    const std::size_t predicted =
        static_cast<std::size_t>(std::max_element(row, row + classes) - row);
    const double confidence = row[predicted];
    // Bin b holds (b/bins, (b+1)/bins]; the loops settle the edges exactly as
    // the divisions b / bins define them.
    int b = 0;
    if (confidence > 0.0) {
      const double scaled = confidence * count;
      b = scaled >= count
              ? count - 1
              : std::max(0, static_cast<int>(std::ceil(scaled)) - 1);
      while (b > 0 && confidence <= static_cast<double>(b) / count) --b;
      while (b < count - 1 && confidence > static_cast<double>(b + 1) / count)
        ++b;
    }
    ReliabilityBin& bin = bins[static_cast<std::size_t>(b)];
    bin.weight += weight;
    bin.confidence += weight * confidence;
    const bool correct =
        labels[r] >= 0 && static_cast<std::size_t>(labels[r]) == predicted;
    bin.correct += correct ? weight : 0.0;
  }
}

double ExpectedCalibrationError(const double* probabilities,
                                const std::int32_t* labels, std::size_t rows,
                                std::size_t classes, int bins,
                                const double* weights) {
  if (rows == 0 || classes == 0) return 0.0;
  std::vector<ReliabilityBin> sums(static_cast<std::size_t>(std::max(bins, 1)));
  ReliabilityBins(probabilities, labels, rows, classes, weights, sums);
  double ece = 0.0;
  double total = 0.0;
  for (const ReliabilityBin& bin : sums) {
    ece += std::abs(bin.correct - bin.confidence);
    total += bin.weight;
  }
  return total == 0.0 ? 0.0 : ece / total;
}

}  // namespace latefuse
