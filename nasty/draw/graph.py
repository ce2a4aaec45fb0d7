"""What a cell picture shows: which cells of a genotype get a picture, and each cell as a
graph of labelled shapes and arrows, in the style of the NASNet and DARTS papers' figures.

A cell of the genotype IR is a small DAG (nasty/genotype/ir.py), so any genotype can be
drawn, from the zoo or from a search. Inputs (`in` = h[i-1], `prev` = h[i-2]) sit on the
left, the output on the right; each op is a box labelled as the papers label them
("sep 5x5", "max 3x3 /2", "identity"), adds and products are circles, a concat a box.
Where the shapes go is nasty/draw/layout.py; drawing them is nasty/draw/render.py.

Which cells a genotype's pictures show (`cells_to_draw`): the cells its stages use, seen
through wrappers (a cell whose output is one call of another cell, with preprocessing of
its inputs, like the zoo's `nasnet_normal` around `nasnet_a_normal`), the cells those
call, and the stem's cells that branch. A cell that is one chain of ops called by another
cell (`branch`: relu sep bn relu sep bn) is an op of its caller, drawn as a box there.
`--cell` draws any cell by name.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..genotype import Genotype
from ..genotype.errors import GenotypeError
from ..genotype.expr import evaluate, format_value
from ..genotype.ir import Apply, Cell, CellCall, Combine, Op, Ref
from ..genotype.ops import INPUT_NAMES


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
class Vertex:
    """One shape of a cell's picture, or a dummy point that a long edge passes through:
    what it says (set here), then its size and place (set by nasty/draw/layout.py)."""
    kind: str              # input, op, call, combine, output, dummy
    label: str
    family: str = ""       # colour key
    tag: str = ""          # the node's name, shown small above it
    note: str = ""         # a guard, shown small below it
    dashed: bool = False   # exists only when a guard holds
    layer: int = 0
    y: float = 0.0
    w: float = 0.0         # size in inches (h includes the small labels): layout.size_shapes
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


class CellGraph:
    """Vertices and edges of one cell, built from its nodes."""

    def __init__(self, genotype: Genotype, cell: Cell):
        self.g, self.cell = genotype, cell
        self.env = _environment(genotype, exclude={p.name for p in cell.params})
        self.vertices: list[Vertex] = []
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
        self.vertices.append(Vertex(kind, label, family, **kw))
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
