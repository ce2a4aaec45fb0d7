"""Search throughput: the main job (`nasty search --space nasnet --budget 600MFLOPs`, all other
settings at their defaults) run for real, reported as trials per hour.

On a machine with a CUDA GPU it runs the job once per --gpus-per-trial value (1, 0.5, 0.25:
one, two or four trials sharing the GPU) and prints them side by side; without one it runs
the CPU defaults once. Trained trials/hour counts trials that trained to the end; samples/hour
also counts the over-budget samples the analytic cost rejected without training.

    .venv/bin/python benchmarks/bench_search.py [--quick] [--gpus 1,0.5,0.25] [--record]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from bench_cost import record
from nasty.search.runner import search
from nasty.search.settings import Settings


def main_job(runs_dir, name, gpus, quick):
    extra = dict(trials=6, subset=1500, val_subset=500, epochs=1) if quick else {}
    s = Settings(space="nasnet", budget="600MFLOPs", runs_dir=runs_dir, name=name, gpus_per_trial=gpus, **extra)
    t = time.perf_counter()
    summary = search(s, console=Console(file=io.StringIO()), live=False)
    wall = time.perf_counter() - t
    cfg = json.loads((Path(runs_dir) / name / "config.json").read_text())
    n = summary["counts"]
    return {"gpus": gpus, "wall": wall, "ok": n["ok"], "rejected": n["rejected"],
            "all": sum(n.values()), "cfg": cfg, "best": summary.get("best"), "test": summary.get("test_acc"),
            "stop": summary.get("stop_reason")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="6 small trials instead of the defaults")
    ap.add_argument("--gpus", default="1,0.5,0.25", help="--gpus-per-trial values to compare on a GPU machine")
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    runs = tempfile.mkdtemp(prefix="nasty-bench-search-")
    settings = [float(g) for g in a.gpus.split(",")] if torch.cuda.is_available() else [0.0]
    lines = []
    if not torch.cuda.is_available():
        lines.append("no CUDA GPU on this machine: the CPU defaults only")
    for i, g in enumerate(settings):
        r = main_job(runs, f"main-{i}", g, a.quick)
        c = r["cfg"]
        best = r["best"] or {}
        lines.append(
            f"--gpus-per-trial {g:g} (cpus/trial {c['cpus_per_trial']:g}, {c['epochs']} epochs x {c['subset']} "
            f"images, time budget {c['time_budget']:.0f} s): {r['ok']} trained + {r['rejected']} over budget in "
            f"{r['wall']:.0f} s -> {r['ok'] / r['wall'] * 3600:.0f} trained trials/h, "
            f"{r['all'] / r['wall'] * 3600:.0f} samples/h; best val {best.get('val_acc') or 0:.4f}, "
            f"test {r['test'] or 0:.4f}, {(best.get('target') or {}).get('macs', 0) / 1e6:.0f}M MACs"
            + (f"; stopped because {r['stop']}" if r["stop"] else ""))
    print("\n".join(lines))
    if a.record:
        record(f"bench_search.py{' --quick' if a.quick else ''}", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
