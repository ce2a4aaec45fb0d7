"""Latency on this machine: how well the per-op predictor predicts it, and how poorly MACs rank it.

For random members of search spaces (default nasnet and mbconv, at their ImageNet targets) and
the zoo networks up to --zoo-max-macs, at batch 1 on one CPU thread:

1. calibrates this machine's lookup table for what it measures (`nasty latency calibrate`:
   each space at its target, the zoo networks' configurations), the correction fitted on
   --calib-networks members of each space sampled with another seed than the ones judged;
2. measures every network twice (two separate measurements, each 3 blocks of timed calls):
   the second says how far the measurement itself moves (its repeatability);
3. predicts each one from the table: space members with their space's correction (fitted on
   other members: held out); zoo networks with a correction fitted on the *other* zoo networks
   (leave-one-out), so no network is judged by a correction that saw it;
4. reports, per group: the predictor's median absolute error and share within +-10 %, next to the
   measurement's own (|m2 - m1| / m1); Spearman rho between MACs and latency; and the pair of
   networks with nearly equal MACs (within 5 %) and the most different latency, and the reverse.

    .venv/bin/python benchmarks/bench_latency.py [--spaces nasnet,mbconv] [--members 100] [--zoo-max-macs 5G]
        [--clock wall|cpu] [--calib-networks 8] [--out benchmarks/latency] [--quick]
    .venv/bin/python benchmarks/bench_latency.py --from benchmarks/latency/A.json B.json ...   # one table of several runs

It writes <out>/latency-<clock>-<date>.json (every network's numbers) and prints a Markdown
summary. The table lives in the user's cache folder (NASTY_CACHE_DIR to keep it apart), so a
second run reuses the calibration. State the load (printed) next to any figure you keep: with
other processes on the machine the wall clock measures them too; `--clock cpu` times the
measuring thread's own CPU time, steadier on a shared machine.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_quality import spearman  # noqa: E402

import nasty  # noqa: E402
from nasty.latency.calibrate import (Bar, calibrate_space, genotype_configs, sample_members,  # noqa: E402
                                     space_key, time_configs)
from nasty.latency.measure import load_average, measure_genotype  # noqa: E402
from nasty.latency.predict import Predictor, fit_correction  # noqa: E402
from nasty.latency.table import LookupTable, describe_fingerprint  # noqa: E402
from nasty.search.budget import Budget, parse_quantity  # noqa: E402
from nasty.space import load_space  # noqa: E402

TIMING = dict(blocks=3, block_seconds=0.15, min_runs=3, max_runs=100)


def measure_twice(g, clock):
    a = measure_genotype(g, clock=clock, **TIMING)
    b = measure_genotype(g, clock=clock, **TIMING)
    return a, b


def row(name, group, g, pred_raw, layers, a, b):
    c = nasty.cost(g)
    return {"name": name, "group": group, "macs": c.macs, "params": c.params, "layers": layers,
            "sum_ms": pred_raw, "measured_ms": a.median_ms, "iqr_ms": a.iqr_ms, "again_ms": b.median_ms,
            "block_repeatability": a.repeatability, "load": a.load}


def errors(rows):
    """Per row: the predictor's relative error and the measurement's own (second vs first)."""
    return ([abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows],
            [abs(r["again_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows])


def pairs(rows, close=0.05):
    """(equal MACs, most different latency) and (equal latency, most different MACs)."""
    best_lat = best_mac = None
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            rm = max(a["macs"], b["macs"]) / max(1, min(a["macs"], b["macs"]))
            rl = max(a["measured_ms"], b["measured_ms"]) / min(a["measured_ms"], b["measured_ms"])
            if rm <= 1 + close and (best_lat is None or rl > best_lat[0]):
                best_lat = (rl, a, b)
            if rl <= 1 + close and (best_mac is None or rm > best_mac[0]):
                best_mac = (rm, a, b)
    return best_lat, best_mac


def loo_errors(rows):
    """The predictor's error with its correction fitted, for each network, on the *other* networks of its
    group measured in this session (leave one out): the per-op sum's quality when the correction saw
    the same machine conditions."""
    return [abs(fit_correction([o for o in rows if o is not r]).apply(r["sum_ms"], r["layers"]) - r["measured_ms"])
            / r["measured_ms"] for r in rows]


HEADER = ["| networks | n | predictor median abs. error | within ±10 % | same, correction refitted in session "
          "(leave one out) | within ±10 % | measurement's own median abs. difference (2nd vs 1st) | within ±10 % | "
          "Spearman ρ MACs vs latency | ρ predicted vs latency | median latency ms |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]


def summarize(rows, label) -> list[str]:
    if not rows:
        return []
    pe, me = errors(rows)
    le = loo_errors(rows) if label != "all" else []

    def share(es):
        return f"{100 * sum(e <= 0.10 for e in es) / len(es):.0f} %" if es else "-"

    def med(es):
        return f"{100 * statistics.median(es):.1f} %" if es else "-"
    rho = spearman([r["macs"] for r in rows], [r["measured_ms"] for r in rows])
    rho_pred = spearman([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])
    return [f"| {label} | {len(rows)} | {med(pe)} | {share(pe)} | {med(le)} | {share(le)} | {med(me)} | {share(me)} | "
            f"{rho:.2f} | {rho_pred:.2f} | {statistics.median(r['measured_ms'] for r in rows):.3g} |"]


def describe_pair(p, what) -> str:
    if p is None:
        return f"- {what}: no such pair"
    ratio, a, b = p
    return (f"- {what}: **{a['name']}** ({a['macs'] / 1e6:.0f}M MACs, {a['measured_ms']:.3g} ms) vs **{b['name']}** "
            f"({b['macs'] / 1e6:.0f}M MACs, {b['measured_ms']:.3g} ms): x{ratio:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spaces", default="nasnet,mbconv", help="comma-separated spaces ('' for none)")
    ap.add_argument("--members", type=int, default=100, help="random members judged per space")
    ap.add_argument("--max-macs", default="1.2G", help="members above this many target MACs are skipped "
                                                        "(the range a mobile search budgets)")
    ap.add_argument("--zoo-max-macs", default="5G", help="zoo networks up to this many MACs ('0': no zoo)")
    ap.add_argument("--zoo", default="", help="only these zoo networks (comma-separated)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--calib-networks", type=int, default=8, help="members of each space measured for its correction")
    ap.add_argument("--out", default=str(Path(__file__).parent / "latency"))
    ap.add_argument("--quick", action="store_true", help="5 members per space, 6 small zoo networks: proves it runs")
    ap.add_argument("--from", dest="saved", metavar="JSON", nargs="+",
                    help="summarise saved runs' data again, together (no measuring)")
    args = ap.parse_args(argv)
    if args.saved:
        docs = [json.loads(Path(f).read_text()) for f in args.saved]
        rows = [r for d in docs for r in d["rows"]]
        print("\n".join(report(rows, ", ".join(d["date"] for d in docs), docs[0]["machine"], docs[0]["args"]["clock"],
                               docs[-1]["load_end"][0], sum(d["wall_s"] for d in docs),
                               ", ".join(Path(f).name for f in args.saved))))
        return rows
    if args.quick:
        args.members = min(args.members, 5)
        args.zoo = args.zoo or "lenet5,mobilenet_v3_small,squeezenet1_1,shufflenet_v2_x0_5,mnasnet0_5,resnet18"
        args.calib_networks = min(args.calib_networks, 4)
    t_start = time.time()
    bar = Bar()
    table = LookupTable.for_machine("cpu", 1, args.clock)
    print(f"# bench_latency: {describe_fingerprint(table.fingerprint)}; table {table.path}", flush=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    cap = Budget(macs=parse_quantity(args.max_macs))
    for name in [s for s in args.spaces.split(",") if s]:
        space = load_space(name)
        t0 = time.time()
        if space_key(space) not in table.spaces or \
                sum(n.get("space") == space.name for n in table.networks) < args.calib_networks:
            print(f"calibrating {name}...", flush=True)
            calibrate_space(table, space, networks=args.calib_networks, bar=bar)
        calib_s = time.time() - t0
        p = Predictor(table, space=space.name)
        print(f"{name}: calibration {calib_s:.0f} s; correction {p.correction.describe()}", flush=True)
        members = sample_members(space, args.members, seed=1000, budget=cap)
        for i, (_, g) in enumerate(members):
            raw, layers = p.raw(g)
            a, b = measure_twice(g, args.clock)
            r = row(f"{name}#{i}", name, g, raw, layers, a, b)
            r["predicted_ms"] = p.correction.apply(raw, layers)
            rows.append(r)
            if (i + 1) % 10 == 0 or i + 1 == len(members):
                print(f"  {name}: {i + 1}/{len(members)} measured (load {load_average():.1f})", flush=True)
        p.save()
    zoo_names = [z for z in args.zoo.split(",") if z]
    zmax = parse_quantity(args.zoo_max_macs) if args.zoo_max_macs not in ("0", "") else 0
    if not zoo_names and zmax:
        zoo_names = [n for n in nasty.zoo.names() if nasty.cost(n).macs <= zmax]
    if zoo_names:
        gs = [nasty.zoo.get(n) for n in zoo_names]
        t0 = time.time()
        n, _ = time_configs(table, genotype_configs(gs), progress=clock_progress(bar, "zoo configurations"))
        print(f"zoo: {len(gs)} networks, {n} configurations timed in {time.time() - t0:.0f} s", flush=True)
        raw_p = Predictor(table, correction=False)
        zrows = []
        for i, (z, g) in enumerate(zip(zoo_names, gs)):
            raw, layers = raw_p.raw(g)
            a, b = measure_twice(g, args.clock)
            zrows.append(row(z, "zoo", g, raw, layers, a, b))
            if (i + 1) % 10 == 0 or i + 1 == len(gs):
                print(f"  zoo: {i + 1}/{len(gs)} measured (load {load_average():.1f})", flush=True)
        for r in zrows:                          # leave one out: a correction that has not seen r
            corr = fit_correction([o for o in zrows if o is not r])
            r["predicted_ms"] = corr.apply(r["sum_ms"], r["layers"])
        rows += zrows
        table.save()
    wall = time.time() - t_start
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"latency-{args.clock}-{datetime.datetime.now().strftime('%Y%m%d-%H%M')}.json"
    path.write_text(json.dumps({"date": date, "machine": describe_fingerprint(table.fingerprint),
                                "platform": platform.platform(), "args": vars(args), "wall_s": wall,
                                "load_end": os.getloadavg(), "rows": rows}, indent=1) + "\n")
    print("\n".join(report(rows, date, describe_fingerprint(table.fingerprint), args.clock, os.getloadavg()[0], wall,
                           path.name)))
    return rows


def report(rows, date, machine, clock, load, wall, name) -> list[str]:
    """The Markdown summary of a run's rows."""
    groups = sorted({r["group"] for r in rows}, key=lambda g: (g == "zoo", g))
    loads = [r["load"] for r in rows if r.get("load") is not None]
    lines = [f"## Latency: predictor and MACs vs measured (benchmarks/bench_latency.py) — {date}", "",
             f"{machine}; batch 1{'' if clock in machine else f'; {clock} clock'}; load average while measuring "
             f"{min(loads, default=0):.1f}-"
             f"{max(loads, default=0):.1f} (at the end {load:.1f}); {wall / 60:.1f} min; data: {name}", ""] + HEADER
    for gname in groups:
        lines += summarize([r for r in rows if r["group"] == gname], gname)
    lines += summarize(rows, "all")
    lat_pair, mac_pair = pairs(rows)
    lines += ["", describe_pair(lat_pair, "nearly equal MACs (within 5 %), most different latency"),
              describe_pair(mac_pair, "nearly equal latency (within 5 %), most different MACs")]
    return lines


def clock_progress(bar, what):
    def progress(done, total, key):
        if done == 1:
            bar.say(f"  timing {total} {what}")
    return progress


if __name__ == "__main__":
    main()
