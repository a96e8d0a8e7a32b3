#!/usr/bin/env bash
# Configures and builds one flavour of Consortia:
#   scripts/build.sh release   -> build/        (g++, Release)
#   scripts/build.sh sanitize  -> build-asan/   (clang 14 -O1, line tables only, ASan + UBSan, the
#                                                unit tests and the libFuzzer
#                                                targets; no e2e or benches)
# Extra arguments go to the build (for example a target name).
# CONSORTIA_UNIT_TESTS=OFF leaves the tests labelled only "unit" out of the
# release build (scripts/test.sh does: the sanitizer stage runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
shift || true
jobs=${JOBS:-$(nproc)}

case "$flavour" in
  release)
    dir=build
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      "-DCONSORTIA_UNIT_TESTS=${CONSORTIA_UNIT_TESTS:-ON}" >/dev/null
    ;;
  sanitize)
    dir=build-asan
    CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -G Ninja \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
      "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
      -DCONSORTIA_SANITIZE=ON \
      -DCONSORTIA_FUZZ=ON -DCONSORTIA_E2E=OFF >/dev/null
    ;;
  *)
    echo "usage: scripts/build.sh release|sanitize [target...]" >&2
    exit 2
    ;;
esac

if [ $# -gt 0 ]; then
  cmake --build "$dir" -j "$jobs" --target "$@"
else
  cmake --build "$dir" -j "$jobs"
fi
