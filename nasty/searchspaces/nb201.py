"""NAS-Bench-201's search space (Dong & Yang, ICLR 2020), exactly: the space of the
NAS-Bench-201 table that ships with nasty (nasty/nasbench/nb201.py), so that a controller
searching it can be simulated with table lookups and every cell costs what NAS-Bench-201
says it costs.

The cell is a DAG on 4 nodes: node 0 is the cell input, node 3 its output, and each of
the 6 edges i->j (i < j) carries one of 5 ops (5^6 = 15,625 cells):

    none        the zero op (NAS-Bench-201's Zero: x * 0)
    skip        identity
    conv1x1     ReLU-conv1x1-BN (no conv bias, BN affine with running statistics)
    conv3x3     ReLU-conv3x3-BN
    avgpool3x3  average pool 3x3, stride 1, padding 1, count_include_pad=False

A node is the sum of its incoming edges. Unlike nb201mini, no edge is pruned: NAS-Bench-201
builds the op of every edge (a conv whose input is a zero node, or whose node feeds only
`none` edges, still has its weights and its FLOPs, and NAS-Bench-201 counts them), so the
genotype keeps them too. It leaves out only what computes nothing: `none` terms, and a zero
node nothing reads. A node with only `none` inputs is zero (`scale v=0`); a non-zero node
whose out-edges are all `none` is read by the output through `scale v=0` (NAS-Bench-201's
x.mul(0) on those edges), so it is built and costed as there.

Macro skeleton (TinyNetwork, C=16, N=5, CIFAR-10 at 3x32x32): stem conv3x3 C + BN; N cells
at C; a residual reduction block to 2C (ResNet basic block: ReLU-conv3x3/2-BN, ReLU-conv3x3-BN,
shortcut avgpool2x2/2 then conv1x1 without BN; no ReLU after the sum); N cells at 2C; another
block to 4C; N cells at 4C; BN-ReLU, global average pool, linear. Its params equal
NAS-Bench-201's published `params` and its MACs its published `flop` less the classifier's
bias adds (docs/benchmarks-nb201.md says how that was checked).

The proxy (what `nasty search --space nb201` trains on the data at hand) is the same cell in
the same skeleton with one cell per stage (N=1) at the data's input; the target (where budgets
apply) is NAS-Bench-201's network.
"""
import functools

import nasty
from nasty.space import space

# Our op names and NAS-Bench-201's, in NAS-Bench-201's order (cell_operations.NAS_BENCH_201)
OPS = ("none", "skip", "conv1x1", "conv3x3", "avgpool3x3")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
TO_NB201 = dict(zip(OPS, NB201_OPS))
FROM_NB201 = dict(zip(NB201_OPS, OPS))
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))   # NAS-Bench-201's order: node 1, node 2, node 3
EDGE_NAMES = tuple(f"e{i}{j}" for i, j in EDGES)            # decision names
WIDTH = 16                                                  # C: channels of the first stage
CELLS = 5                                                   # N: cells per stage
PROXY_CELLS = 1


def arch_str(ops) -> str:
    """NAS-Bench-201's string of a cell: |op~0|+|op~0|op~1|+|op~0|op~1|op~2| (its op names)."""
    o = [TO_NB201[x] for x in _checked(ops)]
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def parse_arch(text: str) -> tuple:
    """A NAS-Bench-201 cell string back to the 6 edge ops (our names, in EDGES order)."""
    bad = nasty.NastyError(f"not a NAS-Bench-201 cell string: {str(text)[:120]!r}; expected three '+'-separated "
                           "groups of op~input, e.g. |nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|"
                           "avg_pool_3x3~2|")
    if not isinstance(text, str):
        raise bad
    groups = text.split("+")
    if len(groups) != 3:
        raise bad
    ops = []
    for j, group in enumerate(groups, 1):
        if not (group.startswith("|") and group.endswith("|")):
            raise bad
        items = group[1:-1].split("|")
        if len(items) != j:
            raise bad
        for i, item in enumerate(items):
            name, sep, src = item.partition("~")
            if not sep or src != str(i) or name not in FROM_NB201:
                raise bad
            ops.append(FROM_NB201[name])
    return tuple(ops)


def _checked(ops) -> tuple:
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise nasty.NastyError(f"an nb201 cell has {len(EDGES)} edge ops ({', '.join(EDGE_NAMES)}), got {len(ops)}")
    for o in ops:
        if o not in OPS:
            raise nasty.NastyError(f"unknown nb201 op {o!r}; ops are {', '.join(OPS)}")
    return ops


def _edge_expr(op: str, src: str) -> str:
    return {"skip": src,
            "conv1x1": f"relu conv1x1 c=c bn <- {src}",
            "conv3x3": f"relu conv3x3 c=c bn <- {src}",
            "avgpool3x3": f"avgpool3x3 s=1 p=1 cip=0 <- {src}"}[op]


def cell_lines(ops) -> list[str]:
    """The body of the cell `cell(c)`: one line per node that computes something."""
    op = dict(zip(EDGES, _checked(ops)))
    names = {0: "in", 1: "n1", 2: "n2", 3: "out"}
    terms = {j: [(i, op[(i, j)]) for i in range(j) if op[(i, j)] != "none"] for j in (1, 2, 3)}
    zero = {0: False}
    for j in (1, 2, 3):
        zero[j] = not terms[j]
    # a node nothing reads (all its out-edges `none`) is still built unless it is zero: the output
    # reads it times 0, as NAS-Bench-201's Zero op does
    read = {i: any(op[(i, j)] != "none" for j in range(i + 1, 4)) for i in (1, 2)}
    orphans = [i for i in (1, 2) if not read[i] and not zero[i]]
    needed = {3} | {i for i in (1, 2) if not zero[i] or read[i]}
    lines = []
    for j in (1, 2, 3):
        if j not in needed:
            continue
        exprs = [_edge_expr(o, names[i]) for i, o in terms[j]]
        if j == 3:
            exprs += [f"scale v=0 <- {names[i]}" for i in orphans]
        if not exprs:
            rhs = "scale v=0 <- in"                       # the node is zero
        elif len(exprs) > 1:
            rhs = f"add({', '.join(exprs)})"
        elif exprs[0] in names.values():
            rhs = f"identity <- {exprs[0]}"               # a node must be an op, not a bare reference
        else:
            rhs = exprs[0]
        lines.append(f"  {names[j]} = {rhs}")
    return lines


def genotype_text(ops, width: int = WIDTH, cells: int = CELLS, input=(3, 32, 32), classes: int = 10) -> str:
    shape = "x".join(map(str, input))
    c = width
    return "\n".join([
        f"net nb201 input {shape} classes {classes}",
        "defaults conv.bias=0",
        f"# NAS-Bench-201 cell {arch_str(ops)}",
        "cell cell(c):", *cell_lines(ops),
        "cell reduce(c):",
        "  a   = relu conv3x3/2 c=c bn <- in",
        "  b   = relu conv3x3 c=c bn <- a",
        "  out = add(b, avgpool2x2/2 conv1x1 c=c <- in)",
        f"stem  conv3x3 c={c} bn",
        f"stage cell({c}) x {cells}",
        f"stage reduce({2 * c})",
        f"stage cell({2 * c}) x {cells}",
        f"stage reduce({4 * c})",
        f"stage cell({4 * c}) x {cells}",
        "head  bn relu gap flatten fc c=classes",
        ""])


@functools.lru_cache(maxsize=1024)
def arch_genotype(ops: tuple, width: int = WIDTH, cells: int = CELLS, input=(3, 32, 32), classes: int = 10):
    """The genotype of a cell in NAS-Bench-201's skeleton (cached: cells repeat in a search)."""
    return nasty.parse(genotype_text(tuple(ops), width, cells, tuple(input), classes), "nb201")


def decide(t) -> tuple:
    """The space's decisions: one op per edge, asked in NAS-Bench-201's edge order. The space
    function and the table simulation (nasty/nasbench/nb201.py) both ask through this."""
    return tuple(t.choice(e, OPS) for e in EDGE_NAMES)


@space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10),
       name="nb201",
       description="NAS-Bench-201's cell and skeleton: 4 nodes, 6 edges, ops none/skip/conv1x1/conv3x3/avgpool3x3 "
                   "(15,625 cells)")
def nb201(t, net):
    ops = decide(t)
    return arch_genotype(ops, WIDTH, PROXY_CELLS if net.proxy else CELLS, tuple(net.input), net.classes)
