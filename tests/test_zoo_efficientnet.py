"""EfficientNet-B0...B7 (efficientnet.nasty): one B0 genotype; B1-B7 are the catalog's `scale`
(width, depth) and `input` (resolution), plus torchvision's dropout and, for B5-B7, its BN eps
1e-3 / momentum 0.01. Each equals torchvision's efficientnet_bN at its native resolution:
params, MACs, logits, and the settings logits cannot see (BN, dropout, stochastic depth)."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed
from zoo_settings import check_settings

NAMES = [f"efficientnet_b{i}" for i in range(8)]
# torchvision's compound-scaling coefficients and resolutions
SCALING = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260), 3: (1.2, 1.4, 300),
           4: (1.4, 1.8, 380), 5: (1.6, 2.2, 456), 6: (1.8, 2.6, 528), 7: (2.0, 3.1, 600)}


def test_b0_equals_torchvision():
    c, _ = check_against_reference("efficientnet_b0", logits=False)
    assert (c.params, c.macs) == (5_288_548, 385_814_752)
    assert check_logits("efficientnet_b0") <= 1e-4


@pytest.mark.parametrize("i", range(1, 8))
def test_scaled_counts_equal_torchvision(i):
    """Params and MACs at the native resolution, counted on the meta device."""
    name = NAMES[i]
    g = nasty.zoo.get(name)
    width, depth, res = SCALING[i]
    assert dict(g.scale) == {"width": width, "depth": depth} and g.input == (3, res, res)
    check_against_reference(name, logits=False)


@pytest.mark.parametrize("name", NAMES)
def test_settings_equal_torchvision(name):
    """BN eps/momentum (B5-B7: 1e-3 / 0.01), dropout, per-block stochastic-depth rates."""
    got = check_settings(name)
    assert got == ([(1e-3, 0.01)] if name >= "efficientnet_b5" else [(1e-5, 0.1)])


def test_one_genotype():
    b0 = nasty.zoo.get("efficientnet_b0")
    for name in NAMES[1:]:
        g = nasty.zoo.get(name)
        assert g.cells == b0.cells and g.layers == b0.layers


# The course notes' EfficientNet results table: top-1, #params, #FLOPs (= mult-adds).
NOTES = {0: ("77.1", "5.3", "0.39"), 1: ("79.1", "7.8", "0.70"), 2: ("80.1", "9.2", "1.0"),
         3: ("81.6", "12", "1.8"), 4: ("82.9", "19", "4.2"), 5: ("83.6", "30", "9.9"),
         6: ("84.0", "43", "19"), 7: ("84.3", "66", "37")}
# Printed FLOPs that the layer sizes (torchvision's, which the zoo equals) do not give: B1 is
# 0.687B (printed 0.70B), B4 4.39B (printed 4.2B), B5 10.27B (printed 9.9B).
FLOP_SLIPS = {1: 0.687, 4: 4.394, 5: 10.266}


@pytest.mark.parametrize("i", range(8))
def test_notes_figures(i):
    """#params agree once BN's running mean and variance are counted too (as Keras counts them;
    without them B2 is 9.11M, printed 9.2M); #FLOPs agree except the slips above."""
    top1, params, flops = NOTES[i]
    e = nasty.zoo.entry(NAMES[i])
    assert e.top1 == float(top1)
    c = nasty.cost(nasty.zoo.get(NAMES[i]))
    bn_stats = sum(l.params for l in c.layers if l.op == "bn")   # = 2 * BN channels, like weight+bias
    assert printed((c.params + bn_stats) / 1e6, params), (i, c.params + bn_stats)
    if i == 2:
        assert not printed(c.params / 1e6, params) and printed(c.params / 1e6, "9.1")
    if i in FLOP_SLIPS:
        assert not printed(c.macs / 1e9, flops) and round(c.macs / 1e9, 3) == FLOP_SLIPS[i]
    else:
        assert printed(c.macs / 1e9, flops), (i, c.macs)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES[1:])
def test_scaled_logits_equal_torchvision(name):
    """Eval logits at the native resolution (B7: 600x600), BN statistics randomised."""
    assert check_logits(name) <= 1e-4
