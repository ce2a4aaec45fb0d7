"""A small NAS-Bench-201-like cell space (Dong & Yang 2020), the space of nasty's own
benchmark table (`nasty bench`, nasty/nasbench/): every member was trained once, so a
controller can be simulated on it with table lookups.

The cell is a DAG on 4 nodes: node 0 is the cell input, node 3 its output, and each of
the 6 edges i->j (i < j) carries one op. NAS-Bench-201 uses 5 ops (15,625 cells); on 2
CPU cores we use 3 of them,

    none      the edge is absent (zero)
    skip      identity
    conv3x3   ReLU-conv3x3-BN (NAS-Bench-201's order)

so the space has 3^6 = 729 cells. A node whose inputs are all `none` is zero; edges out
of a zero node, and edges into a node that no path connects to the output, change
nothing, so many cells compile to the same network (`live_edges` maps a cell to it).

Macro skeleton (1x28x28): stem conv3x3/2 c=C+BN, cell(C), ResNet reduction block to 2C,
cell(2C), reduction to 4C, cell(4C), BN-ReLU-GAP-FC; C = WIDTH. Target and proxy are the
same network: the table holds the accuracies of exactly what is costed.
"""
import functools

import nasty
from nasty.space import space

OPS = ("none", "skip", "conv3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
EDGE_NAMES = tuple(f"e{i}{j}" for i, j in EDGES)     # decision names, in NAS-Bench-201's order
WIDTH = 8                                            # C: channels of the first cell


def arch_str(ops) -> str:
    """NAS-Bench-201's string form: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def live_edges(ops) -> tuple[str, ...]:
    """The ops with every edge that cannot change the network replaced by `none`."""
    op = dict(zip(EDGES, ops))
    for e in op:
        if op[e] not in OPS:
            raise nasty.NastyError(f"unknown nb201mini op {op[e]!r}; ops are {', '.join(OPS)}")
    alive = {0}                                      # forward: which nodes carry a signal
    for j in (1, 2, 3):
        if any(i in alive and op[(i, j)] != "none" for i in range(j)):
            alive.add(j)
    useful = {3}                                     # backward: which nodes reach the output
    for i in (2, 1):
        if any(op[(i, j)] != "none" and j in useful for j in range(i + 1, 4)):
            useful.add(i)
    useful.add(0)
    return tuple(o if (i in alive and j in useful and j in alive) else "none"
                 for (i, j), o in op.items())


def _edge_expr(op, src):
    return src if op == "skip" else f"relu conv3x3 c=c bn <- {src}"


def genotype_text(ops, width: int = WIDTH, input=(1, 28, 28), classes: int = 10) -> str:
    live = dict(zip(EDGES, live_edges(ops)))
    names = {0: "in", 1: "n1", 2: "n2", 3: "out"}
    lines = []
    for j in (1, 2, 3):
        terms = [_edge_expr(live[(i, j)], names[i]) for i in range(j) if live[(i, j)] != "none"]
        if not terms:
            if j == 3:                          # the cell outputs zero
                lines.append("  out = scale v=0 <- in")
            continue
        rhs = terms[0] if len(terms) == 1 else f"add({', '.join(terms)})"
        if j == 3 and len(terms) == 1 and live[(next(i for i in range(3) if live[(i, 3)] != 'none'), 3)] == "skip":
            rhs = f"identity <- {terms[0]}"     # `out` must be an op, not a bare reference
        lines.append(f"  {names[j]} = {rhs}")
    shape = "x".join(map(str, input))
    c = width
    return "\n".join([
        f"net nb201mini input {shape} classes {classes}",
        "defaults conv.bias=0",
        "cell cell(c):", *lines,
        "cell reduce(c):",
        "  a = relu conv3x3/2 c=c bn <- in",
        "  b = relu conv3x3 c=c bn <- a",
        "  out = add(b, shortcut c=c s=2 <- in)",
        f"stem  conv3x3/2 c={c} bn",
        f"stage cell({c})",
        f"stage reduce({2 * c})",
        f"stage cell({2 * c})",
        f"stage reduce({4 * c})",
        f"stage cell({4 * c})",
        "head  bn relu gap flatten fc c=classes",
        ""])


def decide(t) -> tuple:
    """The space's decisions: one op per edge, in NAS-Bench-201's edge order (the space function
    and the table simulation, nasty/nasbench/simulate.py, both ask through this)."""
    return tuple(t.choice(e, OPS) for e in EDGE_NAMES)


@functools.lru_cache(maxsize=4096)
def arch_genotype(ops: tuple, width: int = WIDTH, input=(1, 28, 28), classes: int = 10):
    return nasty.parse(genotype_text(ops, width, input, classes), "nb201mini")


@space(target=dict(input=(1, 28, 28), classes=10), proxy=dict(input=(1, 28, 28), classes=10),
       name="nb201mini",
       description="NAS-Bench-201-like cell: 4 nodes, 6 edges, ops none/skip/conv3x3 (729 cells)")
def nb201mini(t, net):
    ops = decide(t)
    return arch_genotype(ops, WIDTH, tuple(net.input), net.classes)
