#!/usr/bin/env bash
# The README's test command: installs dependencies (apt), builds, and runs the whole CTest suite.
# CUDA tests skip themselves when no GPU is present. Extra arguments go to ctest (e.g. -L features).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR=${SONGLINES_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${SONGLINES_TEST_JOBS:-$(nproc)}" --timeout 1500 "$@"
