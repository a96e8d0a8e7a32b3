#!/usr/bin/env bash
# Quick start, step 1: installs what is missing (Debian 12 packages), builds
# the Release binaries, and starts a local network on 127.0.0.1 with its data
# in ./localnet. Prints the API address and an example; Ctrl-C stops it.
# Options are passed to `consortia localnet` (see `build/bin/consortia help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
exec build/bin/consortia localnet --dir localnet "$@"
