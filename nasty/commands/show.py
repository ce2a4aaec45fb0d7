"""`nasty show NAME_OR_FILE`: the per-layer table and totals of a genotype."""
from __future__ import annotations

import json

from ..display import human, layer_table


def add_parser(sub):
    p = sub.add_parser("show", help="per-layer table (output shape, params, MACs) and totals",
                       description="Print the per-layer cost table of a zoo network or genotype file. "
                                   "MACs: one multiply-add = one FLOP (the course notes' and NAS papers' "
                                   "convention); FLOPs adds pooling (f*f per output) and other non-MAC work.")
    p.add_argument("target", metavar="NAME_OR_FILE", help="zoo name (see `nasty zoo`) or genotype file (.nasty/.json)")
    p.add_argument("--input", metavar="CxHxW", help="input shape (default: the genotype's own)")
    p.add_argument("--batch", type=int, default=1, help="batch size for the memory figures (default 1)")
    p.add_argument("--classes", type=int, help="number of classes (default: the genotype's own)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--latency", action="store_true",
                   help="add each layer's latency predicted from this machine's lookup table (batch --batch, one CPU "
                        "thread; `nasty latency calibrate`; configurations it lacks are timed now)")
    p.add_argument("--format", choices=["text", "genotype"], default="text",
                   help="'genotype' prints the canonical genotype text instead of the table")
    p.set_defaults(func=run)


def parse_shape(s: str):
    from ..errors import NastyError
    from ..genotype.limits import input_problem
    parts = s.lower().split("x")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) < 20 and int(p) > 0 for p in parts):
        raise NastyError(f"--input must look like 3x224x224 (C x H x W), got {s[:40]!r}")
    shape = tuple(int(p) for p in parts)
    problem = input_problem(shape)
    if problem:
        raise NastyError(f"--input: {problem}")
    return shape


def run(args) -> int:
    from .. import cost, format, resolve
    from ..errors import NastyError
    if args.batch < 1:
        raise NastyError(f"--batch must be at least 1, got {args.batch}")
    g = resolve(args.target)
    from ..genotype.check import warn_headless
    warn_headless(g)
    if args.format == "genotype":
        print(format(g), end="")
        return 0
    c = cost(g, input=parse_shape(args.input) if args.input else None, batch=args.batch,
             num_classes=args.classes)
    pred = None
    if args.latency:
        from ..latency import predictor
        p = predictor(batch=args.batch)
        pred = p.explain(c)
        p.save()
    if args.json:
        d = c.as_dict()
        if pred is not None:
            d.update(latency_ms=pred.total_ms, latency_correction=pred.correction.as_dict())
            for row, x in zip(d["layers"], pred.layers):
                row["latency_ms"] = x.ms
        print(json.dumps(d, indent=1))
        return 0
    print(layer_table(c, latency=pred.layers if pred is not None else None))
    print(f"\n{c.name}: input {'x'.join(map(str, c.input))}  params {c.params:,} ({human(c.params)})  "
          f"MACs {c.macs:,} ({human(c.macs)}FLOPs by the MAC convention)  "
          f"detailed FLOPs {c.flops:,} (pooling {c.pool_flops:,}, other {c.other_flops:,})")
    print(f"memory at batch {c.batch}: inference {human(c.inference_bytes, 1024)}B "
          f"(params + peak activations), training {human(c.training_bytes, 1024)}B "
          f"(activations + params + gradients)")
    if pred is not None:
        print(f"latency at batch {c.batch}, one CPU thread, this machine: {pred.describe()}"
              + (f"; {pred.timed_now} layer configurations were timed now" if pred.timed_now else ""))
    return 0
