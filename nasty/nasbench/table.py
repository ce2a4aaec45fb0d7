"""The benchmark table: every network of the nb201mini space trained once with one fixed
recipe (`build_table`, `nasty bench build`), and read back (`load_table`). The table that
ships with nasty (table.json beside this file) was built with RECIPE on the 2-core
development machine; benchmarks/nasbench/README.md says how.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from ..errors import NastyError, brief
from ..searchspaces.nb201mini import EDGES, OPS, WIDTH, arch_genotype, arch_str, live_edges
from . import all_archs

TABLE = resources.files(__package__) / "table.json"    # the table shipped in the package

RECIPE = {
    "dataset": "fashion-mnist",
    "val_fraction": 0.1,           # stratified split of the 60k training images, seed 0
    "split_seed": 0,
    "train_subset": 5000,          # training images per architecture (seeded subset of the 54k)
    "val_subset": 4000,            # validation images (seeded subset of the 6k held out)
    "test_subset": 4000,           # test images (seeded subset of the 10k test set)
    "epochs": 3,
    "batch_size": 128,
    "lr": 0.1,
    "schedule": "onecycle",
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "seed": 0,
    "threads": 1,
    "width": WIDTH,                # C: channels of the first cell
}


def machine_name() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} {platform.machine()} {cpu} ({os.cpu_count()} cores)"


def build_table(out_dir, recipe: dict | None = None, limit: int | None = None,
                device: str = "cpu", log=print) -> dict:
    """Train every distinct network of the space once; write table.json/.csv and build_info.json.

    Progress is appended to `partial.jsonl` as it happens, so an interrupted build
    resumes where it stopped. `limit` trains only the first N distinct networks
    (for tests); the table is then incomplete and says so.
    """
    import numpy as np
    import torch

    from ..cost import cost
    from ..compile import compile_genotype
    from ..data import load_dataset, split_train_val, to_device_tensors
    from ..trainer import TrainConfig, evaluate, train

    recipe = {**RECIPE, **(recipe or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(recipe["threads"]))
    data = load_dataset(recipe["dataset"])
    train_idx, val_idx = split_train_val(data, recipe["val_fraction"], seed=recipe["split_seed"])
    rng = np.random.default_rng(recipe["seed"])
    test_idx = np.sort(rng.choice(len(data.test_y), size=min(recipe["test_subset"], len(data.test_y)),
                                  replace=False))
    x_test, y_test = to_device_tensors(data.test_x[test_idx], data.test_y[test_idx], device,
                                       data.mean, data.std)
    cfg = TrainConfig(epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
                      weight_decay=recipe["weight_decay"], label_smoothing=recipe["label_smoothing"],
                      schedule=recipe["schedule"], subset=recipe["train_subset"],
                      val_subset=recipe["val_subset"], seed=recipe["seed"], device=device,
                      threads=int(recipe["threads"]))

    archs = all_archs()
    groups: dict[tuple, list] = {}
    for a in archs:
        groups.setdefault(live_edges(a), []).append(a)
    distinct = list(groups)
    if limit is not None:
        distinct = distinct[:limit]

    partial = out / "partial.jsonl"
    done: dict[str, dict] = {}
    for r in read_progress(partial):
        if r.get("recipe") == _recipe_key(recipe) and isinstance(r.get("live"), str) and not row_problem(
                {**r, "ops": list(OPS[:1]) * len(EDGES)}):
            done[r["live"]] = r
    log(f"bench build: {len(archs)} cells, {len(groups)} distinct networks, "
        f"{len(done)} already trained; recipe {json.dumps(recipe)}")
    t_start = time.perf_counter()
    with partial.open("a") as f:
        for k, live in enumerate(distinct):
            key = arch_str(live)
            if key in done:
                continue
            g = arch_genotype(live, recipe["width"])
            c = cost(g)
            t0 = time.perf_counter()
            model = compile_genotype(g)
            res = train(model, data, cfg, train_idx, val_idx)
            model.to(memory_format=torch.channels_last)
            test_acc = evaluate(model, x_test, y_test)
            row = {"live": key, "val_acc": res.final_val_acc, "test_acc": test_acc,
                   "val_curve": [m["val_acc"] for m in res.history],     # per epoch: the multi-fidelity view
                   "params": c.params, "macs": c.macs, "train_seconds": round(time.perf_counter() - t0, 3),
                   "recipe": _recipe_key(recipe)}
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[key] = row
            el = time.perf_counter() - t_start
            log(f"[{k + 1}/{len(distinct)}] {key} val {row['val_acc']:.4f} test {test_acc:.4f} "
                f"macs {c.macs:,} {row['train_seconds']:.1f}s (elapsed {el / 60:.1f} min)")

    rows = []
    for live, members in groups.items():
        r = done.get(arch_str(live))
        if r is None:
            continue
        for a in members:
            rows.append({"arch": arch_str(a), "ops": list(a), "live": arch_str(live),
                         "val_acc": r["val_acc"], "test_acc": r["test_acc"],
                         **({"val_curve": r["val_curve"]} if "val_curve" in r else {}),
                         "params": r["params"], "macs": r["macs"], "train_seconds": r["train_seconds"]})
    rows.sort(key=lambda r: r["arch"])
    info = {"space": "nb201mini", "ops": list(OPS), "edges": [list(e) for e in EDGES],
            "cells": len(archs), "distinct_networks": len(groups), "rows": len(rows),
            "complete": len(rows) == len(archs), "recipe": recipe,
            "train_seconds_total": round(sum(r["train_seconds"] for r in done.values()), 1),
            "wall_seconds_this_session": round(time.perf_counter() - t_start, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_name(), "torch": torch.__version__, "device": device,
            "command": "nasty bench build"}
    (out / "table.json").write_text(json.dumps({"info": info, "rows": rows}, indent=0) + "\n")
    with (out / "table.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "live", "val_acc", "test_acc", "params", "macs"])
        for r in rows:
            w.writerow([r["arch"], r["live"], f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}",
                        r["params"], r["macs"]])
    (out / "build_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"bench build: wrote {len(rows)} rows to {out / 'table.json'} "
        f"(training time {info['train_seconds_total'] / 60:.1f} min)")
    return info


def read_progress(path: Path) -> list[dict]:
    """The records of a progress file a benchmark appends to (partial.jsonl, runs.jsonl). A last line
    torn by a kill mid-write (no newline) is cut, so that the next record starts on a line of its
    own; any other line that is not a JSON object is a one-line error naming it."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError:
            r = None
        if not isinstance(r, dict):
            raise NastyError(f"{path}: line {n} is not a record ({brief(line)}); delete that line (its work is "
                             "redone) or the file (all of it is redone)")
        out.append(r)
    return out


def _recipe_key(recipe: dict) -> str:
    return json.dumps(recipe, sort_keys=True)


def load_table(path=None) -> dict:
    """The table as {"info": ..., "rows": [...], "by_ops": {ops tuple: row}}."""
    p = Path(str(TABLE)) if path is None else Path(path)
    if p.is_dir():
        p = p / "table.json"
    if not p.exists():
        raise NastyError(f"no benchmark table at {str(p)!r}; build it with `nasty bench build`")
    try:
        doc = json.loads(p.read_text())
        rows = doc["rows"]
        if not isinstance(rows, list):
            raise TypeError(f"'rows' is a {type(rows).__name__}, not a list")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NastyError(f"benchmark table {str(p)!r} is unreadable ({type(e).__name__}: {e}); "
                         "rebuild it with `nasty bench build`") from None
    by_ops = {}
    for i, row in enumerate(rows):
        problem = row_problem(row)
        if problem:
            arch = row.get("arch") if isinstance(row, dict) else None
            raise NastyError(f"benchmark table {str(p)!r}: row {i}{f' ({brief(arch)})' if arch else ''} {problem}; "
                             "a simulated search would rank on it: rebuild the table with `nasty bench build`")
        ops = tuple(row["ops"])
        if ops in by_ops:
            raise NastyError(f"benchmark table {str(p)!r}: row {i} repeats cell {arch_str(ops)}; rebuild the table "
                             "with `nasty bench build`")
        by_ops[ops] = row
    missing = [a for a in all_archs() if a not in by_ops]
    if missing:
        raise NastyError(f"benchmark table {str(p)!r} lacks {len(missing)} of {len(all_archs())} cells "
                         f"(e.g. {arch_str(missing[0])}); finish it with `nasty bench build` (it resumes)")
    return {"info": doc.get("info", {}), "rows": rows, "by_ops": by_ops, "path": str(p)}


def _accuracy(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def row_problem(row) -> str | None:
    """What is wrong with one row of the table (said after 'row N'), or None: its cell is one of
    the space's, its accuracies (and per-epoch curve) numbers from 0 to 1, its costs whole numbers."""
    if not isinstance(row, dict):
        return f"is a {type(row).__name__}, not an object"
    ops = row.get("ops")
    if not isinstance(ops, list) or len(ops) != len(EDGES) or not all(isinstance(o, str) and o in OPS for o in ops):
        return f"has ops {brief(ops)}, not {len(EDGES)} of {', '.join(OPS)}"
    for key in ("val_acc", "test_acc"):
        if not _accuracy(row.get(key)):
            return f"has {key} {brief(row.get(key))}: accuracies are numbers from 0 to 1"
    curve = row.get("val_curve")
    if curve is not None and not (isinstance(curve, list) and curve and all(_accuracy(v) for v in curve)):
        return f"has val_curve {brief(curve)}: a list of accuracies from 0 to 1, one per epoch"
    for key in ("params", "macs"):
        v = row.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            return f"has {key} {brief(v)}: a whole number, 0 or more"
    t = row.get("train_seconds")
    if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0):
        return f"has train_seconds {brief(t)}: a number of seconds, 0 or more"
    return None


