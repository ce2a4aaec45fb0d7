"""`nasty train GENOTYPE_OR_RUN`: train a search's winner (or any genotype / zoo network) on real
data and report its test accuracy: how to get the final model out of a search."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train a run's winner, a genotype file or a zoo network; report test accuracy",
        description="Train a network on a real dataset and report its accuracy on the held-out test set. "
                    "Given a run folder (runs/NAME) it trains that search's winner at the proxy input the "
                    "search used (best_proxy.nasty) on the run's dataset; given a genotype file or zoo name "
                    "it compiles it at the dataset's input size and class count.")
    p.add_argument("target", metavar="GENOTYPE_OR_RUN", help="run folder, genotype file (.nasty/.json) or zoo name")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--trial", type=int, help="with a run folder: train this trial instead of the winner")
    p.add_argument("--dataset", help="fashion-mnist (default, or the run's), mnist, cifar10, cifar100")
    p.add_argument("--data-dir", help="directory with the dataset's files")
    p.add_argument("--image-size", type=int, metavar="N",
                   help="with --dataset imagefolder: resize every image to N x N (default: the run's, or the files' size)")
    p.add_argument("--subset", type=int, help="train on at most this many images (default: all)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the run's, else 128)")
    p.add_argument("--lr", type=float, help="peak learning rate of one-cycle SGD (default: the run's, else 0.1)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held out of train for validation")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", metavar="PATH", help="save the trained weights (torch state_dict) here")
    p.set_defaults(func=run)


def resolve_target(target: str, trial: int | None = None):
    """(genotype, label, run config or None) for a run folder, genotype file or zoo name."""
    from pathlib import Path

    from .. import parse, resolve
    from ..errors import RunError
    from ..search.folder import RunFolder
    p = Path(target)
    if p.is_dir():
        folder = RunFolder(p)
        cfg = folder.config()
        if trial is None:
            best = folder.path / "best_proxy.nasty"
            if not best.is_file():
                raise RunError(f"run {p} has no winner yet (no best_proxy.nasty); "
                               f"`nasty report {p}` shows its trials")
            return parse(best.read_text(), str(best)), f"winner of {p}", cfg
        recs = [r for r in folder.records() if r.trial == trial and r.proxy_genotype]
        if not recs:
            raise RunError(f"run {p} has no trained trial #{trial}")
        return parse(recs[-1].proxy_genotype, f"{p} trial #{trial}"), f"trial #{trial} of {p}", cfg
    if trial is not None:
        raise RunError("--trial needs a run folder")
    return resolve(target), target, None


def _check_destination(path: str):
    """A one-line error now, not after training, when the weights could not be saved at `path`."""
    import os
    from pathlib import Path

    from ..errors import NastyError
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise NastyError(f"--save {path} is a folder; give a file name such as {p / 'weights.pt'}")
    if not parent.is_dir():
        raise NastyError(f"--save {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise NastyError(f"--save {path}: cannot write there (permission denied)")


def run(args) -> int:
    import time

    from ..compile import compile_genotype
    from ..cost import cost
    from ..data import load_dataset, split_train_val
    from ..errors import NastyError
    from ..display import human
    from ..train import TrainConfig, evaluate_test_set, train

    for flag, v, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1), ("--subset", args.subset, 1)):
        if v is not None and v < low:
            raise NastyError(f"{flag} must be at least {low}, got {v}")
    if args.lr is not None and not (args.lr > 0 and args.lr < float("inf")):
        raise NastyError(f"--lr must be a positive number, got {args.lr}")
    if args.save:
        _check_destination(args.save)          # before training: a bad path must not cost the weights
    g, label, cfg = resolve_target(args.target, args.trial)
    from ..genotype.check import require_head
    require_head(g)                            # a backbone or a cut file: say so before any data loads
    from ..train import resolve_device
    resolve_device(args.device)                # a device this machine lacks fails before the data loads
    dataset = args.dataset or (cfg or {}).get("dataset") or "fashion-mnist"
    if dataset == "in-memory":
        raise NastyError(f"{args.target} searched on data given from Python; train its winner from Python, or "
                         "pass --dataset and --data-dir")
    data_dir = args.data_dir or ((cfg or {}).get("data_dir") if not args.dataset else None)
    image_size = args.image_size or ((cfg or {}).get("image_size") if not args.dataset else None)
    data = load_dataset(dataset, data_dir, image_size=image_size)
    train_idx, val_idx = split_train_val(data, args.val_fraction, seed=args.seed)
    import torch
    torch.manual_seed(args.seed)
    model = compile_genotype(g, input=data.shape, classes=data.num_classes)
    c = cost(g, input=data.shape, classes=data.num_classes)
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    print(f"training {label} ({g.name}) on {dataset} {'x'.join(map(str, data.shape))}: "
          f"{human(c.params)} params, {human(c.macs)}MACs per image; {epochs}", flush=True)
    batch_size = args.batch_size if args.batch_size is not None else (cfg or {}).get("batch_size") or 128
    lr = args.lr if args.lr is not None else (cfg or {}).get("lr") or 0.1
    tc = TrainConfig(epochs=args.epochs, batch_size=batch_size, lr=lr, subset=args.subset,
                     seed=args.seed, device=args.device)
    start = time.time()

    def on_epoch(epoch, m):
        print(f"  epoch {epoch}/{args.epochs}: train loss {m['train_loss']:.4f}  val acc {m['val_acc']:.4f}  "
              f"({m['images_per_s']:.0f} img/s)", flush=True)

    result = train(model, data, tc, train_idx, val_idx, on_epoch=on_epoch)
    test_acc = evaluate_test_set(model, data, device=args.device)
    print(f"test accuracy {test_acc:.4f} (val {result.final_val_acc:.4f}) after {time.time() - start:.0f} s")
    if args.save:
        try:
            torch.save(model.state_dict(), args.save)
        except OSError as e:
            raise NastyError(f"cannot save weights to {args.save}: {e.strerror}") from None
        print(f"weights saved to {args.save}")
    return 0
