// Tests for core/json_text.h. AppendShortestDouble and WriteShortestDouble
// (FindShortestDecimal then WriteShortestDecimal):
// byte for byte what fmt::format("{}", x) writes, which is how records
// printed numbers before, over special values, the notation boundaries for
// every digit count and millions of random doubles, and WriteShortestDouble
// within its room; WriteEightDigits on every value below 10^8; the JSON
// strings as nlohmann::json writes them.
#include "core/json_text.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
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

// WriteShortestDouble's text, written between guard bytes that it must leave
// alone: kShortestDoubleRoom bytes are all it may touch.
std::string Written(double value) {
  constexpr char kGuard = '\x5A';
  char buffer[kShortestDoubleRoom + 32];
  std::memset(buffer, kGuard, sizeof buffer);
  char* const out = buffer + 16;
  char* const end = WriteShortestDouble(value, out);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(buffer[i], kGuard) << "wrote before the room at " << i;
    EXPECT_EQ(out[kShortestDoubleRoom + i], kGuard)
        << "wrote past the room at " << i;
  }
  EXPECT_LE(end - out, static_cast<std::ptrdiff_t>(kShortestDoubleMaxSize));
  return std::string(out, end);
}

// Expects fmt's text for every value from both forms; stops after a few
// mismatches.
void ExpectAsFmt(const std::vector<double>& values) {
  int mismatches = 0;
  for (const double value : values) {
    const std::string want = fmt::format("{}", value);
    const std::string got = Shortest(value);
    const std::string written = Written(value);
    if (got == want && written == want) continue;
    ADD_FAILURE() << "bits " << std::bit_cast<std::uint64_t>(value)
                  << ": fmt writes " << want << ", Append " << got << ", Write "
                  << written;
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

// Fixed notation runs from 1e-4 to below 1e16: each digit count (1 to 17)
// at each decimal exponent around both switches, with the digits
// 1234567890... and 9999...: the point before, inside and after the digits,
// the longest texts, and the values next to each.
TEST(AppendShortestDoubleTest, EveryDigitCountAtEachNotationSwitch) {
  std::vector<double> values;
  for (int count = 1; count <= 17; ++count) {
    for (const char* pattern :
         {"12345678901234567", "99999999999999999", "10000000000000001"}) {
      std::string digits(pattern, static_cast<std::size_t>(count));
      for (int e = -8; e <= 20; ++e) {
        const std::string text = digits.substr(0, 1) + "." + digits.substr(1) +
                                 "e" + std::to_string(e);
        const double v = std::strtod(text.c_str(), nullptr);
        for (const double w :
             {v, std::nextafter(v, 0.0),
              std::nextafter(v, std::numeric_limits<double>::infinity())}) {
          values.push_back(w);
          values.push_back(-w);
        }
      }
    }
  }
  ExpectAsFmt(values);
}

TEST(AppendShortestDoubleTest, SubnormalsAreWrittenAsFmtWritesThem) {
  std::mt19937_64 rng(5);
  std::vector<double> values;
  for (std::uint64_t bits = 1; bits < 4096; ++bits)
    values.push_back(std::bit_cast<double>(bits));
  for (int i = 0; i < 100000; ++i)  // exponent bits 0: subnormal
    values.push_back(std::bit_cast<double>(rng() & ((1ULL << 52) - 1)));
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

TEST(FindShortestDecimalTest, GivesTheShortestSignificandAndExponent) {
  const auto expect = [](double value, std::uint64_t significand,
                         int exponent) {
    const ShortestDecimal decimal = FindShortestDecimal(value);
    EXPECT_EQ(decimal.significand, significand) << value;
    EXPECT_EQ(decimal.exponent, exponent) << value;
    EXPECT_EQ(std::bit_cast<std::uint64_t>(decimal.value),
              std::bit_cast<std::uint64_t>(value));
  };
  expect(0.25, 25, -2);
  expect(-1e21, 1, 21);
  expect(0.1 + 0.2, 30000000000000004, -17);
  expect(std::numeric_limits<double>::denorm_min(), 5, -324);
  expect(-0.0, 0, 0);
  expect(std::numeric_limits<double>::infinity(), 0, 0);
  expect(std::numeric_limits<double>::quiet_NaN(), 0, 0);
}

// Every value below 10^8, against a decimal counter.
TEST(WriteEightDigitsTest, EveryValueBelowTenToTheEight) {
  char want[8];
  std::memset(want, '0', 8);
  char got[8];
  std::uint32_t mismatches = 0;
  for (std::uint32_t v = 0; v < 100000000; ++v) {
    json_text_internal::WriteEightDigits(v, got);
    if (std::memcmp(got, want, 8) != 0 && ++mismatches <= 5)
      ADD_FAILURE() << v << " written as " << std::string(got, 8);
    for (int i = 7; i >= 0 && ++want[i] > '9'; --i) want[i] = '0';
  }
  EXPECT_EQ(mismatches, 0u);
}

// Each ASCII byte, alone and between others, as nlohmann::json quotes it
// (bytes of 0x80 and up pass through; nlohmann checks they are UTF-8).
TEST(JsonStringTest, AsciiIsEscapedAsNlohmannEscapesIt) {
  for (int c = 0; c < 0x80; ++c) {
    const std::string text = std::string("a") + static_cast<char>(c) + "z";
    std::string out = "prefix ";
    AppendJsonString(text, out);
    EXPECT_EQ(out, "prefix " + nlohmann::json(text).dump()) << "byte " << c;
  }
  const std::string utf8 = "caf\xC3\xA9 \xE2\x82\xAC";
  std::string out;
  AppendJsonString(utf8, out);
  EXPECT_EQ(out, "\"" + utf8 + "\"");
}

// The bound holds for the worst text (every byte a \u00XX) and is reached.
TEST(JsonStringTest, WriteStaysWithinTheBound) {
  const std::string text(100, '\x01');
  std::string buffer(JsonStringBound(text.size()) + 16, '#');
  const char* const end = WriteJsonString(text, buffer.data());
  EXPECT_EQ(end - buffer.data(),
            static_cast<std::ptrdiff_t>(JsonStringBound(text.size())));
  EXPECT_EQ(buffer.substr(0, 7), "\"\\u0001");
  EXPECT_EQ(buffer.substr(JsonStringBound(text.size())), std::string(16, '#'));
}

}  // namespace
}  // namespace latefuse
