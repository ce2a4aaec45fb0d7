"""`nasty search`: sample a space under a budget, train the proxies with Ray Tune, keep a run folder.
Its flags are the fields of nasty.search.settings.Settings, derived from them."""
from __future__ import annotations


def add_parser(sub):
    from ..search.settings import add_arguments
    p = sub.add_parser(
        "search", help="search a space under a FLOP/parameter budget (Ray Tune trials on real data)",
        description="Search an architecture space. Every sample is costed analytically at the space's "
                    "TARGET (e.g. ImageNet 224x224 for nasnet) before anything trains: over-budget samples "
                    "are recorded and never trained. Within-budget samples build a small PROXY network that "
                    "Ray Tune trains on the data at hand (default Fashion-MNIST). FLOP convention: one "
                    "multiply-add = one FLOP, so 600MFLOPs = 600MMACs = 600MMAdds. Results go to "
                    "runs/NAME/ as they happen; --resume continues a run after a crash or Ctrl-C.")
    add_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue runs/NAME without re-running finished trials")
    p.add_argument("--config", metavar="FILE",
                   help="settings from a YAML or JSON file with the keys of config.json (a run's own config.json "
                        "re-runs it as a new run); flags given on the command line win")
    p.add_argument("--json", action="store_true", help="print the end-of-run summary as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress: only the summary (and errors)")
    p.add_argument("-v", "--verbose", action="store_true", help="a progress line per epoch as well as per trial")
    p.set_defaults(func=run)


def run(args) -> int:
    # SIGTERM (kill, a scheduler's timeout) ends a search as Ctrl-C does, with rc 143: trials stopped,
    # records kept, a resumable folder, no Ray stack dump (nasty/search/signals.py)
    from ..search.runner import search
    from ..search.settings import from_arguments
    import json
    import sys

    from rich.console import Console

    from ..search.record import jsonable
    verbosity = 0 if args.quiet else 2 if args.verbose else 1
    summary_console = Console(stderr=True, highlight=False) if args.json else None
    summary = search(from_arguments(args), resume=getattr(args, "resume", None), verbosity=verbosity,
                     summary_console=summary_console)
    if args.json:
        sys.stdout.write(json.dumps(jsonable(summary), indent=1) + "\n")
    return 0 if summary is not None else 1
