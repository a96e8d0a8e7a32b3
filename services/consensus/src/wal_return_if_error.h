// WAL_RETURN_IF_ERROR(expr): returns the absl::Status of expr from the
// enclosing function when it is not OK. Private to the WAL's sources.
#ifndef CONSORTIA_CONSENSUS_SRC_WAL_RETURN_IF_ERROR_H_
#define CONSORTIA_CONSENSUS_SRC_WAL_RETURN_IF_ERROR_H_

#include "absl/status/status.h"

#define WAL_RETURN_IF_ERROR(expr)              \
  do {                                         \
    absl::Status wal_status_ = (expr);         \
    if (!wal_status_.ok()) return wal_status_; \
  } while (0)

#endif  // CONSORTIA_CONSENSUS_SRC_WAL_RETURN_IF_ERROR_H_
