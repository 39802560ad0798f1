// Semantic versions (https://semver.org) and version constraints in the grammar
// npm and cargo users know, for matching plugin versions against what a
// pipeline asks for.
//
//   LATEFUSE_ASSIGN_OR_RETURN(Version found, ParseVersion("1.4.2"));
//   LATEFUSE_ASSIGN_OR_RETURN(VersionConstraint wanted,
//                             VersionConstraint::Parse(">=1.0 <2"));
//   if (wanted.Matches(found)) { ... }   // true
//   wanted.ToString();                   // ">=1.0.0 <2.0.0"
#ifndef LATEFUSE_CORE_SEMVER_H_
#define LATEFUSE_CORE_SEMVER_H_

#include <compare>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace latefuse {

// A semantic version MAJOR.MINOR.PATCH[-PRERELEASE]. Build metadata (`+...`)
// is accepted by ParseVersion and dropped, as semver says it carries no
// precedence.
struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;
  // Dot-separated identifiers after '-', without the '-'; "" for a release.
  std::string prerelease;

  bool IsPrerelease() const { return !prerelease.empty(); }

  // "1.2.3" or "1.2.3-rc.1".
  std::string ToString() const;

  // Semver precedence: numeric major, minor, patch; then a prerelease is lower
  // than the release; prerelease identifiers compare one by one, numeric ones
  // numerically and below alphanumeric ones, and a shorter list is lower when
  // all shared identifiers are equal (1.0.0-rc < 1.0.0-rc.1 < 1.0.0).
  friend std::strong_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b);
};

std::ostream& operator<<(std::ostream& os, const Version& version);

// Parses "1.2.3", "1.2.3-rc.1", "1.2.3+build.7" or "v1.2.3". All three numeric
// parts are required, without leading zeros. Surrounding whitespace is
// ignored. On failure: InvalidArgument quoting the text and saying why.
absl::StatusOr<Version> ParseVersion(std::string_view text);

// A set of versions, as written in a pipeline's `version:` key.
//
// Grammar (npm / cargo): comparators separated by spaces or commas are ANDed;
// `||` separates alternatives (ORed groups of ANDed comparators).
//   >=1.0  >1.0.0  <2  <=1.4  =1.2.3   a partial version is filled with zeros
//                                      except where that would change the
//                                      meaning: `>1.2` is >=1.3.0 and `<=1.4`
//                                      is <1.5.0 (every 1.4.x matches)
//   1.2.3                              exactly 1.2.3
//   1.2  1  1.x  1.2.*                 >=1.2.0 <1.3.0, >=1.0.0 <2.0.0, ...
//   ^1.2.3  ^1.2  ^0.2.3  ^0.0.3       >=1.2.3 <2.0.0, >=1.2.0 <2.0.0,
//                                      >=0.2.3 <0.3.0, >=0.0.3 <0.0.4
//   ~1.2.3  ~1.2  ~1                   >=1.2.3 <1.3.0, >=1.2.0 <1.3.0,
//                                      >=1.0.0 <2.0.0
//   *  (or empty text)                 any version
// A space between an operator and its version is allowed (`>= 1.0, < 2`).
//
// Prereleases (npm rule): a version with a prerelease, such as 1.3.0-rc.1,
// matches an alternative only if that alternative has a comparator naming a
// prerelease of the same MAJOR.MINOR.PATCH (`>=1.3.0-rc.0 <2`), so a range
// never picks up an unannounced prerelease of a later version. The exception
// is "any" (`*`, empty, or a default-constructed constraint): it matches every
// version, prereleases included, because no constraint was asked for.
//
// Copyable value type; Matches is const and safe to call from many threads.
class VersionConstraint {
 public:
  // Matches any version.
  VersionConstraint() = default;

  // Parses `text` with the grammar above. On failure: InvalidArgument quoting
  // the text and the offending part.
  static absl::StatusOr<VersionConstraint> Parse(std::string_view text);

  bool Matches(const Version& version) const;

  // True when every version matches (`*`, empty, default-constructed).
  bool IsAny() const { return alternatives_.empty(); }

  // Normalised form with partial versions and ^ ~ expanded, e.g. "^1.2" gives
  // ">=1.2.0 <2.0.0"; alternatives are joined by " || "; any is "*". Parsing
  // the result gives an equal constraint.
  std::string ToString() const;

  friend bool operator==(const VersionConstraint& a,
                         const VersionConstraint& b) = default;

 private:
  enum class Op { kEq, kGt, kGe, kLt, kLe };
  struct Comparator {
    Op op = Op::kEq;
    Version version;
    bool Matches(const Version& candidate) const;
    friend bool operator==(const Comparator& a, const Comparator& b) = default;
  };
  using Group = std::vector<Comparator>;  // ANDed; never empty once parsed

  static absl::Status ParseGroup(std::string_view text, Group& group);
  static absl::Status AddComparator(std::string_view op,
                                    std::string_view version_text,
                                    Group& group);
  static bool GroupMatches(const Group& group, const Version& version);

  std::vector<Group> alternatives_;  // ORed; empty = any
};

std::ostream& operator<<(std::ostream& os, const VersionConstraint& constraint);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_SEMVER_H_
