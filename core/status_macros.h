// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
//
// Shaped like Abseil's newer macros so that moving to them later is a rename:
//
//   absl::StatusOr<Plan> MakePlan(const PipelineConfig& config) {
//     LATEFUSE_RETURN_IF_ERROR(CheckDirs(config));
//     LATEFUSE_ASSIGN_OR_RETURN(Plugin plugin, Resolve(config.combiner));
//     ...
//   }
#ifndef LATEFUSE_CORE_STATUS_MACROS_H_
#define LATEFUSE_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LATEFUSE_RETURN_IF_ERROR(expr)                                    \
  do {                                                                    \
    if (absl::Status latefuse_status_ = (expr); !latefuse_status_.ok()) { \
      return latefuse_status_;                                            \
    }                                                                     \
  } while (false)

#define LATEFUSE_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define LATEFUSE_STATUS_MACROS_CONCAT_(x, y) \
  LATEFUSE_STATUS_MACROS_CONCAT_INNER_(x, y)

#define LATEFUSE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = *std::move(statusor)

#define LATEFUSE_ASSIGN_OR_RETURN(lhs, rexpr)                            \
  LATEFUSE_ASSIGN_OR_RETURN_IMPL_(                                       \
      LATEFUSE_STATUS_MACROS_CONCAT_(latefuse_statusor_, __LINE__), lhs, \
      rexpr)

#endif  // LATEFUSE_CORE_STATUS_MACROS_H_
