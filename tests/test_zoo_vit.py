"""ViT-B/16, B/32, L/16, L/32, H/14 (vit.nasty): one genotype with a `let` table, each equal to
torchvision 0.29's vit_*: params and MACs at the native 224x224 (counted on the meta device, with
attention unfused so that FlopCounterMode counts both of its products), eval logits within 1e-4
after port_weights under both randomisations of zoo_check (torchvision zero-initialises ViT's head,
so with its own init every logit is 0: the re-initialised weights carry the check), and the
settings logits cannot see (LayerNorm eps 1e-6 everywhere). ViT-B/32's logits at 224; the others
at smaller inputs (torchvision's ViT is built for one image size, its position embedding has one
row per patch, so the reference is built for the smaller size too; every layer still runs)."""
import pytest
import torch
from torch import nn

import nasty
from nasty.weights import execution_order
from zoo_check import check_against_reference, check_logits

NAMES = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]
# torchvision's own figures for its weights (num_params; GFLOPS at 224, and ViT-H/14's at 518)
TORCHVISION = {"vit_b_16": (86_567_656, 17.564), "vit_b_32": (88_224_232, 4.409),
               "vit_l_16": (304_326_632, 61.555), "vit_l_32": (306_535_400, 15.378),
               "vit_h_14": (632_045_800, None)}


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_torchvision_at_224(name):
    c, _ = check_against_reference(name, logits=False)
    params, gflops = TORCHVISION[name]
    assert c.params == params
    if gflops is not None:
        assert round(c.macs / 1e9, 3) == gflops
    assert nasty.zoo.get(name).input == (3, 224, 224)


def test_vit_h_14_at_518_is_torchvision_s_swag_model():
    """torchvision's ViT-H/14 weights run at 518x518: 37 x 37 patches, a longer position embedding."""
    import torchvision
    meta = torchvision.models.ViT_H_14_Weights.IMAGENET1K_SWAG_E2E_V1.meta
    c = nasty.cost(nasty.zoo.get("vit_h_14").with_header(input=(3, 518, 518)))
    assert c.params == meta["num_params"] == 633_470_440
    assert round(c.macs / 1e9, 3) == meta["_ops"] == 1016.717


def test_b32_logits_equal_torchvision_at_224():
    diffs = {}
    assert check_logits("vit_b_32", diffs=diffs) <= 1e-4
    assert diffs["norms"] is None and diffs["weights"] <= 1e-4   # the zero-initialised head: see above


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("vit_b_16", 64), ("vit_l_16", 48), ("vit_l_32", 64), ("vit_h_14", 28)])
def test_logits_equal_torchvision_at_a_smaller_input(name, size):
    assert check_logits(name, input=(3, size, size), ref_kwargs={"image_size": size}) <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_layernorm_eps_is_1e_6(name):
    g = nasty.zoo.get(name)
    with torch.device("meta"):
        ref, ours = nasty.zoo.reference(name), nasty.build(g)
    eps = lambda m: [x.eps for _, x in execution_order(m, g.input) if isinstance(x, nn.LayerNorm)]
    assert eps(ref) == eps(ours) and set(eps(ours)) == {1e-6}


def test_one_genotype():
    b16 = nasty.zoo.get("vit_b_16")
    for name in NAMES[1:]:
        g = nasty.zoo.get(name)
        assert g.cells == b16.cells and g.layers == b16.layers
