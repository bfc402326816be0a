#!/usr/bin/env python3
"""The peer of `songlines extract --jobs 1 --device cpu` (issue 16, bar A3): librosa 0.11 on the same files,
in-process, one after another: librosa.load(sr=22050, res_type='soxr_hq') and the seed's four features at their
defaults (mfcc, chroma_stft, spectral_contrast, tonnetz). A warm-up on 5 s of seeded noise first (numba's JIT and
librosa's caches), then wall and CPU time of the files. Needs an environment with librosa==0.11.0 (not the
product's); run it on one core with one thread, as the docs/benchmarks.md command does:
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 taskset -c 0 VENV/bin/python \
      scripts/bench_extract_librosa.py FOLDER
"""
import glob
import sys
import time

import librosa
import numpy as np


def features(y, sr):
    return (librosa.feature.mfcc(y=y, sr=sr), librosa.feature.chroma_stft(y=y, sr=sr),
            librosa.feature.spectral_contrast(y=y, sr=sr), librosa.feature.tonnetz(y=y, sr=sr))


def main():
    files = sorted(f for ext in ("flac", "wav", "ogg", "mp3") for f in glob.glob(f"{sys.argv[1]}/*.{ext}"))
    if not files:
        sys.exit(f"no audio files in {sys.argv[1]}")
    features(np.random.default_rng(0).standard_normal(5 * 22050).astype(np.float32), 22050)
    wall = {"load": 0.0, "features": 0.0}
    cpu = {"load": 0.0, "features": 0.0}
    seconds = 0.0
    for f in files:
        w0, c0 = time.perf_counter(), time.process_time()
        y, sr = librosa.load(f, sr=22050, res_type="soxr_hq")
        w1, c1 = time.perf_counter(), time.process_time()
        features(y, sr)
        w2, c2 = time.perf_counter(), time.process_time()
        wall["load"] += w1 - w0
        wall["features"] += w2 - w1
        cpu["load"] += c1 - c0
        cpu["features"] += c2 - c1
        seconds += len(y) / sr
    print(f"librosa {librosa.__version__}: {len(files)} files, {seconds:.0f} s of audio; "
          f"wall {sum(wall.values()):.2f} s (load {wall['load']:.2f}, features {wall['features']:.2f}); "
          f"cpu {sum(cpu.values()):.2f} s (load {cpu['load']:.2f}, features {cpu['features']:.2f})")


if __name__ == "__main__":
    main()
