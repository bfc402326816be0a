#!/usr/bin/env bash
# Builds the libtorch-dependent targets (songlines and the test executables of the stages on libtorch: train,
# generate, runs, experiments, cli) against libtorch 2.x, the one inside PyPI's torch wheel in the peers' venv
# (scripts/peers.sh), in build-torch2/ (or $SONGLINES_TORCH2_BUILD_DIR), then runs those stages' tests there
# (not the slow ones; extra arguments go to ctest). The default build (build/) stays on Debian's libtorch 1.13;
# README.md says why. ccache (CMakeLists.txt) makes a second run cheap. .ci/run calls this after scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/peers.sh
VENV=${SONGLINES_PEERS_VENV:-$PWD/.venv-peers}
TORCH_ROOT=$("$VENV/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
BUILD_DIR=${SONGLINES_TORCH2_BUILD_DIR:-build-torch2}
JOBS=${SONGLINES_JOBS:-$(nproc)}
# CMAKE_PREFIX_PATH is the wheel's torch folder, not only its share/cmake: TorchConfig.cmake's find_library calls
# then take the wheel's lib/ before Debian's libtorch 1.13 in /usr/lib (Torch_DIR alone links a mix of the two).
# The wheel is a CUDA build: its CMake config needs the CUDA toolkit (on every machine of this project's kind)
# and, with no GPU to probe, an architecture list. songlines' own CUDA engine does not use libtorch: left out.
# -rpath-link: the linker must resolve libtorch_cuda's NCCL (and cuSPARSELt, NVSHMEM, cuFile) from the venv's
# nvidia-* wheels, not from the CUDA toolkit's older copies; at run time libtorch_cuda's own RPATH finds them.
NV_LIBS=$(ls -d "$TORCH_ROOT"/../nvidia/*/lib 2>/dev/null | paste -sd: -)
# SONGLINES_TORCH_UNITY: the files including <torch/torch.h> are compiled a few to a translation unit
# (cmake/TorchUnity.cmake): 2.x's headers are then parsed 10 times instead of 35.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSONGLINES_CUDA=OFF -DSONGLINES_TORCH_UNITY=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_ROOT" -DTORCH_CUDA_ARCH_LIST=9.0 \
  ${NV_LIBS:+-DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$NV_LIBS"} > "$BUILD_DIR.configure.log" 2>&1 ||
  { cat "$BUILD_DIR.configure.log"; exit 1; }
rm -f "$BUILD_DIR.configure.log"
TARGETS=(songlines test_train test_generate test_runs test_experiments test_cli)
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"
built=$(date +%s)
version=$("$BUILD_DIR/songlines" --version 2>&1 | head -1 || true)
echo "build-torch2: built against torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') in $((built - start)) s ($version)"
cd "$BUILD_DIR"
# One OpenMP thread per test process: ctest runs $JOBS of them on $JOBS cores, and the wheel's libgomp spins at
# its barriers; with 2 threads per process on a busy machine, a tiny VAE's 250 steps took minutes instead of
# seconds (~90% of the time in libgomp's barrier wait, perf). Set OMP_NUM_THREADS to override.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --output-on-failure -j "$JOBS" --timeout 1500 -L '^(train|generate|runs|experiments|cli)$' -LE slow "$@"
echo "build-torch2: build and tests took $(( $(date +%s) - start )) s"
