#!/usr/bin/env bash
# The README's main job: installs dependencies (apt), builds, and runs experiments/quickstart.json end to end:
# synthesized audio with a place signal -> features -> location models (GOM table and the synthesized audio)
# -> a small coordinate-conditioned VAE -> samples for places -> runs/quickstart/report.html.
# A few minutes on a CPU; on a GPU box the same command uses the GPU. Extra arguments go to `songlines run`
# (e.g. --set vae.train.steps=2000, --run-dir DIR, --device cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Only the songlines binaries (and the full one behind it), not the tests: 122 of the 177 compilations.
SONGLINES_BUILD_TARGETS=songlines bash scripts/build.sh
BUILD_DIR=${SONGLINES_BUILD_DIR:-build}
# A rerun with the same settings skips the parts already finished; other settings need another --run-dir.
# Relative paths (--run-dir, and path values given with --set) are relative to the repository root, where this
# script runs; paths inside experiments/quickstart.json are relative to experiments/ (docs/experiments.md).
if [[ " $* " == *" --run-dir "* || " $* " == *" --run-dir="* ]]; then
  exec "$BUILD_DIR/songlines" run experiments/quickstart.json "$@"
fi
exec "$BUILD_DIR/songlines" run experiments/quickstart.json --run-dir runs/quickstart "$@"
