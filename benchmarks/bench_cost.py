"""Analytic cost vs counting with torch (and fvcore, if installed), side by side in one run.

For genotypes (a zoo net, default resnet50; or --space NAME --samples K random members of a
search space, as a search costs them) it times, interleaved over repetitions:
  A. nasty.cost(g)                                  (analytic: no torch modules)
  B. nasty.build(g) + FlopCounterMode forward, CPU  (what counting with torch costs)
  C. the same on the meta device                    (torch's cheapest counting)
  D. nasty.build(g) + fvcore FlopCountAnalysis, CPU (only if fvcore is installed)
checks that A, B and C agree exactly (params, MACs) and that fvcore's conv + linear count
equals our MACs (fvcore also adds batch-norm and pooling "flops", which we report apart),
and prints the ratios B/A, C/A, D/A of the summed median times. A is timed two ways: one call
between the torch counts (cold caches), and a loop of calls averaged, as timeit does for
sub-millisecond work (no cache survives from one call to the next: each call elaborates the
genotype from scratch). The ratios use the loop; the cold single call is printed beside it.

    .venv/bin/python benchmarks/bench_cost.py [--net resnet50 | --space nasnet --samples 10] [--reps 5]

--record appends the result to benchmarks/RESULTS.md with date, machine and versions.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import nasty

try:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # fvcore imports torch.jit.script
        from fvcore.nn import FlopCountAnalysis
except ImportError:          # optional: the comparison is skipped
    FlopCountAnalysis = None

FVCORE_MAC_OPS = {"conv", "linear", "addmm", "matmul", "bmm", "einsum"}


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


def fvcore_count(g):
    import warnings
    warnings.filterwarnings("ignore", category=FutureWarning)     # fvcore's torch.jit use
    m = nasty.build(g).eval()
    fa = FlopCountAnalysis(m, torch.zeros((1,) + tuple(g.input)))
    fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = fa.by_operator()
    macs = sum(v for k, v in by_op.items() if k in FVCORE_MAC_OPS)
    return sum(p.numel() for p in m.parameters()), macs, fa.total() - macs


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def timed_loop(fn, g, seconds=0.05):
    """Mean time per call over a loop of calls lasting about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while True:
        out = fn(g)
        n += 1
        t = time.perf_counter() - t0
        if t >= seconds:
            return t / n, out


def genotypes(a):
    if not a.space:
        return [(a.net, nasty.resolve(a.net))]
    from nasty.space import RandomTrial, load_space
    space = load_space(a.space)
    rng = random.Random(a.seed)
    out = []
    for i in range(a.samples):
        values, g = space.sample(RandomTrial(rng))
        out.append((f"{a.space}#{i}", g))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="resnet50")
    ap.add_argument("--space", help="time random members of this search space instead of --net")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-fvcore", action="store_true")
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    use_fv = FlopCountAnalysis is not None and not a.no_fvcore
    nets = genotypes(a)
    methods = {"analytic": analytic, "cpu": lambda g: torch_count(g, "cpu"),
               "meta": lambda g: torch_count(g, "meta")}
    if use_fv:
        methods["fvcore"] = fvcore_count
    med = {k: 0.0 for k in methods}
    med["analytic_cold"] = 0.0
    fv_extra = 0
    for name, g in nets:
        for fn in methods.values():      # warm-up: imports, caches, first-call overheads on every path
            fn(g)
        times = {k: [] for k in [*methods, "analytic_cold"]}
        for _ in range(a.reps):          # interleaved, so machine noise hits every method alike
            got = {}
            for k, fn in methods.items():
                t, got[k] = timed(fn, g)
                times["analytic_cold" if k == "analytic" else k].append(t)
                if k == "analytic":
                    t, _ = timed_loop(fn, g)
                    times[k].append(t)
            ra = got["analytic"]
            assert ra == got["cpu"] == got["meta"], f"{name}: counts differ: {got}"
            if use_fv:
                assert got["fvcore"][:2] == ra, f"{name}: fvcore conv+linear {got['fvcore'][:2]} != {ra}"
        for k in times:
            med[k] += statistics.median(times[k])
        if use_fv:
            fv_extra += got["fvcore"][2]
    what = (f"net {a.net}: params {ra[0]:,}, MACs {ra[1]:,}" if not a.space else
            f"{len(nets)} random members of space {a.space} (seed {a.seed}), at the target resolution")
    A = med["analytic"]
    lines = [f"{what} — params and MACs identical from every method",
             f"analytic nasty.cost            {A * 1e3:9.2f} ms (sum of medians of {a.reps}; per call in a "
             f"loop; one cold call: {med['analytic_cold'] * 1e3:.2f} ms)",
             f"build + FlopCounterMode (cpu)  {med['cpu'] * 1e3:9.2f} ms  -> analytic is {med['cpu'] / A:7.1f}x faster",
             f"build + FlopCounterMode (meta) {med['meta'] * 1e3:9.2f} ms  -> analytic is {med['meta'] / A:7.1f}x faster"]
    if use_fv:
        lines.append(f"build + fvcore (cpu)           {med['fvcore'] * 1e3:9.2f} ms  -> analytic is "
                     f"{med['fvcore'] / A:7.1f}x faster (fvcore adds {fv_extra:,} bn/pool flops we count apart)")
    else:
        lines.append("fvcore: not installed, not compared")
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
