"""`nasty bench build|run`: our own NAS benchmark and NAS-Bench-201's (see nasty/nasbench/)."""
from __future__ import annotations

NB201_K = 5           # the screen's K by default (docs/benchmarks-nb201.md: the K sweep behind it)


def add_parser(sub):
    p = sub.add_parser("bench", help="simulate controllers on NAS-Bench-201 or on our own small table; build ours",
                       description="`build` trains every cell of a small NAS-Bench-201-like space "
                                   "(4 nodes, 6 edges, ops none/skip/conv3x3: 729 cells) on Fashion-MNIST "
                                   "with a fixed recipe and seed. `run` simulates each controller on that "
                                   "table, or with --table nb201 on NAS-Bench-201's (15,625 cells, CIFAR-10, "
                                   "shipped with nasty), with and without a screen by params (a trial is a "
                                   "lookup), and plots mean regret vs trials.")
    bsub = p.add_subparsers(dest="bench_command", metavar="build|run")
    bsub.required = True
    b = bsub.add_parser("build", help="train every cell once and store the table (resumable)")
    b.add_argument("--out", default="runs/nasbench-table",
                   help="table folder (default runs/nasbench-table; nasty/nasbench rebuilds the shipped table)")
    b.add_argument("--limit", type=int, default=None, help="train only the first N distinct networks (testing)")
    b.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    b.add_argument("--threads", type=int, default=1, help="torch threads (default 1, leaving a core free)")
    b.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    b.add_argument("--train-subset", type=int, default=None, help="override the recipe's training images")
    b.set_defaults(func=run_build)

    r = bsub.add_parser("run", help="simulate controllers on the table: regret curves and a results table")
    r.add_argument("--table", default=None,
                   help="nb201: NAS-Bench-201's CIFAR-10 table (15,625 cells, shipped with nasty; or a CSV of its "
                        "form, .csv or .csv.gz); else an nb201mini table folder or table.json (default: our "
                        "nb201mini table, shipped with nasty)")
    r.add_argument("--controllers", default=None,
                   help="comma-separated controllers, each NAME or NAME:key=value:... with options "
                        "(e.g. tpe:multivariate=true) (default: random,evolution,reinforce,tpe,nsga2; with "
                        "--evaluator supernet: random,reinforce,evolution,darts)")
    r.add_argument("--evaluator", choices=("table", "supernet"), default="table",
                   help="table (default): a trial is a lookup; supernet: real one-shot searches (shared weights, "
                        "DARTS) on Fashion-MNIST, judged by the table: rank agreement, regret, multi-trial "
                        "controllers at equal wall-clock")
    r.add_argument("--seconds", type=float, default=60.0,
                   help="with --evaluator supernet: search time of each one-shot search (default 60)")
    r.add_argument("--score-images", type=int, default=1000,
                   help="with --evaluator supernet: validation images each of the 291 networks is scored on with "
                        "the final shared weights, for the rank agreement (default 1000)")
    r.add_argument("--supernet-bn", choices=("batch", "recompute"), default="batch",
                   help="with --evaluator supernet: BN statistics of a scored child (as nasty search's flag)")
    r.add_argument("--compare", default="random,evolution,reinforce,tpe",
                   help="with --evaluator supernet: multi-trial controllers simulated at the same wall-clock")
    r.add_argument("--trials", type=int, default=None,
                   help="trials (evaluations) per simulated search (default 100; 300 with --table nb201)")
    r.add_argument("--seeds", type=int, default=20, help="independent searches per controller (default 20)")
    r.add_argument("--out", default=None, help="where the plot and results go (default runs/nasbench, "
                                               "runs/nasbench-nb201 with --table nb201)")
    r.add_argument("--at", default=None,
                   help="trial counts for the results table (default 25,50,100; 25,50,100,300 with --table nb201)")
    r.add_argument("--screen", choices=("params", "macs", "none"), default=None,
                   help="also run every controller behind a screen: each trial is the best of K proposals by this "
                        "analytic score (default: params with --table nb201, none otherwise)")
    r.add_argument("--screen-k", type=int, default=None,
                   help=f"K, the proposals per trial of a screened search (default {NB201_K})")
    r.add_argument("--jobs", type=int, default=1,
                   help="processes that share the seeds (default 1; results do not depend on it)")
    r.add_argument("--workers", type=int, default=1,
                   help="trials in flight: asked before any of them is told (default 1)")
    r.add_argument("--dedupe", action="store_true",
                   help="tell a repeated cell its known result without counting it as a trial")
    r.add_argument("--schedulers", default=None,
                   help="multi-fidelity instead: compare these schedulers (fifo,asha,hyperband) for every controller "
                        "at equal training epochs, from the table's per-epoch curves")
    r.add_argument("--budget-epochs", type=int, default=300,
                   help="with --schedulers: training epochs per simulated search (default 300 = 100 full trials)")
    r.set_defaults(func=run_run)


def run_build(args) -> int:
    from ..errors import NastyError
    from ..nasbench.table import build_table
    from ..limits import threads_problem
    if threads_problem(args.threads):
        raise NastyError(threads_problem(args.threads))
    recipe = {"threads": args.threads}
    if args.epochs is not None:
        if args.epochs < 1:
            raise NastyError(f"--epochs must be at least 1, got {args.epochs}")
        recipe["epochs"] = args.epochs
    if args.train_subset is not None:
        if args.train_subset < 1:
            raise NastyError(f"--train-subset must be at least 1, got {args.train_subset}")
        recipe["train_subset"] = args.train_subset
    if args.limit is not None and args.limit < 1:
        raise NastyError(f"--limit must be at least 1, got {args.limit}")
    build_table(args.out, recipe, limit=args.limit, device=args.device,
                log=lambda s: print(s, flush=True))
    return 0


def run_run(args) -> int:
    from ..errors import NastyError
    from ..nasbench.simulate import (
        ONESHOT_CONTROLLERS,
        run_benchmark,
        run_oneshot_benchmark,
    )
    if args.evaluator == "supernet":
        names = [n.strip() for n in (args.controllers or ",".join(ONESHOT_CONTROLLERS)).split(",") if n.strip()]
        bad = [n for n in names if n not in ONESHOT_CONTROLLERS]
        if bad:
            raise NastyError(f"--evaluator supernet runs {', '.join(ONESHOT_CONTROLLERS)}; not {', '.join(bad)}")
        compare = [n.strip() for n in args.compare.split(",") if n.strip()]
        if args.seeds < 1 or not args.seconds > 0 or args.score_images < 1:
            raise NastyError("--seeds, --seconds and --score-images must be positive")
        run_oneshot_benchmark(args.table, names, seeds=args.seeds, seconds=args.seconds, out_dir=args.out,
                              compare=compare, score_images=args.score_images,
                              options={"supernet_bn": args.supernet_bn} if args.supernet_bn != "batch" else None,
                              log=lambda s: print(s, flush=True))
        return 0
    names = [n.strip() for n in (args.controllers or "random,evolution,reinforce,tpe,nsga2").split(",")
             if n.strip()]
    if not names:
        raise NastyError("--controllers needs at least one controller name")
    nb201 = args.table is not None and (args.table in ("nb201", "nas-bench-201") or args.table.endswith(".csv")
                                        or args.table.endswith(".csv.gz"))
    trials = args.trials if args.trials is not None else 300 if nb201 else 100
    at_text = args.at or ("25,50,100,300" if nb201 else "25,50,100")
    try:
        at = [int(x) for x in at_text.split(",") if x.strip()]
    except ValueError:
        raise NastyError(f"--at must be comma-separated trial counts, got {args.at!r}") from None
    if trials < 1 or args.seeds < 1 or args.workers < 1 or args.jobs < 1:
        raise NastyError("--trials, --seeds, --workers and --jobs must be at least 1")
    screen = args.screen or ("params" if nb201 else "none")
    k = args.screen_k if args.screen_k is not None else NB201_K
    if screen != "none" and k < 2:
        raise NastyError(f"--screen-k must be at least 2 (the screen keeps 1 of K proposals), got {k}")
    if args.schedulers:
        if nb201:
            raise NastyError("--schedulers needs per-epoch curves, which the NAS-Bench-201 table does not ship; "
                             "use it with the nb201mini table")
        from ..nasbench.fidelity import run_fidelity_benchmark
        if args.budget_epochs < 1:
            raise NastyError(f"--budget-epochs must be at least 1, got {args.budget_epochs}")
        scheds = [x.strip() for x in args.schedulers.split(",") if x.strip()]
        at = [a for a in at if a <= args.budget_epochs] if args.at is not None else \
            [args.budget_epochs // 4, args.budget_epochs // 2, args.budget_epochs]
        run_fidelity_benchmark(args.table, names, scheds, args.budget_epochs, args.seeds, at, args.out,
                               log=lambda s: print(s, flush=True))
        return 0
    run_benchmark(args.table, names, trials=trials, seeds=args.seeds,
                  out_dir=args.out or ("runs/nasbench-nb201" if nb201 else None), at=at, workers=args.workers,
                  dedupe=args.dedupe, screen=None if screen == "none" else screen, k=k, jobs=args.jobs,
                  log=lambda s: print(s, flush=True))
    return 0
