#!/usr/bin/env bash
# Run THERE (the GPU machine: nvcc 13, CMake, ninja, PyTorch with CUDA; no network): unpack the .deb files that
# scripts/gpu-fetch-debs.sh downloaded into a private prefix, build songlines with the CUDA engine against that
# prefix and PyTorch's libtorch, run the test suite, the CUDA tests under compute-sanitizer, and the benchmarks.
# Logs go to $OUT (the device tool's result folder) when set, else build-gpu/logs.
#
#   device tool: run(command="bash scripts/gpu-build-and-test.sh", carry=[".gpu-debs"], timeout_s=600)
#
# Steps can be picked with STEPS="build test sanitize bench" (default: all). Keep Dockerfile.cuda in step.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEBS=${SONGLINES_GPU_DEBS:-$ROOT/.gpu-debs}
PREFIX=${SONGLINES_DEPS_PREFIX:-/tmp/songlines-deps}
BUILD=${SONGLINES_GPU_BUILD:-$ROOT/build-gpu}
LOGS=${OUT:-$BUILD/logs}
STEPS=${STEPS:-build test sanitize bench}
ARCH=x86_64-linux-gnu
JOBS=$(nproc)
mkdir -p "$LOGS"
log() { echo "gpu-build-and-test: $*" | tee -a "$LOGS/summary.txt"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

# ---- dependencies: dpkg -x every .deb into the prefix (no root, nothing in / is touched) --------------------
if [ ! -f "$PREFIX/.unpacked" ]; then
  ls "$DEBS"/*.deb >/dev/null 2>&1 || { log "no .deb files in $DEBS: run scripts/gpu-fetch-debs.sh here and carry .gpu-debs"; exit 1; }
  mkdir -p "$PREFIX"
  for d in "$DEBS"/*.deb; do dpkg -x "$d" "$PREFIX"; done
  # Debian's absolute symlinks (e.g. libfoo.so -> /usr/lib/...) must point into the prefix.
  find "$PREFIX" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in /*) [ -e "$PREFIX$target" ] && ln -sfn "$PREFIX$target" "$link" ;; esac  # else: a base-system library the machine has
  done
  touch "$PREFIX/.unpacked"
fi
export PKG_CONFIG_LIBDIR="$PREFIX/usr/lib/$ARCH/pkgconfig:$PREFIX/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
export LD_LIBRARY_PATH="$PREFIX/usr/lib/$ARCH:$PREFIX/usr/lib/$ARCH/hdf5/serial:${LD_LIBRARY_PATH:-}"

# ---- libtorch from the machine's PyTorch (CUDA build), cuDNN from its pip package ----------------------------
TORCH_CMAKE=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
TORCH_LIB=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
CUDNN_DIR=$(python3 -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)
export LD_LIBRARY_PATH="$TORCH_LIB:${CUDNN_DIR:+$CUDNN_DIR/lib:}$LD_LIBRARY_PATH"
log "torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), nvcc $(nvcc --version | tail -1)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOGS/summary.txt" || true

if want build; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSONGLINES_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr;$TORCH_CMAKE" \
    -DHDF5_C_INCLUDE_DIR="$PREFIX/usr/include/hdf5/serial" \
    -DHDF5_C_LIBRARY_hdf5="$PREFIX/usr/lib/$ARCH/hdf5/serial/libhdf5.so" \
    ${CUDNN_DIR:+-DCUDNN_INCLUDE_PATH="$CUDNN_DIR/include" -DCUDNN_LIBRARY_PATH="$CUDNN_DIR/lib"} \
    2>&1 | tee "$LOGS/configure.log"
  ninja -C "$BUILD" -j"$JOBS" 2>&1 | tee "$LOGS/build.log" | tail -5
  log "build ok"
fi

status=0
if want test; then
  (cd "$BUILD" && ctest --output-on-failure -j"$JOBS") > "$LOGS/ctest.log" 2>&1 || status=1
  tail -25 "$LOGS/ctest.log"
  log "ctest exit $status (the whole suite, CUDA instances included)"
fi

if want sanitize && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$BUILD/tests/test_features" \
      --gtest_filter='*Cuda*' > "$LOGS/sanitize_$tool.log" 2>&1 && r=0 || r=$?
    log "compute-sanitizer $tool exit $r"
    [ "$r" -eq 0 ] || status=1
  done
fi

if want bench; then
  "$BUILD/songlines" bench device-features --tracks 32 --seconds 180 --repeats 5 2>&1 | tee "$LOGS/bench_device_features.txt"
  log "bench device-features done"
  # Issue 18's GPU target (>= 1000x real time): the vocoder path beside NNLS + Griffin-Lim, on the GPU.
  "$BUILD/songlines" bench generate --seconds 60 --repeats 3 2>&1 | tee "$LOGS/bench_generate.txt"
  log "bench generate done"
fi
exit $status
