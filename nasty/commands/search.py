"""`nasty search`: sample a space under a budget, train the proxies with Ray Tune, keep a run folder."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "search", help="search a space under a FLOP/parameter budget (Ray Tune trials on real data)",
        description="Search an architecture space. Every sample is costed analytically at the space's "
                    "TARGET (e.g. ImageNet 224x224 for nasnet) before anything trains: over-budget samples "
                    "are recorded and never trained. Within-budget samples build a small PROXY network that "
                    "Ray Tune trains on the data at hand (default Fashion-MNIST). FLOP convention: one "
                    "multiply-add = one FLOP, so 600MFLOPs = 600MMACs = 600MMAdds. Results go to "
                    "runs/NAME/ as they happen; --resume continues a run after a crash or Ctrl-C.")
    p.add_argument("--space", help="built-in space (nasnet, mbconv, resnet, darts) or a .py file with one @space")
    p.add_argument("--budget", metavar="FLOPS",
                   help="multiply-adds at the target, e.g. 600MFLOPs, 600M, 1.2GMACs, 600MMAdds")
    p.add_argument("--params", metavar="N", help="parameters at the target, e.g. 5M")
    p.add_argument("--fit", action="store_true",
                   help="scale each sample's width (F, width multiplier) to the largest value within budget")
    p.add_argument("--controller", default="random",
                   help="search controller: random (default), reinforce, tpe, nsga2, evolution, compound")
    p.add_argument("--objective", help="what the controller optimises: accuracy (default), pareto (accuracy vs "
                                       "target MACs; tpe, nsga2) or soft (MnasNet's ACC*(MACs/T)^w; reinforce)")
    p.add_argument("--baseline", metavar="NAME",
                   help="with --controller compound: the network whose depth/width/resolution scaling is "
                        "searched (e.g. efficientnet_b0), instead of --space")
    p.add_argument("--trials", type=int,
                   help="trials to train (default 48 on CPU, 200 with a GPU; --time-budget may end it first)")
    p.add_argument("--epochs", type=int, help="proxy training epochs per trial (default 2 CPU, 5 GPU)")
    p.add_argument("--subset", type=int, help="training images per trial (default 6000 CPU, 20000 GPU)")
    p.add_argument("--val-subset", type=int, help="validation images per trial (default 2000 CPU, 5000 GPU)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training set held out for validation (default 0.1)")
    p.add_argument("--batch-size", type=int, help="proxy batch size (default 64 CPU, 256 GPU)")
    p.add_argument("--lr", type=float, help="peak learning rate (one-cycle SGD; default 0.05 CPU, 0.1 GPU)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="search time: no trial starts that would end after it (default 450 s, so that a default "
                        "search ends within 10 minutes)")
    p.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default), mnist, cifar10, cifar100")
    p.add_argument("--data-dir", help="directory with the dataset's files (default /usr/share/datasets/NAME)")
    p.add_argument("--cpus-per-trial", type=float,
                   help="CPUs per trial (default 1, or 2 with a GPU); concurrency follows from the resources")
    p.add_argument("--gpus-per-trial", type=float,
                   help="GPUs per trial, fractional packs trials (0.25: four per GPU); default 0.25 with a GPU")
    p.add_argument("--address", help="join an existing Ray cluster (e.g. 10.0.0.1:6379) instead of a local one")
    p.add_argument("--scheduler", default="fifo", choices=["fifo", "asha"],
                   help="asha stops weak trials early (Ray Tune's ASHA on per-epoch accuracy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="run folder name under --runs-dir (default SPACE-DATE-TIME)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default runs/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue runs/NAME without re-running finished trials")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..run import Settings, search
    names = ("space", "budget", "params", "fit", "controller", "objective", "baseline", "trials", "epochs",
             "subset", "val_subset", "val_fraction", "batch_size", "lr", "time_budget", "dataset", "data_dir",
             "cpus_per_trial", "gpus_per_trial", "address", "scheduler", "seed", "name", "runs_dir")
    s = Settings(**{k: getattr(args, k) for k in names})
    summary = search(s, resume=args.resume)
    return 0 if summary is not None else 1
