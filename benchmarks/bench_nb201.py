"""NAS-Bench-201 (CIFAR-10, 12 epochs): do the controllers beat random search, and does a screen by
params pay? Every figure of docs/benchmarks-nb201.md, reproduced by one command.

    python benchmarks/bench_nb201.py                     # all parts; a part already written is kept
    python benchmarks/bench_nb201.py --only main --seeds 20 --out /tmp/nb201   # a quick look

Parts (each writes results.json, results.md, regret.png/.svg: main in --out, default
benchmarks/nb201, the others in folders under it; a part whose results.json holds the same
settings is kept):
- main: `nasty bench run --table nb201 --seeds 200`: random, regularized evolution, REINFORCE, TPE
  and NSGA-II with their defaults, each plain and behind the screen (best of K=5 by params),
  300 evaluations, regret and the pick's test accuracy at 25, 50, 100 and 300;
- k: the screen's K for random search and evolution (K = 2, 3, 5, 10, 20, 50), the sweep the
  default K=5 was chosen from (k_sweep.png/.svg);
- variants: controller settings at 100 evaluations (the goal's budget): evolution's population
  and tournament (NAS-Bench-201's P=10 S=3, ours P=20 S=5, P=20 S=10, P=50 S=25, Real et al.'s
  P=100 S=25), TPE's start-up trials and univariate TPE, REINFORCE's learning rate.
Then summary.md gathers the verdicts and the sweeps in one page.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nasty.commands.bench import NB201_K  # noqa: E402
from nasty.nasbench.simulate import run_benchmark  # noqa: E402

MAIN = ["random", "evolution", "reinforce", "tpe", "nsga2"]
KS = [2, 3, 5, 10, 20, 50]
VARIANTS = ["random", "evolution:population=10:sample=3", "evolution", "evolution:population=20:sample=10",
            "evolution:population=50:sample=25", "evolution:population=100:sample=25", "tpe",
            "tpe:n_startup_trials=5", "tpe:n_startup_trials=20", "tpe:n_startup_trials=30",
            "tpe:multivariate=false", "reinforce", "reinforce:lr=0.005", "reinforce:lr=0.02",
            "reinforce:lr=0.05"]


def _same(res: dict, seeds: int, kw: dict) -> bool:
    """Does a results.json hold this part (so that a rerun keeps it)?"""
    screen = kw.get("screen")
    keys = ([c for c in kw["controllers"]] if kw.get("plain", True) or not screen else []) \
        + ([f"{c} +screen" for c in kw["controllers"]] if screen else [])
    return (res.get("seeds") == seeds and res.get("trials") == kw["trials"] and res.get("at") == kw["at"]
            and res.get("screen") == ({"score": screen, "K": kw["k"]} if screen else None)
            and list(res.get("controllers", {})) == keys)


def part(out: Path, name: str, seeds: int, force: bool, **kw) -> dict:
    """One part, in out/name (the main part in out itself: what `nasty bench run --table nb201 --seeds
    200 --out benchmarks/nb201` writes)."""
    folder = out if name == "main" else out / name
    done = folder / "results.json"
    if done.exists() and not force:
        res = json.loads(done.read_text())
        if _same(res, seeds, kw):
            print(f"bench_nb201: {name}: already in {done}", flush=True)
            return res
    t0 = time.perf_counter()
    res = run_benchmark("nb201", seeds=seeds, out_dir=folder, log=lambda s: print(s, flush=True), **kw)
    print(f"bench_nb201: {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return res


def k_plot(main: dict | None, ks: dict, path: Path) -> None:
    """Regret at 50, 100 and 300 evaluations against the screen's K (K=1: no screen), PNG and SVG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, name in zip(axes, ("random", "evolution")):
        for a, color in ((50, "tab:red"), (100, "tab:blue"), (300, "tab:green")):
            pts = [(1, main["controllers"][name])] if main else []
            pts += [(k, res["controllers"][f"{name} +screen"]) for k, res in sorted(ks.items())]
            x = [k for k, _ in pts]
            m = [e["regret_mean"][a - 1] for _, e in pts]
            ci = [e["regret_ci95"][a - 1] for _, e in pts]
            ax.errorbar(x, m, yerr=ci, marker="o", capsize=3, color=color, label=f"after {a} evaluations")
        ax.set_xscale("log")
        ax.set_xticks([1, *sorted(ks)], [str(k) for k in [1, *sorted(ks)]])
        ax.set_xlabel("K (best of K proposals by params; 1 = no screen)")
        seeds = next(iter(ks.values()))["seeds"] if ks else main["seeds"]
        ax.set_title(f"{name}: regret vs the screen's K ({seeds} seeds, 95% CI)", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("regret (validation, pp)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)


def _cell(e, a, key="regret", d=3):
    return f"{e[f'{key}_mean'][a - 1]:.{d}f} ± {e[f'{key}_ci95'][a - 1]:.{d}f}"


def summary(parts: dict) -> str:
    lines = ["# NAS-Bench-201 (CIFAR-10, 12 epochs): summary of benchmarks/bench_nb201.py", ""]
    main = parts.get("main")
    if main:
        at = main["at"]
        run = main.get("run", {})
        lines += [f"Main table: {main['seeds']} seeds, {main['trials']} evaluations per search; screen = best of "
                  f"K={main['screen']['K']} proposals by {main['screen']['score']}. Regret (pp, validation) and the "
                  "pick's test accuracy (%), mean ± 95% CI. "
                  f"Run {run.get('date', '?')} on {run.get('machine', '?')}, load average {run.get('load_start')} "
                  f"at the start, {run.get('load_end')} at the end, {main['seconds'] / 60:.0f} min.", "",
                  "| controller | " + " | ".join(f"regret@{a}" for a in at) + " | "
                  + " | ".join(f"test@{a}" for a in at) + " |", "|---" * (1 + 2 * len(at)) + "|"]
        for name, e in main["controllers"].items():
            lines.append(f"| {name} | " + " | ".join(_cell(e, a) for a in at) + " | "
                         + " | ".join(_cell(e, a, "test", 2) for a in at) + " |")
        v = main.get("verdict") or {}
        if v:
            lines += ["", f"Goal 1, every controller beats random at {v['at']} evaluations (intervals disjoint): "
                      + ("**met**" if v["every_controller_beats_random"] else "**not met**") + "."]
            for key, b in v["vs_random"].items():
                lines.append(f"- {key}: {b['regret']:.3f} ± {b['ci95']:.3f} (upper {b['upper']:.3f}) vs random's lower "
                             f"{b['random_lower']:.3f}: " + ("yes" if b["beats_random"] else "no"))
            s = v.get("screened_evolution")
            if s:
                lines += ["", f"Goal 2, screened evolution at {s['at']} matches plain evolution at {s['plain_at']}: "
                          + ("**met**" if s["matches"] else "**not met**")
                          + f" ({s['regret']:.3f} ± {s['ci95']:.3f} vs {s['plain_regret']:.3f} ± {s['plain_ci95']:.3f}; "
                          f"difference {s['difference']:+.3f} ± {s['difference_ci95']:.3f} pp)."]
    if parts.get("k"):
        lines += ["", "## The screen's K (random search and evolution, regret in pp)", "",
                  "| K | random @50 | random @100 | random @300 | evolution @50 | evolution @100 | evolution @300 |",
                  "|---|---|---|---|---|---|---|"]
        if main:
            r, e = main["controllers"]["random"], main["controllers"]["evolution"]
            lines.append("| 1 (no screen) | " + " | ".join(_cell(x, a) for x in (r, e) for a in (50, 100, 300)) + " |")
        for k, res in sorted(parts["k"].items()):
            c = res["controllers"]
            lines.append(f"| {k} | " + " | ".join(_cell(c[f"{n} +screen"], a) for n in ("random", "evolution")
                                                   for a in (50, 100, 300)) + " |")
    var = parts.get("variants")
    if var:
        lines += ["", f"## Controller settings at 100 evaluations ({var['seeds']} seeds, no screen)", "",
                  "| controller | regret@25 | regret@50 | regret@100 | test@100 | distinct cells | repeats |",
                  "|---|---|---|---|---|---|---|"]
        for name, e in var["controllers"].items():
            lines.append(f"| {name} | {_cell(e, 25)} | {_cell(e, 50)} | {_cell(e, 100)} | {_cell(e, 100, 'test', 2)} "
                         f"| {e['unique_cells']:.1f} | {e['repeat_proposals']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "nb201"))
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--only", choices=("main", "k", "variants"), action="append", default=None)
    ap.add_argument("--jobs", type=int, default=1, help="processes sharing the seeds (results do not depend on it)")
    ap.add_argument("--force", action="store_true", help="rerun parts whose results are already written")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("main", "k", "variants"))
    parts = {}
    if "main" in only or (out / "results.json").exists():
        parts["main"] = part(out, "main", args.seeds, args.force and "main" in only, controllers=MAIN, trials=300,
                             at=[25, 50, 100, 300], screen="params", k=NB201_K, jobs=args.jobs)
    if "k" in only:
        parts["k"] = {k: part(out, f"k{k}", args.seeds, args.force, controllers=["random", "evolution"], trials=300,
                              at=[25, 50, 100, 300], screen="params", k=k, plain=False, jobs=args.jobs)
                      for k in KS}
        for k in KS:                        # one plot of the sweep instead of one per K
            for f in ("regret.png", "regret.svg"):
                (out / f"k{k}" / f).unlink(missing_ok=True)
        k_plot(parts.get("main"), parts["k"], out / "k_sweep.png")
    if "variants" in only:
        parts["variants"] = part(out, "variants", args.seeds, args.force, controllers=VARIANTS, trials=100,
                                 at=[25, 50, 100], jobs=args.jobs)
    (out / "summary.md").write_text(summary(parts))
    print(summary(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
