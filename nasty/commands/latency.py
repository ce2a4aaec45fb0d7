"""`nasty latency NAME_OR_FILE...`: measure networks here; `nasty latency calibrate`: time the layer
configurations of spaces or networks into this machine's lookup table (nasty/latency/)."""
from __future__ import annotations

import json
import sys


def add_parser(sub):
    p = sub.add_parser(
        "latency", help="measure a network's latency here; `latency calibrate` builds the per-op lookup table",
        description="Measure the latency of zoo networks or genotype files on this machine the way deployment runs "
                    "them: eval mode, no grad, a warm-up, then blocks of timed calls with the thread count pinned; "
                    "prints the median, its interquartile range, and how far the blocks' medians spread (the "
                    "measurement's own repeatability). `nasty latency calibrate --space NAME` (or `calibrate "
                    "NETWORK...`) times each distinct layer configuration into this machine's lookup table, "
                    "from which `--predict`, `nasty show --latency` and `nasty search --budget 15ms` predict "
                    "latency per op.")
    p.add_argument("targets", nargs="+", metavar="NAME_OR_FILE",
                   help="zoo names or genotype files to measure; or `calibrate` followed by networks to calibrate")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads, pinned while measuring (default 1: single-stream latency, as MnasNet measured "
                        "on one phone core)")
    p.add_argument("--input", metavar="CxHxW", help="input shape (default: each network's own)")
    p.add_argument("--classes", type=int, help="number of classes (default: the genotype's own)")
    p.add_argument("--compile", action="store_true", help="measure the network through torch.compile")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time (default, what deployment sees); cpu: the measuring thread's CPU time, "
                        "steadier on a machine that other processes load (needs --threads 1; a table keeps its clock)")
    p.add_argument("--blocks", type=int, default=3, help="blocks of timed calls (default 3); their medians' spread "
                                                         "is the repeatability")
    p.add_argument("--predict", action="store_true",
                   help="also predict the latency from the lookup table (configurations it lacks are timed now)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    c = p.add_argument_group("calibrate")
    c.add_argument("--space", action="append", metavar="SPACE",
                   help="calibrate: a built-in space name or .py file whose target's configurations to time "
                        "(repeatable)")
    c.add_argument("--zoo", action="store_true", help="calibrate: every zoo network")
    c.add_argument("--networks", type=int, default=8,
                   help="calibrate: members of each space measured whole for the predictor's correction (default 8)")
    c.add_argument("--table", metavar="FILE", help="a lookup table file instead of this machine's (it must come from "
                                                   "this machine and software, else it is refused)")
    c.add_argument("--recalibrate", action="store_true",
                   help="calibrate: time every configuration again (with --table FILE: that table's configurations, "
                        "made elsewhere, timed here into this machine's table)")
    c.add_argument("--seed", type=int, default=0, help="calibrate: seed of the sampled members")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import NastyError
    for k in ("batch", "threads", "blocks", "networks"):
        v = getattr(args, k)
        if v < 1 and not (k == "networks" and v == 0):
            raise NastyError(f"--{k} must be at least 1, got {v}")
    from ..limits import threads_problem
    if threads_problem(args.threads):
        raise NastyError(threads_problem(args.threads))
    if args.targets[0] == "calibrate":
        return calibrate(args, args.targets[1:])
    if args.space or args.zoo or args.recalibrate:
        raise NastyError("--space, --zoo and --recalibrate belong to `nasty latency calibrate`")
    return measure(args)


def _input(args):
    from .show import parse_shape
    return parse_shape(args.input) if args.input else None


def measure(args) -> int:
    from .. import resolve
    from ..genotype import elaborate
    from ..latency import predictor
    from ..latency.measure import measure_genotype, relative_error, resolve_device
    from ..latency.table import describe_fingerprint, fingerprint
    dev = str(resolve_device(args.device))
    shape = _input(args)
    genotypes = [resolve(t) for t in args.targets]          # every name checked before anything is measured
    threads = args.threads if dev == "cpu" else None
    pred = predictor(dev, threads, args.batch, args.table, clock=args.clock) if args.predict else None
    machine = describe_fingerprint(fingerprint(dev, threads, args.clock))
    out = []
    for t, g in zip(args.targets, genotypes):
        m = measure_genotype(g, shape, args.batch, dev, threads, classes=args.classes, compile=args.compile,
                             blocks=args.blocks, clock=args.clock)
        row = {"network": t, **m.as_dict(), "machine": machine}
        if pred is not None:
            p = pred.explain(elaborate(g, shape, args.classes))
            row.update(predicted_ms=p.total_ms, prediction_error=relative_error(p.total_ms, m.median_ms),
                       correction=p.correction.as_dict(), timed_now=p.timed_now)
        out.append(row)
        if not args.json:
            shape_txt = "x".join(map(str, m.input))
            print(f"{t}: {m.describe()}  [{shape_txt}, batch {m.batch}, {dev}"
                  + (f", {m.threads} thread{'s' if m.threads != 1 else ''}" if m.threads else "")
                  + (", torch.compile" if m.compiled else "")
                  + (f", load {m.load:.1f}" if m.load is not None else "") + "]")
            if pred is not None:
                print(f"  predicted {row['predicted_ms']:.3g} ms ({100 * row['prediction_error']:+.1f} %)"
                      + (f"; {p.timed_now} configurations were timed now" if p.timed_now else ""))
            sys.stdout.flush()
    if pred is not None:
        pred.save()
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"\nmachine: {machine}. IQR: the middle half of the timed calls; ±: half the range of the blocks' "
              "medians, how far the same measurement moves when taken again" + (
                  f"; predictions: {pred.correction.describe()}" if pred is not None else "") + ".")
    return 0


def calibrate(args, names) -> int:
    from .. import resolve, zoo
    from ..errors import NastyError
    from ..latency.calibrate import Bar, calibrate_space, genotype_configs, measure_networks, time_configs
    from ..latency.measure import clock_of, resolve_device
    from ..latency.predict import Predictor
    from ..latency.table import LookupTable, describe_fingerprint, fingerprint
    from ..space import load_space
    dev = str(resolve_device(args.device))
    threads = args.threads if dev == "cpu" else None
    clock_of(args.clock, dev, threads)
    fp = fingerprint(dev, threads, args.clock)
    spaces = [load_space(s) for s in args.space or []]
    genotypes = [(n, resolve(n)) for n in names] + ([(n, zoo.get(n)) for n in zoo.names()] if args.zoo else [])
    if args.input:
        raise NastyError("calibrate times each network or space at its own target input; leave out --input")
    table = LookupTable.for_machine(dev, threads, args.clock)
    foreign = None
    if args.table:
        if args.recalibrate:
            foreign = LookupTable.load(args.table, refuse_foreign=False)
        else:
            table = LookupTable.load(args.table, expect=fp)
    if not spaces and not genotypes and not (args.recalibrate or foreign):
        raise NastyError("say what to calibrate: --space NAME (e.g. mbconv), --zoo, zoo names or genotype files, "
                         "or --recalibrate")
    bar = Bar()
    say = bar.say
    say(f"calibrating on {describe_fingerprint(fp)}, batch {args.batch}, into {table.path}")
    if table.overhead_ms is not None:
        say(f"  the table has {len(table):,} configurations and {len(table.networks)} networks measured whole")
    if foreign is not None or (args.recalibrate and not spaces and not genotypes):
        src = foreign or table
        steps = src.steps()
        say(f"  re-timing the {len(steps):,} configurations of {src.path}"
            + (f" (made on {describe_fingerprint(src.fingerprint)})" if foreign is not None else ""))
        bar.start("timing layer configurations", len(steps))
        try:
            n, secs = time_configs(table, steps, args.batch, dev, threads, bar, recalibrate=True)
        finally:
            bar.stop()
        say(f"  timed {n:,} configurations in {secs:.0f} s")
        nets = [x for x in src.networks if isinstance(x.get("genotype"), str)]
        if nets:
            from .. import parse
            bar.start("measuring networks whole", len(nets))
            try:
                measure_networks(table, [parse(x["genotype"]) for x in nets], None, args.batch, dev, threads, bar,
                                 names=[x.get("name") for x in nets])
            finally:
                bar.stop()
            for x, new in zip(nets, table.networks[-len(nets):]):
                new["space"] = x.get("space")
            table.save()
    for sp in spaces:
        say(f"space {sp.name}: target {'x'.join(map(str, sp.target.input))}, {sp.target.classes} classes")
        calibrate_space(table, sp, args.batch, dev, threads, networks=args.networks, seed=args.seed, bar=bar,
                        recalibrate=args.recalibrate)
        say(f"  correction for {sp.name}: "
            f"{Predictor(table, batch=args.batch, device=dev, threads=threads, space=sp.name).correction.describe()}")
    if genotypes:
        configs = genotype_configs([g for _, g in genotypes], args.batch)
        have = sum(1 for k in configs if k in table)
        shown = ", ".join(n for n, _ in genotypes[:6]) + (", ..." if len(genotypes) > 6 else "")
        say(f"networks: {len(genotypes)} ({shown})"
            f": {len(configs):,} distinct layer configurations, {have:,} already in the table")
        bar.start("timing layer configurations", len(configs) if args.recalibrate else len(configs) - have)
        try:
            n, secs = time_configs(table, configs, args.batch, dev, threads, bar, args.recalibrate)
        finally:
            bar.stop()
        say(f"  timed {n:,} configurations in {secs:.0f} s")
        if args.networks:
            bar.start("measuring networks whole", len(genotypes))
            try:
                measure_networks(table, [g for _, g in genotypes], "zoo" if args.zoo else None, args.batch, dev,
                                 threads, bar, names=[n for n, _ in genotypes])
            finally:
                bar.stop()
    table.save()
    p = Predictor(table, batch=args.batch, device=dev, threads=threads)
    say(f"table: {table.path}: {table.describe()}")
    say(f"correction over every network measured: {p.correction.describe()}")
    return 0
