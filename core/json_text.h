// Writing JSON text by hand where a JSON library would cost more than it gives:
// output records on the hot path, params converted from YAML, quoted values in
// messages.
//
//   std::string out;
//   AppendJsonString("say \"hi\"", out);   // out == "\"say \\\"hi\\\"\""
//
// The Write* forms write through a char* into room the caller made, for a
// writer that grows its buffer once for many strings and numbers:
//
//   char text[kShortestDoubleRoom];
//   char* end = WriteShortestDouble(0.25, text);  // "0.25", end == text + 4
#ifndef LATEFUSE_CORE_JSON_TEXT_H_
#define LATEFUSE_CORE_JSON_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fmt/format.h"

namespace latefuse {

// Appends `s` to `out` as a JSON string literal, quotes included. UTF-8 passes
// through; quotes, backslashes and control characters are escaped.
void AppendJsonString(std::string_view s, std::string& out);

// The most bytes WriteJsonString writes for `size` bytes of text: quotes,
// and every byte escaped as \u00XX.
constexpr std::size_t JsonStringBound(std::size_t size) { return 2 + 6 * size; }

// Writes `s` as AppendJsonString appends it, at `out`, which has room for
// JsonStringBound(s.size()) bytes; returns the end of the text.
char* WriteJsonString(std::string_view s, char* out);

// Appends `value` exactly as fmt::format("{}", value) writes it: the shortest
// digits that read back as the same double (fmt's Dragonbox), in fixed
// notation for decimal exponents -4..15 (0.0001, 123.5) and as d.ddde+XX
// otherwise (1e-05, 1.5e+16), "-" before negatives and -0; "nan", "inf"
// for the non-finite. Skips fmt's general float writer (padding, locale,
// grouping), which cost as much as finding the digits on the records' hot
// path.
void AppendShortestDouble(double value, std::string& out);

// The longest text AppendShortestDouble writes: "-2.2250738585072014e-308".
inline constexpr std::size_t kShortestDoubleMaxSize = 24;
// The bytes WriteShortestDouble may write from `out`: its text and, past the
// text, bytes it leaves undefined (it copies digits in blocks of 17 bytes,
// which compile to two moves where a copy of the exact length would be a
// call to memcpy).
inline constexpr std::size_t kShortestDoubleRoom = 40;

// Writes `value` as AppendShortestDouble appends it, at `out`, which has
// kShortestDoubleRoom writable bytes; returns the end of the text (at most
// kShortestDoubleMaxSize bytes from `out`).
char* WriteShortestDouble(double value, char* out);

// WriteShortestDouble in its two steps, finding the digits (Dragonbox) and
// writing them, for a writer of several numbers: finding the next number's
// digits before writing this one lets the CPU work on both at once (1.05x
// on a row of 10 probabilities, bench/records_bench).
//
//   ShortestDecimal next = FindShortestDecimal(values[0]);
//   for (std::size_t i = 0; i < n; ++i) {
//     const ShortestDecimal decimal = next;
//     if (i + 1 < n) next = FindShortestDecimal(values[i + 1]);
//     out = WriteShortestDecimal(decimal, out);  // room as WriteShortestDouble
//   }
struct ShortestDecimal {
  double value;
  // |value| = significand * 10^exponent, the shortest significand that reads
  // back as |value|; 0 and 0 when value is 0, infinite or NaN.
  std::uint64_t significand;
  int exponent;
};
ShortestDecimal FindShortestDecimal(double value);
char* WriteShortestDecimal(const ShortestDecimal& decimal, char* out);

namespace json_text_internal {

// Writes the 8 decimal digits of `v` < 10^8, leading zeros included, at
// `out`. Inline: WriteShortestDouble calls it twice per number, and inlined
// the two run side by side.
//
// jeaiii's method (github.com/jeaiii/itoa): t = v / 10^6 in fixed point with
// 57 fraction bits, rounded up; its integer part is the first digit pair,
// and each multiplication of the fraction by 100 brings out the next: four
// short multiplications, no division. Rounding up adds under 10^8 units of
// 2^-57, which the multiplications grow to under 10^8 * 100^k before pair
// k + 1, always below the 2^57 / 100^(3 - k) units a pair's value spans.
inline void WriteEightDigits(std::uint32_t v, char* out) {
  constexpr std::uint64_t kFraction = (std::uint64_t{1} << 57) - 1;
  std::uint64_t t = v * ((std::uint64_t{1} << 57) / 1000000 + 1);
  std::memcpy(out, fmt::detail::digits2(t >> 57), 2);
  t = (t & kFraction) * 100;
  std::memcpy(out + 2, fmt::detail::digits2(t >> 57), 2);
  t = (t & kFraction) * 100;
  std::memcpy(out + 4, fmt::detail::digits2(t >> 57), 2);
  t = (t & kFraction) * 100;
  std::memcpy(out + 6, fmt::detail::digits2(t >> 57), 2);
}

}  // namespace json_text_internal

}  // namespace latefuse

#endif  // LATEFUSE_CORE_JSON_TEXT_H_
