"""Pictures of a genotype's cells, in the style of the NASNet and DARTS papers' figures.

A cell of the genotype IR is a small DAG (nasty/genotype/ir.py), so any genotype can be
drawn, from the zoo or from a search. Inputs (`in` = h[i-1], `prev` = h[i-2]) sit on the
left, the output on the right; each op is a box labelled as the papers label them
("sep 5x5", "max 3x3 /2", "identity"), adds and products are circles, a concat a box.

Layout is ours, computed with no graphviz: layers by longest path from the inputs, op
boxes then pulled next to the node they feed (as the papers draw an op just below its
add), long edges routed through dummy points, crossings reduced by barycenter sweeps, and
rows placed by an isotonic fit that keeps the order and spacing. matplotlib draws it.

Which cells a genotype's pictures show (`cells_to_draw`): the cells its stages use, seen
through wrappers (a cell whose output is one call of another cell, with preprocessing of
its inputs, like the zoo's `nasnet_normal` around `nasnet_a_normal`), the cells those
call, and the stem's cells that branch. A cell that is one chain of ops called by another
cell (`branch`: relu sep bn relu sep bn) is an op of its caller, drawn as a box there.
`--cell` draws any cell by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import NastyError
from .genotype import Genotype
from .genotype.errors import GenotypeError
from .genotype.expr import evaluate, format_value
from .genotype.ir import Apply, Cell, CellCall, Combine, Op, Ref
from .genotype.ops import INPUT_NAMES

FORMATS = ("png", "svg", "pdf")


class DrawError(NastyError):
    """A cell cannot be drawn as asked (an unknown cell or format)."""


# ------------------------------------------------------------------ which cells

def cells_to_draw(genotype: Genotype) -> list[str]:
    """The distinct cells a picture of ``genotype`` shows: the body's first (in the order
    its stages use them), then the stem's."""
    order: list[str] = []
    seen: set[tuple[str, str]] = set()

    def visit(name: str, via: str) -> None:
        """``via``: "stage", "stem" or "head" for a layer's call, "cell" for a cell's."""
        cell = genotype.cell(name)
        if cell is None or (name, via) in seen:
            return
        seen.add((name, via))
        inner = _wrapped(genotype, cell)
        if inner is not None:
            visit(inner, "stage" if via == "stage" else "cell")
            return
        # a stage's cell is always drawn; a stem's only when it branches (a plain stem is
        # a few convs); inside a cell, a cell that is one chain of ops is drawn as a box
        draw = {"stage": True, "cell": not _is_op(cell)}.get(via, _branches(cell))
        if draw and name not in order:
            order.append(name)
        for call in _calls(cell):
            visit(call.name, "cell")

    layers = sorted(genotype.layers, key=lambda layer: layer.section != "stage")
    for layer in layers:
        for element in layer.chain:
            if isinstance(element, CellCall):
                visit(element.name, layer.section)
    return order


def _is_op(cell: Cell) -> bool:
    """One node `out = ops <- in`: the cell is an op of its callers (NASNet's `branch`)."""
    if len(cell.nodes) != 1 or cell.nodes[0].when is not None:
        return False
    e = cell.nodes[0].expr
    return (isinstance(e, Apply) and e.src == Ref("in")
            and all(isinstance(x, Op) for x in e.chain))


def _wrapped(genotype: Genotype, cell: Cell) -> str | None:
    """The cell that ``cell`` wraps: its output is one call of a cell that is not an op."""
    out = next((n for n in cell.nodes if n.name == "out"), None)
    if out is None or not isinstance(out.expr, Apply) or len(out.expr.chain) != 1:
        return None
    call = out.expr.chain[0]
    if not isinstance(call, CellCall) or call.name == cell.name:
        return None
    inner = genotype.cell(call.name)
    return call.name if inner is not None and not _is_op(inner) else None


def _branches(cell: Cell) -> bool:
    """Whether the cell is more than one straight chain: it combines, or reads two inputs."""
    return cell.inputs > 1 or any(_has_combine(n.expr) for n in cell.nodes)


def _has_combine(e) -> bool:
    if isinstance(e, Combine):
        return True
    return isinstance(e, Apply) and _has_combine(e.src)


def _calls(cell: Cell) -> list[CellCall]:
    found = []

    def walk(e):
        if isinstance(e, Apply):
            found.extend(x for x in e.chain if isinstance(x, CellCall))
            walk(e.src)
        elif isinstance(e, Combine):
            for a in e.args:
                walk(a)

    for n in cell.nodes:
        walk(n.expr)
    return found


# ------------------------------------------------------------------ the cell as a graph

@dataclass
class _Vertex:
    kind: str              # input, op, call, combine, output, dummy
    label: str
    family: str = ""       # colour key
    tag: str = ""          # the node's name, shown small above it
    note: str = ""         # a guard, shown small below it
    dashed: bool = False   # exists only when a guard holds
    layer: int = 0
    y: float = 0.0
    w: float = 0.0         # size in inches (h includes the small labels), set before layout
    h: float = 0.0
    x: float = 0.0
    cy: float = 0.0        # centre of the shape itself


# Ops that start a box; the others (bn, activations, dropout...) belong to the box before
# (or after) them, as the papers leave BN and ReLU out of their figures.
_MAIN = frozenset({"conv", "dwconv", "sep", "maxpool", "avgpool", "gap", "gmp", "apool", "fc",
                   "shortcut", "identity", "scale", "slice", "shuffle", "pad"})
_KERNEL_NAMES = {"conv": "conv", "sep": "sep", "dwconv": "dw", "maxpool": "max", "avgpool": "avg"}
_FAMILY = {"conv": "conv", "sep": "conv", "dwconv": "conv", "fc": "conv", "shortcut": "conv",
           "maxpool": "pool", "avgpool": "pool", "gap": "pool", "gmp": "pool", "apool": "pool",
           "identity": "identity"}


class _CellGraph:
    """Vertices and edges of one cell, built from its nodes."""

    def __init__(self, genotype: Genotype, cell: Cell):
        self.g, self.cell = genotype, cell
        self.env = _environment(genotype, exclude={p.name for p in cell.params})
        self.vertices: list[_Vertex] = []
        self.edges: list[tuple[int, int]] = []
        self.names: dict[str, int] = {}
        two = cell.inputs > 1
        # prev first: h[i-2] above h[i-1], as in the DARTS figures
        for name in (("prev", "in") if two else ("in",)):
            label = {"in": "h$_{i-1}$", "prev": "h$_{i-2}$"}[name] if two else "in"
            self.names[name] = self._vertex("input", label, "input", tag=name if two else "")
        for node in cell.nodes:
            first = len(self.vertices)
            top = self._expr(node.expr)
            guard = self._guard(node.when, node.otherwise)
            if top >= first:
                if guard:
                    for v in self.vertices[first:]:
                        v.dashed = True
                    self.vertices[top].note = guard
                if node.name != "out":
                    self.vertices[top].tag = node.name
            self.names[node.name] = top
        out = self._vertex("output", "h$_{i}$" if two else "out", "output", tag="out" if two else "")
        self.edges.append((self.names["out"], out))

    def _vertex(self, kind, label, family, **kw) -> int:
        self.vertices.append(_Vertex(kind, label, family, **kw))
        return len(self.vertices) - 1

    def _guard(self, when, otherwise=None) -> str:
        if when is None:
            return ""
        cond = f"if {format_value(when)}" + (f" else {otherwise}" if otherwise else "")
        try:
            on = evaluate(when, self.env)
        except GenotypeError:  # depends on the cell's parameters: holds in some uses
            return cond
        return "" if on else f"{cond} (off here)"

    def _ref(self, name: str) -> int:
        if name not in self.names:  # `prev` read by a one-input cell: the checker allows it
            self.names[name] = self._vertex("input", name, "input")
        return self.names[name]

    def _expr(self, e) -> int:
        if isinstance(e, Ref):
            return self._ref(e.name)
        if isinstance(e, Apply):
            v = self._expr(e.src)
            ops: list[Op] = []
            for element in e.chain + (None,):
                if isinstance(element, Op):
                    ops.append(element)
                    continue
                for label, family in (_segments(ops, self.env) if ops else []):
                    v = self._chain_to(v, label, family)
                ops = []
                if element is not None:
                    v = self._call(element, v)
            return v
        args = []
        for a in e.args:
            v = self._expr(a)
            if isinstance(a, Ref) and e.kind in ("add", "mul") and self.cell.inputs > 1:
                # in a NAS cell a state added as it is was the op `identity`, which the
                # NASNet and DARTS figures draw as a box; a residual skip is a plain arrow
                v = self._chain_to(v, "identity", "identity")
            args.append(v)
        symbol = {"add": "+", "sub": "−", "mul": "×", "cat": "concat", "upsample": "resize"}.get(e.kind, e.kind)
        c = self._vertex("combine", symbol, e.kind)
        self.edges += [(v, c) for v in args]
        return c

    def _chain_to(self, v: int, label: str, family: str) -> int:
        w = self._vertex("op", label, family)
        self.edges.append((v, w))
        return w

    def _call(self, call: CellCall, v: int) -> int:
        callee = self.g.cell(call.name)
        if callee is not None and _is_op(callee):
            env = _bind(callee, call, self.env)
            for label, family in _op_cell_segments(callee.nodes[0].expr.chain, env):
                v = self._chain_to(v, label, family)
            return v
        # a cell drawn on its own: one box, fed by its inputs (`prev=` binds the second)
        args = [format_value(a) for a in call.args]
        args += [f"{k}={format_value(x)}" for k, x in call.kwargs if k not in INPUT_NAMES]
        w = self._chain_to(v, f"{call.name}({', '.join(args)})" if args else call.name, "call")
        for k, x in call.kwargs:
            if k in INPUT_NAMES and hasattr(x, "name"):
                self.edges.append((self._ref(x.name), w))
        return w


def _environment(genotype: Genotype, exclude=()) -> dict:
    """The genotype's constants (scale, then `let` in order) as numbers, where they are."""
    env = {k: v for k, v in genotype.scale if isinstance(v, (int, float))}
    for k, v in genotype.lets:
        if k not in exclude:
            try:
                env[k] = evaluate(v, env)
            except GenotypeError:
                pass
    return env


def _bind(callee: Cell, call: CellCall, env: dict) -> dict:
    """The callee's parameters as numbers where the call's arguments evaluate to numbers."""
    inner = dict(env)
    values = dict(zip((p.name for p in callee.params), call.args))
    values.update((k, v) for k, v in call.kwargs if k not in INPUT_NAMES)
    for p in callee.params:
        v = values.get(p.name, p.default)
        inner.pop(p.name, None)
        if v is not None:
            try:
                inner[p.name] = evaluate(v, env)
            except GenotypeError:
                pass
    return inner


def _text(v, env) -> str:
    try:
        x = evaluate(v, env)
    except GenotypeError:
        return format_value(v)
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() else f"{x:.4g}"
    return format_value(x)


def _segments(ops, env) -> list[tuple[str, str]]:
    """(label, colour family) per box of a chain of ops: one box per main op."""
    boxes = [(_op_label(op, env), _FAMILY.get(op.kind, "other")) for op in ops if op.kind in _MAIN]
    if boxes:
        return boxes
    # only bn / activations / dropout: one box naming them
    return [(" ".join(_minor_label(op, env) for op in ops), "other")]


def _op_cell_segments(ops, env) -> list[tuple[str, str]]:
    """A call of a cell that is one NAS op: NASNet's and DARTS's `sep KxK` is relu-sep-bn
    twice, so a pair of equal separable convs is one box, as the papers draw it."""
    boxes = _segments(ops, env)
    mains = [op for op in ops if op.kind in _MAIN]
    if (len(mains) == 2 and all(op.kind == "sep" for op in mains)
            and _kernel(mains[0], env) == _kernel(mains[1], env)
            and _text(mains[0].get("d", 1), env) == _text(mains[1].get("d", 1), env)):
        return boxes[:1]
    return boxes


def _kernel(op: Op, env) -> str:
    return f"{_text(op.get('kh'), env)}x{_text(op.get('kw'), env)}"


def _op_label(op: Op, env) -> str:
    kind = op.kind
    if kind in _KERNEL_NAMES:
        kernel = _kernel(op, env)
        stride = op.get("s")
        if stride is None and kind in ("maxpool", "avgpool"):
            stride = op.get("kh")  # a pool's stride defaults to its kernel
        label = f"{_KERNEL_NAMES[kind]} {kernel}"
        d = _text(op.get("d", 1), env)
        if d != "1":
            label = f"dil {label}" if d == "2" else f"{label} d{d}"
        g = _text(op.get("g", 1), env) if kind == "conv" else "1"
        if g != "1":
            label += f" g{g}"
        s = _text(stride, env) if stride is not None else "1"
        return label + (f" /{s}" if s != "1" else "")
    if kind == "pad":
        sides = [_text(op.get(k, 0), env) for k in ("l", "r", "t", "b")]
        neg = any(s.startswith("-") for s in sides)
        pos = any(s != "0" and not s.startswith("-") for s in sides)
        return "shift" if neg and pos else "crop" if neg else "pad"
    if kind == "shortcut":
        s = _text(op.get("s", 1), env)
        return "shortcut" + (f" /{s}" if s != "1" else "")
    if kind == "scale":
        return f"× {_text(op.get('v'), env)}"
    if kind == "shuffle":
        return f"shuffle g{_text(op.get('g'), env)}"
    if kind == "slice":
        end = op.get("end")
        return f"channels {_text(op.get('start', 0), env)}:{_text(end, env) if end is not None else ''}"
    return {"gap": "global avg", "gmp": "global max", "apool": "adaptive avg", "fc": "fc",
            "identity": "identity"}.get(kind, kind)


def _minor_label(op: Op, env) -> str:
    if op.kind == "act":
        return _text(op.get("fn"), env)
    return {"droppath": "drop path"}.get(op.kind, op.kind)


# ------------------------------------------------------------------ layout

_FONT = 10.0           # points
_GAP_X = 0.45          # inches between layers
_GAP_Y = 0.16          # inches between rows
_BOX_H = 0.36
_CIRCLE = 0.30
_DUMMY_H = 0.06


def _layout(graph: _CellGraph) -> tuple[list[_Vertex], list[list[int]]]:
    """Layers, dummy points for long edges, row order and y positions.

    Returns every vertex (dummies appended) and the routes: per edge the vertex indices
    it passes through."""
    import networkx as nx
    V = graph.vertices
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(V)))
    dag.add_edges_from(graph.edges)
    order = list(nx.topological_sort(dag))
    for v in order:  # longest path from the inputs
        preds = list(dag.predecessors(v))
        V[v].layer = 0 if V[v].kind == "input" or not preds else 1 + max(V[p].layer for p in preds)
    last = max(V[v].layer for v in order)
    for v in order:
        if V[v].kind == "output":
            V[v].layer = last
    for v in reversed(order):  # ops hug the node they feed, as the papers draw them
        succs = list(dag.successors(v))
        if V[v].kind in ("op", "call") and succs:
            V[v].layer = min(V[s].layer for s in succs) - 1

    routes = []
    for a, b in graph.edges:
        route = [a]
        for layer in range(V[a].layer + 1, V[b].layer):
            V.append(_Vertex("dummy", "", layer=layer, h=_DUMMY_H))
            route.append(len(V) - 1)
        routes.append(route + [b])

    n_layers = max(v.layer for v in V) + 1
    layers: list[list[int]] = [[] for _ in range(n_layers)]
    for i, v in enumerate(V):
        layers[v.layer].append(i)
    preds: dict[int, list[int]] = {i: [] for i in range(len(V))}
    succs: dict[int, list[int]] = {i: [] for i in range(len(V))}
    for route in routes:
        for a, b in zip(route, route[1:]):
            succs[a].append(b)
            preds[b].append(a)
    layers = _reduce_crossings(layers, preds, succs)
    _place_rows(V, layers, preds, succs)
    return V, routes


def _reduce_crossings(layers, preds, succs):
    """Barycenter sweeps down and up the layers; keeps the order with fewest crossings."""
    def position(ls):
        return {v: k for layer in ls for k, v in enumerate(layer)}

    def crossings(ls):
        pos, total = position(ls), 0
        for layer in ls[:-1]:
            edges = [(pos[a], pos[b]) for a in layer for b in succs[a]]
            total += sum(1 for i, (a1, b1) in enumerate(edges) for a2, b2 in edges[i + 1:]
                         if (a1 - a2) * (b1 - b2) < 0)
        return total

    best, best_count = [list(layer) for layer in layers], crossings(layers)
    current = [list(layer) for layer in layers]
    for sweep in range(8):
        pos = position(current)
        # the inputs (layer 0) keep their order: h[i-2] above h[i-1]
        rng = range(1, len(current)) if sweep % 2 == 0 else range(len(current) - 2, 0, -1)
        for i in rng:
            nbrs = preds if sweep % 2 == 0 else succs
            keyed = []
            for k, v in enumerate(current[i]):
                ns = [pos[n] for n in nbrs[v]]
                keyed.append((sum(ns) / len(ns) if ns else k, k, v))
            current[i] = [v for _, _, v in sorted(keyed)]
            pos.update({v: k for k, v in enumerate(current[i])})
        count = crossings(current)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
    return best


def _place_rows(V, layers, preds, succs) -> None:
    """y of every vertex: start stacked, then pull each toward its neighbours' mean while
    keeping the order and the spacing (an isotonic fit per layer)."""
    for layer in layers:
        _fit(V, layer, [0.0] * len(layer))
    for it in range(12):
        sweep = layers if it % 2 == 0 else layers[::-1]
        for layer in sweep:
            want = []
            for v in layer:
                ns = preds[v] + succs[v]
                want.append(sum(V[n].y for n in ns) / len(ns) if ns else V[v].y)
            _fit(V, layer, want)


def _fit(V, layer, want) -> None:
    """Closest y to ``want`` (least squares) with each vertex below the one before by its spacing."""
    offsets = [0.0]
    for a, b in zip(layer, layer[1:]):
        offsets.append(offsets[-1] + (V[a].h + V[b].h) / 2 + _GAP_Y)
    z = [w - o for w, o in zip(want, offsets)]
    # pool adjacent violators: z must be non-decreasing
    blocks: list[list[float]] = []  # [sum, count]
    for value in z:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    fitted = [s / c for s, c in blocks for _ in range(c)]
    for v, f, o in zip(layer, fitted, offsets):
        V[v].y = f + o


# ------------------------------------------------------------------ drawing

_STYLE = {  # family: (fill, edge)
    "input": ("#cfe2f3", "#3d6e99"), "output": ("#d9ead3", "#4f7f3a"),
    "conv": ("#fce5cd", "#b45f06"), "pool": ("#e4dcf4", "#674ea7"),
    "identity": ("#eeeeee", "#666666"), "other": ("#eeeeee", "#666666"),
    "call": ("#fff2cc", "#a07800"), "add": ("#ffffff", "#333333"), "mul": ("#ffffff", "#333333"),
    "cat": ("#f4cccc", "#990000"),
}


def _text_width(s: str, size: float) -> float:
    """Width of ``s`` in inches at ``size`` points, as matplotlib will render it."""
    from matplotlib.textpath import TextPath
    if not s:
        return 0.0
    return TextPath((0, 0), s, size=size).get_extents().width / 72.0


def _sizes(V) -> None:
    for v in V:
        if _round(v):
            v.w = v.h = _CIRCLE
        else:
            v.w, v.h = max(0.5, _text_width(v.label, _FONT) + 0.24), _BOX_H
        if v.tag or v.note:  # room for the small labels above and below
            v.h += 0.14 * (bool(v.tag) + bool(v.note))
            v.w = max(v.w, _text_width(v.note, _FONT - 2) + 0.1)


def draw_cell(genotype: Genotype, name: str):
    """A matplotlib Figure of cell ``name`` of ``genotype``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MPath

    cell = genotype.cell(name)
    if cell is None:
        raise DrawError(f"{genotype.name} has no cell {name!r}; its cells: "
                        f"{', '.join(c.name for c in genotype.cells) or 'none'}")
    graph = _CellGraph(genotype, cell)
    _sizes(graph.vertices)
    V, routes = _layout(graph)

    n_layers = max(v.layer for v in V) + 1
    widths = [max((v.w for v in V if v.layer == i), default=0.0) for i in range(n_layers)]
    xs, x = [], 0.0
    for w in widths:
        xs.append(x + w / 2)
        x += w + _GAP_X
    for v in V:
        v.x = xs[v.layer]
    for v in V:  # the shape sits below its tag and above its note
        v.cy = v.y + (0.07 if v.tag else 0.0) - (0.07 if v.note else 0.0)

    top = min(v.y - v.h / 2 for v in V)
    bottom = max(v.y + v.h / 2 for v in V)
    params = ", ".join(p.name for p in cell.params)
    title = f"{genotype.name}: cell {cell.name}" + (f"({params})" if params else "")
    title_h = 0.45
    margin = 0.2
    width_in = max(x - _GAP_X + 2 * margin, _text_width(title, _FONT + 1) * 1.1 + 0.3)
    height_in = bottom - top + 2 * margin + title_h
    fig = Figure(figsize=(width_in, height_in))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-margin, width_in - margin)
    ax.set_ylim(bottom + margin, top - margin - title_h)  # y grows downwards
    ax.axis("off")
    ax.text(-margin + 0.12, top - margin - title_h + 0.12, title,
            fontsize=_FONT + 1, fontweight="bold", va="top", ha="left")

    for v in V:
        if v.kind == "dummy":
            continue
        fill, edge = _STYLE.get(v.family, _STYLE["other"])
        style = dict(facecolor=fill, edgecolor=edge, linewidth=1.2, linestyle="--" if v.dashed else "-",
                     zorder=3)
        if _round(v):
            patch = Circle((v.x, v.cy), _CIRCLE / 2, **style)
            ax.text(v.x, v.cy, v.label, ha="center", va="center_baseline", fontsize=_FONT + 3, zorder=4)
        else:
            patch = FancyBboxPatch((v.x - v.w / 2, v.cy - _BOX_H / 2), v.w, _BOX_H,
                                   boxstyle="round,pad=0,rounding_size=0.06", **style)
            weight = "bold" if v.kind in ("input", "output") or v.family == "cat" else "normal"
            ax.text(v.x, v.cy, v.label, ha="center", va="center", fontsize=_FONT,
                    fontweight=weight, zorder=4)
        ax.add_patch(patch)
        shape_h = _CIRCLE if _round(v) else _BOX_H
        if v.tag:
            ax.text(v.x, v.cy - shape_h / 2 - 0.03, v.tag, ha="center", va="bottom",
                    fontsize=_FONT - 2, color="#555555", zorder=4)
        if v.note:
            ax.text(v.x, v.cy + shape_h / 2 + 0.03, v.note, ha="center", va="top",
                    fontsize=_FONT - 2, color="#555555", style="italic", zorder=4)

    # Edges bend only in the gaps between layers: they leave a layer's column and cross
    # the next ones (through their dummy rows) horizontally, so no edge crosses a box.
    entries = _entry_points(V, routes)
    for route, entry in zip(routes, entries):
        a, b = V[route[0]], V[route[-1]]
        start = _exit_point(a)
        points = [start, (xs[a.layer] + widths[a.layer] / 2, start[1])]
        for d in route[1:-1]:
            points += [(xs[V[d].layer] - widths[V[d].layer] / 2, V[d].y),
                       (xs[V[d].layer] + widths[V[d].layer] / 2, V[d].y)]
        points += [(xs[b.layer] - widths[b.layer] / 2, entry[1]), entry]
        verts, codes = [points[0]], [MPath.MOVETO]
        for k, (p0, p1) in enumerate(zip(points, points[1:])):
            if p0 == p1:
                continue
            if k % 2 == 1:  # from a column's right edge to the next one's left edge: a curve
                dx = (p1[0] - p0[0]) / 2
                verts += [(p0[0] + dx, p0[1]), (p1[0] - dx, p1[1]), p1]
                codes += [MPath.CURVE4] * 3
            else:  # along a row inside a column
                verts.append(p1)
                codes.append(MPath.LINETO)
        dashed = a.dashed or b.dashed
        ax.add_patch(FancyArrowPatch(path=MPath(verts, codes), arrowstyle="-|>", mutation_scale=9,
                                     linewidth=1.0, color="#444444", linestyle="--" if dashed else "-",
                                     shrinkA=0, shrinkB=0, zorder=2))
    return fig


def _round(v: _Vertex) -> bool:
    return v.kind == "combine" and v.family != "cat"


def _exit_point(v: _Vertex) -> tuple[float, float]:
    return v.x + (_CIRCLE / 2 if _round(v) else v.w / 2), v.cy


def _entry_points(V, routes) -> list[tuple[float, float]]:
    """Where each edge enters its target: spread over the left side of a box or the left
    rim of a circle, in the order the edges arrive, so arrowheads do not pile up."""
    arriving: dict[int, list[int]] = {}
    for k, route in enumerate(routes):
        arriving.setdefault(route[-1], []).append(k)
    entries: list = [None] * len(routes)
    for target, ks in arriving.items():
        v = V[target]
        ks.sort(key=lambda k: V[routes[k][-2]].cy)
        n = len(ks)
        for i, k in enumerate(ks):
            t = 0.0 if n == 1 else i / (n - 1) - 0.5  # -0.5 .. 0.5
            if _round(v):
                angle = t * math.radians(110)
                r = _CIRCLE / 2
                entries[k] = (v.x - r * math.cos(angle), v.cy + r * math.sin(angle))
            else:
                entries[k] = (v.x - v.w / 2, v.cy + t * min(_BOX_H * 0.7, 0.09 * (n - 1)))
    return entries


# ------------------------------------------------------------------ files

def draw_cells(genotype, out_dir, cells=None, formats=("png", "svg")) -> list[Path]:
    """Draw each cell of ``genotype`` (a Genotype, zoo name or genotype file) into
    ``out_dir`` as cell_<name>.<format>; returns the files written.

    ``cells``: the cell names to draw (default: ``cells_to_draw``, which may be empty for
    a net without cells, like VGG). ``formats``: any of png, svg, pdf.
    """
    from matplotlib import rc_context

    from . import resolve
    g = resolve(genotype)
    formats = [formats] if isinstance(formats, str) else list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise DrawError(f"unknown picture format {bad[0] if bad else ''!r}; use any of {', '.join(FORMATS)}")
    names = cells_to_draw(g) if cells is None else list(cells)
    unknown = [n for n in names if g.cell(n) is None]
    if unknown:
        raise DrawError(f"{g.name} has no cell {unknown[0]!r}; its cells: "
                        f"{', '.join(c.name for c in g.cells) or 'none'}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DrawError(f"cannot create the folder {out}: {e.strerror or e}") from None
    written = []
    for name in names:
        fig = draw_cell(g, name)
        for fmt in formats:
            path = out / f"cell_{name}.{fmt}"
            # fixed metadata: the same genotype gives the same bytes, fit to commit
            meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt, {})
            try:
                # SVG: ids from a fixed salt (same bytes each time), labels kept as text
                with rc_context({"svg.hashsalt": "nasty", "svg.fonttype": "none"}):
                    fig.savefig(path, format=fmt, dpi=150, metadata=meta)
            except OSError as e:
                raise DrawError(f"cannot write {path}: {e.strerror or e}") from None
            written.append(path)
    return written
