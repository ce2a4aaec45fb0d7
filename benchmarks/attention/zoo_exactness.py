"""The zoo's transformers against torchvision: params, MACs and the largest logit difference.

For each of ViT-B/16, B/32, L/16, L/32, H/14, Swin-T/S/B, Swin-V2-T/S/B and MaxViT-T: params of
the genotype (analytic), of nasty's compiled module and of torchvision's (numel, meta device);
MACs analytic and FlopCounterMode/2 of both (meta device, attention unfused); and the largest
absolute logit difference on two random images after port_weights, under each of zoo_check's two
randomisations (the reference's init with randomised norms; every weight re-initialised), at the
input the tests use. Prints a Markdown table (the one in docs/attention.md) with the date, the
machine and its load.

    PYTHONPATH=. python benchmarks/attention/zoo_exactness.py [NAME ...]

Memory: ViT-H/14 holds two copies of 632M float32 parameters (about 5 GB) while its logits run.
"""
import datetime
import gc
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import nasty  # noqa: E402
from zoo_check import check_logits, count_macs, count_params  # noqa: E402

# name -> the input its logits are checked at (None: native 224), as tests/test_zoo_*.py do
MODELS = {"vit_b_16": 64, "vit_b_32": None, "vit_l_16": 48, "vit_l_32": 64, "vit_h_14": 28,
          "swin_t": None, "swin_s": 64, "swin_b": 64, "swin_v2_t": None, "swin_v2_s": 64, "swin_v2_b": 64,
          "maxvit_t": None}


def row(name, size):
    g = nasty.zoo.get(name)
    c = nasty.cost(g)
    ref = nasty.zoo.reference(name, meta=True)
    with torch.device("meta"):
        ours = nasty.build(g)
    counts = (c.params, count_params(ours), count_params(ref), c.macs, count_macs(ours, g.input),
              count_macs(ref, g.input))
    del ref, ours
    diffs = {}
    t = time.time()
    kw = {}
    if size is not None:
        kw["input"] = (3, size, size)
        if name.startswith("vit"):
            kw["ref_kwargs"] = {"image_size": size}
    check_logits(name, diffs=diffs, **kw)
    gc.collect()
    return counts, diffs, size or 224, time.time() - t


def main(names):
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    print(f"# {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores), "
          f"load {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    print("| network | params (nasty = torchvision) | MACs at 224 (nasty = torchvision) | logits checked at "
          "| max logit difference (norms / weights) |")
    print("|---|---|---|---|---|")
    for name in names:
        (p, pc, pr, m, mc, mr), diffs, size, secs = row(name, MODELS[name])
        ok = "=" if p == pc == pr and m == mc == mr else "DIFFERS"
        fmt = lambda d: "-" if d is None else f"{d:.1e}"
        print(f"| {name} | {p:,} {ok} {pr:,} | {m:,} {ok} {mr:,} | {size}x{size} "
              f"| {fmt(diffs.get('norms'))} / {fmt(diffs.get('weights'))} |", flush=True)
        print(f"<!-- {name}: {secs:.0f} s, load {os.getloadavg()[0]:.1f} -->", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
