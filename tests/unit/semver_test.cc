#include "core/semver.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latefuse {
namespace {

using ::testing::HasSubstr;

Version V(const std::string& text) {
  absl::StatusOr<Version> version = ParseVersion(text);
  EXPECT_TRUE(version.ok()) << version.status();
  return version.ok() ? *version : Version{};
}

VersionConstraint C(const std::string& text) {
  absl::StatusOr<VersionConstraint> constraint = VersionConstraint::Parse(text);
  EXPECT_TRUE(constraint.ok()) << constraint.status();
  return constraint.ok() ? *constraint : VersionConstraint{};
}

// ---------------------------------------------------------------------------
// ParseVersion

TEST(ParseVersionTest, ReleaseVersionParses) {
  absl::StatusOr<Version> v = ParseVersion("1.2.3");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->major, 1);
  EXPECT_EQ(v->minor, 2);
  EXPECT_EQ(v->patch, 3);
  EXPECT_EQ(v->prerelease, "");
  EXPECT_FALSE(v->IsPrerelease());
  EXPECT_EQ(v->ToString(), "1.2.3");
}

TEST(ParseVersionTest, PrereleaseIsKept) {
  absl::StatusOr<Version> v = ParseVersion("1.2.3-rc.1");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->prerelease, "rc.1");
  EXPECT_TRUE(v->IsPrerelease());
  EXPECT_EQ(v->ToString(), "1.2.3-rc.1");
}

TEST(ParseVersionTest, BuildMetadataIsDropped) {
  absl::StatusOr<Version> v = ParseVersion("1.2.3+build.7");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->ToString(), "1.2.3");
  absl::StatusOr<Version> w = ParseVersion("1.2.3-beta+exp.sha.5114f85");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->ToString(), "1.2.3-beta");
}

TEST(ParseVersionTest, LeadingVAndSurroundingSpacesAreAccepted) {
  EXPECT_EQ(V("v2.0.1"), V("2.0.1"));
  EXPECT_EQ(V("  2.0.1 "), V("2.0.1"));
}

TEST(ParseVersionTest, HyphenInsidePrereleaseIsAllowed) {
  EXPECT_EQ(V("1.0.0-x-y.2").prerelease, "x-y.2");
}

TEST(ParseVersionTest, GarbageIsRejectedQuotingTheText) {
  for (const char* text :
       {"", "abc", "1", "1.2", "1.2.3.4", "1.2.x", "1.a.3", "-1.2.3", "1.2.3-",
        "1.2.3-rc..1", "1.2.3+", "1.2.3-rc$", "01.2.3", "1.02.3", "1.2.3-01",
        "99999999999.0.0", "1 .2.3"}) {
    absl::StatusOr<Version> v = ParseVersion(text);
    EXPECT_FALSE(v.ok()) << "accepted \"" << text << "\"";
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(v.status().message()),
                HasSubstr(std::string("invalid version \"") + text + "\""));
  }
}

TEST(ParseVersionTest, MessageSaysWhatIsWrong) {
  EXPECT_THAT(std::string(ParseVersion("1.2").status().message()),
              HasSubstr("MAJOR.MINOR.PATCH"));
  EXPECT_THAT(std::string(ParseVersion("01.2.3").status().message()),
              HasSubstr("leading zero"));
}

// ---------------------------------------------------------------------------
// Ordering

TEST(VersionOrderTest, NumericPartsCompareNumerically) {
  EXPECT_LT(V("1.2.3"), V("1.2.4"));
  EXPECT_LT(V("1.2.9"), V("1.10.0"));
  EXPECT_LT(V("1.99.99"), V("2.0.0"));
  EXPECT_GT(V("10.0.0"), V("9.9.9"));
  EXPECT_EQ(V("1.2.3"), V("1.2.3"));
}

TEST(VersionOrderTest, PrereleaseIsBelowItsRelease) {
  EXPECT_LT(V("1.0.0-rc.1"), V("1.0.0"));
  EXPECT_GT(V("1.0.0-rc.1"), V("0.9.9"));
}

TEST(VersionOrderTest, FollowsTheSemverSpecExampleChain) {
  const std::vector<std::string> chain = {
      "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
      "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0"};
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    EXPECT_LT(V(chain[i]), V(chain[i + 1]))
        << chain[i] << " < " << chain[i + 1];
    EXPECT_GT(V(chain[i + 1]), V(chain[i]));
    EXPECT_NE(V(chain[i]), V(chain[i + 1]));
  }
}

TEST(VersionOrderTest, LongNumericPrereleaseIdentifiersCompareNumerically) {
  EXPECT_LT(V("1.0.0-99999999999999999999"), V("1.0.0-100000000000000000000"));
}

TEST(VersionOrderTest, BuildMetadataDoesNotAffectEquality) {
  EXPECT_EQ(V("1.0.0+a"), V("1.0.0+b"));
}

// ---------------------------------------------------------------------------
// VersionConstraint

struct MatchCase {
  const char* constraint;
  std::vector<const char*> matches;
  std::vector<const char*> rejects;
  const char* normalised;
};

class ConstraintFormTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(ConstraintFormTest, MatchesExactlyTheVersionsItDescribes) {
  const MatchCase& c = GetParam();
  VersionConstraint constraint = C(c.constraint);
  for (const char* v : c.matches) {
    EXPECT_TRUE(constraint.Matches(V(v)))
        << "'" << c.constraint << "' should match " << v;
  }
  for (const char* v : c.rejects) {
    EXPECT_FALSE(constraint.Matches(V(v)))
        << "'" << c.constraint << "' should not match " << v;
  }
  EXPECT_EQ(constraint.ToString(), c.normalised);
  // The normal form reads back as the same constraint.
  EXPECT_EQ(C(constraint.ToString()), constraint);
}

INSTANTIATE_TEST_SUITE_P(
    EveryForm, ConstraintFormTest,
    ::testing::Values(
        MatchCase{">=1.0", {"1.0.0", "1.5.2", "7.0.0"}, {"0.9.9"}, ">=1.0.0"},
        MatchCase{">1.0.0", {"1.0.1", "2.0.0"}, {"1.0.0", "0.1.0"}, ">1.0.0"},
        MatchCase{">1.2", {"1.3.0", "2.0.0"}, {"1.2.0", "1.2.9"}, ">=1.3.0"},
        MatchCase{"<2", {"1.99.99", "0.0.1"}, {"2.0.0", "2.0.1"}, "<2.0.0"},
        MatchCase{"<=1.4", {"1.4.0", "1.4.99", "1.0.0"}, {"1.5.0"}, "<1.5.0"},
        MatchCase{"<=1.4.2", {"1.4.2", "1.4.1"}, {"1.4.3"}, "<=1.4.2"},
        MatchCase{"=1.2.3", {"1.2.3"}, {"1.2.4", "1.2.2"}, "=1.2.3"},
        MatchCase{"1.2.3", {"1.2.3"}, {"1.2.4", "1.3.0"}, "=1.2.3"},
        MatchCase{
            "1.2", {"1.2.0", "1.2.9"}, {"1.3.0", "1.1.9"}, ">=1.2.0 <1.3.0"},
        MatchCase{
            "1", {"1.0.0", "1.9.9"}, {"2.0.0", "0.9.0"}, ">=1.0.0 <2.0.0"},
        MatchCase{"1.x", {"1.0.0", "1.9.9"}, {"2.0.0"}, ">=1.0.0 <2.0.0"},
        MatchCase{"1.2.*", {"1.2.7"}, {"1.3.0"}, ">=1.2.0 <1.3.0"},
        MatchCase{
            "^1.2", {"1.2.0", "1.9.0"}, {"1.1.9", "2.0.0"}, ">=1.2.0 <2.0.0"},
        MatchCase{
            "^1.2.3", {"1.2.3", "1.8.0"}, {"1.2.2", "2.0.0"}, ">=1.2.3 <2.0.0"},
        MatchCase{
            "^0.2.3", {"0.2.3", "0.2.9"}, {"0.3.0", "0.2.2"}, ">=0.2.3 <0.3.0"},
        MatchCase{"^0.0.3", {"0.0.3"}, {"0.0.4", "0.0.2"}, ">=0.0.3 <0.0.4"},
        MatchCase{"^0", {"0.0.0", "0.9.9"}, {"1.0.0"}, ">=0.0.0 <1.0.0"},
        MatchCase{
            "~1.2.3", {"1.2.3", "1.2.9"}, {"1.3.0", "1.2.2"}, ">=1.2.3 <1.3.0"},
        MatchCase{"~1.2", {"1.2.0", "1.2.9"}, {"1.3.0"}, ">=1.2.0 <1.3.0"},
        MatchCase{"~1", {"1.0.0", "1.9.0"}, {"2.0.0"}, ">=1.0.0 <2.0.0"},
        MatchCase{">=1.0 <2",
                  {"1.0.0", "1.9.9"},
                  {"0.9.9", "2.0.0"},
                  ">=1.0.0 <2.0.0"},
        MatchCase{">=1.0, <2", {"1.5.0"}, {"2.0.0"}, ">=1.0.0 <2.0.0"},
        MatchCase{">= 1.0 , < 2", {"1.5.0"}, {"2.0.0"}, ">=1.0.0 <2.0.0"},
        MatchCase{"^1.0 || ^3.1",
                  {"1.4.0", "3.1.0", "3.9.0"},
                  {"2.0.0", "3.0.9", "4.0.0"},
                  ">=1.0.0 <2.0.0 || >=3.1.0 <4.0.0"},
        MatchCase{"<1 || >=2.0 <2.1",
                  {"0.5.0", "2.0.5"},
                  {"1.0.0", "2.1.0"},
                  "<1.0.0 || >=2.0.0 <2.1.0"},
        MatchCase{"*", {"0.0.0", "1.2.3", "99.0.0"}, {}, "*"},
        MatchCase{"", {"0.0.0", "1.2.3"}, {}, "*"},
        MatchCase{"  ", {"4.0.0"}, {}, "*"},
        MatchCase{"^1 || *", {"0.1.0", "5.0.0"}, {}, "*"}));

TEST(VersionConstraintTest, DefaultConstructedMatchesAnything) {
  VersionConstraint any;
  EXPECT_TRUE(any.IsAny());
  EXPECT_TRUE(any.Matches(V("0.0.1")));
  EXPECT_TRUE(any.Matches(V("3.0.0-alpha")));
  EXPECT_EQ(any.ToString(), "*");
}

TEST(VersionConstraintTest, StarAndEmptyMatchPrereleasesToo) {
  EXPECT_TRUE(C("*").Matches(V("2.0.0-rc.1")));
  EXPECT_TRUE(C("").Matches(V("2.0.0-rc.1")));
  EXPECT_TRUE(C("*").IsAny());
}

TEST(VersionConstraintTest, RangeDoesNotMatchPrereleaseOfAnotherVersion) {
  VersionConstraint range = C(">=1.0 <2");
  EXPECT_FALSE(range.Matches(V("1.5.0-beta")));
  EXPECT_FALSE(range.Matches(V("2.0.0-rc.1")));  // below 2.0.0, still refused
  EXPECT_FALSE(C("^1.2").Matches(V("1.3.0-alpha")));
}

TEST(VersionConstraintTest, PrereleaseMatchesWhenSameVersionNamesAPrerelease) {
  VersionConstraint c = C(">=1.3.0-rc.1 <2");
  EXPECT_TRUE(c.Matches(V("1.3.0-rc.1")));
  EXPECT_TRUE(c.Matches(V("1.3.0-rc.2")));
  EXPECT_TRUE(c.Matches(V("1.3.0")));
  EXPECT_TRUE(c.Matches(V("1.9.0")));
  EXPECT_FALSE(c.Matches(V("1.3.0-beta")));  // below rc.1
  EXPECT_FALSE(c.Matches(V("1.4.0-rc.1")));  // another MAJOR.MINOR.PATCH
  EXPECT_TRUE(C("1.2.3-beta.2").Matches(V("1.2.3-beta.2")));
  EXPECT_FALSE(C("1.2.3-beta.2").Matches(V("1.2.3")));
  EXPECT_TRUE(C("^1.2.3-beta.2").Matches(V("1.2.3-beta.3")));
  EXPECT_FALSE(C("^1.2.3-beta.2").Matches(V("1.2.4-beta")));
}

TEST(VersionConstraintTest, PrereleaseRuleAppliesPerAlternative) {
  VersionConstraint c = C("^2 || >=1.5.0-rc.0 <1.6");
  EXPECT_TRUE(c.Matches(V("1.5.0-rc.3")));
  EXPECT_FALSE(c.Matches(V("2.1.0-rc.1")));
}

TEST(VersionConstraintTest, BadConstraintTextIsRejectedQuotingIt) {
  for (const char* text :
       {">=",     "abc",     ">=1.0 <",       "=>1.0",     "==1.0",
        "!1.0",   "1.2.3.4", "1.x.3",         ">=*",       "<x",
        "1.0 ||", "|| 1.0",  "1.0 || || 2.0", ">=1.0,,<2", ",>=1.0",
        "^",      "~1.2-rc", "1.2.3-",        "1.0 | 2.0", "01.2"}) {
    absl::StatusOr<VersionConstraint> c = VersionConstraint::Parse(text);
    EXPECT_FALSE(c.ok()) << "accepted '" << text << "' as "
                         << (c.ok() ? c->ToString() : "");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(
        std::string(c.status().message()),
        HasSubstr(std::string("invalid version constraint \"") + text + "\""));
  }
}

TEST(VersionConstraintTest, MessageNamesTheOffendingPart) {
  EXPECT_THAT(
      std::string(VersionConstraint::Parse(">=1.0 <banana").status().message()),
      HasSubstr("\"banana\" is not a version"));
  EXPECT_THAT(std::string(VersionConstraint::Parse("=>1.0").status().message()),
              HasSubstr("unknown operator '=>'"));
  EXPECT_THAT(std::string(VersionConstraint::Parse(">= ").status().message()),
              HasSubstr("operator '>=' is not followed by a version"));
}

}  // namespace
}  // namespace latefuse
