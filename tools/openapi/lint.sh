#!/usr/bin/env bash
# Lints services/api/openapi.json with Redocly CLI (tools/openapi/redocly.yaml:
# every finding is an error). Run by ctest (openapi_lint); needs the tools
# that scripts/install-deps.sh installs (npm ci in this directory).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null; then
  echo "openapi lint: node not found: run scripts/install-deps.sh" >&2
  exit 1
fi
if [ ! -x node_modules/.bin/redocly ]; then
  echo "openapi lint: tools/openapi/node_modules missing: run scripts/install-deps.sh" >&2
  exit 1
fi
# The lock file may name no other source than the npm registry.
if grep -o '"resolved": "[^"]*"' package-lock.json | grep -v '"https://registry.npmjs.org/'; then
  echo "openapi lint: package-lock.json resolves packages outside registry.npmjs.org" >&2
  exit 1
fi
# No telemetry and no update check (CI reaches only the package registries).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec node_modules/.bin/redocly lint --format=stylish --config redocly.yaml \
  ../../services/api/openapi.json
