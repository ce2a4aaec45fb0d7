"""MobileNetV3-Large and -Small (mobilenet_v3_large.nasty, mobilenet_v3_small.nasty): equal to
torchvision's, one stage line per row of the paper's Tables 1 and 2."""
import pytest
from torch import nn

import nasty
from nasty.genotype.expr import make_divisible
from zoo_check import check_against_reference, check_logits
from zoo_settings import check_settings


@pytest.mark.parametrize("name, params, macs", [("mobilenet_v3_large", 5_483_032, 216_589_760),
                                                ("mobilenet_v3_small", 2_542_856, 56_510_400)])
def test_equals_torchvision(name, params, macs):
    c, _ = check_against_reference(name, logits=False)
    assert (c.params, c.macs) == (params, macs)
    assert check_logits(name) <= 1e-4
    assert check_settings(name) == [(1e-3, 0.01)]


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
def test_se_squeeze_and_gates(name):
    """SE squeeze = make_divisible(expanded // 4, 8), ReLU inside, hard-sigmoid gate."""
    c = nasty.cost(nasty.zoo.get(name))
    convs = [l for l in c.layers if l.op == "conv"]
    squeezes = [(l.output[0], convs[i + 1].output[0]) for i, l in enumerate(convs)
                if l.name.endswith(".g.conv")]
    assert squeezes and all(s == make_divisible(e // 4, 8) for s, e in squeezes)
    m = nasty.build(nasty.zoo.get(name))
    kinds = [type(x) for x in m.modules()]
    assert kinds.count(nn.Hardsigmoid) == len(squeezes)
