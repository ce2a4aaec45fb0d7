"""The genotype IR: one set of frozen dataclasses for every network nasty knows.

A genotype is a macro skeleton (an ordered list of body layers: stem, stages,
head) plus named cells. A cell is a small DAG of nodes; each node is an
expression over earlier nodes. Attribute values are small arithmetic
expressions (see `expr.py`) evaluated when the genotype is elaborated, so one
cell definition serves every repeat, width and scaling of a family.

Everything is immutable and hashable, so `parse(format(g)) == g` is a plain
equality check.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Union

from .expr import Value

# An attribute list: (key, value) pairs kept sorted by key, so that equality
# does not depend on the order a person wrote them in.
Attrs = tuple[tuple[str, Value], ...]


def sorted_attrs(pairs) -> Attrs:
    return tuple(sorted(pairs, key=lambda kv: kv[0]))


@dataclass(frozen=True)
class Op:
    """One primitive op, e.g. `conv3x3/2 c=64` -> Op('conv', {kh:3, kw:3, s:2, c:64})."""
    kind: str
    attrs: Attrs = ()

    def get(self, key, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default


@dataclass(frozen=True)
class CellCall:
    """A use of a named cell inside a chain: `bottleneck(64, 256, stride=2)`."""
    name: str
    args: tuple[Value, ...] = ()
    kwargs: Attrs = ()


Chain = tuple[Union[Op, CellCall], ...]


@dataclass(frozen=True)
class Ref:
    """A reference to a cell input (`in`, `prev`) or an earlier node."""
    name: str


@dataclass(frozen=True)
class Apply:
    """`chain <- src`: the ops of `chain` applied in order to `src`."""
    chain: Chain
    src: "Expr"


@dataclass(frozen=True)
class Combine:
    """A join: `add(a, b, ...)`, `sub(a, b)`, `mul(a, b)`, `cat(a, b, ...)`, `upsample(x, like)`."""
    kind: str
    args: tuple["Expr", ...]


Expr = Union[Ref, Apply, Combine]
from .ops import COMBINERS  # noqa: E402,F401  (the joins are registered ops: add, sub, mul, cat, upsample)


@dataclass(frozen=True)
class Node:
    """`name = expr [if cond else alt]`. With a guard that evaluates to 0 (false) the node is
    skipped and is `alt`: an input or an earlier node (`ex = conv... <- in if e else in`), or
    `none`, which every join leaves out (`b = conv3x3 c=8 <- in if wide else none` adds no
    channels to a `cat`, no term to an `add`). The else is required: what a skipped node stands
    for is never implicit (see `legacy.py` for texts written before it was)."""
    name: str
    expr: Expr
    when: Value | None = None
    otherwise: str | None = None      # the name after `else`: an input, an earlier node, or NONE


NONE = "none"     # `else none`: the node is absent (left out of joins) when its guard is false


@dataclass(frozen=True)
class Param:
    name: str
    default: Value | None = None


@dataclass(frozen=True)
class Cell:
    """A named DAG. Its inputs are `in` (h_{i-1}) and, with `inputs 2`, `prev` (h_{i-2}).

    The node named `out` is the cell's output.
    """
    name: str
    params: tuple[Param, ...] = ()
    inputs: int = 1
    nodes: tuple[Node, ...] = ()


SECTIONS = ("stem", "stage", "head")


@dataclass(frozen=True)
class Layer:
    """One body line: `stage bottleneck(64, 256, 2) x3 rest(stride=1)`.

    The chain runs `repeat` times; repeats after the first use the cell-call
    keyword overrides in `rest` (the first repeat strides or widens, the others
    keep the shape). Each repeat pushes one new state, which is what two-input
    cells read as `in` and `prev`.
    """
    section: str
    chain: Chain
    repeat: Value = 1
    rest: Attrs = ()


@dataclass(frozen=True)
class Genotype:
    name: str
    input: tuple[int, int, int]
    classes: int | None = None
    defaults: Attrs = ()          # e.g. (("bn.eps", 1e-3), ("conv.bias", 0))
    scale: Attrs = ()             # width, depth, divisor used by W() and D()
    lets: tuple[tuple[str, Value], ...] = ()   # named constants, in order (a family's table)
    cells: tuple[Cell, ...] = ()
    layers: tuple[Layer, ...] = field(default=())

    def cell(self, name: str) -> Cell | None:
        return self._cells_by_name.get(name)

    @cached_property
    def _cells_by_name(self) -> dict:
        """Cells by name, built once: elaboration looks a cell up at every call of it."""
        return {c.name: c for c in reversed(self.cells)}      # the first of a name wins

    def with_header(self, **changes) -> "Genotype":
        """A copy with header fields replaced (input, classes, scale, name...)."""
        from dataclasses import replace
        if "scale" in changes and isinstance(changes["scale"], dict):
            changes["scale"] = sorted_attrs(changes["scale"].items())
        if "lets" in changes and isinstance(changes["lets"], dict):
            merged = dict(self.lets)
            unknown = set(changes["lets"]) - set(merged)
            if unknown:
                from .errors import GenotypeError
                raise GenotypeError(f"{self.name}: no let named {sorted(unknown)[0]!r}")
            merged.update(changes["lets"])
            changes["lets"] = tuple(merged.items())
        if "defaults" in changes and isinstance(changes["defaults"], dict):
            changes["defaults"] = sorted_attrs(changes["defaults"].items())
        return replace(self, **changes)
