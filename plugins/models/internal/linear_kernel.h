// The `linear` plugin's arithmetic: decision values of StandardScaler +
// a linear model, z_c = ((x - mean) / scale) . w_c + b_c, for rows of float32
// features, computed in float64 8 rows at a time. Shared with
// bench/engine_bench.cc, whose hand-fused loop runs the same kernel without
// the host.
//
//   LinearKernel kernel(coef, intercept, mean, scale);  // coef [outputs,
//   width] double z[LinearKernel::kBlock * outputs]; kernel.Decisions(rows, n,
//   z);  // n <= kBlock rows at `rows`, row-major
//   // z[i * outputs + c]: row i, coefficient row c
#ifndef LATEFUSE_PLUGINS_MODELS_INTERNAL_LINEAR_KERNEL_H_
#define LATEFUSE_PLUGINS_MODELS_INTERNAL_LINEAR_KERNEL_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace latefuse::models_internal {

// Rows are taken kBlock = 8 at a time, in four pairs of SIMD lanes (GCC and
// Clang vector types: SSE2 on x86-64, NEON on ARM), so that each coefficient
// is loaded once per block and multiplies 8 rows, and the accumulators stay
// in registers, as a BLAS kernel does. Each lane does what the plain per-row
// loop does, (x - mean) / scale, then the products summed feature by feature
// from 0, with no fused multiply-add, so the results are those of that loop,
// bit for bit. Holds its scratch space: one thread at a time per kernel.
class LinearKernel {
 public:
  static constexpr std::size_t kBlock = 8;

  LinearKernel() = default;
  // coef: [outputs, width] row-major; intercept: [outputs]; mean, scale:
  // [width], scale without zeros. The caller has checked the sizes.
  LinearKernel(std::vector<double> coef, std::vector<double> intercept,
               std::vector<double> mean, std::vector<double> scale)
      : width_(mean.size()),
        outputs_(intercept.size()),
        coef_(std::move(coef)),
        intercept_(std::move(intercept)),
        mean_(std::move(mean)),
        scale_(std::move(scale)),
        scaled_(width_ * kBlock / 2, Lanes{}),
        tail_(width_ * kBlock, 0.0f) {}

  std::size_t width() const { return width_; }
  std::size_t outputs() const { return outputs_; }

  // The decision values of the n <= kBlock rows at x (row-major, width
  // floats each): z[i * outputs + c] for row i and coefficient row c.
  void Decisions(const float* x, std::size_t n, double* z) {
    if (n < kBlock) {
      // A last, short block: padded with zero rows whose results are unused.
      std::fill(std::copy_n(x, n * width_, tail_.begin()), tail_.end(), 0.0f);
      x = tail_.data();
    }
    // The block scaled, transposed: lane pair q of scaled_[j * kBlock / 2 + q]
    // is feature j of rows 2q and 2q + 1.
    Lanes* scaled = scaled_.data();
    for (std::size_t j = 0; j < width_; ++j) {
      const Lanes mean = Broadcast(mean_[j]);
      const Lanes scale = Broadcast(scale_[j]);
      for (std::size_t q = 0; q < kBlock / 2; ++q) {
        const Lanes v{static_cast<double>(x[2 * q * width_ + j]),
                      static_cast<double>(x[(2 * q + 1) * width_ + j])};
        scaled[j * (kBlock / 2) + q] = (v - mean) / scale;
      }
    }
    for (std::size_t c = 0; c < outputs_; ++c) {
      const double* w = coef_.data() + c * width_;
      Lanes s0{}, s1{}, s2{}, s3{};
      for (std::size_t j = 0; j < width_; ++j) {
        const Lanes wj = Broadcast(w[j]);
        const Lanes* column = scaled + j * (kBlock / 2);
        s0 += column[0] * wj;
        s1 += column[1] * wj;
        s2 += column[2] * wj;
        s3 += column[3] * wj;
      }
      const double sums[kBlock] = {s0[0], s0[1], s1[0], s1[1],
                                   s2[0], s2[1], s3[0], s3[1]};
      for (std::size_t i = 0; i < n; ++i) {
        z[i * outputs_ + c] = sums[i] + intercept_[c];
      }
    }
  }

 private:
  using Lanes = double __attribute__((vector_size(2 * sizeof(double))));

  static Lanes Broadcast(double v) { return Lanes{v, v}; }

  std::size_t width_ = 0;
  std::size_t outputs_ = 0;
  std::vector<double> coef_;
  std::vector<double> intercept_;
  std::vector<double> mean_;
  std::vector<double> scale_;
  std::vector<Lanes> scaled_;  // [width, kBlock / 2]
  std::vector<float> tail_;    // [kBlock, width]: a short block, padded
};

}  // namespace latefuse::models_internal

#endif  // LATEFUSE_PLUGINS_MODELS_INTERNAL_LINEAR_KERNEL_H_
