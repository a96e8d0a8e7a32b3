#!/usr/bin/env bash
# Quick start, step 2: installs what is missing, then builds and runs the whole
# test suite:
#   1. Release build (g++): the end-to-end tests, the checks of shipped files
#      and the consensus simulations with all their seeds (ctest).
#   2. ASan + UBSan build (clang 14): the unit and integration tests. Each
#      test is built once: the release build leaves these out.
#   3. The libFuzzer targets, each for FUZZ_SECONDS (default 20: a smoke run
#      of 15 targets within the CI budget) from its seed
#      corpus, one per core at a time.
# Exits non-zero on the first failing stage. TEST_STAGES=release,sanitize,fuzz
# picks stages.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=${TEST_STAGES:-release,sanitize,fuzz}
fuzz_seconds=${FUZZ_SECONDS:-20}
jobs=${JOBS:-$(nproc)}
export CTEST_OUTPUT_ON_FAILURE=1

# Seconds each stage took, for the CI budget (45 minutes in all).
stage_done() { echo "== stage $1 done at ${SECONDS}s"; }

scripts/install-deps.sh
stage_done install

if [[ $stages == *release* ]]; then
  echo "== release build and tests"
  CONSORTIA_UNIT_TESTS=OFF scripts/build.sh release
  ctest --test-dir build -j "$jobs" --timeout 600
  stage_done release
fi

if [[ $stages == *sanitize* ]]; then
  echo "== ASan + UBSan build and tests"
  scripts/build.sh sanitize
  # -LE static: the checks of files we ship (chart, compose, alert rules,
  # OpenAPI lint) ran in the release stage and build no C++ of their own.
  # CONSORTIA_SIM_MAX_SEEDS: the consensus simulations run at most 60 seeds
  # each here (every seed in the release stage); the sanitizers look for
  # memory errors and undefined behaviour, which a few seeds exercise.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  CONSORTIA_SIM_MAX_SEEDS=60 \
    ctest --test-dir build-asan -j "$jobs" -L unit -LE static --timeout 900
  stage_done sanitize
fi

# One fuzz target for fuzz_seconds from its seed corpus; on a failure, prints
# the reproducer and returns non-zero.
fuzz_one() {
  local target=$1 name work log seed
  name=$(basename "$target")
  work=$(mktemp -d)
  for seed in "common/fuzz/corpus/$name" "common/fuzz/corpus/${name#fuzz_}"; do
    if [ -d "$seed" ]; then cp -r "$seed"/. "$work"/; fi
  done
  log="$work.log"
  if ! "$target" -max_total_time="$fuzz_seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "$name found a failure; the reproducer is in the lines above"
    return 1
  fi
  echo "-- $name $(grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" |
    tr -s ' \n' ' ')"
  rm -rf "$work" "$log"
}

if [[ $stages == *fuzz* ]]; then
  echo "== fuzzing, ${fuzz_seconds}s per target, $jobs at a time"
  scripts/build.sh sanitize
  export -f fuzz_one
  export fuzz_seconds
  # Each fuzzer is single-threaded: run one per core. xargs exits non-zero
  # when any of them failed.
  printf '%s\n' build-asan/bin/fuzz_* |
    xargs -P "$jobs" -I{} bash -c 'fuzz_one "$1"' _ {}
  stage_done fuzz
fi
echo "all test stages passed: $stages"
