"""Which zero-cost score ranks architectures like their training does, and does any beat #params?

    python benchmarks/bench_zerocost.py                 # about 5-10 min on 2 cores
    python benchmarks/bench_zerocost.py --quick         # 40 nb201mini networks, 300 resamples

Every score of nasty.scores (naswot, synflow, snip, grad_norm, jacob_cov, params, macs), and a
few rank averages of 2-3 of them, computed on one batch of 64 Fashion-MNIST training images
(seed 0) with untrained networks (seed 0), against two truths:

- nb201mini: all 291 distinct networks of nasty's benchmark table (nasty/nasbench/table.json),
  against their trained validation and test accuracy;
- nasnet: the 20 architectures of the main job's search whose FINAL accuracy
  benchmarks/bench_proxy.py measured (benchmarks/quality/proxy.json: each at its own N, F=16,
  2 epochs on 6,000 images, mean of 2 seeds, test set). Their decisions are the seed-0 random
  search's trials, replayed here (the same proposals in the same order; checked against the N
  recorded in proxy.json). The scores see each one's PROXY network, what the screen scores.

On the nasnet set, each data score is computed a second time with another batch and initialisation
(seed 1): on 20 networks, how far a score agrees with itself bounds what its rho means.

For each: Spearman rho and Kendall tau (tau-b) with 90% bootstrap intervals over the networks,
the paired bootstrap interval of rho(score) - rho(params) (one resample serves every score), and
the seconds per candidate (building the network, then each score, one thread). A score whose
value is NaN or infinite ranks last, as in the screen. Results: benchmarks/zerocost/results.json
and results.md (docs/screening.md explains them).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nasty  # noqa: E402
from nasty.nasbench.simulate import rank_agreement  # noqa: E402
from nasty.scores import SCORES, batch_of, evaluate, ranks  # noqa: E402

# rank averages measured beside the single scores (chosen before looking at the results): the
# two most cited scores together, each with #params, Abdelfattah et al.'s "vote" trio, and the
# size baseline the screen falls back to
COMBOS = {"naswot+synflow": ("naswot", "synflow"), "naswot+params": ("naswot", "params"),
          "synflow+params": ("synflow", "params"), "synflow+jacob_cov+snip": ("synflow", "jacob_cov", "snip"),
          "macs+params": ("macs", "params")}
BASELINE = "params"
HERE = Path(__file__).resolve().parent


def key_of(scored, which) -> list[float]:
    """A higher-is-better number per candidate: minus its (average) rank; missing values last."""
    per = [ranks([s.values.get(w) for s in scored]) for w in which]
    return [-sum(r[i] for r in per) / len(per) for i in range(len(scored))]


def agreement(keys: dict, truth: list[float], draws: int, seed: int = 0) -> dict:
    """rho and tau of every key against the truth, with 90% bootstrap intervals, and the paired
    interval of each rho minus the baseline's."""
    n = len(truth)
    point = {k: rank_agreement(v, truth) for k, v in keys.items()}
    rng = random.Random(seed)
    boot = {k: ([], []) for k in keys}
    for _ in range(draws):
        idx = [rng.randrange(n) for _ in range(n)]
        t = [truth[i] for i in idx]
        for k, v in keys.items():
            tau, rho = rank_agreement([v[i] for i in idx], t)
            boot[k][0].append(tau)
            boot[k][1].append(rho)

    def q(xs, p):
        xs = sorted(x for x in xs if x == x)
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else math.nan
    out = {}
    for k in keys:
        taus, rhos = boot[k]
        diff = [a - b for a, b in zip(rhos, boot[BASELINE][1])]
        dtau = [a - b for a, b in zip(taus, boot[BASELINE][0])]
        out[k] = {"rho": point[k][1], "rho_lo": q(rhos, 0.05), "rho_hi": q(rhos, 0.95),
                  "tau": point[k][0], "tau_lo": q(taus, 0.05), "tau_hi": q(taus, 0.95),
                  "rho_diff": point[k][1] - point[BASELINE][1], "diff_lo": q(diff, 0.05), "diff_hi": q(diff, 0.95),
                  "tau_diff_lo": q(dtau, 0.05), "tau_diff_hi": q(dtau, 0.95)}
    return out


def seconds_per(scored) -> dict:
    out = {}
    for name in ["build", *SCORES]:
        xs = [s.seconds[name] for s in scored if name in s.seconds]
        if xs:
            out[name] = statistics.mean(xs)
    return out


def nb201mini_networks(limit=None):
    """(genotypes, val accs, test accs, names) of the table's distinct networks."""
    from nasty.nasbench.table import load_table
    from nasty.searchspaces.nb201mini import arch_genotype, live_edges
    table = load_table()
    seen = {}
    for r in table["rows"]:
        seen.setdefault(r["live"], r)
    rows = sorted(seen.values(), key=lambda r: r["live"])
    if limit:
        rows = random.Random(0).sample(rows, limit)
    return ([arch_genotype(live_edges(tuple(r["ops"]))) for r in rows], [r["val_acc"] for r in rows],
            [r["test_acc"] for r in rows], [r["live"] for r in rows])


def nasnet_trials(max_trial: int) -> dict[int, dict]:
    """{trial: decisions} of the main job's seed-0 random search (bench_quality's `random` run):
    the search loop's proposals replayed (random controller, budget 600MFLOPs at the target,
    F fitted by --fit, which nasnet turns on), numbered as the loop numbers its trials."""
    from nasty.controllers import RandomController
    from nasty.cost import cost
    from nasty.search.budget import Budget, Costed, fit_width
    from nasty.space import load_space
    space, budget = load_space("nasnet"), Budget.parse("600MFLOPs")
    ctrl, trials, n = RandomController(space, seed=0), {}, 0
    while n <= max_trial:
        values, g = space.sample(ctrl.ask())
        c = cost(g)
        fitted = fit_width(space, dict(values), budget, Costed(dict(values), g, c.macs, c.params))
        if fitted is None:
            continue                          # over budget even at the smallest F: rejected, no number
        trials[n] = fitted.values
        n += 1
    return trials


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 nb201mini networks and 300 resamples (a smoke run)")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--out", default=str(HERE / "zerocost"))
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    draws = 300 if args.quick else args.bootstrap
    t_start = time.time()
    load = os.getloadavg()[0]
    from nasty.data import load_dataset, split_train_val
    data = load_dataset("fashion-mnist")
    batch = batch_of(data, args.images, seed=0, rows=split_train_val(data, 0.1, seed=0)[0])
    which = tuple(SCORES)
    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores", "load_start": load,
           "images": args.images, "bootstrap": draws, "baseline": BASELINE, "combos": COMBOS, "sets": {}}

    # 1. nb201mini: the whole table
    gs, val, test, names = nb201mini_networks(40 if args.quick else None)
    print(f"nb201mini: scoring {len(gs)} networks ...", flush=True)
    scored = evaluate(gs, batch, which, progress=True)
    keys = {w: key_of(scored, (w,)) for w in which}
    keys.update({k: key_of(scored, v) for k, v in COMBOS.items()})
    doc["sets"]["nb201mini"] = {
        "networks": len(gs), "seconds": seconds_per(scored),
        "missing": {w: sum(s.values[w] is None for s in scored) for w in which},
        "val": agreement(keys, val, draws), "test": agreement(keys, test, draws),
        "scores": [{"live": n, **s.values} for n, s in zip(names, scored)]}

    # 2. nasnet: the 20 architectures whose final accuracy bench_proxy measured
    proxy = json.loads((HERE / "quality" / "proxy.json").read_text())
    trials = nasnet_trials(max(proxy["trials"]))
    got_n = [trials[t]["N"] for t in proxy["trials"]]
    if got_n != proxy["N"]:
        sys.exit(f"the replayed search's trials do not match proxy.json (N {got_n} != {proxy['N']})")
    from nasty.space import load_space
    space = load_space("nasnet")
    pgs = [space.genotype(trials[t], proxy=True, input=batch.input, classes=batch.classes) for t in proxy["trials"]]
    print(f"nasnet: scoring {len(pgs)} proxies ...", flush=True)
    scored_n = evaluate(pgs, batch, which, progress=True)
    keys_n = {w: key_of(scored_n, (w,)) for w in which}
    keys_n.update({k: key_of(scored_n, v) for k, v in COMBOS.items()})
    # the scores' own noise on this small set: another batch and another initialisation (seed 1)
    batch1 = batch_of(data, args.images, seed=1, rows=split_train_val(data, 0.1, seed=0)[0])
    data_scores = tuple(w for w in which if SCORES[w].needs_data)
    scored_n1 = evaluate(pgs, batch1, data_scores, seed=1, progress=True)
    keys_n.update({f"{w}, seed 1": key_of(scored_n1, (w,)) for w in data_scores})
    keys_n["trained proxy (search)"] = list(proxy["scores"]["default"])
    doc["sets"]["nasnet"] = {
        "networks": len(pgs), "trials": proxy["trials"], "seconds": seconds_per(scored_n),
        "missing": {w: sum(s.values[w] is None for s in scored_n) for w in which},
        "final": agreement(keys_n, proxy["truth"], draws),
        "scores": [{"trial": t, **s.values} for t, s in zip(proxy["trials"], scored_n)]}
    doc["wall_s"] = time.time() - t_start
    doc["load_end"] = os.getloadavg()[0]
    doc["default"] = choose_default(doc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "results.md").write_text(table(doc))
    print(table(doc))


def choose_default(doc) -> dict:
    """The rule of issue 20: a score or rank average becomes the default screen only if its paired
    interval against params excludes 0 (above it) on nb201mini's validation accuracy, and it is not
    worse than params on the nasnet set (point estimate); else the screen ranks by MACs and params."""
    val, fin = doc["sets"]["nb201mini"]["val"], doc["sets"]["nasnet"]["final"]
    winners = [k for k in val if k not in (BASELINE, "macs+params", "macs") and val[k]["diff_lo"] > 0
               and fin.get(k, {}).get("rho_diff", -1) >= 0]
    if not winners:
        return {"screen": "macs,params", "why": "no score or rank average beat params with a paired interval "
                                                "excluding 0 (nb201mini validation accuracy)"}
    best = max(winners, key=lambda k: val[k]["diff_lo"])
    return {"screen": ",".join(COMBOS.get(best, (best,))), "why": f"{best}: paired interval against params "
            f"[{val[best]['diff_lo']:+.2f}, {val[best]['diff_hi']:+.2f}] on nb201mini"}


def table(doc) -> str:
    def f(r, k):
        return f"{r[k]:.2f} [{r[k + '_lo']:.2f}, {r[k + '_hi']:.2f}]"

    def diff(r, name):
        return "-" if name == BASELINE else f"{r['rho_diff']:+.2f} [{r['diff_lo']:+.2f}, {r['diff_hi']:+.2f}]"
    nb, nn = doc["sets"]["nb201mini"], doc["sets"]["nasnet"]
    lines = [f"Zero-cost scores against trained accuracy ({doc['date']}, {doc['machine']}, load "
             f"{doc['load_start']:.1f} at the start, {doc['load_end']:.1f} at the end; one batch of {doc['images']} "
             f"Fashion-MNIST training images, untrained networks, seed 0; {doc['bootstrap']} bootstrap resamples; "
             "rho: Spearman, tau: Kendall tau-b, [90% interval]; diff: rho minus params' rho, with the paired "
             "interval (holding 0: not distinguishable from params)).", "",
             f"### nb201mini: all {nb['networks']} distinct networks of the benchmark table", "",
             "| score | rho vs val | tau vs val | diff vs params (val) | rho vs test | tau vs test | "
             "diff vs params (test) | s per candidate | NaN/inf |", "|---|---|---|---|---|---|---|---|---|"]
    for k, r in nb["val"].items():
        t = nb["test"][k]
        sec = nb["seconds"].get(k)
        lines.append(f"| {k} | {f(r, 'rho')} | {f(r, 'tau')} | {diff(r, k)} | {f(t, 'rho')} | {f(t, 'tau')} | "
                     f"{diff(t, k)} | {'' if sec is None else f'{sec:.3f}'} | {nb['missing'].get(k, '')} |")
    lines += ["", f"Building a network takes {nb['seconds'].get('build', 0):.3f} s per candidate before its first "
                  "data score (params and macs need none: they are analytic).", "",
              f"### nasnet: the {nn['networks']} main-job architectures with a measured final accuracy "
              "(benchmarks/quality/proxy.json); scores on their proxies", "",
              "| score | rho vs final | tau vs final | diff vs params | s per candidate | NaN/inf |",
              "|---|---|---|---|---|---|"]
    for k, r in nn["final"].items():
        sec = nn["seconds"].get(k)
        lines.append(f"| {k} | {f(r, 'rho')} | {f(r, 'tau')} | {diff(r, k)} | {'' if sec is None else f'{sec:.3f}'} | "
                     f"{nn['missing'].get(k, '')} |")
    lines += ["", f"Building a proxy takes {nn['seconds'].get('build', 0):.3f} s per candidate.", "",
              f"Default screen: **{doc['default']['screen']}** ({doc['default']['why']}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
