// The row loop every in-tree combiner shares: for each row, its present set S,
// the rule's fused scores and per-modality weights, then renormalisation and
// the explanation. A rule only says what it does with the present modalities;
// absent ones never reach it.
//
//   return combiners_internal::FuseRows(
//       in, out, [&](std::size_t r, const std::vector<std::size_t>& present,
//                    double* fused, double* weights) {
//         ...  // fused[c] >= 0 for every c; weights[k] >= 0 for k in present
//       });
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FUSE_ROWS_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FUSE_ROWS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <latefuse/plugin.hpp>
#include <vector>

namespace latefuse::combiners_internal {

// Probabilities are floored here before a log, so that an exact 0 gives a
// large negative number (log(1e-300) = -690.8) instead of -inf and NaN.
inline constexpr double kLogFloor = 1e-300;

inline double FlooredLog(double p) { return std::log(std::max(p, kLogFloor)); }

// Scales the n >= 1 non-negative `values` to sum 1. When they sum to 0 (or to
// something not finite) there is no distribution to scale, and every value
// becomes 1/n: the uniform distribution.
inline void NormaliseOrUniform(double* values, std::size_t n) {
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) total += values[i];
  if (!(total > 0.0) || !std::isfinite(total)) {
    std::fill(values, values + n, 1.0 / static_cast<double>(n));
    return;
  }
  for (std::size_t i = 0; i < n; ++i) values[i] /= total;
}

// g_k = exp(z_k) / sum_{j in S} exp(z_j) for k in `present`, 0 for the other
// modalities; `z` and `g` have K entries. Shifted by the largest z_k of S, so
// no exp overflows.
inline void SoftmaxOverPresent(const double* z,
                               const std::vector<std::size_t>& present,
                               std::size_t modalities, double* g) {
  std::fill(g, g + modalities, 0.0);
  double top = z[present.front()];
  for (std::size_t k : present) top = std::max(top, z[k]);
  double total = 0.0;
  for (std::size_t k : present) total += g[k] = std::exp(z[k] - top);
  for (std::size_t k : present) g[k] /= total;
}

// The index of the first largest of the n values (as numpy.argmax).
inline std::size_t FirstArgmax(const double* values, std::size_t n) {
  return static_cast<std::size_t>(std::max_element(values, values + n) -
                                  values);
}

// Why a combiner refuses a row with no modality present (the host never sends
// one).
inline constexpr char kNoModalityPresent[] = "a row with no modality present";

// Fills `present` with row r's present modalities, in pipeline order; an
// error when there are none (the host never sends such a row).
inline sdk::Status PresentModalities(const sdk::CombineInput& in, std::size_t r,
                                     std::vector<std::size_t>& present) {
  present.clear();
  for (std::size_t k = 0; k < in.modalities(); ++k) {
    if (in.Present(k, r)) present.push_back(k);
  }
  if (present.empty()) {
    return sdk::FailedPrecondition(kNoModalityPresent);
  }
  return sdk::Status();
}

// When the host asked for an explanation, writes row r's: `weights` (K
// entries, >= 0 over `present`, not all 0) renormalised to sum 1 over the
// present modalities, 0 for the absent ones.
inline void WriteExplanation(sdk::CombineOutput& out, std::size_t r,
                             const std::vector<std::size_t>& present,
                             const double* weights, std::size_t modalities) {
  if (!out.explain()) return;
  double* explanation = out.Explanation(r);
  std::fill(explanation, explanation + modalities, 0.0);
  double total = 0.0;
  for (std::size_t k : present) total += weights[k];
  for (std::size_t k : present) explanation[k] = weights[k] / total;
}

// Runs `rule` on every row of `in` and writes the result to `out`:
//
//   rule(std::size_t r, const std::vector<std::size_t>& present,
//        double* fused, double* weights)
//
// gets row r's present modalities S (pipeline order, never empty), writes C
// non-negative scores to `fused` and a non-negative weight for each k in S to
// `weights` (K entries, zeroed beforehand). The scores are then renormalised
// to sum 1 (uniform when they are all 0), and, when the host asked for an
// explanation, the weights renormalised to sum 1 over S (0 for absent
// modalities) become the row's explanation.
template <typename Rule>
sdk::Status FuseRows(const sdk::CombineInput& in, sdk::CombineOutput& out,
                     Rule&& rule) {
  const std::size_t modalities = in.modalities();
  const std::size_t classes = in.classes();
  std::vector<std::size_t> present;
  std::vector<double> weights(modalities);
  for (std::size_t r = 0; r < in.rows(); ++r) {
    LATEFUSE_SDK_RETURN_IF_ERROR(PresentModalities(in, r, present));
    std::fill(weights.begin(), weights.end(), 0.0);
    double* fused = out.Row(r);
    rule(r, present, fused, weights.data());
    NormaliseOrUniform(fused, classes);
    WriteExplanation(out, r, present, weights.data(), modalities);
  }
  return sdk::Status();
}

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FUSE_ROWS_H_
