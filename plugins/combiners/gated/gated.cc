// The `gated` combiner (attention-style): per row, a softmax gate over the
// present modalities driven by how confident each one is, then the
// gate-weighted average of their probabilities.
//
//   combiner:
//     plugin: gated
//     params:
//       confidence: max              # or entropy
//       a: {vitals: 0.0, labs: -0.3}
//       b: {vitals: 2.0, labs: 1.5}
//
// or, fitted by `Fit` (a latefuse.gated/v1 file):
//
//   combiner: {plugin: gated, params: {model: models/gate.json}}
//
// g_k = softmax over k in S of (a_k + b_k conf_k), p = sum_{k in S} g_k p_k,
// where conf_k = max_c p_kc ("max") or 1 - H(p_k) / log(C) ("entropy", with
// H(p) = -sum_c p_c log p_c and 0 log 0 = 0). A missing modality gets no gate.
// Inline a and b default to 0 for every modality (a plain mean). Explanation:
// the gate values g_k.
//
// Fit: a and b minimising the mean log loss of p over the rows with a modality
// present, plus l2 * (|a|^2 + |b|^2) (options `confidence`, default max, and
// `l2`, default 1e-3), by L-BFGS from a = b = 0.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "internal/fit.h"
#include "internal/fuse_rows.h"
#include "internal/params.h"
#include "internal/regression_rows.h"

namespace latefuse::gated {
namespace {

namespace ci = combiners_internal;

constexpr char kFormat[] = "latefuse.gated/v1";

enum class Confidence { kMax, kEntropy };

sdk::Result<Confidence> ReadConfidence(const nlohmann::json& object,
                                       const std::string& where) {
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      std::string name,
      ci::ChoiceOption(object, "confidence", where, {"max", "entropy"}, "max"));
  return name == "max" ? Confidence::kMax : Confidence::kEntropy;
}

const char* ConfidenceName(Confidence confidence) {
  return confidence == Confidence::kMax ? "max" : "entropy";
}

// How sure one modality's prediction is, in [0, 1].
double ConfidenceOf(Confidence confidence, const double* p,
                    std::size_t classes) {
  if (confidence == Confidence::kMax) return *std::max_element(p, p + classes);
  if (classes < 2) return 1.0;
  double entropy = 0.0;
  for (std::size_t c = 0; c < classes; ++c) {
    if (p[c] > 0.0) entropy -= p[c] * std::log(p[c]);
  }
  return 1.0 - entropy / std::log(static_cast<double>(classes));
}

struct Gate {
  Confidence confidence = Confidence::kMax;
  std::vector<double> a;  // pipeline order
  std::vector<double> b;
};

sdk::Result<Gate> GateFromFile(const sdk::CreateContext& context) {
  for (const char* key : {"confidence", "a", "b"}) {
    if (context.params.Has(key)) {
      return sdk::InvalidArgument(
          std::string("params.") + key +
          ": give either the model file or inline confidence, a and b");
    }
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      ci::ParameterFile file,
      ci::ReadParameterFile(context.params, kFormat,
                            {"format", "confidence", "modalities", "a", "b"}));
  if (!file.json.contains("confidence")) {
    return sdk::InvalidArgument(file.where + ": confidence: missing");
  }
  Gate gate;
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      gate.confidence, ReadConfidence(file.json, file.where + ": confidence"));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      std::vector<std::size_t> order,
      ci::FileModalityOrder(file, context.modalities));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(gate.a, ci::FileModalityList(file, "a", order));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(gate.b, ci::FileModalityList(file, "b", order));
  return gate;
}

sdk::Result<std::vector<double>> InlineValues(const sdk::CreateContext& context,
                                              const std::string& key) {
  if (!context.params.Has(key)) {
    return std::vector<double>(context.modalities.size(), 0.0);
  }
  return ci::ModalityValues(context.params.json().at(key), "params." + key,
                            context.modalities, ci::ValueRule::kFinite);
}

class GatedCombiner {
 public:
  static constexpr char kName[] = "gated";

  static sdk::Result<std::unique_ptr<GatedCombiner>> Create(
      const sdk::CreateContext& context) {
    LATEFUSE_SDK_RETURN_IF_ERROR(ci::RequireClassification(context, kName));
    const sdk::Params& params = context.params;
    LATEFUSE_SDK_RETURN_IF_ERROR(ci::RejectUnknownKeys(
        params.json(), "params.", {"confidence", "a", "b", "model"}));
    if (params.Has("model")) {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(Gate gate, GateFromFile(context));
      return std::make_unique<GatedCombiner>(std::move(gate));
    }
    Gate gate;
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        gate.confidence, ReadConfidence(params.json(), "params.confidence"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(gate.a, InlineValues(context, "a"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(gate.b, InlineValues(context, "b"));
    return std::make_unique<GatedCombiner>(std::move(gate));
  }

  static sdk::Result<std::string> Fit(const sdk::CreateContext& context,
                                      const sdk::FitData& data) {
    const sdk::Params& params = context.params;
    LATEFUSE_SDK_RETURN_IF_ERROR(
        ci::RejectUnknownKeys(params.json(), "params.", {"confidence", "l2"}));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(
        Confidence confidence,
        ReadConfidence(params.json(), "params.confidence"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(double l2,
                                  ci::NonNegativeOption(params, "l2", 1e-3));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(ci::FitRows rows,
                                  ci::UsableFitRows(context, data));
    const std::size_t modalities = data.modalities();
    const std::size_t classes = data.classes();
    const auto k_size = static_cast<Eigen::Index>(modalities);

    // conf[i * K + k]: the confidence of modality k on usable row i.
    std::vector<double> conf(rows.rows.size() * modalities, 0.0);
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
      for (std::size_t k : rows.present[i]) {
        conf[i * modalities + k] =
            ConfidenceOf(confidence, data.Row(k, rows.rows[i]), classes);
      }
    }
    const double scale = 1.0 / static_cast<double>(rows.rows.size());
    std::vector<double> z(modalities), g(modalities), dz(modalities);
    // x = (a, b).
    auto objective = [&](const Eigen::VectorXd& x, Eigen::VectorXd& grad) {
      grad = 2.0 * l2 * x;
      double loss = l2 * x.squaredNorm();
      for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        const double* row_conf = conf.data() + i * modalities;
        for (std::size_t k = 0; k < modalities; ++k) {
          const auto a = static_cast<Eigen::Index>(k);
          z[k] = x[a] + x[k_size + a] * row_conf[k];
          dz[k] = 0.0;
        }
        loss +=
            scale * ci::MixtureLogLoss(data, rows.rows[i], rows.present[i],
                                       z.data(), scale, g.data(), dz.data());
        for (std::size_t k : rows.present[i]) {
          const auto a = static_cast<Eigen::Index>(k);
          grad[a] += dz[k];
          grad[k_size + a] += dz[k] * row_conf[k];
        }
      }
      return loss;
    };
    Eigen::VectorXd x = Eigen::VectorXd::Zero(2 * k_size);
    LATEFUSE_SDK_RETURN_IF_ERROR(ci::MinimiseLbfgs(objective, x).status());

    nlohmann::ordered_json file = {
        {"format", kFormat},
        {"confidence", ConfidenceName(confidence)},
        {"modalities", context.modalities},
        {"a", std::vector<double>(x.data(), x.data() + k_size)},
        {"b", std::vector<double>(x.data() + k_size, x.data() + 2 * k_size)}};
    return file.dump(1) + "\n";
  }

  explicit GatedCombiner(Gate gate) : gate_(std::move(gate)) {}

  sdk::CombinerContract Describe() const { return {/*explains=*/true}; }

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    const std::size_t classes = in.classes();
    const std::size_t modalities = in.modalities();
    z_.assign(modalities, 0.0);
    return ci::FuseRows(
        in, out,
        [&](std::size_t r, const std::vector<std::size_t>& present,
            double* fused, double* gates) {
          for (std::size_t k : present) {
            z_[k] =
                gate_.a[k] + gate_.b[k] * ConfidenceOf(gate_.confidence,
                                                       in.Row(k, r), classes);
          }
          ci::SoftmaxOverPresent(z_.data(), present, modalities, gates);
          std::fill(fused, fused + classes, 0.0);
          for (std::size_t k : present) {
            const double* p = in.Row(k, r);
            for (std::size_t c = 0; c < classes; ++c) {
              fused[c] += gates[k] * p[c];
            }
          }
        });
  }

 private:
  Gate gate_;
  std::vector<double> z_;  // scratch: the gate's logits of a row
};

}  // namespace
}  // namespace latefuse::gated

LATEFUSE_COMBINER_PLUGIN(
    latefuse::gated::GatedCombiner, latefuse::gated::GatedCombiner::kName,
    "1.0.0",
    "Confidence-gated (attention-style) average of the present modalities",
    "Apache-2.0")
