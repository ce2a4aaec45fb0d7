"""RegNetX and RegNetY (regnet.nasty): one genotype; the 15 members of torchvision 0.29 are its
`let` tables. Each equals torchvision's regnet_*: params and MACs at 224x224 (meta device), and
the tables are the paper's quantization of torchvision's linear parameters. Logits agree (norm
statistics randomised) for the 400MF members at 224x224, for the others at 96x96, which keeps
224's stride pattern (every stride-2 layer sees an even size, the last stage an odd one: 48, 24,
12, 6, 3 as 112, 56, 28, 14, 7), and for the three largest (32-128 GF) at 32x32 (16, 8, 4, 2, 1)."""
import math

import pytest

import nasty
from nasty.genotype.expr import make_divisible
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips
from zoo_settings import check_settings

# torchvision's RegNet parameters: depth, w_0, w_a, w_m, group width (Y: SE ratio 0.25 as well)
LINEAR = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16), "regnet_x_800mf": (16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24), "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120), "regnet_x_16gf": (22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8), "regnet_y_800mf": (14, 56, 38.84, 2.4, 16),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24), "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56), "regnet_y_16gf": (18, 200, 106.23, 2.48, 112),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232), "regnet_y_128gf": (27, 456, 160.83, 2.52, 264),
}
NAMES = list(LINEAR)
# (params, MACs at 224x224) of torchvision's builds, which the zoo equals
COUNTS = {
    "regnet_x_400mf": (5_495_976, 413_812_608), "regnet_y_400mf": (4_344_144, 401_842_848),
    "regnet_x_8gf": (39_572_648, 7_995_132_416), "regnet_y_128gf": (644_812_894, 127_517_815_680),
}


def stage_table(depth, w0, wa, wm, gw):
    """The paper's quantized linear rule (Radosavovic et al. 2020, sec. 3.3), as torchvision applies it.

    Block j has width u_j = w0 + wa * j, snapped to w0 * wm^s_j with s_j = round(log(u_j / w0) /
    log(wm)) and rounded to a multiple of 8; runs of equal widths are the stages. Then each
    stage's group width becomes min(gw, width) and its width a multiple of that (make_divisible).
    """
    widths = [8 * round(w0 * wm ** round(math.log((w0 + wa * j) / w0) / math.log(wm)) / 8) for j in range(depth)]
    stages = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    groups = [min(gw, w) for w, _ in stages]
    widths = [make_divisible(w, g) for (w, _), g in zip(stages, groups)]
    return [d for _, d in stages], widths, groups


@pytest.mark.parametrize("name", NAMES)
def test_tables_are_the_quantized_linear_parameters(name):
    lets = dict(nasty.zoo.get(name).lets)
    depths, widths, groups = stage_table(*LINEAR[name])
    assert len(depths) == 4
    assert [lets[f"d{i}"] for i in range(1, 5)] == depths
    assert [lets[f"w{i}"] for i in range(1, 5)] == widths
    assert [lets[f"g{i}"] for i in range(1, 5)] == groups
    assert lets["se"] == (0.25 if name.startswith("regnet_y") else 0)


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_torchvision(name):
    """Params and MACs at 224x224, exactly, counted on the meta device."""
    c, _ = check_against_reference(name, logits=False)
    if name in COUNTS:
        assert (c.params, c.macs) == COUNTS[name]


@pytest.mark.parametrize("name", ["regnet_x_400mf", "regnet_y_400mf"])
def test_logits_equal_torchvision(name):
    """At the native 224x224; BN eps/momentum equal too (torchvision's defaults)."""
    assert check_logits(name) <= 1e-4
    assert check_settings(name) == [(1e-5, 0.1)]


LARGEST = ["regnet_x_32gf", "regnet_y_32gf", "regnet_y_128gf"]
LARGER = [n for n in NAMES if n not in LARGEST and not n.endswith("400mf")]


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGER)
def test_larger_logits_equal_torchvision(name):
    """At 96x96. regnet_x_8gf's first stage has one group (group width 80 = width); Y's SE
    squeeze follows the block input width, which differs from the block width in each stage's
    first block."""
    assert check_logits(name, input=(3, 96, 96)) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGEST)
def test_largest_logits_equal_torchvision(name):
    """At 32x32 (16, 8, 4, 2, 1: even sizes into every stride-2 layer, an odd last stage, as at
    224), where building and porting the weights is the cost: regnet_y_128gf has 645M params,
    so the check holds about 6 GB and takes ~10 s of one core."""
    assert check_logits(name, input=(3, 32, 32)) <= 1e-4


def test_one_genotype():
    first = nasty.zoo.get(NAMES[0])
    for name in NAMES[1:]:
        g = nasty.zoo.get(name)
        assert g.cells == first.cells and g.layers == first.layers
    check_round_trips("regnet_y_400mf")
