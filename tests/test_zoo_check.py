"""The zoo's logits check itself (zoo_check.check_logits): it must catch a wrong BN eps and a
missing residual branch.

At default initialisation (BN weight 1, bias 0, mean 0, var 1) a zoo build whose BN eps is 1e-5
where its reference has 1e-3 gives the same logits to ~1e-11 (mobilenet_v3_small), so a check
without randomised norm statistics cannot see it. With the reference's own init a residual branch
can be invisible too (ConvNeXt's 1e-6 layer scales; ViT's zero-initialised head makes every logit
0), so the check also runs with every weight re-initialised. These tests give the zoo builds the
wrong eps or drop a residual branch, and require the check to fail.
"""
import pytest
import torch
from torch import nn

import nasty
from zoo_check import check_logits, randomize_norms


def with_eps(name, eps):
    g = nasty.zoo.get(name)
    return g.with_header(defaults={**dict(g.defaults), "bn.eps": eps})


@pytest.mark.parametrize("name, wrong, input", [
    ("mobilenet_v3_small", 1e-5, None),          # reference eps 1e-3; tiny logits (~0.02)
    ("efficientnet_b0", 1e-3, (3, 64, 64)),      # reference eps 1e-5
    ("resnet18", 1e-3, (3, 64, 64)),
])
def test_a_wrong_bn_eps_fails_the_check(name, wrong, input):
    # randomised norm statistics are what makes eps matter (re-initialised weights: test below)
    assert check_logits(name, input=input, randomisations=("norms",)) <= 1e-4      # the right eps passes
    with pytest.raises(AssertionError, match="logits differ"):
        check_logits(name, input=input, genotype=with_eps(name, wrong), randomisations=("norms",))


def test_every_norm_layer_is_randomised():
    model = nn.Sequential(nn.BatchNorm2d(4), nn.BatchNorm2d(4, affine=False), nn.GroupNorm(2, 4),
                          nn.LayerNorm([4, 3, 3]), nn.InstanceNorm2d(4, affine=True, track_running_stats=True))
    randomize_norms(model, seed=3)
    for m in model:
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(m, name, None)
            if t is not None:
                default = 1.0 if name in ("weight", "running_var") else 0.0
                assert (t != default).all(), (m, name)
    bn = model[0]
    assert ((0.01 <= bn.running_var) & (bn.running_var < 0.1)).all()
    gain = bn.weight / bn.running_var.sqrt()                # the layer's gain stays near 1
    assert ((0.5 <= gain) & (gain < 1.5 + 1e-6)).all()
    assert ((0.5 <= model[1].running_var) & (model[1].running_var < 1.5)).all()   # no weight to balance it
    again = randomize_norms(nn.Sequential(nn.BatchNorm2d(4)), seed=3)
    assert torch.equal(again[0].running_var, bn.running_var)                      # seeded


# ------------------------------------------------------------------ two randomisations
def without_a_residual_branch(name, old, new):
    """The zoo genotype with one residual branch kept (its layers built, so weights still port)
    but never added: multiplied by 0."""
    g = nasty.zoo.get(name)
    text = nasty.format(g)
    assert old in text, (old, text)
    return nasty.parse(text.replace(old, new, 1))


@pytest.mark.parametrize("name, old, new, input, ref_kwargs", [
    # ConvNeXt's layer scales start at 1e-6: with its own init a dropped branch moves the logits by ~1e-6
    ("convnext_tiny", "out = add(r, x)", "out = add(scale v=0 <- r, x)", (3, 32, 32), None),
    # torchvision's ViT zero-initialises its head: with its own init every logit is 0
    pytest.param("vit_b_32", "a   = add(ln attention heads=heads <- in, in)",
                 "a   = add(scale v=0 <- ln attention heads=heads <- in, in)", (3, 64, 64), {"image_size": 64},
                 marks=pytest.mark.slow),
])
def test_a_missing_residual_branch_fails_the_check(name, old, new, input, ref_kwargs):
    """(The zoo genotypes themselves pass both: test_zoo_convnext.py, test_zoo_vit.py.)"""
    broken = without_a_residual_branch(name, old, new)
    kw = dict(input=input, ref_kwargs=ref_kwargs)
    # randomised norms alone cannot see it (the reference's own init hides the branch) ...
    if name == "convnext_tiny":
        assert check_logits(name, genotype=broken, randomisations=("norms",), **kw) <= 1e-4
    else:
        with pytest.raises(AssertionError, match="reference logits are all zero"):
            check_logits(name, genotype=broken, randomisations=("norms",), **kw)
    # ... re-initialised weights do
    with pytest.raises(AssertionError, match=r"logits differ by .*randomised weights"):
        check_logits(name, genotype=broken, **kw)


def test_reinit_weights_sets_every_parameter():
    from zoo_check import randomised_reference
    ref = randomised_reference("vit_b_32", "weights", ref_kwargs={"image_size": 64})
    assert all(torch.isfinite(p).all() and (p != 0).any() for p in ref.parameters())
    assert ref.heads.head.weight.abs().max() > 0                  # torchvision inits it to 0
    from zoo_check import RANDOMISATIONS
    assert RANDOMISATIONS == ("norms", "weights")
