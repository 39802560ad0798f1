// `test_model`: a model plugin whose behaviour the tests set through params, to
// exercise the host's handling of failures. Built with latefuse_add_plugin like
// any plugin.
//
//   model:
//     plugin: test_model
//     params: {width: 2, fail: negative, sleep_ms: 0}
//
// P(classes[c]) is the softmax of c * x[0] (binary: sigmoid of x[0]).
// params: width (dense width, default 1); fail: never | always | negative (fail
// a batch holding a row whose first feature is negative); throw (infer throws a
// std::runtime_error); sleep_ms (infer sleeps first); nan (infer returns NaN);
// fail_create; classes (declared classes, default the pipeline's);
// calls_file (a path: each infer call first appends one line "<rows>\n" to
// it, so a test can count the calls and the rows each one got).
// Faults for the host's fault containment (isolation: process): crash
// (segfault | abort); loop (true: spin forever); unnormalised (true: rows
// sum to 0.5); wrong_size (more: write one row past the output | fewer: leave
// the last row unwritten). These, throw and nan happen in every batch, or
// with `when: negative` only in a batch holding a row whose first feature is
// negative (so that a later batch shows the model answering again).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <stdexcept>
#include <thread>

namespace latefuse::test_model {
namespace {

class TestModel {
 public:
  static sdk::Result<std::unique_ptr<TestModel>> Create(
      const sdk::CreateContext& context) {
    auto model = std::make_unique<TestModel>();
    const sdk::Params& p = context.params;
    LATEFUSE_SDK_ASSIGN_OR_RETURN(bool fail_create,
                                  p.GetOr("fail_create", false));
    if (fail_create)
      return sdk::InvalidArgument("asked to fail (fail_create: true)");
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->width_,
                                  p.GetOr<std::size_t>("width", 1));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->fail_,
                                  p.GetOr<std::string>("fail", "never"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->throw_, p.GetOr("throw", false));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->nan_, p.GetOr("nan", false));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->sleep_ms_, p.GetOr("sleep_ms", 0));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->crash_,
                                  p.GetOr<std::string>("crash", "never"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->loop_, p.GetOr("loop", false));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->unnormalised_,
                                  p.GetOr("unnormalised", false));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->wrong_size_,
                                  p.GetOr<std::string>("wrong_size", "never"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->when_,
                                  p.GetOr<std::string>("when", "always"));
    if (model->when_ != "always" && model->when_ != "negative")
      return sdk::InvalidArgument("when: expected always or negative");
    LATEFUSE_SDK_ASSIGN_OR_RETURN(model->classes_,
                                  p.GetOr("classes", context.classes));
    if (p.Has("calls_file")) {
      LATEFUSE_SDK_ASSIGN_OR_RETURN(model->calls_file_,
                                    p.GetPath("calls_file"));
    }
    return model;
  }

  sdk::ModelContract Describe() const {
    return {LF_INPUT_DENSE, width_, classes_};
  }

  sdk::Status Infer(const sdk::Batch& batch, sdk::ProbabilitiesOut& out) {
    if (!calls_file_.empty()) {
      std::ofstream(calls_file_, std::ios::app) << batch.rows() << "\n";
    }
    if (sleep_ms_ > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    bool faulty = when_ == "always";
    for (std::size_t r = 0; r < batch.rows(); ++r)
      faulty = faulty || batch.Row(r)[0] < 0;
    if (faulty) Misbehave();
    if (faulty && throw_)
      throw std::runtime_error("test_model was told to throw");
    // Writes one row more or fewer than asked for when told to.
    std::size_t rows = batch.rows();
    if (faulty && wrong_size_ == "more") ++rows;
    if (faulty && wrong_size_ == "fewer") --rows;
    for (std::size_t r = 0; r < rows; ++r) {
      const double x = batch.Row(std::min(r, batch.rows() - 1))[0];
      if (fail_ == "always" || (fail_ == "negative" && x < 0)) {
        return sdk::Internal("test_model refuses row " + std::to_string(r));
      }
      double* p = out.Row(r);
      double total = 0;
      for (std::size_t c = 0; c < out.classes(); ++c) {
        total += p[c] = std::exp(static_cast<double>(c) * x);
      }
      const double scale = faulty && unnormalised_ ? 0.5 : 1.0;
      for (std::size_t c = 0; c < out.classes(); ++c)
        p[c] = faulty && nan_ ? NAN : scale * p[c] / total;
    }
    return sdk::Status();
  }

 private:
  std::size_t width_ = 1;
  std::string fail_;
  bool throw_ = false;
  bool nan_ = false;
  int sleep_ms_ = 0;
  std::string crash_;
  bool loop_ = false;
  bool unnormalised_ = false;
  std::string wrong_size_;
  std::string when_;

  // The faults that never return.
  void Misbehave() const {
    if (crash_ == "segfault") {
      volatile int* null = nullptr;
      *null = 1;
    }
    if (crash_ == "abort") std::abort();
    if (loop_) {
      for (volatile bool spin = true; spin;) {
      }
    }
  }
  std::vector<std::string> classes_;
  std::filesystem::path calls_file_;
};

}  // namespace
}  // namespace latefuse::test_model

// Built again as other versions (tests/plugins/CMakeLists.txt) for the tests
// that choose among versions side by side.
#ifndef TEST_MODEL_VERSION
#define TEST_MODEL_VERSION "1.0.0"
#endif

LATEFUSE_MODEL_PLUGIN(latefuse::test_model::TestModel, "test_model",
                      TEST_MODEL_VERSION, "A model for the host's tests",
                      "Apache-2.0")
