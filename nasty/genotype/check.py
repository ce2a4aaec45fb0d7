"""Static checks of a genotype: everything that can be known without shapes.

Unknown ops, cells and attributes; wrong arguments; undefined, unused and
cyclic node references; an `if` without `else` (refused with the explicit form the node
needs: legacy.missing_else); a missing head; the limits of limits.py (so a genotype
built in Python, not parsed, is held to them too). Shapes are checked by elaboration.
"""
from __future__ import annotations

import difflib

import networkx as nx

from . import ops as V
from .errors import GenotypeError
from .expr import FUNCTIONS, KEYWORDS, OPERATOR_WORDS, Bin, Call, Neg, Not, Sym, is_literal, scale_problem
from .ir import NONE, Apply, CellCall, Combine, Genotype, Op, Ref
from .legacy import missing_else
from .limits import (MAX_CELL_DEPTH, MAX_CELLS, MAX_EXPR_DEPTH, MAX_INT, MAX_LETS, MAX_NODES, MAX_PARAMS,
                     MAX_VALUE_DEPTH, README, classes_problem, input_problem, over)

BLOCK = "block"   # on body lines: how many stage repeats came before (per-block drop-path rates)
PREV = "prev"     # `cellname(..., prev=...)`: where a two-input cell's h_{i-2} comes from


def _suggest(name, options):
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known(scope) -> str:
    names = sorted(set().union(*scope))
    return ", ".join(names[:20]) + (f", ... ({len(names)} names)" if len(names) > 20 else "") or "none"


def _value_problem(v, scope):
    """What is wrong with a value (an unknown name, a number out of range, too deep), or None.
    `scope` is a tuple of sets of the names it may use (shared, not copied: a genotype may have
    thousands of lets). Walked with a stack: a value made in Python may be nested arbitrarily deep."""
    stack = [(v, 0)]
    while stack:
        x, depth = stack.pop()
        if depth > MAX_VALUE_DEPTH:
            return f"a value nested deeper than the limit of {MAX_VALUE_DEPTH} levels ({README})"
        if isinstance(x, Sym):
            if x.name not in KEYWORDS and not any(x.name in names for names in scope):
                return f"unknown name {x.name!r} in a value (known: {_known(scope)})"
        elif isinstance(x, Bin):
            stack += ((x.a, depth + 1), (x.b, depth + 1))
        elif isinstance(x, (Neg, Not)):
            stack.append((x.a, depth + 1))
        elif isinstance(x, Call):
            stack += ((a, depth + 1) for a in x.args)
        elif isinstance(x, float) and not abs(x) <= 1.7976931348623157e308:
            return f"{x} is not a finite number"
        elif isinstance(x, int) and abs(x) > MAX_INT:
            return f"an integer of {x.bit_length()} bits is beyond 64-bit integers ({README})"
    return None


def _expr_depth_problem(e):
    """A node expression nested deeper than MAX_EXPR_DEPTH (walked with a stack), or None."""
    stack = [(e, 0)]
    while stack:
        x, depth = stack.pop()
        if isinstance(x, (Apply, Combine)):
            if depth >= MAX_EXPR_DEPTH:
                return f"a node expression nested deeper than the limit of {MAX_EXPR_DEPTH} levels ({README})"
            stack += ((x.src, depth + 1),) if isinstance(x, Apply) else ((a, depth + 1) for a in x.args)
    return None


def _refs(e):
    if isinstance(e, Ref):
        yield e.name
    elif isinstance(e, Apply):
        for el in e.chain:     # `two_input_cell(..., prev=NODE) <- src` also reads NODE
            for k, v in (el.kwargs if isinstance(el, CellCall) else ()):
                if k == PREV and isinstance(v, Sym):
                    yield v.name
        yield from _refs(e.src)
    elif isinstance(e, Combine):
        for a in e.args:
            yield from _refs(a)


def _chains(e):
    if isinstance(e, Apply):
        yield e.chain
        yield from _chains(e.src)
    elif isinstance(e, Combine):
        for a in e.args:
            yield from _chains(a)


def check(g: Genotype, legacy: bool = False) -> Genotype:
    """Refuse what cannot be a genotype, naming it; `legacy` lets `if` without `else` through
    (for legacy.py, which makes those nodes explicit)."""
    def fail(where, msg):
        raise GenotypeError(f"{g.name}: {where}: {msg}")

    def check_names(v, where, scope):
        problem = _value_problem(v, scope)
        if problem:
            fail(where, problem)

    for problem in (input_problem(g.input), classes_problem(g.classes)):
        if problem:
            fail("net", problem)
    # counts first: elaborating costs time in proportion to them, at every repeat
    if len(g.lets) > MAX_LETS:
        fail("let", over("the number of lets", len(g.lets), MAX_LETS))
    if len(g.cells) > MAX_CELLS:
        fail(f"cell {g.cells[MAX_CELLS].name}", over("the number of cells", len(g.cells), MAX_CELLS))
    for cell in g.cells:
        if len(cell.nodes) > MAX_NODES:
            fail(f"cell {cell.name}", over("the number of nodes", len(cell.nodes), MAX_NODES))
        if len(cell.params) > MAX_PARAMS:
            fail(f"cell {cell.name}", over("the number of parameters", len(cell.params), MAX_PARAMS))
    header = {"width", "depth", "divisor", "classes"}       # grows by each let, in place
    words = {"same", "valid", "true", "false"}
    for k, v in g.lets:
        if k in header or k == BLOCK or V.is_reserved(k) or k in OPERATOR_WORDS:
            fail(f"let {k}", f"{k!r} is a reserved name; pick another")
        check_names(v, f"let {k}", (header, words))
        header.add(k)
    for k, v in g.scale:
        if k not in ("width", "depth", "divisor"):
            fail("scale", f"unknown key {k!r}; use width=, depth=, divisor=")
        check_names(v, "scale", ())
        if is_literal(v) and scale_problem(k, v):
            fail("scale", scale_problem(k, v))
    for k, _ in g.defaults:
        kind, _, attr = k.partition(".")
        if kind not in V.OPS or attr not in V.OPS[kind]:
            fail("defaults", f"unknown op attribute {k!r}{_suggest(k, [f'{o}.{a}' for o in V.OPS for a in V.OPS[o]])}")
    cells = {}
    for cell in g.cells:
        if cell.name in cells:
            fail(f"cell {cell.name}", "defined twice")
        if V.is_reserved(cell.name) or cell.name in OPERATOR_WORDS:
            fail(f"cell {cell.name}", "this name is an op or keyword; rename the cell")
        cells[cell.name] = cell
        for p in cell.params:
            if p.name in V.INPUT_NAMES:
                fail(f"cell {cell.name}", f"parameter {p.name!r} is an input name; rename it")
            if p.name in OPERATOR_WORDS:
                fail(f"cell {cell.name}", f"parameter {p.name!r} is a keyword ({', '.join(OPERATOR_WORDS)}); rename it")

    def check_chain(chain, where, scope, in_cell):
        for el in chain:
            if isinstance(el, Op):
                spec = V.OPS[el.kind]
                for k, v in el.attrs:
                    if k not in spec:
                        fail(where, f"{el.kind} has no attribute {k!r}; it takes "
                                    f"{', '.join(V.known_attrs(el.kind)) or 'none'}")
                    check_names(v, where, scope)
                for k in spec:
                    if V.required(el.kind, k) and k not in dict(el.attrs) \
                            and f"{el.kind}.{k}" not in dict(g.defaults):
                        what = "a kernel size (e.g. conv3x3 or k=3)" if k in ("kh", "kw") else f"{k}="
                        fail(where, f"{el.kind} needs {what}")
            else:
                cell = cells.get(el.name)
                if cell is None:
                    fail(where, f"unknown op or cell {el.name!r}{V.suggest_op(el.name, cells)}")
                names = [p.name for p in cell.params]
                if len(el.args) > len(names):
                    fail(where, f"cell {cell.name} takes {len(names)} argument(s), got {len(el.args)}")
                for k, v in el.kwargs:
                    if k == PREV and cell.inputs == 2:
                        if in_cell and not isinstance(v, Sym):
                            fail(where, f"prev= of {cell.name} inside a cell names an input or a node, "
                                        f"got {v!r}")
                    elif k not in names:
                        fail(where, f"cell {cell.name} has no parameter {k!r}{_suggest(k, names)}")
                given = set(names[:len(el.args)]) | {k for k, _ in el.kwargs}
                for k in given & {k for k, _ in el.kwargs} & set(names[:len(el.args)]):
                    fail(where, f"argument {k!r} of cell {cell.name} given twice")
                for v in list(el.args) + [v for k, v in el.kwargs if not (in_cell and k == PREV)]:
                    check_names(v, where, scope)
                if in_cell and cell.inputs == 2 and PREV not in dict(el.kwargs):
                    fail(where, f"two-input cell {cell.name} used inside a cell needs prev=NODE "
                                f"(the input or node that stands for its h_{{i-2}})")


    # cell bodies
    calls = nx.DiGraph()
    for cell in g.cells:
        scope = (header, {p.name for p in cell.params} | {"cin"} | words)
        defined = ["in"] + (["prev"] if cell.inputs == 2 else [])
        order = {n.name: i for i, n in enumerate(cell.nodes)}
        used = set()
        seen = set(defined)
        for p in cell.params:
            if p.default is not None:
                check_names(p.default, f"cell {cell.name}", scope)
        for node in cell.nodes:
            where = f"cell {cell.name} node {node.name!r}"
            if node.name in seen:
                fail(where, "defined twice" if node.name not in ("in", "prev") else "an input name; rename the node")
            if V.split_op_name(node.name) is not None or node.name in V.COMBINERS + ("if", NONE) + OPERATOR_WORDS:
                fail(where, "this name is an op or keyword; rename the node")
            problem = _expr_depth_problem(node.expr)
            if problem:
                fail(where, problem)
            for r in _refs(node.expr):
                if r == node.name:
                    fail(where, "cycle: the node uses itself")
                if r not in seen:
                    if r in order:
                        graph = nx.DiGraph((n.name, x) for n in cell.nodes for x in _refs(n.expr))
                        try:
                            cyc = nx.find_cycle(graph, node.name)
                            fail(where, "cycle: " + " -> ".join([a for a, _ in cyc] + [cyc[0][0]]))
                        except nx.NetworkXNoCycle:
                            fail(where, f"uses {r!r} before it is defined; move {r!r} above it")
                    fail(where, f"undefined input {r!r}{V.suggest_input(r, list(seen), cell.inputs)}")
                used.add(r)
            if node.when is not None:
                check_names(node.when, where + " (if)", scope)
            if node.otherwise is not None:
                alt = node.otherwise
                if node.when is None:
                    fail(where, f"'else {alt}' without 'if'; write `... if CONDITION else {alt}`")
                if alt == node.name:
                    fail(where, f"'else {alt}' names the node itself; name an input, an earlier node, or none")
                if alt == NONE and node.name == "out":
                    fail(where, "'else none' on the cell's output: a cell gives a tensor, so out's else names "
                                "an input or an earlier node")
                if alt != NONE and alt not in seen:
                    if alt in order:
                        fail(where, f"'else {alt}' names a later node; move {alt!r} above it")
                    fail(where, f"'else {alt}': undefined input {alt!r}{V.suggest_input(alt, list(seen), cell.inputs)}"
                                f"; name an input, an earlier node, or none")
                used.add(alt)
            elif node.when is not None and not legacy:
                found = missing_else(cell)
                if found and cell.nodes[found[0]] is node:
                    from .text import format_node
                    fail(where, found[1](f"{node.name} = {format_node(node)}"))
            for ch in _chains(node.expr):
                check_chain(ch, where, scope, in_cell=True)
                for el in ch:
                    if isinstance(el, CellCall):
                        calls.add_edge(cell.name, el.name)
            seen.add(node.name)
        if "out" not in order:
            fail(f"cell {cell.name}", "has no node named 'out' (the cell's output)")
        for name in defined + [n.name for n in cell.nodes if n.name != "out"]:
            if name not in used:
                fail(f"cell {cell.name} node {name!r}" if name not in defined else f"cell {cell.name}",
                     f"{'input' if name in defined else 'node'} {name!r} is never used")
    try:
        cyc = nx.find_cycle(calls)
        fail(f"cell {cyc[0][0]}", "cells call each other in a cycle: "
             + " -> ".join([a for a, _ in cyc] + [cyc[0][0]]))
    except nx.NetworkXNoCycle:
        pass
    nest = nx.dag_longest_path(calls) if calls else []
    if len(nest) > MAX_CELL_DEPTH:
        fail(f"cell {nest[0]}", f"cells call cells {len(nest)} deep ({' -> '.join(nest[:3])} -> ... -> "
                                f"{nest[-1]}), over the limit of {MAX_CELL_DEPTH} ({README})")

    # body
    if not g.layers:
        fail("body", "no stem, stage or head lines")
    for i, layer in enumerate(g.layers):
        where = f"{layer.section} line {i + 1}"
        check_chain(layer.chain, where, (header, {BLOCK, "cin"}), in_cell=False)
        check_names(layer.repeat, where, (header,))
        params = {p.name for el in layer.chain if isinstance(el, CellCall) and el.name in cells
                  for p in cells[el.name].params}
        if any(isinstance(el, CellCall) and el.name in cells and cells[el.name].inputs == 2
               for el in layer.chain):
            params.add(PREV)
        for k, v in layer.rest:
            if k not in params:
                fail(where, f"rest({k}=...) names no parameter of the cells on this line")
            check_names(v, where, (header, {BLOCK}))
    heads = [i for i, layer in enumerate(g.layers) if layer.section == "head"]
    for i in range(heads[0] + 1 if heads else len(g.layers), len(g.layers)):
        if g.layers[i].section != "head":
            fail(f"{g.layers[i].section} line {i + 1}", "comes after the head; the head lines are the last ones")
    return g


def head_problem(g) -> str | None:
    """What a genotype without a head line (a backbone, or a file cut short) lacks, or None."""
    if g.layers and not any(layer.section == "head" for layer in g.layers):
        last = g.layers[-1]
        return (f"{g.name}: no head line after {last.section} line {len(g.layers)}: the network has no "
                "classifier (was the file cut short?); end it with one such as `head gap flatten fc c=classes`")
    return None


def require_head(g) -> None:
    """A network that is trained needs its class scores: a genotype without a head line (a
    backbone, or a file cut short) builds and costs, but cannot be trained. Say so in one line."""
    problem = head_problem(g)
    if problem:
        raise GenotypeError(problem.replace("has no classifier", "has no classifier to train"))


def warn_headless(g) -> None:
    """`nasty show` and `nasty build` cost and build a backbone, but say in one line that it has no
    head: a file cut short before its head would otherwise pass for a whole network."""
    problem = head_problem(g)
    if problem:
        from ..errors import warn
        warn(problem.replace("; end it", "; a backbone is fine, but to classify end it"))


assert "W" in FUNCTIONS  # the value functions check.py lets through
