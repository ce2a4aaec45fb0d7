"""EfficientNetV2-S/M/L (efficientnet_v2.nasty): one genotype of Fused-MBConv and MBConv stages;
the three members are its `let` tables. Each equals torchvision's efficientnet_v2_*: params and
MACs at the native resolution (S 384, M and L 480; meta device), BN eps 1e-3 / momentum 0.1,
dropout and per-block stochastic-depth rates, and logits (norm statistics randomised) at a
reduced size with the native stride pattern: S at 64 (every stride-2 layer sees an even size,
as at 384), M and L at 96 (even sizes, then an odd last stage: 3 as 15 at 480)."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips
from zoo_settings import check_settings

NAMES = ["efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"]
# (params, MACs at the native input) of torchvision's builds, which the zoo equals
COUNTS = {"efficientnet_v2_s": (21_458_488, 8_365_617_152), "efficientnet_v2_m": (54_139_356, 24_582_460_384),
          "efficientnet_v2_l": (118_515_272, 56_079_699_008)}
NATIVE = {"efficientnet_v2_s": 384, "efficientnet_v2_m": 480, "efficientnet_v2_l": 480}


@pytest.mark.parametrize("name", NAMES)
def test_counts_and_settings_equal_torchvision(name):
    c, _ = check_against_reference(name, logits=False)
    assert (c.params, c.macs) == COUNTS[name]
    assert c.input == (3, NATIVE[name], NATIVE[name])
    assert check_settings(name) == [(1e-3, 0.1)]


def test_small_logits_equal_torchvision():
    assert check_logits("efficientnet_v2_s", input=(3, 64, 64)) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES[1:])
def test_large_logits_equal_torchvision(name):
    assert check_logits(name, input=(3, 96, 96)) <= 1e-4


def test_fused_stages_then_mbconv():
    """Stages 1-3 are Fused-MBConv: no depthwise conv, no SE; stage 1 (e=1) is one 3x3 conv per
    block, stages 2-3 a 3x3 expansion and a 1x1 projection. Stages 4-7 are MBConv with SE."""
    layers = nasty.cost(nasty.zoo.get("efficientnet_v2_s")).layers
    ops = {}                                    # stage -> [(node, op)], e.g. ("ex", "conv")
    for l in layers:
        if l.name.startswith("stage"):
            *_, node, op = l.name.split(".")
            ops.setdefault(l.name.split(".")[0], []).append((node, op))
    for stage, blocks in (("stage1", 2), ("stage2", 4), ("stage3", 4)):
        assert not any(op in ("dwconv", "gap", "mul") for _, op in ops[stage])
        convs = [node for node, op in ops[stage] if op == "conv"]
        assert convs == (["f"] if stage == "stage1" else ["ex", "p"]) * blocks
    for stage in ("stage4", "stage5", "stage6", "stage7"):
        assert {("d", "dwconv"), ("g", "gap"), ("q", "mul")} <= set(ops[stage])


def test_one_genotype():
    s = nasty.zoo.get(NAMES[0])
    for name in NAMES[1:]:
        g = nasty.zoo.get(name)
        assert g.cells == s.cells and g.layers == s.layers
    check_round_trips("efficientnet_v2_s")
