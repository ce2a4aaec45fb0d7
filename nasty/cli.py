"""The `nasty` command. Each subcommand lives in `nasty/commands/<name>.py` and
exposes `add_parser(subparsers)` and `run(args) -> int`.

Building the parser imports every command module, so their top levels stay light (no torch):
`nasty --version` and `nasty --help` answer in a fraction of a second. An unknown option or
value gets a did-you-mean from argparse's own list of options and choices.

Every NastyError is printed as one line (`nasty: error: ...`) with exit code 2, every
NastyWarning as one line (`nasty: warning: ...`);
no raw traceback reaches the user unless NASTY_DEBUG=1. When the reader of stdout goes away
(`nasty show resnet50 | head -1`) the command stops quietly with exit code 141, as a
command killed by SIGPIPE does.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import re
import select
import sys

from .errors import NastyError

COMMANDS = ["show", "zoo", "build", "search", "train", "predict", "data", "report", "scale", "bench", "draw", "latency",
            "upgrade"]
EXIT_PIPE = 128 + 13      # what a shell reports for a command ended by SIGPIPE


def _available():
    for name in COMMANDS:
        try:
            yield name, importlib.import_module(f"nasty.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"nasty.commands.{name}":
                raise


def _close(word: str, options) -> str:
    """ "; did you mean X?" for the option or choice nearest to `word`, or ""."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Parser(argparse.ArgumentParser):
    """argparse, with a did-you-mean after an invalid choice (a command or an option's value)."""

    def error(self, message):
        m = re.search(r"invalid choice: '?([^'()]*?)'? \(choose from (.*)\)$", message)
        if m:
            message += _close(m.group(1), [c.strip(" '") for c in m.group(2).split(",")])
        super().error(message)

    def unknown_options(self, extra) -> str:
        """The error message for arguments this parser does not know, with a did-you-mean."""
        options = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        hint = next((h for h in (_close(a.split("=", 1)[0], options) for a in extra if a.startswith("--")) if h), "")
        return f"unrecognized arguments: {' '.join(extra)}{hint}"


def make_parser() -> argparse.ArgumentParser:
    p = Parser(
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


def _stdout_reader_gone() -> bool:
    """True when stdout is a pipe whose reading end is closed (`| head -1` has exited)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):     # not a real file (a test's capture)
        return False


def _quiet_stdout():
    """Point stdout at /dev/null, so Python's last flush at exit does not report the pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


@contextlib.contextmanager
def _one_line_warnings():
    """While a command runs, nasty's own warnings are printed as one line each (`nasty: warning:
    ...`), every time (not once per place, as Python's default shows them); others as Python does."""
    import warnings

    from .errors import NastyWarning
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, NastyWarning):
                print(f"nasty: warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)
        warnings.showwarning = show
        warnings.simplefilter("always", NastyWarning)
        yield


def main(argv=None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(_negative_values(sys.argv[1:] if argv is None else list(argv)))
    if extra:                                # an unknown option: the subcommand's usage, not nasty's
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = sub.choices[args.command]
        while True:                          # `nasty data fetch ...`: the innermost command's usage
            inner = next((a for a in command._actions if isinstance(a, argparse._SubParsersAction)), None)
            if inner is None or getattr(args, inner.dest, None) not in inner.choices:
                break
            command = inner.choices[getattr(args, inner.dest)]
        command.error(command.unknown_options(extra))
    try:
        with _one_line_warnings():
            rc = int(args.func(args) or 0)
        sys.stdout.flush()                  # a closed pipe shows here, not at interpreter exit
        return rc
    except BrokenPipeError:
        if not _stdout_reader_gone():       # a pipe of nasty's own broke: a bug, reported below
            return _internal_error()
        _quiet_stdout()
        return EXIT_PIPE
    except NastyError as e:
        print(f"nasty: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasty: interrupted", file=sys.stderr)
        return 130
    except Exception:       # a bug in nasty: still one line, unless debugging
        return _internal_error()


def _internal_error() -> int:
    """Report the exception being handled in one line (the traceback with NASTY_DEBUG=1)."""
    e = sys.exc_info()[1]
    if os.environ.get("NASTY_DEBUG"):
        raise e
    print(f"nasty: internal error: {type(e).__name__}: {e} (set NASTY_DEBUG=1 for the traceback)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
