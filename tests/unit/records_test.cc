// Tests for the input record parser (core/records.h): JSON lines into
// per-modality columns, with an exact error message for every bad line.
#include "core/records.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latefuse {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// simdjson 3.0.1's messages, as `invalid JSON: ...` quotes them.
constexpr std::string_view kStructureError =
    "The JSON document has an improper structure: missing or superfluous "
    "commas, braces, missing keys, etc.";
constexpr std::string_view kUtf8Error = "The input is not valid UTF-8";

std::vector<RecordModalitySpec> TestSpecs() {
  return {{"vitals", RecordInputKind::kDense, 3},
          {"notes", RecordInputKind::kText},
          {"scan", RecordInputKind::kBytes}};
}

// A record that uses every modality: vitals [1, 2, 3], notes "n<tag>",
// scan the bytes "AB" (base64 "QUI=").
std::string GoodLine(std::string_view tag) {
  return std::string(R"({"id": "good-)") + std::string(tag) +
         R"(", "modalities": {"vitals": [1, 2, 3], "notes": "n)" +
         std::string(tag) + R"(", "scan": "QUI="}, "label": "stable"})";
}

// Appends `lines` as lines 1, 2, ... of a fresh batch.
InputBatch ParseLines(RecordParser& parser,
                      const std::vector<std::string>& lines) {
  InputBatch batch;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    parser.Append(lines[i], i + 1, batch);
  }
  return batch;
}

// Every per-row vector has `rows` entries and each column's values match the
// number of rows it is present in.
void ExpectConsistent(const InputBatch& batch,
                      const std::vector<RecordModalitySpec>& specs) {
  EXPECT_EQ(batch.ids.size(), batch.rows);
  EXPECT_EQ(batch.has_id.size(), batch.rows);
  EXPECT_EQ(batch.labels.size(), batch.rows);
  EXPECT_EQ(batch.has_label.size(), batch.rows);
  EXPECT_EQ(batch.errors.size(), batch.rows);
  ASSERT_EQ(batch.columns.size(), specs.size());
  for (std::size_t k = 0; k < specs.size(); ++k) {
    const InputColumn& column = batch.columns[k];
    ASSERT_EQ(column.present.size(), batch.rows) << specs[k].name;
    std::size_t present = 0;
    for (std::uint8_t flag : column.present) present += flag;
    if (specs[k].kind == RecordInputKind::kDense) {
      EXPECT_EQ(column.dense.size(), present * specs[k].width) << specs[k].name;
      EXPECT_THAT(column.items, IsEmpty()) << specs[k].name;
    } else {
      EXPECT_EQ(column.items.size(), present) << specs[k].name;
      EXPECT_THAT(column.dense, IsEmpty()) << specs[k].name;
    }
  }
}

TEST(RecordParserTest, GoodLineFillsEveryKindOfColumn) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append(R"({"id": "p-0001", "modalities": {"vitals": [72.5, -1, 1e3], )"
                R"("notes": "pt alert", "scan": "AP8Q"}, "label": "stable"})",
                1, batch);

  ASSERT_EQ(batch.rows, 1u);
  ExpectConsistent(batch, TestSpecs());
  EXPECT_THAT(batch.errors, ElementsAre(""));
  EXPECT_THAT(batch.ids, ElementsAre("p-0001"));
  EXPECT_THAT(batch.has_id, ElementsAre(1));
  EXPECT_THAT(batch.labels, ElementsAre("stable"));
  EXPECT_THAT(batch.has_label, ElementsAre(1));
  EXPECT_THAT(batch.columns[0].present, ElementsAre(1));
  EXPECT_THAT(batch.columns[0].dense, ElementsAre(72.5f, -1.0f, 1000.0f));
  EXPECT_THAT(batch.columns[1].present, ElementsAre(1));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("pt alert"));
  EXPECT_THAT(batch.columns[2].present, ElementsAre(1));
  EXPECT_THAT(batch.columns[2].items,
              ElementsAre(std::string("\x00\xff\x10", 3)));
}

TEST(RecordParserTest, NullAndAbsentModalitiesAreMissingNotErrors) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append(R"({"id": "a", "modalities": {"vitals": null, "notes": "x"}})",
                1, batch);
  parser.Append(R"({"id": "b", "modalities": {}})", 2, batch);

  ExpectConsistent(batch, TestSpecs());
  EXPECT_THAT(batch.errors, ElementsAre("", ""));
  EXPECT_THAT(batch.ids, ElementsAre("a", "b"));
  EXPECT_THAT(batch.columns[0].present, ElementsAre(0, 0));
  EXPECT_THAT(batch.columns[1].present, ElementsAre(1, 0));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("x"));
  EXPECT_THAT(batch.columns[2].present, ElementsAre(0, 0));
  EXPECT_THAT(batch.columns[0].dense, IsEmpty());
}

TEST(RecordParserTest, LabelIsOptionalAndNullMeansAbsent) {
  RecordParser parser(TestSpecs());
  InputBatch batch = ParseLines(
      parser, {R"({"id": "a", "modalities": {}, "label": "deteriorating"})",
               R"({"id": "b", "modalities": {}, "label": null})",
               R"({"id": "c", "modalities": {}})",
               R"({"id": "d", "modalities": {}, "label": ""})"});

  EXPECT_THAT(batch.errors, ElementsAre("", "", "", ""));
  EXPECT_THAT(batch.labels, ElementsAre("deteriorating", "", "", ""));
  EXPECT_THAT(batch.has_label, ElementsAre(1, 0, 0, 1));
}

TEST(RecordParserTest, OtherTopLevelKeysAreIgnored) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append(R"({"source": {"site": 3, "tags": [1, "x", null]}, "id": "a", )"
                R"("modalities": {"notes": "hi"}, "ts": 1.5e9, "ok": true})",
                1, batch);

  EXPECT_THAT(batch.errors, ElementsAre(""));
  EXPECT_THAT(batch.ids, ElementsAre("a"));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("hi"));
}

TEST(RecordParserTest, SeveralLinesLandInRowOrderPerPresentRow) {
  RecordParser parser(TestSpecs());
  InputBatch batch = ParseLines(
      parser,
      {R"({"id": "r1", "modalities": {"vitals": [1, 2, 3], "notes": "one"}})",
       R"({"id": "r2", "modalities": {"notes": "two", "scan": "QUJD"}})",
       R"({"id": "r3", "modalities": {"vitals": [4, 5, 6], "scan": "QQ"}})"});

  ExpectConsistent(batch, TestSpecs());
  EXPECT_EQ(batch.rows, 3u);
  EXPECT_THAT(batch.ids, ElementsAre("r1", "r2", "r3"));
  EXPECT_THAT(batch.columns[0].present, ElementsAre(1, 0, 1));
  EXPECT_THAT(batch.columns[0].dense, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(batch.columns[1].present, ElementsAre(1, 1, 0));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("one", "two"));
  EXPECT_THAT(batch.columns[2].present, ElementsAre(0, 1, 1));
  EXPECT_THAT(batch.columns[2].items, ElementsAre("ABC", "A"));
}

TEST(RecordParserTest, TextIsDecodedUtf8) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append(
      R"({"id": "a", "modalities": {"notes": "caf\u00e9 \"x\"\n\u2713 ✓"}})", 1,
      batch);

  EXPECT_THAT(batch.errors, ElementsAre(""));
  EXPECT_THAT(batch.columns[1].items,
              ElementsAre("caf\xc3\xa9 \"x\"\n\xe2\x9c\x93 \xe2\x9c\x93"));
}

TEST(RecordParserTest, BytesAcceptBase64WithOrWithoutPadding) {
  RecordParser parser(TestSpecs());
  InputBatch batch =
      ParseLines(parser, {R"({"id": "a", "modalities": {"scan": "QUI="}})",
                          R"({"id": "b", "modalities": {"scan": "QUI"}})",
                          R"({"id": "c", "modalities": {"scan": ""}})"});

  EXPECT_THAT(batch.errors, ElementsAre("", "", ""));
  EXPECT_THAT(batch.columns[2].present, ElementsAre(1, 1, 1));
  EXPECT_THAT(batch.columns[2].items, ElementsAre("AB", "AB", ""));
}

TEST(RecordParserTest, DenseValuesArriveAsFloat32OfTheParsedDouble) {
  RecordParser parser({{"x", RecordInputKind::kDense, 6}});
  InputBatch batch;
  parser.Append(R"({"id": "a", "modalities": {"x": [0.1, 72, -0.0, 1e-50, )"
                R"(3.4028235e38, -16777217]}})",
                1, batch);

  ASSERT_THAT(batch.errors, ElementsAre(""));
  const std::vector<float>& dense = batch.columns[0].dense;
  ASSERT_EQ(dense.size(), 6u);
  EXPECT_EQ(dense[0], static_cast<float>(0.1));
  EXPECT_NE(static_cast<double>(dense[0]), 0.1);  // float32, not double
  EXPECT_EQ(dense[1], 72.0f);
  EXPECT_EQ(dense[2], 0.0f);
  EXPECT_TRUE(std::signbit(dense[2]));
  EXPECT_EQ(dense[3], 0.0f);  // underflows to zero, as a float32 cast does
  // FLT_MAX as printed at float32 precision is a hair above FLT_MAX as a
  // double, yet rounds to it.
  EXPECT_EQ(dense[4], FLT_MAX);
  EXPECT_EQ(dense[5], static_cast<float>(-16777217.0));
}

TEST(RecordParserTest, WhitespaceAroundTheObjectAndCrlfAreFine) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append("  {\"id\": \"a\", \"modalities\": {}}\t\r", 1, batch);
  EXPECT_THAT(batch.errors, ElementsAre(""));
  EXPECT_THAT(batch.ids, ElementsAre("a"));
}

struct BadLineCase {
  std::string line;
  std::string message;
};

void PrintTo(const BadLineCase& test_case, std::ostream* os) {
  *os << "line " << ::testing::PrintToString(test_case.line);
}

class BadLineTest : public ::testing::TestWithParam<BadLineCase> {};

// The bad line is line 3, between good lines: its row gets the exact message
// and no modality, the good rows keep everything.
TEST_P(BadLineTest, GivesExactMessageAndLeavesOtherRowsIntact) {
  const BadLineCase& test_case = GetParam();
  RecordParser parser(TestSpecs());
  InputBatch batch = ParseLines(
      parser, {GoodLine("1"), GoodLine("2"), test_case.line, GoodLine("4")});

  ExpectConsistent(batch, TestSpecs());
  ASSERT_EQ(batch.rows, 4u);
  EXPECT_EQ(batch.errors[2], test_case.message);
  EXPECT_EQ(batch.errors[0], "");
  EXPECT_EQ(batch.errors[1], "");
  EXPECT_EQ(batch.errors[3], "");
  for (const InputColumn& column : batch.columns) {
    EXPECT_THAT(column.present, ElementsAre(1, 1, 0, 1));
  }
  EXPECT_THAT(batch.columns[0].dense, ElementsAre(1, 2, 3, 1, 2, 3, 1, 2, 3));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("n1", "n2", "n4"));
  EXPECT_THAT(batch.columns[2].items, ElementsAre("AB", "AB", "AB"));
  EXPECT_EQ(batch.ids[1], "good-2");
  EXPECT_EQ(batch.ids[3], "good-4");
  EXPECT_THAT(batch.labels, ElementsAre("stable", "stable", "", "stable"));
  EXPECT_THAT(batch.has_label, ElementsAre(1, 1, 0, 1));
}

// Builds a record line with id "bad" around a `modalities` object body.
std::string WithModalities(std::string_view body) {
  return std::string(R"({"id": "bad", "modalities": {)") + std::string(body) +
         "}}";
}

INSTANTIATE_TEST_SUITE_P(
    Messages, BadLineTest,
    ::testing::Values(
        BadLineCase{"", "line 3: empty line"},
        BadLineCase{" \t \r", "line 3: empty line"},
        BadLineCase{R"({"id": "bad", "modalities": {})",
                    "line 3: invalid JSON: " + std::string(kStructureError)},
        BadLineCase{R"({"id": "bad", "modalities": {}} x)",
                    "line 3: invalid JSON: " + std::string(kStructureError)},
        BadLineCase{R"({"id": "bad", "modalities": {}} {})",
                    "line 3: invalid JSON: " + std::string(kStructureError)},
        BadLineCase{"{\"id\": \"bad\", \"modalities\": {\"notes\": \"\xff\"}}",
                    "line 3: invalid JSON: " + std::string(kUtf8Error)},
        BadLineCase{"[1, 2]", "line 3: expected a JSON object"},
        BadLineCase{R"("p-1")", "line 3: expected a JSON object"},
        BadLineCase{"null", "line 3: expected a JSON object"},
        BadLineCase{R"({"modalities": {}})", R"(line 3: missing "id")"},
        BadLineCase{R"({"id": 42, "modalities": {}})",
                    "line 3: id: expected a string, got 42"},
        BadLineCase{R"({"id": ["a"], "modalities": {}})",
                    "line 3: id: expected a string, got a list"},
        BadLineCase{R"({"id": null, "modalities": {}})",
                    "line 3: id: expected a string, got null"},
        BadLineCase{R"({"id": "", "modalities": {}})",
                    R"(line 3: id: expected a non-empty string, got "")"},
        BadLineCase{R"({"id": "a", "id": "b", "modalities": {}})",
                    "line 3: id: given twice"},
        BadLineCase{R"({"id": "bad"})", R"(line 3: missing "modalities")"},
        BadLineCase{R"({"id": "bad", "modalities": [1, 2, 3]})",
                    "line 3: modalities: expected an object"},
        BadLineCase{R"({"id": "bad", "modalities": null})",
                    "line 3: modalities: expected an object"},
        BadLineCase{R"({"id": "bad", "modalities": {}, "modalities": {}})",
                    "line 3: modalities: given twice"},
        BadLineCase{WithModalities(R"("xray": null)"),
                    "line 3: modalities.xray: unknown modality (the pipeline "
                    "has vitals, notes, scan)"},
        BadLineCase{WithModalities(R"("vitals": "72, 118, 0.5")"),
                    "line 3: modalities.vitals: expected a list of 3 numbers, "
                    "got a string"},
        BadLineCase{WithModalities(R"("vitals": {"hr": 72})"),
                    "line 3: modalities.vitals: expected a list of 3 numbers, "
                    "got an object"},
        BadLineCase{WithModalities(R"("vitals": 72)"),
                    "line 3: modalities.vitals: expected a list of 3 numbers, "
                    "got 72"},
        BadLineCase{WithModalities(R"("vitals": [1, 2])"),
                    "line 3: modalities.vitals: expected 3 numbers, got 2"},
        BadLineCase{WithModalities(R"("vitals": [])"),
                    "line 3: modalities.vitals: expected 3 numbers, got 0"},
        BadLineCase{WithModalities(R"("vitals": [1, "abc", 3])"),
                    R"(line 3: modalities.vitals[1]: expected a number, )"
                    R"(got "abc")"},
        BadLineCase{WithModalities(R"("vitals": [1, 2, null])"),
                    "line 3: modalities.vitals[2]: expected a number, got "
                    "null"},
        BadLineCase{WithModalities(R"("vitals": [true, 2, 3])"),
                    "line 3: modalities.vitals[0]: expected a number, got "
                    "true"},
        BadLineCase{WithModalities(R"("vitals": [1, [2], 3])"),
                    "line 3: modalities.vitals[1]: expected a number, got a "
                    "list"},
        BadLineCase{
            WithModalities(
                R"("vitals": [1, 2, "a note far longer than forty characters, cut short"])"),
            R"(line 3: modalities.vitals[2]: expected a number, got )"
            R"("a note far longer than forty characte...")"},
        BadLineCase{WithModalities(R"("vitals": [1, 1e39, 3])"),
                    "line 3: modalities.vitals[1]: not a finite float32 "
                    "number"},
        BadLineCase{WithModalities(R"("vitals": [1, 2, -3.5e38])"),
                    "line 3: modalities.vitals[2]: not a finite float32 "
                    "number"},
        BadLineCase{WithModalities(R"("vitals": [1, 1e400, 3])"),
                    "line 3: modalities.vitals[1]: not a finite float32 "
                    "number"},
        BadLineCase{WithModalities(R"("vitals": [-1e400, 2, 3])"),
                    "line 3: modalities.vitals[0]: not a finite float32 "
                    "number"},
        BadLineCase{
            WithModalities(
                R"("vitals": [1, 2, 123456789012345678901234567890])"),
            "line 3: modalities.vitals[2]: number out of range, got "
            "123456789012345678901234567890 (integers must fit in 64 bits)"},
        BadLineCase{R"({"id": "bad", "meta": {"score": [0, 1e999]}, )"
                    R"("modalities": {}})",
                    "line 3: meta.score[1]: number out of range, got 1e999"},
        BadLineCase{"[1, 1e400]", "line 3: expected a JSON object"},
        BadLineCase{WithModalities(R"("vitals": [1, 01, 3])"),
                    "line 3: invalid JSON: Problem while parsing a number"},
        BadLineCase{WithModalities(R"("notes": ["pt", "alert"])"),
                    "line 3: modalities.notes: expected a string, got a list"},
        BadLineCase{WithModalities(R"("notes": 42)"),
                    "line 3: modalities.notes: expected a string, got 42"},
        BadLineCase{WithModalities(R"("scan": "not base64!")"),
                    "line 3: modalities.scan: expected base64 text"},
        BadLineCase{WithModalities(R"("scan": "QUI=QUI=")"),
                    "line 3: modalities.scan: expected base64 text"},
        BadLineCase{WithModalities(R"("scan": [1, 2])"),
                    "line 3: modalities.scan: expected base64 text, got a "
                    "list"},
        BadLineCase{WithModalities(R"("vitals": [1, 2, 3], "vitals": null)"),
                    "line 3: modalities.vitals: given twice"},
        BadLineCase{WithModalities(R"("notes": null, "notes": "x")"),
                    "line 3: modalities.notes: given twice"},
        BadLineCase{R"({"id": "bad", "modalities": {}, "label": 1})",
                    "line 3: label: expected a string"},
        BadLineCase{R"({"id": "bad", "modalities": {}, "label": ["a"]})",
                    "line 3: label: expected a string"}));

TEST(RecordParserTest, BadLineRollsBackModalitiesParsedBeforeTheFault) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  parser.Append(
      R"({"id": "a", "modalities": {"vitals": [1, 2, 3], "notes": "x", )"
      R"("scan": "!!"}})",
      7, batch);

  ExpectConsistent(batch, TestSpecs());
  EXPECT_THAT(batch.errors,
              ElementsAre("line 7: modalities.scan: expected base64 text"));
  for (const InputColumn& column : batch.columns) {
    EXPECT_THAT(column.present, ElementsAre(0));
  }
  EXPECT_THAT(batch.columns[0].dense, IsEmpty());
  EXPECT_THAT(batch.columns[1].items, IsEmpty());
  EXPECT_THAT(batch.columns[2].items, IsEmpty());
}

TEST(RecordParserTest, BadLineKeepsItsIdWhenOneCanBeRead) {
  RecordParser parser(TestSpecs());
  InputBatch batch = ParseLines(
      parser,
      {
          // Valid JSON, a later fault.
          WithModalities(R"("vitals": [1, 2])"),
          R"({"id": "p-2", "modalities": {}, "label": 3})",
          // Not valid JSON, but the id comes before the fault.
          R"({"id": "p-3", "modalities": {"vitals": [1, 2,}})",
          R"({"id": "p-\u0034", "modalities": {"vitals": [1e400, 2, 3]}})",
          // The fault comes first, the id is unusable or given twice.
          R"({"modalities": {"vitals": [1, 2,}}, "id": "p-5"})",
          R"({"id": 6, "modalities": {}})",
          R"({"id": "", "modalities": {"vitals": [)",
          R"({"id": "p-8", "id": "p-8b", "modalities": {)",
          "",
      });

  ExpectConsistent(batch, TestSpecs());
  EXPECT_THAT(batch.ids,
              ElementsAre("bad", "p-2", "p-3", "p-4", "", "", "", "", ""));
  EXPECT_THAT(batch.has_id, ElementsAre(1, 1, 1, 1, 0, 0, 0, 0, 0));
  for (const std::string& error : batch.errors) EXPECT_NE(error, "");
  EXPECT_EQ(batch.errors[3],
            "line 4: modalities.vitals[0]: not a finite float32 number");
}

TEST(RecordParserTest, ClearEmptiesTheBatchForReuse) {
  RecordParser parser(TestSpecs());
  InputBatch batch = ParseLines(parser, {GoodLine("1"), "oops", GoodLine("3")});
  ASSERT_EQ(batch.rows, 3u);
  const std::size_t dense_capacity = batch.columns[0].dense.capacity();

  batch.Clear();
  EXPECT_EQ(batch.rows, 0u);
  ExpectConsistent(batch, TestSpecs());
  EXPECT_EQ(batch.columns[0].dense.capacity(), dense_capacity);

  parser.Append(R"({"id": "again", "modalities": {"notes": "n"}})", 10, batch);
  ExpectConsistent(batch, TestSpecs());
  EXPECT_THAT(batch.ids, ElementsAre("again"));
  EXPECT_THAT(batch.errors, ElementsAre(""));
  EXPECT_THAT(batch.columns[0].present, ElementsAre(0));
  EXPECT_THAT(batch.columns[1].items, ElementsAre("n"));
}

TEST(RecordParserTest, ColumnsAreSizedOnFirstUse) {
  RecordParser parser(TestSpecs());
  InputBatch batch;
  EXPECT_THAT(batch.columns, IsEmpty());
  parser.Append("not json", 1, batch);
  ASSERT_EQ(batch.columns.size(), 3u);
  ExpectConsistent(batch, TestSpecs());
  EXPECT_EQ(batch.errors[0].rfind("line 1: invalid JSON: ", 0), 0u)
      << batch.errors[0];
}

TEST(RecordParserTest, UnknownModalityMessageWithAnEmptyPipeline) {
  RecordParser parser({});
  InputBatch batch;
  parser.Append(R"({"id": "a", "modalities": {"x": 1}})", 2, batch);
  EXPECT_THAT(batch.errors,
              ElementsAre("line 2: modalities.x: unknown modality (the "
                          "pipeline has none)"));
  EXPECT_THAT(batch.columns, IsEmpty());
}

TEST(RecordParserTest, WidthOneSaysOneNumber) {
  RecordParser parser({{"age", RecordInputKind::kDense, 1}});
  InputBatch batch =
      ParseLines(parser, {R"({"id": "a", "modalities": {"age": 61}})",
                          R"({"id": "b", "modalities": {"age": [61, 62]}})",
                          R"({"id": "c", "modalities": {"age": [61]}})"});
  EXPECT_THAT(
      batch.errors,
      ElementsAre("line 1: modalities.age: expected a list of 1 "
                  "number, got 61",
                  "line 2: modalities.age: expected 1 number, got 2", ""));
  EXPECT_THAT(batch.columns[0].dense, ElementsAre(61.0f));
}

// Both modes' batches, field by field; dense values compared bit for bit
// (0.0f and -0.0f differ).
void ExpectSameBatch(const InputBatch& fast, const InputBatch& general,
                     const std::string& lines) {
  SCOPED_TRACE(lines);
  ASSERT_EQ(fast.rows, general.rows);
  EXPECT_EQ(fast.ids, general.ids);
  EXPECT_EQ(fast.has_id, general.has_id);
  EXPECT_EQ(fast.labels, general.labels);
  EXPECT_EQ(fast.has_label, general.has_label);
  EXPECT_EQ(fast.errors, general.errors);
  ASSERT_EQ(fast.columns.size(), general.columns.size());
  for (std::size_t k = 0; k < fast.columns.size(); ++k) {
    const InputColumn& a = fast.columns[k];
    const InputColumn& b = general.columns[k];
    EXPECT_EQ(a.present, b.present) << k;
    EXPECT_EQ(a.items, b.items) << k;
    ASSERT_EQ(a.dense.size(), b.dense.size()) << k;
    for (std::size_t i = 0; i < a.dense.size(); ++i) {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(a.dense[i]),
                std::bit_cast<std::uint32_t>(b.dense[i]))
          << k << "[" << i << "]: " << a.dense[i] << " vs " << b.dense[i];
    }
  }
}

// Parses `lines` in both modes and expects the same batch.
void ExpectModesAgree(
    const std::vector<std::string>& lines,
    const std::vector<RecordModalitySpec>& specs = TestSpecs()) {
  RecordParser fast(specs, RecordParseMode::kFast);
  RecordParser general(specs, RecordParseMode::kGeneral);
  std::string all;
  for (const std::string& line : lines) all += line + "\n";
  ExpectSameBatch(ParseLines(fast, lines), ParseLines(general, lines), all);
}

// Lines at the edges of what the fast path takes: numbers simdjson converts
// its own way (-0, huge integers, underflow), escapes, non-ASCII text,
// invalid UTF-8, extra keys of every kind, faults after a good prefix.
TEST(RecordParserModesTest, EdgeLinesGiveTheSameBatchInBothModes) {
  const std::vector<std::string> lines = {
      GoodLine("1"),
      WithModalities(R"("vitals": [-0, 0, -0.0])"),
      WithModalities(R"("vitals": [1e-400, -1e-400, 4.9e-324])"),
      WithModalities(R"("vitals": [123456789012345678, -99999999999999999, )"
                     R"(9223372036854775807])"),
      WithModalities(R"("vitals": [18446744073709551615, 1, 2])"),
      WithModalities(
          R"("vitals": [3.4028235e38, -3.4028235e38, 3.4028236e38])"),
      WithModalities(R"("vitals": [0.1000000000000000055511151231257827, )"
                     R"(2.2250738585072011e-308, 1E+2])"),
      WithModalities(R"("vitals": [1.5e, 2, 3])"),
      WithModalities(R"("vitals": [.5, 2, 3])"),
      WithModalities(R"("vitals": [+1, 2, 3])"),
      WithModalities(R"("vitals": [-, 2, 3])"),
      WithModalities(R"("vitals": [1,2,3] , "notes" : "x" )"),
      R"({"id": "p\u0031", "modalities": {"notes": "a\"b\\c\n"}})",
      R"({"i\u0064": "p1", "modalities": {}})",
      "{\"id\": \"caf\xc3\xa9\", \"modalities\": {\"notes\": \"\xe2\x82\xac "
      "5\"}}",
      "{\"id\": \"bad\xc3\", \"modalities\": {}}",
      "{\"id\": \"tab\there\", \"modalities\": {}}",
      R"({"id": "x", "extra": {"a": [1, -2.5e3, true, false, null, "s"]},)"
      R"( "modalities": {}, "label": null})",
      R"({"id": "x", "extra": 1e999, "modalities": {}})",
      R"({"id": "x", "extra": 123456789012345678901234, "modalities": {}})",
      R"({"id": "x", "extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[)"
      R"([[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])"
      R"(]]]]]]]]]]]]]]]]]]]]]]]]]]], "modalities": {}})",
      R"({"id": "x", "extra": tru, "modalities": {}})",
      R"({"id": "x", "modalities": {}, "label": "l", "label": "m"})",
      R"({"id": "x", "modalities": {"notes": null, "scan": "QUI"}})",
      R"({"id": "x", "modalities": {"scan": "QUI=="}})",
      R"({"id": "x", "modalities": {}}   )",
      R"(  {"modalities": {}, "id": "x"})",
      R"({"id": "x", "modalities": {}})"
      "\r",
      R"({"id": "x", "modalities": {},})",
      R"({"id": "x", "modalities": {"vitals": [1, 2, 3,]}})",
      R"({"id": "x" "modalities": {}})",
      R"({"id": "x", "modalities": {"vitals": [1 2 3]}})",
      R"({"id": "x", "modalities": {"vitals": [1, 2, 3]}, "id": "y"})",
      R"({"id": "x", "modalities": {"vitals": [1, 2, 3]}})"
      "\x01",
      std::string(R"({"id": "x", "modalities": {"notes": "a)") + '\0' +
          R"(b"}})",
      GoodLine("last"),
  };
  ExpectModesAgree(lines);
}

// Every line that differs from a good one by a byte deleted, doubled or
// replaced with a JSON-significant character parses the same in both modes:
// the fast path never takes a line simdjson would read differently.
TEST(RecordParserModesTest, MutatedLinesGiveTheSameBatchInBothModes) {
  const std::string base =
      R"({"id": "p-7", "extra": [1, {"k": null}], "modalities": )"
      R"({"vitals": [72.5, -1e-3, 118], "notes": "pt ok", "scan": "QUI="}, )"
      R"("label": "stable"})";
  const std::string specials = "{}[]\",:\\ -+.eE0119nulltrue\x80\xff";
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < base.size(); ++i) {
    lines.push_back(base.substr(0, i) + base.substr(i + 1));
    lines.push_back(base.substr(0, i + 1) + base.substr(i));
    for (const char c : specials) {
      std::string replaced = base;
      replaced[i] = c;
      lines.push_back(replaced);
    }
  }
  ExpectModesAgree(lines);
}

// Random numbers of every shape (digits before and after the point, up to
// 25 significant digits, exponents up to +-340, signs, exact halfway cases
// of float32 and float64 among them by chance) read to the same float32 in
// both modes, bit for bit.
TEST(RecordParserModesTest, RandomNumbersReadTheSameInBothModes) {
  std::mt19937_64 rng(20261127);
  auto digits = [&](std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
      out += static_cast<char>('0' + rng() % 10);
    return out;
  };
  auto number = [&]() {
    std::string text = rng() % 4 == 0 ? "-" : "";
    std::string whole = digits(1 + rng() % 12);
    while (whole.size() > 1 && whole[0] == '0') whole.erase(0, 1);
    text += whole;
    if (rng() % 3 != 0) text += "." + digits(1 + rng() % 13);
    if (rng() % 3 == 0) {
      text += rng() % 2 == 0 ? "e" : "E";
      if (rng() % 2 == 0) text += rng() % 2 == 0 ? "-" : "+";
      text += std::to_string(rng() % (rng() % 4 == 0 ? 340 : 30));
    }
    return text;
  };
  std::vector<std::string> lines;
  for (int i = 0; i < 20000; ++i) {
    lines.push_back(WithModalities("\"vitals\": [" + number() + ", " +
                                   number() + ", " + number() + "]"));
  }
  lines.push_back(WithModalities(
      R"("vitals": [9007199254740993.0, 9007199254740992e-22, 1e22])"));
  lines.push_back(WithModalities(
      R"("vitals": [1e23, 1234567890123456789.5, 0.1234567890123456789])"));
  lines.push_back(WithModalities(
      R"("vitals": [-0.0e5, 0e999999, 123456789012345678e-30])"));
  lines.push_back(
      WithModalities(R"("vitals": [16.0, 0.50, 1.000000000000000000000001])"));
  lines.push_back(WithModalities(
      R"("vitals": [0.000000000000000000001, 7.00000000000000000000, 1.0e-3])"));
  ExpectModesAgree(lines);
}

// The short numbers dense lists mostly hold (one or two digits, "16.0",
// decimals of up to 7 characters, which the fast path reads its own way) and
// their near misses (leading zeros, a sign, a bare or doubled point, an
// exponent, a ninth character, a stray byte), in every layout: compact,
// Python's ", ", spaces and tabs around the commas, the list last on the line
// (so the line ends within a few bytes of its numbers), too few or too many
// numbers. Every line parses the same in both modes.
TEST(RecordParserModesTest, ShortNumbersInDenseListsReadTheSameInBothModes) {
  std::mt19937_64 rng(20261128);
  auto digits = [&](std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
      // Zeros often: "0.0", "10", "0.05" and leading zeros.
      out += static_cast<char>('0' + (rng() % 3 == 0 ? 0 : rng() % 10));
    }
    return out;
  };
  auto number = [&]() {
    std::string text = rng() % 6 == 0 ? "-" : "";
    text += digits(rng() % 8 == 0 ? 0 : 1 + rng() % (rng() % 4 == 0 ? 8 : 3));
    switch (rng() % 8) {
      case 0:
      case 1:
        break;
      case 2:
        text += ".0";
        break;
      case 3:
        text += "." + digits(rng() % 8);  // "5." among them
        break;
      default:
        text += "." + digits(1 + rng() % 5);
        break;
    }
    switch (rng() % 40) {
      case 0:
        text += "e" + digits(1);
        break;
      case 1:
        text += ".5";  // a second point
        break;
      case 2:
        text.insert(rng() % (text.size() + 1), 1, "x-+ "[rng() % 4]);
        break;
      default:
        break;
    }
    return text;
  };
  const std::vector<std::string> separators = {",", ", ", " , ", ",\t", " ,"};
  std::vector<std::string> lines;
  for (int i = 0; i < 20000; ++i) {
    const std::string& separator = separators[rng() % separators.size()];
    const std::size_t count = rng() % 10 == 0 ? 2 + rng() % 3 : 3;
    std::string list = rng() % 4 == 0 ? "[ " : "[";
    for (std::size_t k = 0; k < count; ++k) {
      if (k > 0) list += separator;
      list += number();
    }
    list += rng() % 4 == 0 ? " ]" : "]";
    // Half the lines end right after the list; the others go on.
    lines.push_back(rng() % 2 == 0
                        ? R"({"id":"s","modalities":{"vitals":)" + list + "}}"
                        : R"({"id": "s", "modalities": {"vitals": )" + list +
                              R"(, "notes": "n"}, "label": "0"})");
  }
  ExpectModesAgree(lines);
}

// A dense modality of width 0 (the pipeline config refuses it, the parser
// does not) takes an empty list in both modes, and nothing else.
TEST(RecordParserModesTest, WidthZeroReadsTheSameInBothModes) {
  ExpectModesAgree({R"({"id": "a", "modalities": {"e": []}})",
                    R"({"id": "b", "modalities": {"e": [ ]}})",
                    R"({"id": "c", "modalities": {"e": [1]}})",
                    R"({"id": "d", "modalities": {"e": [,]}})"},
                   {{"e", RecordInputKind::kDense, 0}});
}

TEST(RecordParserTest, ParserIsReusableAcrossLinesOfGrowingSize) {
  RecordParser parser({{"x", RecordInputKind::kDense, 1000}});
  InputBatch batch;
  for (std::size_t line = 1; line <= 3; ++line) {
    std::string record = R"({"id": "big", "modalities": {"x": [)";
    for (std::size_t i = 0; i < 1000; ++i) {
      if (i > 0) record += ", ";
      record += std::to_string(i * line);
    }
    record += "]}}";
    parser.Append(std::string(line * 100, ' ') + record, line, batch);
  }
  ASSERT_THAT(batch.errors, ElementsAre("", "", ""));
  ASSERT_EQ(batch.columns[0].dense.size(), 3000u);
  EXPECT_EQ(batch.columns[0].dense[2999], 2997.0f);
}

// How `latefuse serve`'s records route cuts a body into lines.
TEST(NextLineTest, SplitsOnNewlinesDroppingCarriageReturns) {
  const std::string_view text = "a\r\n\nb\r\r\nc";
  std::vector<std::string_view> lines;
  std::size_t at = 0;
  while (at < text.size()) lines.push_back(NextLine(text, at));
  EXPECT_THAT(lines, ElementsAre("a", "", "b\r", "c"));
}

TEST(NextLineTest, FinalNewlineEndsTheLastLine) {
  const std::string_view text = "x\ny\n";
  std::vector<std::string_view> lines;
  std::size_t at = 0;
  while (at < text.size()) lines.push_back(NextLine(text, at));
  EXPECT_THAT(lines, ElementsAre("x", "y"));
}

}  // namespace
}  // namespace latefuse
