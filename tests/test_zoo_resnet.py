"""ResNet-50/101/152, Wide ResNet-50-2, ResNeXt: one bottleneck genotype, equal to torchvision."""
import pytest

from zoo_check import check_against_reference

FAST = ["resnet50", "resnext50_32x4d"]
SLOW = ["resnet101", "resnet152", "wide_resnet50_2", "resnext101_32x8d"]


@pytest.mark.parametrize("name", FAST)
def test_equals_torchvision(name):
    check_against_reference(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_equals_torchvision_big(name):
    check_against_reference(name)
