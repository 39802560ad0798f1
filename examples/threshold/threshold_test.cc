// threshold's own test: the plugin on a batch through the SDK's harness
// (<latefuse/testing.hpp>), with no host and no pipeline.
//
//   threshold_test build/threshold/1.0.0/threshold.so
#include <cmath>
#include <cstdio>
#include <latefuse/testing.hpp>
#include <string>
#include <vector>

namespace lft = latefuse::sdk::testing;

int failures = 0;

void Expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    ++failures;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: threshold_test PLUGIN.so\n");
    return 2;
  }
  auto plugin = lft::Plugin::Load(argv[1]);
  if (!plugin.ok()) {
    std::fprintf(stderr, "%s\n", plugin.status().message().c_str());
    return 1;
  }
  Expect(plugin->info().name == "threshold", "the descriptor's name");
  Expect(plugin->info().version == "1.0.0", "the descriptor's version");

  auto model = plugin->CreateModel({R"({"cut": 2.0})", {"low", "high"}});
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().message().c_str());
    return 1;
  }
  Expect(model->contract().input_kind == LF_INPUT_DENSE &&
             model->contract().input_width == 1,
         "the contract's input: dense of width 1");

  // One infer call for the whole batch: below, at and above the cut.
  const std::vector<float> rows = {1.5f, 2.0f, 3.25f, -40.0f};
  const double expected_high[] = {0.1, 0.1, 0.9, 0.1};
  auto p = model->InferDense(rows.data(), rows.size(), 1);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", p.status().message().c_str());
    return 1;
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    Expect(std::abs(p->At(r, 1) - expected_high[r]) < 1e-12 &&
               std::abs(p->At(r, 0) - (1.0 - expected_high[r])) < 1e-12,
           "row " + std::to_string(r) + ": P(high) " +
               std::to_string(p->At(r, 1)));
  }

  // Its errors: three classes at create, a batch of the wrong width.
  auto three = plugin->CreateModel({"{}", {"a", "b", "c"}});
  Expect(!three.ok() &&
             three.status().message().find(
                 "threshold needs exactly 2 classes") != std::string::npos,
         "three classes are refused at create");
  auto wide = model->InferDense(rows.data(), 2, 2);
  Expect(!wide.ok(), "a batch of width 2 is refused");

  if (failures == 0) std::printf("threshold: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
