"""The `nasty` command. Each subcommand lives in `nasty/commands/<name>.py` and
exposes `add_parser(subparsers)` and `run(args) -> int`.

Every NastyError is printed as one line (`nasty: error: ...`) with exit code 2;
no raw traceback reaches the user unless NASTY_DEBUG=1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from .errors import NastyError

COMMANDS = ["show", "zoo", "build", "search", "train", "report", "scale", "bench", "draw"]


def _available():
    for name in COMMANDS:
        try:
            yield name, importlib.import_module(f"nasty.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"nasty.commands.{name}":
                raise


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nasty",
        description="Neural architecture search on one genotype language. "
                    "FLOP convention: one multiply-add = one FLOP (MACs, MAdds are synonyms).")
    from . import __version__
    p.add_argument("--version", action="version", version=f"nasty {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, mod in _available():
        mod.add_parser(sub)
    return p


def _negative_values(argv):
    """`--budget -1M` -> `--budget=-1M`: argparse would take -1M for an option and print its
    usage; passed through, the command explains in one line what is wrong with the value."""
    out = []
    for a in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"-\.?\d", a):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(_negative_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        return int(args.func(args) or 0)
    except NastyError as e:
        print(f"nasty: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasty: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in nasty: still one line, unless debugging
        if os.environ.get("NASTY_DEBUG"):
            raise
        print(f"nasty: internal error: {type(e).__name__}: {e} (set NASTY_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
