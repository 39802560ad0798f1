// The `linear` plugin's 8-row kernel (plugins/models/internal/linear_kernel.h)
// against the plain per-row loop it replaces: the same decision values, bit
// for bit, for every block length (full blocks and a short last one), binary
// and multiclass, wide and narrow rows. The numbers against scikit-learn are
// checked end to end by reference_test.
#include "plugins/models/internal/linear_kernel.h"

#include <cmath>
#include <cstddef>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace latefuse {
namespace {

using models_internal::LinearKernel;

// z = ((x - mean) / scale) . w_c + b_c, summed feature by feature from 0.
double PlainDecision(const float* x, std::size_t width,
                     const std::vector<double>& coef,
                     const std::vector<double>& intercept,
                     const std::vector<double>& mean,
                     const std::vector<double>& scale, std::size_t c) {
  double sum = 0.0;
  for (std::size_t j = 0; j < width; ++j) {
    sum +=
        (static_cast<double>(x[j]) - mean[j]) / scale[j] * coef[c * width + j];
  }
  return sum + intercept[c];
}

TEST(LinearKernelTest, EqualsThePlainLoopBitForBit) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (const auto& [width, outputs] :
       {std::pair<std::size_t, std::size_t>{1, 1},
        {10, 1},
        {16, 10},
        {47, 10},
        {3, 2}}) {
    std::vector<double> coef(width * outputs), intercept(outputs), mean(width),
        scale(width);
    for (double& v : coef) v = normal(rng);
    for (double& v : intercept) v = normal(rng);
    for (double& v : mean) v = normal(rng);
    for (double& v : scale) v = 0.1 + std::abs(normal(rng));
    LinearKernel kernel(coef, intercept, mean, scale);
    ASSERT_EQ(kernel.width(), width);
    ASSERT_EQ(kernel.outputs(), outputs);
    for (std::size_t n = 1; n <= LinearKernel::kBlock; ++n) {
      std::vector<float> x(n * width);
      for (float& v : x) v = static_cast<float>(normal(rng) * 100.0);
      std::vector<double> z(LinearKernel::kBlock * outputs, -1.0);
      kernel.Decisions(x.data(), n, z.data());
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t c = 0; c < outputs; ++c) {
          EXPECT_EQ(z[i * outputs + c],
                    PlainDecision(x.data() + i * width, width, coef, intercept,
                                  mean, scale, c))
              << "width " << width << ", outputs " << outputs << ", block of "
              << n << ", row " << i << ", output " << c;
        }
      }
    }
  }
}

}  // namespace
}  // namespace latefuse
