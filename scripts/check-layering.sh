#!/usr/bin/env bash
# The layering rule of Consortia (DESIGN.md, STYLE.md rule 12):
#   - services/X includes no header of services/Y (Y != X);
#   - common/ includes nothing from services/, node/, cli/ or tests/.
# Services meet only through interfaces and message schemas in common/.
# Prints every violation and exits 1 if there is any. Argument: the tree to
# check (default: this repository).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

services=(api mempool consensus storage)
bad=0

for s in "${services[@]}"; do
  for other in "${services[@]}"; do
    [ "$s" = "$other" ] && continue
    # Includes of the other service's public headers or its source tree.
    if hits=$(grep -rnE "#include +[\"<](consortia/${other}/|services/${other}/|\.\./${other}/)" \
                "services/${s}" --include='*.h' --include='*.cc' 2>/dev/null); then
      echo "services/${s} includes services/${other}:"
      echo "$hits"
      bad=1
    fi
  done
  # A service's CMake must not link another service's library.
  for other in "${services[@]}"; do
    [ "$s" = "$other" ] && continue
    if grep -nE "consortia_${other}_service" "services/${s}/CMakeLists.txt" >/dev/null 2>&1; then
      echo "services/${s}/CMakeLists.txt links consortia_${other}_service"
      bad=1
    fi
  done
done

pattern="#include +[\"<](consortia/(api|mempool|consensus|storage)/|services/|node/|cli/|tests/)"
if hits=$(grep -rnE "$pattern" common --include='*.h' --include='*.cc' 2>/dev/null); then
  echo "common/ includes code outside common/:"
  echo "$hits"
  bad=1
fi

if [ "$bad" -ne 0 ]; then
  echo "layering check FAILED"
  exit 1
fi
echo "layering check passed: services are independent, common/ is self-contained"
