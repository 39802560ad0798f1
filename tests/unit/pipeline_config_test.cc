#include "core/pipeline_config.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Joins lines with '\n', so that a test's line numbers are the 1-based
// positions in this list.
std::string Lines(std::initializer_list<const char*> lines) {
  return absl::StrJoin(lines, "\n") + "\n";
}

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// The message of a pipeline expected to be rejected.
std::string Errors(const std::string& yaml,
                   const fs::path& file = "pipeline.yaml") {
  absl::StatusOr<PipelineConfig> config = ParsePipeline(yaml, file);
  EXPECT_FALSE(config.ok()) << "accepted:\n" << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return Message(config.status());
}

PipelineConfig Parse(
    const std::string& yaml,
    const fs::path& file = "/srv/pipelines/icu/pipeline.yaml") {
  absl::StatusOr<PipelineConfig> config = ParsePipeline(yaml, file);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *std::move(config) : PipelineConfig{};
}

const char kSha[] =
    "9F2C4A1B3D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F8";
const char kShaLower[] =
    "9f2c4a1b3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

// DESIGN.md's example, with a real-length hash.
std::string DesignExample() {
  return Lines({
      "apiVersion: latefuse/v1",
      "name: icu-deterioration",
      "task: classification",
      "classes: [stable, deteriorating]",
      "plugin_dirs: [../../build/plugins]          # relative to this file",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 12}            # dense | text | bytes",
      "    model:",
      "      plugin: linear",
      "      version: \">=1.0 <2\"                     # semver constraint",
      std::string("      sha256: ").append(kSha).c_str(),
      "      params: {model: models/vitals.json}     # paths relative",
      "    on_error: missing                         # missing | fail",
      "    timeout_ms: 200",
      "  - name: notes",
      "    input: {kind: text}",
      "    model: {plugin: tfidf_linear, params: {model: models/notes.json}}",
      "combiner:",
      "  plugin: weighted_mean",
      "  params: {weights: {vitals: 1.0, notes: 0.5}}",
      "policy:",
      "  min_modalities: 1                           # fewer present",
      "  on_insufficient: abstain                    # abstain | error",
  });
}

// A small valid pipeline whose modality block can be replaced.
std::string Minimal(const char* modalities_block = nullptr) {
  std::string out = Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs: [plugins]",
      "combiner: {plugin: mean}",
  });
  if (modalities_block == nullptr) {
    out += Lines({
        "modalities:",
        "  - name: vitals",
        "    input: {kind: dense, size: 3}",
        "    model: {plugin: linear}",
    });
  } else {
    out += modalities_block;
  }
  return out;
}

// A pipeline (from line 6 on) with one modality whose model `params` are the
// given flow mapping; returns the JSON of those params.
absl::StatusOr<std::string> ParamsJson(const std::string& params_yaml) {
  const std::string yaml =
      Minimal((Lines({"modalities:", "  - name: vitals",
                      "    input: {kind: dense, size: 3}",
                      "    model:", "      plugin: linear", "      params:"}) +
               params_yaml)
                  .c_str());
  absl::StatusOr<PipelineConfig> config = ParsePipeline(yaml, "p.yaml");
  if (!config.ok()) return config.status();
  return config->modalities.at(0).model.params_json;
}

// ---------------------------------------------------------------------------
// A valid pipeline

TEST(PipelineConfigTest, DesignExampleParsesWithEveryField) {
  PipelineConfig c = Parse(DesignExample());
  EXPECT_EQ(c.file, fs::path("/srv/pipelines/icu/pipeline.yaml"));
  EXPECT_EQ(c.base_dir, fs::path("/srv/pipelines/icu"));
  EXPECT_EQ(c.name, "icu-deterioration");
  EXPECT_EQ(c.task, Task::kClassification);
  EXPECT_THAT(c.classes, ElementsAre("stable", "deteriorating"));
  EXPECT_THAT(c.plugin_dirs, ElementsAre(fs::path("/srv/build/plugins")));
  ASSERT_EQ(c.modalities.size(), 2u);

  const ModalityConfig& vitals = c.modalities[0];
  EXPECT_EQ(vitals.name, "vitals");
  EXPECT_EQ(vitals.input_kind, InputKind::kDense);
  EXPECT_EQ(vitals.input_size, 12u);
  EXPECT_EQ(vitals.model.plugin, "linear");
  EXPECT_EQ(vitals.model.version, ">=1.0 <2");
  EXPECT_EQ(vitals.model.constraint.ToString(), ">=1.0.0 <2.0.0");
  EXPECT_EQ(vitals.model.sha256, kShaLower);
  EXPECT_EQ(vitals.model.params_json, R"({"model":"models/vitals.json"})");
  EXPECT_EQ(vitals.model.location.file, "/srv/pipelines/icu/pipeline.yaml");
  EXPECT_EQ(vitals.model.location.line, 10);
  EXPECT_EQ(vitals.model.location.column, 7);
  EXPECT_EQ(vitals.on_error, OnError::kMissing);
  ASSERT_TRUE(vitals.timeout.has_value());
  EXPECT_EQ(*vitals.timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(vitals.location.line, 7);
  EXPECT_EQ(vitals.location.column, 5);

  const ModalityConfig& notes = c.modalities[1];
  EXPECT_EQ(notes.name, "notes");
  EXPECT_EQ(notes.input_kind, InputKind::kText);
  EXPECT_EQ(notes.input_size, 0u);
  EXPECT_EQ(notes.model.plugin, "tfidf_linear");
  EXPECT_EQ(notes.model.version, "");
  EXPECT_TRUE(notes.model.constraint.IsAny());
  EXPECT_EQ(notes.model.sha256, "");
  EXPECT_EQ(notes.model.params_json, R"({"model":"models/notes.json"})");
  EXPECT_EQ(notes.model.location.line, 18);
  EXPECT_EQ(notes.model.location.column, 12);
  EXPECT_EQ(notes.on_error, OnError::kMissing);
  EXPECT_FALSE(notes.timeout.has_value());
  EXPECT_EQ(notes.location.line, 16);

  EXPECT_EQ(c.combiner.plugin, "weighted_mean");
  EXPECT_EQ(c.combiner.params_json,
            R"({"weights":{"vitals":1.0,"notes":0.5}})");
  EXPECT_EQ(c.combiner.location.line, 20);
  EXPECT_EQ(c.combiner.location.column, 3);
  EXPECT_EQ(c.policy.min_modalities, 1);
  EXPECT_EQ(c.policy.on_insufficient, OnInsufficient::kAbstain);
}

TEST(PipelineConfigTest, OptionalKeysTakeTheirDefaults) {
  PipelineConfig c = Parse(Minimal());
  EXPECT_EQ(c.task, Task::kClassification);
  ASSERT_EQ(c.modalities.size(), 1u);
  EXPECT_EQ(c.modalities[0].on_error, OnError::kMissing);
  EXPECT_FALSE(c.modalities[0].timeout.has_value());
  EXPECT_EQ(c.modalities[0].model.params_json, "{}");
  EXPECT_EQ(c.modalities[0].model.version, "");
  EXPECT_TRUE(c.modalities[0].model.constraint.Matches(Version{9, 9, 9, ""}));
  EXPECT_EQ(c.modalities[0].model.sha256, "");
  EXPECT_EQ(c.combiner.params_json, "{}");
  EXPECT_EQ(c.policy.min_modalities, 1);
  EXPECT_EQ(c.policy.on_insufficient, OnInsufficient::kAbstain);
}

TEST(PipelineConfigTest, OnErrorFailPolicyErrorAndBytesInputAreRead) {
  PipelineConfig c = Parse(Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b, c]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - {name: xray.v2, input: {kind: bytes}, model: {plugin: cnn},",
      "     on_error: fail}",
      "  - {name: labs_1-b, input: {kind: dense, size: 40},",
      "     model: {plugin: linear, version: '^1.2'}}",
      "combiner: {plugin: stacking, version: 2.1.0}",
      "policy: {min_modalities: 2, on_insufficient: error}",
  }));
  ASSERT_EQ(c.modalities.size(), 2u);
  EXPECT_EQ(c.modalities[0].name, "xray.v2");
  EXPECT_EQ(c.modalities[0].input_kind, InputKind::kBytes);
  EXPECT_EQ(c.modalities[0].on_error, OnError::kFail);
  EXPECT_EQ(c.modalities[1].name, "labs_1-b");
  EXPECT_EQ(c.modalities[1].input_size, 40u);
  EXPECT_EQ(c.modalities[1].model.version, "^1.2");
  EXPECT_EQ(c.combiner.version, "2.1.0");
  EXPECT_EQ(c.combiner.constraint.ToString(), "=2.1.0");
  EXPECT_EQ(c.policy.min_modalities, 2);
  EXPECT_EQ(c.policy.on_insufficient, OnInsufficient::kError);
}

TEST(PipelineConfigTest, CalibrationAndCombinerFitAreRead) {
  PipelineConfig c = Parse(Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 3}",
      "    model: {plugin: linear}",
      "    calibration: {method: platt, file: calib/vitals.json}",
      "  - name: labs",
      "    input: {kind: dense, size: 2}",
      "    model: {plugin: linear}",
      "    calibration: {method: isotonic, fit: true}",
      "  - {name: notes, input: {kind: text}, model: {plugin: tfidf}}",
      "combiner:",
      "  plugin: stacking",
      "  params: {model: fitted/stacking.json}",
      "  fit: {l2_C: 0.5, modality_dropout: 0.3}",
  }));
  ASSERT_EQ(c.modalities.size(), 3u);
  ASSERT_TRUE(c.modalities[0].calibration.has_value());
  EXPECT_EQ(c.modalities[0].calibration->method, "platt");
  EXPECT_EQ(c.modalities[0].calibration->file,
            fs::path("/srv/pipelines/icu/calib/vitals.json"));
  EXPECT_FALSE(c.modalities[0].calibration->fit);
  ASSERT_TRUE(c.modalities[1].calibration.has_value());
  EXPECT_EQ(c.modalities[1].calibration->method, "isotonic");
  EXPECT_TRUE(c.modalities[1].calibration->file.empty());
  EXPECT_TRUE(c.modalities[1].calibration->fit);
  EXPECT_FALSE(c.modalities[2].calibration.has_value());
  EXPECT_EQ(c.combiner.fit_json, std::optional<std::string>(
                                     R"({"l2_C":0.5,"modality_dropout":0.3})"));
  EXPECT_FALSE(c.modalities[0].model.fit_json.has_value());
}

TEST(PipelineConfigErrorTest, CalibrationAndFitAreChecked) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 3}",
      "    model: {plugin: linear, fit: {}}",
      "    calibration: {method: beta, fit: maybe}",
      "  - name: labs",
      "    input: {kind: dense, size: 2}",
      "    model: {plugin: linear}",
      "    calibration: {method: platt}",
      "combiner: {plugin: stacking, fit: [1]}",
  });
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:8:29: modalities[0].model.fit: unknown key 'fit'; "
            "allowed keys: plugin, version, sha256, params\n"
            "pipeline.yaml:9:27: modalities[0].calibration.method: expected "
            "one of temperature, platt, isotonic; got \"beta\"\n"
            "pipeline.yaml:9:38: modalities[0].calibration.fit: expected true "
            "or false, got \"maybe\"\n"
            "pipeline.yaml:13:18: modalities[1].calibration: missing required "
            "key 'file' (or 'fit: true' for `latefuse fit` to make it)\n"
            "pipeline.yaml:14:35: combiner.fit: expected a mapping, got a "
            "list");
}

TEST(PipelineConfigTest, EnumNamesAreTheFileSpellings) {
  EXPECT_EQ(InputKindName(InputKind::kDense), "dense");
  EXPECT_EQ(InputKindName(InputKind::kText), "text");
  EXPECT_EQ(InputKindName(InputKind::kBytes), "bytes");
  EXPECT_EQ(OnErrorName(OnError::kFail), "fail");
  EXPECT_EQ(OnInsufficientName(OnInsufficient::kAbstain), "abstain");
  EXPECT_EQ(TaskName(Task::kClassification), "classification");
  EXPECT_EQ((SourceLocation{"p.yaml", 3, 9}).ToString(), "p.yaml:3:9");
}

// ---------------------------------------------------------------------------
// Paths

TEST(PipelineConfigTest, RelativePluginDirsResolveAgainstTheFileDirectory) {
  PipelineConfig c = Parse(Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs:",
      "  - ../../build/plugins",
      "  - /opt/latefuse/plugins/",
      "  - ./local/../vendor//plugins",
      "  - plugins",
      "modalities: [{name: v, input: {kind: text}, model: {plugin: m}}]",
      "combiner: {plugin: mean}",
  }));
  EXPECT_THAT(c.plugin_dirs,
              ElementsAre(fs::path("/srv/build/plugins"),
                          fs::path("/opt/latefuse/plugins"),
                          fs::path("/srv/pipelines/icu/vendor/plugins"),
                          fs::path("/srv/pipelines/icu/plugins")));
}

TEST(PipelineConfigTest, RelativeFileIsMadeAbsolute) {
  PipelineConfig c = Parse(Minimal(), "configs/../icu/pipeline.yaml");
  const fs::path cwd = fs::current_path();
  EXPECT_EQ(c.file, (cwd / "icu/pipeline.yaml").lexically_normal());
  EXPECT_EQ(c.base_dir, (cwd / "icu").lexically_normal());
  EXPECT_EQ(c.plugin_dirs.at(0), (cwd / "icu/plugins").lexically_normal());
  // Messages keep the path as given.
  EXPECT_EQ(c.combiner.location.file, "configs/../icu/pipeline.yaml");
}

TEST(PipelineConfigTest, ParamsPathsAreNotRewritten) {
  PipelineConfig c = Parse(DesignExample());
  EXPECT_THAT(c.modalities[0].model.params_json,
              HasSubstr("models/vitals.json"));
  EXPECT_THAT(c.modalities[0].model.params_json,
              ::testing::Not(HasSubstr("/srv")));
}

// ---------------------------------------------------------------------------
// Errors: exact format, line and column

TEST(PipelineConfigErrorTest, WrongTypeGivesFileLineColumnKeyPathAndValue) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v1",  // 1
      "name: icu",
      "classes: [stable, deteriorating]",
      "plugin_dirs: [plugins]",
      "modalities:",  // 5
      "  - name: vitals",
      "    input: {kind: dense, size: 12}",
      "    model: {plugin: linear}",
      "  - name: labs",
      "    model: {plugin: linear}",  // 10
      "    on_error: fail",
      "    input:",
      "      kind: dense",
      "      size: twelve",  // 14
      "combiner: {plugin: mean}",
  });
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:14:13: modalities[1].input.size: expected a "
            "positive integer, got \"twelve\"");
}

TEST(PipelineConfigErrorTest, UnknownKeyIsRejectedWithLineAndColumn) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 3, shape: [3]}",
      "    model: {plugin: linear, versoin: '1'}",
      "    retries: 2",
      "combiner: {plugin: mean, weights: 1}",
      "policy: {min_modalities: 1, quorum: 2}",
      "extra: true",
  });
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:7:35: modalities[0].input.shape: unknown key "
            "'shape'; allowed keys: kind, size\n"
            "pipeline.yaml:8:29: modalities[0].model.versoin: unknown key "
            "'versoin'; allowed keys: plugin, version, sha256, params\n"
            "pipeline.yaml:9:5: modalities[0].retries: unknown key 'retries'; "
            "allowed keys: name, input, model, shadow, on_error, timeout_ms, "
            "isolation, calibration\n"
            "pipeline.yaml:10:26: combiner.weights: unknown key 'weights'; "
            "allowed keys: plugin, version, sha256, params, fit\n"
            "pipeline.yaml:11:29: policy.quorum: unknown key 'quorum'; "
            "allowed keys: min_modalities, on_insufficient\n"
            "pipeline.yaml:12:1: extra: unknown key 'extra'; allowed keys: "
            "apiVersion, name, task, classes, plugin_dirs, modalities, "
            "combiner, policy");
}

TEST(PipelineConfigErrorTest, DuplicateKeyIsRejectedAtTheSecondOne) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 3}",
      "    model: {plugin: linear}",
      "    name: labs",
      "combiner: {plugin: mean}",
      "name: other",
  });
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:9:5: modalities[0].name: duplicate key 'name' "
            "(first at line 6, column 5)\n"
            "pipeline.yaml:11:1: name: duplicate key 'name' (first at line "
            "2, column 1)");
}

TEST(PipelineConfigErrorTest, MissingRequiredKeyPointsAtTheMapping) {
  const std::string yaml = Lines({
      "# a comment first",
      "apiVersion: latefuse/v1",
      "classes: [a, b]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: 3}",
      "    model: {version: '1'}",
      "  - input: {kind: text}",
  });
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:2:1: missing required key 'name'\n"
            "pipeline.yaml:2:1: missing required key 'plugin_dirs'\n"
            "pipeline.yaml:2:1: missing required key 'combiner'\n"
            "pipeline.yaml:7:12: modalities[0].model: missing required key "
            "'plugin'\n"
            "pipeline.yaml:8:5: modalities[1]: missing required key 'name'\n"
            "pipeline.yaml:8:5: modalities[1]: missing required key 'model'");
}

TEST(PipelineConfigErrorTest, WrongApiVersionIsRejected) {
  std::string yaml = Minimal();
  yaml.replace(yaml.find("latefuse/v1"), 11, "latefuse/v2");
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:1:13: apiVersion: unsupported apiVersion "
            "\"latefuse/v2\"; expected \"latefuse/v1\"");
}

TEST(PipelineConfigErrorTest, UnknownTaskIsRejected) {
  EXPECT_EQ(Errors("task: ranking\n" + Minimal()),
            "pipeline.yaml:1:7: task: expected one of classification, "
            "regression; got \"ranking\"");
}

// Minimal() as a regression pipeline: `task: regression`, no classes.
std::string MinimalRegression(const char* modalities_block = nullptr) {
  std::string yaml = Minimal(modalities_block);
  yaml.replace(yaml.find("classes: [a, b]"), 15, "task: regression");
  return yaml;
}

TEST(PipelineConfigTest, RegressionTaskHasNoClasses) {
  PipelineConfig c = Parse(MinimalRegression());
  EXPECT_EQ(c.task, Task::kRegression);
  EXPECT_TRUE(c.classes.empty());
  EXPECT_EQ(ValuesPerRow(c), 2u);
  EXPECT_EQ(TaskName(c.task), "regression");
  EXPECT_EQ(ValuesPerRow(Parse(Minimal())), 2u);  // classes [a, b]
}

TEST(PipelineConfigErrorTest, ClassesAreNotAllowedForRegression) {
  EXPECT_EQ(Errors("task: regression\n" + Minimal()),
            "pipeline.yaml:4:10: classes: not allowed for task 'regression'; "
            "a regression pipeline predicts a number, not classes");
}

TEST(PipelineConfigErrorTest, CalibrationIsNotAllowedForRegression) {
  const std::string yaml = MinimalRegression(
      Lines({"modalities:", "  - name: vitals",
             "    input: {kind: dense, size: 3}", "    model: {plugin: linear}",
             "    calibration: {method: platt, file: platt.json}"})
          .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:10:18: modalities[0].calibration: not allowed for "
            "task 'regression'; calibration maps class probabilities");
}

TEST(PipelineConfigErrorTest, ClassesMustBeTwoOrMoreUniqueNonEmptyStrings) {
  auto with_classes = [](const char* classes_line) {
    std::string yaml = Minimal();
    yaml.replace(yaml.find("classes: [a, b]"), 15, classes_line);
    return Errors(yaml);
  };
  EXPECT_EQ(with_classes("classes: [a]"),
            "pipeline.yaml:3:10: classes: expected at least 2 classes, got 1");
  EXPECT_EQ(with_classes("classes: [a, b, a]"),
            "pipeline.yaml:3:17: classes[2]: duplicate class \"a\" (also "
            "classes[0])");
  EXPECT_EQ(with_classes("classes: [a, '', {x: 1}]"),
            "pipeline.yaml:3:14: classes[1]: must not be empty\n"
            "pipeline.yaml:3:18: classes[2]: expected a string, got a "
            "mapping");
  EXPECT_EQ(with_classes("classes: a, b"),
            "pipeline.yaml:3:10: classes: expected a list, got \"a, b\"");
}

TEST(PipelineConfigErrorTest, PluginDirsMustBeANonEmptyListOfStrings) {
  auto with_dirs = [](const char* dirs_line) {
    std::string yaml = Minimal();
    yaml.replace(yaml.find("plugin_dirs: [plugins]"), 22, dirs_line);
    return Errors(yaml);
  };
  EXPECT_EQ(with_dirs("plugin_dirs: []"),
            "pipeline.yaml:4:14: plugin_dirs: expected at least one plugin "
            "directory");
  EXPECT_EQ(with_dirs("plugin_dirs: plugins"),
            "pipeline.yaml:4:14: plugin_dirs: expected a list, got "
            "\"plugins\"");
  EXPECT_EQ(with_dirs("plugin_dirs: [a, [b]]"),
            "pipeline.yaml:4:18: plugin_dirs[1]: expected a string, got a "
            "list");
}

TEST(PipelineConfigErrorTest, ModalitiesMustBeANonEmptyList) {
  EXPECT_EQ(Errors(Minimal("modalities: []\n")),
            "pipeline.yaml:6:13: modalities: expected at least one modality");
  EXPECT_EQ(Errors(Minimal("modalities: {vitals: 1}\n")),
            "pipeline.yaml:6:13: modalities: expected a list, got a mapping");
  EXPECT_EQ(Errors(Minimal("modalities: [vitals]\n")),
            "pipeline.yaml:6:14: modalities[0]: expected a mapping, got "
            "\"vitals\"");
}

TEST(PipelineConfigErrorTest, ModalityNamesMustBeUniqueAndWellFormed) {
  const std::string yaml = Minimal(
      Lines({
                "modalities:",  // 6
                "  - {name: vitals, input: {kind: text}, model: {plugin: m}}",
                "  - {name: 'chest x-ray', input: {kind: text}, model: "
                "{plugin: m}}",
                "  - {name: vitals, input: {kind: text}, model: {plugin: m}}",
                "  - {name: '', input: {kind: text}, model: {plugin: m}}",
            })
          .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:8:12: modalities[1].name: invalid modality name "
            "\"chest x-ray\"; use only letters, digits, '_', '.' and '-'\n"
            "pipeline.yaml:9:12: modalities[2].name: duplicate modality name "
            "\"vitals\" (first at modalities[0], line 7)\n"
            "pipeline.yaml:10:12: modalities[3].name: must not be empty");
}

TEST(PipelineConfigErrorTest, InputSizeMustBeAPositiveInteger) {
  auto with_input = [](const char* input) {
    return Errors(
        Minimal((std::string("modalities:\n  - name: v\n    input: ") + input +
                 "\n    model: {plugin: m}\n")
                    .c_str()));
  };
  // `    input: {kind: dense, size: ` is 31 characters.
  EXPECT_EQ(with_input("{kind: dense, size: 0}"),
            "pipeline.yaml:8:32: modalities[0].input.size: expected a "
            "positive integer, got \"0\"");
  EXPECT_EQ(with_input("{kind: dense, size: -3}"),
            "pipeline.yaml:8:32: modalities[0].input.size: expected a "
            "positive integer, got \"-3\"");
  EXPECT_EQ(with_input("{kind: dense, size: 1.5}"),
            "pipeline.yaml:8:32: modalities[0].input.size: expected a "
            "positive integer, got \"1.5\"");
  EXPECT_EQ(with_input("{kind: dense, size: \"12\"}"),
            "pipeline.yaml:8:32: modalities[0].input.size: expected a "
            "positive integer, got \"12\" (a quoted string)");
  EXPECT_EQ(with_input("{kind: dense, size: [12]}"),
            "pipeline.yaml:8:32: modalities[0].input.size: expected a "
            "positive integer, got a list");
  EXPECT_EQ(with_input("{kind: dense, size: 99999999999999999999}"),
            "pipeline.yaml:8:32: modalities[0].input.size: integer out of "
            "range, got \"99999999999999999999\"");
}

TEST(PipelineConfigErrorTest, EmptyValuePointsAtItsKey) {
  const std::string yaml = Minimal(Lines({
                                             "modalities:",
                                             "  - name: v",
                                             "    input:",
                                             "      kind: dense",
                                             "      size:",
                                             "    model: {plugin: m}",
                                         })
                                       .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:10:7: modalities[0].input.size: expected a "
            "positive integer, got null");
}

TEST(PipelineConfigErrorTest, SizeIsRequiredForDenseAndForbiddenOtherwise) {
  const std::string yaml = Minimal(
      Lines(
          {
              "modalities:",
              "  - {name: a, input: {kind: dense}, model: {plugin: m}}",
              "  - {name: b, input: {kind: text, size: 4}, model: {plugin: m}}",
              "  - {name: c, input: {kind: image}, model: {plugin: m}}",
              "  - {name: d, input: dense, model: {plugin: m}}",
          })
          .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:7:22: modalities[0].input: missing required key "
            "'size' (required for kind 'dense')\n"
            "pipeline.yaml:8:41: modalities[1].input.size: not allowed for "
            "kind 'text'; only dense inputs have a size\n"
            "pipeline.yaml:9:29: modalities[2].input.kind: expected one of "
            "dense, text, bytes; got \"image\"\n"
            "pipeline.yaml:10:22: modalities[3].input: expected a mapping, got "
            "\"dense\"");
}

TEST(PipelineConfigErrorTest, PluginReferenceFieldsAreChecked) {
  const std::string yaml = Minimal(Lines({
                                             "modalities:",
                                             "  - name: a",
                                             "    input: {kind: text}",
                                             "    model:",
                                             "      plugin: ''",  // 10
                                             "      version: '>=1.0 <banana'",
                                             "      sha256: 9f2c",
                                             "      params: [1, 2]",
                                             "  - name: b",
                                             "    input: {kind: text}",  // 15
                                             "    model: linear",
                                             "  - name: c",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m, sha256: "
                                             "zz2c4a1b3d5e6f708192a3b4c5d6e7f80"
                                             "91a2b3c4d5e6f708192a3b4c5d6e7f8}",
                                         })
                                       .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:10:15: modalities[0].model.plugin: must not be "
            "empty\n"
            "pipeline.yaml:11:16: modalities[0].model.version: invalid version "
            "constraint \">=1.0 <banana\": \"banana\" is not a version: "
            "'banana' is not a number\n"
            "pipeline.yaml:12:15: modalities[0].model.sha256: expected 64 "
            "hexadecimal characters, got \"9f2c\" (4 characters)\n"
            "pipeline.yaml:13:15: modalities[0].model.params: expected a "
            "mapping, got a list\n"
            "pipeline.yaml:16:12: modalities[1].model: expected a mapping, "
            "got \"linear\"\n"
            "pipeline.yaml:19:32: modalities[2].model.sha256: expected 64 "
            "hexadecimal characters, got "
            "\"zz2c4a1b3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
            "\" (64 characters)");
}

TEST(PipelineConfigErrorTest, OnErrorAndTimeoutAreChecked) {
  const std::string yaml = Minimal(Lines({
                                             "modalities:",
                                             "  - name: a",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                             "    on_error: ignore",
                                             "    timeout_ms: 0",
                                             "  - name: b",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                             "    timeout_ms: 1s",
                                         })
                                       .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:10:15: modalities[0].on_error: expected one of "
            "missing, fail; got \"ignore\"\n"
            "pipeline.yaml:11:17: modalities[0].timeout_ms: expected a "
            "positive integer, got \"0\"\n"
            "pipeline.yaml:15:17: modalities[1].timeout_ms: expected a "
            "positive integer, got \"1s\"");
}

TEST(PipelineConfigTest, IsolationIsReadAndDefaultsToInProcess) {
  PipelineConfig c = Parse(Minimal(Lines({
                                             "modalities:",
                                             "  - name: a",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                             "    isolation: process",
                                             "  - name: b",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                             "    isolation: in_process",
                                             "  - name: c",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                         })
                                       .c_str()));
  ASSERT_EQ(c.modalities.size(), 3u);
  EXPECT_EQ(c.modalities[0].isolation, Isolation::kProcess);
  EXPECT_EQ(c.modalities[1].isolation, Isolation::kInProcess);
  EXPECT_EQ(c.modalities[2].isolation, Isolation::kInProcess);
  EXPECT_EQ(IsolationName(Isolation::kProcess), "process");
}

TEST(PipelineConfigErrorTest, IsolationIsChecked) {
  const std::string yaml = Minimal(Lines({
                                             "modalities:",
                                             "  - name: a",
                                             "    input: {kind: text}",
                                             "    model: {plugin: m}",
                                             "    isolation: sandbox",
                                         })
                                       .c_str());
  EXPECT_EQ(Errors(yaml),
            "pipeline.yaml:10:16: modalities[0].isolation: expected one of "
            "in_process, process; got \"sandbox\"");
}

TEST(PipelineConfigErrorTest, PolicyIsChecked) {
  const std::string two = Lines({
      "modalities:",
      "  - {name: a, input: {kind: text}, model: {plugin: m}}",
      "  - {name: b, input: {kind: text}, model: {plugin: m}}",
  });
  EXPECT_EQ(Errors(Minimal((two + "policy: {min_modalities: 3}\n").c_str())),
            "pipeline.yaml:9:26: policy.min_modalities: expected an integer "
            "from 1 to 2 (the number of modalities), got \"3\"");
  EXPECT_EQ(Errors(Minimal((two + "policy: {min_modalities: 0}\n").c_str())),
            "pipeline.yaml:9:26: policy.min_modalities: expected an integer "
            "from 1 to 2 (the number of modalities), got \"0\"");
  EXPECT_EQ(
      Errors(Minimal((two + "policy: {on_insufficient: skip}\n").c_str())),
      "pipeline.yaml:9:27: policy.on_insufficient: expected one of abstain, "
      "error; got \"skip\"");
  EXPECT_EQ(Errors(Minimal((two + "policy: strict\n").c_str())),
            "pipeline.yaml:9:9: policy: expected a mapping, got \"strict\"");
}

TEST(PipelineConfigErrorTest, SeveralErrorsAreAllReportedInFileOrder) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v0",
      "name: icu",
      "classes: [a]",
      "plugin_dirs: [plugins]",
      "modalities:",
      "  - name: vitals",
      "    input: {kind: dense, size: twelve}",
      "    model: {plugin: linear, version: '>>1'}",
      "    on_error: maybe",
      "combiner: {plugin: mean, sha256: abc}",
      "policy: {min_modalities: 5}",
  });
  const std::string errors = Errors(yaml);
  EXPECT_EQ(errors,
            "pipeline.yaml:1:13: apiVersion: unsupported apiVersion "
            "\"latefuse/v0\"; expected \"latefuse/v1\"\n"
            "pipeline.yaml:3:10: classes: expected at least 2 classes, got 1\n"
            "pipeline.yaml:7:32: modalities[0].input.size: expected a positive "
            "integer, got \"twelve\"\n"
            "pipeline.yaml:8:38: modalities[0].model.version: invalid version "
            "constraint \">>1\": unknown operator '>>'; expected one of = > "
            ">= < <= ^ ~\n"
            "pipeline.yaml:9:15: modalities[0].on_error: expected one of "
            "missing, fail; got \"maybe\"\n"
            "pipeline.yaml:10:34: combiner.sha256: expected 64 hexadecimal "
            "characters, got \"abc\" (3 characters)\n"
            "pipeline.yaml:11:26: policy.min_modalities: expected an integer "
            "from 1 to 1 (the number of modalities), got \"5\"");
}

TEST(PipelineConfigErrorTest, YamlSyntaxErrorGivesLineAndColumn) {
  const std::string yaml = Lines({
      "apiVersion: latefuse/v1",
      "name: icu",
      "classes: [a, b",
      "plugin_dirs: [plugins]",
  });
  absl::StatusOr<PipelineConfig> config = ParsePipeline(yaml, "p.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()),
              ::testing::MatchesRegex("p\\.yaml:[34]:[0-9]+: .+"));
  EXPECT_EQ(Errors("a: b: c\n"), "pipeline.yaml:1:5: illegal map value");
}

TEST(PipelineConfigErrorTest, EmptyFileOrNonMappingRootIsRejected) {
  EXPECT_EQ(Errors(""),
            "pipeline.yaml:1:1: the file is empty; expected a mapping "
            "starting with 'apiVersion: latefuse/v1'");
  EXPECT_EQ(Errors("# only a comment\n"),
            "pipeline.yaml:1:1: the file is empty; expected a mapping "
            "starting with 'apiVersion: latefuse/v1'");
  EXPECT_EQ(Errors("- a\n- b\n"),
            "pipeline.yaml:1:1: expected a mapping, got a list");
}

TEST(PipelineConfigErrorTest, SecondYamlDocumentIsRejected) {
  EXPECT_EQ(Errors(Minimal() + "---\nname: other\n"),
            "pipeline.yaml:11:1: expected a single YAML document; remove "
            "everything from the second '---' on");
}

// yaml-cpp 0.7's LoadAll never returns on these (found by
// fuzz/pipeline_fuzzer): a token no document can start with, after a document
// or alone.
TEST(PipelineConfigErrorTest, StrayFlowEntryIsASyntaxErrorNotAHang) {
  EXPECT_EQ(Errors(",p"),
            "pipeline.yaml:1:1: unexpected ','; no YAML value can start with "
            "it here");
  EXPECT_EQ(Errors("- a\n,\n"),
            "pipeline.yaml:2:1: unexpected ','; no YAML value can start with "
            "it here");
  EXPECT_EQ(Errors(",\xa1\x01\x17p"),  // the fuzzer's input
            "pipeline.yaml:1:1: unexpected ','; no YAML value can start with "
            "it here");
  // After a second document the stream is not read further.
  EXPECT_EQ(Errors(Minimal() + "---\n,\n"),
            "pipeline.yaml:11:1: expected a single YAML document; remove "
            "everything from the second '---' on");
}

// ---------------------------------------------------------------------------
// params -> JSON

TEST(ParamsJsonTest, PlainScalarsFollowTheCoreSchema) {
  absl::StatusOr<std::string> json = ParamsJson(Lines({
      "        a: null",
      "        b: ~",
      "        c:",
      "        d: [true, True, TRUE, false, False, FALSE]",
      "        e: [0, -7, +12, 0x1F, 0o17, 007]",
      "        f: [1.5, -0.25, 1., .5, 1e3, 2.5E-3, -0.0]",
      "        g: [yes, no, on, 1_000, 0b101, 1.2.3, hello world]",
      "        h: [Null, NULL]",
  }));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            R"({"a":null,"b":null,"c":null,)"
            R"("d":[true,true,true,false,false,false],)"
            R"("e":[0,-7,12,31,15,7],)"
            R"("f":[1.5,-0.25,1.0,0.5,1000.0,0.0025,-0.0],)"
            R"("g":["yes","no","on","1_000","0b101","1.2.3","hello world"],)"
            R"("h":[null,null]})");
}

TEST(ParamsJsonTest, QuotedScalarsAreAlwaysStrings) {
  absl::StatusOr<std::string> json = ParamsJson(
      "        {a: '12', b: \"true\", c: 'null', d: \"1.5\", e: '', f: !!str "
      "7}\n");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            R"({"a":"12","b":"true","c":"null","d":"1.5","e":"","f":"7"})");
}

TEST(ParamsJsonTest, NestingBecomesObjectsAndArrays) {
  absl::StatusOr<std::string> json = ParamsJson(Lines({
      "        layers:",
      "          - {units: 64, act: relu}",
      "          - units: 2",
      "            act: softmax",
      "        weights: {vitals: 1.0, notes: [0.5, {deep: [[]]}]}",
      "        empty_map: {}",
      "        1: numeric key",
  }));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"layers":[{"units":64,"act":"relu"},)"
                   R"({"units":2,"act":"softmax"}],)"
                   R"("weights":{"vitals":1.0,"notes":[0.5,{"deep":[[]]}]},)"
                   R"("empty_map":{},"1":"numeric key"})");
}

TEST(ParamsJsonTest, StringsAreEscapedForJson) {
  absl::StatusOr<std::string> json = ParamsJson(
      "        {q: \"say \\\"hi\\\"\", b: 'C:\\dir', nl: \"a\\nb\", "
      "tab: \"x\\ty\", ctl: \"\\x01\\x7f\", utf: \"caf\u00e9 \u2192 \u6f22\", "
      "\"key \\\"k\\\"\": 1}\n");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            "{\"q\":\"say \\\"hi\\\"\",\"b\":\"C:\\\\dir\",\"nl\":\"a\\nb\","
            "\"tab\":\"x\\ty\",\"ctl\":\"\\u0001\x7f\","
            "\"utf\":\"caf\u00e9 \u2192 \u6f22\",\"key \\\"k\\\"\":1}");
}

TEST(ParamsJsonTest, InvalidUtf8IsRejectedRatherThanPassedToJson) {
  absl::StatusOr<std::string> json =
      ParamsJson("        {a: \"x\xff\xfey\", b: caf\xc3}\n");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(Message(json.status()),
            "p.yaml:12:13: modalities[0].model.params.a: string is not valid "
            "UTF-8\n"
            "p.yaml:12:24: modalities[0].model.params.b: string is not valid "
            "UTF-8");
}

TEST(ParamsJsonTest, InfinityAndNanAreRejectedAtTheirLocation) {
  absl::StatusOr<std::string> json = ParamsJson(Lines({
      "        a: .inf",
      "        b: [1, -.Inf]",
      "        c: {d: .nan}",
      "        e: '.inf'",
  }));
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(Message(json.status()),
            "p.yaml:12:12: modalities[0].model.params.a: JSON cannot represent "
            "\".inf\"; use a finite number\n"
            "p.yaml:13:16: modalities[0].model.params.b[1]: JSON cannot "
            "represent \"-.Inf\"; use a finite number\n"
            "p.yaml:14:16: modalities[0].model.params.c.d: JSON cannot "
            "represent \".nan\"; use a finite number");
}

TEST(ParamsJsonTest, OutOfRangeNumbersAreRejected) {
  absl::StatusOr<std::string> json =
      ParamsJson("        {a: 99999999999999999999, b: 1e999}\n");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(Message(json.status()),
              HasSubstr("params.a: integer out of the 64-bit range"));
  EXPECT_THAT(Message(json.status()),
              HasSubstr("params.b: number out of the double range"));
}

TEST(ParamsJsonTest, DuplicateKeyInsideParamsIsRejected) {
  absl::StatusOr<std::string> json = ParamsJson(Lines({
      "        alpha: 1",
      "        alpha: 2",
  }));
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(Message(json.status()),
            "p.yaml:13:9: modalities[0].model.params.alpha: duplicate key "
            "'alpha' (first at line 12, column 9)");
}

TEST(ParamsJsonTest, UnknownTagIsRejected) {
  absl::StatusOr<std::string> json = ParamsJson("        {a: !secret xyz}\n");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(Message(json.status()),
              HasSubstr("params.a: unsupported tag '!secret'"));
}

TEST(ParamsJsonTest, RecursiveAliasIsRejectedNotFollowedForever) {
  absl::StatusOr<std::string> json = ParamsJson("        {a: &loop [*loop]}\n");
  ASSERT_FALSE(json.ok());
  EXPECT_THAT(Message(json.status()), HasSubstr("levels deep"));
  // Reported once, not once per level.
  EXPECT_EQ(Message(json.status()).find('\n'), std::string::npos);
}

TEST(ParamsJsonTest, AliasesAreExpanded) {
  absl::StatusOr<std::string> json =
      ParamsJson("        {base: &b {lr: 0.1}, copy: *b}\n");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"base":{"lr":0.1},"copy":{"lr":0.1}})");
}

// ---------------------------------------------------------------------------
// LoadPipelineFile

class LoadPipelineFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("latefuse_pipeline_config_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(LoadPipelineFileTest, ReadsTheFileAndResolvesAgainstItsDirectory) {
  const fs::path file = dir_ / "icu.yaml";
  std::ofstream(file) << Minimal();
  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(file);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->file, file.lexically_normal());
  EXPECT_EQ(config->base_dir, dir_.lexically_normal());
  EXPECT_THAT(config->plugin_dirs, ElementsAre(dir_ / "plugins"));
}

TEST_F(LoadPipelineFileTest, ErrorsNameTheFileAsGiven) {
  const fs::path file = dir_ / "bad.yaml";
  std::ofstream(file) << "apiVersion: latefuse/v1\nname: [x]\n";
  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(file);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Message(config.status()),
              HasSubstr(file.string() + ":2:7: name: expected a string, got a "
                                        "list"));
}

TEST_F(LoadPipelineFileTest, MissingFileIsNotFoundNamingThePath) {
  const fs::path file = dir_ / "nope.yaml";
  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(file);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(config.status()), HasSubstr("'" + file.string() + "'"));
}

TEST_F(LoadPipelineFileTest, DirectoryIsNotFound) {
  absl::StatusOr<PipelineConfig> config = LoadPipelineFile(dir_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(config.status()), HasSubstr("is a directory"));
}

}  // namespace
}  // namespace latefuse
