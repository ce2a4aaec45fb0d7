"""The zoo's logits check itself (zoo_check.check_logits): it must catch a wrong BN eps.

At default initialisation (BN weight 1, bias 0, mean 0, var 1) a zoo build whose BN eps is 1e-5
where its reference has 1e-3 gives the same logits to ~1e-11 (mobilenet_v3_small), so a check
without randomised norm statistics cannot see it. These tests give the zoo builds the wrong eps
and require the check to fail.
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
    assert check_logits(name, input=input) <= 1e-4                      # the right eps passes
    with pytest.raises(AssertionError, match="logits differ"):
        check_logits(name, input=input, genotype=with_eps(name, wrong))


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
