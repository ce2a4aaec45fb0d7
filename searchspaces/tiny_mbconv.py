"""The README's "Writing a search space" example: three MBConv stages whose kernel, expansion,
squeeze-and-excitation and depth are decided per stage, and one width.

What it shows:
- define-by-run decisions: `t.choice` for the width and each stage's kernel and expansion,
  `t.int` for each stage's depth;
- a conditional decision: `se{i}` is asked only when stage i expands (e > 1), so a stage without
  expansion has no such decision at all;
- target and proxy from the same decisions: the budget applies to the ImageNet network at
  3x224x224 with 1000 classes (a stride-2 stem), and what trains is the same network at
  1x28x28 with 10 classes (a stride-1 stem keeps the 28x28 images at full size);
- `width_decision="width"`: the decision `--fit` sets to the widest value within the budget.

Run it (a short search on Fashion-MNIST; the proxies train on the data at hand):

    nasty search --space searchspaces/tiny_mbconv.py --budget 300MFLOPs --trials 8

The code below this docstring is the README's example, copied exactly.
"""
import nasty
from nasty.space import space

CELLS = """
cell mb(k, e, c, s):
  x   = conv1x1 c=cin * e bn relu6 <- in
  y   = dwconv k=k s=s bn relu6 <- x
  out = conv1x1 c=c bn <- y
cell mbse(k, e, c, s):
  x   = conv1x1 c=cin * e bn relu6 <- in
  y   = dwconv k=k s=s bn relu6 <- x
  g   = gap conv1x1 c=max(1, cin // 4) relu conv1x1 c=cin * e sigmoid <- y
  out = conv1x1 c=c bn <- mul(y, g)
"""

@space(target=dict(input=(3, 224, 224), classes=1000),   # budgets apply here
       proxy=dict(input=(1, 28, 28), classes=10),        # this is trained (Fashion-MNIST)
       width_decision="width")                           # what --fit scales
def tiny_mbconv(t, net):
    """Three MBConv stages: kernel, expansion, SE and depth per stage."""
    width = t.choice("width", [16, 24, 32, 48])
    lines = [f"net tiny input {'x'.join(map(str, net.input))} classes {net.classes}",
             "defaults conv.bias=0", CELLS,
             f"stem conv3x3/{2 if net.target else 1} c={width} bn relu6"]  # the proxy keeps 28x28
    for i, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2)]):
        k = t.choice(f"k{i}", [3, 5, 7])
        e = t.choice(f"e{i}", [1, 3, 6])
        se = t.choice(f"se{i}", [False, True]) if e > 1 else False   # a conditional decision
        n = t.int(f"n{i}", 1, 3)
        cell = "mbse" if se else "mb"
        lines.append(f"stage {cell}({k}, {e}, {width * mult}, {stride}) x{n} rest(s=1)")
    lines.append("head conv1x1 c=256 bn relu6 gap flatten fc c=classes")
    return nasty.parse("\n".join(lines) + "\n")
