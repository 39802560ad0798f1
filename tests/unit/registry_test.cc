// Reading manifest.json (core/registry.h): every field checked, each error
// naming the file and the field.
#include "core/registry.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;

json Valid() {
  return {{"format", "latefuse.manifest/v1"},
          {"name", "vitals_net"},
          {"version", "1.4.0-rc.1"},
          {"kind", "model"},
          {"abi", {{"major", 1}, {"minor", 2}}},
          {"library", "vitals_net.so"},
          {"sha256", std::string(64, 'a')},
          {"description", "a model"},
          {"license", "MIT"},
          {"build", "gcc 12"},
          {"input", {{"kind", "dense"}, {"size", 12}}},
          {"classes", {"stable", "deteriorating"}}};
}

class ManifestTest : public ::testing::Test {
 protected:
  absl::StatusOr<Manifest> Read(const json& manifest) {
    return ReadManifest(dir_.Write("manifest.json", manifest.dump()));
  }
  // The error for `manifest`, without the file name before it.
  std::string Error(const json& manifest) {
    absl::StatusOr<Manifest> read = Read(manifest);
    EXPECT_FALSE(read.ok()) << manifest.dump();
    if (read.ok()) return "";
    const std::string prefix = (dir_.path() / "manifest.json").string() + ": ";
    const std::string message(read.status().message());
    EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
    return message.substr(prefix.size());
  }
  json With(const std::string& key, json value) {
    json m = Valid();
    m[key] = std::move(value);
    return m;
  }

  testing::TempDir dir_;
};

TEST_F(ManifestTest, ReadsEveryField) {
  absl::StatusOr<Manifest> m = Read(Valid());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "vitals_net");
  EXPECT_EQ(m->version.ToString(), "1.4.0-rc.1");
  EXPECT_EQ(m->kind, LF_KIND_MODEL);
  EXPECT_EQ(m->abi_major, 1);
  EXPECT_EQ(m->abi_minor, 2);
  EXPECT_EQ(m->LibraryPath(), dir_.path() / "vitals_net.so");
  EXPECT_EQ(m->sha256, std::string(64, 'a'));
  EXPECT_EQ(m->description, "a model");
  ASSERT_TRUE(m->input.has_value());
  EXPECT_EQ(m->input->kind, InputKind::kDense);
  EXPECT_EQ(m->input->size, 12);
  ASSERT_TRUE(m->classes.has_value());
  EXPECT_THAT(*m->classes, ::testing::ElementsAre("stable", "deteriorating"));

  json generic_manifest = With("input", nullptr);
  generic_manifest["classes"] = nullptr;
  absl::StatusOr<Manifest> generic = Read(generic_manifest);
  ASSERT_TRUE(generic.ok()) << generic.status();
  EXPECT_FALSE(generic->input.has_value());
  EXPECT_FALSE(generic->classes.has_value());
}

TEST_F(ManifestTest, EachBadFieldIsNamed) {
  EXPECT_EQ(Error(With("format", "latefuse.manifest/v2")),
            "format: expected \"latefuse.manifest/v1\", got "
            "\"latefuse.manifest/v2\"");
  json no_name = Valid();
  no_name.erase("name");
  EXPECT_EQ(Error(no_name), "name: missing");
  EXPECT_THAT(Error(With("version", "1.4")),
              ::testing::StartsWith("version: "));
  EXPECT_EQ(Error(With("kind", "tokenizer")),
            "kind: expected \"model\" or \"combiner\", got \"tokenizer\"");
  EXPECT_EQ(Error(With("abi", "1.2")),
            "abi: expected {\"major\": M, \"minor\": N}");
  EXPECT_EQ(Error(With("abi", {{"major", 1}, {"minor", -1}})),
            "abi.minor: expected a non-negative integer, got -1");
  EXPECT_EQ(Error(With("library", "../elsewhere.so")),
            "library: expected a file name in the manifest's folder, got "
            "\"../elsewhere.so\"");
  EXPECT_EQ(Error(With("sha256", "ABC")),
            "sha256: expected 64 lowercase hex digits, got \"ABC\"");
  EXPECT_EQ(Error(With("input", {{"kind", "dense"}})), "input.size: missing");
  EXPECT_EQ(Error(With("input", {{"kind", "audio"}})),
            "input.kind: expected \"dense\", \"text\" or \"bytes\", got "
            "\"audio\"");
  EXPECT_EQ(Error(With("classes", {"a", 1})),
            "classes: expected strings, got 1");
  EXPECT_EQ(Error(With("description", 7)),
            "description: expected a string, got 7");
}

TEST_F(ManifestTest, NotJsonIsRefused) {
  const fs::path file = dir_.Write("manifest.json", "{\"format\": ");
  absl::StatusOr<Manifest> m = ReadManifest(file);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), file.string() + ": not valid JSON");
  EXPECT_EQ(ReadManifest(dir_.path() / "absent.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace latefuse
