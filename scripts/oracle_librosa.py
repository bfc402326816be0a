#!/usr/bin/env python3
"""Oracle for the `oracle` CTest label (tests/oracle): seeded random music-like signals of random lengths at
22.05, 44.1 and 48 kHz, mono and stereo, written as audio files, and what live librosa 0.11 computes from them.

    .venv-peers/bin/python scripts/oracle_librosa.py --out DIR [--seed S] [--cases N]

DIR/manifest.json lists the cases: the audio file, its rate and channels, and per output the file name, shape and
dtype of a raw little-endian array (C order). Outputs per case:
  load_22050   librosa.load(path, sr=22050)             decode, mean downmix, soxr_hq resample, ceil length
  load_16000   librosa.load(path, sr=16000)             the same to another rate (another resampling ratio)
  load_native  librosa.load(path, sr=None)              decode and downmix only
  features of load_22050, each librosa's default call (docs/features.md): stft_mag (|stft|), melspectrogram,
  mel_db (power_to_db of it), mfcc (n_mfcc 20), chroma_stft, spectral_contrast, cqt_mag (|cqt|, 252 bins, 36 per
  octave, tuning estimated as chroma_cqt does), chroma_cqt, tonnetz; and the two tuning estimates.
Written with a temporary name then renamed, manifest last: a DIR with a manifest is complete.
"""
import argparse
import json
import os
import sys

import numpy as np
import soundfile as sf

import librosa

RATES = (22050, 44100, 48000)
# (extension, soundfile subtype): what the files are written as; the C++ side decodes the same file.
FORMATS = ((".wav", "PCM_16"), (".wav", "FLOAT"), (".flac", "PCM_24"))


def music_like(rng, sr, seconds, channels):
    """Notes of a random scale with harmonics and attack/decay envelopes, a bass line, a little noise and a
    click track; channels differ by panning and a small delay (the downmix must average them)."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    out = np.zeros((channels, n))
    tonic = 110.0 * 2 ** (rng.integers(0, 12) / 12) * 2 ** (rng.uniform(-0.4, 0.4) / 12)  # a little detuned
    scales = ([0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10], [0, 2, 4, 7, 9])
    scale = scales[int(rng.integers(0, len(scales)))]
    beat = rng.uniform(0.15, 0.5)
    pos = 0.0
    while pos < seconds:
        dur = beat * (1, 1, 2, 0.5)[int(rng.integers(0, 4))]
        degree = rng.integers(0, len(scale) * 2)
        f0 = tonic * 2 ** ((12 * (degree // len(scale)) + scale[degree % len(scale)]) / 12 + rng.integers(1, 3))
        i0, i1 = int(pos * sr), min(n, int((pos + dur) * sr))
        if i1 > i0:
            tt = t[i0:i1] - pos
            env = np.minimum(1.0, tt / 0.01) * np.exp(-tt * rng.uniform(2, 8))
            note = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * h * f0 * tt + rng.uniform(0, 2 * np.pi))
                       for h in range(1, 6))
            pan = rng.uniform(0, 1)
            for c in range(channels):
                gain = (pan if c == 0 else 1 - pan) if channels == 2 else 1.0
                out[c, i0:i1] += 0.3 * gain * env * note
        pos += dur
    bass = tonic / 2 * 2 ** (np.floor(t / (4 * beat)) % 3 * 5 / 12)
    out += 0.15 * np.sin(2 * np.pi * np.cumsum(bass) / sr)
    clicks = (np.floor(t / beat) != np.floor((t - 1 / sr) / beat)).astype(float)
    out += 0.2 * np.convolve(clicks, np.exp(-np.arange(int(0.005 * sr)) / (0.001 * sr)))[:n]
    out += 0.01 * rng.standard_normal(out.shape)
    if channels == 2:
        delay = int(rng.integers(1, 40))
        out[1] = np.concatenate([np.zeros(delay), out[1, :-delay]])
    return (0.8 * out / np.max(np.abs(out))).T  # (n, channels)


def save(out_dir, name, array, manifest_entry):
    a = np.ascontiguousarray(array)
    dtype = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}[a.dtype]
    path = os.path.join(out_dir, name)
    with open(path + ".tmp", "wb") as f:
        f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    os.replace(path + ".tmp", path)
    manifest_entry[name.split(".")[1]] = {"file": name, "shape": list(a.shape), "dtype": dtype}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--cases", type=int, default=6)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    cases = []
    for i in range(args.cases):
        sr = RATES[i % len(RATES)]             # every rate, each mono and stereo within the first six cases
        channels = 1 + (i // len(RATES)) % 2
        seconds = float(rng.uniform(0.3, 9.0))
        ext, subtype = FORMATS[int(rng.integers(0, len(FORMATS)))]
        y = music_like(rng, sr, seconds, channels)
        audio = os.path.join(args.out, f"case{i}{ext}")
        sf.write(audio + ".tmp" + ext, y, sr, subtype=subtype)
        os.replace(audio + ".tmp" + ext, audio)
        entry = {"case": i, "audio": os.path.basename(audio), "sample_rate": sr, "channels": channels,
                 "subtype": subtype, "seconds": seconds, "arrays": {}}
        arrays = entry["arrays"]
        y22, _ = librosa.load(audio, sr=22050)
        save(args.out, f"case{i}.load_22050.f32", y22, arrays)
        save(args.out, f"case{i}.load_16000.f32", librosa.load(audio, sr=16000)[0], arrays)
        save(args.out, f"case{i}.load_native.f32", librosa.load(audio, sr=None)[0], arrays)
        s = 22050
        save(args.out, f"case{i}.stft_mag.f32", np.abs(librosa.stft(y22)), arrays)
        mel = librosa.feature.melspectrogram(y=y22, sr=s)
        save(args.out, f"case{i}.melspectrogram.f32", mel, arrays)
        save(args.out, f"case{i}.mel_db.f32", librosa.power_to_db(mel), arrays)
        save(args.out, f"case{i}.mfcc.f32", librosa.feature.mfcc(y=y22, sr=s, n_mfcc=20), arrays)
        save(args.out, f"case{i}.chroma_stft.f32", librosa.feature.chroma_stft(y=y22, sr=s), arrays)
        save(args.out, f"case{i}.spectral_contrast.f64", librosa.feature.spectral_contrast(y=y22, sr=s), arrays)
        tuning_cqt = librosa.estimate_tuning(y=y22, sr=s, bins_per_octave=36)
        cqt = librosa.cqt(y22, sr=s, n_bins=252, bins_per_octave=36, tuning=tuning_cqt)
        save(args.out, f"case{i}.cqt_mag.f32", np.abs(cqt), arrays)
        save(args.out, f"case{i}.chroma_cqt.f32", librosa.feature.chroma_cqt(y=y22, sr=s), arrays)
        save(args.out, f"case{i}.tonnetz.f64", librosa.feature.tonnetz(y=y22, sr=s), arrays)
        entry["tuning_chroma_stft"] = float(librosa.estimate_tuning(S=np.abs(librosa.stft(y22)) ** 2, sr=s,
                                                                    bins_per_octave=12))
        entry["tuning_cqt"] = float(tuning_cqt)
        cases.append(entry)
        print(f"oracle: case {i}: {sr} Hz, {channels} ch, {seconds:.2f} s, {subtype}{ext}", flush=True)
    manifest = {"seed": args.seed, "librosa": librosa.__version__, "numpy": np.__version__,
                "soxr": __import__("soxr").__version__, "cases": cases}
    path = os.path.join(args.out, "manifest.json")
    with open(path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
