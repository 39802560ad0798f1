#include "stacking_fit.h"

#include <LBFGS.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <vector>

namespace latefuse::stacking {
namespace {

using sdk::InvalidArgument;
using sdk::Result;

constexpr const char* kOptions[] = {"l2_C", "missing_indicators",
                                    "modality_dropout", "dropout_copies",
                                    "model_path_hint"};
constexpr std::int64_t kMaxCopies = 1000;

// The solver stops when the gradient of the objective divided by the number
// of rows is this small, as tight as float64 allows, so the optimum agrees
// with scikit-learn's lbfgs.
constexpr double kEpsilon = 1e-10;
constexpr int kMaxIterations = 2000;
// Near the optimum a line search can run out of representable progress and
// give up; the best point seen is kept when its gradient is at most this.
constexpr double kAcceptedGradient = 1e-6;

// A uniform double in [0, 1) from the top 53 bits of the generator: the same
// sequence on every standard library, unlike std::uniform_real_distribution.
double Uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Neumaier's compensated sum: near the optimum the line search compares
// objective values that differ by ~1e-15 of their size, finer than the
// rounding a plain sum of a thousand losses accumulates.
double CompensatedSum(const Eigen::VectorXd& values) {
  double sum = 0.0;
  double compensation = 0.0;
  for (const double v : values) {
    const double t = sum + v;
    compensation +=
        std::abs(sum) >= std::abs(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
  }
  return sum + compensation;
}

// What the logistic regression is fitted on: all rows weigh the same.
struct TrainingSet {
  RowMatrix x;                      // [n, width] stacking features
  std::vector<std::size_t> labels;  // [n] class indices
  double row_weight = 1.0;          // 1 / (1 + copies)
};

// Each usable row (at least one modality present), followed by `copies`
// versions of it with modalities dropped. A copy drops each present modality
// with probability `dropout`; when that drops them all, one of them, chosen
// uniformly, is put back.
TrainingSet Augment(const sdk::FitData& data,
                    const std::vector<std::size_t>& usable,
                    const StackingModel& model, const FitOptions& options) {
  const std::size_t modalities = data.modalities();
  const std::size_t copies =
      options.modality_dropout > 0.0 ? options.dropout_copies : 0;
  const FeatureLayout layout = model.layout();
  TrainingSet set;
  set.x.resize(static_cast<Eigen::Index>(usable.size() * (1 + copies)),
               static_cast<Eigen::Index>(layout.width()));
  set.row_weight = 1.0 / static_cast<double>(1 + copies);
  std::mt19937_64 rng(data.seed());
  std::vector<const double*> row(modalities);
  std::vector<const double*> copy(modalities);
  std::vector<std::size_t> present;
  Eigen::Index next = 0;
  for (const std::size_t r : usable) {
    present.clear();
    for (std::size_t k = 0; k < modalities; ++k) {
      row[k] = data.Present(k, r) ? data.Row(k, r) : nullptr;
      if (row[k] != nullptr) present.push_back(k);
    }
    layout.Write(row, model.fill, set.x.row(next++).data());
    set.labels.push_back(data.Label(r));
    for (std::size_t c = 0; c < copies; ++c) {
      copy = row;
      std::size_t kept = present.size();
      for (const std::size_t k : present) {
        if (Uniform(rng) < options.modality_dropout) {
          copy[k] = nullptr;
          --kept;
        }
      }
      if (kept == 0) {
        const std::size_t k = present[rng() % present.size()];
        copy[k] = row[k];
      }
      layout.Write(copy, model.fill, set.x.row(next++).data());
      set.labels.push_back(data.Label(r));
    }
  }
  return set;
}

// The objective of scikit-learn's LogisticRegression(C) (binary: sigmoid;
// multiclass: multinomial softmax), divided by the total row weight so the
// solver's tolerance does not depend on the number of rows:
//   (w sum_i [A(z_i) - z_i . y_i] + ||W||^2 / (2C)) / (w n),  z_i = W x_i + b
// with A the log-partition (binary: softplus; multiclass: logsumexp) and y_i
// the one-hot label (binary: [label == 1]). Parameters: W row-major, then b.
// It remembers the best point it was evaluated at, since a line search that
// gives up leaves the solver's x at its last trial.
class Objective {
 public:
  Objective(const TrainingSet& set, std::size_t classes, double l2_c)
      : set_(set),
        outputs_(classes == 2 ? 1 : static_cast<Eigen::Index>(classes)),
        l2_c_(l2_c),
        targets_(RowMatrix::Zero(set.x.rows(), outputs_)) {
    for (Eigen::Index i = 0; i < set.x.rows(); ++i) {
      const auto label = static_cast<Eigen::Index>(set.labels[i]);
      if (outputs_ > 1) {
        targets_(i, label) = 1.0;
      } else if (label == 1) {
        targets_(i, 0) = 1.0;
      }
    }
  }

  Eigen::Index size() const { return outputs_ * (set_.x.cols() + 1); }
  const Eigen::VectorXd& best() const { return best_; }
  double best_gradient_norm() const { return best_gradient_norm_; }

  double operator()(const Eigen::VectorXd& params, Eigen::VectorXd& grad) {
    const Eigen::Index width = set_.x.cols();
    const Eigen::Map<const RowMatrix> coef(params.data(), outputs_, width);
    RowMatrix z = set_.x * coef.transpose();
    z.rowwise() += params.tail(outputs_).transpose();
    // loss[i] = A(z_i) - z_i . y_i, formed row by row (not as two large sums)
    // so that rounding stays far below the decrease the line search measures
    // near the optimum; z becomes the residual dA/dz - y.
    Eigen::VectorXd loss(z.rows());
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      if (outputs_ == 1) {
        const double zi = z(i, 0);
        const double toward_other = targets_(i, 0) == 1.0 ? -zi : zi;
        loss[i] =
            std::max(toward_other, 0.0) + std::log1p(std::exp(-std::abs(zi)));
        z(i, 0) = Expit(zi);
      } else {
        const double top = z.row(i).maxCoeff();
        const double labelled = z(i, static_cast<Eigen::Index>(set_.labels[i]));
        z.row(i) = (z.row(i).array() - top).exp();
        const double total = z.row(i).sum();
        loss[i] = (top - labelled) + std::log(total);
        z.row(i) /= total;
      }
    }
    z -= targets_;
    const double scale =
        1.0 / (set_.row_weight * static_cast<double>(set_.x.rows()));
    const double value = scale * (set_.row_weight * CompensatedSum(loss) +
                                  coef.squaredNorm() / (2.0 * l2_c_));
    grad.resize(size());
    Eigen::Map<RowMatrix> grad_w(grad.data(), outputs_, width);
    grad_w =
        scale * (set_.row_weight * (z.transpose() * set_.x) + coef / l2_c_);
    grad.tail(outputs_) =
        scale * set_.row_weight * z.colwise().sum().transpose();
    if (value < best_value_) {
      best_value_ = value;
      best_ = params;
      best_gradient_norm_ = grad.norm();
    }
    return value;
  }

 private:
  const TrainingSet& set_;
  Eigen::Index outputs_;
  double l2_c_;
  RowMatrix targets_;  // [n, outputs] one-hot labels
  Eigen::VectorXd best_;
  double best_value_ = INFINITY;
  double best_gradient_norm_ = INFINITY;
};

// Minimises the objective with L-BFGS from zero, as scikit-learn starts, and
// sets the model's coef and intercept.
sdk::Status Solve(const TrainingSet& set, double l2_c, StackingModel& model) {
  Objective objective(set, model.classes.size(), l2_c);
  LBFGSpp::LBFGSParam<double> param;
  param.epsilon = kEpsilon;
  param.epsilon_rel = 0.0;
  param.max_iterations = kMaxIterations;
  param.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;
  LBFGSpp::LBFGSSolver<double> solver(param);
  Eigen::VectorXd params = Eigen::VectorXd::Zero(objective.size());
  double value = 0.0;
  std::string stopped =
      "reached " + std::to_string(kMaxIterations) + " iterations";
  try {
    if (solver.minimize(objective, params, value) < kMaxIterations) {
      stopped.clear();
    }
  } catch (const std::exception& e) {
    stopped = e.what();
  }
  if (!stopped.empty() && objective.best_gradient_norm() > kAcceptedGradient) {
    return sdk::Internal("fit: the optimiser stopped before convergence (" +
                         stopped + "); gradient norm " +
                         std::to_string(objective.best_gradient_norm()) +
                         ", want at most " + std::to_string(kAcceptedGradient) +
                         ": try a smaller l2_C");
  }
  const Eigen::Index outputs =
      model.classes.size() == 2
          ? 1
          : static_cast<Eigen::Index>(model.classes.size());
  model.coef = Eigen::Map<const RowMatrix>(objective.best().data(), outputs,
                                           set.x.cols());
  model.intercept = objective.best().tail(outputs);
  return sdk::Status();
}

}  // namespace

Result<FitOptions> ReadFitOptions(const sdk::Params& params) {
  std::string expected;
  for (const char* key : kOptions) {
    expected += (expected.empty() ? "" : ", ") + std::string(key);
  }
  for (const auto& [key, value] : params.json().items()) {
    if (std::find(std::begin(kOptions), std::end(kOptions), key) ==
        std::end(kOptions)) {
      return InvalidArgument(
          "params." + key + ": unknown fit option (expected " + expected + ")");
    }
  }
  FitOptions options;
  LATEFUSE_SDK_ASSIGN_OR_RETURN(options.l2_c,
                                params.GetOr("l2_C", options.l2_c));
  if (!std::isfinite(options.l2_c) || options.l2_c <= 0.0) {
    return InvalidArgument("params.l2_C: expected a positive number, got " +
                           params.json()["l2_C"].dump());
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      options.missing_indicators,
      params.GetOr("missing_indicators", options.missing_indicators));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      options.modality_dropout,
      params.GetOr("modality_dropout", options.modality_dropout));
  if (!(options.modality_dropout >= 0.0 && options.modality_dropout < 1.0)) {
    return InvalidArgument(
        "params.modality_dropout: expected a probability in [0, 1), got " +
        params.json()["modality_dropout"].dump());
  }
  if (params.Has("dropout_copies") &&
      !params.json()["dropout_copies"].is_null()) {
    const nlohmann::json& copies = params.json()["dropout_copies"];
    if (!copies.is_number_integer() || copies.get<std::int64_t>() < 0 ||
        copies.get<std::int64_t>() > kMaxCopies) {
      return InvalidArgument(
          "params.dropout_copies: expected an integer from 0 to " +
          std::to_string(kMaxCopies) + ", got " + copies.dump());
    }
    options.dropout_copies = copies.get<std::size_t>();
  }
  return options;
}

Result<StackingModel> FitModel(const sdk::CreateContext& context,
                               const sdk::FitData& data,
                               const FitOptions& options) {
  const std::size_t modalities = data.modalities();
  const std::size_t classes = data.classes();
  if (modalities == 0 || modalities != context.modalities.size()) {
    return InvalidArgument("fit: the data has " + std::to_string(modalities) +
                           " modalities, the pipeline names " +
                           std::to_string(context.modalities.size()));
  }
  if (classes < 2 || classes != context.classes.size()) {
    return InvalidArgument("fit: the data has " + std::to_string(classes) +
                           " classes, the pipeline names " +
                           std::to_string(context.classes.size()));
  }
  // Rows with nothing present carry no evidence to stack and are skipped; the
  // prior, which fills in for missing modalities, is over the rows kept.
  std::vector<std::size_t> usable;
  std::vector<double> counts(classes, 0.0);
  for (std::size_t r = 0; r < data.rows(); ++r) {
    if (data.Label(r) >= classes) {
      return InvalidArgument(
          "fit: row " + std::to_string(r) + " has label index " +
          std::to_string(static_cast<std::int64_t>(data.Label(r))) +
          ", not one of the " + std::to_string(classes) + " classes");
    }
    bool any = false;
    for (std::size_t k = 0; k < modalities && !any; ++k) {
      any = data.Present(k, r);
    }
    if (!any) continue;
    usable.push_back(r);
    counts[data.Label(r)] += 1.0;
  }
  if (usable.empty()) {
    return InvalidArgument("fit: no row has any modality present (" +
                           std::to_string(data.rows()) + " rows)");
  }
  StackingModel model;
  model.classes = context.classes;
  model.modalities = context.modalities;
  model.missing_indicators = options.missing_indicators;
  model.fill.resize(static_cast<Eigen::Index>(modalities),
                    static_cast<Eigen::Index>(classes));
  for (std::size_t c = 0; c < classes; ++c) {
    model.fill.col(static_cast<Eigen::Index>(c))
        .setConstant(counts[c] / static_cast<double>(usable.size()));
  }
  const TrainingSet set = Augment(data, usable, model, options);
  LATEFUSE_SDK_RETURN_IF_ERROR(Solve(set, options.l2_c, model));
  return model;
}

}  // namespace latefuse::stacking
