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
#include <chrono>
#include <cmath>
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
    if (throw_) throw std::runtime_error("test_model was told to throw");
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const double x = batch.Row(r)[0];
      if (fail_ == "always" || (fail_ == "negative" && x < 0)) {
        return sdk::Internal("test_model refuses row " + std::to_string(r));
      }
      double* p = out.Row(r);
      double total = 0;
      for (std::size_t c = 0; c < out.classes(); ++c) {
        total += p[c] = std::exp(static_cast<double>(c) * x);
      }
      for (std::size_t c = 0; c < out.classes(); ++c)
        p[c] = nan_ ? NAN : p[c] / total;
    }
    return sdk::Status();
  }

 private:
  std::size_t width_ = 1;
  std::string fail_;
  bool throw_ = false;
  bool nan_ = false;
  int sleep_ms_ = 0;
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
