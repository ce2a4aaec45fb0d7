"""Which proxy ranks architectures the way their final training does?

    python benchmarks/bench_proxy.py                  # after bench_quality.py (reads its main search)

The main job's search (runs/quality/runs/random, written by bench_quality.py) scored its trials
on the default proxy. This bench trains the same architectures again on other proxies of the
nasnet space, and compares every proxy's ranking with the architectures' FINAL accuracy:

- truth: each trial's final network (full-size cells at its own N, F = --F, `nasty train`'s short
  recipe, --epochs on --subset images, --seeds seeds averaged), scored on the Fashion-MNIST test set;
  the cells-only truth of bench_quality (N=2 for every trial, seed 0) is reported beside it;
- proxies (each trained as the search trains a trial: SGD, batch 64, lr 0.05, scored on the
  search's 2,000 validation images):
    default            ceil(N/2) cells per stack, F=8, 2 epochs on 6,000 images (the search's own score)
    default reseeded   the same, another seed: how well the proxy agrees with itself (its ceiling)
    N=1                one cell per stack, F=8 (the proxy before this wave: blind to N)
    N cells            the trial's own N, F=8 (about 3x the default's cost at N=6)
    1 epoch x 12000    the default's cells, one epoch on twice the images
    4 epochs x 3000    the default's cells, four epochs on half the images

Spearman's rho of each proxy against the truth, with a 90% bootstrap interval over the
architectures, and the paired bootstrap interval of its difference from the default's rho: a
difference whose interval holds 0 is inside the noise. Results: runs/quality/proxy.json and
proxy.md (every training is cached in proxy_trainings.jsonl, so an interrupted run continues).

Issue 20 (the proxies with BatchNorm statistics recomputed before validation, as every search
trial has done since issue 19; `--reference default+bn` compares with today's default):

    default+bn             the search's proxy today: the default above with --precise-bn 1024
    1 epoch x 12000+bn     one pass over twice the distinct images (the same cost)
    cosine to 0+bn         a cosine learning rate from the peak to 0 (one-cycle already ends at
                           1/steps of the peak: its last step's rate is lr / (0.75 steps + 1))
    default reseeded+bn    the default with another seed (its own noise)
and, from each of those trainings, its ", loss sum" (minus the summed training losses: ranking
by the training curve) and its ", val 6000" (the whole 6,000-image validation split).

When runs/quality/runs/random is gone, `--recorded benchmarks/quality/proxy.json` (the default)
gives the trials, their recorded search scores and the truth, and the trials' decisions are
replayed from the seed-0 random search (checked against the N recorded there):

    python benchmarks/bench_proxy.py --out runs/quality_bn --reference default+bn \
        --variants "default+bn,default reseeded+bn,1 epoch x 12000+bn,cosine to 0+bn"
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import at_data, spearman, train_final  # noqa: E402

import nasty  # noqa: E402
import nasty.searchspaces.nasnet as nasnet_module  # noqa: E402
from nasty.searchspaces.nasnet import proxy_n  # noqa: E402
from nasty.space import FixedTrial, load_space  # noqa: E402

# name: (cells per stack from the trial's N, epochs, training images, seed offset[, options]); options:
# precise_bn (BatchNorm statistics recomputed on that many training images before each validation, as
# every search trial does since issue 19; BN below), schedule (onecycle, cosine)
BN = "bn"         # the search's own --precise-bn (1024 images)
VARIANTS = {      # (no commas in the names: --variants is a comma-separated list)
    "default": (proxy_n, 2, 6000, 0),
    "N=1": (lambda n: 1, 2, 6000, 0),
    "default reseeded": (proxy_n, 2, 6000, 1000),
    "N cells": (lambda n: n, 2, 6000, 0),
    "1 epoch x 12000": (proxy_n, 1, 12000, 0),
    "4 epochs x 3000": (proxy_n, 4, 3000, 0),
    # issue 20 (with the BN recomputation of issue 19): today's default, and the changes measured against it
    "default+bn": (proxy_n, 2, 6000, 0, {"precise_bn": BN}),
    "1 epoch x 12000+bn": (proxy_n, 1, 12000, 0, {"precise_bn": BN}),
    "cosine to 0+bn": (proxy_n, 2, 6000, 0, {"precise_bn": BN, "schedule": "cosine"}),
    "default reseeded+bn": (proxy_n, 2, 6000, 1000, {"precise_bn": BN}),
}
# scores every training with recomputed BN statistics also gives, beside its final validation accuracy
# on the search's 2,000 images: ", loss sum" (minus the sum of the epochs' mean training losses: ranking
# by the training curve) and ", val 6000" (the whole 6,000-image validation split: 94 batches of 64)


def proxy_genotype(space, decisions: dict, cells):
    """The nasnet proxy of `decisions` with `cells(N)` normal cells per stack instead of the
    space's own proxy_n(N) (F stays PROXY_F): the space function reads proxy_n from its module."""
    saved = nasnet_module.proxy_n
    nasnet_module.proxy_n = cells
    try:
        return space.genotype(FixedTrial(decisions), proxy=True)
    finally:
        nasnet_module.proxy_n = saved


def bootstrap(truth, scores: dict, draws: int, seed: int = 0, reference: str = "default") -> dict:
    """90% intervals of each proxy's rho and of its difference from the reference's (the default's),
    resampling the architectures (paired: one resample serves every proxy)."""
    rng = random.Random(seed)
    n = len(truth)
    rhos = {k: [] for k in scores}
    for _ in range(draws):
        idx = [rng.randrange(n) for _ in range(n)]
        t = [truth[i] for i in idx]
        if len(set(t)) < 2:
            continue
        for k, s in scores.items():
            rhos[k].append(spearman([s[i] for i in idx], t))

    def q(xs, p):
        xs = sorted(x for x in xs if x == x)
        return xs[min(len(xs) - 1, int(p * len(xs)))]
    out = {}
    for k in scores:
        diff = [a - b for a, b in zip(rhos[k], rhos[reference])]
        out[k] = {"lo": q(rhos[k], 0.05), "hi": q(rhos[k], 0.95), "diff_lo": q(diff, 0.05), "diff_hi": q(diff, 0.95)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/quality", help="bench_quality's folder (default runs/quality)")
    ap.add_argument("--archs", type=int, default=20, help="the main search's best OK trials compared")
    ap.add_argument("--F", type=int, default=16, help="the truth's F (default 16, bench_quality's)")
    ap.add_argument("--epochs", type=int, default=2, help="the truth's epochs (default 2, bench_quality's)")
    ap.add_argument("--subset", type=int, default=6000, help="the truth's training images (default 6000)")
    ap.add_argument("--seeds", type=int, default=2, help="the truth's seeds, averaged (default 2)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="proxies to train, in this order")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--device", default=None)
    ap.add_argument("--reference", default="default", help="the proxy the others are compared with (paired)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training (default 1: on a shared "
                                                             "2-core machine 2 threads ran 20x slower)")
    ap.add_argument("--recorded", default=str(Path(__file__).resolve().parent / "quality" / "proxy.json"),
                    help="when the main search's run folder is gone: its trials, their recorded search scores and "
                         "the truth, from this proxy.json (the trials' decisions are replayed: the seed-0 random "
                         "search proposes the same samples in the same order)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    run = out / "runs" / "random"
    import numpy as np
    import torch

    from nasty.compile import compile_genotype
    from nasty.search.runner import load_data
    from nasty.search.settings import Settings
    from nasty.train import TrainConfig, evaluate, train

    t_start = time.time()
    replayed = None
    if (run / "best.json").is_file():
        cfg = json.loads((run / "config.json").read_text())
        s = Settings(**{k: v for k, v in cfg.items() if k in Settings.__dataclass_fields__}).resolved(gpu=False)
        result = nasty.search.SearchResult(run, json.loads((run / "best.json").read_text()))
        trials = [r for r in result.leaderboard if r.status == "ok"][:args.archs]
    elif Path(args.recorded).is_file():
        replayed = json.loads(Path(args.recorded).read_text())
        trials = replayed_trials(replayed)[:args.archs]
        s = Settings(space="nasnet", budget="600MFLOPs").resolved(gpu=False)      # the main job's settings
        print(f"no main search in {run}: its {len(trials)} trials replayed from {args.recorded}", flush=True)
    else:
        sys.exit(f"no finished main search in {run}: run benchmarks/bench_quality.py first")
    data, train_idx, val_idx = load_data(s)
    full_train = np.setdiff1d(np.arange(len(data.train_y)), val_idx)
    from nasty.data import split_train_val, to_device_tensors
    whole_val = split_train_val(data, s.val_fraction, seed=s.seed)[1]
    x_whole, y_whole = to_device_tensors(data.train_x[whole_val], data.train_y[whole_val], "cpu", data.mean, data.std)
    proxy_space = at_data(load_space("nasnet"), data.shape, data.num_classes)

    cache_path = out / "proxy_trainings.jsonl"
    cache = {}
    if cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            d = json.loads(line)
            cache[(d["variant"], d["trial"])] = d

    def proxy_score(variant: str, r) -> float:
        if (variant, r.trial) in cache:
            return cache[(variant, r.trial)]["val_acc"]
        cells, epochs, images, seed_offset, *more = VARIANTS[variant]
        opts = dict(more[0]) if more else {}
        if opts.get("precise_bn") == BN:
            opts["precise_bn"] = s.precise_bn
        g = proxy_genotype(proxy_space, r.decisions, cells)
        seed = s.seed + r.trial + seed_offset
        rows = train_idx if images == len(train_idx) else \
            np.sort(np.random.default_rng(s.seed + images).choice(full_train, images, replace=False))
        torch.manual_seed(seed)
        model = compile_genotype(g, input=data.shape, classes=data.num_classes)
        tc = TrainConfig(epochs=epochs, batch_size=s.batch_size, lr=s.lr, seed=seed,
                         device=args.device or "auto", threads=args.threads, **opts)
        t0 = time.time()
        res = train(model, data, tc, rows, val_idx)
        seconds = time.time() - t0
        d = {"variant": variant, "trial": r.trial, "val_acc": res.final_val_acc, "seconds": seconds,
             "macs": nasty.cost(g).macs, "options": opts,
             # the same training scored two more ways: its curve, and the whole validation split
             "loss_sum": -sum(h["train_loss"] for h in res.history),
             "val_whole": evaluate(model.to("cpu"), x_whole, y_whole) if opts.get("precise_bn") else None}
        with open(cache_path, "a") as f:
            f.write(json.dumps(d) + "\n")
        cache[(variant, r.trial)] = d
        print(f"  {variant:18s} trial {r.trial:3d}: {d['val_acc']:.4f} ({d['seconds']:.0f} s)", flush=True)
        return d["val_acc"]

    # the truth: final networks at each trial's own N (the cells-only N=2 network of bench_quality
    # is the same network when N=2, so its seed-0 training is reused)
    qargs = argparse.Namespace(epochs=args.epochs, subset=args.subset, device=args.device)
    truth, truth_cells, truth_seeds = [], [], []
    if replayed is not None:                  # the truth as recorded (its trainings are gone with the run)
        n = len(trials)
        truth, truth_cells, truth_seeds = (list(replayed["truth"][:n]), list(replayed["truth_cells"][:n]),
                                           [list(x) for x in replayed["truth_seeds"][:n]])
    for r in (trials if replayed is None else ()):
        n = r.decisions["N"]
        g = proxy_space.genotype(FixedTrial({**r.decisions, "F": args.F}))
        accs = []
        for seed in range(args.seeds):
            name = f"rank_trial{r.trial}" if n == 2 and args.F == 16 else f"own_trial{r.trial}"
            accs.append(train_final(g, name, seed, qargs, out)["test_acc"])
        truth.append(statistics.mean(accs))
        truth_seeds.append(accs)
        cells_only = proxy_space.genotype(FixedTrial({**r.decisions, "N": 2, "F": args.F}))
        truth_cells.append(train_final(cells_only, f"rank_trial{r.trial}", 0, qargs, out)["test_acc"])
        print(f"truth trial {r.trial}: N={n} {accs} (cells only, N=2: {truth_cells[-1]})", flush=True)

    scores = {"default": [r.val_acc for r in trials]}      # the search's own score, as recorded
    for v in [x.strip() for x in args.variants.split(",") if x.strip()]:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
        if v != "default":
            scores[v] = [proxy_score(v, r) for r in trials]
            if VARIANTS[v][4:] and VARIANTS[v][4].get("precise_bn"):
                scores[f"{v}, loss sum"] = [cache[(v, r.trial)]["loss_sum"] for r in trials]
                scores[f"{v}, val 6000"] = [cache[(v, r.trial)]["val_whole"] for r in trials]
            partial(out, args, trials, truth, truth_cells, truth_seeds, scores, t_start)
    if "default reseeded" in scores:        # what a second seed buys: the two seeds' mean
        scores["default, mean of 2 seeds"] = [(a + b) / 2 for a, b in zip(scores["default"],
                                                                          scores["default reseeded"])]
    if "default reseeded+bn" in scores and "default+bn" in scores:
        scores["default+bn, mean of 2 seeds"] = [(a + b) / 2 for a, b in zip(scores["default+bn"],
                                                                             scores["default reseeded+bn"])]
    doc = partial(out, args, trials, truth, truth_cells, truth_seeds, scores, t_start, final=True)
    print(table(doc))


def replayed_trials(doc) -> list:
    """The main search's trials from a proxy.json: their decisions replayed (bench_zerocost.nasnet_trials:
    the seed-0 random search's proposals, checked against the N recorded), their recorded search score."""
    from types import SimpleNamespace

    from bench_zerocost import nasnet_trials
    decisions = nasnet_trials(max(doc["trials"]))
    got = [decisions[t]["N"] for t in doc["trials"]]
    if got != doc["N"]:
        sys.exit(f"the replayed trials do not match {doc['trials']} (N {got} != {doc['N']})")
    return [SimpleNamespace(trial=t, decisions=decisions[t], val_acc=v, status="ok")
            for t, v in zip(doc["trials"], doc["scores"]["default"])]


def partial(out, args, trials, truth, truth_cells, truth_seeds, scores, t_start, final=False) -> dict:
    seconds = {}
    cache_path = out / "proxy_trainings.jsonl"
    for line in cache_path.read_text().splitlines() if cache_path.is_file() else ():
        d = json.loads(line)
        seconds.setdefault(d["variant"], []).append(d["seconds"])
    boot = bootstrap(truth, scores, args.bootstrap,
                     reference=args.reference if args.reference in scores else "default")
    import os
    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg()[0], "args": vars(args),
           "trials": [r.trial for r in trials],
           "N": [r.decisions["N"] for r in trials], "truth": truth, "truth_cells": truth_cells, "scores": scores,
           "rows": {k: {"rho": spearman(v, truth), "rho_cells": spearman(v, truth_cells), **boot[k],
                        "seconds_per_arch": statistics.mean(seconds[k]) if k in seconds else None}
                    for k, v in scores.items()},
           "truth_seeds": truth_seeds, "wall_s": time.time() - t_start, "partial": not final}
    if "default reseeded" in scores:
        # the proxy's own noise: the search's score against the same proxy trained with another seed
        doc["proxy_self_rho"] = spearman(scores["default"], scores["default reseeded"])
    if "default reseeded+bn" in scores and "default+bn" in scores:
        doc["proxy_self_rho_bn"] = spearman(scores["default+bn"], scores["default reseeded+bn"])
    if truth_seeds and len(truth_seeds[0]) > 1:
        # the truth's own noise: how well one seed of the final training ranks like another
        a, b = [x[0] for x in truth_seeds], [x[1] for x in truth_seeds]
        doc["truth_self_rho"] = spearman(a, b)
        doc["truth_self_interval"] = [bootstrap(a, {"default": b}, args.bootstrap)["default"][k] for k in ("lo", "hi")]
    (out / "proxy.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "proxy.md").write_text(table(doc))
    return doc


def table(doc) -> str:
    a = doc["args"]
    lines = [f"Proxy score -> final test accuracy over {len(doc['trials'])} architectures of the main job's "
             f"search (nasnet space, Fashion-MNIST). Truth: each final network at its own N (N = "
             f"{', '.join(map(str, doc['N']))}), F={a['F']}, {a['epochs']} epochs on {a['subset']} images, "
             f"mean of {a['seeds']} seeds. rho: Spearman; [90% bootstrap interval over the architectures]; "
             f"diff: paired interval of rho minus that of `{a.get('reference', 'default')}` (holding 0: inside "
             f"the noise). {doc['date']}, load {doc.get('load', float('nan')):.1f}.", "",
             "| proxy | rho vs final | 90% interval | diff vs default | rho vs cells only (N=2) | s per arch |",
             "|---|---|---|---|---|---|"]
    for k, r in doc["rows"].items():
        sec = f"{r['seconds_per_arch']:.0f}" if r["seconds_per_arch"] is not None else "(search)"
        diff = "-" if k == a.get("reference", "default") else f"[{r['diff_lo']:+.2f}, {r['diff_hi']:+.2f}]"
        lines.append(f"| {k} | {r['rho']:.2f} | [{r['lo']:.2f}, {r['hi']:.2f}] | {diff} | {r['rho_cells']:.2f} | {sec} |")
    if "truth_self_rho" in doc:
        lo, hi = doc["truth_self_interval"]
        lines += ["", f"The truth's own noise: seed 0 against seed 1 of the final trainings, rho = "
                      f"{doc['truth_self_rho']:.2f} [{lo:.2f}, {hi:.2f}]: no proxy can rank much better than that."]
    if "proxy_self_rho" in doc:
        lines += [f"The proxy's own noise: the search's score against the same proxy with another seed, rho = "
                  f"{doc['proxy_self_rho']:.2f}."]
    if "proxy_self_rho_bn" in doc:
        lines += [f"With recomputed BatchNorm statistics, the default proxy against itself with another seed: "
                  f"rho = {doc['proxy_self_rho_bn']:.2f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
