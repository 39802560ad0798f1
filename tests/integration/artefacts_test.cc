// Versioned artefacts (README, "Artefacts, manifests and lock files"):
// <dir>/<name>/<version>/ folders with a manifest.json, chosen by a pipeline's
// version constraint from the manifests alone, checked against the manifest's
// hash and ABI before loading; lock files that pin every plugin to one exact
// artefact; and `latefuse plugins list` / `lock` / `run --lock` as a user runs
// them. The artefacts are real builds of the test plugin test_model as
// versions 1.0.0, 1.2.0, 1.3.0 and 2.0.0 (tests/plugins/CMakeLists.txt).
#include <latefuse/plugin.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/lock.h"
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

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

// A build of test_model declaring `version`.
fs::path TestModelBuild(const std::string& version) {
  if (version == "1.0.0") return testing::TestPluginFile("test_model");
  return testing::TestPluginDir() / absl::StrCat("test_model-", version, ".so");
}

// Single-quoted for the shell.
std::string Quote(const fs::path& path) {
  return absl::StrCat("'", path.string(), "'");
}

class ArtefactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::canonical(dir_.path());
    plugins_ = root_ / "plugins";
    fs::create_directory(plugins_);
    fs::permissions(plugins_, fs::perms(0755));
    testing::InstallArtefact(plugins_, testing::PluginFile("mean"),
                             {"mean", "1.1.0", "combiner"});
  }

  // test_model `version` laid out as an artefact folder.
  fs::path Install(const std::string& version) {
    return testing::InstallArtefact(plugins_, TestModelBuild(version),
                                    {"test_model", version});
  }

  // A pipeline of one test_model modality per entry of `constraints` ("" =
  // no version key), fused by mean.
  std::string Yaml(const std::vector<std::string>& constraints) const {
    std::string yaml = absl::StrCat(
        "apiVersion: latefuse/v1\nname: artefacts\n"
        "classes: [neg, pos]\nplugin_dirs: ['",
        plugins_.string(), "']\nmodalities:\n");
    for (std::size_t k = 0; k < constraints.size(); ++k) {
      absl::StrAppend(&yaml, "  - name: m", k,
                      "\n    input: {kind: dense, size: 1}\n"
                      "    model: {plugin: test_model",
                      constraints[k].empty()
                          ? ""
                          : absl::StrCat(", version: '", constraints[k], "'"),
                      "}\n");
    }
    absl::StrAppend(&yaml, "combiner: {plugin: mean}\n");
    return yaml;
  }

  absl::StatusOr<std::unique_ptr<Pipeline>> Load(const std::string& yaml,
                                                 const fs::path& lock = {}) {
    return LoadPipeline(dir_.Write("pipeline.yaml", yaml), lock);
  }

  std::string Refusal(const std::string& yaml, const fs::path& lock = {}) {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(yaml, lock);
    EXPECT_FALSE(pipeline.ok()) << "loaded:\n" << yaml;
    return pipeline.ok() ? "" : Message(pipeline.status());
  }

  // The test_model version a one-modality pipeline with `constraint` loads.
  std::string Chosen(const std::string& constraint) {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline =
        Load(Yaml({constraint}));
    EXPECT_TRUE(pipeline.ok()) << constraint << ": " << pipeline.status();
    if (!pipeline.ok()) return "";
    return (*pipeline)->modalities()[0].plugin.plugin.version.ToString();
  }

  // Runs the latefuse program; returns its exit code.
  int Cli(const std::string& args, std::string* out, std::string* err) {
    return testing::RunCommand(
        absl::StrCat(Quote(testing::CliPath()), " ", args), out, err);
  }

  testing::TempDir dir_;
  fs::path root_;
  fs::path plugins_;
};

TEST_F(ArtefactsTest, VersionsSideBySideAreChosenByConstraint) {
  for (const char* version : {"1.0.0", "1.2.0", "1.3.0", "2.0.0"}) {
    Install(version);
  }
  EXPECT_EQ(Chosen(""), "2.0.0");
  EXPECT_EQ(Chosen("^1.2"), "1.3.0");
  EXPECT_EQ(Chosen("~1.2.0"), "1.2.0");
  EXPECT_EQ(Chosen(">=1.0 <2"), "1.3.0");
  EXPECT_EQ(Chosen("1.2.0"), "1.2.0");
  EXPECT_EQ(Chosen("<1.2"), "1.0.0");
  EXPECT_EQ(Chosen("^2"), "2.0.0");

  // Two modalities of one pipeline can use two versions side by side.
  absl::StatusOr<std::unique_ptr<Pipeline>> both = Load(Yaml({"~1.2.0", "^2"}));
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ((*both)->modalities()[0].plugin.plugin.path,
            plugins_ / "test_model/1.2.0/test_model.so");
  EXPECT_EQ((*both)->modalities()[1].plugin.plugin.path,
            plugins_ / "test_model/2.0.0/test_model.so");
  EXPECT_THAT((*both)->modalities()[0].plugin.reason,
              HasSubstr("highest version satisfying ~1.2.0 among 4 artefact "
                        "folder(s)"));
  ASSERT_TRUE((*both)->modalities()[0].plugin.plugin.manifest.has_value());
  EXPECT_EQ((*both)->modalities()[0].plugin.plugin.manifest->version,
            (*ParseVersion("1.2.0")));

  EXPECT_EQ(Refusal(Yaml({"^3"})),
            "plugin 'test_model': no version satisfies ^3 (found 2.0.0, "
            "1.3.0, 1.2.0, 1.0.0)");
}

TEST_F(ArtefactsTest, TamperedLibraryIsRefusedByItsManifestHash) {
  Install("1.2.0");
  const fs::path newest = Install("1.3.0");
  const absl::StatusOr<std::string> built = Sha256OfFile(newest.string());
  ASSERT_TRUE(built.ok());
  std::ofstream(newest, std::ios::app) << "tampered";
  const absl::StatusOr<std::string> tampered = Sha256OfFile(newest.string());
  ASSERT_TRUE(tampered.ok());
  // Refused, not quietly replaced by the older version.
  const std::string message = Refusal(Yaml({"^1"}));
  EXPECT_THAT(
      message,
      AllOf(StartsWith(
                absl::StrCat("plugin 'test_model' (", newest.string(), "): ")),
            HasSubstr(absl::StrCat("sha256 mismatch: its manifest says ",
                                   *built, ", the file has ", *tampered))));
}

TEST_F(ArtefactsTest, ManifestOfANewerAbiIsRefusedWithWhatToDo) {
  testing::InstallArtefact(plugins_, testing::TestPluginFile("abi_minor"),
                           {"abi_minor", "1.0.0", "model", LATEFUSE_ABI_MAJOR,
                            LATEFUSE_ABI_MINOR + 1});
  std::string yaml = Yaml({""});
  yaml.replace(yaml.find("plugin: test_model"), 18, "plugin: abi_minor");
  const std::string newer =
      absl::StrCat(LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR + 1);
  const std::string ours =
      absl::StrCat(LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR);
  EXPECT_THAT(
      Refusal(yaml),
      HasSubstr(absl::StrCat(
          "built for ABI ", newer, ", newer than this host's ", ours,
          "; upgrade latefuse to a release speaking ABI ", newer,
          " or later, or rebuild the plugin against an SDK of ABI <= ", ours)));
}

TEST_F(ArtefactsTest, NewerAbiVersionIsSkippedForAnOlderOneThisHostLoads) {
  Install("1.2.0");
  testing::InstallArtefact(plugins_, TestModelBuild("1.3.0"),
                           {"test_model", "1.3.0", "model", LATEFUSE_ABI_MAJOR,
                            LATEFUSE_ABI_MINOR + 1});
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml({"^1"}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  const ResolvedPlugin& chosen = (*pipeline)->modalities()[0].plugin;
  EXPECT_EQ(chosen.plugin.version.ToString(), "1.2.0");
  EXPECT_THAT(chosen.reason, HasSubstr("1.3.0 skipped: built for ABI"));
  EXPECT_THAT((*pipeline)->Plan(), HasSubstr("1.3.0 skipped"));
}

TEST_F(ArtefactsTest, FolderWithoutManifestIsNotAnArtefact) {
  Install("1.2.0");
  const fs::path loose = plugins_ / "test_model/1.3.0";
  fs::create_directories(loose);
  fs::permissions(loose, fs::perms(0755));
  fs::copy_file(TestModelBuild("1.3.0"), loose / "test_model.so");
  fs::permissions(loose / "test_model.so", fs::perms(0755));
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml({""}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  EXPECT_EQ((*pipeline)->modalities()[0].plugin.plugin.version.ToString(),
            "1.2.0");
  EXPECT_THAT((*pipeline)->modalities()[0].plugin.reason,
              HasSubstr("1.3.0 ignored: no manifest.json in"));

  fs::remove_all(plugins_ / "test_model/1.2.0");
  EXPECT_THAT(Refusal(Yaml({""})),
              AllOf(StartsWith("plugin 'test_model': not found in plugin_dirs"),
                    HasSubstr("1.3.0 ignored: no manifest.json in '"),
                    HasSubstr("not an artefact built with "
                              "latefuse_add_plugin()")));
}

TEST_F(ArtefactsTest, ManifestDisagreeingWithItsRoleOrLibraryIsRefused) {
  // Kind: known from the manifest before any code runs.
  const fs::path combiner = testing::InstallArtefact(
      plugins_, TestModelBuild("1.2.0"), {"test_model", "1.2.0", "combiner"});
  EXPECT_THAT(Refusal(Yaml({""})),
              AllOf(StartsWith(absl::StrCat("plugin 'test_model' (",
                                            combiner.string(), "): ")),
                    HasSubstr("is a combiner plugin, but the pipeline uses it "
                              "as the model of modality 'm0'")));
  // ABI: the manifest says one, the library's descriptor another.
  testing::InstallArtefact(
      plugins_, TestModelBuild("1.2.0"),
      {"test_model", "1.2.0", "model", LATEFUSE_ABI_MAJOR, 0});
  EXPECT_THAT(
      Refusal(Yaml({""})),
      HasSubstr(absl::StrCat("its manifest says model ABI ", LATEFUSE_ABI_MAJOR,
                             ".0 but the library is a model of ABI ",
                             LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR)));
  // Folder: a manifest moved into another version's folder.
  fs::remove_all(plugins_ / "test_model");
  Install("1.3.0");
  fs::rename(plugins_ / "test_model/1.3.0", plugins_ / "test_model/1.4.0");
  EXPECT_THAT(Refusal(Yaml({""})),
              HasSubstr("its manifest describes test_model 1.3.0 but lies in "
                        "the folder of test_model 1.4.0"));
}

TEST_F(ArtefactsTest, LockFileReproducesExactlyTheSameArtefacts) {
  const fs::path locked_library = Install("1.2.0");
  const fs::path lock = root_ / "pipeline.lock";
  {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml({"^1"}));
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    ASSERT_TRUE(WriteLockFile(**pipeline, lock).ok());
  }
  const nlohmann::json written = testing::ReadJson(lock);
  EXPECT_EQ(written["format"], "latefuse.lock/v1");
  ASSERT_EQ(written["plugins"].size(), 2);
  EXPECT_EQ(written["plugins"][0]["role"], "modalities.m0.model");
  EXPECT_EQ(written["plugins"][0]["plugin"], "test_model");
  EXPECT_EQ(written["plugins"][0]["version"], "1.2.0");
  EXPECT_EQ(written["plugins"][0]["sha256"],
            *Sha256OfFile(locked_library.string()));
  EXPECT_EQ(written["plugins"][0]["library"],
            "plugins/test_model/1.2.0/test_model.so");
  EXPECT_EQ(written["plugins"][1]["role"], "combiner");

  // A newer version arrives: the pipeline alone would take it, the lock not.
  Install("1.3.0");
  EXPECT_EQ(Chosen("^1"), "1.3.0");
  absl::StatusOr<std::unique_ptr<Pipeline>> locked = Load(Yaml({"^1"}), lock);
  ASSERT_TRUE(locked.ok()) << locked.status();
  for (std::size_t i = 0; i < (*locked)->plugins().size(); ++i) {
    const auto& [role, resolved] = (*locked)->plugins()[i];
    EXPECT_EQ(role, written["plugins"][i]["role"]);
    EXPECT_EQ(resolved->plugin.sha256, written["plugins"][i]["sha256"]);
    EXPECT_EQ(resolved->plugin.version.ToString(),
              written["plugins"][i]["version"]);
    EXPECT_THAT(resolved->reason, StartsWith("locked by '"));
  }
  EXPECT_THAT((*locked)->Plan(), HasSubstr("(locked, matches)"));

  // Locking again gives the same file.
  const std::string before = testing::ReadFile(lock);
  ASSERT_TRUE(WriteLockFile(**locked, lock).ok());
  EXPECT_EQ(testing::ReadFile(lock), before);
}

TEST_F(ArtefactsTest, LibraryOtherThanTheLockedOneIsRefused) {
  const fs::path library = Install("1.2.0");
  const fs::path lock = root_ / "pipeline.lock";
  {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml({""}));
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    ASSERT_TRUE(WriteLockFile(**pipeline, lock).ok());
  }
  const std::string locked_sha = *Sha256OfFile(library.string());
  // Rebuilt as the same version, with a manifest that matches: only the lock
  // knows it is not the artefact that was locked.
  const fs::path rebuilt = root_ / "rebuilt.so";
  fs::copy_file(library, rebuilt);
  std::ofstream(rebuilt, std::ios::app) << "rebuilt";
  testing::InstallArtefact(plugins_, rebuilt, {"test_model", "1.2.0"});
  const std::string rebuilt_sha = *Sha256OfFile(library.string());
  ASSERT_TRUE(Load(Yaml({""})).ok());
  EXPECT_THAT(Refusal(Yaml({""}), lock),
              HasSubstr(absl::StrCat("sha256 mismatch: the lock file '",
                                     lock.string(), "' pins ", locked_sha,
                                     ", the file has ", rebuilt_sha)));

  // The locked version gone altogether.
  fs::remove_all(plugins_ / "test_model/1.2.0");
  Install("1.3.0");
  EXPECT_THAT(
      Refusal(Yaml({""}), lock),
      AllOf(HasSubstr("no version satisfies"), HasSubstr("the lock file '"),
            HasSubstr("asks for exactly this artefact (=1.2.0")));
}

TEST_F(ArtefactsTest, LockFileThatNoLongerFitsThePipelineIsRefused) {
  Install("1.2.0");
  Install("2.0.0");
  const fs::path lock = root_ / "pipeline.lock";
  {
    absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Load(Yaml({"^1"}));
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    ASSERT_TRUE(WriteLockFile(**pipeline, lock).ok());
  }
  const std::string again = "run `latefuse lock ";
  EXPECT_THAT(Refusal(Yaml({"^2"}), lock),
              AllOf(HasSubstr("modalities.m0.model: the lock file's version "
                              "1.2.0 does not satisfy the pipeline's "
                              "constraint '^2'"),
                    HasSubstr(again)));
  EXPECT_THAT(Refusal(Yaml({"^1", "^1"}), lock),
              AllOf(HasSubstr("locks no modalities.m1.model (plugin "
                              "'test_model')"),
                    HasSubstr(again)));

  // And a lock file that is not one.
  std::ofstream(lock) << R"({"format": "latefuse.lock/v1", "plugins": [)"
                      << R"({"role": "combiner", "plugin": "mean"}]})";
  EXPECT_EQ(Refusal(Yaml({"^1"}), lock),
            absl::StrCat(lock.string(),
                         ": plugins[0].version: expected a non-empty string"));
}

TEST_F(ArtefactsTest, PluginsListSaysWhatThisHostCanLoadAndWhyNot) {
  Install("1.2.0");
  const fs::path tampered = Install("1.3.0");
  std::ofstream(tampered, std::ios::app) << "tampered";
  testing::InstallArtefact(plugins_, testing::TestPluginFile("abi_minor"),
                           {"abi_minor", "1.0.0", "model", LATEFUSE_ABI_MAJOR,
                            LATEFUSE_ABI_MINOR + 1});
  fs::copy_file(testing::TestPluginFile("no_entry"), plugins_ / "no_entry.so");

  std::string out, err;
  ASSERT_EQ(
      Cli(absl::StrCat("plugins list --dir ", Quote(plugins_)), &out, &err), 0)
      << err;
  const std::string abi =
      absl::StrCat(LATEFUSE_ABI_MAJOR, ".", LATEFUSE_ABI_MINOR);
  EXPECT_THAT(out, HasSubstr("NAME               VERSION    KIND      ABI  "
                             "LOADABLE"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("  mean               1.1.0      "
                                          "combiner  ",
                                          abi, "  yes\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("  test_model         1.2.0      "
                                          "model     ",
                                          abi, "  yes\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("  test_model         1.3.0      "
                                          "model     ",
                                          abi, "  no: plugin 'test_model' (")));
  EXPECT_THAT(out, HasSubstr("sha256 mismatch: its manifest says"));
  EXPECT_THAT(out, HasSubstr("  abi_minor          1.0.0      model"));
  EXPECT_THAT(out, HasSubstr("no: plugin 'abi_minor'"));
  EXPECT_THAT(out, HasSubstr("; upgrade latefuse to a release speaking ABI"));
  EXPECT_THAT(out, HasSubstr("  no_entry           (bare)     ?         ?    "
                             "yes, if its code agrees"));

  ASSERT_EQ(Cli(absl::StrCat("plugins list --json --dir ", Quote(plugins_)),
                &out, &err),
            0)
      << err;
  const nlohmann::json rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), 5);
  int loadable = 0;
  for (const nlohmann::json& row : rows) loadable += row["loadable"] ? 1 : 0;
  EXPECT_EQ(loadable, 3);  // mean, test_model 1.2.0, the bare no_entry

  // Nowhere to look.
  EXPECT_NE(Cli("plugins list", &out, &err), 0);
  EXPECT_THAT(err, HasSubstr("give --dir DIR, --pipeline FILE"));
}

TEST_F(ArtefactsTest, LockThenRunWithTheLockFromTheCommandLine) {
  Install("1.2.0");
  const fs::path pipeline = dir_.Write("pipeline.yaml", Yaml({"^1"}));
  const fs::path input = dir_.Write(
      "in.jsonl", "{\"id\": \"a\", \"modalities\": {\"m0\": [0.5]}}\n");
  std::string out, err;
  ASSERT_EQ(Cli(absl::StrCat("lock ", Quote(pipeline)), &out, &err), 0) << err;
  const fs::path lock = root_ / "pipeline.lock";
  EXPECT_THAT(err,
              HasSubstr(absl::StrCat("locked 2 plugins in ", lock.string())));
  EXPECT_THAT(out, HasSubstr("modalities.m0.model          test_model 1.2.0"));

  Install("1.3.0");
  ASSERT_EQ(
      Cli(absl::StrCat("validate ", Quote(pipeline), " --lock ", Quote(lock)),
          &out, &err),
      0)
      << err;
  EXPECT_THAT(
      out, AllOf(HasSubstr("test_model 1.2.0"), HasSubstr("(locked, matches)"),
                 Not(HasSubstr("test_model 1.3.0"))));
  ASSERT_EQ(Cli(absl::StrCat("run ", Quote(pipeline), " -q --lock ",
                             Quote(lock), " --input ", Quote(input)),
                &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr("\"id\": \"a\", \"status\": \"ok\""));

  // A lock that no longer fits: the run does not start.
  dir_.Write("pipeline.yaml", Yaml({"^1", "^1"}));
  EXPECT_NE(Cli(absl::StrCat("run ", Quote(pipeline), " --lock ", Quote(lock),
                             " --input ", Quote(input)),
                &out, &err),
            0);
  EXPECT_THAT(err, HasSubstr("locks no modalities.m1.model"));
}

}  // namespace
}  // namespace latefuse
