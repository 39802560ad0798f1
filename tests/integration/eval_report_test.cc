// `latefuse eval`'s HTML report as a browser shows it: headless Chromium
// (Debian's `chromium`, installed by tools/setup.sh) loads it, and the charts
// must be there with no console message at all (the page has no script, so
// any message is a fault). Skipped only where chromium is not installed, and
// never under CI (CI=true), where setup.sh has installed it.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace latefuse {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(path)) return path;
  }
  return "";
}

std::string Quote(const fs::path& path) {
  return absl::StrCat("'", path.string(), "'");
}

struct Page {
  int code = -1;
  std::string dom;
  std::vector<std::string> console;  // the page's console messages
};

// Loads `html` in headless Chromium; returns its DOM and console messages
// (Chromium logs each as `...:INFO:CONSOLE:<line>] "message", source: ...`).
Page Render(const fs::path& html, const std::string& chromium) {
  testing::TempDir profile;
  Page page;
  std::string log;
  page.code = testing::RunCommand(
      absl::StrCat(Quote(chromium),
                   " --headless --disable-gpu --no-sandbox --user-data-dir=",
                   Quote(profile.path()),
                   " --enable-logging=stderr --v=0 --dump-dom ",
                   Quote("file://" + html.string())),
      &page.dom, &log);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(":CONSOLE") != std::string::npos)
      page.console.push_back(line);
  }
  return page;
}

std::size_t Count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

class EvalReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = Chromium();
    if (chromium_.empty()) {
      if (std::getenv("CI") != nullptr) {
        FAIL() << "chromium is not installed, but CI must run this test "
                  "(tools/setup.sh installs it)";
      }
      GTEST_SKIP() << "chromium is not installed (tools/setup.sh installs "
                      "it): the HTML report is not rendered";
    }
  }
  std::string chromium_;
};

// The check below can fail: a page with a script error shows up.
TEST_F(EvalReportTest, ConsoleErrorsAreCaught) {
  testing::TempDir dir;
  const fs::path page =
      dir.Write("bad.html",
                "<!DOCTYPE html><html><body><script>console.error('boom'); "
                "no_such_function();</script></body></html>");
  const Page rendered = Render(page, chromium_);
  ASSERT_EQ(rendered.code, 0);
  ASSERT_EQ(rendered.console.size(), 2u);
  EXPECT_THAT(rendered.console[0], HasSubstr("boom"));
  EXPECT_THAT(rendered.console[1], HasSubstr("no_such_function"));
}

TEST_F(EvalReportTest, ChartsRenderWithoutConsoleMessages) {
  testing::TempDir dir;
  const fs::path demo = testing::SourceDir() / "configs/demo";
  std::string yaml = testing::ReadFile(demo / "pipeline.yaml");
  // This build's plugins, and the demo's models where they are.
  yaml.replace(yaml.find("[../../build/plugins]"),
               std::string("[../../build/plugins]").size(),
               "['" + testing::PluginDir().string() + "']");
  for (std::size_t at = yaml.find("models/"); at != std::string::npos;
       at = yaml.find("models/", at + demo.string().size() + 8)) {
    yaml.insert(at, demo.string() + "/");
  }
  const fs::path pipeline = dir.Write("pipeline.yaml", yaml);
  const testing::CommandResult eval = testing::RunLatefuse(absl::StrCat(
      "eval ", Quote(pipeline), " --data ", Quote(demo / "data/patients.jsonl"),
      " --report ", Quote(dir.path() / "report"), " --bootstrap 100"));
  ASSERT_EQ(eval.code, 0) << eval.err;

  const Page page = Render(dir.path() / "report/report.html", chromium_);
  ASSERT_EQ(page.code, 0);
  EXPECT_TRUE(page.console.empty()) << page.console.front();
  // Five charts: ROC-AUC and accuracy per pattern (31 bars each), the
  // reliability diagram, two contribution charts (5 bars each).
  EXPECT_EQ(Count(page.dom, "<svg"), 5u);
  EXPECT_GE(Count(page.dom, "<rect"), 31u * 2 + 5 * 2);
  EXPECT_GE(Count(page.dom, "<circle"), 3u);  // the as-given reliability bins
  EXPECT_THAT(page.dom, HasSubstr("ROC-AUC per availability pattern"));
  EXPECT_THAT(page.dom, HasSubstr("Reliability diagram"));
  EXPECT_THAT(page.dom, HasSubstr("Contribution: ROC-AUC gained"));
  EXPECT_THAT(page.dom, HasSubstr("vitals+labs+imaging+notes+wearable"));

  // The documented screenshot command makes a picture of the given size.
  const fs::path png = dir.path() / "report.png";
  std::string out, err;
  ASSERT_EQ(
      testing::RunCommand(
          absl::StrCat(Quote(testing::SourceDir() / "tools/eval_screenshot.sh"),
                       " ", Quote(dir.path() / "report/report.html"), " ",
                       Quote(png), " 1000,800"),
          &out, &err),
      0)
      << err;
  const std::string bytes = testing::ReadFile(png);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(bytes[at]) << 24) |
           (static_cast<unsigned char>(bytes[at + 1]) << 16) |
           (static_cast<unsigned char>(bytes[at + 2]) << 8) |
           static_cast<unsigned char>(bytes[at + 3]);
  };
  EXPECT_EQ(be32(16), 1000);  // IHDR width
  EXPECT_EQ(be32(20), 800);   // IHDR height
}

}  // namespace
}  // namespace latefuse
