#!/usr/bin/env bash
# Shows that the layering check can fail: a tree where services/api includes
# a mempool header, and one where common/ includes a service, are rejected.
set -euo pipefail
check="$(cd "$(dirname "$0")/.." && pwd)/scripts/check-layering.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/services/{api,mempool,consensus,storage} "$tmp/common"
touch "$tmp"/services/{api,mempool,consensus,storage}/CMakeLists.txt
echo '#include "consortia/api/api_service.h"' > "$tmp/services/api/ok.cc"
"$check" "$tmp" >/dev/null || { echo "a clean tree was rejected"; exit 1; }
echo '#include "consortia/mempool/mempool_service.h"' > "$tmp/services/api/bad.cc"
if "$check" "$tmp" >/dev/null; then echo "service-to-service include not caught"; exit 1; fi
rm "$tmp/services/api/bad.cc"
echo '#include "services/storage/src/ledger.h"' > "$tmp/common/bad.h"
if "$check" "$tmp" >/dev/null; then echo "common-to-service include not caught"; exit 1; fi
echo "layering self-test passed"
