"""A cell space small enough to see whole: two nodes, each picks one of two ops. The tutorial's space.

What it shows:
- a cell written as genotype text (docs/language.md) with the decisions filled in:
  node `a` applies op_a to the cell's input, node `b` applies op_b to the input or to `a`
  (b_input), and the cell adds them;
- two op choices, a 3x3 convolution or a 3x3 separable convolution (cheaper: a depthwise 3x3
  then a 1x1), so every decision moves the cost and the accuracy;
- a macro skeleton of two stages (the cell repeated `cells` times, then a 2x2 max pool, then
  the cell again at twice the width);
- target = proxy: the budget applies to the very network that trains on Fashion-MNIST
  (1x28x28, 10 classes), so a budget here is the cost of what you train.

Five decisions, 3 x 2 x 2 x 2 x 2 = 48 choices and 42 different networks (with both nodes
reading the input, swapping their two ops changes nothing), small and quick to train on a CPU:
a search of a dozen trials sees about a quarter of the space. Run it:

    nasty search --space searchspaces/two_op_cell.py --budget 10MFLOPs --trials 12

The run draws the winner's cell into runs/NAME/plots/ (shown in its report.html);
`nasty draw runs/NAME/best.nasty` draws it again.
"""
import nasty
from nasty.space import space

OPS = {"conv": "conv3x3 c=c bn relu",      # a 3x3 convolution: 9 * cin * c multiply-adds per pixel
       "sep": "sep3x3 c=c bn relu"}        # separable: 9 * cin + cin * c, far cheaper at this width


@space(target=dict(input=(1, 28, 28), classes=10),
       proxy=dict(input=(1, 28, 28), classes=10),
       width_decision="width")
def two_op_cell(t, net):
    """A two-node cell, each node one of two ops (conv 3x3 or sep 3x3); width and cells per stage."""
    width = t.choice("width", [8, 16, 24])
    op_a = t.choice("op_a", list(OPS))
    op_b = t.choice("op_b", list(OPS))
    b_input = t.choice("b_input", ["in", "a"])
    cells = t.int("cells", 1, 2)
    c, h, w = net.input
    return nasty.parse(f"""net two_op_cell input {c}x{h}x{w} classes {net.classes}
defaults conv.bias=0 sep.bias=0

cell cell(c):
  a   = {OPS[op_a]} <- in
  b   = {OPS[op_b]} <- {b_input}
  out = add(a, b)

stem  conv3x3 c={width} bn relu
stage cell({width}) x{cells}
stage maxpool2x2
stage cell({2 * width}) x{cells}
head  gap flatten fc c=classes
""", "searchspaces/two_op_cell.py")
