#!/usr/bin/env bash
# The deploy checks catch what they are for: each one passes on the files we
# ship, and fails on a copy broken in one way (a package removed from or
# added to deploy/runtime-packages.txt, a misspelt option, environment
# variable or port in deploy/compose.yaml, a root USER or an extra package in
# deploy/Dockerfile, an unknown compose key). ctest deploy_check_selftest.
#   tools/deploy-check/selftest.sh BIN_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir=$(cd "${1:?usage: selftest.sh BIN_DIR}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
here=tools/deploy-check
failures=0

expect() { # expect pass|fail NAME COMMAND...
  local want=$1 name=$2
  shift 2
  local got=pass
  "$@" >"$tmp/out" 2>&1 || got=fail
  if [ "$got" != "$want" ]; then
    echo "FAIL: $name: expected $want, got $got"
    sed 's/^/  | /' "$tmp/out"
    failures=$((failures + 1))
  else
    echo "ok: $name ($got: $(grep -v '^check_' "$tmp/out" | head -1))"
  fi
}

# Replaces the first match of a fixed string (python: no regex surprises).
mutate() { # mutate SRC DST OLD NEW
  python3 - "$@" <<'EOF'
import sys
src, dst, old, new = sys.argv[1:]
text = open(src, encoding="utf-8").read()
if old not in text:
    sys.exit(f"selftest: '{old}' not in {src}")
open(dst, "w", encoding="utf-8").write(text.replace(old, new, 1))
EOF
}

pkgs() {
  python3 $here/check_runtime_packages.py --bin-dir "$bin_dir" \
    --dockerfile deploy/Dockerfile --list "$1"
}
expect pass "runtime packages as shipped" pkgs deploy/runtime-packages.txt
grep -v '^libzmq5$' deploy/runtime-packages.txt >"$tmp/missing.txt"
expect fail "runtime list without libzmq5" pkgs "$tmp/missing.txt"
cp deploy/runtime-packages.txt "$tmp/extra.txt"
echo libcurl4 >>"$tmp/extra.txt"
expect fail "runtime list with an unneeded libcurl4" pkgs "$tmp/extra.txt"

inv() { python3 $here/compose_invocations.py --check --bin-dir "$bin_dir" "$1"; }
expect pass "compose invocations as shipped" inv deploy/compose.yaml
mutate deploy/compose.yaml "$tmp/c1.yaml" "--api_port=26657" "--api_prot=26657"
expect fail "compose with --api_prot" inv "$tmp/c1.yaml"
mutate deploy/compose.yaml "$tmp/c2.yaml" "CONSORTIA_LOG_LEVEL:" "CONSORTIA_LOGLEVEL:"
expect fail "compose with CONSORTIA_LOGLEVEL" inv "$tmp/c2.yaml"
mutate deploy/compose.yaml "$tmp/c3.yaml" "127.0.0.1:9102/healthz" "127.0.0.1:9112/healthz"
expect fail "compose health check on a port nothing serves" inv "$tmp/c3.yaml"
mutate deploy/compose.yaml "$tmp/c4.yaml" "--metrics_port=9100" "--metrics_port=70000"
expect fail "compose with --metrics_port out of range" inv "$tmp/c4.yaml"
mutate deploy/compose.yaml "$tmp/c5.yaml" "--init-only" "--init-onyl"
expect fail "compose init with consortia localnet --init-onyl" inv "$tmp/c5.yaml"
mutate deploy/compose.yaml "$tmp/c6.yaml" "[consortia-storage," "[consortia-storag,"
expect fail "compose with a misspelt binary" inv "$tmp/c6.yaml"

df() { python3 $here/check_dockerfile.py "$1"; }
expect pass "Dockerfile as shipped" df deploy/Dockerfile
mutate deploy/Dockerfile "$tmp/D1" "USER 10001:10001" "USER root"
expect fail "Dockerfile with USER root" df "$tmp/D1"
mutate deploy/Dockerfile "$tmp/D2" "--no-install-recommends \\" \
  "--no-install-recommends curl \\"
expect fail "Dockerfile installing curl beside the list" df "$tmp/D2"
mutate deploy/Dockerfile "$tmp/D3" "scripts/install-deps.sh --build-only &&" "true &&"
expect fail "Dockerfile without install-deps.sh" df "$tmp/D3"

if command -v docker-compose >/dev/null; then
  mutate deploy/compose.yaml "$tmp/c7.yaml" "read_only: true" "readonly: true"
  expect fail "docker-compose config -q on an unknown key" \
    docker-compose -f "$tmp/c7.yaml" config -q
fi

if [ "$failures" -ne 0 ]; then
  echo "selftest: $failures check(s) did not behave"
  exit 1
fi
echo "selftest: every check passes on the shipped files and fails on the broken copies"
