#include "core/records.h"

#include <simdjson.h>

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/json_text.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Strings quoted in messages are cut to about this many characters.
constexpr std::size_t kMaxQuotedChars = 40;

// Deeper nesting than this is not followed when re-reading a refused line
// (simdjson's own default limit is 1024 as well).
constexpr std::size_t kMaxRescanDepth = 1024;

// Debian's Abseil is built with its own string_view type rather than
// std::string_view, so views cross into Abseil through this.
absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (!IsJsonSpace(c) && c != '\f' && c != '\v') return false;
  }
  return true;
}

// `text` as a JSON string literal, cut to about kMaxQuotedChars characters
// (never inside a UTF-8 sequence) with "..." marking the cut.
std::string QuoteShort(std::string_view text) {
  bool cut = false;
  if (text.size() > kMaxQuotedChars) {
    std::size_t end = kMaxQuotedChars - 3;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    text = text.substr(0, end);
    cut = true;
  }
  std::string out;
  AppendJsonString(text, out);
  if (cut) out.insert(out.size() - 1, "...");
  return out;
}

// A raw token (a number simdjson refused) cut for a message.
std::string ShortToken(std::string_view token) {
  if (token.size() <= kMaxQuotedChars) return std::string(token);
  return absl::StrCat(ToAbsl(token.substr(0, kMaxQuotedChars - 3)), "...");
}

// A JSON value as a message shows it after "got": scalars as short JSON text
// (42, 1.5, true, null, "abc"), containers by kind (a list, an object). With
// `strings_by_kind`, a string is "a string" rather than its text.
std::string Describe(element value, bool strings_by_kind) {
  switch (value.type()) {
    case element_type::ARRAY:
      return "a list";
    case element_type::OBJECT:
      return "an object";
    case element_type::STRING:
      if (strings_by_kind) return "a string";
      return QuoteShort(value.get_string().value_unsafe());
    case element_type::INT64:
      return absl::StrCat(value.get_int64().value_unsafe());
    case element_type::UINT64:
      return absl::StrCat(value.get_uint64().value_unsafe());
    case element_type::DOUBLE:
      return fmt::format("{}", value.get_double().value_unsafe());
    case element_type::BOOL:
      return value.get_bool().value_unsafe() ? "true" : "false";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

std::string CountOfNumbers(std::size_t n) {
  return absl::StrCat(n, n == 1 ? " number" : " numbers");
}

// The JSON number grammar of RFC 8259:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view t) {
  std::size_t i = 0;
  const std::size_t n = t.size();
  auto digits = [&] {
    const std::size_t start = i;
    while (i < n && IsDigit(t[i])) ++i;
    return i > start;
  };
  if (i < n && t[i] == '-') ++i;
  if (i < n && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// One level of nesting while re-reading a line: an object (with the key
// being read) or a list (with the index of the element being read).
struct PathStep {
  bool is_object = false;
  std::string key;
  std::size_t index = 0;
};

std::string FormatPath(const std::vector<PathStep>& path) {
  std::string out;
  for (const PathStep& step : path) {
    if (step.is_object) {
      if (!out.empty()) out += '.';
      out += step.key;
    } else {
      absl::StrAppend(&out, "[", step.index, "]");
    }
  }
  return out;
}

// Re-reads a line that simdjson refused, on the error path only, to recover
// what simdjson's error code alone does not tell: the record's id (so a bad
// line's output can still name it) and, when simdjson refused a number, which
// number and where. It follows the JSON structure leniently and stops at the
// first thing it cannot follow; everything before that point is as simdjson
// would read it, since strings and numbers are decoded by simdjson itself.
class Rescan {
 public:
  Rescan(std::string_view line, simdjson::dom::parser& parser,
         bool find_refused_number)
      : line_(line),
        parser_(parser),
        find_refused_number_(find_refused_number) {}

  void Run();

  bool root_is_object() const { return root_is_object_; }
  // A usable top-level "id" given once before the point where reading
  // stopped.
  bool has_id() const { return id_count_ == 1 && !id_.empty(); }
  const std::string& id() const { return id_; }
  // The first number that is valid JSON but that simdjson refuses on its own
  // (out of the range of a double, or an integer beyond 64 bits), and where.
  bool found_refused_number() const { return found_refused_number_; }
  std::string_view refused_number() const { return refused_number_; }
  const std::vector<PathStep>& refused_number_path() const {
    return refused_number_path_;
  }

 private:
  enum class Expect { kValue, kValueOrClose, kKey, kKeyOrClose, kCommaOrClose };

  void SkipSpace() {
    while (pos_ < line_.size() && IsJsonSpace(line_[pos_])) ++pos_;
  }
  // Reads the string token starting at pos_ (a '"'), quotes included.
  bool ReadString(std::string_view& token);
  // Decodes a string token with simdjson (escapes, UTF-8); a token without
  // backslashes is taken as is unless `validate`.
  bool Decode(std::string_view token, bool validate, std::string& out);
  bool ReadValue(Expect& expect);

  std::string_view line_;
  simdjson::dom::parser& parser_;
  const bool find_refused_number_;
  std::size_t pos_ = 0;
  std::vector<PathStep> stack_;

  bool root_is_object_ = false;
  int id_count_ = 0;
  std::string id_;
  bool found_refused_number_ = false;
  std::string_view refused_number_;
  std::vector<PathStep> refused_number_path_;
};

bool Rescan::ReadString(std::string_view& token) {
  const std::size_t start = pos_;
  std::size_t i = pos_ + 1;
  while (i < line_.size()) {
    if (line_[i] == '\\') {
      i += 2;
    } else if (line_[i] == '"') {
      pos_ = i + 1;
      token = line_.substr(start, pos_ - start);
      return true;
    } else {
      ++i;
    }
  }
  return false;
}

bool Rescan::Decode(std::string_view token, bool validate, std::string& out) {
  if (!validate && token.find('\\') == std::string_view::npos) {
    out.assign(token.substr(1, token.size() - 2));
    return true;
  }
  std::string_view text;
  if (parser_.parse(token.data(), token.size()).get_string().get(text)) {
    return false;
  }
  out.assign(text);
  return true;
}

// Reads the value at pos_; false where the line cannot be followed further or
// the refused number was found.
bool Rescan::ReadValue(Expect& expect) {
  const char c = line_[pos_];
  if (c == '{' || c == '[') {
    if (stack_.size() >= kMaxRescanDepth) return false;
    stack_.emplace_back().is_object = c == '{';
    ++pos_;
    expect = c == '{' ? Expect::kKeyOrClose : Expect::kValueOrClose;
    return true;
  }
  expect = Expect::kCommaOrClose;
  if (c == '"') {
    std::string_view token;
    if (!ReadString(token)) return false;
    const bool is_top_level_id =
        stack_.size() == 1 && stack_[0].is_object && stack_[0].key == "id";
    if (is_top_level_id && id_count_ == 1 &&
        !Decode(token, /*validate=*/true, id_)) {
      id_.clear();
    }
    return true;
  }
  if (c == '-' || IsDigit(c)) {
    const std::size_t start = pos_;
    while (pos_ < line_.size() &&
           (IsDigit(line_[pos_]) || line_[pos_] == '-' || line_[pos_] == '+' ||
            line_[pos_] == '.' || line_[pos_] == 'e' || line_[pos_] == 'E')) {
      ++pos_;
    }
    const std::string_view token = line_.substr(start, pos_ - start);
    if (!IsJsonNumber(token)) return false;
    if (find_refused_number_ &&
        parser_.parse(token.data(), token.size()).error() !=
            simdjson::SUCCESS) {
      found_refused_number_ = true;
      refused_number_ = token;
      refused_number_path_ = stack_;
      return false;
    }
    return true;
  }
  for (std::string_view literal : {"true", "false", "null"}) {
    if (line_.substr(pos_, literal.size()) == literal) {
      pos_ += literal.size();
      return true;
    }
  }
  return false;
}

void Rescan::Run() {
  SkipSpace();
  root_is_object_ = pos_ < line_.size() && line_[pos_] == '{';
  Expect expect = Expect::kValue;
  while (true) {
    SkipSpace();
    if (pos_ == line_.size()) return;
    const char c = line_[pos_];
    switch (expect) {
      case Expect::kValueOrClose:
        if (c == ']') {
          stack_.pop_back();
          ++pos_;
          expect = Expect::kCommaOrClose;
          break;
        }
        [[fallthrough]];
      case Expect::kValue:
        if (!ReadValue(expect)) return;
        break;
      case Expect::kKeyOrClose:
        if (c == '}') {
          stack_.pop_back();
          ++pos_;
          expect = Expect::kCommaOrClose;
          break;
        }
        [[fallthrough]];
      case Expect::kKey: {
        std::string_view token;
        if (c != '"' || !ReadString(token) ||
            !Decode(token, /*validate=*/false, stack_.back().key)) {
          return;
        }
        if (stack_.size() == 1 && stack_[0].key == "id") ++id_count_;
        SkipSpace();
        if (pos_ == line_.size() || line_[pos_] != ':') return;
        ++pos_;
        expect = Expect::kValue;
        break;
      }
      case Expect::kCommaOrClose: {
        if (stack_.empty()) return;  // trailing content after the value
        PathStep& top = stack_.back();
        if (c == ',') {
          ++pos_;
          if (top.is_object) {
            expect = Expect::kKey;
          } else {
            ++top.index;
            expect = Expect::kValue;
          }
        } else if (c == (top.is_object ? '}' : ']')) {
          stack_.pop_back();
          ++pos_;
        } else {
          return;
        }
        break;
      }
    }
  }
}

// The fast path: a hand parser for the lines `run` mostly sees, plain records
// of plain strings and numbers, reading them straight into the batch. It
// takes a line only when simdjson would read it to exactly the same values
// without a complaint; on anything else (an escape, a fault, a number that
// simdjson rounds or refuses in its own way, deep nesting) it gives up, and
// the line goes through simdjson, which has the messages. So it never has to
// say what is wrong, only to be sure nothing is.
class FastLine {
 public:
  explicit FastLine(std::string_view line)
      : p_(line.data()), end_(line.data() + line.size()) {}

  void SkipSpace() {
    while (p_ < end_ && IsJsonSpace(*p_)) ++p_;
  }
  bool At(char c) const { return p_ < end_ && *p_ == c; }
  bool AtEnd() const { return p_ == end_; }
  // Skips `c` (after spaces) when it comes next.
  bool Take(char c) {
    SkipSpace();
    if (!At(c)) return false;
    ++p_;
    return true;
  }
  bool TakeNull() {
    if (end_ - p_ < 4 || std::memcmp(p_, "null", 4) != 0) return false;
    p_ += 4;
    return true;
  }

  // A string without escapes or control characters, in valid UTF-8; its
  // text without the quotes.
  bool String(std::string_view& text) {
    if (!At('"')) return false;
    const char* start = ++p_;
    // Eight bytes at a time up to the first that needs a look: the closing
    // quote, mostly.
    while (end_ - p_ >= 8) {
      const std::uint64_t flags = StringStopFlags(Load8(p_));
      if (flags != 0) {
        p_ += std::countr_zero(flags) / 8;
        break;
      }
      p_ += 8;
    }
    bool ascii = true;
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        text = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return ascii || simdjson::validate_utf8(text.data(), text.size());
      }
      if (c == '\\' || c < 0x20) return false;
      ascii = ascii && c < 0x80;
      ++p_;
    }
    return false;
  }

  // A number as simdjson's get_double gives it: integers of up to 18 digits
  // convert from int64 (so -0 is 0.0); other numbers round correctly from
  // their decimal text. Most take Clinger's exact path (a significand of at
  // most 19 digits below 2^53, a power of ten below 10^23: one correctly
  // rounded multiplication or division), the rest std::from_chars. Longer
  // integers and what from_chars finds out of range (simdjson refuses some
  // and rounds others to 0) are left to simdjson.
  bool Number(double& value) {
    const char* start = p_;
    const bool negative = At('-');
    if (negative) ++p_;
    const char* digits = p_;
    std::uint64_t significand = 0;
    while (p_ < end_ && IsDigit(*p_))
      significand = significand * 10 + static_cast<unsigned>(*p_++ - '0');
    const std::size_t count = static_cast<std::size_t>(p_ - digits);
    if (count == 0 || count > 18 || (count > 1 && *digits == '0')) return false;
    std::size_t significant = count;
    int exponent = 0;
    bool is_integer = true;
    if (At('.')) {
      ++p_;
      const char* fraction = p_;
      for (; p_ < end_ && IsDigit(*p_); ++p_) {
        if (++significant > 19) continue;  // not exact: from_chars below
        significand = significand * 10 + static_cast<unsigned>(*p_ - '0');
        --exponent;
      }
      // Trailing zeros ("16.0", "0.50") would only cost a division below.
      while (exponent < 0 && significand % 10 == 0) {
        significand /= 10;
        ++exponent;
      }
      if (p_ == fraction) return false;
      is_integer = false;
    }
    if (At('e') || At('E')) {
      ++p_;
      const bool negative_exponent = At('-');
      if (At('+') || At('-')) ++p_;
      const char* exponent_digits = p_;
      int written = 0;
      for (; p_ < end_ && IsDigit(*p_); ++p_) {
        if (written < 100000) written = written * 10 + (*p_ - '0');
      }
      if (p_ == exponent_digits) return false;
      exponent += negative_exponent ? -written : written;
      is_integer = false;
    }
    if (is_integer) {
      value = Integer(negative, significand);
      return true;
    }
    if (significant <= 19 && significand <= (std::uint64_t{1} << 53) &&
        exponent >= -22 && exponent <= 22) {
      value = Decimal(negative, significand, exponent);
      return true;
    }
    const std::from_chars_result parsed = std::from_chars(start, p_, value);
    return parsed.ec == std::errc() && parsed.ptr == p_;
  }

  // The `width` numbers of a dense list whose '[' is taken, through its ']',
  // each stored in out[0..width) as the float32 of what Number reads.
  bool DenseList(float* out, std::size_t width) {
    if (width == 0) return Take(']');
    // A local cursor rather than p_: the compiler keeps it in a register.
    const char* p = p_;
    float* const last = out + width - 1;
    // ShortNumber is tried first until it misses once in the list: where
    // numbers are short it is the quickest, and where they are not, trying
    // it on every number would cost a mispredicted branch on many.
    bool shorts = true;
    while (true) {
      while (p < end_ && IsJsonSpace(*p)) ++p;
      bool read = false;
      if (end_ - p >= kPlainReach) {
        if (shorts) read = shorts = ShortNumber(p, *out);
        if (!read) read = PlainNumber(p, *out);
        if (!read && end_ - p >= kLongReach) read = LongNumber(p, *out);
      }
      if (!read) {
        p_ = p;
        double number = 0;
        if (!Number(number) || !(std::fabs(number) < kFloat32Overflow)) {
          return false;
        }
        *out = static_cast<float>(number);
        p = p_;
      }
      while (p < end_ && IsJsonSpace(*p)) ++p;
      if (p == end_) return false;
      if (out == last) {
        p_ = p + 1;
        return *p == ']';
      }
      if (*p != ',') return false;
      ++p;
      ++out;
    }
  }

  // Any JSON value made of the above, nested at most kMaxFastDepth deep.
  bool SkipValue(int depth) {
    SkipSpace();
    if (p_ == end_) return false;
    switch (*p_) {
      case '"': {
        std::string_view ignored;
        return String(ignored);
      }
      case '{':
      case '[': {
        const char close = *p_ == '{' ? '}' : ']';
        const bool object = close == '}';
        ++p_;
        if (depth >= kMaxFastDepth) return false;
        if (Take(close)) return true;
        do {
          if (object) {
            std::string_view key;
            SkipSpace();
            if (!String(key) || !Take(':')) return false;
          }
          if (!SkipValue(depth + 1)) return false;
        } while (Take(','));
        return Take(close);
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return TakeNull();
      default: {
        double ignored = 0;
        return Number(ignored);
      }
    }
  }

 private:
  static constexpr int kMaxFastDepth = 64;

  // The numbers below read from p (kPlainReach readable bytes from p on) to
  // just before a ',' or ']' that must follow, moving p there; false with
  // nothing read for any other number or text. They read exactly what
  // Number does, taking less time where it counts in a dense list: with few
  // instructions and no branch on how many digits a number has, which the
  // branch predictor cannot guess.
  //
  // One or two digits, optionally with ".0" (pixel values, counts, Python's
  // "16.0").
  static bool ShortNumber(const char*& p, float& out) {
    const std::uint32_t first = static_cast<unsigned char>(p[0]) - '0';
    const std::uint32_t second = static_cast<unsigned char>(p[1]) - '0';
    const bool two = second <= 9;
    if ((first > 9) | (two & (first == 0))) return false;
    const char* q = p + 1 + two;
    if (q[0] == '.' && q[1] == '0') q += 2;  // "16.0" reads as 16
    if (*q != ',' && *q != ']') return false;
    // Arithmetic rather than `two ? ... : ...`, which compilers turn into a
    // branch that one- and two-digit numbers in turn mispredict.
    out = static_cast<float>(first * (1 + 9 * two) + (second & (0u - two)));
    p = q;
    return true;
  }
  // -?D or -?D.F of at most 7 characters ("0.07405", "406.4", "1001",
  // "-2.5"), from one 8-byte load that holds it and its delimiter. Where it
  // ends comes from the delimiter's flag alone, so the next number's load
  // waits on nothing else.
  static bool PlainNumber(const char*& p, float& out) {
    const std::uint64_t word = Load8(p);
    const int end = std::countr_zero(DelimiterFlags(word)) / 8;
    if (end == 8) return false;  // no delimiter in these 8 bytes
    const int sign = (word & 0xFF) == '-';
    // The bytes between the sign and the delimiter that are not digits: a
    // decimal point or none.
    const std::uint64_t between = ((std::uint64_t{1} << (8 * end)) - 1) &
                                  (~std::uint64_t{0} << (8 * sign));
    const std::uint64_t others = NotDigitFlags(word) & between;
    const int point = others == 0 ? end : std::countr_zero(others) / 8;
    const int whole = point - sign;
    const std::uint64_t digits = word >> (8 * sign);
    if ((whole == 0) | ((whole > 1) & ((digits & 0xFF) == '0'))) return false;
    double value = 0;
    if (others == 0) {
      value = Integer(sign, DigitsValue(digits, whole));
    } else {
      const int places = end - point - 1;
      if (((others & (others - 1)) != 0) | (places == 0) |
          (((word >> (8 * point)) & 0xFF) != '.')) {
        return false;
      }
      // The digits without the point, as one number of whole + places digits.
      const std::uint64_t below = (std::uint64_t{1} << (8 * whole)) - 1;
      const std::uint64_t joined = (digits & below) | ((digits >> 8) & ~below);
      value = Decimal(sign, DigitsValue(joined, whole + places), -places);
    }
    out = static_cast<float>(value);
    p += end;
    return true;
  }
  // An 8-byte load; "16.0" and its delimiter.
  static constexpr std::ptrdiff_t kPlainReach = 8;

  // -?D or -?D.F of 8 to 15 characters (float32 values printed shortest:
  // "0.006399", "1620.2218", "-1.0536123"), from two 8-byte loads; slower
  // than PlainNumber, but no branch per digit either.
  static bool LongNumber(const char*& p, float& out) {
    const std::uint64_t low = Load8(p);
    const std::uint64_t high = Load8(p + 8);
    const std::uint64_t high_delimiters = DelimiterFlags(high);
    if (DelimiterFlags(low) != 0 || high_delimiters == 0) return false;
    const int end = 8 + std::countr_zero(high_delimiters) / 8;
    const int sign = (low & 0xFF) == '-';
    const std::uint64_t low_others =
        NotDigitFlags(low) & (~std::uint64_t{0} << (8 * sign));
    const std::uint64_t high_others =
        NotDigitFlags(high) & ((std::uint64_t{1} << (8 * (end - 8))) - 1);
    // At most one byte that is not a digit, and that one a '.'.
    int point = end;
    if ((low_others != 0) + (high_others != 0) +
            ((low_others & (low_others - 1)) != 0) +
            ((high_others & (high_others - 1)) != 0) >
        1) {
      return false;
    }
    if (low_others != 0) {
      point = std::countr_zero(low_others) / 8;
      if (((low >> (8 * point)) & 0xFF) != '.') return false;
    } else if (high_others != 0) {
      point = 8 + std::countr_zero(high_others) / 8;
      if (((high >> (8 * (point - 8))) & 0xFF) != '.') return false;
    }
    const int whole = point - sign;
    if (whole == 0 || point == end - 1 ||
        (whole > 1 && ((low >> (8 * sign)) & 0xFF) == '0')) {
      return false;
    }
    const std::uint64_t integer = RunValue(p, sign, point);
    out = static_cast<float>(
        point == end ? Integer(sign, integer)
                     : Decimal(sign,
                               integer * kIntegerPowersOfTen[end - point - 1] +
                                   RunValue(p, point + 1, end),
                               point + 1 - end));
    p += end;
    return true;
  }
  // Two 8-byte loads, then the delimiter within them.
  static constexpr std::ptrdiff_t kLongReach = 16;
  static constexpr std::array<std::uint64_t, 15> kIntegerPowersOfTen = [] {
    std::array<std::uint64_t, 15> powers{};
    std::uint64_t power = 1;
    for (std::uint64_t& entry : powers) {
      entry = power;
      power *= 10;
    }
    return powers;
  }();
  // The value of the digits p[begin..end), 1 to 15 of them, end <= 16, by
  // loads within p[0..16).
  static std::uint64_t RunValue(const char* p, int begin, int end) {
    const int count = end - begin;
    if (end <= 8) return DigitsValue(Load8(p) >> (8 * begin), count);
    const std::uint64_t last8 = Load8(p + end - 8);  // p[end - 8..end)
    if (count <= 8) return DigitsValue(last8 >> (8 * (8 - count)), count);
    return RunValue(p, begin, end - 8) * 100000000 + DigitsValue(last8, 8);
  }

  static constexpr std::uint64_t kOnes = 0x0101010101010101;
  static constexpr std::uint64_t kHighBits = 0x8080808080808080;

  // 8 bytes from p, the first in the lowest byte.
  static std::uint64_t Load8(const char* p) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    if constexpr (std::endian::native == std::endian::big) {
      word = __builtin_bswap64(word);
    }
    return word;
  }
  // The high bit of each byte of `word` that equals `c` (exact: no carry
  // crosses bytes).
  static std::uint64_t EqualFlags(std::uint64_t word, char c) {
    const std::uint64_t x = word ^ (kOnes * static_cast<unsigned char>(c));
    return ~(((x & ~kHighBits) + ~kHighBits) | x) & kHighBits;
  }
  static std::uint64_t DelimiterFlags(std::uint64_t word) {
    return EqualFlags(word, ',') | EqualFlags(word, ']');
  }
  // The high bit of each byte of `word` that String must look at: '"',
  // '\\', a control character (below 0x20: 0x60 added to it leaves the high
  // bit clear) or a byte of a multi-byte UTF-8 sequence.
  static std::uint64_t StringStopFlags(std::uint64_t word) {
    const std::uint64_t control_or_high =
        (word | ~((word & ~kHighBits) + 0x60 * kOnes)) & kHighBits;
    return EqualFlags(word, '"') | EqualFlags(word, '\\') | control_or_high;
  }
  // The high bit of each byte of `word` that is not an ASCII digit: XOR
  // with '0' maps the digits, and only them, to 0..9, and a byte of 10 or
  // more sets its high bit when 0x76 is added to its low seven bits (which
  // never carries into the next byte).
  static std::uint64_t NotDigitFlags(std::uint64_t word) {
    const std::uint64_t x = word ^ (0x30 * kOnes);
    return (((x & ~kHighBits) + 0x76 * kOnes) | x) & kHighBits;
  }
  // The value of the first `count` (1 to 8) bytes of `word`, all digits
  // (simdjson's eight-digit SWAR conversion, the digits moved to the top so
  // the bytes below read as leading zeros).
  static std::uint64_t DigitsValue(std::uint64_t word, int count) {
    word = (word - 0x30 * kOnes) << (8 * (8 - count));
    word = word * 10 + (word >> 8);
    constexpr std::uint64_t kMask = 0x000000FF000000FF;
    return ((word & kMask) * 0x000F424000000064 +
            ((word >> 16) & kMask) * 0x0000271000000001) >>
           32;
  }

  // The double of an integer of at most 18 digits as simdjson gives it: from
  // int64, so -0 is 0.0.
  static double Integer(bool negative, std::uint64_t magnitude) {
    const auto integer = static_cast<std::int64_t>(magnitude);
    return static_cast<double>(negative ? -integer : integer);
  }
  // The correctly rounded double of +-significand * 10^exponent when that is
  // one exact operation (Clinger): significand <= 2^53, |exponent| <= 22.
  static double Decimal(bool negative, std::uint64_t significand,
                        int exponent) {
    static constexpr double kPowersOfTen[] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    double magnitude =
        static_cast<double>(static_cast<std::int64_t>(significand));
    magnitude = exponent < 0 ? magnitude / kPowersOfTen[-exponent]
                             : magnitude * kPowersOfTen[exponent];
    return negative ? -magnitude : magnitude;
  }

  bool Literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  const char* p_;
  const char* const end_;
};

}  // namespace

void InputBatch::Clear() {
  rows = 0;
  ids.clear();
  has_id.clear();
  labels.clear();
  has_label.clear();
  errors.clear();
  for (InputColumn& column : columns) {
    column.present.clear();
    column.dense.clear();
    column.items.clear();
  }
}

struct RecordParser::State {
  // What a row holds of each modality, while the row is parsed.
  enum Seen : std::uint8_t { kAbsent = 0, kNull = 1, kPresent = 2 };

  State(std::vector<RecordModalitySpec> specs, RecordParseMode mode)
      : modalities(std::move(specs)),
        fast_path(mode == RecordParseMode::kFast),
        modality_list(modalities.empty()
                          ? "none"
                          : absl::StrJoin(modalities, ", ",
                                          [](std::string* out,
                                             const RecordModalitySpec& spec) {
                                            out->append(spec.name);
                                          })),
        seen(modalities.size(), kAbsent),
        dense_marks(modalities.size(), 0),
        item_marks(modalities.size(), 0) {}

  // Fills row `row` of `batch` from a plain line (see FastLine); false when
  // the line is left to ParseRow. May leave values appended to the columns
  // and modalities marked seen either way: the caller rolls them back.
  bool FastParseRow(std::string_view line, std::size_t row, InputBatch& batch);
  bool FastModalities(FastLine& in, InputBatch& batch);
  bool FastModality(std::size_t k, FastLine& in, InputBatch& batch);
  // Fills row `row` of `batch` from `line` with simdjson; returns what is
  // wrong with the line (without the "line N: " prefix), or "" when it is
  // fine. May leave values appended to the columns on error: the caller
  // rolls them back.
  std::string ParseRow(std::string_view line, std::size_t row,
                       InputBatch& batch);
  // The message for a line simdjson refused, with its id salvaged if it can be.
  std::string DiagnoseRefusedLine(std::string_view line,
                                  simdjson::error_code code, std::size_t row,
                                  InputBatch& batch);
  std::string ParseModality(std::size_t k, element value, InputBatch& batch);
  bool IsDenseElementPath(const std::vector<PathStep>& path) const;

  // Marks the start of a row: nothing of any modality seen, the columns'
  // current ends remembered; RollBack returns to that.
  void StartRow(const InputBatch& batch);
  void RollBack(InputBatch& batch);

  std::vector<RecordModalitySpec> modalities;
  bool fast_path;
  std::string modality_list;  // "vitals, labs, imaging", for messages
  simdjson::dom::parser parser;
  // Per-row scratch, one entry per modality, reused from row to row.
  std::vector<std::uint8_t> seen;
  std::vector<std::size_t> dense_marks;
  std::vector<std::size_t> item_marks;
};

bool RecordParser::State::FastParseRow(std::string_view line, std::size_t row,
                                       InputBatch& batch) {
  FastLine in(line);
  if (!in.Take('{')) return false;
  std::string_view id, label;
  bool seen_id = false, seen_modalities = false, seen_label = false;
  bool has_label = false;
  do {
    std::string_view key;
    in.SkipSpace();
    if (!in.String(key) || !in.Take(':')) return false;
    in.SkipSpace();
    if (key == "id") {
      if (seen_id || !in.String(id) || id.empty()) return false;
      seen_id = true;
    } else if (key == "modalities") {
      if (seen_modalities || !FastModalities(in, batch)) return false;
      seen_modalities = true;
    } else if (key == "label") {
      if (seen_label) return false;
      seen_label = true;
      if (!in.TakeNull()) {
        if (!in.String(label)) return false;
        has_label = true;
      }
    } else if (!in.SkipValue(0)) {
      return false;
    }
  } while (in.Take(','));
  if (!in.Take('}')) return false;
  in.SkipSpace();
  if (!in.AtEnd() || !seen_id || !seen_modalities) return false;
  batch.ids[row].assign(id);
  batch.has_id[row] = 1;
  if (has_label) {
    batch.labels[row].assign(label);
    batch.has_label[row] = 1;
  }
  return true;
}

bool RecordParser::State::FastModalities(FastLine& in, InputBatch& batch) {
  if (!in.Take('{')) return false;
  if (in.Take('}')) return true;
  do {
    std::string_view name;
    in.SkipSpace();
    if (!in.String(name) || !in.Take(':')) return false;
    std::size_t k = 0;
    while (k < modalities.size() && modalities[k].name != name) ++k;
    if (k == modalities.size() || seen[k] != kAbsent) return false;
    in.SkipSpace();
    if (in.TakeNull()) {
      seen[k] = kNull;
      continue;
    }
    if (!FastModality(k, in, batch)) return false;
    seen[k] = kPresent;
  } while (in.Take(','));
  return in.Take('}');
}

bool RecordParser::State::FastModality(std::size_t k, FastLine& in,
                                       InputBatch& batch) {
  const RecordModalitySpec& spec = modalities[k];
  InputColumn& column = batch.columns[k];
  if (spec.kind == RecordInputKind::kDense) {
    if (!in.Take('[')) return false;
    const std::size_t start = column.dense.size();
    column.dense.resize(start + spec.width);
    return in.DenseList(column.dense.data() + start, spec.width);
  }
  std::string_view text;
  if (!in.String(text)) return false;
  if (spec.kind == RecordInputKind::kText) {
    column.items.emplace_back(text);
    return true;
  }
  return absl::Base64Unescape(ToAbsl(text), &column.items.emplace_back());
}

void RecordParser::State::StartRow(const InputBatch& batch) {
  for (std::size_t k = 0; k < modalities.size(); ++k) {
    seen[k] = kAbsent;
    dense_marks[k] = batch.columns[k].dense.size();
    item_marks[k] = batch.columns[k].items.size();
  }
}

void RecordParser::State::RollBack(InputBatch& batch) {
  for (std::size_t k = 0; k < modalities.size(); ++k) {
    seen[k] = kAbsent;
    batch.columns[k].dense.resize(dense_marks[k]);
    batch.columns[k].items.resize(item_marks[k]);
  }
}

std::string RecordParser::State::ParseRow(std::string_view line,
                                          std::size_t row, InputBatch& batch) {
  element root;
  if (simdjson::error_code code =
          parser.parse(line.data(), line.size()).get(root);
      code != simdjson::SUCCESS) {
    return DiagnoseRefusedLine(line, code, row, batch);
  }
  simdjson::dom::object record;
  if (root.get_object().get(record) != simdjson::SUCCESS) {
    return "expected a JSON object";
  }

  // One pass over the top-level keys; they are then checked in a fixed order
  // (id, modalities, label) so a line with several faults always gets the
  // same message.
  element id_value, modalities_value, label_value;
  int id_count = 0, modalities_count = 0, label_count = 0;
  for (simdjson::dom::key_value_pair field : record) {
    if (field.key == "id") {
      id_value = field.value;
      ++id_count;
    } else if (field.key == "modalities") {
      modalities_value = field.value;
      ++modalities_count;
    } else if (field.key == "label") {
      label_value = field.value;
      ++label_count;
    }
  }

  if (id_count == 0) return "missing \"id\"";
  if (id_count > 1) return "id: given twice";
  std::string_view id;
  if (id_value.get_string().get(id) != simdjson::SUCCESS) {
    return absl::StrCat("id: expected a string, got ",
                        Describe(id_value, /*strings_by_kind=*/false));
  }
  if (id.empty()) return "id: expected a non-empty string, got \"\"";
  batch.ids[row].assign(id);
  batch.has_id[row] = 1;

  if (modalities_count == 0) return "missing \"modalities\"";
  if (modalities_count > 1) return "modalities: given twice";
  simdjson::dom::object modalities_object;
  if (modalities_value.get_object().get(modalities_object) !=
      simdjson::SUCCESS) {
    return "modalities: expected an object";
  }
  for (simdjson::dom::key_value_pair field : modalities_object) {
    std::size_t k = 0;
    while (k < modalities.size() && modalities[k].name != field.key) ++k;
    if (k == modalities.size()) {
      return absl::StrCat("modalities.", ToAbsl(field.key),
                          ": unknown modality (the pipeline has ",
                          modality_list, ")");
    }
    if (seen[k] != kAbsent) {
      return absl::StrCat("modalities.", ToAbsl(field.key), ": given twice");
    }
    if (field.value.is_null()) {
      seen[k] = kNull;
      continue;
    }
    if (std::string error = ParseModality(k, field.value, batch);
        !error.empty()) {
      return error;
    }
    seen[k] = kPresent;
  }

  if (label_count > 1) return "label: given twice";
  if (label_count == 1 && !label_value.is_null()) {
    std::string_view label;
    if (label_value.get_string().get(label) != simdjson::SUCCESS) {
      return "label: expected a string";
    }
    batch.labels[row].assign(label);
    batch.has_label[row] = 1;
  }
  return std::string();
}

std::string RecordParser::State::ParseModality(std::size_t k, element value,
                                               InputBatch& batch) {
  const RecordModalitySpec& spec = modalities[k];
  InputColumn& column = batch.columns[k];
  switch (spec.kind) {
    case RecordInputKind::kDense: {
      simdjson::dom::array values;
      if (value.get_array().get(values) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name, ": expected a list of ",
                            CountOfNumbers(spec.width), ", got ",
                            Describe(value, /*strings_by_kind=*/true));
      }
      std::size_t count = values.size();
      if (count >= 0xFFFFFF) {  // simdjson's size() saturates there
        count = 0;
        for ([[maybe_unused]] element ignored : values) ++count;
      }
      if (count != spec.width) {
        return absl::StrCat("modalities.", spec.name, ": expected ",
                            CountOfNumbers(spec.width), ", got ", count);
      }
      const std::size_t start = column.dense.size();
      column.dense.resize(start + spec.width);
      float* out = column.dense.data() + start;
      std::size_t i = 0;
      for (element item : values) {
        double number = 0;
        if (item.get_double().get(number) != simdjson::SUCCESS) {
          return absl::StrCat("modalities.", spec.name, "[", i,
                              "]: expected a number, got ",
                              Describe(item, /*strings_by_kind=*/false));
        }
        if (!(std::fabs(number) < kFloat32Overflow)) {
          return absl::StrCat("modalities.", spec.name, "[", i,
                              "]: not a finite float32 number");
        }
        out[i++] = static_cast<float>(number);
      }
      return std::string();
    }
    case RecordInputKind::kText: {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name,
                            ": expected a string, got ",
                            Describe(value, /*strings_by_kind=*/false));
      }
      column.items.emplace_back(text);
      return std::string();
    }
    case RecordInputKind::kBytes: {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) {
        return absl::StrCat("modalities.", spec.name,
                            ": expected base64 text, got ",
                            Describe(value, /*strings_by_kind=*/false));
      }
      if (!absl::Base64Unescape(ToAbsl(text), &column.items.emplace_back())) {
        return absl::StrCat("modalities.", spec.name, ": expected base64 text");
      }
      return std::string();
    }
  }
  return std::string();
}

bool RecordParser::State::IsDenseElementPath(
    const std::vector<PathStep>& path) const {
  if (path.size() != 3 || !path[0].is_object || path[0].key != "modalities" ||
      !path[1].is_object || path[2].is_object) {
    return false;
  }
  for (const RecordModalitySpec& spec : modalities) {
    if (spec.name == path[1].key) return spec.kind == RecordInputKind::kDense;
  }
  return false;
}

std::string RecordParser::State::DiagnoseRefusedLine(std::string_view line,
                                                     simdjson::error_code code,
                                                     std::size_t row,
                                                     InputBatch& batch) {
  Rescan rescan(line, parser,
                /*find_refused_number=*/code == simdjson::NUMBER_ERROR);
  rescan.Run();
  if (rescan.has_id()) {
    batch.ids[row] = rescan.id();
    batch.has_id[row] = 1;
  }
  if (!rescan.found_refused_number()) {
    return absl::StrCat("invalid JSON: ", simdjson::error_message(code));
  }
  if (!rescan.root_is_object()) return "expected a JSON object";
  const std::string_view number = rescan.refused_number();
  const bool is_integer = number.find_first_of(".eE") == std::string::npos;
  const std::string path = FormatPath(rescan.refused_number_path());
  if (!is_integer && IsDenseElementPath(rescan.refused_number_path())) {
    return absl::StrCat(path, ": not a finite float32 number");
  }
  return absl::StrCat(path, ": number out of range, got ", ShortToken(number),
                      is_integer ? " (integers must fit in 64 bits)" : "");
}

RecordParser::RecordParser(std::vector<RecordModalitySpec> modalities,
                           RecordParseMode mode)
    : state_(std::make_unique<State>(std::move(modalities), mode)) {}

RecordParser::~RecordParser() = default;
RecordParser::RecordParser(RecordParser&&) noexcept = default;
RecordParser& RecordParser::operator=(RecordParser&&) noexcept = default;

const std::vector<RecordModalitySpec>& RecordParser::modalities() const {
  return state_->modalities;
}

void RecordParser::Append(std::string_view line, std::size_t line_number,
                          InputBatch& batch) {
  State& state = *state_;
  const std::size_t modality_count = state.modalities.size();
  if (batch.columns.size() != modality_count) {
    batch.columns.resize(modality_count);
    for (InputColumn& column : batch.columns) {
      column.present.resize(batch.rows, 0);
    }
  }

  const std::size_t row = batch.rows;
  batch.ids.emplace_back();
  batch.has_id.push_back(0);
  batch.labels.emplace_back();
  batch.has_label.push_back(0);
  batch.errors.emplace_back();
  batch.rows = row + 1;
  state.StartRow(batch);

  std::string error;
  if (IsBlank(line)) {
    error = "empty line";
  } else if (!state.fast_path || !state.FastParseRow(line, row, batch)) {
    state.RollBack(batch);
    error = state.ParseRow(line, row, batch);
  }
  if (error.empty()) {
    for (std::size_t k = 0; k < modality_count; ++k) {
      batch.columns[k].present.push_back(state.seen[k] == State::kPresent ? 1
                                                                          : 0);
    }
    return;
  }
  state.RollBack(batch);
  for (InputColumn& column : batch.columns) column.present.push_back(0);
  batch.labels[row].clear();
  batch.has_label[row] = 0;
  batch.errors[row] = absl::StrCat("line ", line_number, ": ", error);
}

std::string_view NextLine(std::string_view text, std::size_t& at) {
  std::size_t end = text.find('\n', at);
  if (end == std::string_view::npos) end = text.size();
  std::string_view line = text.substr(at, end - at);
  at = end + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace latefuse
