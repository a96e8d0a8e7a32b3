#!/usr/bin/env bash
# Installs every package Consortia needs to build, test and run, from Debian 12's
# own archive. Idempotent: packages already present are skipped, and apt-get
# update runs only when something is missing.
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
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
