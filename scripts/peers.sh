#!/usr/bin/env bash
# Makes the peers' virtual environment (git-ignored, default .venv-peers/ in the repository root, or
# $SONGLINES_PEERS_VENV): librosa 0.11.0 with soxr, torch (its libtorch is also what build-torch2/ links),
# torchaudio, nnAudio and essentia, from PyPI. For benchmarks (`songlines bench features --peers`), the oracle
# tests (CTest label oracle) and the libtorch 2.x build (scripts/build-torch2.sh) only: never for the product.
#
# librosa is required (the oracle tests need it): failing to install it fails this script. Every other peer is
# installed when it can be and reported otherwise. The result, which peers import and their versions, is written
# to $VENV/peers.json. A second run with the same pins only checks the imports (about 5 s).
#
# torch: PyPI's Linux wheel is a CUDA build whose dependencies are ~2.4 GB of nvidia-* wheels. The wheel is
# installed with --no-deps plus its pure-Python dependencies and the four CUDA libraries this machine's CUDA 13.0
# toolkit (in /usr/local/cuda, on every machine of this project's kind) does not provide at a recent enough
# version (cuFile, cuSPARSELt, NVSHMEM, NCCL): 1.05 GB instead of 3.0 GB (docs/benchmarks.md "Peers"). Where
# `import torch` still fails (no CUDA toolkit), the full dependency set is installed instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SONGLINES_PEERS_VENV:-$PWD/.venv-peers}
PY=${SONGLINES_PEERS_PYTHON:-python3}

# Pins (one place): torch 2.15.0's Requires-Dist gives the nvidia-* versions.
LIBROSA=(librosa==0.11.0 soxr==1.1.0 soundfile)
TORCH=torch==2.15.0
TORCH_PURE=(filelock "typing-extensions>=4.13.0" "setuptools>=77.0.3" "sympy>=1.13.3" "networkx>=2.5.1" jinja2
            "fsspec>=0.8.5")
TORCH_CUDA_MISSING=(nvidia-cufile==1.17.1.22 nvidia-cusparselt-cu13==0.8.1 nvidia-nvshmem-cu13==3.7.2
                    nvidia-nccl-cu13==2.30.7)
TORCHAUDIO=torchaudio==2.11.1
NNAUDIO=nnAudio==0.3.4
ESSENTIA=essentia==2.1b6.dev1389  # the newest with a CPython 3.11 wheel

# SONGLINES_PEERS_SET=oracle installs only librosa and soxr (what the oracle tests need: scripts/test.sh uses it);
# all (the default) every peer. A venv made for one set is remade for the other.
SET=${SONGLINES_PEERS_SET:-all}
case "$SET" in oracle|all) ;; *) echo "peers: SONGLINES_PEERS_SET=$SET: expected oracle or all" >&2; exit 2 ;; esac
stamp="$VENV/.songlines-peers-$SET-$(cat "$0" | sha1sum | cut -c1-12)"
log() { echo "peers: $*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }

if [ ! -f "$stamp" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

  t=$(date +%s)
  "${PIP[@]}" "${LIBROSA[@]}"
  log "librosa + soxr installed ($(elapsed "$t"))"
fi
if [ ! -f "$stamp" ] && [ "$SET" = all ]; then
  PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

  t=$(date +%s)
  if "${PIP[@]}" --no-deps "$TORCH" "${TORCH_CUDA_MISSING[@]}" && "${PIP[@]}" "${TORCH_PURE[@]}" &&
     "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    log "torch installed without the nvidia-* wheels the CUDA toolkit provides ($(elapsed "$t")); pip's" \
        "complaint above about torch's missing cuda-toolkit, cudnn and triton requirements is expected"
  else
    log "torch does not import with the CUDA toolkit's libraries: installing its full dependency set (~3 GB)"
    "${PIP[@]}" "$TORCH" || log "torch: install failed"
    log "torch installed ($(elapsed "$t"))"
  fi
  # The torch peers take the torch above (--no-deps: their `torch` requirement would otherwise pull its nvidia-*
  # dependencies back in); their own pure-Python dependencies are numpy and scipy, which librosa brought.
  t=$(date +%s)
  "${PIP[@]}" --no-deps "$TORCHAUDIO" || log "torchaudio: install failed"
  "${PIP[@]}" --no-deps "$NNAUDIO" || log "nnAudio: install failed"
  log "torchaudio, nnAudio ($(elapsed "$t"))"
  t=$(date +%s)
  "${PIP[@]}" "$ESSENTIA" || log "essentia: install failed"
  log "essentia ($(elapsed "$t"))"
fi

# Which peers import, with their versions (import errors are reported, not fatal, except librosa's).
"$VENV/bin/python" - "$VENV/peers.json" <<'EOF'
import importlib, json, sys
out = {}
for module, name in [("librosa", "librosa"), ("soxr", "soxr"), ("torch", "torch"), ("torchaudio", "torchaudio"),
                     ("nnAudio", "nnAudio"), ("essentia", "essentia")]:
    try:
        m = importlib.import_module(module)
        if module == "nnAudio":
            from nnAudio import features  # noqa: F401  (the transforms, which need torch)
        out[name] = getattr(m, "__version__", "?")
    except Exception as e:  # noqa: BLE001
        out[name] = None
        print(f"peers: {name} does not import: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
if out.get("torch"):
    import torch
    out["torch_cmake_prefix_path"] = torch.utils.cmake_prefix_path
    out["torch_cxx11_abi"] = bool(torch._C._GLIBCXX_USE_CXX11_ABI)
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(out, f, indent=1)
import os
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("peers: " + ", ".join(f"{k} {v}" for k, v in out.items() if k in
      ("librosa", "soxr", "torch", "torchaudio", "nnAudio", "essentia")))
sys.exit(0 if out.get("librosa") and out.get("soxr") else 1)
EOF
touch "$stamp"
log "ready: $VENV ($(du -sh "$VENV" | cut -f1), $(elapsed "$t0"))"
