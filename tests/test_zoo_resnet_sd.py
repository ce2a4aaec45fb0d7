"""ResNet-50 with stochastic depth (resnet_sd.nasty): at eval it is torchvision's ResNet-50."""
import pytest
import torch

import nasty
from nasty.compile import DropPath
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips


def test_equals_resnet50_at_eval():
    c, _ = check_against_reference("resnet50_sd", logits=False)
    plain = nasty.cost(nasty.zoo.get("resnet50"))
    assert (c.params, c.macs) == (plain.params, plain.macs) == (25_557_032, 4_089_184_256)
    check_logits("resnet50_sd", input=(3, 128, 128))


def test_linear_decay_of_the_drop_probability():
    """Huang et al.: survival p_l = 1 - (l/L)(1 - p_L), p_L = 0.5, for the L = 16 blocks."""
    m = nasty.build(nasty.zoo.get("resnet50_sd"))
    rates = [x.p for x in m.modules() if isinstance(x, DropPath)]
    assert rates == [0.5 * l / 16 for l in range(1, 17)]


def test_drops_branches_in_training_only():
    torch.manual_seed(0)
    m = nasty.build(nasty.zoo.get("resnet50_sd").with_header(input=(3, 32, 32)))
    last = [x for x in m.modules() if isinstance(x, DropPath)][-1]
    assert last.p == 0.5
    x = torch.randn(64, 8, 2, 2)
    m.train()
    y = last(x)
    dropped = (y.flatten(1) == 0).all(1)
    assert 0 < dropped.sum() < 64 and torch.allclose(y[~dropped], x[~dropped] / 0.5)
    m.eval()
    assert torch.equal(last(x), x)


@pytest.mark.parametrize("name", ["resnet50_sd"])
def test_round_trips(name):
    check_round_trips(name)
