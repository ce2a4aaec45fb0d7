"""The DARTS cell space (Liu, Simonyan and Yang, DARTS: Differentiable Architecture Search,
ICLR 2019), written with nasty's public API like a user's own space.

A normal and a reduction cell, each with 4 intermediate nodes. Node i takes two distinct
states among c_{k-2} (`prev`), c_{k-1} (`in`) and the nodes before it, applies one op to
each and adds them; the cell concatenates the 4 nodes. The op set is DARTS's 8 primitives;
`none` (the zero op) only exists in the continuous relaxation, where it lets an edge
vanish: a discrete DARTS cell picks two non-zero edges per node (cnn/model_search.py
`genotype()`), so the decisions here choose among the other 7, as that derivation does.
In a reduction cell the ops reading `prev` or `in` have stride 2 (skip_connect then is a
factorized reduction, as in DARTS's OPS). Macro decisions: C (initial channels) and L
(cells).

TARGET: the ImageNet mobile network of the authors' cnn/model.py (NetworkImageNet: a
two-conv stride-4 stem, L cells, reductions at L/3 and 2L/3) at 224x224 with 1000 classes,
exactly the skeleton of the zoo's `darts_v2` (nasty/zoo/darts.nasty). With DARTS-V2's cells
(Space.canonical["darts_v2"]) at C=48, L=14 it costs what the zoo's `darts_v2` costs.

PROXY: NetworkCIFAR's skeleton (a 3x3 stem conv with 3C filters read as both inputs of
the first cell), strided once (after zero padding to a multiple of 8, as DARTS's
factorized reduction needs even sizes) for 28x28 images, at C=8 and L=5 (normal, reduction,
normal, reduction, normal).

The skeleton follows the input size (NetSpec.large: the ImageNet one from 128 px a side, the small-image
one below) and the sizes follow `net.proxy`, so `--target data` budgets a full-size network at the data's
own resolution.
"""
import itertools

import nasty
from nasty.space import space

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")
OPS = PRIMITIVES[1:]                 # a discrete cell never keeps the zero op
NODES = 4
C_CHOICES = (16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64)
L_CHOICES = (8, 11, 14, 17, 20)
PROXY_C = 8                    # the proxy's C; its L follows the decision (5..9 cells for L = 8..20)


def proxy_l(l: int) -> int:
    """The proxy's layers: one more per step of L (L_CHOICES 8, 11, 14, 17, 20 -> 5, 6, 7, 8, 9)."""
    return 5 + L_CHOICES.index(l)

# DARTS-V2 (cnn/genotypes.py): per node, (op, input) pairs, input 0 = c_{k-2}, 1 = c_{k-1}, 2+ = nodes
DARTS_V2 = {
    "normal": [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
               ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    "reduce": [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
               ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
}


def state_names(i: int) -> tuple:
    return ("prev", "in") + tuple(f"n{k}" for k in range(i))


def input_pairs(i: int) -> tuple:
    """The two distinct inputs node i can take, as 'a,b' strings."""
    return tuple(f"{a},{b}" for a, b in itertools.combinations(state_names(i), 2))


def decisions_of(cells: dict, C: int, L: int) -> dict:
    """Decisions of a DARTS genotype given as in cnn/genotypes.py."""
    out = {"C": C, "L": L}
    for cell, edges in cells.items():
        for i in range(NODES):
            (o1, x1), (o2, x2) = edges[2 * i], edges[2 * i + 1]
            names = state_names(i)
            if x1 > x2:                      # decisions list the inputs in state order
                (o1, x1), (o2, x2) = (o2, x2), (o1, x1)
            out[f"{cell}_n{i}_inputs"] = f"{names[x1]},{names[x2]}"
            out[f"{cell}_n{i}_op1"], out[f"{cell}_n{i}_op2"] = o1, o2
    return out


def op_expr(op: str, src: str, stride: int) -> str:
    if op == "skip_connect":
        return src if stride == 1 else f"freduce(C) <- {src}"
    if op == "max_pool_3x3":
        return f"maxpool3x3/{stride} <- {src}"
    if op == "avg_pool_3x3":
        return f"avgpool3x3/{stride} p=1 cip=0 <- {src}"
    kind, k = op.split("_conv_")
    k = k[0]
    cell = "sepconv" if kind == "sep" else "dilconv"
    return f"{cell}(C, {k}{', 2' if stride == 2 else ''}) <- {src}"


def cell_text(name: str, nodes, reduction: bool) -> str:
    lines = []
    for i, (inputs, o1, o2) in enumerate(nodes):
        a, b = inputs.split(",")
        parts = [op_expr(o, x, 2 if reduction and x in ("prev", "in") else 1) for x, o in ((a, o1), (b, o2))]
        lines.append(f"  n{i} = add({parts[0]}, {parts[1]})")
    lines.append("  out = cat(" + ", ".join(f"n{i}" for i in range(len(nodes))) + ")")
    return f"cell {name}(C) inputs 2:\n" + "\n".join(lines)


_CELLS = """
cell sepconv(c, k, s=1):
  out = relu sep/s c=c k=k bn relu sep c=c k=k bn <- in

cell dilconv(c, k, s=1):
  out = relu sep/s c=c d=2 k=k bn <- in

cell rcb(c):
  out = relu conv1x1 c=c bn <- in

cell freduce(c):
  a   = relu <- in
  p1  = conv1x1/2 c=c // 2 <- a
  p2  = pad l=-1 t=-1 conv1x1/2 c=c // 2 <- a
  out = bn <- cat(p1, p2)

{normal}

{reduce}

cell darts_normal(C, red_prev=0) inputs 2:
  fr  = freduce(C) <- prev if red_prev else prev
  hp  = rcb(C) <- fr if 1 - red_prev else fr
  cur = rcb(C) <- in
  out = normal_cell(C, prev=hp) <- cur

cell darts_reduce(C) inputs 2:
  hp  = rcb(C) <- prev
  cur = rcb(C) <- in
  out = reduction_cell(C, prev=hp) <- cur
"""

_TARGET = """
cell darts_stem0(C, imagenet):
  a   = conv3x3/2 c=C // 2 bn relu <- in if imagenet else in
  out = conv3x3 c=C * (3 - 2 * imagenet) s=1 + imagenet bn <- a

cell darts_stem1(C, imagenet):
  out = relu conv3x3/2 c=C bn <- in if imagenet else in

stem  darts_stem0(C, imagenet)
stem  darts_stem1(C, imagenet)
stage darts_normal(C, imagenet) x L // 3 rest(red_prev=0)
stage darts_reduce(2 * C)
stage darts_normal(2 * C, 1) x 2 * L // 3 - L // 3 - 1 rest(red_prev=0)
stage darts_reduce(4 * C)
stage darts_normal(4 * C, 1) x L - 2 * L // 3 - 1 rest(red_prev=0)
head  gap flatten fc c=classes
"""

_PROXY = """
stem  {pad}conv3x3/2 c=3 * C bn
stage darts_normal(C, 0, prev=-1) x L // 3 rest(prev=-2)
stage darts_reduce(2 * C)
stage darts_normal(2 * C, 1) x 2 * L // 3 - L // 3 - 1 rest(red_prev=0)
stage darts_reduce(4 * C)
stage darts_normal(4 * C, 1) x L - 2 * L // 3 - 1 rest(red_prev=0)
head  gap flatten fc c=classes
"""


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       canonical={"darts_v2": decisions_of(DARTS_V2, 48, 14)},
       width_decision="C", proxy_ignores=("C",))
def darts(t, net):
    """DARTS cells (Liu et al. 2019): 4 nodes, two distinct inputs and two ops each; C and L."""
    C = t.choice("C", C_CHOICES)
    L = t.choice("L", L_CHOICES)
    cells = {}
    for cell in ("normal", "reduce"):
        nodes = []
        for i in range(NODES):
            inputs = t.choice(f"{cell}_n{i}_inputs", input_pairs(i))
            nodes.append((inputs, t.choice(f"{cell}_n{i}_op1", OPS), t.choice(f"{cell}_n{i}_op2", OPS)))
        cells[cell] = nodes
    body = _CELLS.format(normal=cell_text("normal_cell", cells["normal"], False),
                         reduce=cell_text("reduction_cell", cells["reduce"], True))
    c, h, w = net.input
    if net.proxy:
        C, L = PROXY_C, proxy_l(L)
    if net.large:
        text = f"let C={C} L={L} imagenet=1\n{body}{_TARGET}"
    else:
        # DARTS's factorized reduction needs even sizes: pad to a multiple of 8 (28 -> 32 -> 16, 8, 4)
        ph, pw = -h % 8, -w % 8
        pad = f"pad l={pw // 2} r={pw - pw // 2} t={ph // 2} b={ph - ph // 2} " if ph or pw else ""
        text = f"let C={C} L={L}\n{body}{_PROXY.format(pad=pad)}"
    return nasty.parse(f"net darts input {c}x{h}x{w} classes {net.classes}\n"
                       "defaults conv.bias=0 maxpool.p=1 sep.bias=0\n" + text, "searchspaces/darts.py")
