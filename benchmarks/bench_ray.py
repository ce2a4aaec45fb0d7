"""Ray Tune overhead and concurrency: real `nasty search` runs of N trials of about 10 s each.

Two runs, one after the other, on the same space and data (benchmarks/spaces/steady_cnn.py,
a CNN whose members all train for about as long):
  1. one trial at a time, each with every CPU          (--cpus-per-trial = all cores)
  2. as many concurrent trials as cores, one CPU each  (--cpus-per-trial 1)

For each run it reports, from the run folder's own timings:
  - overhead in Tune: the fraction of the trial slots' time (from the first trial's dispatch
    to the last one's completion, times the slots) not spent inside nasty.train. This is what
    Ray Tune, the actor, the compile and the reporting cost per trial.
  - overhead end to end: the same over the whole `search()` call, which adds the fixed costs
    (start Ray, load the data, preflight, and the winner's test-set evaluation at the end).
  - per-trial overhead: median total_s - train_s (dispatch to completion, minus training).
and the speedup of the concurrent run over the serial one in trials per hour.

    .venv/bin/python benchmarks/bench_ray.py [--trials 20] [--subset 6000] [--record]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench_cost import record
from nasty.search.runner import search
from nasty.search.settings import Settings

SPACE = str(Path(__file__).parent / "spaces" / "steady_cnn.py")


def one_run(trials, subset, epochs, cpus, runs_dir, name):
    s = Settings(space=SPACE, trials=trials, epochs=epochs, subset=subset, val_subset=1000, batch_size=128,
                 lr=0.05, seed=1, runs_dir=runs_dir, name=name, cpus_per_trial=cpus, gpus_per_trial=0)
    t = time.perf_counter()
    summary = search(s, console=Console(file=io.StringIO()), live=False)
    wall = time.perf_counter() - t
    recs = [json.loads(l) for l in (Path(runs_dir) / name / "trials.jsonl").read_text().splitlines()]
    ok = [r for r in recs if r["status"] == "ok"]
    assert len(ok) == trials, f"{len(ok)} of {trials} trials finished: {[r.get('reason') for r in recs]}"
    tm = [r["timings"] for r in ok]
    slots = max(1, int((os.cpu_count() or 1) // cpus))
    train = sum(t["train_s"] for t in tm)
    span = max(t["completed"] for t in tm) - min(t["dispatched"] for t in tm)
    return {"cpus_per_trial": cpus, "slots": slots, "wall_s": wall, "span_s": span, "train_s": train,
            "median_train_s": statistics.median(t["train_s"] for t in tm),
            "median_overhead_s": statistics.median(t["total_s"] - t["train_s"] for t in tm),
            "overhead_tune": 1 - train / (slots * span), "overhead_end_to_end": 1 - train / (slots * wall),
            "trials_per_hour": trials / wall * 3600, "best_val": (summary.get("best") or {}).get("val_acc")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--subset", type=int, default=15000, help="training images per trial (sets the ~10 s)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    runs = tempfile.mkdtemp(prefix="nasty-bench-ray-")
    serial = one_run(a.trials, a.subset, a.epochs, float(cores), runs, "serial")
    concurrent = one_run(a.trials, a.subset, a.epochs, 1.0, runs, "concurrent")
    lines = [f"{a.trials} trials, {a.epochs} epoch(s) of {a.subset} Fashion-MNIST images + 1000 validated, "
             f"{cores} cores"]
    for label, r in (("1 at a time", serial), (f"{concurrent['slots']} concurrent", concurrent)):
        lines.append(f"{label:>14} ({r['cpus_per_trial']:g} CPU/trial): wall {r['wall_s']:6.1f} s, "
                     f"train {r['median_train_s']:5.1f} s/trial (median), overhead {r['median_overhead_s']:4.2f} "
                     f"s/trial; not training: {r['overhead_tune']:5.1%} in Tune, "
                     f"{r['overhead_end_to_end']:5.1%} end to end; {r['trials_per_hour']:.0f} trials/h")
    lines.append(f"speedup of {concurrent['slots']} concurrent over 1 at a time: "
                 f"{serial['wall_s'] / concurrent['wall_s']:.2f}x trials/hour")
    print("\n".join(lines))
    if a.record:
        record(f"bench_ray.py --trials {a.trials} --subset {a.subset}", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
