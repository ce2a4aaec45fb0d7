"""All the side-by-side benchmarks in one command; ratios printed and appended to RESULTS.md.

  (a) genotype-compiled nets vs torchvision, train step          (bench_compiled.py)
  (b) analytic cost vs build + FlopCounterMode (cpu and meta)     (bench_cost.py)
  (c) the proxy trainer vs a plain DataLoader + torch loop         (bench_trainer.py)
  (d) Ray Tune overhead and 2-concurrent vs 1 speed-up            (bench_ray.py)
  (e) search throughput of the main job                            (bench_search.py)

    .venv/bin/python benchmarks/run_all.py            # full sizes (tens of minutes on a 2-core CPU)
    .venv/bin/python benchmarks/run_all.py --quick    # CI-sized: smaller nets, batches and repetitions
    add --no-record to print only

Each benchmark interleaves its repetitions, so the ratios come from one run, side by side.
The entry in RESULTS.md carries the date, machine and versions.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_compiled  # noqa: E402
import bench_cost  # noqa: E402
import bench_ray  # noqa: E402
import bench_search  # noqa: E402
import bench_trainer  # noqa: E402
from bench_cost import record  # noqa: E402

# each benchmark: one or more argument lists
QUICK = {
    "cost": [["--net", "mobilenet_v2", "--reps", "3"], ["--space", "nasnet", "--samples", "2", "--reps", "1"]],
    "compiled": [["--nets", "mobilenet_v2", "--batch", "8", "--reps", "5"]],
    "trainer": [["--images", "2000", "--reps", "3"]],
    "ray": [["--trials", "4", "--subset", "2000"]],
    "search": [["--quick"]],
}
FULL = {
    "cost": [["--net", "resnet50", "--reps", "7"], ["--space", "nasnet", "--samples", "10", "--reps", "3"]],
    "compiled": [["--nets", "resnet50,mobilenet_v2,efficientnet_b0", "--batch", "32", "--reps", "5"]],
    "trainer": [["--images", "6000", "--reps", "3"]],
    "ray": [["--trials", "20", "--subset", "15000"]],
    "search": [[]],
}
MODULES = {"compiled": bench_compiled, "cost": bench_cost, "trainer": bench_trainer, "ray": bench_ray,
           "search": bench_search}


class _Tee(io.StringIO):
    def write(self, s):
        sys.__stdout__.write(s)
        sys.__stdout__.flush()
        return super().write(s)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI-sized runs")
    ap.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    ap.add_argument("--only", help=f"comma-separated subset of: {','.join(MODULES)}")
    a = ap.parse_args(argv)
    sizes = QUICK if a.quick else FULL
    chosen = a.only.split(",") if a.only else list(MODULES)
    unknown = [c for c in chosen if c not in MODULES]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(MODULES)}")
    lines = []
    for name in chosen:
        for args in sizes[name]:
            print(f"== {name} ({' '.join(args)})", flush=True)
            t = time.perf_counter()
            out = _Tee()
            with contextlib.redirect_stdout(out):
                MODULES[name].main(args)
            lines.append(f"[{name}] {' '.join(args)}  ({time.perf_counter() - t:.0f} s)")
            lines += ["  " + l for l in out.getvalue().splitlines()]
    if not a.no_record:
        record(f"benchmarks/run_all.py{' --quick' if a.quick else ''}: " + ", ".join(chosen), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
