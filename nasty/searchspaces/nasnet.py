"""The NASNet search space (Zoph et al., Learning Transferable Architectures for Scalable
Image Recognition, CVPR 2018), written with nasty's public API like a user's own space.

A normal cell and a reduction cell, each of B=5 blocks. Block j picks two inputs among
the cell's hidden states (h_i = `in`, h_{i-1} = `prev`, and the blocks b0..b_{j-1} before
it) and one op for each from the paper's 13, and adds the two results. In a reduction
cell the ops that read `in` or `prev` have stride 2. The cell's output concatenates the
block outputs no other block consumed (the paper's "unused hidden states"); as in
TensorFlow's NASNet-A code, a normal cell's concat also takes h_{i-1}, and a block read
only through `identity` still counts as unused; a cell input no block reads joins the
concat too (after a factorized reduction in a reduction cell). Macro decisions: N (normal cells per
stack) and F (filters of the first stack).

TARGET, where budgets apply: the ImageNet mobile skeleton of the paper at 224x224 with
1000 classes, exactly the skeleton of the zoo's NASNet-A (nasty/zoo/nasnet.nasty: a 3x3/2
stem conv, two reduction cells as stem cells, then N normal cells at F, a reduction, N
at 2F, a reduction, N at 4F). With NASNet-A's cells (Space.canonical["nasnet_a"]) at N=4,
F=44 it costs what the zoo's `nasnet_mobile` costs, to the unit: 564M mult-adds.

PROXY, what is trained on the data at hand (e.g. Fashion-MNIST 1x28x28): the paper's
CIFAR skeleton (a 3x3 stem conv with 3F filters, N normal cells, a reduction, N, a
reduction, N) with the same two cells, shrunk to N=1 and F=PROXY_F so that a 2-core
machine trains a few dozen of them in minutes. The search ranks cells on the proxy and
the budget picks N and F on the target, which is how NASNet transferred from CIFAR-10
to ImageNet; `--fit` scales F to the largest value within budget, as NASNet did.

The skeleton follows the input size (NetSpec.large: the ImageNet one from 128 px a side, the small-image
one below) and the sizes follow `net.proxy`, so `--target data` budgets a full-size network at the data's
own resolution.
"""
import nasty
from nasty.space import space

B = 5
OPS = ("identity", "conv1x3_3x1", "conv1x7_7x1", "dil3x3", "avg3x3", "max3x3", "max5x5", "max7x7",
       "conv1x1", "conv3x3", "sep3x3", "sep5x5", "sep7x7")
N_CHOICES = (2, 3, 4, 5, 6)
F_CHOICES = (16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 96)    # multiples of 4: F/4, F/2 stem cells
PROXY_F = 8                    # the proxy's F; its N follows the decision: ceil(N / 2) normal cells per stack


def proxy_n(n: int) -> int:
    """The proxy's cells per stack: grows with N (1, 2, 2, 3, 3 for N = 2..6) at a third of the cost."""
    return -(-n // 2)

# The NASNet-A cells (paper Fig. 4; TensorFlow nasnet_utils.NasNetA*Cell) as decisions:
# per block (input 1, op 1, input 2, op 2).
NASNET_A = {
    "normal": [("in", "sep5x5", "prev", "sep3x3"), ("prev", "sep5x5", "prev", "sep3x3"),
               ("in", "avg3x3", "prev", "identity"), ("prev", "avg3x3", "prev", "avg3x3"),
               ("in", "sep3x3", "in", "identity")],
    "reduce": [("in", "sep5x5", "prev", "sep7x7"), ("in", "max3x3", "prev", "sep7x7"),
               ("in", "avg3x3", "prev", "sep5x5"), ("b0", "avg3x3", "b1", "identity"),
               ("b0", "sep3x3", "in", "max3x3")],
}


def decisions_of(cells: dict, N: int, F: int) -> dict:
    out = {"N": N, "F": F}
    for cell, blocks in cells.items():
        for j, (i1, o1, i2, o2) in enumerate(blocks):
            out.update({f"{cell}_b{j}_in1": i1, f"{cell}_b{j}_op1": o1,
                        f"{cell}_b{j}_in2": i2, f"{cell}_b{j}_op2": o2})
    return out


def op_expr(op: str, src: str, stride: int, fix: bool) -> str:
    """`op` applied to state `src` as a genotype expression, with F filters out.

    `fix`: `src` does not have F filters (the stem conv feeding the first stem cell), so a
    pool is followed by conv1x1+bn and identity becomes relu conv1x1 bn, as TensorFlow does.
    """
    s = f"/{stride}"
    if op == "identity":
        return src if stride == 1 and not fix else f"rcb(F, {stride}) <- {src}"
    if op.startswith("sep"):
        k = op[3]
        return f"branch(F, {k}, 2) <- {src}" if stride == 2 else f"branch(F, {k}) <- {src}"
    if op.startswith(("avg", "max")):
        k = op[3]
        pool = f"{'avgpool' if op.startswith('avg') else 'maxpool'}{k}x{k}{s}"
        if op.startswith("avg") and stride == 2:
            pool += " cip=cip2"
        return f"{pool}{' conv1x1 c=F bn' if fix else ''} <- {src}"
    if op == "conv1x1":
        return f"rcb(F, {stride}) <- {src}"
    if op == "conv3x3":
        return f"relu conv3x3{s} c=F bn <- {src}"
    if op == "dil3x3":
        return f"relu conv3x3{s} d=2 c=F bn <- {src}"
    if op in ("conv1x3_3x1", "conv1x7_7x1"):
        k = op[6]
        return f"relu conv1x{k}{s} c=F conv{k}x1 c=F bn <- {src}"
    raise ValueError(f"unknown op {op!r}")


def cell_text(name: str, blocks, reduction: bool, fix_prev: bool = False) -> str:
    """A generated cell `name(F) inputs 2`: five `b_j = add(op(x), op(y))` lines and the concat.

    The concat takes the unused states (the paper): blocks no other block consumed (a block
    read only through identity counts as unused, as in TensorFlow's NASNet-A), and a cell
    input no block reads, brought to the output size by a factorized reduction in a
    reduction cell (TensorFlow's _combine_unused_states). A normal cell also concatenates
    h_{i-1} = `prev` (TensorFlow's NASNet-A normal cell does).
    """
    consumed, read = set(), set()
    lines = []
    for j, (i1, o1, i2, o2) in enumerate(blocks):
        parts = []
        for src, op in ((i1, o1), (i2, o2)):
            original = src in ("in", "prev")
            stride = 2 if reduction and original else 1
            parts.append(op_expr(op, src, stride, fix_prev and src == "prev"))
            read.add(src)
            if src.startswith("b") and op != "identity":
                consumed.add(src)
        lines.append(f"  b{j} = add({parts[0]}, {parts[1]})")
    concat = [f"b{j}" for j in range(len(blocks)) if f"b{j}" not in consumed]
    unused_inputs = [x for x in ("prev", "in") if x not in read or (x == "prev" and not reduction)]
    concat = [f"freduce(F) <- {x}" if reduction else x for x in unused_inputs] + concat
    lines.append(f"  out = cat({', '.join(concat)})")
    return f"cell {name}(F) inputs 2:\n" + "\n".join(lines)


_HELPERS = """
# relu sepKxK/s bn relu sepKxK bn: TF's "separable_KxK_2" op
cell branch(c, k, s=1):
  out = relu sep/s c=c k=k bn relu sep c=c k=k bn <- in

# relu conv1x1 bn: fits a state to c filters
cell rcb(c, s=1):
  out = relu conv1x1/s c=c bn <- in

# factorized reduction of an h_{i-2} twice the size of h_{i-1}
cell freduce(c):
  a   = relu <- in
  p1  = avgpool1x1/2 p=0 conv1x1 c=c // 2 <- a
  p2  = pad l=-1 r=1 t=-1 b=1 avgpool1x1/2 p=0 conv1x1 c=c // 2 <- a
  out = bn <- cat(p1, p2)
"""

_WRAPPERS = """
cell nasnet_normal(F, red_prev=0) inputs 2:
  fr  = freduce(F) <- prev if red_prev else prev
  hp  = rcb(F) <- fr if 1 - red_prev else fr
  cur = rcb(F) <- in
  out = normal_cell(F, prev=hp) <- cur

cell nasnet_reduction(F) inputs 2:
  hp  = rcb(F) <- prev
  cur = rcb(F) <- in
  out = reduction_cell(F, prev=hp) <- cur
"""

_STEM_CELLS = """
cell nasnet_stem0(F):
  cur = rcb(F) <- in
  out = {stem0_cell}(F, prev=in) <- cur

cell nasnet_stem1(F) inputs 2:
  cur = rcb(F) <- in
  hp  = freduce(F) <- prev
  out = reduction_cell(F, prev=hp) <- cur
"""


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       canonical={"nasnet_a": decisions_of(NASNET_A, 4, 44)},
       width_decision="F", proxy_ignores=("F",))
def nasnet(t, net):
    """NASNet (Zoph et al. 2018): normal + reduction cells of 5 blocks, 13 ops; N and F."""
    N = t.choice("N", N_CHOICES)
    F = t.choice("F", F_CHOICES)
    cells = {}
    for cell in ("normal", "reduce"):
        blocks = []
        for j in range(B):
            states = ("in", "prev") + tuple(f"b{k}" for k in range(j))
            i1 = t.choice(f"{cell}_b{j}_in1", states)
            o1 = t.choice(f"{cell}_b{j}_op1", OPS)
            i2 = t.choice(f"{cell}_b{j}_in2", states)
            o2 = t.choice(f"{cell}_b{j}_op2", OPS)
            blocks.append((i1, o1, i2, o2))
        cells[cell] = blocks

    c, h, w = net.input
    parts = [_HELPERS, cell_text("normal_cell", cells["normal"], reduction=False),
             cell_text("reduction_cell", cells["reduce"], reduction=True), _WRAPPERS]
    if net.proxy:
        N, F = proxy_n(N), PROXY_F
    if net.large:
        # the first stem cell reads the raw stem conv as h_{i-1}: pools on it need a 1x1 to F/4 filters
        fix = any(src == "prev" and op.startswith(("avg", "max"))
                  for i1, o1, i2, o2 in cells["reduce"] for src, op in ((i1, o1), (i2, o2)))
        stem0 = "reduction_cell0" if fix else "reduction_cell"
        if fix:
            parts.append(cell_text("reduction_cell0", cells["reduce"], reduction=True, fix_prev=True))
        parts.append(_STEM_CELLS.format(stem0_cell=stem0))
        header = f"let F={F} N={N} stem=32 skip=-2 cip2=0"
        body = """
stem  conv3x3/2 c=stem p=0 bn
stem  nasnet_stem0(F // 4)
stem  nasnet_stem1(F // 2)
stage nasnet_normal(F, 1) x N rest(red_prev=0)
stage nasnet_reduction(2 * F)
stage nasnet_normal(2 * F, 1, prev=skip) x N rest(prev=-2, red_prev=0)
stage nasnet_reduction(4 * F)
stage nasnet_normal(4 * F, 1, prev=skip) x N rest(prev=-2, red_prev=0)
head  relu gap flatten fc c=classes
"""
    else:
        header = f"let F={F} N={N} cip2=0"
        body = """
stem  conv3x3/2 c=3 * F bn
stage nasnet_normal(F, 0, prev=-1) x N rest(prev=-2)
stage nasnet_reduction(2 * F)
stage nasnet_normal(2 * F, 1, prev=-2) x N rest(prev=-2, red_prev=0)
stage nasnet_reduction(4 * F)
stage nasnet_normal(4 * F, 1, prev=-2) x N rest(prev=-2, red_prev=0)
head  relu gap flatten fc c=classes
"""
    text = (f"net nasnet input {c}x{h}x{w} classes {net.classes}\n"
            "defaults avgpool.cip=0 avgpool.p=same bn.eps=0.001 conv.bias=0 maxpool.p=same "
            "sep.bias=0 sep.p=same\n" + header + "\n" + "\n".join(parts) + body)
    return nasty.parse(text, "searchspaces/nasnet.py")
