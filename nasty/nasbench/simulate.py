"""Simulated searches on the benchmark table: each controller proposes cells of the
nb201mini space and is told their table accuracies (a trial is a lookup), many seeds
each; `nasty bench run` prints and plots the regret curves.
"""
from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path

from ..errors import NastyError
from ..searchspaces.nb201mini import EDGE_NAMES, nb201mini
from .table import load_table


DEFAULT_OUT = "runs/nasbench"    # where `nasty bench run` writes unless told (never into the package)


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
    from ..controllers import make_controller
    name, spec_options = parse_spec(controller)
    try:
        ctrl = make_controller(name, nb201mini, seed=seed, **{**spec_options, **(options or {})})
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
            values, _ = nb201mini.sample(t)
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
    from ..controllers import Result
    return Result(reward=row["val_acc"], metrics={"val_acc": row["val_acc"], "macs": row["macs"],
                                                   "params": row["params"]})


def _mean_ci(xs):
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, 1.96 * sd / math.sqrt(n)


def run_benchmark(table_path=None, controllers=("random", "evolution", "reinforce", "tpe"),
                  trials: int = 100, seeds: int = 20, out_dir=None, at=(25, 50, 100), workers: int = 1,
                  dedupe: bool = False, log=print) -> dict:
    """Simulate each controller `seeds` times; write results.json, results.md and regret.png."""
    from ..controllers import REGISTRY, check_option_types
    table = load_table(table_path)
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
        check_option_types(name, opts)
        if name == "compound":
            raise NastyError("controller 'compound' scales a baseline network and cannot search the bench "
                             "cell space; leave it out of --controllers")
    at = [a for a in at if 1 <= a <= trials] or [trials]
    rows = table["rows"]
    opt_val = max(r["val_acc"] for r in rows)
    opt_rows = [r for r in rows if r["val_acc"] == opt_val]
    opt_test = max(r["test_acc"] for r in opt_rows)
    best_test = max(r["test_acc"] for r in rows)
    out = Path(out_dir or DEFAULT_OUT)
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
