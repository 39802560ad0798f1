// Fitting shared by the trainable in-tree combiners (`weighted_mean`, `gated`):
// checking the labelled data, the log loss of a softmax-gated mixture of the
// present modalities with its analytic gradient, and L-BFGS (LBFGS++).
//
// Both combiners predict p = sum_{k in S} g_k p_k with g the softmax over the
// present set S of per-modality logits z_k: weighted_mean has z_k = theta_k
// (its weights are softmax(theta)), gated has z_k = a_k + b_k conf_k.
//
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(FitRows rows, UsableFitRows(context, data));
//   Eigen::VectorXd x = Eigen::VectorXd::Zero(n);
//   LATEFUSE_SDK_ASSIGN_OR_RETURN(double objective,
//                                 MinimiseLbfgs(objective_fn, x));
#ifndef LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FIT_H_
#define LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FIT_H_

#include <LBFGS.h>

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <latefuse/plugin.hpp>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "internal/fuse_rows.h"

namespace latefuse::combiners_internal {

// The rows a fit learns from: those with at least one modality present.
struct FitRows {
  std::vector<std::size_t> rows;
  std::vector<std::vector<std::size_t>> present;  // S of each of `rows`
};

// Checks `data` against the pipeline the context describes (modality and class
// counts, labels in range) and lists its rows with a modality present; rows
// with none carry nothing to fit and are skipped.
inline sdk::Result<FitRows> UsableFitRows(const sdk::CreateContext& context,
                                          const sdk::FitData& data) {
  if (data.modalities() != context.modalities.size() ||
      data.classes() != context.classes.size()) {
    return sdk::InvalidArgument(
        "fit data: " + std::to_string(data.modalities()) + " modalities and " +
        std::to_string(data.classes()) + " classes, the pipeline has " +
        std::to_string(context.modalities.size()) + " and " +
        std::to_string(context.classes.size()));
  }
  FitRows out;
  std::vector<std::size_t> present;
  for (std::size_t r = 0; r < data.rows(); ++r) {
    if (data.Label(r) >= data.classes()) {
      return sdk::InvalidArgument("fit data: row " + std::to_string(r) +
                                  ": label index out of range");
    }
    present.clear();
    for (std::size_t k = 0; k < data.modalities(); ++k) {
      if (data.Present(k, r)) present.push_back(k);
    }
    if (present.empty()) continue;
    out.rows.push_back(r);
    out.present.push_back(present);
  }
  if (out.rows.empty()) {
    return sdk::InvalidArgument(
        "fit data: no row has a modality present, nothing to fit");
  }
  return out;
}

// One row's -log q, q = sum_{k in S} g_k p_k,y with g = softmax over S of z,
// y the row's label; adds scale * d(-log q)/dz_k to dz[k] for k in S. `z`,
// `g` (scratch) and `dz` have K entries. q is floored at kLogFloor like every
// log here, and where the floor applies the gradient is 0.
//
// d(-log q)/dz_k = -g_k (p_k,y - q) / q, since dg_j/dz_k = g_j (d_jk - g_k).
inline double MixtureLogLoss(const sdk::FitData& data, std::size_t r,
                             const std::vector<std::size_t>& present,
                             const double* z, double scale, double* g,
                             double* dz) {
  const std::size_t y = data.Label(r);
  SoftmaxOverPresent(z, present, data.modalities(), g);
  double q = 0.0;
  for (std::size_t k : present) q += g[k] * data.Row(k, r)[y];
  if (q < kLogFloor) return -std::log(kLogFloor);
  for (std::size_t k : present) {
    dz[k] -= scale * g[k] * (data.Row(k, r)[y] - q) / q;
  }
  return -std::log(q);
}

// Minimises `objective(x, grad)` (returns the value at x and writes its
// gradient to grad) by L-BFGS from the starting point in `x`, and leaves in
// `x` the best point it evaluated, whose value it returns. Near the optimum the
// line search may fail for lack of floating-point precision; the best point so
// far is the answer then, so a fit never ends worse than where it started.
template <typename Objective>
sdk::Result<double> MinimiseLbfgs(Objective&& objective, Eigen::VectorXd& x) {
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = 1e-10;
  param.epsilon_rel = 1e-10;
  param.past = 1;
  param.delta = 1e-15;
  param.max_iterations = 2000;
  param.max_linesearch = 100;
  param.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_WOLFE;
  double best = std::numeric_limits<double>::infinity();
  Eigen::VectorXd best_x = x;
  auto tracked = [&](const Eigen::VectorXd& at, Eigen::VectorXd& grad) {
    const double value = objective(at, grad);
    if (value < best) {
      best = value;
      best_x = at;
    }
    return value;
  };
  LBFGSpp::LBFGSSolver<double> solver(param);
  double value = 0.0;
  try {
    solver.minimize(tracked, x, value);
  } catch (const std::runtime_error&) {
    // The line search ran out of precision: keep the best point seen.
  } catch (const std::logic_error&) {
    // A search direction that does not descend, same cause.
  }
  x = best_x;
  if (!std::isfinite(best)) {
    return sdk::Internal("fit: the objective is not finite");
  }
  return best;
}

}  // namespace latefuse::combiners_internal

#endif  // LATEFUSE_PLUGINS_COMBINERS_INTERNAL_FIT_H_
