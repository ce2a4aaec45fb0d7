"""Multi-fidelity searches simulated on the benchmark table: each network's per-epoch validation
curve (table rows' `val_curve`, epochs 1..3 of the table's recipe) lets a scheduler stop a
trial at an epoch milestone, as `nasty search --scheduler asha|hyperband` does with Ray Tune.

- fifo: every trial trains all epochs (the plain search);
- asha: successive halving by stopping (Ray Tune's ASHAScheduler: grace 1 epoch, reduction
  factor 2: at each milestone a trial below the top half of the results recorded there stops);
- hyperband: asynchronous Hyperband (ASHA with several brackets, reduction factor 3; a trial
  joins a bracket at random, weighted as Ray Tune weighs them).

Costs are counted in training epochs, so methods are compared at equal cost; a pick counts
only when its trial trained every epoch (its score is then comparable to the optimum's).
A controller is told a stopped trial with its partial curve (status stopped): TPE files it as
a PRUNED trial with intermediate values, so `tpe` + `hyperband` is BOHB-style.
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

from ..errors import NastyError
from ..searchspaces.nb201mini import EDGE_NAMES, nb201mini
from .table import load_table

SCHEDULERS = ("fifo", "asha", "hyperband")


def _brackets(scheduler: str, max_t: int) -> tuple[list[list[int]], list[float]]:
    """(milestones of each bracket, the chance a trial joins it), as Ray Tune's ASHAScheduler has them."""
    if scheduler == "fifo":
        return [[]], [1.0]
    rf, n = (2, 1) if scheduler == "asha" else (3, max(1, int(math.log(max_t, 3) + 1e-9) + 1))
    brackets = []
    for b in range(n):
        grace, rungs = rf ** b, []
        while grace < max_t:
            rungs.append(grace)
            grace *= rf
        brackets.append(rungs)
    sizes = [len(r) for r in brackets]
    w = [math.exp(s - max(sizes)) for s in sizes]
    return brackets, [x / sum(w) for x in w]


def _percentile(xs, q) -> float:
    """numpy's default (linear) percentile, 0 <= q <= 100."""
    xs = sorted(xs)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def simulate_scheduled(table: dict, controller: str, scheduler: str, budget_epochs: int, seed: int = 0) -> dict:
    """One search of `budget_epochs` training epochs; returns the best full-fidelity validation
    accuracy after each epoch spent and the test accuracy of that pick."""
    from ..controllers import Result, make_controller
    from ..search.record import Status
    from .simulate import parse_spec
    name, opts = parse_spec(controller)
    ctrl = make_controller(name, nb201mini, seed=seed, **opts)
    rng = random.Random(seed + 99991)
    by_ops = table["by_ops"]
    max_t = len(next(iter(by_ops.values()))["val_curve"])
    brackets, weights = _brackets(scheduler, max_t)
    recorded = [{m: [] for m in rungs} for rungs in brackets]       # values seen at each milestone
    rf = 2 if scheduler == "asha" else 3
    spent, best_val, best_test = 0, -math.inf, None
    curve_val, curve_test = [], []
    trials = full = 0
    while spent < budget_epochs:
        t = ctrl.ask()
        values, _ = nb201mini.sample(t)
        row = by_ops[tuple(values[e] for e in EDGE_NAMES)]
        b = rng.choices(range(len(brackets)), weights)[0]
        stop_at = max_t
        for m in brackets[b]:
            v = row["val_curve"][m - 1]
            recorded[b][m].append(v)
            if v < _percentile(recorded[b][m], (1 - 1 / rf) * 100):
                stop_at = m
                break
        stop_at = min(stop_at, budget_epochs - spent)              # the budget ends mid-trial
        curve = row["val_curve"][:stop_at]
        complete = stop_at == max_t
        trials += 1
        full += complete
        status = Status.OK if complete else Status.STOPPED
        ctrl.tell(t, Result(curve[-1], status, {"val_acc": curve[-1], "macs": row["macs"], "params": row["params"],
                                                "curve": curve}))
        for _ in range(stop_at):
            spent += 1
            curve_val.append(best_val)
            curve_test.append(best_test)
        if complete and row["val_acc"] > best_val:
            best_val, best_test = row["val_acc"], row["test_acc"]
            curve_val[-1], curve_test[-1] = best_val, best_test
    return {"best_val": curve_val[:budget_epochs], "sel_test": curve_test[:budget_epochs], "trials": trials,
            "full": full}


def run_fidelity_benchmark(table_path=None, controllers=("random", "tpe"), schedulers=SCHEDULERS,
                           budget_epochs: int = 300, seeds: int = 50, at=(75, 150, 300), out_dir=None,
                           log=print) -> dict:
    """Every (controller, scheduler) pair at equal training epochs; results.json and a markdown table."""
    import json
    import statistics
    table = load_table(table_path)
    if "val_curve" not in table["rows"][0]:
        raise NastyError(f"benchmark table {table['path']} has no per-epoch curves (val_curve); rebuild it with "
                         "`nasty bench build` (this version records them)")
    bad = [s for s in schedulers if s not in SCHEDULERS]
    if bad:
        raise NastyError(f"unknown scheduler {bad[0]!r}; choose among {', '.join(SCHEDULERS)}")
    at = [a for a in at if 1 <= a <= budget_epochs] or [budget_epochs]
    opt_val = max(r["val_acc"] for r in table["rows"])
    results = {"table": table["path"], "budget_epochs": budget_epochs, "seeds": seeds, "optimum_val": opt_val,
               "runs": {}}
    for c in controllers:
        for sch in schedulers:
            t0 = time.perf_counter()
            runs = [simulate_scheduled(table, c, sch, budget_epochs, seed=s) for s in range(seeds)]
            entry = {}
            for a in at:
                regrets = [100 * (opt_val - r["best_val"][a - 1]) if r["best_val"][a - 1] > -math.inf else math.nan
                           for r in runs]
                tests = [100 * r["sel_test"][a - 1] for r in runs if r["sel_test"][a - 1] is not None]
                ok = [x for x in regrets if x == x]
                m = statistics.mean(ok) if ok else math.nan
                ci = 1.96 * statistics.stdev(ok) / math.sqrt(len(ok)) if len(ok) > 1 else 0.0
                entry[str(a)] = {"regret": m, "regret_ci95": ci, "found": len(ok) / len(regrets),
                                 "test": statistics.mean(tests) if tests else math.nan}
            entry["trials"] = statistics.mean(r["trials"] for r in runs)
            entry["full_trials"] = statistics.mean(r["full"] for r in runs)
            results["runs"][f"{c}+{sch}"] = entry
            log(f"bench fidelity: {c} + {sch}: {seeds} seeds in {time.perf_counter() - t0:.1f}s; "
                + ", ".join(f"regret@{a} epochs {entry[str(a)]['regret']:.3f}pp" for a in at))
    out = Path(out_dir or "runs/nasbench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(results, indent=1) + "\n")
    md = fidelity_markdown(results, at)
    (out / "fidelity.md").write_text(md)
    print(md)
    return results


def fidelity_markdown(results: dict, at) -> str:
    lines = [f"Multi-fidelity searches on `{Path(results['table']).name}` at equal cost: {results['seeds']} seeds, "
             f"budgets in training epochs (a full trial is 3). Regret = validation optimum "
             f"({100 * results['optimum_val']:.2f}%) minus the best validation accuracy among trials that trained "
             "every epoch, in pp (mean +- 95% CI); test = test accuracy of that pick (%); trials = trials started "
             f"within {results['budget_epochs']} epochs (full = of them, trained every epoch).", "",
             "| controller + scheduler | " + " | ".join(f"regret@{a} ep" for a in at) + " | "
             + " | ".join(f"test@{a} ep" for a in at) + " | trials (full) |",
             "|---" * (2 + 2 * len(at)) + "|"]
    for name, e in results["runs"].items():
        cells = [f"{e[str(a)]['regret']:.3f} +- {e[str(a)]['regret_ci95']:.3f}" for a in at]
        cells += [f"{e[str(a)]['test']:.2f}" for a in at]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {e['trials']:.0f} ({e['full_trials']:.0f}) |")
    return "\n".join(lines) + "\n"
