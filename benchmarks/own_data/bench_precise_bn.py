"""What recomputing BatchNorm statistics before scoring (train.recalibrate_bn, `--precise-bn`)
changes in a search's trials, and what it costs.

    python benchmarks/own_data/bench_precise_bn.py --trials 6                      # Fashion-MNIST
    python benchmarks/own_data/bench_precise_bn.py --dataset imagefolder --data-dir DIR --trials 6

The trials are the first --trials within-budget samples of the search `nasty search --space S
--budget B --seed SEED` would train (its own SearchLoop proposes them: budget check, --fit),
each trained exactly as a search trial is (its seed, its rows of the data, the search's
defaults: SGD, batch 64, lr 0.05, 2 epochs on <= 6,000 images). Precise BN changes only the
running statistics, never a training step (training normalises with batch statistics), so one
training per trial gives both scores: the validation accuracy with the running statistics the
training left (the search before issue 19), and after recalibrating them on --images training
images (the search now). The cost is the recalibration's time per epoch, times the epochs,
against the trial's training and evaluation time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from nasty.compile import compile_genotype  # noqa: E402
from nasty.controllers import make_controller  # noqa: E402
from nasty.data import to_device_tensors  # noqa: E402
from nasty.genotype import parse  # noqa: E402
from nasty.search.folder import RunFolder  # noqa: E402
from nasty.search.loop import SearchLoop  # noqa: E402
from nasty.search.runner import load_data, open_space, resolve_fit, with_target  # noqa: E402
from nasty.search.settings import Settings  # noqa: E402
from nasty.train import TrainConfig, evaluate, recalibrate_bn, train  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--space", default="nasnet")
    ap.add_argument("--budget", default="600MFLOPs")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", default="1024",
                    help="training images the statistics are recomputed on (a comma list compares sizes; the first "
                         "is the one reported as 'recalibrated')")
    ap.add_argument("--out", help="write the rows as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    s = Settings(space=a.space, budget=a.budget, dataset=a.dataset, data_dir=a.data_dir, seed=a.seed).resolved(False)
    space, budget = open_space(s)
    s = resolve_fit(s, space, budget)
    data, train_idx, val_idx = load_data(s)
    space = with_target(space, s, data)
    controller = make_controller("random", space, seed=s.seed, budget=budget)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / "bench")
        folder.create({})
        loop = SearchLoop(s, folder, space, controller, budget, data.shape, data.num_classes)
        x_train, _ = to_device_tensors(data.train_x[train_idx[:min(len(train_idx), s.subset)]],
                                       data.train_y[train_idx[:1]], torch.device("cpu"), data.mean, data.std)
        for _ in range(a.trials):
            p = loop.propose()
            n = p.trial
            torch.manual_seed(s.seed + n)
            model = compile_genotype(parse(p.record.proxy_genotype), input=data.shape, classes=data.num_classes)
            tc = TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed + n, threads=1,
                             subset=s.subset, val_subset=s.val_subset, precise_bn=0)
            res = train(model, data, tc, train_idx, val_idx)
            xv, yv = to_device_tensors(data.train_x[val_idx], data.train_y[val_idx], torch.device("cpu"),
                                       data.mean, data.std)
            running = evaluate(model, xv, yv)
            by_size = {}
            for size in reversed([int(v) for v in a.images.split(",")]):     # the reported size last
                t0 = time.perf_counter()
                recalibrate_bn(model, x_train, s.batch_size, images=size)
                by_size[size] = (time.perf_counter() - t0, evaluate(model, xv, yv))
            recal_s, recal = by_size[int(a.images.split(",")[0])]
            share = recal_s * s.epochs / (res.seconds + recal_s * s.epochs)
            rows.append({"trial": n, "proxy_macs": p.record.proxy.macs, "val_running": running,
                         "val_recalibrated": recal, "trial_s": res.seconds, "recalibrate_s_per_epoch": recal_s,
                         "recalibration_share": share, "val_images": len(val_idx), "train_images": len(train_idx),
                         **({"by_images": {k: {"val": v, "seconds": t} for k, (t, v) in sorted(by_size.items())}}
                            if len(by_size) > 1 else {})})
            loop.running.clear()
            print(json.dumps(rows[-1]), flush=True)
    d = [r["val_recalibrated"] - r["val_running"] for r in rows]
    print(f"{a.dataset}: {len(rows)} trials, val acc with running statistics "
          f"{statistics.mean(r['val_running'] for r in rows):.4f}, recalibrated "
          f"{statistics.mean(r['val_recalibrated'] for r in rows):.4f}; change per trial mean {statistics.mean(d):+.4f} "
          f"(min {min(d):+.4f}, max {max(d):+.4f}); recalibration {statistics.mean(r['recalibration_share'] for r in rows):.1%} "
          f"of a trial's time (mean), {statistics.mean(r['recalibrate_s_per_epoch'] for r in rows):.2f} s per epoch")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
