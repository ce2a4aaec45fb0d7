"""Where each shape of a cell's picture goes, in inches, computed with no graphics library.

Layout is ours, with no graphviz: layers by longest path from the inputs, op boxes then
pulled next to the node they feed (as the papers draw an op just below its add), long
edges routed through dummy points, crossings reduced by barycenter sweeps, and rows
placed by an isotonic fit that keeps the order and spacing. Columns follow from the
widest shape of each layer, and every edge gets the points it passes through.

Text is measured by a function the caller passes in (``text_width``), so this module
needs neither matplotlib nor fonts: nasty/draw/render.py measures with matplotlib and
draws what is placed here; a test can measure with a rule of thumb.
"""
from __future__ import annotations

import math
from typing import Callable

from .graph import CellGraph, Vertex

FONT = 10.0           # points: the size of a shape's label (the small tag and note are 2 less)
GAP_X = 0.45          # inches between layers
_GAP_Y = 0.16         # inches between rows
BOX_H = 0.36
CIRCLE = 0.30
_DUMMY_H = 0.06

TextWidth = Callable[[str, float], float]     # (text, size in points) -> width in inches


def is_circle(v: Vertex) -> bool:
    """Adds, products and other combines are circles; a concat is a box, as in the papers."""
    return v.kind == "combine" and v.family != "cat"


def size_shapes(V: list[Vertex], text_width: TextWidth) -> None:
    """Width and height of every shape: a box fits its label, a circle is fixed; the small
    tag above and note below add height (and width, where a note is wider)."""
    for v in V:
        if is_circle(v):
            v.w = v.h = CIRCLE
        else:
            v.w, v.h = max(0.5, text_width(v.label, FONT) + 0.24), BOX_H
        if v.tag or v.note:  # room for the small labels above and below
            v.h += 0.14 * (bool(v.tag) + bool(v.note))
            v.w = max(v.w, text_width(v.note, FONT - 2) + 0.1)


def layout_cell(graph: CellGraph) -> tuple[list[Vertex], list[list[int]]]:
    """Layers, dummy points for long edges, row order and y positions (shapes sized first).

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
            V.append(Vertex("dummy", "", layer=layer, h=_DUMMY_H))
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


def place_columns(V: list[Vertex]) -> tuple[list[float], list[float], float]:
    """x of every vertex: one column per layer, as wide as its widest shape. Returns each
    column's centre and width, and the right edge of the last column. Also sets each
    shape's own centre ``cy``, below its tag and above its note."""
    n_layers = max(v.layer for v in V) + 1
    widths = [max((v.w for v in V if v.layer == i), default=0.0) for i in range(n_layers)]
    xs, x = [], 0.0
    for w in widths:
        xs.append(x + w / 2)
        x += w + GAP_X
    for v in V:
        v.x = xs[v.layer]
    for v in V:  # the shape sits below its tag and above its note
        v.cy = v.y + (0.07 if v.tag else 0.0) - (0.07 if v.note else 0.0)
    return xs, widths, x - GAP_X


def edge_points(V: list[Vertex], routes: list[list[int]], xs: list[float],
                widths: list[float]) -> list[list[tuple[float, float]]]:
    """The points each edge passes through, from its source's right side to its target's left.

    Edges bend only in the gaps between layers: they leave a layer's column and cross the
    next ones (through their dummy rows) horizontally, so no edge crosses a box. Between
    consecutive points, an even step (0, 2, ...) runs along a row inside a column and an
    odd step crosses a gap between columns (render draws it as a curve); a step between
    two equal points is nothing to draw."""
    paths = []
    for route, entry in zip(routes, _entry_points(V, routes)):
        a, b = V[route[0]], V[route[-1]]
        start = _exit_point(a)
        points = [start, (xs[a.layer] + widths[a.layer] / 2, start[1])]
        for d in route[1:-1]:
            points += [(xs[V[d].layer] - widths[V[d].layer] / 2, V[d].y),
                       (xs[V[d].layer] + widths[V[d].layer] / 2, V[d].y)]
        points += [(xs[b.layer] - widths[b.layer] / 2, entry[1]), entry]
        paths.append(points)
    return paths


def _exit_point(v: Vertex) -> tuple[float, float]:
    return v.x + (CIRCLE / 2 if is_circle(v) else v.w / 2), v.cy


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
            if is_circle(v):
                angle = t * math.radians(110)
                r = CIRCLE / 2
                entries[k] = (v.x - r * math.cos(angle), v.cy + r * math.sin(angle))
            else:
                entries[k] = (v.x - v.w / 2, v.cy + t * min(BOX_H * 0.7, 0.09 * (n - 1)))
    return entries
