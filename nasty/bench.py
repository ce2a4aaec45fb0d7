"""A NAS benchmark of our own: a small NAS-Bench-201-like cell space, trained
exhaustively on Fashion-MNIST with the proxy trainer, then used to simulate
every controller cheaply (a trial is a table lookup).

The cell (Dong & Yang 2020, NAS-Bench-201) is a DAG on 4 nodes: node 0 is the
cell input, node 3 its output, and each of the 6 edges i->j (i < j) carries one
op. NAS-Bench-201 uses 5 ops (15,625 cells); on 2 CPU cores we use 3 of them,

    none      the edge is absent (zero)
    skip      identity
    conv3x3   ReLU-conv3x3-BN (NAS-Bench-201's order)

so the space has 3^6 = 729 cells. A node whose inputs are all `none` is zero;
edges out of a zero node, and edges into a node that no path connects to the
output, change nothing, so many cells compile to the same network. Those are
trained once (same genotype, same seed, same numbers) and share a table row's
figures; the table still lists all 729 cells.

Macro skeleton (proxy, 1x28x28): stem conv3x3/2 c=C+BN, cell(C), ResNet
reduction block to 2C, cell(2C), reduction to 4C, cell(4C), BN-ReLU-GAP-FC;
C = 8. Everything about the recipe is in RECIPE and is stored with the table.

    nasty bench build            # exhaustively train the space (resumable)
    nasty bench run              # simulate the controllers; regret curves and a table
"""
from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from .errors import NastyError
from .space import FixedTrial, space

OPS = ("none", "skip", "conv3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
EDGE_NAMES = tuple(f"e{i}{j}" for i, j in EDGES)     # decision names, in NAS-Bench-201's order
TABLE_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "nasbench"

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
    "width": 8,                    # C: channels of the first cell
}


# ================================================================ the space
def arch_str(ops) -> str:
    """NAS-Bench-201's string form: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def live_edges(ops) -> tuple[str, ...]:
    """The ops with every edge that cannot change the network replaced by `none`."""
    op = dict(zip(EDGES, ops))
    for e in op:
        if op[e] not in OPS:
            raise NastyError(f"unknown bench op {op[e]!r}; ops are {', '.join(OPS)}")
    # forward: which nodes carry a signal (node 0 always)
    alive = {0}
    for j in (1, 2, 3):
        if any(i in alive and op[(i, j)] != "none" for i in range(j)):
            alive.add(j)
    # backward: which nodes reach the output
    useful = {3}
    for i in (2, 1):
        if any(op[(i, j)] != "none" and j in useful for j in range(i + 1, 4)):
            useful.add(i)
    useful.add(0)
    return tuple(o if (i in alive and j in useful and j in alive) else "none"
                 for (i, j), o in op.items())


def _edge_expr(op, src):
    if op == "skip":
        return src
    return f"relu conv3x3 c=c bn <- {src}"


def genotype_text(ops, width: int = RECIPE["width"], input=(1, 28, 28), classes: int = 10) -> str:
    live = dict(zip(EDGES, live_edges(ops)))
    names = {0: "in", 1: "n1", 2: "n2", 3: "out"}
    lines = []
    for j in (1, 2, 3):
        terms = [_edge_expr(live[(i, j)], names[i]) for i in range(j) if live[(i, j)] != "none"]
        if not terms:
            if j == 3:                          # the cell outputs zero
                lines.append("  out = scale v=0 <- in")
            continue
        rhs = terms[0] if len(terms) == 1 else f"add({', '.join(terms)})"
        if j == 3 and len(terms) == 1 and live[(next(i for i in range(3) if live[(i, 3)] != 'none'), 3)] == "skip":
            rhs = f"identity <- {terms[0]}"     # `out` must be an op, not a bare reference
        lines.append(f"  {names[j]} = {rhs}")
    shape = "x".join(map(str, input))
    c = width
    return "\n".join([
        f"net nb201mini input {shape} classes {classes}",
        "defaults conv.bias=0",
        "cell cell(c):", *lines,
        "cell reduce(c):",
        "  a = relu conv3x3/2 c=c bn <- in",
        "  b = relu conv3x3 c=c bn <- a",
        "  out = add(b, shortcut c=c s=2 <- in)",
        f"stem  conv3x3/2 c={c} bn",
        f"stage cell({c})",
        f"stage reduce({2 * c})",
        f"stage cell({2 * c})",
        f"stage reduce({4 * c})",
        f"stage cell({4 * c})",
        "head  bn relu gap flatten fc c=classes",
        ""])


@functools.lru_cache(maxsize=4096)
def arch_genotype(ops: tuple, width: int = RECIPE["width"], input=(1, 28, 28), classes: int = 10):
    from .genotype import parse
    return parse(genotype_text(ops, width, input, classes), "nb201mini")


@space(target=dict(input=(1, 28, 28), classes=10), proxy=dict(input=(1, 28, 28), classes=10),
       name="nb201mini",
       description="NAS-Bench-201-like cell: 4 nodes, 6 edges, ops none/skip/conv3x3 (729 cells)")
def bench_space(t, net):
    ops = tuple(t.choice(e, OPS) for e in EDGE_NAMES)
    return arch_genotype(ops, RECIPE["width"], tuple(net.input), net.classes)


def all_archs():
    return list(itertools.product(OPS, repeat=len(EDGES)))


# ================================================================ building the table
def _machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} {platform.machine()} {cpu} ({os.cpu_count()} cores)"


def build_table(out_dir=TABLE_DIR, recipe: dict | None = None, limit: int | None = None,
                device: str = "cpu", log=print) -> dict:
    """Train every distinct network of the space once; write table.json/.csv and build_info.json.

    Progress is appended to `partial.jsonl` as it happens, so an interrupted build
    resumes where it stopped. `limit` trains only the first N distinct networks
    (for tests); the table is then incomplete and says so.
    """
    import numpy as np
    import torch

    from . import cost
    from .compile import compile_genotype
    from .data import load_dataset, split_train_val, to_device_tensors
    from .train import TrainConfig, evaluate, train

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
    if partial.exists():
        for line in partial.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("recipe") == _recipe_key(recipe):
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
                         "params": r["params"], "macs": r["macs"], "train_seconds": r["train_seconds"]})
    rows.sort(key=lambda r: r["arch"])
    info = {"space": "nb201mini", "ops": list(OPS), "edges": [list(e) for e in EDGES],
            "cells": len(archs), "distinct_networks": len(groups), "rows": len(rows),
            "complete": len(rows) == len(archs), "recipe": recipe,
            "train_seconds_total": round(sum(r["train_seconds"] for r in done.values()), 1),
            "wall_seconds_this_session": round(time.perf_counter() - t_start, 1),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": _machine(), "torch": torch.__version__, "device": device,
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


def _recipe_key(recipe: dict) -> str:
    return json.dumps(recipe, sort_keys=True)


# ================================================================ simulating controllers
def load_table(path=TABLE_DIR) -> dict:
    """The table as {"info": ..., "rows": [...], "by_ops": {ops tuple: row}}."""
    p = Path(path)
    if p.is_dir():
        p = p / "table.json"
    if not p.exists():
        raise NastyError(f"no benchmark table at {str(p)!r}; build it with `nasty bench build`")
    try:
        doc = json.loads(p.read_text())
        rows = doc["rows"]
        by_ops = {tuple(r["ops"]): r for r in rows}
    except (ValueError, KeyError, TypeError) as e:
        raise NastyError(f"benchmark table {str(p)!r} is unreadable ({type(e).__name__}: {e}); "
                         "rebuild it with `nasty bench build`") from None
    missing = len(all_archs()) - len(by_ops)
    if missing:
        raise NastyError(f"benchmark table {str(p)!r} lacks {missing} of {len(all_archs())} cells; "
                         "finish it with `nasty bench build` (it resumes)")
    return {"info": doc.get("info", {}), "rows": rows, "by_ops": by_ops, "path": str(p)}


def parse_spec(spec: str) -> tuple[str, dict]:
    """'tpe:multivariate=true:n_startup_trials=20' -> ('tpe', {'multivariate': True, 'n_startup_trials': 20})."""
    name, *parts = spec.split(":")
    options = {}
    for part in parts:
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise NastyError(f"controller option {part!r} in {spec!r} must look like key=value "
                             "(e.g. tpe:multivariate=true)")
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw
    return name.strip(), options


def simulate(table: dict, controller: str, trials: int = 100, seed: int = 0, workers: int = 1,
             options: dict | None = None, dedupe: bool = False) -> dict:
    """One simulated search: `trials` table lookups proposed by `controller`.

    `workers` trials are asked before their results are told (in reverse order,
    to exercise asynchronous tells). With `dedupe`, a cell proposed again is told
    its known result at once and does not count as a trial (what a run that
    caches results by decisions would do); at most 5 * `trials` proposals are
    made, after which repeats count. Returns per-trial arrays of the best
    validation accuracy so far and the test accuracy of that best-so-far cell,
    the cells evaluated, and how many proposals were repeats.
    """
    from .controllers import make_controller
    name, spec_options = parse_spec(controller)
    try:
        ctrl = make_controller(name, bench_space, seed=seed, **{**spec_options, **(options or {})})
    except TypeError as e:
        raise NastyError(f"controller {controller!r}: {e}") from None
    by_ops = table["by_ops"]
    best_val, sel_test, archs = [], [], []
    cur_val, cur_test = -math.inf, None
    done = proposals = repeats = 0
    seen = set()
    while done < trials:
        batch = []
        while len(batch) < min(workers, trials - done):
            t = ctrl.ask()
            proposals += 1
            values, _ = bench_space.sample(t)
            row = by_ops[tuple(values[e] for e in EDGE_NAMES)]
            if row["arch"] in seen:
                repeats += 1
                if dedupe and proposals < 5 * trials:
                    ctrl.tell(t, _result(row))
                    continue
            seen.add(row["arch"])
            batch.append((t, row))
        for t, row in reversed(batch):
            ctrl.tell(t, _result(row))
        for t, row in batch:
            if row["val_acc"] > cur_val:
                cur_val, cur_test = row["val_acc"], row["test_acc"]
            best_val.append(cur_val)
            sel_test.append(cur_test)
            archs.append(row["arch"])
            done += 1
    return {"best_val": best_val, "sel_test": sel_test, "archs": archs, "proposals": proposals,
            "repeats": repeats}


def _result(row):
    from .controllers import Result
    return Result(reward=row["val_acc"], metrics={"val_acc": row["val_acc"], "macs": row["macs"],
                                                   "params": row["params"]})


def _mean_ci(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, 1.96 * sd / math.sqrt(n)


def run_benchmark(table_path=TABLE_DIR, controllers=("random", "evolution", "reinforce", "tpe"),
                  trials: int = 100, seeds: int = 20, out_dir=None, at=(25, 50, 100), workers: int = 1,
                  dedupe: bool = False, log=print) -> dict:
    """Simulate each controller `seeds` times; write results.json, results.md and regret.png."""
    from .controllers import REGISTRY
    table = load_table(table_path)
    import inspect
    for spec in controllers:
        name, opts = parse_spec(spec)
        if name not in REGISTRY:
            raise NastyError(f"unknown controller {name!r}; choose among {', '.join(sorted(REGISTRY))}")
        known = [p for p in inspect.signature(REGISTRY[name].__init__).parameters
                 if p not in ("self", "space", "seed", "options")]
        bad = sorted(set(opts) - set(known))
        if bad:
            raise NastyError(f"controller {name!r} has no option {', '.join(map(repr, bad))}; "
                             f"its options: {', '.join(known) or 'none'}")
        if name == "compound":
            raise NastyError("controller 'compound' scales a baseline network and cannot search the bench "
                             "cell space; leave it out of --controllers")
    at = [a for a in at if 1 <= a <= trials] or [trials]
    rows = table["rows"]
    opt_val = max(r["val_acc"] for r in rows)
    opt_rows = [r for r in rows if r["val_acc"] == opt_val]
    opt_test = max(r["test_acc"] for r in opt_rows)
    best_test = max(r["test_acc"] for r in rows)
    out = Path(out_dir) if out_dir else Path(table["path"]).parent
    out.mkdir(parents=True, exist_ok=True)
    results = {"table": table["path"], "trials": trials, "seeds": seeds, "workers": workers, "dedupe": dedupe,
               "optimum_val": opt_val, "optimum_test": opt_test, "best_test_in_table": best_test,
               "controllers": {}}
    t0 = time.perf_counter()
    for name in controllers:
        t1 = time.perf_counter()
        runs = [simulate(table, name, trials, seed=s, workers=workers, dedupe=dedupe) for s in range(seeds)]
        regret = [[100 * (opt_val - v) for v in r["best_val"]] for r in runs]
        test = [[100 * v for v in r["sel_test"]] for r in runs]
        curve = [_mean_ci([reg[i] for reg in regret]) for i in range(trials)]
        tcurve = [_mean_ci([ts[i] for ts in test]) for i in range(trials)]
        found = [[reg[i] == 0 for reg in regret] for i in range(trials)]
        results["controllers"][name] = {
            "regret_mean": [c[0] for c in curve], "regret_ci95": [c[1] for c in curve],
            "test_mean": [c[0] for c in tcurve], "test_ci95": [c[1] for c in tcurve],
            "found_optimum": [sum(f) / seeds for f in found],
            "unique_cells": sum(len(set(r["archs"])) for r in runs) / seeds,
            "repeat_proposals": sum(r["repeats"] for r in runs) / seeds,
            "seconds": round(time.perf_counter() - t1, 1)}
        log(f"bench run: {name}: {seeds} seeds x {trials} trials in {time.perf_counter() - t1:.1f}s; "
            + ", ".join(f"regret@{a} {curve[a - 1][0]:.3f}pp" for a in at))
    results["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(results_markdown(results, at))
    plot_results(results, out / "regret.png")
    log(f"bench run: wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'regret.png'}")
    print(results_markdown(results, at))
    return results


def results_markdown(results: dict, at) -> str:
    lines = [f"Simulated searches on `{Path(results['table']).name}`: {results['seeds']} seeds per controller, "
             f"{results['trials']} trials each, {results['workers']} trial(s) in flight"
             + (", repeated cells told from cache and not counted as trials" if results.get("dedupe") else "")
             + ". Regret = optimum "
             f"validation accuracy ({100 * results['optimum_val']:.2f}%) minus the best found, in percentage "
             f"points; test = test accuracy of the cell with the best validation accuracy found "
             f"(optimum's test {100 * results['optimum_test']:.2f}%, best test in the table "
             f"{100 * results['best_test_in_table']:.2f}%). Mean +- 95% CI over seeds; "
             "'hit' = share of seeds that found the validation optimum; 'unique' = distinct cells among the "
             "trials, 'repeats' = proposals of an already-seen cell (mean per search).", "",
             "| controller | " + " | ".join(f"regret@{a} (pp)" for a in at) + " | "
             + " | ".join(f"test@{a} (%)" for a in at) + " | " + " | ".join(f"hit@{a}" for a in at)
             + " | unique | repeats |",
             "|---" * (3 + 3 * len(at)) + "|"]
    for name, r in results["controllers"].items():
        cells = [f"{r['regret_mean'][a - 1]:.3f} +- {r['regret_ci95'][a - 1]:.3f}" for a in at]
        cells += [f"{r['test_mean'][a - 1]:.2f} +- {r['test_ci95'][a - 1]:.2f}" for a in at]
        cells += [f"{r['found_optimum'][a - 1]:.2f}" for a in at]
        cells += [f"{r.get('unique_cells', float('nan')):.1f}", f"{r.get('repeat_proposals', float('nan')):.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_results(results: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in results["controllers"].items():
        x = list(range(1, len(r["regret_mean"]) + 1))
        m, ci = r["regret_mean"], r["regret_ci95"]
        line, = ax.plot(x, m, label=name)
        ax.fill_between(x, [max(0.0, a - b) for a, b in zip(m, ci)], [a + b for a, b in zip(m, ci)],
                        color=line.get_color(), alpha=0.18, linewidth=0)
        tm, tci = r["test_mean"], r["test_ci95"]
        bx.plot(x, tm, label=name, color=line.get_color())
        bx.fill_between(x, [a - b for a, b in zip(tm, tci)], [a + b for a, b in zip(tm, tci)],
                        color=line.get_color(), alpha=0.18, linewidth=0)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("trials")
    ax.set_ylabel("regret: optimum - best found (val acc, pp)")
    ax.set_title(f"mean regret, 95% CI, {results['seeds']} seeds"
                 + (", repeats not counted" if results.get("dedupe") else "")
                 + (f", {results['workers']} in flight" if results.get("workers", 1) > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend()
    bx.axhline(100 * results["optimum_test"], color="k", linestyle="--", linewidth=0.8,
               label="test of val optimum")
    bx.set_xlabel("trials")
    bx.set_ylabel("test accuracy of selected cell (%)")
    bx.set_title("test accuracy of the best-validation cell")
    bx.grid(alpha=0.3)
    bx.legend(loc="lower right")
    lo = min(min(r["test_mean"][min(9, len(r["test_mean"]) - 1):]) for r in results["controllers"].values())
    bx.set_ylim(lo - 0.3, 100 * max(results["optimum_test"], results["best_test_in_table"]) + 0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
