"""SqueezeNet 1.0 and 1.1 (squeezenet.nasty): one genotype, equal to torchvision."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_equals_torchvision(name):
    c, _ = check_against_reference(name, logits=False)
    check_logits(name)
    # Ceil-mode pools: in 1.0, 109 -> 54 -> 27 -> 13, where floor mode would give 54 -> 26.
    pools = [l.output[1] for l in c.layers if l.op == "maxpool"]
    assert pools == {"squeezenet1_0": [54, 27, 13], "squeezenet1_1": [55, 27, 13]}[name]
    # No fully connected layer: the classifier is a 1x1 conv with one map per class.
    assert not any(l.op == "fc" for l in c.layers)


def test_ceil_mode_matters():
    v10 = nasty.zoo.get("squeezenet1_0").with_header(defaults={"maxpool.ceil": 0})
    assert [l.output[1] for l in nasty.cost(v10).layers if l.op == "maxpool"] == [54, 26, 12]
    g = nasty.zoo.get("squeezenet1_1")
    floor = g.with_header(defaults={"maxpool.ceil": 0})
    assert [l.output[1] for l in nasty.cost(floor).layers if l.op == "maxpool"] == [55, 27, 13]
    odd = g.with_header(input=(3, 225, 225))           # 112 -> ceil 56 vs floor 55
    assert [l.output[1] for l in nasty.cost(odd).layers if l.op == "maxpool"][0] == 56
    assert [l.output[1] for l in nasty.cost(odd.with_header(defaults={"maxpool.ceil": 0})).layers
            if l.op == "maxpool"][0] == 55


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_round_trips(name):
    check_round_trips(name)
