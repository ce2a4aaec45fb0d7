"""Genotype-compiled nets vs the torchvision references: forward+backward time, side by side.

For each net, builds our compiled module and torchvision's, ports the weights (so both
compute the same function), and times a training step (forward, loss, backward) on the
same batch, alternating the two every repetition so machine noise hits both alike.
Reports our_time / reference_time (target: <= 1.02, i.e. no overhead from the genotype
route) three ways: the ratio of the medians, the median of the per-repetition ratios (each
pair timed back to back, so slow spells of a shared machine cancel), and the ratio of the
fastest steps. With --compile, both are also wrapped in torch.compile.

    .venv/bin/python benchmarks/bench_compiled.py [--nets resnet50,mobilenet_v2,efficientnet_b0]
        [--batch 32] [--reps 5] [--compile] [--record] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import nasty
from bench_cost import record


CLOCK = time.perf_counter


def step_time(model, x, y, device):
    t = CLOCK()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return CLOCK() - t


def bench(name, batch, reps, device, compile_):
    ours = nasty.build(name).to(device).train()
    ref = nasty.zoo.reference(name).to(device).train()
    nasty.port_weights(ref, ours)
    ours, ref = ours.to(memory_format=torch.channels_last), ref.to(memory_format=torch.channels_last)
    if compile_:
        ours, ref = torch.compile(ours), torch.compile(ref)
    g = nasty.zoo.get(name)
    x = torch.randn((batch,) + tuple(g.input), device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    for m in (ours, ref):            # warm-up (and compilation)
        step_time(m, x, y, device)
    a, b = [], []
    for i in range(reps):
        pair = [(ours, a), (ref, b)] if i % 2 == 0 else [(ref, b), (ours, a)]
        for m, acc in pair:
            m.zero_grad(set_to_none=True)
            acc.append(step_time(m, x, y, device))
    return a, b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default="resnet50,mobilenet_v2,efficientnet_b0")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (time.process_time), blind to time stolen by other "
                         "tenants of a shared VM")
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    lines = [f"clock: {a.clock}",f"train step (fwd+loss+bwd), batch {a.batch}, {a.device}, channels_last, {a.reps} interleaved "
             "repetitions; ratios ours/torchvision: of medians | median of paired | of minima"]
    modes = [False, True] if a.compile else [False]
    for name in a.nets.split(","):
        for c in modes:
            ours, ref = bench(name, a.batch, a.reps, a.device, c)
            mo, mr = statistics.median(ours), statistics.median(ref)
            paired = statistics.median(o / r for o, r in zip(ours, ref))
            lines.append(f"{name:<16}{' compiled' if c else ' eager   '}  nasty {mo * 1e3:8.1f} ms  "
                         f"torchvision {mr * 1e3:8.1f} ms  ratio {mo / mr:5.3f} | {paired:5.3f} | "
                         f"{min(ours) / min(ref):5.3f}")
            print(lines[-1], flush=True)
    if a.record:
        record("Compiled genotype nets vs torchvision (benchmarks/bench_compiled.py)", lines)


if __name__ == "__main__":
    sys.exit(main())
