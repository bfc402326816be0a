#!/usr/bin/env bash
# The README's test command: installs dependencies (apt) and the librosa part of the peers' venv (scripts/peers.sh
# with SONGLINES_PEERS_SET=oracle, unless a set is given: librosa for the oracle tests; SONGLINES_PEERS=0 leaves it out, and the oracle tests then skip, or fail where CI is set), builds,
# and runs the whole CTest suite. CUDA tests skip themselves when no GPU is present. Extra arguments go to ctest
# (e.g. -L features).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${SONGLINES_PEERS:-1}" != "0" ]; then
  t=$(date +%s)
  SONGLINES_PEERS_SET=${SONGLINES_PEERS_SET:-oracle} bash scripts/peers.sh
  echo "test: peers venv took $(( $(date +%s) - t )) s"
fi
bash scripts/build.sh
BUILD_DIR=${SONGLINES_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${SONGLINES_TEST_JOBS:-$(nproc)}" --timeout 1500 "$@"
