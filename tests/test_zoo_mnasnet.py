"""MnasNet-B1 (mnasnet.nasty): torchvision's mnasnet0_5 / 0_75 / 1_0 / 1_3 from one genotype
(`scale width=`), BN momentum 1 - 0.9997 as torchvision."""
import pytest

from zoo_check import check_against_reference, check_logits
from zoo_settings import check_settings

NAMES = ["mnasnet1_0", "mnasnet0_5", "mnasnet0_75", "mnasnet1_3"]


@pytest.mark.parametrize("name", NAMES)
def test_equals_torchvision(name):
    """Params and MACs (meta device), BN eps/momentum and dropout; logits for mnasnet1_0."""
    check_against_reference(name, logits=False)
    assert check_settings(name) == [(1e-5, 1 - 0.9997)]
    if name == "mnasnet1_0":
        assert check_logits(name) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES[1:])
def test_scaled_logits_equal_torchvision(name):
    assert check_logits(name) <= 1e-4
