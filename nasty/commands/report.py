"""`nasty report runs/NAME`: the leaderboard of a search; rewrites its plots and results."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("report", help="print a search's leaderboard and rewrite its plots and report.html",
                       description="Print the leaderboard of a run folder (proxy validation accuracy, target "
                                   "MACs and params; one multiply-add = one FLOP) and rewrite leaderboard, "
                                   "best.nasty, plots/ (PNG and SVG, the winner's cells) and report.html "
                                   "from its trial records.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. runs/nasnet-20250101-120000")
    p.add_argument("--top", type=int, default=20, help="rows of the leaderboard to print (default 20)")
    p.add_argument("--json", action="store_true",
                   help="print the run as JSON on stdout (settings, counts, winner, leaderboard) instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys

    from rich.console import Console

    from ..search.results import report, report_json
    if args.json:
        report(args.run_dir, console=None, top=args.top)       # rewrites the files, prints nothing
        sys.stdout.write(json.dumps(report_json(args.run_dir, top=args.top), indent=1) + "\n")
        return 0
    report(args.run_dir, console=Console(highlight=False), top=args.top)
    return 0
