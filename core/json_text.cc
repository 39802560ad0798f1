#include "core/json_text.h"

#include <cmath>
#include <cstring>

#include "fmt/compile.h"
#include "fmt/format.h"

namespace latefuse {

char* WriteJsonString(std::string_view s, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out++ = '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != '"' && c != '\\') {
      *out++ = ch;
      continue;
    }
    *out++ = '\\';
    switch (c) {
      case '"':
        *out++ = '"';
        break;
      case '\\':
        *out++ = '\\';
        break;
      case '\b':
        *out++ = 'b';
        break;
      case '\f':
        *out++ = 'f';
        break;
      case '\n':
        *out++ = 'n';
        break;
      case '\r':
        *out++ = 'r';
        break;
      case '\t':
        *out++ = 't';
        break;
      default:
        std::memcpy(out, "u00", 3);
        out[3] = kHex[c >> 4];
        out[4] = kHex[c & 0xF];
        out += 5;
    }
  }
  *out++ = '"';
  return out;
}

void AppendJsonString(std::string_view s, std::string& out) {
  const std::size_t size = out.size();
  out.resize(size + JsonStringBound(s.size()));
  out.resize(static_cast<std::size_t>(WriteJsonString(s, out.data() + size) -
                                      out.data()));
}

ShortestDecimal FindShortestDecimal(double value) {
  if (!std::isfinite(value) || value == 0) return {value, 0, 0};
  const fmt::detail::dragonbox::decimal_fp<double> decimal =
      fmt::detail::dragonbox::to_decimal(std::fabs(value));
  return {value, decimal.significand, decimal.exponent};
}

char* WriteShortestDouble(double value, char* out) {
  return WriteShortestDecimal(FindShortestDecimal(value), out);
}

char* WriteShortestDecimal(const ShortestDecimal& decimal, char* out) {
  using json_text_internal::WriteEightDigits;
  const double value = decimal.value;
  if (!std::isfinite(value)) {
    return fmt::format_to(out, FMT_COMPILE("{}"), value);
  }
  if (std::signbit(value)) *out++ = '-';
  if (value == 0) {
    *out = '0';
    return out + 1;
  }
  const std::uint64_t significand = decimal.significand;  // < 10^17
  const int count = fmt::detail::count_digits(significand);
  // All 17 digits, leading zeros included, whatever the count: branches on
  // the count would mispredict, as probabilities have 15 to 17 digits.
  // Zeroed past them for the block copies.
  char digit_buffer[48] = {};
  const auto high = static_cast<std::uint32_t>(significand / 100000000);
  digit_buffer[0] = static_cast<char>('0' + high / 100000000);
  WriteEightDigits(high % 100000000, digit_buffer + 1);
  WriteEightDigits(static_cast<std::uint32_t>(significand % 100000000),
                   digit_buffer + 9);
  const char* const digits = digit_buffer + 17 - count;
  const int exponent = decimal.exponent;  // value = digits * 10^exponent
  const int scientific_exponent = exponent + count - 1;
  // `from` is in digit_buffer, whose 17 bytes from any digit are readable.
  auto put = [&](const char* from, int n) {  // n <= 17
    std::memcpy(out, from, 17);
    out += n;
  };
  if (scientific_exponent < -4 || scientific_exponent >= 16) {
    *out++ = digits[0];
    if (count > 1) {
      *out++ = '.';
      put(digits + 1, count - 1);
    }
    *out++ = 'e';
    int e = scientific_exponent;
    *out++ = e < 0 ? '-' : '+';
    if (e < 0) e = -e;
    if (e >= 100) {
      if (e >= 1000) *out++ = static_cast<char>('0' + e / 1000);
      *out++ = static_cast<char>('0' + e / 100 % 10);
      e %= 100;
    }
    // Two bytes exactly: the digit-pair table ends right after "99".
    std::memcpy(out, fmt::detail::digits2(static_cast<std::size_t>(e)), 2);
    out += 2;
  } else if (exponent >= 0) {  // 1234e2 -> 123400
    put(digits, count);
    std::memset(out, '0', 16);  // exponent < 16 here
    out += exponent;
  } else if (const int point = exponent + count; point > 0) {  // 12.34
    put(digits, point);
    *out++ = '.';
    put(digits + point, count - point);
  } else {                         // 0.001234
    std::memcpy(out, "0.000", 5);  // -point <= 3 here
    out += 2 - point;
    put(digits, count);
  }
  return out;
}

void AppendShortestDouble(double value, std::string& out) {
  const std::size_t size = out.size();
  out.resize(size + kShortestDoubleRoom);
  out.resize(static_cast<std::size_t>(
      WriteShortestDouble(value, out.data() + size) - out.data()));
}

}  // namespace latefuse
