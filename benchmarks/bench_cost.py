"""Analytic cost vs counting with torch, measured side by side in one run.

For a genotype (default: zoo resnet50) it times, interleaved over repetitions:
  A. nasty.cost(g)                                  (analytic: no torch modules)
  B. nasty.build(g) + FlopCounterMode forward, CPU  (what counting with torch costs)
  C. the same on the meta device                    (torch's cheapest counting)
checks that all three counts agree exactly, and prints the ratios B/A and C/A.

    .venv/bin/python benchmarks/bench_cost.py [--net resnet50] [--reps 7] [--record]

--record appends the result to benchmarks/RESULTS.md with date, machine and versions.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import nasty


def analytic(g):
    c = nasty.cost(g)
    return c.params, c.macs


def torch_count(g, device):
    with torch.device(device):
        m = nasty.build(g).eval()
    x = torch.zeros((1,) + tuple(g.input), device=device)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(x)
    return sum(p.numel() for p in m.parameters()), fc.get_total_flops() // 2


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="resnet50")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    g = nasty.resolve(a.net)
    # warm-up: imports, caches, first-call overheads on every path
    analytic(g), torch_count(g, "cpu"), torch_count(g, "meta")
    ta, tb, tc = [], [], []
    for _ in range(a.reps):           # interleaved, so machine noise hits all three alike
        t, ra = timed(analytic, g)
        ta.append(t)
        t, rb = timed(torch_count, g, "cpu")
        tb.append(t)
        t, rc = timed(torch_count, g, "meta")
        tc.append(t)
        assert ra == rb == rc, f"counts differ: analytic {ra}, cpu {rb}, meta {rc}"
    A, B, C = (statistics.median(x) for x in (ta, tb, tc))
    lines = [
        f"net {a.net}: params {ra[0]:,}, MACs {ra[1]:,} — identical from all three methods",
        f"analytic nasty.cost            {A * 1e3:9.2f} ms (median of {a.reps})",
        f"build + FlopCounterMode (cpu)  {B * 1e3:9.2f} ms  -> analytic is {B / A:7.1f}x faster",
        f"build + FlopCounterMode (meta) {C * 1e3:9.2f} ms  -> analytic is {C / A:7.1f}x faster",
    ]
    print("\n".join(lines))
    if a.record:
        record("Analytic cost vs FlopCounterMode (benchmarks/bench_cost.py)", lines)


def machine() -> str:
    return (f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch threads; Python {platform.python_version()}, torch {torch.__version__}")


def record(title, lines):
    path = Path(__file__).parent / "RESULTS.md"
    if not path.exists():
        path.write_text("# Benchmark results\n\nEach entry: date, machine, versions, then the figures as measured "
                        "(ratios come from one run, side by side).\n")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    with path.open("a") as f:
        f.write(f"\n## {title} — {stamp}\n\n{machine()}\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    sys.exit(main())
