"""`nasty zoo`: the comparison table of every canonical network."""
from __future__ import annotations

import json


def add_parser(sub):
    p = sub.add_parser("zoo", help="table of the zoo: params, MACs, year, top-1, reference match",
                       description="Every zoo network with its params and MACs at native resolution "
                                   "(computed from the genotype), year, the ImageNet top-1 the course notes "
                                   "give where they give one, and whether it matches its torchvision/timm "
                                   "reference in params and MACs (computed on the meta device).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-check", action="store_true",
                   help="skip building the references (the match column then says 'not checked')")
    p.add_argument("--latency", action="store_true",
                   help="add each network's latency measured here (batch 1, one CPU thread, median and IQR; see "
                        "`nasty latency`): minutes for the whole zoo")
    p.add_argument("names", nargs="*", help="only these zoo names")
    p.set_defaults(func=run)


def reference_match(name, c) -> str:
    """'yes' / 'NO (...)' / '-' (no reference) / 'unavailable (...)', computed on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .. import zoo
    from ..errors import NastyError
    e = zoo.entry(name)
    if not e.ref:
        return "-"
    try:
        ref = zoo.reference(name, meta=True).eval()
    except NastyError as err:
        return f"unavailable ({err})"
    params = sum(p.numel() for p in ref.parameters())
    with FlopCounterMode(display=False) as fc, torch.no_grad(), zoo.unfused_attention():
        ref(torch.zeros((1,) + tuple(c.input), device="meta"))
    macs = fc.get_total_flops() // 2
    if (params, macs) == (c.params, c.macs):
        return f"yes ({e.ref})"
    return f"NO ({e.ref}: params {params:,}, MACs {macs:,})"


def run(args) -> int:
    from .. import zoo
    from ..cost import cost
    from ..display import human, text_table
    names = args.names or zoo.names()
    rows = []
    try:
        from rich.progress import Progress
        progress = Progress(transient=True)
    except ImportError:  # rich is a dependency; stay usable without it
        progress = None
    with (progress or _Null()) as prog:
        task = prog.add_task("checking references", total=len(names)) if progress else None
        for name in names:
            e = zoo.entry(name)
            c = cost(zoo.get(name))
            match = "not checked" if args.no_check else reference_match(name, c)
            rows.append({"name": name, "params": c.params, "macs": c.macs,
                         "input": list(c.input), "year": e.year, "top1": e.top1,
                         "reference": e.ref, "matches_reference": match})
            if args.latency:
                from ..latency.measure import measure_genotype
                m = measure_genotype(zoo.get(name))
                rows[-1]["latency"] = {k: v for k, v in m.as_dict().items()
                                       if k in ("median_ms", "q1_ms", "q3_ms", "repeatability", "runs", "load")}
            if progress:
                prog.advance(task)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    lat = (lambda r: (f"{r['latency']['median_ms']:.3g}", f"{r['latency']['q1_ms']:.3g}-{r['latency']['q3_ms']:.3g}")
           ) if args.latency else (lambda r: ())
    table = [(r["name"], "x".join(map(str, r["input"])), human(r["params"]), human(r["macs"]),
              str(r["year"] or ""), f"{r['top1']:.1f}" if r["top1"] is not None else "", r["matches_reference"])
             + lat(r) for r in rows]
    extra = ("latency ms", "IQR ms") if args.latency else ()
    print(text_table(("name", "input", "params", "MACs", "year", "top-1 (notes)", "matches reference") + extra, table,
                     align=["left", "left", "right", "right", "right", "right", "left"] + ["right"] * len(extra)))
    print("\nMACs: one multiply-add = one FLOP (the notes' and the NAS papers' convention), at each net's native input.")
    if args.latency:
        from ..latency.measure import load_average
        from ..latency.table import describe_fingerprint, fingerprint
        print(f"latency: measured here at batch 1 (median of the timed calls, and their IQR) on "
              f"{describe_fingerprint(fingerprint('cpu', 1))}; load average {load_average() or 0:.1f}")
    return 0


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
