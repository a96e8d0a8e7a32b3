#!/usr/bin/env bash
# Installs every package Consortia needs to build, test and run, from Debian 12's
# own archive, and the npm packages of the browser test (tests/browser/, with
# npm ci from its package-lock.json). Idempotent: packages already present are
# skipped, and apt-get update runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev clang-format
  libzmq3-dev cppzmq-dev
  libhiredis-dev redis-server
  libabsl-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev prometheus
  libgtest-dev libgmock-dev libbenchmark-dev
  libsodium-dev libssl-dev
  librocksdb-dev
  libgoogle-perftools-dev
  nlohmann-json3-dev
  libboost1.81-dev
  curl python3 procps ccache
  yamllint shellcheck
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the browser test's driver; the machine's own (Node.js
# 20 or later) when it has them, else Debian's.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The explorer's browser test (tests/e2e/explorer_test.cc) drives chromium
# with playwright-core, pinned in tests/browser/package-lock.json. npm ci
# runs only when the lock file changed since the last install.
browser_dir="$(dirname "$0")/../tests/browser"
stamp="$browser_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$browser_dir/package-lock.json" -nt "$stamp" ]; then
  echo "install-deps: npm ci in tests/browser"
  (cd "$browser_dir" && npm ci --ignore-scripts --no-audit --no-fund)
fi
