"""Simulated searches on a benchmark table: each controller proposes cells of the table's space
(nb201mini, our own table; nb201, NAS-Bench-201's) and is told their table accuracies (a trial
is a lookup), many seeds each; `nasty bench run` prints and plots the regret curves.

With a screen (`screen="params"` or `"macs"`, `k` = K), every evaluation is preceded by K
proposals of the controller; the screen keeps the one with the highest score and the
controller is told only that one's result (the others are `discard`ed: neither results nor
failures). Scores are analytic, so screened candidates are free and a search is still counted
in evaluations. This is the screen of `nasty search --screen` without a budget: with a budget,
candidates are compared inside it; here there is none, so it takes the top of K.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import time
from pathlib import Path

from ..errors import NastyError
from ..searchspaces.nb201mini import EDGE_NAMES, nb201mini
from ..searchspaces.nb201mini import decide as nb201mini_decide
from ..stats import rank_agreement  # noqa: F401  (used here and by the benchmarks)
from .table import load_table, read_progress

DEFAULT_OUT = "runs/nasbench"    # where `nasty bench run` writes unless told (never into the package)
SCREENS = ("params", "macs")     # the scores a table simulation can screen by (analytic: no images needed)


def open_table(table=None) -> dict:
    """A benchmark table by name or path: None (our nb201mini table), 'nb201' (NAS-Bench-201's,
    shipped), a NAS-Bench-201 CSV (.csv or .csv.gz), or an nb201mini table folder / table.json."""
    if isinstance(table, dict):
        return table
    text = None if table is None else str(table)
    if text in ("nb201", "nas-bench-201"):
        from .nb201 import load_nb201
        return load_nb201()
    if text is not None and (text.endswith(".csv") or text.endswith(".csv.gz")):
        from .nb201 import load_nb201
        return load_nb201(text)
    return load_table(table)


def parse_spec(spec: str) -> tuple[str, dict]:
    """'tpe:multivariate=true:n_startup_trials=20' -> ('tpe', {'multivariate': True, 'n_startup_trials': 20})."""
    from ..controllers import parse_options
    name, _, rest = spec.partition(":")
    return name.strip(), parse_options(rest, f"controller spec {spec!r}", sep=":", example="tpe:multivariate=true")


def simulate(table: dict, controller: str, trials: int = 100, seed: int = 0, workers: int = 1,
             options: dict | None = None, dedupe: bool = False, screen: str | None = None, k: int = 1) -> dict:
    """One simulated search: `trials` table lookups proposed by `controller`.

    `workers` trials are asked before their results are told (in reverse order,
    to exercise asynchronous tells). With `screen` ('params' or 'macs') and `k` > 1,
    each trial is the best of `k` proposals by that score (ties: the first proposed);
    a proposal that loses is discarded at once (Controller.discard), so only the round's
    best so far is outstanding while the next is asked. With `dedupe`, a cell proposed again is told its known
    result at once and does not count as a trial (what a run that caches results by
    decisions would do); at most 5 * `trials` proposals are made, after which repeats
    count. Returns per-trial lists of the evaluated cells' validation and test
    accuracies, the best validation accuracy so far and the test accuracy of that
    best-so-far cell, the cells evaluated, and how many proposals were made and how
    many of the evaluated ones were repeats.
    """
    from ..controllers import make_controller
    if screen is not None and screen not in SCREENS:
        raise NastyError(f"unknown screen {screen!r}; a table simulation screens by {' or '.join(SCREENS)}")
    if int(k) < 1:
        raise NastyError(f"the screen's K must be at least 1, got {k}")
    k = int(k) if screen else 1
    name, spec_options = parse_spec(controller)
    space, decide = table.get("space", nb201mini), table.get("decide", nb201mini_decide)
    try:
        ctrl = make_controller(name, space, seed=seed, **{**spec_options, **(options or {})})
    except TypeError as e:
        raise NastyError(f"controller {controller!r}: {e}") from None
    by_ops = table["by_ops"]
    proposals = 0

    def propose():
        nonlocal proposals
        t = ctrl.ask()
        proposals += 1
        return t, by_ops[decide(t)]

    def screened():
        best = propose()
        for _ in range(k - 1):
            cand = propose()
            if cand[1][screen] > best[1][screen]:
                ctrl.discard(best[0])
                best = cand
            else:
                ctrl.discard(cand[0])
        return best

    vals, tests, archs = [], [], []
    done = repeats = asked = 0
    seen = set()
    while done < trials:
        batch = []
        while len(batch) < min(workers, trials - done):
            t, row = screened()
            asked += 1
            if row["arch"] in seen:
                repeats += 1
                if dedupe and asked < 5 * trials:
                    ctrl.tell(t, _result(row))
                    continue
            seen.add(row["arch"])
            batch.append((t, row))
        for t, row in reversed(batch):
            ctrl.tell(t, _result(row))
        for t, row in batch:
            vals.append(row["val_acc"])
            tests.append(row["test_acc"])
            archs.append(row["arch"])
            done += 1
    best_val, sel_test = best_so_far([vals], [tests])
    return {"vals": vals, "tests": tests, "best_val": best_val[0].tolist(), "sel_test": sel_test[0].tolist(),
            "archs": archs, "proposals": proposals, "repeats": repeats}


def best_so_far(vals, tests):
    """(best validation accuracy so far, test accuracy of the first cell that reached it), per
    search (rows) and trial (columns), vectorised over searches."""
    import numpy as np
    v, t = np.asarray(vals, dtype=float), np.asarray(tests, dtype=float)
    best = np.maximum.accumulate(v, axis=1)
    prev = np.concatenate([np.full((v.shape[0], 1), -np.inf), best[:, :-1]], axis=1)
    pos = np.arange(v.shape[1])[None, :] * (v > prev)          # where a new best appears
    sel = np.maximum.accumulate(pos, axis=1)
    return best, np.take_along_axis(t, sel, axis=1)


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


def _curve_ci(matrix):
    """Mean and 95% half-interval (normal approximation) over searches, per trial."""
    import numpy as np
    m = np.asarray(matrix, dtype=float)
    n = m.shape[0]
    half = 1.96 * m.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(m.shape[1])
    return m.mean(axis=0).tolist(), half.tolist()


def expected_random_regret(table: dict, n: int) -> float:
    """Exact expected regret (pp) of n uniform draws with replacement from the table's cells."""
    import numpy as np
    v = np.sort(np.array([r["val_acc"] for r in table["rows"]]))
    N = len(v)
    cdf = (np.arange(1, N + 1) / N) ** n                          # P(max of n draws <= v[i])
    pmf = np.diff(np.concatenate([[0.0], cdf]))
    return float(100 * (v[-1] - (pmf * v).sum()))


def _check_controllers(controllers):
    from ..controllers import REGISTRY, check_option_types
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
        if name == "darts":
            raise NastyError("controller 'darts' is a one-shot search: simulate it with --evaluator supernet "
                             "(nb201mini), and leave it out of --controllers here")


def _seed_runs(args):
    """A worker process's share of the seeds (`jobs` > 1): runs are returned in seed order."""
    table_ref, spec, trials, seeds, workers, dedupe, screen, k = args
    table = open_table(table_ref)
    return [simulate(table, spec, trials, seed=s, workers=workers, dedupe=dedupe, screen=screen, k=k)
            for s in seeds]


def _runs(table, table_ref, spec, trials, seeds, workers, dedupe, screen, k, jobs):
    if jobs <= 1 or seeds < 2:
        return _seed_runs((table, spec, trials, range(seeds), workers, dedupe, screen, k))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    shares = [list(range(seeds))[i::jobs] for i in range(jobs)]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_seed_runs, [(table_ref, spec, trials, sh, workers, dedupe, screen, k)
                                           for sh in shares if sh]))
    by_seed = {}
    for sh, part in zip([sh for sh in shares if sh], parts):
        by_seed.update(zip(sh, part))
    return [by_seed[s] for s in range(seeds)]


def run_benchmark(table_path=None, controllers=("random", "evolution", "reinforce", "tpe"),
                  trials: int = 100, seeds: int = 20, out_dir=None, at=(25, 50, 100), workers: int = 1,
                  dedupe: bool = False, screen: str | None = None, k: int = 10, jobs: int = 1,
                  plain: bool = True, log=print) -> dict:
    """Simulate each controller `seeds` times (and, with `screen`, each again behind the screen,
    K = `k`; `plain=False`: only behind it); write results.json, results.md and regret.png/.svg."""
    _check_controllers(controllers)
    if screen is not None and screen not in SCREENS:
        raise NastyError(f"unknown screen {screen!r}; a table simulation screens by {' or '.join(SCREENS)}")
    if screen is not None and int(k) < 2:
        raise NastyError(f"a screen needs K of at least 2 candidates per evaluation, got {k}")
    table = open_table(table_path)
    import numpy as np
    at = [a for a in at if 1 <= a <= trials] or [trials]
    rows = table["rows"]
    opt_val = max(r["val_acc"] for r in rows)
    opt_rows = [r for r in rows if r["val_acc"] == opt_val]
    opt_test = max(r["test_acc"] for r in opt_rows)
    best_test = max(r["test_acc"] for r in rows)
    out = Path(out_dir or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    results = {"table": Path(table["path"]).name, "space": table.get("name", "nb201mini"), "trials": trials,
               "seeds": seeds, "workers": workers, "dedupe": dedupe, "optimum_val": opt_val, "optimum_test": opt_test,
               "best_test_in_table": best_test, "at": at,
               "random_exact": {str(a): expected_random_regret(table, a) for a in at},
               "screen": {"score": screen, "K": int(k)} if screen else None, "run": _provenance(jobs),
               "controllers": {}}
    t0 = time.perf_counter()
    variants = ([(spec, None) for spec in controllers] if plain or not screen else []) \
        + ([(spec, screen) for spec in controllers] if screen else [])
    table_ref = table_path if table_path is not None else None
    for spec, scr in variants:
        key = spec if scr is None else f"{spec} +screen"
        t1 = time.perf_counter()
        runs = _runs(table, table_ref, spec, trials, seeds, workers, dedupe, scr, k, jobs)
        best, sel = best_so_far([r["vals"] for r in runs], [r["tests"] for r in runs])
        regret, test = 100 * (opt_val - best), 100 * sel
        rm, rci = _curve_ci(regret)
        tm, tci = _curve_ci(test)
        results["controllers"][key] = {
            "spec": spec, "screen": scr, "K": int(k) if scr else 1,
            "regret_mean": rm, "regret_ci95": rci, "test_mean": tm, "test_ci95": tci,
            "found_optimum": (regret == 0).mean(axis=0).tolist(),
            "unique_cells": float(np.mean([len(set(r["archs"])) for r in runs])),
            "repeat_proposals": float(np.mean([r["repeats"] for r in runs])),
            "proposals": float(np.mean([r["proposals"] for r in runs])),
            "seconds": round(time.perf_counter() - t1, 1)}
        log(f"bench run: {key}: {seeds} seeds x {trials} trials in {time.perf_counter() - t1:.1f}s; "
            + ", ".join(f"regret@{a} {rm[a - 1]:.3f}pp" for a in at))
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["run"]["load_end"] = _load()
    results["verdict"] = verdict(results)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(results_markdown(results, at))
    plot_results(results, out / "regret.png")
    log(f"bench run: wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'regret.png'} (and .svg)")
    print(results_markdown(results, at))
    return results


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _provenance(jobs: int) -> dict:
    """When, where and with what a benchmark ran (the machine's load matters for its seconds)."""
    import platform
    from datetime import datetime, timezone
    from importlib.metadata import PackageNotFoundError, version

    from .table import machine_name
    versions = {}
    for pkg in ("optuna", "torch", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine_name(),
            "python": platform.python_version(), **versions, "jobs": jobs, "load_start": _load()}


def _at(entry, a, key="regret"):
    return entry[f"{key}_mean"][a - 1], entry[f"{key}_ci95"][a - 1]


def verdict(results: dict, goal_at: int = 100) -> dict:
    """The goals of issue 21, computed from the curves: at `goal_at` evaluations every controller's
    regret interval lies below random's (the intervals do not overlap), and screened evolution at
    half the evaluations is not worse than plain evolution at `goal_at` (the 95% interval of the
    difference of means reaches 0 or lies below it)."""
    ctrls = results["controllers"]
    if goal_at > results["trials"] or "random" not in ctrls:
        return {}
    rm, rci = _at(ctrls["random"], goal_at)
    beats = {}
    for key, e in ctrls.items():
        if key == "random":
            continue
        m, ci = _at(e, goal_at)
        beats[key] = {"regret": m, "ci95": ci, "upper": m + ci, "random_lower": rm - rci,
                      "beats_random": m + ci < rm - rci}
    out = {"at": goal_at, "random": {"regret": rm, "ci95": rci}, "vs_random": beats,
           "every_controller_beats_random": all(b["beats_random"] for b in beats.values())}
    plain = next((k for k, e in ctrls.items() if e["spec"].split(":")[0] == "evolution" and not e["screen"]), None)
    scr = next((k for k, e in ctrls.items() if e["spec"].split(":")[0] == "evolution" and e["screen"]), None)
    half = goal_at // 2
    if plain and scr and half >= 1:
        (sm, sci), (pm, pci) = _at(ctrls[scr], half), _at(ctrls[plain], goal_at)
        diff, dci = sm - pm, math.hypot(sci, pci)
        out["screened_evolution"] = {"screened": scr, "at": half, "regret": sm, "ci95": sci,
                                     "plain": plain, "plain_at": goal_at, "plain_regret": pm, "plain_ci95": pci,
                                     "difference": diff, "difference_ci95": dci,
                                     "matches": diff - dci <= 0}
    return out


def results_markdown(results: dict, at) -> str:
    scr = results.get("screen")
    lines = [f"Simulated searches on `{Path(results['table']).name}` ({results.get('space', 'nb201mini')}): "
             f"{results['seeds']} seeds per controller, "
             f"{results['trials']} trials each, {results['workers']} trial(s) in flight"
             + (", repeated cells told from cache and not counted as trials" if results.get("dedupe") else "")
             + (f"; '+screen': each trial is the best of K={scr['K']} proposals by {scr['score']}" if scr else "")
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
    exact = results.get("random_exact")
    if exact:
        lines += ["", "Exact expected regret of random search (draws with replacement): "
                  + ", ".join(f"{float(v):.3f} pp at {a}" for a, v in exact.items()) + "."]
    v = results.get("verdict") or {}
    if v:
        lines += ["", f"Goals at {v['at']} trials (random: {v['random']['regret']:.3f} +- "
                  f"{v['random']['ci95']:.3f} pp):"]
        for key, b in v["vs_random"].items():
            lines.append(f"- {key}: {b['regret']:.3f} +- {b['ci95']:.3f} pp: "
                         + ("beats random (intervals do not overlap)" if b["beats_random"] else
                            "does NOT beat random beyond the intervals"))
        s = v.get("screened_evolution")
        if s:
            lines.append(f"- {s['screened']} at {s['at']}: {s['regret']:.3f} +- {s['ci95']:.3f} pp vs {s['plain']} at "
                         f"{s['plain_at']}: {s['plain_regret']:.3f} +- {s['plain_ci95']:.3f} pp; difference "
                         f"{s['difference']:+.3f} +- {s['difference_ci95']:.3f} pp: "
                         + ("matches (not worse beyond the interval)" if s["matches"] else "does NOT match"))
    return "\n".join(lines) + "\n"


def plot_results(results: dict, path) -> None:
    """The regret and test-accuracy curves, as `path` (PNG) and the same name with .svg."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {}
    for name, r in results["controllers"].items():
        x = list(range(1, len(r["regret_mean"]) + 1))
        base = r.get("spec", name)
        style = "--" if r.get("screen") else "-"
        m, ci = r["regret_mean"], r["regret_ci95"]
        line, = ax.plot(x, m, style, label=name, color=colors.get(base))
        colors.setdefault(base, line.get_color())
        ax.fill_between(x, [max(0.0, a - b) for a, b in zip(m, ci)], [a + b for a, b in zip(m, ci)],
                        color=line.get_color(), alpha=0.15, linewidth=0)
        tm, tci = r["test_mean"], r["test_ci95"]
        bx.plot(x, tm, style, label=name, color=line.get_color())
        bx.fill_between(x, [a - b for a, b in zip(tm, tci)], [a + b for a, b in zip(tm, tci)],
                        color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("trials (evaluations)")
    ax.set_ylabel("regret: optimum - best found (val acc, pp)")
    scr = results.get("screen")
    ax.set_title(f"{results.get('space', 'nb201mini')}: mean regret, 95% CI, {results['seeds']} seeds"
                 + (", repeats not counted" if results.get("dedupe") else "")
                 + (f", {results['workers']} in flight" if results.get("workers", 1) > 1 else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=(f"dashed: screened, best of K={scr['K']} by {scr['score']}" if scr else None),
              title_fontsize=8)
    bx.axhline(100 * results["optimum_test"], color="k", linestyle=":", linewidth=0.8,
               label="test of val optimum")
    bx.set_xlabel("trials (evaluations)")
    bx.set_ylabel("test accuracy of selected cell (%)")
    bx.set_title("test accuracy of the best-validation cell", fontsize=10)
    bx.grid(alpha=0.3)
    bx.legend(loc="lower right", fontsize=8)
    lo = min(min(r["test_mean"][min(9, len(r["test_mean"]) - 1):]) for r in results["controllers"].values())
    bx.set_ylim(lo - 0.3, 100 * max(results["optimum_test"], results["best_test_in_table"]) + 0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(Path(path).with_suffix(".svg"))
    plt.close(fig)


# ------------------------------------------------------------------ one-shot searches on the table
ONESHOT_CONTROLLERS = ("random", "reinforce", "evolution", "darts")
MULTI_TRIAL = ("random", "evolution", "reinforce", "tpe")


def _oneshot_data(seed: int, subset: int, val_subset: int):
    from ..search.runner import load_data
    from ..search.settings import Settings
    from ..search.standalone import make_payload
    s = Settings(space="nb201mini", subset=subset, val_subset=val_subset, seed=seed)
    data, train_idx, val_idx = load_data(s)
    return make_payload(data, train_idx, val_idx)


def oneshot_search(controller: str, seed: int, seconds: float, payload: dict, options: dict | None = None) -> dict:
    """One one-shot search on nb201mini, run in this process by the trial code of `nasty search
    --evaluator supernet` (search/oneshot.py) for `seconds`, without confirmation (it is simulated
    on the table). Returns its records, the supernet's final state and DARTS's picks."""
    from ..search import oneshot
    from ..search.budget import Budget
    from ..search.settings import Settings
    from ..search.standalone import take_weights
    s = oneshot.prepare(Settings(space="nb201mini", controller=controller, evaluator="supernet", seed=seed,
                                 time_budget=seconds, **(options or {}))).resolved(False)
    s = dataclasses.replace(s, confirm=0, cpus_per_trial=1.0)       # confirmation: simulated on the table
    config = oneshot.trial_config(s, nb201mini, Budget(), {"epochs": 1, "train_images": 1, "val_images": 1},
                                  time.time() + seconds, seconds, 1)
    messages, checkpoint, failed = [], None, None

    def report(result):
        nonlocal checkpoint, failed
        blob = take_weights(result)
        if result.get("failed"):
            failed = result.get("reason")
        if blob:
            msg, ck = oneshot.unpack(blob)
            messages.append(msg)
            checkpoint = ck or checkpoint
    t0 = time.perf_counter()
    oneshot.evaluate(config, payload, report)
    wall = time.perf_counter() - t0
    if failed:
        raise NastyError(f"the one-shot search ({controller}, seed {seed}) failed: {failed}")
    records = [r for m in messages for r in m["records"]]
    darts = next((m["darts"] for m in reversed(messages) if m.get("darts")), None)
    final = next((m.get("final") for m in reversed(messages) if "final" in m), None)
    return {"records": records, "checkpoint": checkpoint, "darts": darts, "final": final, "wall": wall,
            "info": messages[-1]["info"] if messages else {}, "settings": s}


def score_table(checkpoint: bytes, payload: dict, table: dict, score_images: int, bn: str = "batch") -> dict:
    """Every distinct network of the table scored with a supernet's weights: {live arch: accuracy}."""
    from ..search.supernet import Supernet, from_bytes
    from ..searchspaces.nb201mini import arch_genotype, live_edges
    net = Supernet(payload, None, score_images=score_images, bn=bn, device="cpu", cache=0)
    net.load_state_dict(from_bytes(checkpoint)["supernet"])
    out = {}
    for row in table["rows"]:
        if row["live"] in out:
            continue
        g = arch_genotype(live_edges(tuple(row["ops"])))
        out[row["live"]] = net.score(net.build(g))
    return out


def oneshot_run(table: dict, controller: str, seed: int, seconds: float, payload: dict, confirm: int = 5,
                score_images: int = 1000, options: dict | None = None) -> dict:
    """One one-shot search and what the table says of it: rank agreement of its shared weights
    with the table, its pick with and without a (simulated) confirmation of the top `confirm`."""
    import statistics

    from ..search.record import Status
    from ..searchspaces.nb201mini import arch_str, live_edges
    run = oneshot_search(controller, seed, seconds, payload, options)
    by_ops = table["by_ops"]
    live_row = {r["live"]: r for r in table["rows"]}
    scored = [r for r in run["records"] if r["status"] == Status.OK and r.get("val_acc") is not None]
    if not scored:
        raise NastyError(f"the one-shot search ({controller}, seed {seed}) scored no child in {seconds:g} s")
    for r in scored:
        r["live"] = by_ops[tuple(r["decisions"][e] for e in EDGE_NAMES)]["live"]
    # the pick on shared weights (DARTS: its final discretisation), and the top `confirm` distinct
    # networks by shared score trained standalone (= their table rows), the best of them crowned
    final = next((r for r in scored if r["trial"] == run["final"]), None) if controller == "darts" else None
    best = final or max(scored, key=lambda r: r["val_acc"])
    top, seen = [], set()
    for r in ([final] if final else []) + sorted(scored, key=lambda r: -r["val_acc"]):
        if r["live"] not in seen:
            seen.add(r["live"])
            top.append(live_row[r["live"]])
        if len(top) == confirm:
            break
    crowned = max(top, key=lambda r: r["val_acc"])
    confirm_s = sum(r["train_seconds"] for r in top)
    shared = score_table(run["checkpoint"], payload, table, score_images, run["settings"].supernet_bn)
    lives = sorted(shared)
    table_val = [live_row[l]["val_acc"] for l in lives]
    ours = [shared[l] for l in lives]
    alive = [i for i, v in enumerate(table_val) if v > 0.2]            # the 67 zero cells score ~10% in both
    cut = sorted(table_val, reverse=True)[max(0, len(table_val) // 5 - 1)]
    top20 = [i for i, v in enumerate(table_val) if v >= cut]
    agree = {name: rank_agreement([table_val[i] for i in idx], [ours[i] for i in idx])
             for name, idx in (("all", range(len(lives))), ("nonzero", alive), ("top20", top20))}
    out = {"controller": controller, "seed": seed, "seconds": seconds, "wall": run["wall"],
           "children": len(scored), "distinct": len({r["live"] for r in scored}),
           "steps": run["info"].get("steps"), "pick": {"live": best["live"], "shared": best["val_acc"],
                                                       "val": live_row[best["live"]]["val_acc"],
                                                       "test": live_row[best["live"]]["test_acc"]},
           "confirmed": {"live": crowned["live"], "val": crowned["val_acc"], "test": crowned["test_acc"],
                         "networks": len(top), "seconds": confirm_s},
           "tau": {k: v[0] for k, v in agree.items()}, "rho": {k: v[1] for k, v in agree.items()},
           "shared_mean_nonzero": statistics.mean(ours[i] for i in alive)}
    if run["darts"]:
        d = run["darts"]
        out["darts"] = {"raw": arch_str(live_edges(tuple(d["raw"][e] for e in EDGE_NAMES))),
                        "raw_counts": d["raw_counts"]["cell"], "pick": arch_str(tuple(d["pick"][e] for e in EDGE_NAMES)),
                        "pick_counts": d["pick_counts"]["cell"], "steps": d["steps"],
                        "raw_val": by_ops[tuple(d["raw"][e] for e in EDGE_NAMES)]["val_acc"]}
    return out


def multi_trial_at(table: dict, controller: str, seed: int, seconds: float, cap: int = 2000) -> dict:
    """A multi-trial search simulated on the table until its trials' training time (the table's
    train_seconds) would pass `seconds`: the best validation accuracy it found by then."""
    by_arch = {r["arch"]: r for r in table["rows"]}
    trials = 50
    while True:
        sim = simulate(table, controller, trials=trials, seed=seed)
        spent, best, n = 0.0, None, 0
        for arch in sim["archs"]:
            row = by_arch[arch]
            if spent + row["train_seconds"] > seconds:
                break
            spent += row["train_seconds"]
            n += 1
            if best is None or row["val_acc"] > best["val_acc"]:
                best = row
        if n < trials or trials >= cap:
            return {"trials": n, "val": best["val_acc"] if best else 0.0, "test": best["test_acc"] if best else 0.0}
        trials *= 2


def run_oneshot_benchmark(table_path=None, controllers=ONESHOT_CONTROLLERS, seeds: int = 10, seconds: float = 60.0,
                          out_dir=None, compare=MULTI_TRIAL, confirm: int = 5, score_images: int = 1000,
                          subset: int = 6000, val_subset: int = 2000, options: dict | None = None,
                          log=print) -> dict:
    """`nasty bench run --evaluator supernet`: one-shot searches on nb201mini, `seeds` each, judged
    by the table; runs are kept in runs.jsonl (a rerun continues where it stopped)."""
    import platform
    table = load_table(table_path)
    out = Path(out_dir or DEFAULT_OUT + "-oneshot")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    key = {"seconds": seconds, "confirm": confirm, "score_images": score_images, "subset": subset,
           "val_subset": val_subset, "options": options or {}}
    done = [r for r in read_progress(path) if r.get("key") == key]
    opt_val = max(r["val_acc"] for r in table["rows"])
    payloads = {}
    for seed in range(seeds):                  # seed by seed: a stopped run has every controller's first seeds
        for name in controllers:
            if any(r["controller"] == name and r["seed"] == seed for r in done):
                continue
            if seed not in payloads:
                payloads = {seed: _oneshot_data(seed, subset, val_subset)}
            t0 = time.perf_counter()
            r = oneshot_run(table, name, seed, seconds, payloads[seed], confirm, score_images, options)
            budget = r["wall"] + r["confirmed"]["seconds"]
            r["multi_trial"] = {c: {"equal": multi_trial_at(table, c, seed, budget),
                                    "x10": multi_trial_at(table, c, seed, 10 * budget)} for c in compare}
            r["key"], r["bench_seconds"] = key, round(time.perf_counter() - t0, 1)
            r["date"], r["machine"] = time.strftime("%Y-%m-%d %H:%M:%S"), f"{platform.node()} ({os.cpu_count()} cores)"
            with path.open("a") as f:
                f.write(json.dumps(r) + "\n")
            done.append(r)
            log(f"bench oneshot: {name} seed {seed}: {r['children']} children ({r['distinct']} distinct) in "
                f"{r['wall']:.0f}s; tau {r['tau']['all']:.3f} (nonzero {r['tau']['nonzero']:.3f}); pick regret "
                f"{100 * (opt_val - r['pick']['val']):.2f}pp, confirmed {100 * (opt_val - r['confirmed']['val']):.2f}pp")
    results = summarize_oneshot(done, table, controllers, compare)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(oneshot_markdown(results))
    print(oneshot_markdown(results))
    return results


def summarize_oneshot(runs: list, table: dict, controllers, compare) -> dict:
    opt_val = max(r["val_acc"] for r in table["rows"])
    res = {"optimum_val": opt_val, "controllers": {}}
    for name in controllers:
        rs = [r for r in runs if r["controller"] == name]
        if not rs:
            continue

        def stat(f):
            return _mean_ci([f(r) for r in rs])
        entry = {"seeds": len(rs), "seconds": rs[0]["seconds"],
                 "wall": stat(lambda r: r["wall"]), "confirm_seconds": stat(lambda r: r["confirmed"]["seconds"]),
                 "children": stat(lambda r: r["children"]), "distinct": stat(lambda r: r["distinct"]),
                 "tau_all": stat(lambda r: r["tau"]["all"]), "tau_nonzero": stat(lambda r: r["tau"]["nonzero"]),
                 "tau_top20": stat(lambda r: r["tau"]["top20"]), "rho_all": stat(lambda r: r["rho"]["all"]),
                 "rho_nonzero": stat(lambda r: r["rho"]["nonzero"]), "rho_top20": stat(lambda r: r["rho"]["top20"]),
                 "regret_pick": stat(lambda r: 100 * (opt_val - r["pick"]["val"])),
                 "regret_confirmed": stat(lambda r: 100 * (opt_val - r["confirmed"]["val"])),
                 "test_confirmed": stat(lambda r: 100 * r["confirmed"]["test"]),
                 "within_half_pp": sum(opt_val - r["confirmed"]["val"] <= 0.005 for r in rs) / len(rs),
                 "multi_trial": {c: {"equal": stat(lambda r, c=c: 100 * (opt_val - r["multi_trial"][c]["equal"]["val"])),
                                     "x10": stat(lambda r, c=c: 100 * (opt_val - r["multi_trial"][c]["x10"]["val"])),
                                     "trials_equal": stat(lambda r, c=c: r["multi_trial"][c]["equal"]["trials"])}
                                 for c in compare if all(c in r["multi_trial"] for r in rs)}}
        if any("darts" in r for r in rs):
            entry["darts"] = {"raw_skip": stat(lambda r: r["darts"]["raw_counts"]["skip"]),
                              "raw_none": stat(lambda r: r["darts"]["raw_counts"]["none"]),
                              "raw_regret": stat(lambda r: 100 * (opt_val - r["darts"]["raw_val"])),
                              "pick_skip": stat(lambda r: r["darts"]["pick_counts"]["skip"]),
                              "raw": [r["darts"]["raw"] for r in rs], "pick": [r["darts"]["pick"] for r in rs]}
        res["controllers"][name] = entry
    return res


def oneshot_markdown(res: dict) -> str:
    def f(v, d=3):
        return f"{v[0]:.{d}f} +- {v[1]:.{d}f}"
    lines = ["One-shot searches on nb201mini (`nasty bench run --evaluator supernet`), judged by the table. "
             f"Regret = validation optimum ({100 * res['optimum_val']:.2f}%) minus the table validation accuracy of "
             "the pick, in pp; 'pick' = best shared-weight score (DARTS: its final discretisation); 'confirmed' = "
             "best of the top 5 distinct children retrained standalone (their table rows, whose train_seconds are "
             "added to the wall time). Rank agreement between shared-weight scores and table validation accuracy "
             "over all 291 networks, the 224 non-zero ones and the top 20%. Mean +- 95% CI over seeds.", "",
             "| one-shot | seeds | search s | children (distinct) | tau all | tau non-zero | tau top 20% | rho all "
             "| regret pick (pp) | regret confirmed (pp) | within 0.5 pp |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in res["controllers"].items():
        lines.append(f"| {name} | {e['seeds']} | {e['wall'][0]:.0f} + {e['confirm_seconds'][0]:.0f} | "
                     f"{e['children'][0]:.0f} ({e['distinct'][0]:.0f}) | {f(e['tau_all'])} | {f(e['tau_nonzero'])} | "
                     f"{f(e['tau_top20'])} | {f(e['rho_all'])} | {f(e['regret_pick'], 2)} | "
                     f"{f(e['regret_confirmed'], 2)} | {e['within_half_pp']:.1f} |")
    lines += ["", "Multi-trial controllers simulated on the table for the same wall time (search + confirmation of "
              "the one-shot run, paired by seed), and for ten times it: regret in pp (trials done).", "",
              "| one-shot run | " + " | ".join(f"{c} equal | {c} x10" for c in
                                               next(iter(res["controllers"].values()))["multi_trial"]) + " |",
              "|---" * (1 + 2 * len(next(iter(res["controllers"].values()))["multi_trial"])) + "|"]
    for name, e in res["controllers"].items():
        cells = []
        for c, m in e["multi_trial"].items():
            cells += [f"{m['equal'][0]:.2f} ({m['trials_equal'][0]:.0f})", f"{m['x10'][0]:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if any("darts" in e for e in res["controllers"].values()):
        lines += ["", "DARTS's discretisation: unguarded (NAS-Bench-201's argmax over all ops) and guarded (no `none`, "
                  "at most 2 skips).", "", "| | skip edges | none edges | regret unguarded (pp) |", "|---|---|---|---|"]
        for name, e in res["controllers"].items():
            if "darts" in e:
                d = e["darts"]
                lines.append(f"| {name} unguarded | {f(d['raw_skip'], 1)} | {f(d['raw_none'], 1)} | "
                             f"{f(d['raw_regret'], 2)} |")
                lines.append(f"| {name} guarded | {f(d['pick_skip'], 1)} | 0 | see above |")
    return "\n".join(lines) + "\n"
