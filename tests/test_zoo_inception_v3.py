"""Inception-v3 (inception_v3.nasty): equal to torchvision's, and the notes' figures for it."""
import pytest
import torch

import nasty
from nasty.genotype import format, parse
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed


def test_inception_v3_counts_equal_torchvision():
    check_against_reference("inception_v3", logits=False)
    # torchvision turns transform_input on only when it loads pretrained weights.
    with torch.device("meta"):
        assert nasty.zoo.reference("inception_v3").transform_input is False
    g = nasty.zoo.get("inception_v3")
    assert parse(format(g)) == g


@pytest.mark.slow
def test_inception_v3_logits_equal_torchvision():
    check_logits("inception_v3")


def test_inception_v3_figures_in_the_notes():
    # The notes' EfficientNet comparison table (004_*.txt line 951): Inception-v3, 24M params, 5.7B FLOPs
    # (mult-adds, at 299x299). Without the training-only auxiliary classifier, as the figures count it.
    c = nasty.cost("inception_v3")
    assert c.params == 23_834_568 and printed(c.params / 1e6, "24")
    assert c.macs == 5_713_216_096 and printed(c.macs / 1e9, "5.7")
