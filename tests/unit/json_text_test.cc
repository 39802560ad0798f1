// Tests for core/json_text.h's AppendShortestDouble: byte for byte what
// fmt::format("{}", x) writes, which is how records printed numbers before,
// over special values, the notation boundaries and millions of random doubles.
#include "core/json_text.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace latefuse {
namespace {

std::string Shortest(double value) {
  std::string out = "prefix ";
  AppendShortestDouble(value, out);
  return out.substr(7);
}

// Expects fmt's text for every value; stops after a few mismatches.
void ExpectAsFmt(const std::vector<double>& values) {
  int mismatches = 0;
  for (const double value : values) {
    const std::string want = fmt::format("{}", value);
    const std::string got = Shortest(value);
    if (got == want) continue;
    ADD_FAILURE() << "bits " << std::bit_cast<std::uint64_t>(value)
                  << ": fmt writes " << want << ", got " << got;
    if (++mismatches == 5) return;
  }
}

TEST(AppendShortestDoubleTest, SpecialValuesAreWrittenAsFmtWritesThem) {
  using limits = std::numeric_limits<double>;
  ExpectAsFmt({0.0,
               -0.0,
               1.0,
               -1.0,
               0.5,
               0.1,
               1.0 / 3.0,
               2.0 / 3.0,
               100.0,
               123456.0,
               1e15,
               9999999999999998.0,
               1e16,
               1.5e16,
               1e17,
               1e21,
               1e22,
               1e23,
               0.001,
               0.0001,
               0.00012345,
               0.0001234567890123456,
               1e-5,
               1.5e-5,
               9.99e-5,
               1e-100,
               1e100,
               1e-300,
               1e300,
               limits::max(),
               -limits::max(),
               limits::min(),
               limits::denorm_min(),
               -limits::denorm_min(),
               limits::epsilon(),
               limits::infinity(),
               -limits::infinity(),
               limits::quiet_NaN(),
               -limits::quiet_NaN(),
               0.19883130580218114,
               0.8011686941978189});
}

TEST(AppendShortestDoubleTest, PowersOfTenAndNeighboursAreWrittenAsFmtDoes) {
  std::vector<double> values;
  for (int e = -320; e <= 308; ++e) {
    const double p = std::pow(10.0, e);
    for (const double v :
         {p, std::nextafter(p, 0.0),
          std::nextafter(p, std::numeric_limits<double>::infinity()), 5 * p,
          1.25 * p}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  ExpectAsFmt(values);
}

TEST(AppendShortestDoubleTest, RandomDoublesAreWrittenAsFmtWritesThem) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> values;
  for (int i = 0; i < 1000000; ++i) {
    // Any bit pattern (every exponent, subnormals, NaNs), and values shaped
    // like probabilities and model scores.
    values.push_back(std::bit_cast<double>(rng()));
    values.push_back(unit(rng));
    values.push_back(unit(rng) / static_cast<double>(1 + rng() % 1000000));
    values.push_back((unit(rng) - 0.5) *
                     std::pow(10.0, static_cast<int>(rng() % 40) - 20));
  }
  ExpectAsFmt(values);
}

}  // namespace
}  // namespace latefuse
