"""SE-ResNet-50 and SENet-154 (senet.nasty): one genotype, equal to timm."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips


@pytest.mark.parametrize("name", ["seresnet50", "senet154"])
def test_counts_equal_timm(name):
    c, _ = check_against_reference(name, logits=False)
    assert c.params == {"seresnet50": 28_088_024, "senet154": 115_088_984}[name]


def test_seresnet50_logits_equal_timm():
    # BN statistics are randomised first: timm zero-initialises each branch's last BN, which
    # would otherwise silence every SE gate.
    check_logits("seresnet50", input=(3, 128, 128))


@pytest.mark.slow
def test_senet154_logits_equal_timm():
    check_logits("senet154", input=(3, 96, 96))


def test_se_gate_width_is_a_sixteenth():
    c = nasty.cost(nasty.zoo.get("seresnet50"))
    gates = [l for l in c.layers if l.name.endswith(".se.conv")]
    assert len(gates) == 16
    assert sorted({l.output[0] for l in gates}) == [16, 32, 64, 128]       # 256/16 ... 2048/16


@pytest.mark.parametrize("name", ["seresnet50", "senet154"])
def test_round_trips(name):
    check_round_trips(name)
