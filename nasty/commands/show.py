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
    if args.format == "genotype":
        print(format(g), end="")
        return 0
    c = cost(g, input=parse_shape(args.input) if args.input else None, batch=args.batch,
             num_classes=args.classes)
    if args.json:
        print(json.dumps(c.as_dict(), indent=1))
        return 0
    print(layer_table(c))
    print(f"\n{c.name}: input {'x'.join(map(str, c.input))}  params {c.params:,} ({human(c.params)})  "
          f"MACs {c.macs:,} ({human(c.macs)}FLOPs by the MAC convention)  "
          f"detailed FLOPs {c.flops:,} (pooling {c.pool_flops:,}, other {c.other_flops:,})")
    print(f"memory at batch {c.batch}: inference {human(c.inference_bytes, 1024)}B "
          f"(params + peak activations), training {human(c.training_bytes, 1024)}B "
          f"(activations + params + gradients)")
    return 0
