// The `remote` model plugin: a modality whose model is served elsewhere, over
// the Open Inference Protocol (KServe v2 REST), as Triton, KServe, MLServer and
// `latefuse serve` speak it. One POST /v2/models/{model}/infer per batch.
//
// A pipeline uses it as:
//
//   modalities:
//     - name: vitals
//       input: {kind: dense, size: 12}
//       model:
//         plugin: remote
//         params: {url: "http://10.0.0.7:8000", model: vitals, input: vitals,
//                  width: 12, timeout_ms: 200, retries: 2}
//       timeout_ms: 1000        # the engine's bound on the whole call
//
// The rows go as one input tensor (dense: FP32 [rows, width]; text: BYTES
// [rows]); the answer's output tensor (default "probabilities", FP32 or FP64,
// [rows, classes], flat or nested) is the modality's probabilities, in the
// pipeline's class order. Any failure (refused connection, timeout, HTTP
// error, malformed answer, wrong shape) fails the call with the reason, and
// the engine makes the modality missing or failed for those rows, per
// on_error. Connection errors, HTTP 5xx and 429 are retried `retries` times
// with a doubling backoff; timeouts and other 4xx are not. See README.md.
#include <httplib.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <latefuse/plugin.hpp>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace latefuse::remote_plugin {
namespace {

using nlohmann::json;
using sdk::InvalidArgument;
using sdk::Result;
using sdk::Status;
using Clock = std::chrono::steady_clock;

constexpr const char* kParams[] = {
    "url",        "model",     "version",       "input",   "output",
    "datatype",   "width",     "timeout_ms",    "retries", "retry_backoff_ms",
    "token_file", "token_env", "check_metadata"};

// How much of a bad answer's body goes into an error message.
constexpr std::size_t kBodyExcerpt = 200;

std::string Excerpt(std::string_view text) {
  if (text.size() <= kBodyExcerpt) return std::string(text);
  return std::string(text.substr(0, kBodyExcerpt)) + "...";
}

// A model name, version or tensor name goes into a URL path or a message
// unescaped: keep to the characters every server accepts there.
bool IsPlainName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Appends `text` as a JSON string.
void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The shortest text that reads back as the same float32, so a server parsing
// FP32 gets exactly the host's values.
void AppendFloat(std::string& out, float value) {
  char buffer[32];
  const auto [end, error] =
      std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

std::string ShapeText(const json& shape) { return shape.dump(); }

// The names of the tensors in a metadata or answer list, for messages.
std::string Names(const json& tensors) {
  std::string names;
  for (const json& t : tensors) {
    if (!names.empty()) names += ", ";
    names += t.is_object() && t.contains("name") && t["name"].is_string()
                 ? t["name"].get<std::string>()
                 : std::string("?");
  }
  return names.empty() ? "none" : names;
}

const json* FindTensor(const json& tensors, const std::string& name) {
  if (!tensors.is_array()) return nullptr;
  for (const json& t : tensors) {
    if (t.is_object() && t.contains("name") && t["name"] == name) return &t;
  }
  return nullptr;
}

// The last dimension of a metadata shape, or -1 when it is not fixed there.
int64_t LastDim(const json& tensor) {
  if (!tensor.contains("shape") || !tensor["shape"].is_array() ||
      tensor["shape"].empty() || !tensor["shape"].back().is_number_integer()) {
    return -1;
  }
  return tensor["shape"].back().get<int64_t>();
}

struct Settings {
  std::string base;        // scheme://host[:port]
  std::string infer_path;  // [prefix]/v2/models/{model}[/versions/{v}]/infer
  std::string model_path;  // the same without /infer: the model's metadata
  std::string where;       // "remote 'URL' model 'M'" for messages
  std::string input;
  std::string output;
  LfInputKind kind = LF_INPUT_DENSE;
  std::size_t width = 0;
  std::chrono::milliseconds timeout{1000};
  int retries = 2;
  std::chrono::milliseconds backoff{20};
  std::string token;  // never in a message or the log
  bool check_metadata = true;
};

Result<std::string> ReadToken(const sdk::Params& params) {
  if (params.Has("token_file") && params.Has("token_env")) {
    return InvalidArgument("params: give token_file or token_env, not both");
  }
  std::string token;
  if (params.Has("token_file")) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(auto path, params.GetPath("token_file"));
    std::ifstream file(path);
    if (!file) {
      return InvalidArgument("params.token_file: cannot read '" +
                             path.string() + "'");
    }
    std::stringstream text;
    text << file.rdbuf();
    token = text.str();
  } else if (params.Has("token_env")) {
    LATEFUSE_SDK_ASSIGN_OR_RETURN(auto name,
                                  params.Get<std::string>("token_env"));
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return InvalidArgument("params.token_env: the environment variable '" +
                             name + "' is not set");
    }
    token = value;
  } else {
    return token;
  }
  while (!token.empty() &&
         std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (token.empty()) {
    return InvalidArgument(
        std::string("params.") +
        (params.Has("token_file") ? "token_file" : "token_env") +
        ": the bearer token is empty");
  }
  for (char c : token) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
      return InvalidArgument(
          "params: the bearer token holds a space or control character");
    }
  }
  return token;
}

Result<int64_t> IntegerIn(const sdk::Params& params, const std::string& key,
                          int64_t fallback, int64_t low, int64_t high) {
  if (params.Has(key) && !params.json()[key].is_number_integer()) {
    return InvalidArgument("params." + key + ": expected an integer, got " +
                           params.json()[key].dump());
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(int64_t value,
                                params.GetOr<int64_t>(key, fallback));
  if (value < low || value > high) {
    return InvalidArgument("params." + key + ": expected an integer from " +
                           std::to_string(low) + " to " + std::to_string(high) +
                           ", got " + std::to_string(value));
  }
  return value;
}

Result<Settings> ReadSettings(const sdk::Params& params) {
  for (const auto& [key, value] : params.json().items()) {
    bool known = false;
    for (const char* k : kParams) known = known || key == k;
    if (!known) {
      return InvalidArgument("params." + key +
                             ": unknown parameter (expected url, model, "
                             "version, input, output, datatype, width, "
                             "timeout_ms, retries, retry_backoff_ms, "
                             "token_file, token_env, check_metadata)");
    }
  }
  Settings s;
  LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string url,
                                params.Get<std::string>("url"));
  const std::size_t scheme_end = url.find("://");
  const std::string scheme =
      scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return InvalidArgument(
        "params.url: expected http://HOST:PORT or "
        "https://HOST:PORT, got '" +
        url + "'");
  }
  const std::size_t path_start = url.find('/', scheme_end + 3);
  s.base = url.substr(0, path_start);
  if (s.base.size() <= scheme_end + 3) {
    return InvalidArgument("params.url: no host in '" + url + "'");
  }
  // A path in the URL is a prefix, as behind an ingress that routes by path.
  std::string prefix =
      path_start == std::string::npos ? "" : url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();

  LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string model,
                                params.Get<std::string>("model"));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string version,
                                params.GetOr<std::string>("version", ""));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(s.input, params.Get<std::string>("input"));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      s.output, params.GetOr<std::string>("output", "probabilities"));
  for (const auto& [key, value] :
       {std::pair<const char*, const std::string*>{"model", &model},
        {"input", &s.input},
        {"output", &s.output}}) {
    if (!IsPlainName(*value)) {
      return InvalidArgument(std::string("params.") + key +
                             ": expected a name of letters, digits, '_', '-' "
                             "and '.', got '" +
                             *value + "'");
    }
  }
  if (params.Has("version") && !IsPlainName(version)) {
    return InvalidArgument(
        "params.version: expected letters, digits, '_', '-' and '.', got '" +
        version + "'");
  }
  s.model_path = prefix + "/v2/models/" + model +
                 (version.empty() ? "" : "/versions/" + version);
  s.infer_path = s.model_path + "/infer";
  s.where = "remote '" + url + "' model '" + model + "'" +
            (version.empty() ? "" : " version '" + version + "'");

  LATEFUSE_SDK_ASSIGN_OR_RETURN(std::string datatype,
                                params.GetOr<std::string>("datatype", "FP32"));
  if (datatype == "FP32") {
    s.kind = LF_INPUT_DENSE;
    if (!params.Has("width")) {
      return InvalidArgument(
          "params.width: missing required parameter (datatype FP32 sends "
          "dense rows: give the modality's size)");
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(int64_t width,
                                  IntegerIn(params, "width", 0, 1, 1 << 24));
    s.width = static_cast<std::size_t>(width);
  } else if (datatype == "BYTES") {
    s.kind = LF_INPUT_TEXT;
    if (params.Has("width")) {
      return InvalidArgument(
          "params.width: only for datatype FP32 (BYTES sends text rows)");
    }
  } else {
    return InvalidArgument(
        "params.datatype: expected FP32 (dense input) or BYTES (text input), "
        "got '" +
        datatype + "'");
  }
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      int64_t timeout, IntegerIn(params, "timeout_ms", 1000, 1, 600000));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(int64_t retries,
                                IntegerIn(params, "retries", 2, 0, 10));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(
      int64_t backoff, IntegerIn(params, "retry_backoff_ms", 20, 0, 10000));
  s.timeout = std::chrono::milliseconds(timeout);
  s.retries = static_cast<int>(retries);
  s.backoff = std::chrono::milliseconds(backoff);
  LATEFUSE_SDK_ASSIGN_OR_RETURN(s.token, ReadToken(params));
  LATEFUSE_SDK_ASSIGN_OR_RETURN(s.check_metadata,
                                params.GetOr("check_metadata", true));
  return s;
}

// One HTTP exchange's outcome: the answer's body, or why there is none and
// whether trying again may help.
struct Exchange {
  bool ok = false;
  std::string body;
  std::string error;
  bool retryable = false;
};

void Log(int32_t level, const std::string& message) {
  const LfHostApi* host = sdk::internal::HostApi();
  if (host != nullptr && host->log != nullptr) {
    host->log(level, message.data(), message.size());
  }
}

class RemoteModel {
 public:
  static Result<std::unique_ptr<RemoteModel>> Create(
      const sdk::CreateContext& context) {
    if (context.task != LF_TASK_CLASSIFICATION) {
      return InvalidArgument(
          "the remote plugin serves classification pipelines; the pipeline's "
          "task is 'regression'");
    }
    LATEFUSE_SDK_ASSIGN_OR_RETURN(Settings settings,
                                  ReadSettings(context.params));
    auto model = std::unique_ptr<RemoteModel>(
        new RemoteModel(std::move(settings), context.classes));
    if (model->settings_.check_metadata) {
      LATEFUSE_SDK_RETURN_IF_ERROR(model->CheckMetadata());
    }
    return model;
  }

  sdk::ModelContract Describe() const {
    return {settings_.kind, settings_.width, classes_, false};
  }

  Status Infer(const sdk::Batch& batch, sdk::ProbabilitiesOut& out) {
    if (batch.kind() != settings_.kind || (settings_.kind == LF_INPUT_DENSE &&
                                           batch.width() != settings_.width)) {
      return InvalidArgument(settings_.kind == LF_INPUT_DENSE
                                 ? "expected dense rows of width " +
                                       std::to_string(settings_.width)
                                 : std::string("expected text rows"));
    }
    if (out.classes() != classes_.size() || out.rows() != batch.rows()) {
      return InvalidArgument("output buffer is not [" +
                             std::to_string(batch.rows()) + ", " +
                             std::to_string(classes_.size()) + "]");
    }
    // The host calls an instance from one thread at a time (plugin.h); the
    // lock keeps the connection and the buffer whole should one not.
    std::lock_guard<std::mutex> lock(mutex_);
    WriteRequest(batch);
    Exchange answer = PostWithRetries();
    if (!answer.ok) return sdk::Internal(answer.error);
    return ReadAnswer(answer.body, batch.rows(), out);
  }

 private:
  RemoteModel(Settings settings, std::vector<std::string> classes)
      : settings_(std::move(settings)),
        classes_(std::move(classes)),
        client_(settings_.base) {
    const auto t = settings_.timeout;
    client_.set_connection_timeout(t);
    client_.set_read_timeout(t);
    client_.set_write_timeout(t);
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);
    if (!settings_.token.empty())
      client_.set_bearer_token_auth(settings_.token);
  }

  // The request body, in a buffer kept across batches: {"inputs": [one
  // tensor of every row]}. Only the output the plugin reads is asked for.
  void WriteRequest(const sdk::Batch& batch) {
    std::string& b = body_;
    b.clear();
    b += R"({"inputs":[{"name":)";
    AppendJsonString(b, settings_.input);
    b += R"(,"shape":[)";
    b += std::to_string(batch.rows());
    if (settings_.kind == LF_INPUT_DENSE) {
      b += ',';
      b += std::to_string(settings_.width);
      b += R"(],"datatype":"FP32","data":[)";
      const std::size_t n = batch.rows() * settings_.width;
      const float* values = batch.Row(0);
      for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) b += ',';
        AppendFloat(b, values[i]);
      }
    } else {
      b += R"(],"datatype":"BYTES","data":[)";
      for (std::size_t r = 0; r < batch.rows(); ++r) {
        if (r > 0) b += ',';
        AppendJsonString(b, batch.Item(r));
      }
    }
    b += "]}]}";
  }

  // One request, no retry. A refused or failed connection, or one closed
  // under the request (a kept-alive connection the remote has dropped), may
  // be retried; a timeout, connecting or reading, is not: the remote is slow
  // or unreachable, and asking again would only wait longer.
  Exchange Send(const std::string& method, const std::string& path) {
    const Clock::time_point start = Clock::now();
    httplib::Result result =
        method == "GET" ? client_.Get(path.c_str())
                        : client_.Post(path.c_str(), body_, "application/json");
    Exchange e;
    const std::string what = settings_.where + ": " + method + " " + path;
    if (!result) {
      const httplib::Error error = result.error();
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                start);
      if (error == httplib::Error::Read && elapsed >= settings_.timeout) {
        e.error = what + ": timed out after " +
                  std::to_string(settings_.timeout.count()) +
                  " ms waiting for the answer";
      } else if (error == httplib::Error::ConnectionTimeout) {
        e.error = what + ": timed out after " +
                  std::to_string(settings_.timeout.count()) + " ms connecting";
      } else {
        e.error = what + ": " +
                  (error == httplib::Error::Connection
                       ? std::string("cannot connect (refused or unreachable)")
                   : error == httplib::Error::Read
                       ? std::string("the connection closed before the answer")
                       : httplib::to_string(error));
        e.retryable = error == httplib::Error::Connection ||
                      error == httplib::Error::Read ||
                      error == httplib::Error::Write;
      }
      return e;
    }
    if (result->status != 200) {
      std::string reason = Excerpt(result->body);
      const json body = json::parse(result->body, nullptr, false);
      if (body.is_object() && body.contains("error") &&
          body["error"].is_string()) {
        reason = Excerpt(body["error"].get<std::string>());
      }
      e.error = what + ": HTTP " + std::to_string(result->status) +
                (reason.empty() ? "" : ": " + reason);
      e.retryable = result->status >= 500 || result->status == 429;
      return e;
    }
    e.ok = true;
    e.body = std::move(result->body);
    return e;
  }

  Exchange PostWithRetries() {
    Exchange e;
    for (int attempt = 0; attempt <= settings_.retries; ++attempt) {
      if (attempt > 0)
        std::this_thread::sleep_for(settings_.backoff * (1 << (attempt - 1)));
      e = Send("POST", settings_.infer_path);
      if (e.ok || !e.retryable) break;
    }
    if (!e.ok && e.retryable && settings_.retries > 0) {
      e.error +=
          " (after " + std::to_string(settings_.retries + 1) + " attempts)";
    }
    return e;
  }

  // Reads the output tensor of `rows` rows into `out`.
  Status ReadAnswer(const std::string& text, std::size_t rows,
                    sdk::ProbabilitiesOut& out) const {
    const std::string what = settings_.where + ": the answer ";
    json answer;
    try {
      answer = json::parse(text);
    } catch (const json::exception& e) {
      return sdk::Internal(what + "is not valid JSON (" + e.what() +
                           "): " + Excerpt(text));
    }
    if (!answer.is_object() || !answer.contains("outputs") ||
        !answer["outputs"].is_array()) {
      return sdk::Internal(what + "has no \"outputs\" list: " + Excerpt(text));
    }
    const json* tensor = FindTensor(answer["outputs"], settings_.output);
    if (tensor == nullptr) {
      return sdk::Internal(what + "has no output '" + settings_.output +
                           "' (its outputs: " + Names(answer["outputs"]) + ")");
    }
    const std::string where = what + "output '" + settings_.output + "' ";
    const json datatype = tensor->value("datatype", json());
    if (datatype != "FP32" && datatype != "FP64") {
      return sdk::Internal(where + "has datatype " + datatype.dump() +
                           ", expected FP32 or FP64");
    }
    const std::size_t classes = classes_.size();
    const json expected_shape = {rows, classes};
    if (tensor->value("shape", json()) != expected_shape) {
      return sdk::Internal(
          where + "has shape " + ShapeText(tensor->value("shape", json())) +
          ", expected " + ShapeText(expected_shape) + " (" +
          std::to_string(rows) + " rows sent, the pipeline's " +
          std::to_string(classes) + " classes)");
    }
    if (!tensor->contains("data") || !(*tensor)["data"].is_array()) {
      return sdk::Internal(where + "has no \"data\" list");
    }
    // Flat row-major, or nested one list per row.
    const json& data = (*tensor)["data"];
    const bool nested = !data.empty() && data[0].is_array();
    if (data.size() != (nested ? rows : rows * classes)) {
      return sdk::Internal(where + "has " + std::to_string(data.size()) +
                           (nested ? " rows" : " values") + " of data for " +
                           "shape " + ShapeText(expected_shape));
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const json* row = nested ? &data[r] : nullptr;
      if (nested && (!row->is_array() || row->size() != classes)) {
        return sdk::Internal(where + "row " + std::to_string(r) + " is " +
                             Excerpt(row->dump()) + ", expected " +
                             std::to_string(classes) + " numbers");
      }
      for (std::size_t c = 0; c < classes; ++c) {
        const json& v = nested ? (*row)[c] : data[r * classes + c];
        if (!v.is_number()) {
          return sdk::Internal(where + "row " + std::to_string(r) + " holds " +
                               Excerpt(v.dump()) + ", not a number");
        }
        out.Row(r)[c] = v.get<double>();
      }
    }
    return RowStatuses(answer, rows);
  }

  // A latefuse server says per row whether it fused an answer
  // ("parameters": {"rows": [{"status": ...}]}); a row it could not answer
  // carries zeros, so the whole call fails with the remote's reason.
  Status RowStatuses(const json& answer, std::size_t rows) const {
    if (!answer.contains("parameters") || !answer["parameters"].is_object()) {
      return Status();
    }
    const json& statuses = answer["parameters"].value("rows", json());
    if (!statuses.is_array()) return Status();
    if (statuses.size() != rows) {
      return sdk::Internal(settings_.where +
                           ": the answer's parameters.rows has " +
                           std::to_string(statuses.size()) + " entries for " +
                           std::to_string(rows) + " rows");
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const json& row = statuses[r];
      const json status =
          row.is_object() ? row.value("status", json()) : json();
      if (status == "ok") continue;
      std::string why;
      if (row.is_object() && row.contains("error")) why = row["error"].dump();
      if (row.is_object() && row.contains("failed") && !row["failed"].empty()) {
        why += (why.empty() ? "" : ", ") + ("failed " + row["failed"].dump());
      }
      return sdk::Internal(settings_.where +
                           ": the remote did not answer row " +
                           std::to_string(r) + ": status " + status.dump() +
                           (why.empty() ? "" : " (" + Excerpt(why) + ")"));
    }
    return Status();
  }

  // Checks the remote model's metadata against the pipeline, when the remote
  // answers. A remote that is down or has not loaded the model yet is normal
  // (the modality is then missing until it comes back): only a remote that
  // answers and contradicts the pipeline fails create.
  Status CheckMetadata() {
    Exchange e = Send("GET", settings_.model_path);
    if (!e.ok) {
      Log(LF_LOG_WARNING,
          "remote plugin: metadata not checked, no answer: " + e.error);
      return Status();
    }
    const std::string what =
        settings_.where + ": its metadata (GET " + settings_.model_path + ") ";
    const json metadata = json::parse(e.body, nullptr, false);
    if (!metadata.is_object()) {
      return InvalidArgument(what + "is not a JSON object: " + Excerpt(e.body));
    }
    if (metadata.contains("inputs") && metadata["inputs"].is_array()) {
      const json* input = FindTensor(metadata["inputs"], settings_.input);
      if (input == nullptr) {
        return InvalidArgument(what + "has no input '" + settings_.input +
                               "' (its inputs: " + Names(metadata["inputs"]) +
                               "): set params.input");
      }
      const std::string datatype =
          settings_.kind == LF_INPUT_DENSE ? "FP32" : "BYTES";
      if (input->value("datatype", json()) != datatype) {
        return InvalidArgument(what + "gives input '" + settings_.input +
                               "' datatype " +
                               input->value("datatype", json()).dump() +
                               ", but this modality sends " + datatype);
      }
      const int64_t width = LastDim(*input);
      if (settings_.kind == LF_INPUT_DENSE && width >= 0 &&
          static_cast<std::size_t>(width) != settings_.width &&
          input->value("shape", json()).size() >= 2) {
        return InvalidArgument(what + "gives input '" + settings_.input +
                               "' shape " +
                               input->value("shape", json()).dump() +
                               ", but this modality sends rows of width " +
                               std::to_string(settings_.width));
      }
    }
    if (metadata.contains("outputs") && metadata["outputs"].is_array()) {
      const json* output = FindTensor(metadata["outputs"], settings_.output);
      if (output == nullptr) {
        return InvalidArgument(what + "has no output '" + settings_.output +
                               "' (its outputs: " + Names(metadata["outputs"]) +
                               "): set params.output");
      }
      const int64_t width = LastDim(*output);
      if (width >= 0 && static_cast<std::size_t>(width) != classes_.size()) {
        return InvalidArgument(
            what + "gives output '" + settings_.output + "' shape " +
            output->value("shape", json()).dump() + ", but the pipeline has " +
            std::to_string(classes_.size()) + " classes");
      }
    }
    // A latefuse server names its classes; they must be the pipeline's.
    const json& parameters = metadata.value("parameters", json::object());
    if (parameters.is_object() && parameters.contains("classes") &&
        parameters["classes"] != json(classes_)) {
      return InvalidArgument(
          what + "has classes " + parameters["classes"].dump() +
          ", but the pipeline's are " + json(classes_).dump() +
          " (the same labels in the same order are needed)");
    }
    return Status();
  }

  Settings settings_;
  std::vector<std::string> classes_;
  std::mutex mutex_;
  httplib::Client client_;  // keeps its connection open between batches
  std::string body_;
};

}  // namespace
}  // namespace latefuse::remote_plugin

LATEFUSE_MODEL_PLUGIN(
    latefuse::remote_plugin::RemoteModel, "remote", "1.0.0",
    "A modality served over the Open Inference Protocol "
    "(KServe v2 REST): Triton, KServe, MLServer, latefuse serve",
    "Apache-2.0")
