"""Hybrid space: MBConv stages, then attention stages (MobileViT / CoAtNet style), written with
nasty's public API like a user's own space.

Four stages of inverted-residual (MBConv) blocks, then two stages of pre-norm transformer blocks
over every position of the map (multi-head self-attention, then an MLP, each a residual branch
behind a LayerNorm over the channels). The decisions:
- per MBConv stage: kernel 3/5/7, expansion 1/3/6, squeeze-and-excitation on/off, 1-3 blocks, and
  the stage's width (two or three steps around EfficientNet-B0's);
- per attention stage: the embedding width, the heads (2/4/8; every width is a multiple of 8, so
  they divide it), the MLP ratio 2/3/4 and 1-4 blocks (1-3 in the second);
- one global width multiplier, the decision `--fit` scales.

The MBConv block is the mbconv space's (torchvision's EfficientNet block), except that the first
block of a stage never has a residual (the stage changes its width or stride there). Between the
convolutional and the attention part, and between the two attention stages, a 1x1 (then a 3x3/2)
conv + BN + SiLU sets the embedding width (in the cell of the stage's first block). Python writes each stage's cells with its decisions
filled in, so the text has no `if` guards.

TARGET: 224x224, 1000 classes; a 3x3/2 stem, MBConv stages at 112, 56, 28 and 14 positions a
side, attention over the 14x14 = 196 positions, then over 7x7 = 49, LayerNorm, global pooling,
dropout 0.2, a linear classifier; stochastic depth growing to 0.1. Members cost 0.06 to 2 GMACs
(200 random samples: median 0.45 G, two in three within 600M), so `--budget 600MFLOPs` cuts the
space rather than all or nothing of it.

PROXY: the same decisions at a quarter of the width on the small-image skeleton (the stem and the
third stage stride: 28 -> 14 -> 7 positions, attention over 7x7 then 4x4), at most two blocks per
stage, no dropout or stochastic depth.
"""
import nasty
from nasty.space import space

# (B0 width, stride at 224, proxy stride) of the four MBConv stages
CONV = [(16, 1, 1), (24, 2, 1), (40, 2, 2), (80, 2, 1)]      # the proxy: 28 -> 14 (stem) -> 7
WIDTHS = [(16, 24), (24, 32, 40), (40, 48, 64), (80, 96, 112)]
EMBED = [(96, 128, 160, 192), (192, 256, 320)]
DEPTH = [4, 3]
HEADS = (2, 4, 8)
MLP = (2, 3, 4)
WIDTH_MULTIPLIERS = (0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25, 1.5)


def _mbconv_cell(name, e, k, se, residual):
    """An MBConv cell with its kernel, expansion and SE written in: (c, stride, rate)."""
    x = "in"
    lines = [f"cell {name}(c, stride, rate):"]
    if e != 1:
        lines.append(f"  ex  = conv1x1 c=div(cin * {e}, 8) bn silu <- in")
        x = "ex"
    lines.append(f"  d   = dwconv/stride k={k} bn silu <- {x}")
    x = "d"
    if se:
        lines.append(f"  g   = gap conv1x1 c=max(1, cin // 4) bias=1 silu conv1x1 c=div(cin * {e}, 8) bias=1 sigmoid <- d")
        lines.append("  q   = mul(d, g)")
        x = "q"
    if residual:
        lines.append(f"  out = add(droppath p=rate <- conv1x1 c=c bn <- {x}, in)")
    else:
        lines.append(f"  out = conv1x1 c=c bn <- {x}")
    return "\n".join(lines)


TRANSFORMER = """cell {name}(rate):
  a   = add(in, ln attention heads={heads} droppath p=rate <- in)
  out = add(a, ln linear c={mlp} * cin gelu linear c=cin droppath p=rate <- a)"""


@space(target=dict(input=(3, 224, 224), classes=1000),
       proxy=dict(input=(1, 28, 28), classes=10),
       width_decision="width")
def hybrid(t, net):
    """MBConv stages then attention stages: kernel, expansion, SE, blocks, widths; heads, MLP ratio, embedding."""
    width = t.choice("width", WIDTH_MULTIPLIERS)
    conv, attn = [], []
    for i, ((_, stride, pstride), widths) in enumerate(zip(CONV, WIDTHS), 1):
        k = t.choice(f"s{i}_kernel", (3, 5, 7))
        e = t.choice(f"s{i}_expand", (1, 3, 6))
        se = t.choice(f"s{i}_se", (False, True))
        n = t.int(f"s{i}_blocks", 1, 3)
        c = t.choice(f"s{i}_width", widths)
        conv.append((k, e, se, n if net.target else min(n, 2), c, stride if net.large else pstride))
    for j, (embeds, depth) in enumerate(zip(EMBED, DEPTH), 1):
        emb = t.choice(f"a{j}_embed", embeds)
        heads = t.choice(f"a{j}_heads", HEADS)
        mlp = t.choice(f"a{j}_mlp", MLP)
        n = t.int(f"a{j}_blocks", 1, depth)
        attn.append((emb, heads, mlp, n if net.target else min(n, 2)))

    ch, h, w = net.input
    scale = width if net.target else width / 4
    drop, sd = (0.2, 0.1) if net.target else (0.0, 0.0)
    blocks = sum(s[3] for s in conv) + sum(s[3] for s in attn)
    cells, body = [], []
    rate = "sd * block / blocks"
    for i, (k, e, se, n, c, stride) in enumerate(conv, 1):
        cells.append(_mbconv_cell(f"s{i}_first", e, k, se, residual=False))
        body.append(f"stage s{i}_first(W({c}), {stride}, {rate})")
        if n > 1:
            cells.append(_mbconv_cell(f"s{i}", e, k, se, residual=True))
            body.append(f"stage s{i}(W({c}), 1, {rate}) x{n - 1}")
    for j, (emb, heads, mlp, n) in enumerate(attn, 1):
        cells.append(TRANSFORMER.format(name=f"a{j}", heads=heads, mlp=mlp))
        proj = f"conv1x1 c=W({emb}) bn silu" if j == 1 else f"conv3x3/2 c=W({emb}) bn silu"
        cells.append(f"cell a{j}_first(rate):\n  out = a{j}(rate) <- {proj} <- in")
        body.append(f"stage a{j}_first({rate})")
        if n > 1:
            body.append(f"stage a{j}({rate}) x{n - 1}")
    lines = [f"net hybrid input {ch}x{h}x{w} classes {net.classes}",
             "defaults conv.bias=0 dwconv.bias=0",
             f"scale depth=1.0 width={scale}",
             f"let drop={drop} sd={sd} blocks={blocks}",
             *cells,
             "stem  conv3x3/2 c=W(32) bn silu",
             *body,
             "head  ln gap flatten dropout p=drop fc c=classes"]
    return nasty.parse("\n".join(lines) + "\n", "searchspaces/hybrid.py")
