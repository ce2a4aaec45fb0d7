"""A space whose proxy is not the target made small, and whose decisions depend on each other.

What it shows:
- conditional decisions: each stage chooses a plain conv block or an inverted-residual
  (MBConv) block, and only an MBConv stage asks for its expansion and for squeeze-and-
  excitation: a plain stage has no `expand{i}` or `se{i}` decision at all, so no controller
  spends samples on values that would change nothing;
- a custom proxy, built from the same decisions by its own rules (`net.proxy`): the target
  is a mobile network at 3x224x224 with 1000 classes, a stride-2 stem and `width` channels;
  the proxy keeps every block, kernel and depth but has a stride-1 stem (28x28 images are
  small already) and a fixed width of PROXY_WIDTH channels, so each trial trains in the same
  short time whatever the budget;
- `proxy_ignores=("width",)` says so: the proxy cannot see `width`, so a search with a budget
  sets it by budget fitting (`--fit`, on by default here: each sample gets the widest width
  within the budget) instead of leaving it to the controller as noise. `width_decision`
  names the decision `--fit` sets.

Run it (targets from 22M to 1.0G multiply-adds, the smallest member to the largest):

    nasty search --space searchspaces/custom_proxy.py --budget 150MFLOPs --trials 12
"""
import nasty
from nasty.space import space

WIDTHS = (16, 24, 32, 40, 48)
PROXY_WIDTH = 8                       # the proxy's first-stage channels, whatever `width` is
STAGES = ((1, 2), (2, 2), (4, 2))     # per stage: channels as a multiple of the width, stride

CELLS = """
cell plain(k, c, s):
  out = conv k=k s=s c=c bn relu <- in

cell mbconv(k, e, c, s, se):
  x   = conv1x1 c=cin * e bn relu6 <- in
  y   = dwconv k=k s=s bn relu6 <- x
  g   = gap conv1x1 c=max(1, cin // 4) relu conv1x1 c=cin * e sigmoid <- y   if se else none
  p   = conv1x1 c=c bn <- mul(y, g)
  out = add(p, in) if s == 1 and c == cin else p
"""


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       width_decision="width", proxy_ignores=("width",))
def custom_proxy(t, net):
    """Per stage a plain conv or an MBConv block (expansion and SE asked only for MBConv), kernel, depth."""
    width = t.choice("width", WIDTHS)
    stages = []
    for i, (mult, stride) in enumerate(STAGES):
        block = t.choice(f"block{i}", ["plain", "mbconv"])
        k = t.choice(f"k{i}", [3, 5])
        n = t.int(f"n{i}", 1, 3)
        if block == "mbconv":                                  # conditional decisions
            e = t.choice(f"expand{i}", [2, 4, 6])
            se = t.choice(f"se{i}", [False, True])
            stages.append((f"mbconv({k}, {e}, {{c}}, {stride}, {int(se)})", mult, n))
        else:
            stages.append((f"plain({k}, {{c}}, {stride})", mult, n))

    c, h, w = net.input
    if net.target:                    # the network the budget is about
        base, stem = width, f"conv3x3/2 c={width} bn relu"
    else:                             # the proxy: the same blocks, narrow, at full resolution
        base, stem = PROXY_WIDTH, f"conv3x3 c={PROXY_WIDTH} bn relu"
    lines = [f"net custom_proxy input {c}x{h}x{w} classes {net.classes}",
             "defaults conv.bias=0", CELLS, f"stem  {stem}"]
    for call, mult, n in stages:      # the first block of a stage strides, the rest keep the shape
        lines.append(f"stage {call.format(c=base * mult)} x{n} rest(s=1)")
    lines.append("head  conv1x1 c=128 bn relu gap flatten fc c=classes")
    return nasty.parse("\n".join(lines) + "\n", "searchspaces/custom_proxy.py")
