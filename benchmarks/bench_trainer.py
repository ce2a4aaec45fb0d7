"""The proxy trainer (nasty.train) vs a plain DataLoader + torch loop, side by side.

Same net (a small CNN compiled from a genotype), same Fashion-MNIST subset, same optimizer
(SGD, nesterov momentum 0.9, weight decay, label smoothing), same batch size and threads.
Repetitions are interleaved (ours, plain, plain, ours, ...) so machine noise hits both alike.
Images/s counts training only (evaluation excluded), as nasty.train reports it.

The plain loop is the textbook one: a TensorDataset of already-normalized float images
(no per-sample transforms, which would make it slower), DataLoader(shuffle=True), NCHW.

    .venv/bin/python benchmarks/bench_trainer.py [--images 6000] [--epochs 1] [--reps 3] [--record]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

import nasty
from bench_cost import record
from nasty.compile import compile_genotype
from nasty.data import load_dataset, to_device_tensors
from nasty.train import TrainConfig, train

NET = """net small_cnn input 1x28x28 classes 10
stem  conv3x3 c=16 bn relu
stage conv3x3 c=32 bn relu maxpool2x2
stage conv3x3 c=64 bn relu maxpool2x2
head  gap flatten fc c=classes
"""


def model(seed):
    torch.manual_seed(seed)
    return compile_genotype(nasty.parse(NET))


def ours(data, idx, val_idx, epochs, batch, lr, device):
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, seed=0, device=device, threads=None)
    r = train(model(0), data, cfg, idx, val_idx)
    return r.images_per_s, r.final_val_acc


def plain(data, idx, val_idx, epochs, batch, lr, device):
    from torch.utils.data import DataLoader, TensorDataset
    x, y = to_device_tensors(data.train_x[idx], data.train_y[idx], "cpu", data.mean, data.std, channels_last=False)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)
    m = model(0).to(device).train()
    decay = [p for p in m.parameters() if p.ndim > 1]
    rest = [p for p in m.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                          lr=lr, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    seen, seconds = 0, 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(xb)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t
    m.eval()
    xv, yv = to_device_tensors(data.train_x[val_idx], data.train_y[val_idx], device, data.mean, data.std,
                               channels_last=False)
    with torch.no_grad():
        acc = (m(xv).argmax(1) == yv).float().mean().item()
    return seen / seconds, acc


def run(images=6000, epochs=1, reps=3, batch=64, lr=0.05, device=None, data_dir=None):
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(2 if device == "cpu" else torch.get_num_threads())
    data = load_dataset("fashion-mnist", data_dir)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(data.train_y))
    idx, val_idx = np.sort(perm[:images]), np.sort(perm[images:images + 1000])
    small = idx[:batch * 4]
    ours(data, small, val_idx[:200], 1, batch, lr, device)       # warm-up both paths
    plain(data, small, val_idx[:200], 1, batch, lr, device)
    a, b, acc_a, acc_b = [], [], [], []
    for i in range(reps):
        order = [(ours, a, acc_a), (plain, b, acc_b)] if i % 2 == 0 else [(plain, b, acc_b), (ours, a, acc_a)]
        for fn, ips, accs in order:
            v, acc = fn(data, idx, val_idx, epochs, batch, lr, device)
            ips.append(v)
            accs.append(acc)
    A, B = statistics.median(a), statistics.median(b)
    return [f"proxy trainer vs plain DataLoader loop: small CNN (3 conv, 16-32-64), Fashion-MNIST {images} "
            f"images x {epochs} epoch(s), batch {batch}, {device}, median of {reps} interleaved",
            f"nasty.train         {A:8.0f} images/s  (val acc {statistics.median(acc_a):.3f})",
            f"DataLoader + loop   {B:8.0f} images/s  (val acc {statistics.median(acc_b):.3f})",
            f"ratio nasty/plain   {A / B:8.2f}x  (target >= 1x on CPU, >= 2x on GPU)"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    lines = run(a.images, a.epochs, a.reps, a.batch, device=a.device, data_dir=a.data_dir)
    print("\n".join(lines))
    if a.record:
        record("Proxy trainer vs plain DataLoader loop (benchmarks/bench_trainer.py)", lines)


if __name__ == "__main__":
    sys.exit(main())
