#!/usr/bin/env python3
"""PyTorch (Python API) peer of `songlines bench train`: the same models, data shapes, batch size, optimiser and
loss as songlines' C++ trainer (models/location_model.cpp, models/location_heads.cpp sphere head,
src/train/trainer.cpp), timed per epoch. Called by the C++ benchmark in the same run; prints one JSON object.

  mlp:      GOM table (68 features, standardised), Linear(68,H) ReLU Dropout -> Linear(H,3) -> normalise
  temporal: synthetic frames [tracks x frames x 45], random crops of `crop` frames per track and epoch,
            2 x (Conv1d k=5 'same' + ReLU), attention pooling over frames, dropout, Linear(C,3) -> normalise
Loss: great-circle angle 2 asin(|p - y| / 2) (chord smoothed by 1e-8), Adam with weight decay.
"""
import argparse, json, math, statistics, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def unit(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], 1).astype(np.float32)


def gc_loss(p, y):
    chord = torch.sqrt(((p - y) ** 2).sum(1) + 1e-8)
    return (2.0 * torch.asin(torch.clamp(chord / 2.0, 0.0, 1.0 - 1e-7))).mean()


class Mlp(nn.Module):
    def __init__(self, d, hidden, dropout):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, 3)

    def forward(self, x):
        return F.normalize(self.head(self.body(x)), dim=1, eps=1e-8)


class Temporal(nn.Module):
    def __init__(self, d, channels, layers, kernel, dropout):
        super().__init__()
        mods, w = [], d
        for _ in range(layers):
            mods += [nn.Conv1d(w, channels, kernel, padding=kernel // 2), nn.ReLU()]
            w = channels
        self.body = nn.Sequential(*mods)
        self.attention = nn.Linear(w, 1)
        self.dropout = dropout
        self.head = nn.Linear(w, 3)

    def forward(self, x):  # x [B, T, D]
        h = self.body(x.transpose(1, 2)).transpose(1, 2)
        a = torch.softmax(self.attention(h), 1)
        pooled = F.dropout((a * h).sum(1), self.dropout, self.training)
        return F.normalize(self.head(pooled), dim=1, eps=1e-8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=["mlp", "temporal"], required=True)
    ap.add_argument("--gom", help="GOM table (mlp)")
    ap.add_argument("--tracks", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=1300)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    if a.task == "mlp":
        t = np.loadtxt(a.gom, delimiter=",", dtype=np.float64)
        x = t[:, :-2]
        x = ((x - x.mean(0)) / np.where(x.std(0) > 1e-12, x.std(0), 1.0)).astype(np.float32)
        X, Y = torch.from_numpy(x), torch.from_numpy(unit(t[:, -2], t[:, -1]))
        model = Mlp(X.shape[1], 256, 0.3)
    else:
        d = 45
        frames = rng.standard_normal((a.tracks * a.frames, d), dtype=np.float32)
        mean, scale = frames.mean(0), frames.std(0)
        Y = torch.from_numpy(unit(rng.uniform(-60, 70, a.tracks), rng.uniform(-180, 180, a.tracks)))
        model = Temporal(d, 64, 2, 5, 0.2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    n = Y.shape[0]
    model.train()
    times = []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        for b in range(0, n, a.batch):
            idx = order[b:b + a.batch]
            if a.task == "mlp":
                xb = X.index_select(0, idx)
            else:
                tr = idx.numpy()
                starts = (np.random.default_rng(epoch * 7919 + b).random(len(tr)) * (a.frames - a.crop + 1)).astype(np.int64)
                rows = (tr * a.frames + starts)[:, None] + np.arange(a.crop)[None, :]
                xb = torch.from_numpy((frames[rows] - mean) / scale)
            yb = Y.index_select(0, idx)
            opt.zero_grad()
            loss = gc_loss(model(xb), yb)
            loss.backward()
            opt.step()
            loss.item()
        times.append(time.perf_counter() - t0)
    warm = times[1:] if len(times) > 1 else times
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "epoch_seconds": warm,
                      "median_s": statistics.median(warm)}))


if __name__ == "__main__":
    sys.exit(main())
