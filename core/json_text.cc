#include "core/json_text.h"

#include <cmath>
#include <cstring>

#include "fmt/compile.h"
#include "fmt/format.h"

namespace latefuse {

void AppendJsonString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void AppendShortestDouble(double value, std::string& out) {
  // The longest: "-2.2250738585072014e-308" (24) or "-0.00012345678901234567"
  // (23).
  // Room past the longest text and digits for the fixed-size copies below:
  // copies of a variable length are calls to memmove, of a constant length a
  // few moves, and this runs for every probability written.
  char text[64];
  char* end = text;
  if (!std::isfinite(value)) {
    end = fmt::format_to(text, FMT_COMPILE("{}"), value);
    out.append(text, static_cast<std::size_t>(end - text));
    return;
  }
  if (std::signbit(value)) {
    *end++ = '-';
    value = -value;
  }
  const fmt::detail::dragonbox::decimal_fp<double> decimal =
      fmt::detail::dragonbox::to_decimal(value);
  // The significand's digits (at most 17), two at a time from the right.
  char digit_buffer[48] = {};
  char* const digits_end = digit_buffer + 20;
  char* digits = digits_end;
  std::uint64_t rest = decimal.significand;
  while (rest >= 100) {
    digits -= 2;
    std::memcpy(digits, fmt::detail::digits2(rest % 100), 2);
    rest /= 100;
  }
  if (rest >= 10) {
    digits -= 2;
    std::memcpy(digits, fmt::detail::digits2(rest), 2);
  } else {
    *--digits = static_cast<char>('0' + rest);
  }
  const int count = static_cast<int>(digits_end - digits);
  const int exponent = decimal.exponent;  // value = digits * 10^exponent
  const int scientific_exponent = exponent + count - 1;
  // `from` is in digit_buffer, whose 17 bytes from any digit are readable.
  auto put = [&](const char* from, int n) {  // n <= 17
    std::memcpy(end, from, 17);
    end += n;
  };
  if (scientific_exponent < -4 || scientific_exponent >= 16) {
    *end++ = digits[0];
    if (count > 1) {
      *end++ = '.';
      put(digits + 1, count - 1);
    }
    *end++ = 'e';
    int e = scientific_exponent;
    *end++ = e < 0 ? '-' : '+';
    if (e < 0) e = -e;
    if (e >= 100) {
      if (e >= 1000) *end++ = static_cast<char>('0' + e / 1000);
      *end++ = static_cast<char>('0' + e / 100 % 10);
      e %= 100;
    }
    // Two bytes exactly: the digit-pair table ends right after "99".
    std::memcpy(end, fmt::detail::digits2(static_cast<std::size_t>(e)), 2);
    end += 2;
  } else if (exponent >= 0) {  // 1234e2 -> 123400
    put(digits, count);
    std::memset(end, '0', 16);  // exponent < 16 here
    end += exponent;
  } else if (const int point = exponent + count; point > 0) {  // 12.34
    put(digits, point);
    *end++ = '.';
    put(digits + point, count - point);
  } else {  // 0.001234
    *end++ = '0';
    *end++ = '.';
    std::memset(end, '0', 4);  // -point <= 3 here
    end += -point;
    put(digits, count);
  }
  out.append(text, static_cast<std::size_t>(end - text));
}

}  // namespace latefuse
