"""`nasty upgrade FILE [--write | -o OUT] [--rule current|before]`: a genotype file written before
`else` was required, with the else of every guarded line written in at once (legacy.rewrite).

Only the guarded lines change; the new text is checked before anything is written: it parses,
it is the genotype the past rule built, and it prices the same params and MACs.
"""
from __future__ import annotations

import sys

BOM = b"\xef\xbb\xbf"


def add_parser(sub):
    p = sub.add_parser(
        "upgrade", help="write the else of every guarded line of a genotype file written before else was required",
        description="Rewrite a genotype file (.nasty or .json) written before `NODE = EXPR if COND else NAME` was "
                    "required: each line with `if` and no `else` gets the else that keeps what nasty built from it; "
                    "nothing else in the file changes (comments, spacing, order). Where the two past rules differ (a "
                    "guarded node read directly by a cat), --rule says which built your network. The new text is "
                    "checked first: it parses and builds the same network, params and MACs. Without --write or -o, "
                    "the new text goes to stdout and the summary to stderr.")
    p.add_argument("file", metavar="FILE", help="genotype file (.nasty text or .json)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--write", action="store_true", help="rewrite FILE in place")
    out.add_argument("-o", "--out", metavar="OUT", help="write the upgraded text to OUT")
    p.add_argument("--rule", choices=["current", "before"],
                   help="where the two past rules differ: 'current' (what nasty built since 2026-11-30: left out of "
                        "the cat, `else none`) or 'before' (what it built up to then: the first name of the node's "
                        "expression); without it such a file is refused, listing those lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from .. import read_text
    from ..errors import NastyError
    from ..genotype.legacy import CAT_RULE_SINCE, rewrite, rewrite_json
    path = Path(args.file)
    if not path.is_file():
        raise NastyError(f"genotype file {args.file!r} does not exist" if not path.exists() else
                         f"{args.file!r} is not a file")
    target = path if args.write else Path(args.out) if args.out else None
    if target is not None and not target.parent.is_dir():
        raise NastyError(f"-o {args.out}: folder {str(target.parent)!r} does not exist")
    same = target is not None and target.exists() and target.samefile(path)
    text = read_text(path)
    with open(path, "rb") as f:
        bom = f.read(3) == BOM                       # kept as it was
    rw = (rewrite_json if path.suffix == ".json" else rewrite)(text, str(path), args.rule)
    report = sys.stderr if target is None else sys.stdout
    if rw.genotype is None:
        print(f"{path}: nothing to upgrade: no `if` lacks its `else`"
              + (f"; copied to {target}" if target is not None and not same else ""), file=report)
    else:
        n = len(rw.changes)
        print(f"{path}: {n} guarded line{'s' if n > 1 else ''} given an else"
              + (" (the JSON written anew, indented by 2: its strings were not where json writes them)"
                 if rw.reindented else ""), file=report)
        for line, old, new in rw.changes:
            at = f"{line}" if line is not None else ""
            print(f"-{at}: {old.rstrip()}\n+{at}: {new.rstrip()}", file=report)
        rule = ("" if rw.rule is None else
                f"; where the past rules differ, by the rule since {CAT_RULE_SINCE} (--rule current)"
                if rw.rule == "current" else f"; where the past rules differ, by the rule before {CAT_RULE_SINCE} "
                                             f"(--rule before)")
        print(f"{path}: checked: the new text parses and builds what nasty built from the old one: params "
              f"{rw.params:,}, MACs {rw.macs:,}{rule}", file=report)
    if target is None:
        sys.stdout.write(rw.text)
        return 0
    if same and rw.genotype is None:
        return 0
    _write(target, (BOM if bom else b"") + rw.text.encode("utf-8"), keep_mode=same)
    print(f"written to {target}", file=report)
    return 0


def _write(target, data: bytes, keep_mode: bool):
    """Replace `target` at once (never half-written); `keep_mode`: with the permissions it had."""
    import os

    from ..errors import NastyError
    from ..search.folder import atomic_write
    try:
        mode = os.stat(target).st_mode & 0o7777 if keep_mode else None
        atomic_write(target, data)
        if mode is not None:
            os.chmod(target, mode)
    except OSError as e:
        raise NastyError(f"cannot write {str(target)!r}: {e.strerror}") from None
