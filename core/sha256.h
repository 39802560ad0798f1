// SHA-256 of an open file, as lowercase hex.
//
//   ASSIGN_OR_RETURN(std::string hex, Sha256OfDescriptor(fd));
#ifndef LATEFUSE_CORE_SHA256_H_
#define LATEFUSE_CORE_SHA256_H_

#include <string>

#include "absl/status/statusor.h"

namespace latefuse {

// Hashes the whole file behind `fd` from offset 0 (pread; the descriptor's
// offset is left alone). Hashing the descriptor, not the path, means the bytes
// hashed are the bytes loaded.
absl::StatusOr<std::string> Sha256OfDescriptor(int fd);

// Hashes the file at `path`.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

}  // namespace latefuse

#endif  // LATEFUSE_CORE_SHA256_H_
