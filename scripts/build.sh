#!/usr/bin/env bash
# Configures and builds songlines into build/ (or $SONGLINES_BUILD_DIR). Extra arguments go to cmake.
# SONGLINES_BUILD_TARGETS: the targets to build (space-separated; default all, the tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SONGLINES_BUILD_DIR:-build}
JOBS=${SONGLINES_JOBS:-$(nproc)}
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" "$@"
fi
TARGETS=()
[ -n "${SONGLINES_BUILD_TARGETS:-}" ] && TARGETS=(--target ${SONGLINES_BUILD_TARGETS})
cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGETS[@]}"
