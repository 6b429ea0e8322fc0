#!/usr/bin/env bash
# Configures and builds one CMake preset (default: cpu) after installing what is missing.
# Usage: scripts/build.sh [preset] [cmake --build args...]
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$STRATA_ROOT"
preset="${1:-cpu}"
shift || true
scripts/install-deps.sh
cmake --preset "$preset" > /dev/null
cmake --build --preset "$preset" -j "$STRATA_JOBS" "$@"
