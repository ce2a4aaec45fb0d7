"""How long `nasty --version` and `nasty --help` take, and whether they import torch, for one or
more source trees side by side (alternating runs, so load changes hit every tree alike).

    python benchmarks/bench_startup.py /work/main .        # before (main) and after (this tree)

Each figure is the median wall time of --runs fresh interpreters (`python -m nasty.cli ARG`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# `python -m`/`-c` put the working folder first on sys.path: run from a folder holding no nasty,
# so that PYTHONPATH decides which tree is measured.
NEUTRAL = tempfile.gettempdir()


def once(tree: Path, arg: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nasty.cli", arg], env=env, stdout=subprocess.DEVNULL, check=True,
                   cwd=NEUTRAL)
    return time.perf_counter() - start


def imports_torch(tree: Path) -> bool:
    code = ("import contextlib, io, sys\nfrom nasty.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main(['--help'])\n"
            "    except SystemExit:\n        pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(tree)},
                         capture_output=True, text=True, check=True, cwd=NEUTRAL)
    return out.stdout.strip() == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times = {(t, a): [] for t in args.trees for a in ("--version", "--help")}
    for _ in range(args.runs):
        for key in times:
            times[key].append(once(*key))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.runs} runs each (median wall time)")
    for t in args.trees:
        print(f"{str(t):<30} --version {statistics.median(times[t, '--version']):.2f} s   "
              f"--help {statistics.median(times[t, '--help']):.2f} s   imports torch: {imports_torch(t)}")


if __name__ == "__main__":
    main()
