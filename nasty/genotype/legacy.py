"""Genotype texts written before `if` needed `else`: the ones a run folder stores, and files.

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

A file has no record of what it built: `rewrite` (`nasty upgrade FILE`) writes the else of every
guarded line at once, the past rules' where they agree and the one the user names where they
differ, editing only those lines, and checks that the new text builds what that rule built.
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


# ================================================================ files: `nasty upgrade FILE`
# A file carries no record of what it built, so where the two past rules differ the user says
# which one built their network (`--rule`): "current" is the rule since CAT_RULE_SINCE, "before"
# the one up to then. Only the guarded lines are edited, each by inserting ` else NAME` after its
# condition: comments, spacing, line endings and every other line stay byte for byte.
RULES = ("current", "before")


@dataclasses.dataclass
class Rewrite:
    """A genotype file's text with an else on every guarded line (`rewrite`, `rewrite_json`)."""
    text: str                   # the new text (the old one where nothing needed an else)
    changes: list               # (line number, the line before, the line after), in line order
    genotype: Genotype | None   # what the new text builds (None: nothing needed an else)
    params: int | None = None   # its params and MACs at its own input: what the past rule built
    macs: int | None = None
    rule: str | None = None     # the rule taken where the two past rules differ (None: nowhere)
    reindented: bool = False    # JSON whose strings could not be edited in place: written anew


def _elses(g: Genotype, rule, where, source):
    """({(cell index, node index): else} for each guarded node of `g` without an else, whether
    the two past rules differed anywhere). Where they agree, their else; where they differ, the
    one `rule` names; without a rule a NastyError lists those lines (`where(ci, ni)`) and both
    choices, since nothing in a file says which rule built it."""
    if rule not in (None,) + RULES:
        raise ValueError(f"rule must be one of {RULES} or None, got {rule!r}")
    out, differ, unsayable, differed = {}, [], [], False
    for ci, cell in enumerate(g.cells):
        for ni, node in enumerate(cell.nodes):
            if node.when is None or node.otherwise is not None:
                continue
            now, before = legacy_else(cell, ni)
            differed |= now != before
            if now == before:
                out[ci, ni] = now
            elif rule == "before" or (rule == "current" and now is not None):
                out[ci, ni] = before if rule == "before" else now
            elif rule == "current":
                unsayable.append(f"{where(ci, ni)} ({node.name}: left out of its cat but {before} elsewhere)")
            elif now == NONE:
                differ.append(f"{where(ci, ni)} ({node.name}): `else none` (--rule current: left out of the cat, "
                              f"as nasty built it since {CAT_RULE_SINCE}) or `else {before}` (--rule before)")
            else:
                differ.append(f"{where(ci, ni)} ({node.name}): `else {before}` (--rule before; since "
                              f"{CAT_RULE_SINCE} it was left out of its cat but {before} elsewhere, which no "
                              f"single else says)")
    prefix = f"{source}: " if source else ""
    if differ:
        raise NastyError(f"{prefix}{len(differ)} guarded line{'s' if len(differ) > 1 else ''} read directly by a "
                         f"cat(...), where the two past rules built different networks and nothing in the file "
                         f"says which built yours: {'; '.join(differ)}; choose with --rule current or --rule before")
    if unsayable:
        raise NastyError(f"{prefix}by the rule since {CAT_RULE_SINCE}, {'; '.join(unsayable)}: no single else says "
                         f"that; give the cat a node of its own (`NODE = ... if COND else none`) by hand, or "
                         f"take --rule before")
    return out, differed


def _with_else(line: str, alt: str, number: int = 1, source: str = "") -> str:
    """`line` (a node's line, with its line ending) with ` else ALT` after its last token,
    before any spaces, comment and line ending."""
    from .lexer import tokenize_line
    body = line.splitlines()[0]
    last = tokenize_line(body, number, source)[-2]
    cut = last.col - 1 + len(last.text)
    return body[:cut] + f" else {alt}" + body[cut:] + line[len(body):]


def rewrite(text: str, source: str = "", rule: str | None = None) -> Rewrite:
    """A genotype text written before `else` with the else of each guarded line written in, each
    the one a past rule built (`rule` where they differ: see RULES), checked: the new text parses
    and is, node for node, the genotype that rule built, and prices the same."""
    from .check import check
    from .text import Parser, parse
    p = Parser(text, source, legacy=True)
    g = check(p.parse(), legacy=True)
    elses, differed = _elses(g, rule, lambda ci, ni: f"line {p.node_lines[ci][ni]}", source)
    if not elses:
        return Rewrite(text, [], None)
    lines = text.splitlines(keepends=True)
    changes = []
    for (ci, ni), alt in elses.items():
        n = p.node_lines[ci][ni]
        old, lines[n - 1] = lines[n - 1], _with_else(lines[n - 1], alt, n, source)
        changes.append((n, old, lines[n - 1]))
    rw = Rewrite("".join(lines), sorted(changes), None, rule=rule if differed else None)
    return _verified(rw, g, rule, lambda t: parse(t, source), source)


def rewrite_json(text: str, source: str = "", rule: str | None = None) -> Rewrite:
    """`rewrite` for the JSON form: each guarded node's expression string gets its else, edited
    in place in the document's text (or, where a string cannot be found as json writes it, the
    document is written anew, indented by 2: `reindented`)."""
    import copy
    import json

    from .jsonform import from_json
    g = from_json(text, source, legacy=True)
    d = json.loads(text)
    elses, differed = _elses(g, rule, lambda ci, ni: f"cells[{ci}].nodes[{ni}]", source)
    if not elses:
        return Rewrite(text, [], None)
    new_d, edits = copy.deepcopy(d), []
    for (ci, ni), alt in elses.items():
        old = d["cells"][ci]["nodes"][ni][1]
        new_d["cells"][ci]["nodes"][ni][1] = new = _with_else(old, alt, 1, source)
        edits.append((("cells", ci, "nodes", ni, 1), old, new))
    new_text, changes = _edit_json(text, d, edits)
    reindented = new_text is None or json.loads(new_text) != new_d
    if reindented:
        new_text = json.dumps(new_d, indent=2) + "\n"
        changes = [(None, json.dumps(old), json.dumps(new)) for _, old, new in edits]
    rw = Rewrite(new_text, changes, None, rule=rule if differed else None, reindented=reindented)
    return _verified(rw, g, rule, lambda t: from_json(t, source), source)


def _json_strings(x, path=()):
    """(path, string) of every string of a JSON value, keys included, in document order."""
    if isinstance(x, str):
        yield path, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield path + (("key", k),), k
            yield from _json_strings(v, path + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _json_strings(v, path + (i,))


def _edit_json(text, d, edits):
    """`text` with each edit's string replaced where it stands ((new text, changes), or (None, None)
    where one cannot be found as json.dumps writes it; the caller checks the result reads back)."""
    import json
    strings = list(_json_strings(d))
    index = {path: i for i, (path, _) in enumerate(strings)}
    spans = []
    for path, old, new in edits:
        i = index[path]
        k = sum(s == old for _, s in strings[:i])        # the k-th string equal to it, in document order
        enc, pos = json.dumps(old), -1
        for _ in range(k + 1):
            pos = text.find(enc, pos + 1)
            if pos < 0:
                return None, None
        spans.append((pos, enc, json.dumps(new)))
    out = text
    for pos, enc, rep in sorted(spans, reverse=True):
        out = out[:pos] + rep + out[pos + len(enc):]
    old_lines, new_lines = text.splitlines(keepends=True), out.splitlines(keepends=True)
    numbers = sorted({text.count("\n", 0, pos) + 1 for pos, _, _ in spans})
    if len(old_lines) != len(new_lines):
        return None, None
    return out, [(n, old_lines[n - 1], new_lines[n - 1]) for n in numbers]


def _verified(rw: Rewrite, g: Genotype, rule, reparse, source) -> Rewrite:
    """`rw` once its text is checked: it parses (as every file must now), it is the genotype the
    past rule built (`explicit`), and that prices the same (params and MACs at its own input)."""
    from ..cost import cost as price
    prefix = f"{source}: " if source else ""
    want = explicit(g, rule == "before")
    got = reparse(rw.text)
    if got != want:
        raise NastyError(f"{prefix}the upgraded text does not read back as the genotype the past rule built "
                         f"(a bug in nasty upgrade: please report it); nothing was written")
    try:
        a, b = price(want), price(got)
    except NastyError as e:
        raise NastyError(f"{prefix}with every else written it parses but does not build: {e}; fix that line "
                         f"(an else may be written by hand too) and upgrade again") from None
    if (a.params, a.macs) != (b.params, b.macs):
        raise NastyError(f"{prefix}the upgraded text prices {b.params:,} params, {b.macs:,} MACs, not the "
                         f"{a.params:,}, {a.macs:,} the past rule built (a bug in nasty upgrade: please report it)")
    rw.genotype, rw.params, rw.macs = got, b.params, b.macs
    return rw
