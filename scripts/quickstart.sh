#!/usr/bin/env bash
# The README's main job: installs dependencies (apt), builds, and runs songlines on its built-in default input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec ./build/songlines quickstart "$@"
