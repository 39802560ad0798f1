// The host's side of the plugin ABI: the LfHostApi table handed to every
// plugin, and the conversion of a plugin's LfStatus into an absl::Status.
//
//   const LfPluginDescriptor* d = entry(latefuse::HostApi());
//   absl::Status s = latefuse::TakeStatus(api->infer(...), "modality 'notes':
//   infer");
#ifndef LATEFUSE_CORE_HOST_API_H_
#define LATEFUSE_CORE_HOST_API_H_

#include <latefuse/plugin.h>

#include <string>

#include "absl/status/status.h"

namespace latefuse {

// The host API table; valid for the life of the process.
const LfHostApi* HostApi();

// Takes ownership of `status` (NULL = success) and returns it as an
// absl::Status whose message is "<context>: <plugin's message>".
absl::Status TakeStatus(LfStatus* status, const std::string& context);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_HOST_API_H_
