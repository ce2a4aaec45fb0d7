"""ConvNeXt-T/S/B/L (convnext.nasty): one genotype with a `let` table (widths, depths, the
stochastic-depth rate), each equal to torchvision 0.29's convnext_*: params and MACs at the
native 224x224 (counted on the meta device), eval logits within 1e-4 after port_weights with
the reference's normalisation layers AND layer scales randomised first (at initialisation a
layer scale of 1e-6 would hide every residual branch), and the settings logits cannot see
(LayerNorm eps, per-block stochastic-depth rates, layer-scale init). ConvNeXt-T's logits are
checked at 224x224; S, B and L's at 32x32 to keep CI fast (every layer still runs, down to
1x1 in the last stage: 32 -> 8 -> 4 -> 2 -> 1)."""
import pytest
import torch
from torch import nn

import nasty
from nasty.layers import DropPath, LayerScale
from nasty.weights import execution_order
from zoo_check import check_against_reference

NAMES = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]
# torchvision's own figures for its weights: num_params, GFLOPS
TORCHVISION = {"convnext_tiny": (28_589_128, 4.456), "convnext_small": (50_223_688, 8.684),
               "convnext_base": (88_591_464, 15.355), "convnext_large": (197_767_336, 34.361)}


def random_reference(name: str, seed: int = 0) -> nn.Module:
    """torchvision's model with every parameter random: weights as torchvision initialises them
    (std 0.02), LayerNorm affine parameters around 1 and 0, layer scales around 1 (at their init
    value, 1e-6, every residual branch would vanish from the logits). Built on the meta device and
    filled here, because torchvision's own initialisation of ConvNeXt-L costs seconds."""
    with torch.device("meta"):
        ref = nasty.zoo.reference(name)
    ref = ref.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in ref.named_parameters():
            if pname.endswith("layer_scale"):
                p.uniform_(0.5, 1.5, generator=gen)
            else:                               # std 0.02, drawn in place (cheap for 198M values)
                p.uniform_(-0.0346, 0.0346, generator=gen)
        for m in ref.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.2, 0.2, generator=gen)
    assert not list(ref.buffers())         # nothing left uninitialised (ConvNeXt has no BN)
    return ref.eval()


def check_logits(name, input=None, atol=1e-4):
    g = nasty.zoo.get(name)
    if input is not None:
        g = g.with_header(input=tuple(input))
    ref = random_reference(name)
    with torch.device("meta"):
        model = nasty.build(g)
    model = model.to_empty(device="cpu").eval()
    assert nasty.port_weights(ref, model, tuple(g.input)) == len(list(model.parameters()))
    x = torch.randn((2,) + tuple(g.input), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), model(x)
    diff = (got - want).abs().max().item()
    assert want.abs().max().item() > 0.1, "reference logits near zero: the check would be empty"
    assert diff <= atol, f"{name}: logits differ by {diff}"
    return diff


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_torchvision_at_224(name):
    c, _ = check_against_reference(name, logits=False)
    params, gflops = TORCHVISION[name]
    assert c.params == params and round(c.macs / 1e9, 3) == gflops
    assert nasty.zoo.get(name).input == (3, 224, 224)


def test_tiny_logits_equal_torchvision_at_224():
    assert check_logits("convnext_tiny") <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES[1:])
def test_larger_logits_equal_torchvision_at_32(name):
    assert check_logits(name, input=(3, 32, 32)) <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_settings_equal_torchvision(name):
    """LayerNorm eps in execution order and the per-block stochastic-depth rates."""
    g = nasty.zoo.get(name)
    with torch.device("meta"):
        ref, ours = nasty.zoo.reference(name), nasty.build(g)
    eps = lambda m: [x.eps for _, x in execution_order(m, g.input) if isinstance(x, nn.LayerNorm)]
    assert eps(ref) == eps(ours) and set(eps(ours)) == {1e-6}
    ref_rates = [m.stochastic_depth.p for m in ref.modules() if hasattr(m, "layer_scale")]
    assert ref_rates == [m.p for m in ours.modules() if isinstance(m, DropPath)]
    assert len(ref_rates) == sum(dict(g.lets)[k] for k in ("n1", "n2", "n3", "n4"))


def test_layer_scales_start_at_torchvision_s_init_value():
    from torchvision.models.convnext import CNBlock
    ours = [m.weight for m in nasty.build("convnext_tiny").modules() if isinstance(m, LayerScale)]
    assert len(ours) == 18 and all(torch.all(w == 1e-6) and w.shape == (w.shape[0], 1, 1) for w in ours)
    assert torch.all(CNBlock(96, 1e-6, 0.0).layer_scale == 1e-6)


def test_one_genotype():
    tiny = nasty.zoo.get("convnext_tiny")
    for name in NAMES[1:]:
        g = nasty.zoo.get(name)
        assert g.cells == tiny.cells and g.layers == tiny.layers
