"""What the ops added for modern CNNs compute, each against an independent torch reference:
LayerNorm over channels (torchvision's LayerNorm2d), the learnable layer scale, softmax across
a group axis (timm's ResNeSt split attention at radix 4), subtraction, the per-position linear
layer (paired by port_weights with nn.Linear), and upsampling by a factor or to another node's
size (F.interpolate). Costs of all of them are proven in test_op_registry.py."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nasty
from nasty.genotype import GenotypeError, parse
from zoo_check import randomize_norms as randomize_bn

torch.manual_seed(0)


def build(text):
    g = parse(text)
    return g, nasty.build(g).eval()


def randomize_affine(model, seed=0):
    """Random affine parameters for every norm (LayerNorm starts at weight 1, bias 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    return randomize_bn(model, seed)


def test_ln_is_torchvision_layernorm2d_over_channels():
    from torchvision.models.convnext import LayerNorm2d
    g, m = build("net t input 8x5x6\nstem ln eps=1e-6\n")
    ref = randomize_affine(LayerNorm2d(8, eps=1e-6)).eval()
    assert nasty.port_weights(ref, m) == 2
    x = torch.randn(3, 8, 5, 6)
    assert torch.allclose(m(x), ref(x), atol=1e-6)
    assert m.stem.ln.eps == 1e-6
    # on a flat input: nn.LayerNorm over the features
    g, m = build("net t input 8x5x6\nstem gap flatten ln\n")
    ref = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), randomize_affine(nn.LayerNorm(8)))
    nasty.port_weights(ref, m)
    assert torch.allclose(m(x), ref(x), atol=1e-6)


def test_lscale_is_a_learnable_per_channel_scale_with_its_init_value():
    g, m = build("net t input 4x3x3\nstem lscale v=1e-6\n")
    (w,) = list(m.parameters())
    assert w.shape == (4, 1, 1) and torch.all(w == 1e-6) and w.requires_grad
    assert nasty.cost(g).params == 4
    with torch.no_grad():
        w.copy_(torch.arange(4.0).view(4, 1, 1))
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(m(x), x * torch.arange(4.0).view(1, 4, 1, 1))
    # `scale v=` stays the constant: no parameter
    g, m = build("net t input 4x3x3\nstem scale v=0.5\n")
    assert not list(m.parameters()) and nasty.cost(g).params == 0


SPLAT = """net splat input 16x8x8
cell splat(c, r, card, attn):
  x   = conv3x3 c=c * r g=card * r bias=0 bn relu <- in
  x0  = slice start=0 end=c <- x
  x1  = slice start=c end=2 * c <- x
  x2  = slice start=2 * c end=3 * c <- x
  x3  = slice start=3 * c end=4 * c <- x
  a   = gap conv1x1 c=attn g=card bn relu conv1x1 c=c * r g=card softmax r=r g=card <- add(x0, x1, x2, x3)
  a0  = slice start=0 end=c <- a
  a1  = slice start=c end=2 * c <- a
  a2  = slice start=2 * c end=3 * c <- a
  a3  = slice start=3 * c end=4 * c <- a
  out = add(mul(x0, a0), mul(x1, a1), mul(x2, a2), mul(x3, a3))
stage splat(16, 4, 2, 32)
"""


def test_softmax_over_a_group_axis_is_resnest_split_attention_at_radix_4():
    timm_layers = pytest.importorskip("timm.layers")
    ref = timm_layers.SplitAttn(16, 16, kernel_size=3, groups=2, radix=4, norm_layer=nn.BatchNorm2d)
    ref = randomize_bn(ref).eval()
    g, m = build(SPLAT)
    assert nasty.cost(g).params == sum(p.numel() for p in ref.parameters())
    nasty.port_weights(ref, m)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        want, got = ref(x), m(x)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # timm's RadixSoftmax itself, on the C x 1 x 1 logits it sees
    logits = torch.randn(2, 64, 1, 1)
    from nasty.layers import GroupSoftmax
    want = timm_layers.split_attn.RadixSoftmax(4, 2)(logits).view(2, -1, 1, 1)
    assert torch.allclose(GroupSoftmax(4, 2)(logits), want, atol=1e-6)


def test_softmax_without_r_is_softmax_over_channels():
    g, m = build("net t input 6x4x4\nstem softmax\n")
    x = torch.randn(2, 6, 4, 4)
    assert torch.allclose(m(x), F.softmax(x, dim=1), atol=1e-6)
    with pytest.raises(GenotypeError, match=r"softmax r=4 g=1: r \* g must divide the input's 6 channels"):
        nasty.cost(parse("net t input 6x4x4\nstem softmax r=4\n"))


def test_sub_is_a_minus_b():
    text = ("net t input 4x8x8\ncell hp:\n  low = avgpool3x3 s=1 p=1 cip=0 <- in\n"
            "  out = sub(in, low)\nstage hp\n")
    g, m = build(text)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(m(x), x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), atol=1e-6)
    assert nasty.cost(g).other_flops == 4 * 8 * 8
    with pytest.raises(GenotypeError, match=r"sub\(\.\.\.\) takes 2 operands, got 3"):
        nasty.cost(parse(text.replace("sub(in, low)", "sub(in, low, in)")))


def test_linear_at_every_position_pairs_with_nn_linear_on_channels_last():
    from torchvision.ops.misc import Permute
    ref = nn.Sequential(Permute([0, 2, 3, 1]), nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8),
                        Permute([0, 3, 1, 2])).eval()
    g, m = build("net t input 8x5x5\nstem linear c=32 gelu linear c=8\n")
    assert nasty.port_weights(ref, m) == 4
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    # written as conv1x1 it pairs the same way; on a flat input `linear` is fc
    _, m2 = build("net t input 8x5x5\nstem conv1x1 c=32 gelu conv1x1 c=8\n")
    nasty.port_weights(ref, m2)
    assert torch.allclose(m2(x), ref(x), atol=1e-5)
    _, flat = build("net t input 8x5x5\nstem gap flatten linear c=3\n")
    assert isinstance(flat.stem.linear, nn.Linear)


@pytest.mark.parametrize("mode, align", [("nearest", 0), ("bilinear", 0), ("bilinear", 1)])
def test_upsample_by_a_factor_is_interpolate(mode, align):
    g, m = build(f"net t input 3x5x7\nstem upsample f=3 mode={mode} align={align}\n")
    x = torch.randn(2, 3, 5, 7)
    kw = {} if mode == "nearest" else {"align_corners": bool(align)}
    assert torch.allclose(m(x), F.interpolate(x, scale_factor=3, mode=mode, **kw), atol=1e-6)
    assert nasty.cost(g).layers[0].output == (3, 15, 21)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_to_another_nodes_size_is_fpn_top_down(mode):
    text = (f"net t input 4x13x11\ndefaults upsample.mode={mode}\n"
            "cell fpn:\n  c4  = conv3x3/2 c=4 <- in\n  top = conv1x1 c=4 <- c4\n"
            "  out = add(in, upsample(top, in))\nstage fpn\n")
    g, m = build(text)
    c = nasty.cost(g)
    up = [l for l in c.layers if l.op == "upsample"][0]
    assert up.output == (4, 13, 11)
    x = torch.randn(2, 4, 13, 11)
    with torch.no_grad():
        top = m.stage1.top.conv(m.stage1.c4.conv(x))
        kw = {} if mode == "nearest" else {"align_corners": False}
        want = x + F.interpolate(top, size=(13, 11), mode=mode, **kw)
        assert torch.allclose(m(x), want, atol=1e-6)
