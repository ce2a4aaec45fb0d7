"""`nasty train RUN_OR_GENOTYPE`: train a search's winner as its FINAL network (or any genotype /
zoo network) on a real dataset with the NASNet/DARTS recipe, and report its test accuracy.

Given a run folder it rebuilds the winner's decisions through the run's space at the data's
input (nasty/final.py), sized by --set or --budget; the weights, the genotype and the
trainer's state are saved atomically after every epoch, so a killed training continues
where it stopped."""
from __future__ import annotations

import argparse

from ..recipes import RECIPES

_S, _P = RECIPES["short"], RECIPES["paper"]


def _both(key, fmt="{:g}"):
    return f"default {fmt.format(_S[key])}; paper: {fmt.format(_P[key])}"


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train a run's winner at full size (or a genotype file / zoo network); report test accuracy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Train a network on a real dataset and report its accuracy on the held-out test set.

Given a run folder (runs/NAME), it trains that search's winner as its FINAL network: the
winner's decisions (best.json; --trial K for another trial) rebuilt through the run's space at
the dataset's input and class count, at the winner's own size (for the built-in spaces: its N
and F with full-size cells, on the skeleton the space uses at that input), or sized by
--set N=6,F=32 or --budget 50MFLOPs. The search's 8-filter proxy is best_proxy.nasty in the
run folder: train it with `nasty train runs/NAME/best_proxy.nasty`.
Given a genotype file or zoo name, it compiles that at the dataset's input and classes.

The recipe is the NASNet/DARTS papers' final CIFAR recipe, adapted. --recipe short (the
default) suits a CPU run of a few epochs: drop-path, cutout and the auxiliary head, which
regularize 600-epoch trainings, are off. --recipe paper takes the papers' values (DARTS:
600 epochs, batch 96, lr 0.025, cutout 16 px on 32 px, drop-path 0.2, auxiliary head 0.4):
for a GPU. Every value can be set on its own; pixel sizes scale with the image side.

After every epoch the weights, the genotype, the recipe and the optimizer/scheduler/random
state are saved atomically (--save FILE; for a run folder by default
runs/NAME/final/checkpoint.pt, with final.nasty and result.json beside it). Run the same
command again after a kill and it continues from the last finished epoch.""")
    p.add_argument("target", metavar="RUN_OR_GENOTYPE", help="run folder, genotype file (.nasty/.json) or zoo name")
    g = p.add_argument_group("the final network (run folders)")
    g.add_argument("--set", action="append", metavar="NAME=V,...",
                   help="override decisions of the winner, e.g. --set N=6,F=32 (values are checked against "
                        "the space's options)")
    g.add_argument("--budget", metavar="MACS", help="fit the space's width decision (F, C, width) to this many "
                                                    "multiply-adds at the dataset's input, e.g. 50MFLOPs")
    g.add_argument("--params", metavar="N", help="with or without --budget: a parameter budget for the fit, e.g. 2M")
    g.add_argument("--trial", type=int, help="train this trial's decisions instead of the winner's")
    r = p.add_argument_group("the recipe (default: --recipe short; paper values after 'paper:')")
    r.add_argument("--recipe", choices=sorted(RECIPES), default="short",
                   help="short: a few epochs on a CPU (default); paper: the NASNet/DARTS final CIFAR recipe")
    r.add_argument("--epochs", type=int, help=f"training epochs ({_both('epochs')})")
    r.add_argument("--batch-size", type=int, help=f"batch size ({_both('batch_size')})")
    r.add_argument("--lr", type=float, help=f"starting learning rate of SGD ({_both('lr')})")
    r.add_argument("--schedule", choices=("cosine", "onecycle"), help="learning-rate schedule per step (default cosine)")
    r.add_argument("--momentum", type=float, help=f"SGD momentum ({_both('momentum')})")
    r.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum (default off)")
    r.add_argument("--weight-decay", type=float, help=f"weight decay of weights (not of biases and BN) "
                                                      f"({_both('weight_decay')})")
    r.add_argument("--label-smoothing", type=float, help=f"label smoothing of the loss ({_both('label_smoothing')})")
    r.add_argument("--crop", type=int, metavar="PX", help="random crop after zero-padding by PX pixels, 0: off "
                                                          "(default: side/8, 4 px on 28-32 px images)")
    r.add_argument("--flip", action=argparse.BooleanOptionalAction,
                   help="random horizontal flip (default on, off for mnist: a mirrored digit is not a digit)")
    r.add_argument("--cutout", type=int, metavar="PX", help="cutout square side in pixels, 0: off "
                                                            "(default off; paper: side/2, 16 px on 32 px)")
    r.add_argument("--drop-path", type=float, metavar="P",
                   help="drop-path rate on each non-identity branch of the cells' sums, ramped linearly from 0 "
                        "over training; droppath ops of the genotype itself ramp to their own rates "
                        f"({_both('drop_path')})")
    r.add_argument("--aux", action=argparse.BooleanOptionalAction,
                   help=f"auxiliary head at 2/3 depth, loss weight {_P['aux_weight']:g} (default off; paper: on)")
    r.add_argument("--aux-weight", type=float, help="the auxiliary head's loss weight (implies --aux)")
    r.add_argument("--grad-clip", type=float, metavar="NORM", help=f"clip the gradient norm, 0: off ({_both('grad_clip')})")
    r.add_argument("--precise-bn", type=int, metavar="N",
                   help="before each validation, recompute BatchNorm statistics on N training images, 0: off "
                        f"({_both('precise_bn', '{}')}): after a few dozen steps the running averages are far "
                        "from the weights' statistics and a deep net evaluates near chance")
    d = p.add_argument_group("data and device")
    d.add_argument("--dataset", help="fashion-mnist (default, or the run's), mnist, cifar10, cifar100, imagefolder")
    d.add_argument("--data-dir", help="directory with the dataset's files")
    d.add_argument("--image-size", type=int, metavar="N",
                   help="with --dataset imagefolder: resize every image to N x N (default: the run's, or the files' size)")
    d.add_argument("--subset", type=int, help="train on at most this many images (default: all but the validation split)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="held out of train for validation (default 0.1)")
    d.add_argument("--val-subset", type=int, help="validate each epoch on at most this many of them (default: all)")
    d.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda[:N]")
    d.add_argument("--threads", type=int, metavar="N", help="CPU threads of torch (default: torch's, one per core); "
                                                             "on a busy machine 1 can be several times faster")
    d.add_argument("--seed", type=int, default=0)
    o = p.add_argument_group("output")
    o.add_argument("--save", metavar="FILE", help="the checkpoint file, written after every epoch (default for a run "
                                                  "folder: runs/NAME/final/checkpoint.pt; otherwise none)")
    o.add_argument("--export", metavar="FILE", help="after training, export the network to model.onnx (ONNX) or "
                                                    "model.pt2 (torch.export), as `nasty build --export` does")
    o.add_argument("--resume", action="store_true",
                   help="continue the checkpoint's training (the default when it is the same training); an error "
                        "when there is none or it is another training")
    o.add_argument("--restart", action="store_true", help="start over, replacing the checkpoint")
    p.set_defaults(func=run)


def resolve_target(target: str, trial: int | None = None):
    """(winner or None, genotype or None, label) for a run folder, genotype file or zoo name (or, from
    Python, a Genotype)."""
    from pathlib import Path

    from .. import Genotype, resolve
    from ..errors import RunError
    from ..final import open_run
    if isinstance(target, Genotype):
        if trial is not None:
            raise RunError("--trial needs a run folder")
        return None, target, target.name
    if not isinstance(target, (str, Path)):
        raise RunError(f"the network to train must be a run folder, a genotype file or zoo name, a Genotype or a "
                       f"SearchResult, not a {type(target).__name__}")
    if Path(target).is_dir():
        return open_run(target, trial), None, None
    if trial is not None:
        raise RunError("--trial needs a run folder")
    return None, resolve(target), target


def _check_destination(path: str, flag: str = "--save"):
    """A one-line error now, not after training, when `path` could not be written."""
    import os
    from pathlib import Path

    from ..errors import NastyError
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise NastyError(f"{flag} {path} is a folder; give a file name such as {p / 'checkpoint.pt'}")
    if not parent.is_dir():
        raise NastyError(f"{flag} {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise NastyError(f"{flag} {path}: cannot write there (permission denied)")


def _check_args(args):
    from ..errors import NastyError
    from ..limits import threads_problem
    for flag, v, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                         ("--subset", args.subset, 1), ("--val-subset", args.val_subset, 1),
                         ("--crop", args.crop, 0), ("--cutout", args.cutout, 0), ("--precise-bn", args.precise_bn, 0),
                         ("--image-size", args.image_size, 1), ("--seed", args.seed, 0)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise NastyError(f"{flag} must be a whole number, got {v!r}")
        if v is not None and v < low:
            raise NastyError(f"{flag} must be at least {low}, got {v}")
    if threads_problem(args.threads):
        raise NastyError(threads_problem(args.threads))
    for flag in ("--lr", "--momentum", "--weight-decay", "--label-smoothing", "--drop-path", "--aux-weight",
                 "--grad-clip", "--val-fraction"):
        v = getattr(args, flag[2:].replace("-", "_"))
        if (v is not None or flag == "--val-fraction") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise NastyError(f"{flag} must be a number, got {type(v).__name__} {v!r:.40}")
    for flag, v in (("--lr", args.lr),):
        if v is not None and not (0 < v < float("inf")):
            raise NastyError(f"{flag} must be a positive number, got {v}")
    if not 0 < args.val_fraction < 1:
        raise NastyError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    if args.resume and args.restart:
        raise NastyError("--resume continues a checkpoint and --restart replaces it: give one of them")


def _recipe(args, dataset: str, shape):
    from ..errors import NastyError
    from ..train import Recipe
    aux = args.aux_weight
    if aux is not None and args.aux is False:
        raise NastyError("--no-aux and --aux-weight contradict each other; give one")
    if aux is None and args.aux is not None:
        aux = RECIPES["paper"]["aux_weight"] if args.aux else 0.0
    try:
        return Recipe.of(args.recipe, dataset, shape, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         schedule=args.schedule, momentum=args.momentum, nesterov=args.nesterov,
                         weight_decay=args.weight_decay, label_smoothing=args.label_smoothing, crop=args.crop,
                         flip=args.flip, cutout=args.cutout, drop_path=args.drop_path, aux_weight=aux,
                         grad_clip=args.grad_clip, precise_bn=args.precise_bn)
    except NastyError as e:
        raise NastyError(f"{e} (see `nasty train --help`)") from None


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run(args) -> int:
    train_final(args)
    return 0


def options_for(target, given: dict) -> argparse.Namespace:
    """The options of `nasty train TARGET` with Python keywords `given` set (the flags' names with
    '_' for '-': epochs=1, subset=2000, threads=1, set="N=2,F=16" or {"N": 2, "F": 16}, ...)."""
    import difflib

    from ..errors import NastyError
    p = argparse.ArgumentParser(prog="nasty")
    add_parser(p.add_subparsers())
    args = p.parse_args(["train", "."])
    args.target = target
    known = sorted(k for k in vars(args) if k not in ("target", "func"))
    for key, value in given.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, 1)
            raise NastyError(f"nasty.train got an unknown option {key!r}"
                             + (f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(known)}"))
        if key == "set" and value is not None:
            items = value.items() if isinstance(value, dict) else None
            value = [",".join(f"{k}={v}" for k, v in items)] if items is not None else \
                [value] if isinstance(value, str) else list(value)
        setattr(args, key, value)
    return args


def train_final(args, data=None) -> dict:
    """`nasty train` with the options `args` (see options_for): prints its progress and returns
    {"model": the trained Classifier (eval mode), "test_acc", "checkpoint": path or None,
    "history"}. `data`, given from Python as to nasty.search (a Dataset, (x, y[, test_x, test_y])
    arrays, a torch Dataset), replaces the dataset read by name: a run searched on arrays needs it."""
    import json
    import time
    from pathlib import Path

    import torch

    from .. import format as format_genotype
    from ..compile import compile_genotype
    from ..cost import cost
    from ..data import load_dataset, split_train_val
    from ..display import human
    from ..errors import NastyError
    from ..final import (
        CHECKPOINT_FORMAT,
        apply_overrides,
        final_genotype,
        identity,
        open_checkpoint,
        save_checkpoint,
        split_sets,
        with_aux_head,
        with_cell_drop_path,
    )
    from ..deploy import Classifier, check_export_path, export
    from ..search.budget import Budget
    from ..train import evaluate_test_set, resolve_device, train

    _check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.save:
        _check_destination(args.save)          # before training: a bad path must not cost the weights
    if args.export:
        check_export_path(args.export)
        _check_destination(args.export, "--export")
    winner, g, label = resolve_target(args.target, args.trial)
    sizing = args.set or args.budget or args.params
    if winner is None and sizing:
        raise NastyError("--set, --budget and --params size a run's winner; give a run folder (runs/NAME), "
                         "or edit the genotype file")
    budget = Budget.parse(args.budget, args.params) if (args.budget or args.params) else None
    values = apply_overrides(winner, args.set) if winner is not None else None
    if g is not None:
        from ..genotype.check import require_head
        require_head(g)                        # a backbone or a cut file: say so before any data loads
    resolve_device(args.device)                # a device this machine lacks fails before the data loads
    cfg = winner.config if winner is not None else {}
    if data is not None:
        from ..search.runner import as_dataset
        data = as_dataset(data)
        dataset = data.describe()["kind"]
        _recipe(args, dataset, (1, 2**31, 2**31))
    else:
        dataset = args.dataset or cfg.get("dataset") or "fashion-mnist"
        if dataset == "in-memory":
            raise NastyError(f"{args.target} searched on data given from Python; train its winner from Python with "
                             "the same data (nasty.train(run, data=...)), or pass --dataset and --data-dir")
        data_dir = args.data_dir or (cfg.get("data_dir") if not args.dataset else None)
        image_size = args.image_size or (cfg.get("image_size") if not args.dataset else None)
        _recipe(args, dataset, (1, 2**31, 2**31))  # the flags' values checked before the data loads (any size)
        data = load_dataset(dataset, data_dir, image_size=image_size)
    shape, classes = tuple(data.shape), data.num_classes
    if winner is not None:
        fixed = {name for name, _ in split_sets(args.set)}
        g, values = final_genotype(winner, values, shape, classes, budget, fixed)
        label = f"the final network of {winner.label}"
    recipe = _recipe(args, data.describe()["kind"], shape)

    # ---- the network, costed before anything trains
    c = cost(g, input=shape, classes=classes)
    sizes = ""
    if winner is not None:                      # the macro decisions: depth, the width, and what --set set
        shown = ["N", "L", winner.space.width_decision] + [n for n, _ in split_sets(args.set)]
        names = [n for n in dict.fromkeys(shown) if n in values]
        sizes = "".join(f" {n}={values[n]}" for n in names)
    print(f"{label}{sizes}: {g.name} at {'x'.join(map(str, shape))}, {classes} classes: {c.params:,} params, "
          f"{c.macs:,} MACs ({human(c.macs)}MACs) per image", flush=True)
    if winner is not None and winner.proxy is not None:
        pc = cost(winner.proxy)
        print(f"  (the search trained its proxy: {pc.params:,} params, {pc.macs:,} MACs; this network has "
              f"{c.params / max(pc.params, 1):.1f}x the params, {c.macs / max(pc.macs, 1):.1f}x the MACs)")
    train_g, branches = with_cell_drop_path(g, recipe.drop_path)
    if recipe.drop_path and not branches:
        print("  note: this network has no two-input cells, so --drop-path adds nothing; droppath ops of "
              "the genotype itself still ramp to their own rates")

    # ---- the checkpoint: continue it, or refuse to overwrite another training
    ck_path = Path(args.save) if args.save else (winner.folder / "final" / "checkpoint.pt" if winner else None)
    text = format_genotype(g)
    train_idx, val_idx = split_train_val(data, args.val_fraction, seed=args.seed)
    same = identity(text, recipe.as_dict(), shape, classes, data.describe(),
                    {"val_fraction": args.val_fraction, "seed": args.seed, "subset": args.subset,
                     "val_subset": args.val_subset})
    previous = open_checkpoint(ck_path, same, resume=args.resume, restart=args.restart)
    if ck_path is not None:
        ck_path.parent.mkdir(exist_ok=True)                      # runs/NAME/final/
        for stale in ck_path.parent.glob(f".{ck_path.name}.*.tmp"):   # left by a kill mid-save
            stale.unlink(missing_ok=True)

    torch.manual_seed(args.seed)
    net = compile_genotype(train_g, input=shape, classes=classes)
    model = with_aux_head(net, shape, classes) if recipe.aux_weight else net
    aux_params = sum(p.numel() for p in model.aux_head.parameters()) if recipe.aux_weight else 0
    resume_state = None
    if previous is not None:
        net.load_state_dict(previous["model"])
        if recipe.aux_weight:
            model.aux_head.load_state_dict(previous["aux"])
        resume_state = previous["train"]
    done = previous["epoch"] if previous is not None else 0

    tc = recipe.train_config(subset=args.subset, val_subset=args.val_subset, seed=args.seed, device=args.device,
                             threads=args.threads)
    n_train = min(len(train_idx), args.subset or len(train_idx))
    n_val = min(len(val_idx), args.val_subset or len(val_idx))
    print(f"recipe ({args.recipe}): {recipe.describe()}"
          + (f" (+{aux_params:,} params of the aux head, dropped after training)" if aux_params else ""))
    print(f"data: {dataset}, {n_train:,} training images, {n_val:,} for validation, "
          f"{len(data.test_y):,} for the test", flush=True)
    if previous is not None:
        print(f"{'resuming' if done < recipe.epochs else 'already trained:'} {ck_path} "
              f"({done}/{recipe.epochs} epochs done)", flush=True)
    else:
        print(f"checkpoint after every epoch: {ck_path}" if ck_path is not None else
              "no checkpoint (give --save FILE to keep the weights and to resume after a kill)", flush=True)

    def checkpoint(state, test_acc=None):
        return {"format": CHECKPOINT_FORMAT, "genotype": text, "name": g.name, "input": list(shape),
                "classes": classes, "source": label, "decisions": json.dumps(values, default=str) if values else None,
                "recipe": recipe.as_dict(), "identity": same, "epochs": recipe.epochs, "epoch": state["epoch"],
                # what inference needs: the input normalisation and the class names (nasty.deploy)
                "mean": list(data.mean), "std": list(data.std), "class_names": list(data.classes),
                "model": net.state_dict(), "aux": model.aux_head.state_dict() if recipe.aux_weight else None,
                "train": state, "test_acc": test_acc}

    last = {"state": resume_state}
    start = time.time()

    def on_state(state):
        last["state"] = state
        if ck_path is not None:
            save_checkpoint(ck_path, checkpoint(state))

    def on_epoch(epoch, m):
        spent = time.time() - start
        eta = spent / (epoch - done) * (recipe.epochs - epoch)
        print(f"  epoch {epoch}/{recipe.epochs}: train loss {m['train_loss']:.4f}  val acc {m['val_acc']:.4f}  "
              f"{m['images_per_s']:.0f} img/s  {_hms(spent)} elapsed, ETA {_hms(eta)}", flush=True)

    if done < recipe.epochs:
        with StepProgress(recipe.epochs) as progress:
            result = train(model, data, tc, train_idx, val_idx, on_epoch=progress.wrap(on_epoch), on_state=on_state,
                           resume=resume_state, on_step=progress.step)
        history = result.history
    else:
        history = previous["train"]["history"]
    net.eval()
    test_acc = evaluate_test_set(net, data, device=args.device)
    wall = time.time() - start
    print(f"test accuracy {test_acc:.4f} (val {history[-1]['val_acc']:.4f}) after {_hms(wall)}")
    if ck_path is not None:
        save_checkpoint(ck_path, checkpoint(last["state"], test_acc))
        if not args.save:                      # a run folder's final/: the genotype and a summary beside it
            (ck_path.parent / "final.nasty").write_text(text)
            summary = {"source": label, "genotype_file": "final.nasty", "decisions": values, "params": c.params,
                       "macs": c.macs, "input": list(shape), "classes": classes, "recipe": recipe.as_dict(),
                       "test_acc": test_acc, "val_acc": history[-1]["val_acc"], "history": history}
            (ck_path.parent / "result.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        print(f"weights, genotype and training state saved to {ck_path}")
    final = compile_genotype(g, input=shape, classes=classes)    # the plain genotype: no drop-path ops
    final.load_state_dict(net.state_dict())
    info = {"name": g.name, "genotype": text, "input": list(shape), "source": label, "test_acc": test_acc,
            "checkpoint": str(ck_path) if ck_path is not None else None, "epoch": recipe.epochs,
            "epochs": recipe.epochs}
    classifier = Classifier(final, data.mean, data.std, data.classes, info).eval()
    if args.export:
        print(export(classifier, shape, args.export))
    return {"model": classifier, "test_acc": test_acc, "checkpoint": ck_path, "history": history}


class StepProgress:
    """Progress within an epoch: on a terminal a rich bar (steps, images/s, the epoch's time left),
    redrawn at most a few times a second; in a log, a line every minute. The epoch lines are printed
    as before, above the bar."""

    LOG_EVERY_S = 60.0

    def __init__(self, epochs: int):
        import sys
        self.epochs, self.tty = epochs, sys.stdout.isatty()
        self.bar = self.task = None
        self.last_log = self.epoch_start = None

    def __enter__(self):
        import time
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("  epoch {task.fields[epoch]}/" + str(self.epochs)), BarColumn(),
                                MofNCompleteColumn(), TextColumn("steps"), TimeRemainingColumn(), transient=True)
            self.bar.start()
        self.last_log = time.monotonic()
        return self

    def step(self, epoch: int, step: int, steps: int) -> None:
        import time
        now = time.monotonic()
        if step == 1:
            self.epoch_start = now
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("train", total=steps, epoch=epoch)
            self.bar.update(self.task, completed=step, total=steps, epoch=epoch)
        elif now - self.last_log >= self.LOG_EVERY_S and step < steps:
            self.last_log = now
            left = (now - self.epoch_start) / step * (steps - step)
            print(f"  epoch {epoch}/{self.epochs}: step {step}/{steps} ({step / steps:.0%}), "
                  f"{_hms(left)} left in this epoch", flush=True)

    def wrap(self, on_epoch):
        def after_epoch(epoch, metrics):
            on_epoch(epoch, metrics)                      # rich prints it above the bar
            if self.bar is not None and self.task is not None:
                self.bar.reset(self.task)
        return after_epoch

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
