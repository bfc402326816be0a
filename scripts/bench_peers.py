#!/usr/bin/env python3
"""The peers of `songlines bench features --peers`, which runs this with the peers' venv (scripts/peers.sh),
pinned by taskset to the core the C++ figures were measured on, in the same run, on the same audio file.

    .venv-peers/bin/python scripts/bench_peers.py --audio FILE [--repeats R] [--only PEER,...]

Prints one JSON object: for each peer (librosa, torchaudio, nnAudio, essentia) its version and, per feature,
the median wall and process CPU seconds of R calls after one warm-up call (with min and max), or why the peer
could not run.
Every peer runs on one thread (torch.set_num_threads(1); OMP/OpenBLAS threads come from the environment the
bench sets). Features follow songlines' names (docs/features.md); each peer computes them its own way:
  librosa     every feature at librosa 0.11's defaults, as songlines defines them, plus load (librosa.load at
              22050 Hz: decode, downmix, soxr_hq resample), seed_four (mfcc, chroma_stft, spectral_contrast,
              tonnetz) and extract (load + seed_four: what `songlines extract` does per file)
  torchaudio  stft_mag, melspectrogram, mfcc (Spectrogram, MelSpectrogram with Slaney scale and norm, MFCC)
  nnAudio     stft_mag, melspectrogram, cqt_mag (252 bins, 36 per octave): its 1-D convolution front ends
  essentia    load (MonoLoader at 22050 Hz), and per frame in standard mode (Windowing + Spectrum, MelBands,
              MFCC, SpectralContrast): its own definitions of the features, not librosa's
The signal the features run on is librosa.load's output (22050 Hz mono float32), the same samples for all.
"""
import argparse
import json
import sys
import time

import numpy as np

SR = 22050
N_FFT = 2048
HOP = 512


def spread(times):
    times = sorted(times)
    m = len(times)
    med = times[m // 2] if m % 2 else 0.5 * (times[m // 2 - 1] + times[m // 2])
    return med, times[0], times[-1]


def timed(fn, repeats):
    """Wall seconds and the process's CPU seconds of `repeats` calls after one warm-up call (filterbanks, kernels,
    JIT, plans): median, min, max of each. CPU time is what the ratios use: on a shared machine it does not count
    the time spent waiting for the core."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    w, c = spread(wall), spread(cpu)
    return {"median_s": w[0], "min_s": w[1], "max_s": w[2], "cpu_median_s": c[0], "cpu_min_s": c[1], "cpu_max_s": c[2]}


def run_librosa(path, y, repeats):
    import librosa
    f = librosa.feature

    def seed_four(yy):
        f.mfcc(y=yy, sr=SR, n_mfcc=20)
        f.chroma_stft(y=yy, sr=SR)
        f.spectral_contrast(y=yy, sr=SR)
        f.tonnetz(y=yy, sr=SR)

    calls = {
        "load": lambda: librosa.load(path, sr=SR),
        "stft_mag": lambda: np.abs(librosa.stft(y)),
        "melspectrogram": lambda: f.melspectrogram(y=y, sr=SR),
        "mfcc": lambda: f.mfcc(y=y, sr=SR, n_mfcc=20),
        "chroma_stft": lambda: f.chroma_stft(y=y, sr=SR),
        "spectral_contrast": lambda: f.spectral_contrast(y=y, sr=SR),
        # tuning=None: the tuning is estimated, as songlines' cqt_mag does
        "cqt_mag": lambda: np.abs(librosa.cqt(y, sr=SR, n_bins=252, bins_per_octave=36, tuning=None)),
        "chroma_cqt": lambda: f.chroma_cqt(y=y, sr=SR),
        "tonnetz": lambda: f.tonnetz(y=y, sr=SR),
        "seed_four": lambda: seed_four(y),
        "extract": lambda: seed_four(librosa.load(path, sr=SR)[0]),
    }
    return librosa.__version__, {k: timed(v, repeats) for k, v in calls.items()}


def run_torchaudio(path, y, repeats):
    import torch
    import torchaudio
    import torchaudio.transforms as T
    torch.set_num_threads(1)
    x = torch.from_numpy(y)
    mel_kw = dict(n_fft=N_FFT, hop_length=HOP, n_mels=128, power=2.0, norm="slaney", mel_scale="slaney",
                  center=True, pad_mode="constant")
    spec = T.Spectrogram(n_fft=N_FFT, hop_length=HOP, power=1.0, center=True, pad_mode="constant")
    mel = T.MelSpectrogram(sample_rate=SR, **mel_kw)
    mfcc = T.MFCC(sample_rate=SR, n_mfcc=20, melkwargs=mel_kw)
    with torch.inference_mode():
        out = {"stft_mag": timed(lambda: spec(x), repeats), "melspectrogram": timed(lambda: mel(x), repeats),
               "mfcc": timed(lambda: mfcc(x), repeats)}
    return f"{torchaudio.__version__} (torch {torch.__version__})", out


def run_nnaudio(path, y, repeats):
    import torch
    import nnAudio
    from nnAudio import features as nf
    torch.set_num_threads(1)
    x = torch.from_numpy(y)[None, :]
    stft = nf.STFT(n_fft=N_FFT, hop_length=HOP, sr=SR, output_format="Magnitude", pad_mode="constant", verbose=False)
    mel = nf.MelSpectrogram(sr=SR, n_fft=N_FFT, n_mels=128, hop_length=HOP, pad_mode="constant", verbose=False)
    cqt = nf.CQT(sr=SR, hop_length=HOP, fmin=32.70319566257483, n_bins=252, bins_per_octave=36,
                 pad_mode="constant", output_format="Magnitude", verbose=False)
    with torch.inference_mode():
        out = {"stft_mag": timed(lambda: stft(x), repeats), "melspectrogram": timed(lambda: mel(x), repeats),
               "cqt_mag": timed(lambda: cqt(x), repeats)}
    return getattr(nnAudio, "__version__", "?"), out


def run_essentia(path, y, repeats):
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    window = es.Windowing(type="hann", size=N_FFT, normalized=False)
    spectrum = es.Spectrum(size=N_FFT)
    melbands = es.MelBands(numberBands=128, sampleRate=SR, inputSize=N_FFT // 2 + 1, type="power",
                           highFrequencyBound=SR / 2)
    mfcc = es.MFCC(numberCoefficients=20, numberBands=128, sampleRate=SR, inputSize=N_FFT // 2 + 1,
                   highFrequencyBound=SR / 2)
    contrast = es.SpectralContrast(frameSize=N_FFT, sampleRate=SR, numberBands=6)

    def per_frame(fn):
        for frame in es.FrameGenerator(y, frameSize=N_FFT, hopSize=HOP, startFromZero=False):
            fn(spectrum(window(frame)))

    out = {
        "load": timed(lambda: es.MonoLoader(filename=path, sampleRate=SR)(), repeats),
        "stft_mag": timed(lambda: per_frame(lambda s: None), repeats),
        "melspectrogram": timed(lambda: per_frame(melbands), repeats),
        "mfcc": timed(lambda: per_frame(mfcc), repeats),
        "spectral_contrast": timed(lambda: per_frame(contrast), repeats),
    }
    return essentia.__version__, out


PEERS = {"librosa": run_librosa, "torchaudio": run_torchaudio, "nnAudio": run_nnaudio, "essentia": run_essentia}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audio", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", default=",".join(PEERS))
    args = p.parse_args()
    import librosa
    y, _ = librosa.load(args.audio, sr=SR)
    result = {"audio": args.audio, "seconds": len(y) / SR, "repeats": args.repeats, "peers": {}}
    for name in args.only.split(","):
        try:
            version, times = PEERS[name](args.audio, y, max(1, args.repeats))
            result["peers"][name] = {"version": version, "features": times}
        except Exception as e:  # noqa: BLE001  (a peer that does not install or run is reported, not fatal)
            result["peers"][name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(f"bench_peers: {name} done", file=sys.stderr, flush=True)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
