"""MBConv space, MnasNet/EfficientNet style, written with nasty's public API like a user's own space.

Seven stages of inverted-residual (MBConv) blocks on EfficientNet-B0's skeleton. Per stage:
kernel 3/5/7, expansion 1/3/6, squeeze-and-excitation on/off, layer count 1-4 and the
stage's width (B0's, or a step narrower or wider); and one global width multiplier, the
decision `--fit` scales. The block is torchvision's MBConv, as the zoo's EfficientNet
genotype writes it: 1x1 expand (skipped for e=1) + BN + SiLU, kxk depthwise + BN + SiLU,
SE (squeeze to a quarter of the block input, SiLU, sigmoid gate), linear 1x1 projection +
BN, and stochastic depth + the identity residual where the shape allows.

TARGET: 224x224, 1000 classes, B0's strides (2 in the stem and stages 2, 3, 4, 6), a 1x1
head conv to 1280 (4 x W(320)). EfficientNet-B0 is a point (Space.canonical
["efficientnet_b0"]) and costs exactly what the zoo's `efficientnet_b0` costs.

PROXY: the same blocks at a quarter of the width, strided only twice after the stem
(28x28 -> 14 -> 7 -> 4), at most two layers per stage, no dropout or stochastic depth.

The skeleton follows the input size (NetSpec.large: the ImageNet one from 128 px a side, the small-image
one below) and the sizes follow `net.proxy`, so `--target data` budgets a full-size network at the data's
own resolution.
"""
import nasty
from nasty.space import space

# (B0 expansion, B0 width, B0 kernel, stride, B0 layers) per stage, torchvision's table
B0 = [(1, 16, 3, 1, 1), (6, 24, 3, 2, 2), (6, 40, 5, 2, 2), (6, 80, 3, 2, 3),
      (6, 112, 5, 1, 3), (6, 192, 5, 2, 4), (6, 320, 3, 1, 1)]
PROXY_STRIDES = (1, 1, 2, 1, 1, 2, 1)
WIDTH_STEPS = (0.75, 1.0, 1.25)
WIDTH_MULTIPLIERS = (0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25, 1.5, 1.75, 2.0)


def stage_widths(base: int) -> tuple:
    return tuple(sorted({max(8, int(base * f + 4) // 8 * 8) for f in WIDTH_STEPS}))


def b0_decisions() -> dict:
    d = {"width": 1.0}
    for i, (e, c, k, _, n) in enumerate(B0, 1):
        d.update({f"s{i}_kernel": k, f"s{i}_expand": e, f"s{i}_se": True, f"s{i}_layers": n, f"s{i}_width": c})
    return d


CELL = """
cell mbconv(e, c, k, stride, rate, se):
  ex  = conv1x1 c=div(cin * e, 8) bn silu <- in                             if ne(e, 1) else in
  d   = dwconv/stride k=k bn silu <- ex
  g   = gap conv1x1 c=max(1, cin // 4) bias=1 silu conv1x1 c=div(cin * e, 8) bias=1 sigmoid <- d if se else d
  q   = mul(d, g)                                                           if se else d
  p   = conv1x1 c=c bn <- q
  out = add(droppath p=rate <- p, in)                                       if eq(stride, 1) * eq(c, cin) else p
"""


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       canonical={"efficientnet_b0": b0_decisions()},
       width_decision="width")
def mbconv(t, net):
    """MnasNet/EfficientNet-style MBConv stages: kernel, expansion, SE, layers, width per stage."""
    width = t.choice("width", WIDTH_MULTIPLIERS)
    stages = []
    for i, (_, base, _, stride, _) in enumerate(B0, 1):
        k = t.choice(f"s{i}_kernel", (3, 5, 7))
        e = t.choice(f"s{i}_expand", (1, 3, 6))
        se = t.choice(f"s{i}_se", (False, True))
        n = t.int(f"s{i}_layers", 1, 4)
        c = t.choice(f"s{i}_width", stage_widths(base))
        stages.append((e, c, k, stride if net.large else PROXY_STRIDES[i - 1], n if net.target else min(n, 2), se))

    ch, h, w = net.input
    scale = width if net.target else width / 4
    drop, sd = (0.2, 0.2) if net.target else (0.0, 0.0)
    lines = [f"net mbconv input {ch}x{h}x{w} classes {net.classes}",
             "defaults conv.bias=0 dwconv.bias=0",
             f"scale depth=1.0 width={scale}",
             f"let drop={drop} sd={sd} blocks={sum(s[4] for s in stages)}",
             CELL,
             "stem  conv3x3/2 c=W(32) bn silu"]
    for e, c, k, stride, n, se in stages:
        line = f"stage mbconv({e}, W({c}), {k}, {stride}, sd * block / blocks, {int(se)}) x{n}"
        lines.append(line + (" rest(stride=1)" if stride != 1 and n > 1 else ""))
    lines.append("head  conv1x1 c=4 * W(320) bn silu gap flatten dropout p=drop fc c=classes")
    return nasty.parse("\n".join(lines) + "\n", "searchspaces/mbconv.py")
