#!/usr/bin/env bash
# Checks that the given static libraries reference no ZeroMQ symbol (libzmq's
# zmq_* functions, cppzmq's zmq:: classes): the proof bundle library must be
# usable by `consortia verify` and client libraries without ZeroMQ
# (common/include/consortia/proof_bundle.h). Prints each offending symbol and
# exits 1 if there is any. Usage: check-no-zmq.sh ARCHIVE...
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: $0 ARCHIVE..." >&2; exit 2; }
bad=0
for archive in "$@"; do
  [ -f "$archive" ] || { echo "no such archive: $archive" >&2; exit 2; }
  # Undefined and defined symbols alike: an inlined cppzmq class is defined
  # in the archive, and calls zmq_* which is undefined there.
  if hits=$(nm -C "$archive" 2>/dev/null | grep -iE '(^| )(zmq_|zmq::)'); then
    echo "$archive references ZeroMQ:"
    echo "$hits" | head -20
    bad=1
  fi
done
if [ "$bad" -ne 0 ]; then
  echo "no-ZeroMQ check FAILED"
  exit 1
fi
echo "no-ZeroMQ check passed: $*"
