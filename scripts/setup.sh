#!/usr/bin/env bash
# Installs every system dependency of songlines with apt. Idempotent: packages already present are skipped,
# and nothing is fetched from outside Debian's archive.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev
  libgloo-dev            # headers of the Gloo that libtorch links: data-parallel training over c10d (docs/scaling.md)
  libopenblas0-pthread   # libtorch-dev's BLAS: without it libblas.so.3 is the reference BLAS, ~10x slower training
  libblas-dev            # cblas.h for the device engine's host backend (GEMM through cblas; OpenBLAS at run time)
  libhdf5-dev hdf5-tools
  nlohmann-json3-dev libcxxopts-dev
  libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsndfile1-dev libflac-dev libsoxr-dev libfftw3-dev libpng-dev
  libsqlite3-dev
  python3
  ccache
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
