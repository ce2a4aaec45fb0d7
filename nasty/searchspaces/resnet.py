"""ResNet space: block type, depth per stage, width, groups (cardinality), squeeze-excitation.

Written with nasty's public API, like a user's own space file. ResNet-50 is a point
of the space (Space.canonical["resnet50"]) and its target costs exactly what the
zoo's `resnet50` (= torchvision's) costs; ResNeXt-50 32x4d and ResNet-34 are points too.

Target: the ImageNet skeleton of He et al. (7x7/2 stem, 3x3/2 max pool, four stages
at strides 4, 8, 16, 32) at 224x224 with 1000 classes. Proxy: the same blocks and
depths at a quarter of the width after a 3x3/2 stem, for small images such as 28x28.

The skeleton follows the input size (NetSpec.large: the ImageNet one from 128 px a side, the small-image
one below) and the sizes follow `net.proxy`, so `--target data` budgets a full-size network at the data's
own resolution.
"""
import nasty
from nasty.space import space

BLOCKS = ("basic", "bottleneck", "preact")
WIDTHS = (32, 48, 64, 80, 96, 128)          # first-stage planes; the stages use w, 2w, 4w, 8w
GROUPS = (1, 2, 4, 8, 16, 32)


def block_cell(block: str, se: bool) -> str:
    """The residual block as a genotype cell `block(planes, stride)`."""
    mid = "max(1, planes * gw // 64) * groups"   # torchvision: int(planes * width_per_group / 64) * groups
    out = "planes" if block == "basic" else "planes * 4"
    if block == "basic":                     # torchvision's BasicBlock
        nodes = [("a", "conv3x3/stride c=planes bn relu <- in"),
                 ("b", "conv3x3 c=planes bn <- a")]
    elif block == "bottleneck":              # torchvision's Bottleneck: stride on the 3x3 ("v1.5")
        nodes = [("a", f"conv1x1 c={mid} bn relu <- in"),
                 ("b", f"conv3x3/stride c={mid} g=groups bn relu <- a"),
                 ("c", f"conv1x1 c={out} bn <- b")]
    else:                                    # pre-activation bottleneck (He et al. 2016b, "ResNet v2")
        nodes = [("a", f"bn relu conv1x1 c={mid} <- in"),
                 ("b", f"bn relu conv3x3/stride c={mid} g=groups <- a"),
                 ("c", f"bn relu conv1x1 c={out} <- b")]
    last = nodes[-1][0]
    if se:                                   # squeeze-and-excitation (Hu et al. 2018), squeeze to 1/16
        nodes.append(("se", f"mul({last}, gap conv1x1 c=max(8, {out} // 16) bias=1 relu "
                            f"conv1x1 c={out} bias=1 sigmoid <- {last})"))
        last = "se"
    if block == "preact":
        nodes.append(("out", f"add({last}, shortcut c={out} s=stride bn=0 <- in)"))
    else:
        nodes.append(("out", f"relu <- add({last}, shortcut c={out} s=stride <- in)"))
    return "cell block(planes, stride=1):\n" + "\n".join(f"  {n} = {e}" for n, e in nodes)


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       canonical={"resnet50": dict(block="bottleneck", d1=3, d2=4, d3=6, d4=3, width=64, groups=1, se=False),
                  "resnext50_32x4d": dict(block="bottleneck", d1=3, d2=4, d3=6, d4=3, width=64, groups=32,
                                          group_width=4, se=False),
                  "resnet34": dict(block="basic", d1=3, d2=4, d3=6, d4=3, width=64, se=False)},
       width_decision="width")
def resnet(t, net):
    """ResNet family: basic/bottleneck/pre-activation blocks, depth per stage, width, groups, SE."""
    block = t.choice("block", BLOCKS)
    depths = [t.int(f"d{i}", 1, 8) for i in (1, 2, 3, 4)]
    width = t.choice("width", WIDTHS)
    groups, gw = 1, 64
    if block != "basic":                     # torchvision's BasicBlock has no groups
        groups = t.choice("groups", GROUPS)
        if groups > 1:                       # channels per group at planes=64 (ResNeXt's "4d")
            gw = t.choice("group_width", (4, 8, 16, 32))
    se = t.choice("se", (False, True))

    c, h, w = net.input
    width_ = width if net.target else max(8, width // 4)
    stem = f"conv7x7/2 c={width_} bn relu maxpool3x3/2 p=1" if net.large else f"conv3x3/2 c={width_} bn relu"
    head = ("bn relu " if block == "preact" else "") + "gap flatten fc c=classes"
    text = f"""net resnet_{block} input {c}x{h}x{w} classes {net.classes}
defaults conv.bias=0
let groups={groups} gw={gw}

{block_cell(block, se)}

stem  {stem}
stage block({width_}) x{depths[0]}
stage block({2 * width_}, 2) x{depths[1]} rest(stride=1)
stage block({4 * width_}, 2) x{depths[2]} rest(stride=1)
stage block({8 * width_}, 2) x{depths[3]} rest(stride=1)
head  {head}
"""
    return nasty.parse(text, "searchspaces/resnet.py")
