#include "core/semver.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"

namespace latefuse {
namespace {

// This Abseil may be built with its own string_view (Debian's is), which
// std::string_view does not convert to implicitly.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

bool IsDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

bool IsIdentifierChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-';
}

bool IsWildcard(absl::string_view s) {
  return s == "x" || s == "X" || s == "*";
}

// Semver identifiers: [0-9A-Za-z-]+, and for prerelease ones a numeric
// identifier has no leading zero (so equal precedence means equal text).
absl::Status CheckIdentifiers(absl::string_view list, absl::string_view what,
                              bool forbid_leading_zeros) {
  for (absl::string_view id : absl::StrSplit(list, '.')) {
    if (id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("empty identifier in the ", what));
    }
    if (!std::all_of(id.begin(), id.end(), IsIdentifierChar)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", id, "' in the ", what,
                       " may only hold letters, digits and '-'"));
    }
    if (forbid_leading_zeros && IsDigits(id) && id.size() > 1 && id[0] == '0') {
      return absl::InvalidArgumentError(absl::StrCat("numeric identifier '", id,
                                                     "' in the ", what,
                                                     " has a leading zero"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ParseNumber(absl::string_view s) {
  if (!IsDigits(s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", s, "' is not a number"));
  }
  if (s.size() > 1 && s[0] == '0') {
    return absl::InvalidArgumentError(
        absl::StrCat("'", s, "' has a leading zero"));
  }
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  // INT_MAX itself is refused so that "next minor/major" bounds never overflow.
  if (ec != std::errc() || end != s.data() + s.size() || value == INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("'", s, "' is too large"));
  }
  return value;
}

// A version that may stop early or end in wildcards: "1", "1.2", "1.x", "*".
struct PartialVersion {
  std::array<int, 3> parts = {0, 0, 0};
  int given = 0;  // how many leading numeric parts were written
  std::string prerelease;

  Version Fill() const { return {parts[0], parts[1], parts[2], prerelease}; }
};

absl::StatusOr<PartialVersion> ParsePartialVersion(absl::string_view text,
                                                   bool allow_partial) {
  absl::string_view rest = text;
  if (!rest.empty() && (rest[0] == 'v' || rest[0] == 'V'))
    rest.remove_prefix(1);
  if (rest.empty()) {
    return absl::InvalidArgumentError("expected a version");
  }

  PartialVersion out;
  if (size_t plus = rest.find('+'); plus != absl::string_view::npos) {
    LATEFUSE_RETURN_IF_ERROR(CheckIdentifiers(rest.substr(plus + 1),
                                              "build metadata",
                                              /*forbid_leading_zeros=*/false));
    rest = rest.substr(0, plus);
  }
  bool has_prerelease = false;
  if (size_t dash = rest.find('-'); dash != absl::string_view::npos) {
    absl::string_view prerelease = rest.substr(dash + 1);
    LATEFUSE_RETURN_IF_ERROR(CheckIdentifiers(prerelease, "prerelease",
                                              /*forbid_leading_zeros=*/true));
    out.prerelease = std::string(prerelease);
    has_prerelease = true;
    rest = rest.substr(0, dash);
  }

  std::vector<absl::string_view> parts = absl::StrSplit(rest, '.');
  if (parts.size() > 3) {
    return absl::InvalidArgumentError(
        "expected at most three parts, MAJOR.MINOR.PATCH");
  }
  bool seen_wildcard = false;
  for (absl::string_view part : parts) {
    if (allow_partial && IsWildcard(part)) {
      seen_wildcard = true;
      continue;
    }
    if (seen_wildcard) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", part, "' follows a wildcard"));
    }
    LATEFUSE_ASSIGN_OR_RETURN(out.parts[out.given], ParseNumber(part));
    ++out.given;
  }
  if (!allow_partial && out.given != 3) {
    return absl::InvalidArgumentError("expected MAJOR.MINOR.PATCH");
  }
  if (has_prerelease && out.given != 3) {
    return absl::InvalidArgumentError(
        "a prerelease needs all of MAJOR.MINOR.PATCH");
  }
  return out;
}

// Precedence of two dot-separated prerelease lists, both non-empty.
std::strong_ordering ComparePrerelease(absl::string_view a,
                                       absl::string_view b) {
  std::vector<absl::string_view> ids_a = absl::StrSplit(a, '.');
  std::vector<absl::string_view> ids_b = absl::StrSplit(b, '.');
  for (size_t i = 0; i < ids_a.size() && i < ids_b.size(); ++i) {
    const bool num_a = IsDigits(ids_a[i]);
    const bool num_b = IsDigits(ids_b[i]);
    if (num_a && num_b) {
      // No leading zeros, so the longer number is the larger one; this keeps
      // identifiers beyond 64 bits right.
      if (auto c = ids_a[i].size() <=> ids_b[i].size(); c != 0) return c;
      if (auto c = ids_a[i].compare(ids_b[i]) <=> 0; c != 0) return c;
    } else if (num_a != num_b) {
      return num_a ? std::strong_ordering::less : std::strong_ordering::greater;
    } else if (auto c = ids_a[i].compare(ids_b[i]) <=> 0; c != 0) {
      return c;
    }
  }
  return ids_a.size() <=> ids_b.size();
}

Version NextMajor(const PartialVersion& p) {
  return {p.parts[0] + 1, 0, 0, ""};
}
Version NextMinor(const PartialVersion& p) {
  return {p.parts[0], p.parts[1] + 1, 0, ""};
}
Version NextPatch(const PartialVersion& p) {
  return {p.parts[0], p.parts[1], p.parts[2] + 1, ""};
}

// The first version past everything that `p` names: 1 -> 2.0.0, 1.4 -> 1.5.0.
Version NextAfterPartial(const PartialVersion& p) {
  return p.given == 1 ? NextMajor(p) : NextMinor(p);
}

}  // namespace

std::string Version::ToString() const {
  std::string out = absl::StrCat(major, ".", minor, ".", patch);
  if (!prerelease.empty()) absl::StrAppend(&out, "-", prerelease);
  return out;
}

std::strong_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = a.major <=> b.major; c != 0) return c;
  if (auto c = a.minor <=> b.minor; c != 0) return c;
  if (auto c = a.patch <=> b.patch; c != 0) return c;
  if (a.prerelease.empty() || b.prerelease.empty()) {
    // A release is above its prereleases.
    return a.prerelease.empty() <=> b.prerelease.empty();
  }
  return ComparePrerelease(a.prerelease, b.prerelease);
}

bool operator==(const Version& a, const Version& b) {
  return (a <=> b) == std::strong_ordering::equal;
}

std::ostream& operator<<(std::ostream& os, const Version& version) {
  return os << version.ToString();
}

absl::StatusOr<Version> ParseVersion(std::string_view text_in) {
  const absl::string_view text = ToAbsl(text_in);
  absl::StatusOr<PartialVersion> parsed = ParsePartialVersion(
      absl::StripAsciiWhitespace(text), /*allow_partial=*/false);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid version \"", text, "\": ", parsed.status().message()));
  }
  return parsed->Fill();
}

bool VersionConstraint::Comparator::Matches(const Version& candidate) const {
  switch (op) {
    case Op::kEq:
      return candidate == version;
    case Op::kGt:
      return candidate > version;
    case Op::kGe:
      return candidate >= version;
    case Op::kLt:
      return candidate < version;
    case Op::kLe:
      return candidate <= version;
  }
  return false;
}

absl::StatusOr<VersionConstraint> VersionConstraint::Parse(
    std::string_view text_in) {
  const absl::string_view text = ToAbsl(text_in);
  VersionConstraint out;
  const absl::string_view stripped = absl::StripAsciiWhitespace(text);
  if (stripped.empty()) return out;
  bool any = false;
  for (absl::string_view alternative : absl::StrSplit(stripped, "||")) {
    Group group;
    absl::Status status = ParseGroup(
        std::string_view(alternative.data(), alternative.size()), group);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid version constraint \"", text, "\": ", status.message()));
    }
    if (group.empty()) {
      any = true;  // `*`: this alternative takes every version
    } else {
      out.alternatives_.push_back(std::move(group));
    }
  }
  if (any) out.alternatives_.clear();
  return out;
}

absl::Status VersionConstraint::ParseGroup(std::string_view text_in,
                                           Group& group) {
  const absl::string_view text = ToAbsl(text_in);
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("empty alternative around '||'");
  }
  bool saw_comparator = false;
  const std::vector<absl::string_view> pieces = absl::StrSplit(text, ',');
  for (absl::string_view piece : pieces) {
    piece = absl::StripAsciiWhitespace(piece);
    if (piece.empty()) {
      return absl::InvalidArgumentError("empty comparator around ','");
    }
    size_t i = 0;
    while (i < piece.size()) {
      while (i < piece.size() && absl::ascii_isspace(piece[i])) ++i;
      const size_t op_begin = i;
      while (i < piece.size() && absl::string_view("<>=^~!").find(piece[i]) !=
                                     absl::string_view::npos) {
        ++i;
      }
      const absl::string_view op = piece.substr(op_begin, i - op_begin);
      while (i < piece.size() && absl::ascii_isspace(piece[i])) ++i;
      const size_t version_begin = i;
      while (i < piece.size() && !absl::ascii_isspace(piece[i])) ++i;
      const absl::string_view version =
          piece.substr(version_begin, i - version_begin);
      if (version.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("operator '", op, "' is not followed by a version"));
      }
      LATEFUSE_RETURN_IF_ERROR(AddComparator(
          std::string_view(op.data(), op.size()),
          std::string_view(version.data(), version.size()), group));
      saw_comparator = true;
    }
  }
  if (!saw_comparator) {
    return absl::InvalidArgumentError("expected a comparator");
  }
  return absl::OkStatus();
}

absl::Status VersionConstraint::AddComparator(std::string_view op_in,
                                              std::string_view version_in,
                                              Group& group) {
  const absl::string_view op = ToAbsl(op_in);
  const absl::string_view version_text = ToAbsl(version_in);
  static constexpr absl::string_view kOperators[] = {
      "", "=", ">", ">=", "<", "<=", "^", "~"};
  if (std::find(std::begin(kOperators), std::end(kOperators), op) ==
      std::end(kOperators)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown operator '", op, "'; expected one of = > >= < <= ^ ~"));
  }
  absl::StatusOr<PartialVersion> parsed =
      ParsePartialVersion(version_text, /*allow_partial=*/true);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", version_text,
                     "\" is not a version: ", parsed.status().message()));
  }
  const PartialVersion& p = *parsed;
  const Version low = p.Fill();
  if (p.given == 0) {
    if (op.empty() || op == "=") return absl::OkStatus();  // `*` adds nothing
    return absl::InvalidArgumentError(
        absl::StrCat("'", op, version_text, "' needs a version number"));
  }
  auto add = [&group](Op o, Version v) { group.push_back({o, std::move(v)}); };
  if (op.empty() || op == "=") {
    if (p.given == 3) {
      add(Op::kEq, low);
    } else {
      add(Op::kGe, low);
      add(Op::kLt, NextAfterPartial(p));
    }
  } else if (op == ">") {
    add(p.given == 3 ? Op::kGt : Op::kGe,
        p.given == 3 ? low : NextAfterPartial(p));
  } else if (op == ">=") {
    add(Op::kGe, low);
  } else if (op == "<") {
    add(Op::kLt, low);
  } else if (op == "<=") {
    if (p.given == 3) {
      add(Op::kLe, low);
    } else {
      add(Op::kLt, NextAfterPartial(p));
    }
  } else if (op == "~") {
    add(Op::kGe, low);
    add(Op::kLt, NextAfterPartial(p));
  } else {  // "^": the leftmost non-zero part given may not change
    add(Op::kGe, low);
    if (p.parts[0] > 0 || p.given == 1) {
      add(Op::kLt, NextMajor(p));
    } else if (p.parts[1] > 0 || p.given == 2) {
      add(Op::kLt, NextMinor(p));
    } else {
      add(Op::kLt, NextPatch(p));
    }
  }
  return absl::OkStatus();
}

bool VersionConstraint::GroupMatches(const Group& group,
                                     const Version& version) {
  for (const Comparator& comparator : group) {
    if (!comparator.Matches(version)) return false;
  }
  if (!version.IsPrerelease()) return true;
  // npm rule: a prerelease only matches when the group names a prerelease of
  // the same MAJOR.MINOR.PATCH.
  return std::any_of(group.begin(), group.end(), [&](const Comparator& c) {
    return c.version.IsPrerelease() && c.version.major == version.major &&
           c.version.minor == version.minor && c.version.patch == version.patch;
  });
}

bool VersionConstraint::Matches(const Version& version) const {
  if (alternatives_.empty()) return true;
  return std::any_of(
      alternatives_.begin(), alternatives_.end(),
      [&](const Group& group) { return GroupMatches(group, version); });
}

std::string VersionConstraint::ToString() const {
  if (alternatives_.empty()) return "*";
  auto format_comparator = [](std::string* out, const Comparator& c) {
    static constexpr absl::string_view kNames[] = {"=", ">", ">=", "<", "<="};
    absl::StrAppend(out, kNames[static_cast<int>(c.op)], c.version.ToString());
  };
  return absl::StrJoin(
      alternatives_, " || ", [&](std::string* out, const Group& group) {
        absl::StrAppend(out, absl::StrJoin(group, " ", format_comparator));
      });
}

std::ostream& operator<<(std::ostream& os,
                         const VersionConstraint& constraint) {
  return os << constraint.ToString();
}

}  // namespace latefuse
