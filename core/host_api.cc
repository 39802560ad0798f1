#include "core/host_api.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "fmt/core.h"

// Host-owned; plugins only ever hold pointers to it.
struct LfStatus {
  int32_t code;
  std::string message;
};

namespace latefuse {
namespace {

LfStatus* MakeStatus(int32_t code, const char* message, size_t message_size) {
  // A plugin that reports an error with code 0 (OK) still reported an error.
  if (code <= 0 ||
      code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int32_t>(absl::StatusCode::kUnknown);
  }
  return new LfStatus{code, message == nullptr
                                ? std::string()
                                : std::string(message, message_size)};
}

void Log(int32_t level, const char* message, size_t message_size) {
  static constexpr const char* kLevels[] = {"debug", "info", "warning",
                                            "error"};
  const char* name = level >= 0 && level <= 3 ? kLevels[level] : "log";
  fmt::print(stderr, "latefuse: plugin {}: {}\n", name,
             std::string_view(message == nullptr ? "" : message, message_size));
}

}  // namespace

const LfHostApi* HostApi() {
  static const LfHostApi api = {sizeof(LfHostApi), LATEFUSE_ABI_MAJOR,
                                LATEFUSE_ABI_MINOR, &MakeStatus, &Log};
  return &api;
}

absl::Status TakeStatus(LfStatus* status, const std::string& context) {
  if (status == nullptr) return absl::OkStatus();
  std::unique_ptr<LfStatus> owned(status);
  return absl::Status(static_cast<absl::StatusCode>(owned->code),
                      absl::StrCat(context, ": ", owned->message));
}

}  // namespace latefuse
