"""Does the search pay? The winners of real searches against the alternatives a user has,
all trained as FINAL networks at one size with one recipe, several seeds each, on Fashion-MNIST.

    python benchmarks/bench_quality.py                 # CPU defaults: shortened (say so in the table)
    python benchmarks/bench_quality.py --gpu           # the fuller recipe, on a GPU machine

Rows (every network at the dataset's input, 1x28x28, 10 classes):
- the winner of the main job (`--controller random`) and of evolution, TPE and REINFORCE, each
  searched under the same budget and time (the searches run here, in runs/quality/),
- NASNet-A's cells (the nasnet space's canonical member) and DARTS-V2's cells (the darts space's)
  at the same N and F (C and L for DARTS: C = F, L = 3N + 2 cells),
- random in-budget members of the nasnet space at the same N and F,
- hand-designed networks of at most the MACs of the largest network above, from the zoo's
  families: a ResNet-20-style net (the resnet space: basic blocks, 3-3-3-1, or shallower when even
  its narrowest width costs more) and a MobileNetV2-style one (the mbconv space), each widened to
  the largest width within those MACs,
and the rank correlation (Spearman) between the proxy score of the main job's trials and their
final accuracy at that size. Each network: mean +- std test accuracy over the seeds, MACs, params.
Results go to runs/quality/quality.json and quality.md; the README's table is copied from there.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nasty  # noqa: E402
from nasty.search.budget import Budget, fit_width  # noqa: E402
from nasty.space import FixedTrial, NetSpec, RandomTrial, load_space  # noqa: E402


def at_data(space, shape, classes):
    """The space with its target at the data's input: full-size cells on its small-image skeleton."""
    return dataclasses.replace(space, target=NetSpec(False, tuple(shape), classes))


def spearman(a, b) -> float:
    def rank(xs):
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        r = [0.0] * len(xs)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = rank(a), rank(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va and vb else float("nan")


def train_final(g, name: str, seed: int, args, out: Path) -> dict:
    """`nasty train GENOTYPE` with the bench's recipe; its checkpoint holds the test accuracy."""
    import torch

    from nasty.cli import main
    f = out / "nets" / f"{name}.nasty"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(nasty.format(g))
    ck = out / "final" / f"{name}_seed{seed}.pt"
    ck.parent.mkdir(parents=True, exist_ok=True)
    argv = ["train", str(f), "--epochs", str(args.epochs), "--seed", str(seed), "--save", str(ck)]
    if args.subset:
        argv += ["--subset", str(args.subset)]
    if args.device:
        argv += ["--device", args.device]
    if ck.is_file():                          # trained by an earlier, interrupted run of this bench
        state = torch.load(ck, map_location="cpu", weights_only=True)
        if state.get("test_acc") is not None and state.get("epoch", args.epochs) >= args.epochs:
            return {"test_acc": float(state["test_acc"]), "seconds": float(state.get("seconds", 0.0)), "cached": True}
    t0 = time.time()
    rc = main(argv)
    if rc != 0:
        return {"test_acc": None, "seconds": time.time() - t0, "error": f"nasty train exited {rc}"}
    state = torch.load(ck, map_location="cpu", weights_only=True)
    return {"test_acc": float(state["test_acc"]), "seconds": time.time() - t0}


def search(spec: str, args, out: Path):
    """One search; `spec` is a controller, with its options after colons (evolution:population=8:sample=3)."""
    controller, *options = spec.split(":")
    return nasty.search("nasnet", budget=args.budget, controller=controller, time_budget=args.search_seconds,
                        runs_dir=str(out / "runs"), name=controller, seed=args.seed, live=False,
                        controller_options=",".join(options) or None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", action="store_true", help="the fuller recipe (more epochs, all images, 3 seeds)")
    ap.add_argument("--budget", default="600MFLOPs", help="the searches' budget at their target (default 600MFLOPs)")
    ap.add_argument("--search-seconds", type=float, default=None,
                    help="time budget of each search (default 450, the main job's)")
    ap.add_argument("--controllers", default="random,evolution:population=8:sample=3,tpe,reinforce",
                    help="controllers searched, options after colons (default: random, evolution with a "
                         "population of 8 (its default 20 would leave a 20-trial search random), tpe, reinforce)")
    ap.add_argument("--N", type=int, default=2, help="final size: cells per stack (default 2)")
    ap.add_argument("--F", type=int, default=16, help="final size: filters (default 16)")
    ap.add_argument("--epochs", type=int, default=None, help="final training epochs (default 3 CPU, 20 GPU)")
    ap.add_argument("--subset", type=int, default=None, help="training images (default 12000 CPU, all GPU)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--random-members", type=int, default=3)
    ap.add_argument("--rank-archs", type=int, default=20,
                    help="main-job trials trained at the final size for the proxy->final rank correlation")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/quality")
    args = ap.parse_args(argv)
    args.epochs = args.epochs or (20 if args.gpu else 3)
    args.subset = args.subset if args.subset is not None else (None if args.gpu else 12000)
    args.search_seconds = args.search_seconds or 450.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape, classes = (1, 28, 28), 10
    t_start = time.time()

    # 1. the searches
    runs = {}
    for spec in [x.strip() for x in args.controllers.split(",") if x.strip()]:
        c = spec.split(":")[0]
        folder = out / "runs" / c
        if (folder / "best.json").is_file():      # a finished search: read it back, do not search again
            runs[c] = nasty.search.SearchResult(folder, json.loads((folder / "best.json").read_text()))
        elif (folder / "config.json").is_file():
            runs[c] = nasty.search(resume=folder)
        else:
            runs[c] = search(spec, args, out)

    # 2. the networks, all at N, F (or their equivalent) at the data's input
    nasnet = at_data(load_space("nasnet"), shape, classes)
    size = {"N": args.N, "F": args.F}
    nets: dict[str, tuple] = {}
    for c, r in runs.items():
        if r.best is not None:
            values = {**r.best.decisions, **size}
            trained = sum(1 for t in r.leaderboard if t.status == "ok")
            nets[f"winner ({c})"] = (nasnet.genotype(FixedTrial(values)), f"search, {trained} trained")
    nets["NASNet-A cells"] = (nasnet.genotype(FixedTrial({**nasnet.canonical["nasnet_a"], **size})), "paper")
    darts = at_data(load_space("darts"), shape, classes)
    dv = {**darts.canonical["darts_v2"], "C": args.F, "L": 3 * args.N + 2}
    nets["DARTS-V2 cells"] = (darts.genotype(FixedTrial(dv)), "paper")
    rng = random.Random(args.seed + 12345)
    target_space = load_space("nasnet")
    budget = Budget.parse(args.budget)
    k = 0
    while k < args.random_members:
        t = RandomTrial(rng)
        values, g = target_space.sample(t)
        if budget.check(nasty.cost(g)) is None:                  # in budget at the search's target
            nets[f"random member {k + 1}"] = (nasnet.genotype(FixedTrial({**values, **size})), "random")
            k += 1
    # hand-designed, at most the MACs of the largest network above (the winner's cells at N, F can
    # cost more than NASNet-A's): the widest width within it, and for the ResNet the deepest of a few
    # ResNet-20-like depths whose narrowest width fits (the resnet space has four stages)
    cap = Budget(macs=max(nasty.cost(g).macs for g, _ in nets.values()))
    resnet = at_data(load_space("resnet"), shape, classes)
    for depths in ((3, 3, 3, 1), (3, 3, 2, 1), (2, 2, 2, 1)):
        r20 = dict(block="basic", d1=depths[0], d2=depths[1], d3=depths[2], d4=depths[3], width=32, se=False)
        fitted = fit_width(resnet, r20, cap)
        if fitted is not None:
            n = 2 * sum(depths) + 2
            nets[f"ResNet-{n}-style (resnet space, basic blocks {'-'.join(map(str, depths))})"] = \
                (fitted.genotype, "hand")
            break
    mb = at_data(load_space("mbconv"), shape, classes)
    v2 = dict(mb.canonical["efficientnet_b0"])
    v2.update({f"s{i}_se": False for i in range(1, 8)})           # MobileNetV2's blocks have no SE
    fitted = fit_width(mb, v2, cap)
    if fitted is not None:
        nets["MobileNetV2-style (mbconv space)"] = (fitted.genotype, "hand")

    # 3. train every network, every seed
    rows = {}
    for name, (g, kind) in nets.items():
        c = nasty.cost(g)
        results = [train_final(g, name.replace(" ", "_").replace("(", "").replace(")", ""), s, args, out)
                   for s in range(args.seeds)]
        accs = [r["test_acc"] for r in results if r["test_acc"] is not None]
        rows[name] = {"kind": kind, "macs": c.macs, "params": c.params, "accs": accs,
                      "mean": statistics.mean(accs) if accs else None,
                      "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                      "seconds": sum(r["seconds"] for r in results)}
        print(f"{name}: {rows[name]['mean']} +- {rows[name]['std']} ({c.macs:,} MACs)", flush=True)
        partial = {"date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args), "rows": rows, "partial": True}
        (out / "quality.json").write_text(json.dumps(partial, indent=1, default=str) + "\n")

    # 4. proxy score -> final accuracy over the main job's trials
    main_run = runs.get("random") or next(iter(runs.values()))
    trials = [r for r in main_run.leaderboard if r.status == "ok"][:args.rank_archs]
    proxy, final = [], []
    for r in trials:
        g = nasnet.genotype(FixedTrial({**r.decisions, **size}))
        res = train_final(g, f"rank_trial{r.trial}", 0, args, out)
        if res["test_acc"] is not None:
            proxy.append(r.val_acc)
            final.append(res["test_acc"])
    rho = spearman(proxy, final) if len(proxy) >= 3 else float("nan")

    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "args": vars(args), "rows": rows,
           "spearman_proxy_final": rho, "rank_archs": len(proxy), "wall_s": time.time() - t_start,
           "runs": {c: str(r.run) for c, r in runs.items()}}
    (out / "quality.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md = table(doc)
    (out / "quality.md").write_text(md)
    print(md)


def table(doc) -> str:
    a = doc["args"]
    lines = [f"Fashion-MNIST, every network at 1x28x28 with N={a['N']}, F={a['F']} (DARTS-V2: C={a['F']}, "
             f"L={3 * a['N'] + 2}; hand-designed nets widened to at most the largest one's MACs), {a['epochs']} epochs on "
             f"{a['subset'] or 'all'} training images, {a['seeds']} seeds; searches: {a['budget']} at the nasnet "
             f"target, {a['search_seconds']:.0f} s each. Test accuracy mean +- std over seeds.", "",
             "| network | kind | test acc (%) | MACs | params |", "|---|---|---|---|---|"]
    for name, r in doc["rows"].items():
        acc = f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f}" if r["mean"] is not None else "failed"
        lines.append(f"| {name} | {r['kind']} | {acc} | {r['macs'] / 1e6:.1f}M | {r['params'] / 1e6:.2f}M |")
    lines += ["", f"Spearman rank correlation, proxy score -> final test accuracy, over {doc['rank_archs']} "
                  f"main-job trials: {doc['spearman_proxy_final']:.3f}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
