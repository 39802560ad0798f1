#include "unicode.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace latefuse::tfidf_internal {
namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
};
struct LowerPair {
  char32_t from;
  char32_t to;
};
struct LowerMulti {
  char32_t from;
  char32_t first;
  char32_t second;
};

#include "unicode_tables.inc"

template <std::size_t N>
bool InRanges(const CodePointRange (&ranges)[N], char32_t cp) {
  const CodePointRange* end = ranges + N;
  const CodePointRange* it = std::upper_bound(
      ranges, end, cp,
      [](char32_t value, const CodePointRange& r) { return value < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

bool IsCaseIgnorable(char32_t cp) { return InRanges(kCaseIgnorable, cp); }
bool IsCased(char32_t cp) { return InRanges(kCased, cp); }

constexpr char32_t kReplacement = 0xFFFD;
constexpr char32_t kCapitalSigma = 0x3A3;

// CPython's handle_capital_sigma: final when a cased letter precedes (past
// case-ignorables) and none follows (past case-ignorables).
char32_t LowerSigma(const std::vector<char32_t>& in, std::size_t i) {
  std::size_t j = i;
  while (j > 0 && IsCaseIgnorable(in[j - 1])) --j;
  bool final_sigma = j > 0 && IsCased(in[j - 1]);
  if (final_sigma) {
    std::size_t k = i + 1;
    while (k < in.size() && IsCaseIgnorable(in[k])) ++k;
    final_sigma = k == in.size() || !IsCased(in[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

}  // namespace

void DecodeUtf8(std::string_view text, std::vector<char32_t>& out) {
  out.clear();
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b0 = s[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      length = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      length = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      length = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      out.push_back(kReplacement);
      ++i;
      continue;
    }
    int k = 1;
    for (; k < length && i + k < n; ++k) {
      const unsigned char b = s[i + k];
      if ((b & 0xC0) != 0x80) break;
      cp = (cp << 6) | (b & 0x3F);
      // Reject overlong, surrogate and out-of-range forms at the second byte.
      if (k == 1) {
        if ((b0 == 0xE0 && b < 0xA0) || (b0 == 0xED && b > 0x9F) ||
            (b0 == 0xF0 && b < 0x90) || (b0 == 0xF4 && b > 0x8F)) {
          break;
        }
      }
    }
    if (k == length && cp >= min) {
      out.push_back(cp);
      i += length;
    } else {
      out.push_back(kReplacement);
      i += k;  // the maximal invalid prefix
    }
  }
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void LowerPython(const std::vector<char32_t>& in, std::vector<char32_t>& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char32_t cp = in[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      continue;
    }
    if (cp == kCapitalSigma) {
      out.push_back(LowerSigma(in, i));
      continue;
    }
    const LowerPair* single_end = std::end(kLowerSingle);
    const LowerPair* it = std::lower_bound(
        std::begin(kLowerSingle), single_end, cp,
        [](const LowerPair& p, char32_t value) { return p.from < value; });
    if (it != single_end && it->from == cp) {
      out.push_back(it->to);
      continue;
    }
    bool done = false;
    for (const LowerMulti& m : kLowerMulti) {
      if (m.from == cp) {
        out.push_back(m.first);
        out.push_back(m.second);
        done = true;
        break;
      }
    }
    if (!done) out.push_back(cp);
  }
}

bool IsPythonWord(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= '0' && cp <= '9') || cp == '_';
  }
  return InRanges(kWordRanges, cp);
}

}  // namespace latefuse::tfidf_internal
