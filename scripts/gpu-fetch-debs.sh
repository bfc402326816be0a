#!/usr/bin/env bash
# Run HERE (a Debian 12 machine with apt access): downloads, as .deb files, the build dependencies of songlines
# that the GPU machine lacks (it has nvcc, CMake, ninja and PyTorch, but no network and none of these), with
# their dependency closure minus the toolchain and the base system, into .gpu-debs/ (git-ignored).
# Then call the device tool with carry [".gpu-debs"] and run scripts/gpu-build-and-test.sh there.
# Nothing is installed here; apt-get download needs no root.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.gpu-debs
mkdir -p "$OUT"

ROOTS=(
  libhdf5-dev libsndfile1-dev libsoxr-dev libfftw3-dev nlohmann-json3-dev libcxxopts-dev
  libcurl4-openssl-dev libgtest-dev libgmock-dev libsqlite3-dev
)
# The GPU image brings its own C/C++ toolchain, libc and Python: never carry those (unpacked over them they
# would mix two distributions' runtimes).
EXCLUDE='^(libc6|libc6-dev|libc-dev-bin|libc-bin|linux-libc-dev|libgcc.*|libstdc\+\+.*|gcc.*|g\+\+.*|cpp.*|gfortran.*|libgfortran.*-dev|binutils.*|libbinutils|libctf.*|libgprofng.*|libsframe.*|libasan.*|libtsan.*|liblsan.*|libubsan.*|libhwasan.*|libitm.*|libquadmath.*-dev|libcc1.*|libisl.*|libmpc.*|libmpfr.*|libgmp.*|perl.*|libperl.*|python3.*|libpython3.*|debconf.*|dpkg.*|tar|coreutils|bash|dash|sed|grep|findutils|diffutils|util-linux.*|libcrypt.*|libselinux.*|libpcre2.*|libzstd1|zlib1g|libbz2-1.0|liblzma5|libtinfo6|libncurses.*|libsystemd.*|libudev.*|libcap.*|libacl1|libattr1|libaudit.*|libpam.*|libdb5.3|libsemanage.*|libsepol.*|libmd0|libbsd0|libffi8|libexpat1|libuuid1|libblkid1|libmount1|libsmartcols1|libgpg-error0|libgcrypt20|lsb-base|sensible-utils|init-system-helpers|mpi-default-.*|openmpi.*|libopenmpi.*|libhwloc.*|libfabric.*|libpmix.*|libibverbs.*|librdmacm.*|libpsm.*|libucx.*|libevent.*|libnuma.*|ibverbs-providers)$'

echo "gpu-fetch-debs: resolving the dependency closure of ${#ROOTS[@]} packages"
mapfile -t PKGS < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${ROOTS[@]}" | grep -v '^ ' | grep -v '^<' | sort -u | grep -Ev "$EXCLUDE")
echo "gpu-fetch-debs: ${#PKGS[@]} packages"
(cd "$OUT" && apt-get download "${PKGS[@]}" >/dev/null)
printf '%s\n' "${PKGS[@]}" > "$OUT/PACKAGES.txt"
du -sh "$OUT"
echo "gpu-fetch-debs: done; carry \"$OUT\" to the GPU machine (limit 64 MiB with the working tree)"
