"""Reading genotype texts written before `if` needed `else`: the ones a run folder stores.

Until `NODE = EXPR if COND else NAME` was required, a node skipped by its `if` stood for
something implicit, by one of two rules (`legacy_else` gives both):
- up to 2026-11-30 (CAT_RULE_SINCE): the first node or input its expression names;
- from then on: left out where it was a direct operand of `cat(...)`, that first name elsewhere.

A text in that form is refused by `parse` with the explicit line it needs (`missing_else`
writes the message), since no rule can be guessed for a file. A run folder is different: its records (trials.jsonl) and best.json
hold the params and MACs each stored genotype built when its trial ran, so a stored text can
be made explicit by the rule that built it, and the recorded cost decides where the two rules
disagree (a guarded node read directly by a `cat`). `upgrade` does that and never guesses:
when the rules agree it needs no cost; when they disagree and the cost matches exactly one
reading it takes that one; otherwise it returns None and the text stays as it was, so that
every later use of it is refused with the explicit form, never built differently.
"""
from __future__ import annotations

import dataclasses

from ..errors import NastyError
from .expr import Sym
from .ir import NONE, Apply, Cell, CellCall, Combine, Genotype, Ref


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
    """(index, hint) of the first node of `cell` with `if` but no `else`, or None; `hint(line)`
    is the message: the explicit form to write first (a message may be cut short), given the
    node's line as the message shows it, then why."""
    for i, node in enumerate(cell.nodes):
        if node.when is not None and node.otherwise is None:
            now, before = legacy_else(cell, i)
            why = (f": node {node.name!r} of cell {cell.name} has 'if' without 'else', which names what the node "
                   f"is when its guard is false (an input, an earlier node, or none, which joins leave out)")
            if now == before:
                return i, lambda line: f"write `{line} else {now}`{why}"
            if now == NONE:
                return i, lambda line: (f"write `{line} else none` (left out of the cat: what nasty built since "
                                        f"{CAT_RULE_SINCE}) or `... else {before}` (what it built before then){why}")
            return i, lambda line: (f"write `{line} else {before}` (as nasty built it before {CAT_RULE_SINCE}; since "
                                    f"then it was left out of cat(...) and was {before} elsewhere: for that, give the "
                                    f"cat a node of its own with `else none`){why}")
    return None




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


def explicit(g: Genotype, before_cat_rule: bool = False) -> Genotype:
    """`g` with an `else` on every guarded node that lacks one: what it stood for by the last
    release's rule, or (before_cat_rule) by the rule up to check.CAT_RULE_SINCE. A NastyError
    when the last release's rule has no single else for a node (read both by cat and elsewhere)."""
    cells = []
    for cell in g.cells:
        nodes = list(cell.nodes)
        for i, node in enumerate(nodes):
            if node.when is not None and node.otherwise is None:
                now, before = legacy_else(cell, i)
                alt = before if before_cat_rule else now
                if alt is None:
                    raise NastyError(f"{g.name}: cell {cell.name} node {node.name!r} was left out of cat(...) "
                                     f"but stood for {before} elsewhere: no single else says that")
                nodes[i] = dataclasses.replace(node, otherwise=alt)
        cells.append(dataclasses.replace(cell, nodes=tuple(nodes)))
    from .check import check
    return check(dataclasses.replace(g, cells=tuple(cells)))


def readings(text: str, source: str = "") -> list[Genotype]:
    """The explicit genotypes an old text may mean: one where both rules agree, else the last
    release's (when it has one) and the earlier one's."""
    from .check import check
    from .text import Parser
    g = check(Parser(text, source, legacy=True).parse(), legacy=True)
    differ = any(len(set(legacy_else(cell, i))) > 1 for cell in g.cells for i, n in enumerate(cell.nodes)
                 if n.when is not None and n.otherwise is None)
    out = []
    for before in (False, True) if differ else (False,):
        try:
            e = explicit(g, before)
        except NastyError:
            continue
        if e not in out:
            out.append(e)
    return out


def parse_stored(text: str, source: str = "", cost=None) -> Genotype:
    """Parse a genotype text a run folder stored (best_proxy.nasty...): made explicit by
    `upgrade` where it was written without `else`; otherwise, or where that cannot be known,
    parsed as it is (and so refused with the explicit form). `cost` may be a dict."""
    from .text import parse
    if needs_else(text):
        if isinstance(cost, dict):
            cost = _Cost(cost.get("params"), cost.get("macs"), cost.get("input"), cost.get("classes"))
        text = upgrade(text, cost, source) or text
    return parse(text, source)


@dataclasses.dataclass
class _Cost:
    params: int | None
    macs: int | None
    input: tuple | None
    classes: int | None


def upgrade(text: str, cost=None, source: str = "") -> str | None:
    """The explicit text of a stored genotype `text` written without `else`, building what it
    built when stored; None when that cannot be known (see the module doc). `cost`: what it
    built then (anything with .params, .macs, .input and .classes, as a trial record's
    NetCost), consulted only where the two rules disagree. Remembered: a run folder is read
    more than once."""
    key = (text, source) + ((cost.params, cost.macs, tuple(cost.input or ()), cost.classes) if cost else ())
    if key not in _UPGRADED:
        if len(_UPGRADED) >= 4096:
            _UPGRADED.clear()
        _UPGRADED[key] = _upgrade_now(text, cost, source)
    return _UPGRADED[key]


_UPGRADED: dict = {}


def _upgrade_now(text, cost, source):
    try:
        options = readings(text, source)
        if len(options) > 1:
            if cost is None or cost.input is None:
                return None
            from ..cost import cost as price
            want = (cost.params, cost.macs)
            options = [g for g in options if _totals(price(g, input=tuple(cost.input), classes=cost.classes)) == want]
        from .text import format
        return format(options[0]) if len(options) == 1 else None
    except NastyError:
        return None


def _totals(c):
    return c.params, c.macs
