"""The two past rules for a node with `if` and no `else`, and the message that refuses the form.

Below the parser, the checker and the elaborator, which refuse such a node (missing_else) or read
how a node is used (read_as); nasty/genotype/legacy.py, above them, upgrades stored texts by these
rules. Split so that every import in nasty/ points down (tests/test_imports.py).
"""
from __future__ import annotations

from .expr import Sym
from .ir import NONE, Apply, Cell, CellCall, Combine, Ref


def first_ref(e) -> str:
    """The first node or input an expression names."""
    while not isinstance(e, Ref):
        e = e.src if isinstance(e, Apply) else e.args[0]
    return e.name


def read_as(e, name, direct_in_cat=False):
    """How expression `e` reads `name`: yields "cat" for each read as a direct operand of a
    cat(...), "other" for every other read (a source of ops, an operand of another join,
    prev=NODE)."""
    if isinstance(e, Ref):
        if e.name == name:
            yield "cat" if direct_in_cat else "other"
    elif isinstance(e, Apply):
        for el in e.chain:
            for k, v in (el.kwargs if isinstance(el, CellCall) else ()):
                if k == "prev" and isinstance(v, Sym) and v.name == name:
                    yield "other"
        yield from read_as(e.src, name)
    elif isinstance(e, Combine):
        for a in e.args:
            yield from read_as(a, name, e.kind == "cat")


# When a guarded node stood for something implicit, and what: up to 2026-11-30 it stood for the
# first node or input its expression names, everywhere; from then on it was left out where it
# was a direct operand of cat(...), and stood for that first name elsewhere.
CAT_RULE_SINCE = "2026-11-30"


def legacy_else(cell: Cell, i: int) -> tuple[str | None, str]:
    """What node `i` of `cell`, guarded by `if` without `else`, was when skipped, as an `else`:
    (by the rule of the last release, or None where no single else says it; by the rule before
    CAT_RULE_SINCE)."""
    node = cell.nodes[i]
    first = first_ref(node.expr)
    reads = {r for n in cell.nodes[i + 1:] for r in read_as(n.expr, node.name)}
    reads |= {"other" for n in cell.nodes[i + 1:] if n.otherwise == node.name}
    if node.name == "out":
        reads.add("other")                  # the cell's output
    if "cat" not in reads:
        return first, first
    return (NONE if reads == {"cat"} else None), first


def missing_else(cell: Cell):
    """(index, hint) of the first node of `cell` with `if` but no `else`, or None; `hint(line, file)`
    is the message: the explicit form to write first (a message may be cut short), given the
    node's line as the message shows it, then why, then the command that writes every such line of
    `file` at once (`nasty upgrade`, with the rule to keep where the two past rules differ)."""
    for i, node in enumerate(cell.nodes):
        if node.when is not None and node.otherwise is None:
            now, before = legacy_else(cell, i)
            why = (f": node {node.name!r} of cell {cell.name} has 'if' without 'else', which names what the node "
                   f"is when its guard is false (an input, an earlier node, or none, which joins leave out)")

            def fix(file, rule="", alt=""):
                return (f"; `nasty upgrade {_shown(file)}{rule}`{alt} writes the else of every such line of the "
                        f"file at once")
            if now == before:
                return i, lambda line, file=None: f"write `{line} else {now}`{why}{fix(file)}"
            if now == NONE:
                return i, lambda line, file=None: (
                    f"write `{line} else none` (left out of the cat: what nasty built since {CAT_RULE_SINCE}) or "
                    f"`... else {before}` (what it built before then){why}"
                    f"{fix(file, ' --rule current', ' (or --rule before)')}")
            return i, lambda line, file=None: (
                f"write `{line} else {before}` (as nasty built it before {CAT_RULE_SINCE}; since then it was left "
                f"out of cat(...) and was {before} elsewhere: for that, give the cat a node of its own with "
                f"`else none`){why}{fix(file, ' --rule before')}")
    return None


def _shown(file) -> str:
    """A file's name as a shell command takes it (FILE where there is none)."""
    import shlex
    return shlex.quote(file) if file else "FILE"


def needs_else(text: str) -> bool:
    """Whether a genotype text may have a node with `if` and no `else` (a cheap look at its
    lines: a stored text without one is read as it is)."""
    if " if " not in text:
        return False
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            code = line.split("#", 1)[0]
            if " if " in code and " else " not in code:
                return True
    return False
