"""ResNet-18/34 (resnet_basic.nasty): one basic-block genotype, equal to torchvision."""
import pytest

from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_equals_torchvision(name):
    c, _ = check_against_reference(name, logits=False)
    assert c.params == {"resnet18": 11_689_512, "resnet34": 21_797_672}[name]
    check_logits(name, input=(3, 128, 128))


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_round_trips(name):
    check_round_trips(name)
