// Every load check of DESIGN.md ("Loading a plugin: every check, in order"),
// each shown refusing a real, deliberately broken plugin library named by a
// real pipeline file, with its own message. Plugins are copied into a fresh
// plugin folder per test, with their permissions set explicitly so that the
// umask does not matter.
#include <latefuse/plugin.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/pipeline.h"
#include "core/pipeline_config.h"
#include "core/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A model of width 12 with classes [stable, deteriorating].
fs::path VitalsModel() {
  return testing::SourceDir() / "configs/demo/models/vitals.json";
}
// A model of width 8 with the same classes.
fs::path LabsModel() {
  return testing::SourceDir() / "configs/demo/models/labs.json";
}

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// One `modalities:` entry of a pipeline file.
struct ModalityYaml {
  std::string name = "vitals";
  std::string input = "{kind: dense, size: 12}";
  std::string model;  // the `model:` value, a YAML flow mapping
};

// The `model:` value of a `linear` model reading `model_file`, with extra keys
// (e.g. "version: '^2'") before its params.
std::string Linear(const fs::path& model_file, const std::string& extra = "") {
  return absl::StrCat("{plugin: linear, ", extra, extra.empty() ? "" : ", ",
                      "params: {model: '", model_file.string(), "'}}");
}

class LoadChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Canonical, so that paths in messages (which name the canonical file once
    // it is loaded) are the ones computed here.
    root_ = fs::canonical(dir_.path());
    plugins_ = root_ / "plugins";
    MakeDir(plugins_);
  }

  // Creates `dir` (and its parents under root_) with mode 0755.
  void MakeDir(const fs::path& dir) {
    fs::create_directories(dir);
    for (fs::path d = dir; d != root_ && d.has_relative_path();
         d = d.parent_path()) {
      fs::permissions(d, fs::perms(0755));
    }
  }

  // Copies `from` to plugins_/relative with `mode`; returns the new path.
  fs::path Install(const fs::path& from, const fs::path& relative,
                   int mode = 0755) {
    const fs::path to = plugins_ / relative;
    MakeDir(to.parent_path());
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms(mode));
    return to;
  }
  fs::path InstallBuilt(const std::string& name, int mode = 0755) {
    return Install(testing::PluginFile(name), name + ".so", mode);
  }
  fs::path InstallTestPlugin(const std::string& name) {
    return Install(testing::TestPluginFile(name), name + ".so");
  }

  // A pipeline file with `modalities`, the `combiner:` value and `classes`,
  // looking for plugins in `dirs` (default: plugins_ alone).
  std::string Yaml(const std::vector<ModalityYaml>& modalities,
                   const std::string& combiner = "{plugin: mean}",
                   const std::string& classes = "[stable, deteriorating]",
                   std::vector<fs::path> dirs = {}) const {
    if (dirs.empty()) dirs.push_back(plugins_);
    std::string yaml = absl::StrCat(
        "apiVersion: latefuse/v1\n"
        "name: load-checks\n"
        "task: classification\n"
        "classes: ",
        classes, "\nplugin_dirs:\n");
    for (const fs::path& dir : dirs) {
      absl::StrAppend(&yaml, "  - '", dir.string(), "'\n");
    }
    absl::StrAppend(&yaml, "modalities:\n");
    for (const ModalityYaml& m : modalities) {
      absl::StrAppend(&yaml, "  - name: ", m.name, "\n    input: ", m.input,
                      "\n    model: ", m.model, "\n");
    }
    absl::StrAppend(&yaml, "combiner: ", combiner, "\n");
    return yaml;
  }

  absl::StatusOr<std::unique_ptr<Pipeline>> Load(const std::string& yaml) {
    return testing::LoadPipelineText(dir_, yaml);
  }

  // The message of a pipeline that must not load.
  std::string Refusal(const std::string& yaml) {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(yaml);
    EXPECT_FALSE(pipeline.ok()) << "loaded:\n" << yaml;
    if (pipeline.ok()) return "";
    return Message(pipeline.status());
  }

  static std::string Prefix(const std::string& name, const fs::path& path) {
    return absl::StrCat("plugin '", name, "' (", path.string(), "): ");
  }

  testing::TempDir dir_;
  fs::path root_;
  fs::path plugins_;
};

// Check 1.

TEST_F(LoadChecksTest, PluginOutsidePluginDirsIsRefused) {
  InstallBuilt("mean");
  const fs::path link = plugins_ / "linear.so";
  const fs::path target = fs::canonical(testing::PluginFile("linear"));
  fs::create_symlink(target, link);
  const std::string yaml = Yaml({{.model = Linear(VitalsModel())}});

  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(yaml);
  ASSERT_FALSE(pipeline.ok());
  EXPECT_EQ(pipeline.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(pipeline.status()),
              AllOf(StartsWith(Prefix("linear", link)),
                    HasSubstr(absl::StrCat("resolves to '", target.string(),
                                           "', which lies outside the "
                                           "pipeline's plugin_dirs"))));

  // The same link is fine once the folder it points into is allowed too.
  const std::string allowed =
      Yaml({{.model = Linear(VitalsModel())}}, "{plugin: mean}",
           "[stable, deteriorating]", {plugins_, testing::PluginDir()});
  absl::StatusOr<std::unique_ptr<Pipeline>> loaded = Load(allowed);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->modalities()[0].plugin.plugin.path, target);
}

// Check 2.

TEST_F(LoadChecksTest, PluginWritableByOthersIsRefused) {
  InstallBuilt("mean");
  for (const int mode : {0666, 0775, 0757}) {
    SCOPED_TRACE(absl::StrCat("mode 0", mode / 64, (mode / 8) % 8, mode % 8));
    const fs::path linear = InstallBuilt("linear", mode);
    const std::string message =
        Refusal(Yaml({{.model = Linear(VitalsModel())}}));
    EXPECT_THAT(
        message,
        AllOf(StartsWith(Prefix("linear", linear)),
              HasSubstr(absl::StrCat("writable by group or others (mode 0",
                                     mode / 64, (mode / 8) % 8, mode % 8,
                                     "); refusing to load it (chmod go-w)"))));
  }
}

TEST_F(LoadChecksTest, PluginInDirectoryWritableByOthersIsRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  fs::permissions(plugins_, fs::perms(0777));
  const std::string message = Refusal(Yaml({{.model = Linear(VitalsModel())}}));
  EXPECT_THAT(
      message,
      AllOf(StartsWith(Prefix("linear", linear)),
            HasSubstr(absl::StrCat("its directory '", plugins_.string(),
                                   "' is writable by group or others (mode "
                                   "0777); refusing to load from it"))));

  fs::permissions(plugins_, fs::perms(0755));
  absl::StatusOr<std::unique_ptr<Pipeline>> loaded =
      Load(Yaml({{.model = Linear(VitalsModel())}}));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
}

// Check 3.

TEST_F(LoadChecksTest, Sha256MismatchIsRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  absl::StatusOr<std::string> actual = Sha256OfFile(linear.string());
  ASSERT_TRUE(actual.ok()) << actual.status();
  const std::string wrong(64, 'a');
  ASSERT_NE(*actual, wrong);

  const std::string message = Refusal(Yaml(
      {{.model = Linear(VitalsModel(), absl::StrCat("sha256: ", wrong))}}));
  EXPECT_THAT(
      message,
      AllOf(StartsWith(Prefix("linear", linear)),
            HasSubstr(absl::StrCat("sha256 mismatch: the pipeline pins ", wrong,
                                   ", the file has ", *actual))));
}

TEST_F(LoadChecksTest, MatchingSha256PinLoads) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  absl::StatusOr<std::string> actual = Sha256OfFile(linear.string());
  ASSERT_TRUE(actual.ok()) << actual.status();
  ASSERT_EQ(actual->size(), 64u);

  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml(
      {{.model = Linear(VitalsModel(), absl::StrCat("sha256: ", *actual))}}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  EXPECT_EQ((*pipeline)->modalities()[0].plugin.plugin.sha256, *actual);
  EXPECT_THAT((*pipeline)->Plan(),
              HasSubstr(absl::StrCat(*actual, " (pinned, matches)")));
}

// Check 5.

TEST_F(LoadChecksTest, PluginWithoutEntrySymbolIsRefused) {
  const fs::path broken = InstallTestPlugin("no_entry");
  const std::string message = Refusal(Yaml({{.model = "{plugin: no_entry}"}}));
  EXPECT_THAT(
      message,
      AllOf(StartsWith(Prefix("no_entry", broken)),
            HasSubstr(absl::StrCat("no entry symbol '", LATEFUSE_ENTRY_SYMBOL,
                                   "': not a latefuse plugin"))));
}

TEST_F(LoadChecksTest, PluginExportingOnlyTheV2EntryIsRefusedAsNewerAbi) {
  const fs::path broken = InstallTestPlugin("abi_v2_only");
  const std::string message =
      Refusal(Yaml({{.model = "{plugin: abi_v2_only}"}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("abi_v2_only", broken)),
                    HasSubstr(absl::StrCat("exports 'latefuse_plugin_v2' but "
                                           "not '",
                                           LATEFUSE_ENTRY_SYMBOL, "'")),
                    HasSubstr("built for a newer ABI")));
}

// Check 6.

TEST_F(LoadChecksTest, NewerAbiMajorIsRefused) {
  const fs::path broken = InstallTestPlugin("abi_major");
  const std::string message = Refusal(Yaml({{.model = "{plugin: abi_major}"}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("abi_major", broken)),
                    HasSubstr(absl::StrCat(
                        "built for ABI 2.0, but this host speaks ABI ",
                        LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR))));
}

TEST_F(LoadChecksTest, NewerAbiMinorIsRefused) {
  const fs::path broken = InstallTestPlugin("abi_minor");
  const std::string message = Refusal(Yaml({{.model = "{plugin: abi_minor}"}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("abi_minor", broken)),
                    HasSubstr(absl::StrCat(
                        "built for ABI ", LATEFUSE_ABI_MAJOR, ".",
                        LATEFUSE_ABI_MINOR + 1, ", newer than this host's ",
                        LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR,
                        "; upgrade latefuse"))));
}

// Check 7.

TEST_F(LoadChecksTest, CombinerNamedAsAModalitysModelIsRefused) {
  const fs::path mean = InstallBuilt("mean");
  const std::string message = Refusal(Yaml({{.model = "{plugin: mean}"}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("mean", mean)),
                    HasSubstr("is a combiner plugin, but the pipeline uses it "
                              "as the model of modality 'vitals', which needs "
                              "a model")));
}

TEST_F(LoadChecksTest, ModelNamedAsTheCombinerIsRefused) {
  const fs::path linear = InstallBuilt("linear");
  const std::string message =
      Refusal(Yaml({{.model = Linear(VitalsModel())}},
                   absl::StrCat("{plugin: linear, params: {model: '",
                                VitalsModel().string(), "'}}")));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr("is a model plugin, but the pipeline uses it as "
                              "the combiner, which needs a combiner")));
}

TEST_F(LoadChecksTest, VersionOutsideTheConstraintIsRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  for (const std::string constraint : {"^2", "<1"}) {
    SCOPED_TRACE(constraint);
    const std::string message = Refusal(
        Yaml({{.model = Linear(VitalsModel(),
                               absl::StrCat("version: '", constraint, "'"))}}));
    EXPECT_THAT(message,
                AllOf(StartsWith(Prefix("linear", linear)),
                      HasSubstr(absl::StrCat(
                          "version 1.1.0 does not satisfy the pipeline's "
                          "constraint '",
                          constraint, "'"))));
  }
  absl::StatusOr<std::unique_ptr<Pipeline>> loaded =
      Load(Yaml({{.model = Linear(VitalsModel(), "version: '^1.0'")}}));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
}

TEST_F(LoadChecksTest, HighestArtefactFolderSatisfyingTheConstraintIsChosen) {
  InstallBuilt("mean");
  const fs::path built = testing::PluginFile("linear");
  // Only the 1.1.0 folder holds what its name says; the others are never
  // loaded, since their folder versions rule them out. A satisfying folder
  // wins over a bare file, whose version is unknown until it is loaded.
  for (const char* version : {"0.9.0", "1.1.0", "2.0.0"}) {
    testing::InstallArtefact(plugins_, built, {"linear", version});
  }
  Install(built, "linear.so");
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Load(Yaml({{.model = Linear(VitalsModel(), "version: '^1.0'")}}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const ResolvedPlugin& chosen = (*pipeline)->modalities()[0].plugin;
  const fs::path expected = plugins_ / "linear/1.1.0/linear.so";
  EXPECT_EQ(chosen.plugin.path, expected);
  EXPECT_EQ(chosen.plugin.version.ToString(), "1.1.0");
  EXPECT_THAT(chosen.reason,
              AllOf(HasSubstr("highest version satisfying ^1.0"),
                    HasSubstr("among 3 artefact folder(s) in plugin_dirs[0]")));
  const std::string plan = (*pipeline)->Plan();
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("file:    ", expected.string())));
  EXPECT_THAT(plan, HasSubstr(absl::StrCat("chosen:  ", chosen.reason)));
}

TEST_F(LoadChecksTest, ArtefactFolderInALaterPluginDirIsFound) {
  InstallBuilt("mean");
  const fs::path other = root_ / "more-plugins";
  MakeDir(other);
  const fs::path expected = testing::InstallArtefact(
      other, testing::PluginFile("linear"), {"linear", "1.1.0"});
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Load(Yaml({{.model = Linear(VitalsModel())}}, "{plugin: mean}",
                "[stable, deteriorating]", {plugins_, other}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const ResolvedPlugin& chosen = (*pipeline)->modalities()[0].plugin;
  EXPECT_EQ(chosen.plugin.path, expected);
  EXPECT_EQ(chosen.reason,
            "highest version satisfying any version among 1 artefact "
            "folder(s) in plugin_dirs[1]");
}

TEST_F(LoadChecksTest, LibraryDeclaringAnotherVersionThanItsFolderIsRefused) {
  InstallBuilt("mean");
  const fs::path built = testing::PluginFile("linear");
  const fs::path liar =
      testing::InstallArtefact(plugins_, built, {"linear", "0.9.0"});
  testing::InstallArtefact(plugins_, built, {"linear", "1.1.0"});
  const std::string message =
      Refusal(Yaml({{.model = Linear(VitalsModel(), "version: '<1'")}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", liar)),
                    HasSubstr("declares version 1.1.0 but lies in the folder "
                              "of 0.9.0")));
}

// Check 8.

TEST_F(LoadChecksTest, FailingCreateIsRefused) {
  InstallBuilt("mean");
  const fs::path test_model = InstallTestPlugin("test_model");
  const std::string message = Refusal(
      Yaml({{.input = "{kind: dense, size: 1}",
             .model = "{plugin: test_model, params: {fail_create: true}}"}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("test_model", test_model)),
                    HasSubstr("create failed: asked to fail (fail_create: "
                              "true)")));
}

TEST_F(LoadChecksTest, ModelFileThatDoesNotExistFailsCreate) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const fs::path missing = root_ / "models/nowhere.json";
  const std::string message = Refusal(Yaml({{.model = Linear(missing)}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr(absl::StrCat("create failed: cannot open model "
                                           "file '",
                                           missing.string(), "'"))));
}

TEST_F(LoadChecksTest, BadModelFileFailsCreate) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const fs::path bad = dir_.Write(
      "models/bad.json",
      R"({"format": "latefuse.linear/v2", "classes": ["stable", "deteriorating"],
          "coef": [[1.0]], "intercept": [0.0]})");
  const std::string message = Refusal(
      Yaml({{.input = "{kind: dense, size: 1}", .model = Linear(bad)}}));
  EXPECT_THAT(
      message,
      AllOf(StartsWith(Prefix("linear", linear)),
            HasSubstr(absl::StrCat("create failed: model file '", bad.string(),
                                   "': format: expected "
                                   "\"latefuse.linear/v1\", got "
                                   "\"latefuse.linear/v2\""))));
}

TEST_F(LoadChecksTest, DescribedWidthDisagreeingWithThePipelineIsRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const std::string message = Refusal(Yaml(
      {{.input = "{kind: dense, size: 8}", .model = Linear(VitalsModel())}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr("describes its input as dense of width 12, but "
                              "the pipeline's modality 'vitals' gives it dense "
                              "of width 8")));
}

TEST_F(LoadChecksTest, DescribedInputKindDisagreeingWithThePipelineIsRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const std::string message = Refusal(
      Yaml({{.input = "{kind: text}", .model = Linear(VitalsModel())}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr("describes its input as dense of width 12, but "
                              "the pipeline's modality 'vitals' gives it "
                              "text")));
}

TEST_F(LoadChecksTest, DescribedClassesInAnotherOrderAreRefused) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const std::string message =
      Refusal(Yaml({{.model = Linear(VitalsModel())}}, "{plugin: mean}",
                   "[deteriorating, stable]"));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr("describes classes [stable, deteriorating], but "
                              "the pipeline's classes are [deteriorating, "
                              "stable] (the same labels in the same order are "
                              "needed)")));
}

// Finding the plugin at all.

TEST_F(LoadChecksTest, PluginNotFoundNamesEveryPluginDir) {
  const fs::path other = root_ / "more-plugins";
  MakeDir(other);
  const std::string message =
      Refusal(Yaml({{.model = "{plugin: nowhere}"}}, "{plugin: mean}",
                   "[stable, deteriorating]", {plugins_, other}));
  EXPECT_THAT(message,
              AllOf(StartsWith("plugin 'nowhere': not found in plugin_dirs ("),
                    HasSubstr(absl::StrCat("'", plugins_.string(), "', '",
                                           other.string(), "'")),
                    HasSubstr("nowhere/<version>/manifest.json")));
}

// All or nothing, and in order.

TEST_F(LoadChecksTest, PipelineWhoseSecondModalityFailsDoesNotLoad) {
  InstallBuilt("mean");
  const fs::path linear = InstallBuilt("linear");
  const ModalityYaml vitals{.model = Linear(VitalsModel())};
  // labs.json takes 8 features.
  const ModalityYaml labs_wrong{.name = "labs",
                                .input = "{kind: dense, size: 12}",
                                .model = Linear(LabsModel())};
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
      Load(Yaml({vitals, labs_wrong}));
  ASSERT_FALSE(pipeline.ok()) << "a pipeline was returned half-loaded";
  EXPECT_THAT(Message(pipeline.status()),
              AllOf(StartsWith(Prefix("linear", linear)),
                    HasSubstr("modality 'labs' gives it dense of width 12")));

  // The first modality alone was fine, and so is the pair once corrected: the
  // failed attempt left nothing behind that gets in the way.
  const ModalityYaml labs{.name = "labs",
                          .input = "{kind: dense, size: 8}",
                          .model = Linear(LabsModel())};
  absl::StatusOr<std::unique_ptr<Pipeline>> loaded = Load(Yaml({vitals, labs}));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->modalities().size(), 2u);
}

TEST_F(LoadChecksTest, FirstFailingCheckGivesTheMessage) {
  // Group-writable (check 2), wrongly pinned (check 3) and without an entry
  // symbol (check 5): check 2 speaks.
  const fs::path broken =
      Install(testing::TestPluginFile("no_entry"), "no_entry.so", 0664);
  const std::string pin = absl::StrCat("sha256: ", std::string(64, '0'));
  const std::string message =
      Refusal(Yaml({{.model = absl::StrCat("{plugin: no_entry, ", pin, "}")}}));
  EXPECT_THAT(message,
              AllOf(StartsWith(Prefix("no_entry", broken)),
                    HasSubstr("writable by group or others"),
                    Not(HasSubstr("sha256")), Not(HasSubstr("entry symbol"))));

  // Fixed permissions: now the pin speaks, still before the entry symbol.
  fs::permissions(broken, fs::perms(0755));
  EXPECT_THAT(
      Refusal(Yaml({{.model = absl::StrCat("{plugin: no_entry, ", pin, "}")}})),
      AllOf(HasSubstr("sha256 mismatch"), Not(HasSubstr("entry symbol"))));
}

}  // namespace
}  // namespace latefuse
