// The `vote` combiner: a hard, optionally weighted, majority vote of the
// present modalities, each voting for its most probable class.
//
//   combiner:
//     plugin: vote
//     params: {weights: {vitals: 1.0, labs: 0.5}}   # optional, default all 1
//
// Each present modality k votes for v_k = argmax_c p_kc (the first class on a
// tie within the modality) with weight w_k; a missing modality casts no vote.
// The output is the vote share p_c = sum_{k in S, v_k = c} w_k /
// sum_{k in S} w_k. Classes whose share is within 1e-12 of the top share are
// tied; among them the winner is the one with the highest mean probability
// (1/|S|) sum_{k in S} p_kc, the first in class order if those are equal too,
// and 1e-9 of probability is moved to the winner, taken equally from the other
// tied classes, so that the output's most probable class is the winner while
// the shares change by no more than 1e-9. Explanation: w_k / sum_{j in S} w_j,
// each modality's share of the vote.
#include <algorithm>
#include <memory>
#include <vector>

#include "internal/fuse_rows.h"
#include "internal/optionally_weighted.h"

namespace latefuse::vote {
namespace {

namespace ci = combiners_internal;

// Shares closer than this to the top share count as tied for it.
constexpr double kTieTolerance = 1e-12;
// The probability moved to the tie-break winner.
constexpr double kTieBreakMass = 1e-9;

class VoteCombiner : public ci::OptionallyWeightedCombiner<VoteCombiner> {
 public:
  static constexpr char kName[] = "vote";
  using OptionallyWeightedCombiner::OptionallyWeightedCombiner;

  sdk::Status Combine(const sdk::CombineInput& in, sdk::CombineOutput& out) {
    const std::size_t classes = in.classes();
    return ci::FuseRows(
        in, out,
        [&](std::size_t r, const std::vector<std::size_t>& present,
            double* fused, double* shares) {
          std::fill(fused, fused + classes, 0.0);
          double total = 0.0;
          for (std::size_t k : present) {
            shares[k] = weights()[k];
            total += weights()[k];
            fused[ci::FirstArgmax(in.Row(k, r), classes)] += weights()[k];
          }
          for (std::size_t c = 0; c < classes; ++c) fused[c] /= total;
          BreakTie(in, r, present, fused);
        });
  }

 private:
  // Moves kTieBreakMass to the tie-break winner among the top shares.
  void BreakTie(const sdk::CombineInput& in, std::size_t r,
                const std::vector<std::size_t>& present, double* fused) {
    const std::size_t classes = in.classes();
    const double top = *std::max_element(fused, fused + classes);
    tied_.clear();
    for (std::size_t c = 0; c < classes; ++c) {
      if (fused[c] >= top - kTieTolerance) tied_.push_back(c);
    }
    if (tied_.size() < 2) return;
    std::size_t winner = tied_.front();
    double best_mean = -1.0;
    for (std::size_t c : tied_) {
      double mean = 0.0;
      for (std::size_t k : present) mean += in.Row(k, r)[c];
      mean /= static_cast<double>(present.size());
      if (mean > best_mean) {
        best_mean = mean;
        winner = c;
      }
    }
    const double taken = kTieBreakMass / static_cast<double>(tied_.size() - 1);
    for (std::size_t c : tied_) {
      if (c != winner) fused[c] -= taken;
    }
    fused[winner] += kTieBreakMass;
  }

  std::vector<std::size_t> tied_;  // scratch
};

}  // namespace
}  // namespace latefuse::vote

LATEFUSE_COMBINER_PLUGIN(
    latefuse::vote::VoteCombiner, latefuse::vote::VoteCombiner::kName, "1.0.0",
    "Weighted majority vote of the present modalities' predicted classes",
    "Apache-2.0")
