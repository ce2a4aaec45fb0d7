"""Xception (xception.nasty): equal to timm's legacy_xception, and the notes' figures for it."""
import pytest

import nasty
from nasty.genotype import format, parse
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed


def test_xception_counts_equal_timm():
    check_against_reference("legacy_xception", logits=False)
    g = nasty.zoo.get("legacy_xception")
    assert parse(format(g)) == g


@pytest.mark.slow
def test_xception_logits_equal_timm():
    check_logits("legacy_xception")


def test_xception_figures_in_the_notes():
    # The notes' EfficientNet comparison table (004_*.txt line 952): Xception 23M params, 8.4B FLOPs
    # (mult-adds, at 299x299).
    c = nasty.cost("legacy_xception")
    assert c.params == 22_855_952 and printed(c.params / 1e6, "23")
    assert c.macs == 8_357_403_496 and printed(c.macs / 1e9, "8.4")
