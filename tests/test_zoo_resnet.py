"""ResNet-50/101/152, Wide ResNet-50-2/101-2, ResNeXt-50/101: one bottleneck genotype, equal to
torchvision (params and MACs at 224x224; logits with norm statistics randomised). The two
largest members run their logits at 64x64, which keeps 224's stride pattern (every stride-2
layer sees an even size: 32, 16, 8, 4 as 112, 56, 28, 14)."""
import pytest

from zoo_check import check_against_reference

FAST = ["resnet50", "resnext50_32x4d"]
SLOW = ["resnet101", "resnet152", "wide_resnet50_2", "resnext101_32x8d"]
LARGEST = {"resnext101_64x4d": (83_455_272, 15_460_270_080), "wide_resnet101_2": (126_886_696, 22_753_050_624)}


@pytest.mark.parametrize("name", FAST)
def test_equals_torchvision(name):
    check_against_reference(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_equals_torchvision_big(name):
    check_against_reference(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGEST)
def test_largest_equal_torchvision(name):
    c, _ = check_against_reference(name, input=(3, 64, 64))
    assert (c.params, c.macs) == LARGEST[name]
