#include "stacking_model.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace latefuse::stacking {
namespace {

using nlohmann::json;
using sdk::InvalidArgument;
using sdk::Result;

// The keys of the format, in the order they are written.
constexpr const char* kKeys[] = {
    "format", "classes", "modalities", "missing_indicators",
    "fill",   "coef",    "intercept"};

// How far from 1 a fill row may sum: rounding in whatever wrote it.
constexpr double kFillSumTolerance = 1e-6;

// "1 row", "3 rows"; `plural` where adding "s" will not do.
std::string Count(std::size_t n, const std::string& noun,
                  const std::string& plural = "") {
  return std::to_string(n) + " " +
         (n == 1           ? noun
          : plural.empty() ? noun + "s"
                           : plural);
}

// What a value is, for "expected ..., got ..." messages.
std::string Got(const json& value) {
  if (value.is_array()) return "a list of " + std::to_string(value.size());
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

// Exactly `count` finite numbers at `key`; `what` says what they are.
Result<std::vector<double>> Numbers(const json& value, const std::string& key,
                                    std::size_t count,
                                    const std::string& what) {
  if (!value.is_array() || value.size() != count) {
    return InvalidArgument(key + ": expected a list of " + what + ", got " +
                           Got(value));
  }
  std::vector<double> numbers(count);
  for (std::size_t i = 0; i < count; ++i) {
    const json& item = value[i];
    if (item.is_number()) numbers[i] = item.get<double>();
    if (!item.is_number() || !std::isfinite(numbers[i])) {
      return InvalidArgument(key + "[" + std::to_string(i) +
                             "]: expected a finite number, got " + Got(item));
    }
  }
  return numbers;
}

// At least `minimum` distinct, non-empty strings at `key`.
Result<std::vector<std::string>> Names(const json& value,
                                       const std::string& key,
                                       std::size_t minimum) {
  if (!value.is_array() || value.size() < minimum) {
    return InvalidArgument(key + ": expected a list of at least " +
                           std::to_string(minimum) + " names, got " +
                           Got(value));
  }
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]";
    if (!value[i].is_string() || value[i].get<std::string>().empty()) {
      return InvalidArgument(where + ": expected a non-empty string, got " +
                             Got(value[i]));
    }
    names.push_back(value[i].get<std::string>());
    if (!seen.insert(names.back()).second) {
      return InvalidArgument(where + ": " + value[i].dump() + " appears twice");
    }
  }
  return names;
}

sdk::Status CheckKeys(const json& file) {
  std::string expected;
  for (const char* key : kKeys)
    expected += (expected.empty() ? "" : ", ") + std::string(key);
  for (const auto& [key, value] : file.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return InvalidArgument("unknown key '" + key + "' (expected " + expected +
                             ")");
    }
  }
  for (const char* key : kKeys) {
    if (!file.contains(key)) {
      return InvalidArgument(std::string(key) + ": missing (a " + kFormat +
                             " file has " + expected + ")");
    }
  }
  if (file["format"] != kFormat) {
    return InvalidArgument("format: expected \"" + std::string(kFormat) +
                           "\", got " + Got(file["format"]));
  }
  return sdk::Status();
}

// fill: one row of C probabilities for each modality, nothing else.
Result<RowMatrix> ReadFill(const json& fill, const StackingModel& model) {
  const std::size_t classes = model.classes.size();
  if (!fill.is_object()) {
    return InvalidArgument(
        "fill: expected a mapping of modality to probabilities, got " +
        Got(fill));
  }
  for (const auto& [name, value] : fill.items()) {
    if (std::find(model.modalities.begin(), model.modalities.end(), name) ==
        model.modalities.end()) {
      return InvalidArgument("fill." + name + ": not one of modalities");
    }
  }
  RowMatrix rows(model.modalities.size(), classes);
  for (std::size_t k = 0; k < model.modalities.size(); ++k) {
    const std::string key = "fill." + model.modalities[k];
    if (!fill.contains(model.modalities[k])) {
      return InvalidArgument(key + ": missing (every modality needs a fill)");
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        std::vector<double> p,
        Numbers(fill[model.modalities[k]], key, classes,
                Count(classes, "probability", "probabilities") +
                    " (one per class)"));
    double total = 0.0;
    for (std::size_t c = 0; c < classes; ++c) {
      if (p[c] < 0.0 || p[c] > 1.0) {
        return InvalidArgument(key + "[" + std::to_string(c) +
                               "]: a probability must lie in [0, 1], got " +
                               fill[model.modalities[k]][c].dump());
      }
      rows(k, c) = p[c];
      total += p[c];
    }
    if (std::abs(total - 1.0) > kFillSumTolerance) {
      return InvalidArgument(key + ": probabilities sum to " +
                             std::to_string(total) + ", not 1");
    }
  }
  return rows;
}

// coef and intercept, shaped as latefuse.linear/v1's for this layout.
sdk::Status ReadCoefficients(const json& file, StackingModel& model) {
  const std::size_t classes = model.classes.size();
  const std::size_t modalities = model.modalities.size();
  const std::size_t outputs = classes == 2 ? 1 : classes;
  const std::size_t width = model.layout().width();
  const json& coef = file["coef"];
  const std::string rows_wanted =
      classes == 2 ? "1 row (binary: P(classes[1]) = expit(z))"
                   : Count(outputs, "row") + " (one per class)";
  if (!coef.is_array() || coef.size() != outputs) {
    return InvalidArgument("coef: expected " + rows_wanted + ", got " +
                           Got(coef));
  }
  const std::string columns =
      std::to_string(width) + " values (" +
      Count(modalities, "modality", "modalities") + " x " +
      Count(outputs == 1 ? 1 : classes, "probability column") +
      (model.missing_indicators ? " + " + Count(modalities, "missing indicator")
                                : std::string()) +
      ")";
  model.coef.resize(outputs, width);
  for (std::size_t o = 0; o < outputs; ++o) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        std::vector<double> row,
        Numbers(coef[o], "coef[" + std::to_string(o) + "]", width, columns));
    std::copy(row.begin(), row.end(), model.coef.row(o).begin());
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      std::vector<double> intercept,
      Numbers(file["intercept"], "intercept", outputs,
              Count(outputs, "value") + ", one per coef row"));
  model.intercept = Eigen::Map<Eigen::VectorXd>(intercept.data(), outputs);
  return sdk::Status();
}

}  // namespace

void FeatureLayout::Write(const std::vector<const double*>& probabilities,
                          const RowMatrix& fill, double* features) const {
  // Binary keeps the last of the two classes, multiclass all of them.
  const std::size_t first = classes_ - per_modality_;
  for (std::size_t k = 0; k < modalities_; ++k) {
    const double* p =
        probabilities[k] != nullptr ? probabilities[k] : &fill(k, 0);
    features = std::copy_n(p + first, per_modality_, features);
  }
  if (!indicators_) return;
  for (std::size_t k = 0; k < modalities_; ++k) {
    *features++ = probabilities[k] == nullptr ? 1.0 : 0.0;
  }
}

Result<StackingModel> ReadModel(const json& file) {
  if (!file.is_object()) {
    return InvalidArgument("expected a JSON object, got " + Got(file));
  }
  LATEFUSE_SDK_RETURN_IF_ERROR(CheckKeys(file));
  StackingModel model;
  LATEFUSE_SDK_ASSIGN_OR_RETURN(model.classes,
                                Names(file["classes"], "classes", 2));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(model.modalities,
                                Names(file["modalities"], "modalities", 1));
  if (!file["missing_indicators"].is_boolean()) {
    return InvalidArgument("missing_indicators: expected true or false, got " +
                           Got(file["missing_indicators"]));
  }
  model.missing_indicators = file["missing_indicators"].get<bool>();
  LATEFUSE_SDK_ASSIGN_OR_RETURN(model.fill, ReadFill(file["fill"], model));
  LATEFUSE_SDK_RETURN_IF_ERROR(ReadCoefficients(file, model));
  return model;
}

std::string WriteModel(const StackingModel& model) {
  const auto row = [](const auto& values) {
    return json(std::vector<double>(values.begin(), values.end())).dump();
  };
  std::string fill;
  for (std::size_t k = 0; k < model.modalities.size(); ++k) {
    fill += (k == 0 ? "{" : ", ") + json(model.modalities[k]).dump() + ": " +
            row(model.fill.row(k));
  }
  std::string coef;
  for (Eigen::Index o = 0; o < model.coef.rows(); ++o) {
    coef += (o == 0 ? "[\n  " : ",\n  ") + row(model.coef.row(o));
  }
  return std::string("{\n") +                                     //
         " \"format\": " + json(kFormat).dump() + ",\n" +         //
         " \"classes\": " + json(model.classes).dump() + ",\n" +  //
         " \"modalities\": " + json(model.modalities).dump() + ",\n" +
         " \"missing_indicators\": " +
         (model.missing_indicators ? "true" : "false") + ",\n" +
         " \"fill\": " + fill + "},\n" +  //
         " \"coef\": " + coef + "\n ],\n" +
         " \"intercept\": " + row(model.intercept) + "\n}\n";
}

double Expit(double z) {
  const double e = std::exp(-std::abs(z));
  return z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

void Predict(const StackingModel& model, const double* features,
             double* probabilities) {
  const Eigen::Map<const Eigen::VectorXd> x(features, model.coef.cols());
  const Eigen::VectorXd z = model.coef * x + model.intercept;
  if (z.size() == 1) {
    probabilities[1] = Expit(z[0]);
    probabilities[0] = 1.0 - probabilities[1];
    return;
  }
  Eigen::Map<Eigen::VectorXd> p(probabilities, z.size());
  p = (z.array() - z.maxCoeff()).exp();
  p /= p.sum();
}

void Explain(const StackingModel& model, const double* features,
             const double* probabilities, double* shares) {
  const std::size_t modalities = model.modalities.size();
  Eigen::RowVectorXd v = model.coef.row(0);
  if (model.coef.rows() > 1) {
    const std::ptrdiff_t top =
        std::max_element(probabilities, probabilities + model.coef.rows()) -
        probabilities;
    // Softmax ignores what every class's logit shares, so only the predicted
    // class's coefficients relative to the mean row move the decision.
    v = model.coef.row(top) - model.coef.colwise().mean();
  }
  const FeatureLayout layout = model.layout();
  std::fill(shares, shares + modalities, 0.0);
  for (Eigen::Index j = 0; j < v.size(); ++j) {
    shares[layout.Owner(static_cast<std::size_t>(j))] += v[j] * features[j];
  }
  double total = 0.0;
  for (std::size_t k = 0; k < modalities; ++k) total += std::abs(shares[k]);
  if (total == 0.0) return;
  for (std::size_t k = 0; k < modalities; ++k) shares[k] /= total;
}

}  // namespace latefuse::stacking
