"""A Genotype back to its text form (`format`, the inverse of `parse`).

Its own module, below the checker (which quotes a node as written in its messages) and the parser
(which runs the checker): every import in nasty/ points down (tests/test_imports.py).
"""
from __future__ import annotations

from .expr import Sym, format_value
from .ir import Apply, Cell, CellCall, Genotype, Node, Op, Ref
from . import ops as V


def format(g: Genotype) -> str:  # noqa: A001 - mirrors parse()
    lines = [f"net {g.name} input {'x'.join(map(str, g.input))}"
             + (f" classes {g.classes}" if g.classes is not None else "")]
    if g.defaults:
        lines.append("defaults " + " ".join(f"{k}={format_value(v)}" for k, v in g.defaults))
    if g.scale:
        lines.append("scale " + " ".join(f"{k}={format_value(v)}" for k, v in g.scale))
    if g.lets:
        lines.append("let " + " ".join(f"{k}={format_value(v)}" for k, v in g.lets))
    for cell in g.cells:
        lines.append("")
        lines += format_cell(cell)
    if g.cells:
        lines.append("")
    width = max((len(l.section) for l in g.layers), default=4)
    for layer in g.layers:
        s = f"{layer.section:<{width}} {format_chain(layer.chain)}"
        if layer.repeat != 1:
            s += f" x{layer.repeat}" if isinstance(layer.repeat, int) else f" x {format_value(layer.repeat)}"
        if layer.rest:
            s += " rest(" + ", ".join(f"{k}={format_value(v)}" for k, v in layer.rest) + ")"
        lines.append(s)
    return "\n".join(lines) + "\n"


def format_cell(cell: Cell) -> list[str]:
    head = f"cell {cell.name}"
    if cell.params:
        head += "(" + ", ".join(p.name + (f"={format_value(p.default)}" if p.default is not None else "")
                                for p in cell.params) + ")"
    if cell.inputs != 1:
        head += f" inputs {cell.inputs}"
    width = max(len(n.name) for n in cell.nodes)
    return [head + ":"] + [f"  {n.name:<{width}} = {format_node(n)}" for n in cell.nodes]


def format_node(n: Node) -> str:
    """A node's right-hand side: `expr [if COND else NAME]`."""
    if n.when is None:
        return format_expr(n.expr)
    return format_expr(n.expr) + f" if {format_value(n.when)}" + (f" else {n.otherwise}" if n.otherwise else "")


def format_expr(e) -> str:
    if isinstance(e, Ref):
        return e.name
    if isinstance(e, Apply):
        return f"{format_chain(e.chain)} <- {format_expr(e.src)}"
    return f"{e.kind}(" + ", ".join(format_expr(a) for a in e.args) + ")"


def format_chain(chain) -> str:
    return " ".join(format_op(el) if isinstance(el, Op) else format_call(el) for el in chain)


def format_call(c: CellCall) -> str:
    if not c.args and not c.kwargs:
        return c.name
    parts = [format_value(a) for a in c.args] + [f"{k}={format_value(v)}" for k, v in c.kwargs]
    return f"{c.name}(" + ", ".join(parts) + ")"


def format_op(op: Op) -> str:
    attrs = dict(op.attrs)
    s = op.kind
    kh, kw = attrs.get("kh"), attrs.get("kw")
    if op.kind in V.KERNEL_OPS and isinstance(kh, int) and isinstance(kw, int) and kh >= 0 and kw >= 0:
        s += f"{kh}x{kw}"
        del attrs["kh"], attrs["kw"]
    elif kh is not None and kh == kw:
        attrs["k"] = kh
        del attrs["kh"], attrs["kw"]
    stride = attrs.get("s")
    if (isinstance(stride, int) and not isinstance(stride, bool) and stride >= 0) \
            or isinstance(stride, Sym):
        s += f"/{format_value(stride)}"
        del attrs["s"]
    for k in sorted(attrs):
        s += f" {k}={format_value(attrs[k])}"
    return s
