// What the in-tree logistic-regression model plugins (`linear`, `tfidf_linear`)
// share: reading their model files' number lists, and turning decision values
// into probabilities exactly as scikit-learn's LogisticRegression.predict_proba
// does.
#ifndef LATEFUSE_PLUGINS_MODELS_INTERNAL_LOGISTIC_H_
#define LATEFUSE_PLUGINS_MODELS_INTERNAL_LOGISTIC_H_

#include <algorithm>
#include <cmath>
#include <latefuse/plugin.hpp>
#include <string>
#include <vector>

namespace latefuse::models_internal {

// A list of finite numbers from a model file; `where` names it in errors.
inline sdk::Result<std::vector<double>> ReadVector(const nlohmann::json& json,
                                                   const std::string& where) {
  if (!json.is_array()) {
    return sdk::InvalidArgument(where + ": expected a list of numbers");
  }
  std::vector<double> out;
  out.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (!json[i].is_number()) {
      return sdk::InvalidArgument(where + "[" + std::to_string(i) +
                                  "]: expected a number, got " +
                                  json[i].dump());
    }
    out.push_back(json[i].get<double>());
    if (!std::isfinite(out.back())) {
      return sdk::InvalidArgument(where + "[" + std::to_string(i) +
                                  "]: not finite");
    }
  }
  return out;
}

// Probabilities from the `outputs` decision values z. One output (binary):
// p[1] = expit(z[0]), p[0] = 1 - p[1], as scikit-learn computes both. More:
// p = softmax(z), shifted by max(z) for stability.
inline void LogisticProbabilities(const double* z, std::size_t outputs,
                                  double* p) {
  if (outputs == 1) {
    p[1] = z[0] >= 0 ? 1.0 / (1.0 + std::exp(-z[0]))
                     : std::exp(z[0]) / (1.0 + std::exp(z[0]));
    p[0] = 1.0 - p[1];
    return;
  }
  const double top = *std::max_element(z, z + outputs);
  double total = 0.0;
  for (std::size_t c = 0; c < outputs; ++c)
    total += p[c] = std::exp(z[c] - top);
  for (std::size_t c = 0; c < outputs; ++c) p[c] /= total;
}

}  // namespace latefuse::models_internal

#endif  // LATEFUSE_PLUGINS_MODELS_INTERNAL_LOGISTIC_H_
