// The `xgboost` model plugin: an XGBoost classifier (binary:logistic or
// multi:softprob) saved as JSON or UBJSON, run through libxgboost's C API.
//
// A pipeline uses it as:
//
//   modalities:
//     - name: labs
//       input: {kind: dense, size: 8}        # the model's number of features
//       model:
//         plugin: xgboost
//         params: {model: models/labs.ubj}   # relative to the pipeline file
//
// The pipeline's classes are the model's classes in index order: class i is
// the label i the model was trained on. binary:logistic gives P(class 1) = p
// and the plugin writes [1 - p, p]; multi:softprob gives one probability per
// class. Any other objective is refused at create. NaN features in the input
// are XGBoost's missing values (they take each split's learned default
// direction). `nthread` (default 1) is the number of threads XGBoost uses for
// one batch; the engine already runs the modalities in parallel. See README.md.
#include <xgboost/c_api.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace latefuse::xgboost_plugin {
namespace {

using sdk::InvalidArgument;
using sdk::Result;
using sdk::Status;

// XGBoost's last error on this thread without its stack trace.
std::string LastError() {
  const char* error = XGBGetLastError();
  if (error == nullptr || *error == '\0') return "unknown error";
  std::string text(error);
  text = text.substr(0, text.find("\nStack trace:"));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

class XgboostModel {
 public:
  ~XgboostModel() {
    if (booster_ != nullptr) XGBoosterFree(booster_);
  }
  XgboostModel(const XgboostModel&) = delete;
  XgboostModel& operator=(const XgboostModel&) = delete;

  static Result<std::unique_ptr<XgboostModel>> Create(
      const sdk::CreateContext& context) {
    for (const auto& [key, value] : context.params.json().items()) {
      if (key != "model" && key != "nthread") {
        return InvalidArgument("params." + key +
                               ": unknown parameter (expected model, nthread)");
      }
    }
    if (context.task != LF_TASK_CLASSIFICATION) {
      return InvalidArgument(
          "the xgboost plugin is a classifier; the pipeline's task is "
          "'regression'");
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(std::filesystem::path path,
                                  context.params.GetPath("model"));
    LATEFUSE_SDK_ASSIGN_OR_RETURN(int64_t nthread,
                                  context.params.GetOr<int64_t>("nthread", 1));
    if (context.params.Has("nthread") &&
        !context.params.json()["nthread"].is_number_integer()) {
      return InvalidArgument("params.nthread: expected an integer, got " +
                             context.params.json()["nthread"].dump());
    }
    if (nthread < 1 || nthread > 1024) {
      return InvalidArgument("params.nthread: expected an integer from 1 to " +
                             std::string("1024, got ") +
                             std::to_string(nthread));
    }
    auto model = std::unique_ptr<XgboostModel>(new XgboostModel());
    model->path_ = path.string();
    LATEFUSE_SDK_RETURN_IF_ERROR(model->Load(static_cast<int>(nthread)));
    if (model->classes_ != context.classes.size()) {
      return InvalidArgument(
          model->Where() + " has " + std::to_string(model->classes_) +
          " classes (objective " + model->objective_ +
          "), but the pipeline has " + std::to_string(context.classes.size()) +
          ": the pipeline's classes are the model's, in index order");
    }
    model->labels_ = context.classes;
    return model;
  }

  sdk::ModelContract Describe() const {
    return {LF_INPUT_DENSE, width_, labels_, false};
  }

  Status Infer(const sdk::Batch& batch, sdk::ProbabilitiesOut& out) {
    if (batch.kind() != LF_INPUT_DENSE || batch.width() != width_) {
      return InvalidArgument("expected dense rows of width " +
                             std::to_string(width_));
    }
    if (out.classes() != classes_ || out.rows() != batch.rows()) {
      return InvalidArgument("output buffer is not [" +
                             std::to_string(batch.rows()) + ", " +
                             std::to_string(classes_) + "]");
    }
    // numpy's __array_interface__ for the host's float32 [rows, width] view.
    const std::string array =
        R"({"data": [)" +
        std::to_string(reinterpret_cast<std::uintptr_t>(batch.Row(0))) +
        R"(, true], "shape": [)" + std::to_string(batch.rows()) + ", " +
        std::to_string(width_) +
        R"(], "strides": null, "typestr": "<f4", "version": 3})";
    // NaN is XGBoost's JSON spelling of a NaN `missing` value.
    static constexpr char kConfig[] =
        R"({"type": 0, "training": false, "iteration_begin": 0, )"
        R"("iteration_end": 0, "strict_shape": false, "missing": NaN, "cache_id": 0})";
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster_, array.c_str(), kConfig, nullptr,
                                  &shape, &dims, &result) != 0) {
      return Status(LF_CODE_INTERNAL,
                    Where() + ": xgboost predict failed: " + LastError());
    }
    bst_ulong size = 1;
    for (bst_ulong d = 0; d < dims; ++d) size *= shape[d];
    const std::size_t per_row = classes_ == 2 ? 1 : classes_;
    if (size != batch.rows() * per_row) {
      return Status(LF_CODE_INTERNAL,
                    Where() + ": xgboost returned " + std::to_string(size) +
                        " values for " + std::to_string(batch.rows()) +
                        " rows of " + std::to_string(per_row));
    }
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      double* p = out.Row(r);
      if (classes_ == 2) {
        p[1] = static_cast<double>(result[r]);
        p[0] = 1.0 - p[1];
      } else {
        for (std::size_t c = 0; c < classes_; ++c) {
          p[c] = static_cast<double>(result[r * classes_ + c]);
        }
      }
    }
    return Status();
  }

 private:
  XgboostModel() = default;

  std::string Where() const { return "model file '" + path_ + "'"; }

  Status Fail(const std::string& what) const {
    return InvalidArgument(Where() + ": " + what + ": " + LastError());
  }

  // Loads the booster, sets nthread, and reads objective, classes and width.
  Status Load(int nthread) {
    if (!std::ifstream(path_)) {
      return sdk::NotFound("cannot open " + Where());
    }
    if (XGBoosterCreate(nullptr, 0, &booster_) != 0) {
      return Fail("cannot create an xgboost booster");
    }
    if (XGBoosterLoadModel(booster_, path_.c_str()) != 0) {
      return Fail("not an XGBoost model (JSON or UBJSON)");
    }
    if (XGBoosterSetParam(booster_, "nthread",
                          std::to_string(nthread).c_str()) != 0) {
      return Fail("cannot set nthread");
    }
    bst_ulong features = 0;
    if (XGBoosterGetNumFeature(booster_, &features) != 0) {
      return Fail("cannot read the number of features");
    }
    if (features == 0) {
      return InvalidArgument(Where() + ": the model has no features");
    }
    width_ = static_cast<std::size_t>(features);

    bst_ulong length = 0;
    const char* text = nullptr;
    if (XGBoosterSaveJsonConfig(booster_, &length, &text) != 0) {
      return Fail("cannot read the model's configuration");
    }
    const nlohmann::json config =
        nlohmann::json::parse(text, text + length, nullptr, false);
    try {
      const nlohmann::json& learner = config.at("learner");
      objective_ = learner.at("objective").at("name").get<std::string>();
      const int num_class = std::stoi(
          learner.at("learner_model_param").at("num_class").get<std::string>());
      const int threads = std::stoi(
          learner.at("generic_param").at("nthread").get<std::string>());
      if (threads != nthread) {
        return sdk::Internal(Where() + ": xgboost kept nthread " +
                             std::to_string(threads) + ", not " +
                             std::to_string(nthread));
      }
      if (objective_ == "binary:logistic") {
        classes_ = 2;
      } else if (objective_ == "multi:softprob") {
        if (num_class < 2) {
          return InvalidArgument(Where() + ": multi:softprob with num_class " +
                                 std::to_string(num_class));
        }
        classes_ = static_cast<std::size_t>(num_class);
      } else if (objective_ == "multi:softmax") {
        return InvalidArgument(
            Where() +
            ": objective multi:softmax predicts class indices, not "
            "probabilities: use multi:softprob (the same trees: "
            "booster.set_param({'objective': 'multi:softprob'}) then "
            "save_model)");
      } else {
        return InvalidArgument(Where() + ": unsupported objective '" +
                               objective_ +
                               "' (expected binary:logistic or "
                               "multi:softprob)");
      }
    } catch (const std::exception& e) {
      return InvalidArgument(Where() +
                             ": unexpected xgboost configuration: " + e.what());
    }
    return Status();
  }

  std::string path_;
  BoosterHandle booster_ = nullptr;
  std::string objective_;
  std::size_t classes_ = 0;
  std::size_t width_ = 0;
  std::vector<std::string> labels_;
};

}  // namespace
}  // namespace latefuse::xgboost_plugin

LATEFUSE_MODEL_PLUGIN(latefuse::xgboost_plugin::XgboostModel, "xgboost",
                      "1.0.0",
                      "XGBoost classifier (binary:logistic, multi:softprob) "
                      "from a JSON or UBJSON model file, via libxgboost",
                      "Apache-2.0")
