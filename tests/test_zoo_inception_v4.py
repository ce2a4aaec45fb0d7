"""Inception-v4 (inception_v4.nasty): equal to timm's, and the notes' figures for it."""
import pytest

import nasty
from nasty.genotype import format, parse
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed


def test_inception_v4_counts_equal_timm():
    check_against_reference("inception_v4", logits=False)
    g = nasty.zoo.get("inception_v4")
    assert parse(format(g)) == g


@pytest.mark.slow
def test_inception_v4_logits_equal_timm():
    check_logits("inception_v4")


def test_inception_v4_figures_in_the_notes():
    # The notes' EfficientNet comparison table (004_*.txt line 954, from Tan & Le 2019, Table 2) gives
    # Inception-v4 48M params and 13B FLOPs (mult-adds). The paper's layer sizes (timm follows the
    # TensorFlow-slim network of the paper's Figures 3-9) give 42,679,816 params and 12.25G
    # mult-adds at 299x299: the printed figures are 5.3M and 0.75G high. The layer sizes win.
    c = nasty.cost("inception_v4")
    assert c.params == 42_679_816 and not printed(c.params / 1e6, "48")
    assert round(48 - c.params / 1e6, 1) == 5.3
    assert c.macs == 12_253_974_624 and not printed(c.macs / 1e9, "13") and printed(c.macs / 1e9, "12")
