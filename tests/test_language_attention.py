"""What the attention ops compute, each against an independent torch reference: the multi-head
attention block against nn.MultiheadAttention (ViT), torchvision's shifted-window attention (Swin,
padding and masks included) and its V2 (cosine logits, continuous position bias), and MaxViT's
block and grid attention layers; the token, window and grid layouts; matmul, softmax and ln over
the last axis, GELU's two forms, GRN (timm's), Swin's patch merging, drop-path on tokens, and the
block written out by hand (docs/attention.md) equal to the sugar. Costs of every op are proven
against the compiled module in test_op_registry.py; the zoo's ViT, Swin and MaxViT prove them whole.
"""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nasty
from nasty.genotype import GenotypeError, parse
from zoo_check import count_macs, count_params, reinit_weights, randomize_norms

torch.manual_seed(0)


def build(text):
    g = parse(text)
    return g, nasty.build(g).eval()


def randomised(module, seed=0):
    """Every parameter random (torchvision zero-initialises some: ViT's head, Swin's biases)."""
    return randomize_norms(reinit_weights(module, seed), seed).eval()


class ChannelsLast(nn.Module):
    """A reference on N x H x W x C (torchvision's Swin), applied to an N x C x H x W map."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# ------------------------------------------------------------------ the attention block
class SelfAttention(nn.Module):
    """nn.MultiheadAttention (as torchvision's ViT uses it) on the positions of an N x C x H x W map."""

    def __init__(self, c, heads):
        super().__init__()
        self.mha = nn.MultiheadAttention(c, heads, batch_first=True)

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)                      # N x HW x C, as torchvision holds tokens
        return self.mha(t, t, t, need_weights=False)[0].transpose(1, 2).reshape(n, c, h, w)


def test_attention_over_tokens_is_multihead_attention():
    C, N, heads = 12, 7, 3
    ref = randomised(SelfAttention(C, heads))
    g, m = build(f"net t input {C}x1x{N}\nstem attention heads={heads}\n")
    assert nasty.port_weights(ref, m) == 4
    x = torch.randn(2, C, 1, N)
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    # on a map: the same attention over all H*W positions, and the map back
    g2, m2 = build(f"net t input {C}x3x4\nstem attention heads={heads}\n")
    nasty.port_weights(ref, m2)
    x2 = torch.randn(2, C, 3, 4)
    assert torch.allclose(m2(x2), ref(x2), atol=1e-5)
    # the cost counts both matrix products: q k^T and attention x values
    c = nasty.cost(g)
    d = C // heads
    assert c.macs == N * C * 3 * C + 2 * heads * N * N * d + N * C * C
    assert c.macs == count_macs(m, g.input) and c.params == count_params(ref) == count_params(m)


@pytest.mark.parametrize("size, window, shift", [(8, 4, 2), (9, 4, 2), (7, 4, 2), (5, 7, 3), (6, 3, 0)])
def test_window_attention_is_torchvision_shifted_window_attention(size, window, shift):
    from torchvision.models.swin_transformer import ShiftedWindowAttention
    C, heads = 8, 2
    ref = randomised(ChannelsLast(ShiftedWindowAttention(C, [window, window], [shift, shift], heads)))
    g, m = build(f"net t input {C}x{size}x{size}\nstem attention heads={heads} win={window} shift={shift} rel=1\n")
    assert nasty.port_weights(ref, m) == 6                    # qkv, proj (weight, bias), table, index
    x = torch.randn(2, C, size, size)
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    assert torch.equal(m.stem.attention.bias.index.flatten(), ref.inner.relative_position_index.flatten())
    steps = [st.kind for st in nasty.genotype.elaborate(g).steps]
    shifted = shift and window < -(-size // window) * window          # torchvision's rule
    assert ("shift_mask" in steps) == bool(shifted)


@pytest.mark.parametrize("size, shift", [(8, 2), (6, 2), (4, 0)])
def test_cosine_window_attention_is_torchvision_v2(size, shift):
    from torchvision.models.swin_transformer import ShiftedWindowAttentionV2
    C, heads, window = 8, 2, 4
    ref = randomised(ChannelsLast(ShiftedWindowAttentionV2(C, [window, window], [shift, shift], heads)))
    text = (f"net t input {C}x{size}x{size}\n"
            f"stem attention heads={heads} win={window} shift={shift} cpb=1 cos=1 kbias=0\n")
    g, m = build(text)
    nasty.port_weights(ref, m)
    x = torch.randn(2, C, size, size)
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    cpb = m.stem.attention.bias
    assert torch.equal(cpb.coords, ShiftedWindowAttentionV2(C, [window] * 2, [shift] * 2, heads).relative_coords_table)
    # the keys' bias never acts (torchvision zeroes it in forward): changing it changes nothing
    with torch.no_grad():
        m.stem.attention.qkv.bias[C:2 * C] += 1.0
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    # the MLP runs on the (2w-1)^2 offsets once per forward pass, so FlopCounterMode counts it
    c = nasty.cost(g)
    assert c.macs == count_macs(m, g.input) == count_macs(ref, g.input)


@pytest.mark.parametrize("kind", ["window", "grid"])
def test_maxvit_partition_attention_layers(kind):
    from torchvision.models.maxvit import PartitionAttentionLayer
    C, head_dim, p, size = 16, 8, 3, 6
    ref = PartitionAttentionLayer(C, head_dim, p, kind, (size, size), 4, nn.GELU, nn.LayerNorm, 0.0, 0.0, 0.0)
    ref = randomised(ref)
    text = f"""net t input {C}x{size}x{size}
cell part:
  a   = add(in, ln attention heads={C // head_dim} {'win' if kind == 'window' else 'grid'}={p} rel=1 sd={C} <- in)
  out = add(a, ln linear c={4 * C} gelu linear c={C} <- a)
stage part
"""
    g, m = build(text)
    nasty.port_weights(ref, m)
    x = torch.randn(2, C, size, size)
    assert torch.allclose(m(x), ref(x), atol=1e-5)


def test_relative_position_index_is_swin_s_and_maxvit_s():
    from torchvision.models.maxvit import _get_relative_position_index
    from torchvision.models.swin_transformer import ShiftedWindowAttention
    from nasty.layers import relative_position_index
    for s in (1, 2, 5, 7):
        assert torch.equal(relative_position_index(s), _get_relative_position_index(s, s))
        swa = ShiftedWindowAttention(4, [s, s], [0, 0], 1)
        assert torch.equal(relative_position_index(s).flatten(), swa.relative_position_index)


# ------------------------------------------------------------------ layouts
def test_tokens_windows_and_grids_are_the_references_layouts():
    from torchvision.models.maxvit import SwapAxes, WindowDepartition, WindowPartition
    x = torch.randn(2, 5, 6, 9)
    _, m = build("net t input 5x6x9\nstem tokens\n")
    assert torch.equal(m(x)[:, :, 0], x.reshape(2, 5, 54))                        # ViT's reshape
    _, m = build("net t input 5x6x9\nstem tokens untokens h=6\n")
    assert torch.equal(m(x), x)
    _, m = build("net t input 5x6x9\nstem window s=3\n")
    want = WindowPartition()(x, 3)                                                  # N x G x P x C
    assert torch.equal(m(x), want.permute(0, 3, 1, 2))
    # MaxViT's grid of 3x3 tokens on a 6x6 map: windows of p = 6 // 3 = 2, then the axes swapped
    grid = SwapAxes(-2, -3)(WindowPartition()(x[..., :6], 2))
    _, m6 = build("net t input 5x6x6\nstem grid s=3\n")
    assert torch.equal(m6(x[..., :6]), grid.permute(0, 3, 1, 2))
    _, back = build("net t input 5x6x6\nstem grid s=3 ungrid s=3 h=6 w=6\n")
    assert torch.equal(back(x[..., :6]), WindowDepartition()(SwapAxes(-2, -3)(grid), 2, 3, 3))
    for text in ("window s=4 unwindow s=4 h=6 w=9", "window s=4 shift=2 unwindow s=4 shift=2 h=6 w=9",
                 "grid s=3 ungrid s=3 h=6 w=9", "roll dy=2 dx=-3 roll dy=-2 dx=3",
                 "split_heads heads=5 merge_heads heads=5", "transpose transpose"):
        _, m = build(f"net t input 5x6x9\nstem {text}\n")
        assert torch.equal(m(x), x), text


def test_class_token_position_embedding_and_token():
    _, m = build("net t input 4x2x3\nstem tokens clstoken posembed token i=0\n")
    cls, pos = m.stem.clstoken.token, m.stem.posembed.weight
    assert cls.shape == (1, 1, 4) and pos.shape == (1, 7, 4)                     # torchvision's shapes
    with torch.no_grad():
        cls.normal_()
    x = torch.randn(2, 4, 2, 3)
    assert torch.allclose(m(x)[:, :, 0, 0], (cls[0, 0] + pos[0, 0]).expand(2, 4))


def test_matmul_multiplies_matrix_by_matrix():
    text = "net t input 4x5x3\ncell mm:\n  out = matmul(in, transpose <- in)\nstage mm\n"
    g, m = build(text)
    x = torch.randn(2, 4, 5, 3)
    assert torch.allclose(m(x), x @ x.transpose(-1, -2), atol=1e-6)
    assert nasty.cost(g).macs == 4 * 5 * 3 * 5 == count_macs(m, g.input)
    with pytest.raises(GenotypeError, match=r"matmul\(a, b\) multiplies .* got 4x5x3, 4x5x3; transpose one"):
        nasty.cost(parse(text.replace("transpose <- in", "in")))


def test_softmax_and_layernorm_over_the_last_axis():
    x = torch.randn(2, 3, 4, 5)
    _, m = build("net t input 3x4x5\nstem softmax axis=-1\n")
    assert torch.allclose(m(x), F.softmax(x, -1))
    _, m = build("net t input 3x4x5\nstem softmax axis=2\n")
    assert torch.allclose(m(x), F.softmax(x, 2))
    g, m = build("net t input 3x4x5\nstem ln axis=-1 eps=1e-6\n")
    ref = randomised(nn.LayerNorm(5, eps=1e-6))
    assert nasty.port_weights(ref, m) == 2 and nasty.cost(g).params == 10
    assert torch.allclose(m(x), ref(x), atol=1e-6)
    with pytest.raises(GenotypeError, match="softmax axis=-1: r= and g= split the channels"):
        nasty.cost(parse("net t input 4x4x4\nstem softmax axis=-1 r=2\n"))


def test_gelu_exact_and_tanh():
    x = torch.randn(1000) * 3
    _, exact = build("net t input 1x10x100\nstem gelu\n")
    _, tanh = build("net t input 1x10x100\nstem gelu_tanh\n")
    x = x.reshape(1, 1, 10, 100)
    assert torch.equal(exact(x), F.gelu(x)) and torch.equal(tanh(x), F.gelu(x, approximate="tanh"))
    assert not torch.equal(exact(x), tanh(x))
    _, act = build("net t input 1x10x100\nstem act fn=gelu_tanh\n")
    assert torch.equal(act(x), tanh(x))


def test_grn_is_timm_s_global_response_norm():
    from timm.layers.grn import GlobalResponseNorm
    ref = GlobalResponseNorm(6, eps=1e-6, channels_last=False)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    g, m = build("net t input 6x5x4\nstem grn\n")
    assert nasty.port_weights(ref, m) == 2 and nasty.cost(g).params == 12
    x = torch.randn(2, 6, 5, 4)
    assert torch.allclose(m(x), ref(x), atol=1e-5)


def test_patchmerge_is_swin_s_patch_merging():
    from torchvision.models.swin_transformer import PatchMerging
    for h, w in ((6, 8), (7, 5)):                     # odd sizes are zero-padded
        ref = randomised(ChannelsLast(PatchMerging(4)))
        _, m = build(f"net t input 4x{h}x{w}\nstem patchmerge ln linear c=8 bias=0\n")
        nasty.port_weights(ref, m)
        x = torch.randn(2, 4, h, w)
        assert torch.allclose(m(x), ref(x), atol=1e-5)


def test_droppath_on_tokens_drops_whole_samples():
    _, m = build("net t input 8x1x50\nstem droppath p=0.5\n")
    m.train()
    x = torch.ones(64, 8, 1, 50)
    y = m(x)
    kept = (y != 0).flatten(1)
    assert torch.all(kept.all(1) | ~kept.any(1))         # each sample is kept or dropped whole
    assert 0 < kept.all(1).sum() < 64
    m.eval()
    assert torch.equal(m(x), x)


# ------------------------------------------------------------------ the block written out
DOC = Path(__file__).parent.parent / "docs" / "attention.md"


def _written_out():
    text = DOC.read_text()
    return re.search(r"<!-- written out -->\n```nasty\n(.*?)```", text, re.S).group(1)


def test_the_block_written_out_is_the_sugar():
    text = _written_out()
    hand = parse(text)
    cell = re.search(r"cell swin_attention:\n(  .*\n)+", text).group(0)
    sugar = parse(text.replace(cell, "").replace("stage swin_attention", "stage attention heads=4 win=4 shift=2 rel=1"))
    assert nasty.cost(hand).params == nasty.cost(sugar).params
    assert nasty.cost(hand).macs == nasty.cost(sugar).macs
    mh, ms = nasty.build(hand).eval(), nasty.build(sugar).eval()
    ms.load_state_dict(dict(zip(ms.state_dict(), mh.state_dict().values())))
    x = torch.randn(2, *hand.input)
    assert torch.allclose(mh(x), ms(x), atol=1e-6)


def test_attention_errors_say_what_to_do():
    for attrs, msg in [("heads=5", "attention heads=5 must divide the input's 8 channels"),
                       ("heads=2 shift=1", "shift= shifts windows: give win= too"),
                       ("heads=2 rel=1", "bias positions within a square window: give win= or grid="),
                       ("heads=2 win=2 grid=2", "give win= .* or grid= .*, not both"),
                       ("heads=2 grid=3", "grid s=3 needs a map whose height and width s divides")]:
        with pytest.raises(GenotypeError, match=msg):
            nasty.cost(parse(f"net t input 8x4x4\nstem attention {attrs}\n"))


# ------------------------------------------------------------------ port_weights on transformers
TINY_VIT = """net tiny input 3x32x32 classes 3
defaults ln.eps=1e-6
cell encoder:
  a   = add(ln attention heads=2 <- in, in)
  out = add(ln linear c=16 gelu linear c=8 <- a, a)
stem  patchembed p=8 c=8 clstoken posembed
stage encoder x 2
head  ln token flatten fc c=classes
"""


def test_port_weights_pairs_a_vit_s_tokens_and_packed_projections():
    """torchvision's ViT keeps its class token on the model and its position embedding on the
    encoder (their first use, not their owner, places them), and MultiheadAttention packs q, k,
    v into one in_proj and calls its out_proj functionally: all pair, and a missing layer is named."""
    from torchvision.models import VisionTransformer
    ref = randomised(VisionTransformer(32, 8, 2, 2, 8, 16, num_classes=3))
    g, m = build(TINY_VIT)
    assert nasty.port_weights(ref, m) == len(m.state_dict()) == len(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(m(x), ref(x), atol=1e-5)
    _, no_pos = build(TINY_VIT.replace(" posembed", ""))
    with pytest.raises(nasty.NastyError, match=r"the source has 1 more layer\(s\), the first encoder.pos_embedding "
                                               r"\(param 1x17x8\)") as e:
        nasty.port_weights(ref, no_pos)
    assert "\n" not in str(e.value)
