"""Inception-ResNet-v2 (inception_resnet_v2.nasty): equal to timm's, and the notes' figures for it."""
import pytest

import nasty
from nasty.genotype import elaborate, format, parse
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed


def test_inception_resnet_v2_counts_equal_timm():
    check_against_reference("inception_resnet_v2", logits=False)
    g = nasty.zoo.get("inception_resnet_v2")
    assert parse(format(g)) == g


@pytest.mark.slow
def test_inception_resnet_v2_logits_equal_timm():
    check_logits("inception_resnet_v2")


def test_inception_resnet_v2_scaled_residuals():
    """10 x 0.17, 20 x 0.10, 9 x 0.20 and timm's final unscaled block: scale, then add, then ReLU,
    except after the last block."""
    prog = elaborate(nasty.zoo.get("inception_resnet_v2"))
    steps = prog.steps
    scales = [s.attrs["v"] for s in steps if s.kind == "scale"]
    assert scales == [0.17] * 10 + [0.10] * 20 + [0.20] * 9 + [1.0]
    adds = [s for s in steps if s.kind == "add"]
    assert len(adds) == 40
    for s in adds:                                              # the branch, scaled, plus the trunk
        assert steps[s.inputs[0]].kind == "scale" and steps[s.inputs[0]].out == steps[s.inputs[1]].out
    after = [steps[i + 1].kind for i, s in enumerate(steps) if s.kind == "add"]
    assert after == ["relu"] * 39 + ["conv"]                    # the last block's add feeds the 1x1 to 1536


def test_inception_resnet_v2_figures_in_the_notes():
    # The notes' EfficientNet comparison table (004_*.txt line 955): 56M params, 13B FLOPs (mult-adds).
    c = nasty.cost("inception_resnet_v2")
    assert c.params == 55_843_464 and printed(c.params / 1e6, "56")
    assert c.macs == 13_155_794_016 and printed(c.macs / 1e9, "13")
