"""The AlexNet family (alexnet.nasty): torchvision's AlexNet, and the course notes' AlexNet and
ZFNet tables checked row by row against the analytic per-layer cost.

The notes' tables give, per layer, the output shape (H, W, C), the parameters
K*(f*f*c_in + 1) or n_out*(n_in + 1), and the MFLOPs, counted as mult-adds for conv and FC
layers (h_out*w_out*c_out*f*f*c_in, n_in*n_out) and f*f per output for max pooling. Where a
printed figure disagrees with the layer sizes the same table gives, the layer sizes win: the
test names the slip and asserts the difference.
"""
import pytest
import torch

import nasty
from nasty.genotype import format, parse
from zoo_check import check_against_reference, check_self_consistent
from zoo_notes import check_round_trips, printed, table

M = 1e6


def _check_table(name, rows, slips):
    """rows: (op, (H, W, C) or (n,), printed params, printed MFLOPs or None); slips: {row: right value}."""
    c = nasty.cost(nasty.zoo.get(name))
    ours = table(c)
    assert [l.op for l in ours] == [r[0] for r in rows], [l.op for l in ours]
    for i, (l, (op, hwc, params, mflops)) in enumerate(zip(ours, rows)):
        chw = (hwc[2], hwc[0], hwc[1]) if len(hwc) == 3 else hwc
        assert l.output == chw, (i, l.name, l.output, chw)
        if op == "flatten":
            continue
        p_printed = int(params.replace(",", ""))
        f_printed = None if mflops is None else float(mflops.replace(",", ""))
        slip = slips.get(i, {})
        if "params" in slip:        # the notes' figure is wrong; the layer sizes give slip["params"]
            assert l.params == slip["params"] != p_printed, (i, l.name, l.params)
        else:
            assert l.params == p_printed, (i, l.name, l.params, p_printed)
        if "mflops" in slip:
            assert printed(l.flops / M, slip["mflops"]) and not printed(l.flops / M, mflops), (i, l.flops)
        elif mflops is not None:
            assert printed(l.flops / M, mflops), (i, l.name, l.flops / M, f_printed)
    return c


# The notes' AlexNet table (227x227x3 input, one tower, conv1 valid, conv2-5 'same').
ALEXNET_NOTES = [
    ("conv", (55, 55, 96), "34,857", "105"),
    ("maxpool", (27, 27, 96), "0", "0.6"),
    ("conv", (27, 27, 256), "614,656", "448"),
    ("maxpool", (13, 13, 256), "0", "0.4"),
    ("conv", (13, 13, 384), "885,120", "150"),
    ("conv", (13, 13, 384), "1,327,488", "224"),
    ("conv", (13, 13, 256), "884,992", "150"),
    ("maxpool", (6, 6, 256), "0", "0.08"),
    ("flatten", (9216,), None, None),
    ("fc", (4096,), "37,752,832", "38"),
    ("fc", (4096,), "16,781,312", "17"),
    ("fc", (1000,), "4,097,000", "4"),
]
ALEXNET_SLIPS = {
    0: {"params": 96 * (11 * 11 * 3 + 1)},     # conv1: the notes print 34,857; 96*(11*11*3+1) = 34,944
}


def test_alexnet_paper_matches_the_notes_table():
    c = _check_table("alexnet_paper", ALEXNET_NOTES, ALEXNET_SLIPS)
    assert printed(c.params / M, "62")                  # "~62 million parameters"
    assert round(c.macs / 1e9) == 1                      # "~1000 MFlop": 1.135G mult-adds,
    assert round((c.macs + c.pool_flops) / 1e9) == 1     # 1.136G with pooling


# The notes' ZFNet table ("a bigger AlexNet"), 224x224x3 input.
ZFNET_NOTES = [
    ("conv", (110, 110, 96), "14,208", "170.8"),
    ("maxpool", (55, 55, 96), "0", "2.6"),
    ("conv", (26, 26, 256), "614,656", "415.3"),
    ("maxpool", (13, 13, 256), "0", "0.09"),
    ("conv", (13, 13, 512), "1,180,160", "199.4"),
    ("conv", (13, 13, 1024), "4,719,616", "797.4"),
    ("conv", (13, 13, 512), "4,719,616", "797.4"),
    ("maxpool", (6, 6, 512), "0", "0.17"),
    ("flatten", (18432,), None, None),
    ("fc", (4096,), "75,515,904", "75.5"),
    ("fc", (4096,), "16,781,312", "16.8"),
    ("fc", (1000,), "4,097,000", "4.1"),
]
ZFNET_SLIPS = {
    3: {"mflops": "0.39"},                       # pool2: 13*13*256*9 = 389,376 -> 0.39M; the notes print 0.09
    6: {"params": 512 * (3 * 3 * 1024 + 1)},     # conv5: 4,719,104; the notes copy conv4's 4,719,616
    9: {"params": 4096 * (18432 + 1)},           # FC6: 75,501,568; the notes print 18432*4097 = 75,515,904
}


def test_zfnet_matches_the_notes_table():
    c = _check_table("zfnet", ZFNET_NOTES, ZFNET_SLIPS)
    assert printed(c.params / M, "108")                 # "~108 million parameters" (107.6M)
    # "~2.47 GFlop": the mult-adds are 2.4767G (2.4799G with pooling), so the notes truncate; rounded it is 2.48.
    assert printed(c.macs / 1e9, "2.47") and round(c.macs / 1e9, 2) == 2.48
    assert c.macs == 2_476_704_896


def test_zfnet_geometry_derived_from_the_notes_output_sizes():
    """110/55/26/13/6 need conv1 padding 1, ceil-mode pools and conv2 stride 2 without padding."""
    g = nasty.zoo.get("zfnet")
    sizes = [l.output[1] for l in table(nasty.cost(g), ("conv", "maxpool"))]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    # The notes' conv2 "s=(1,1), p=same" would keep 55x55, not their own 26x26:
    notes_conv2 = g.with_header(lets={"s2": 1, "p2": 2})
    assert table(nasty.cost(notes_conv2), ("conv",))[1].output == (256, 55, 55)
    # Floor-mode pools would give 54 after pool1 (and 12 after pool2 with conv2 as above):
    floor = g.with_header(lets={"ceil": 0})
    assert [l.output[1] for l in table(nasty.cost(floor), ("maxpool",))][:2] == [54, 12]


def test_lrn_is_the_papers_formula():
    """b = a / (k + alpha * sum of a^2 over 5 neighbouring maps)^beta with alpha=1e-4, k=2, beta=0.75."""
    model = nasty.build(nasty.zoo.get("alexnet_paper")).eval()
    lrns = [m for m in model.modules() if isinstance(m, torch.nn.LocalResponseNorm)]
    assert len(lrns) == 2
    a = 10 * torch.randn(2, 12, 5, 5)
    sq = torch.nn.functional.pad(a * a, (0, 0, 0, 0, 2, 2))          # zero maps beyond the edges
    window = sum(sq[:, i:i + 12] for i in range(5))
    want = a / (2 + 1e-4 * window) ** 0.75
    torch.testing.assert_close(lrns[0](a), want, rtol=1e-5, atol=1e-6)


def test_alexnet_equals_torchvision():
    c, diff = check_against_reference("alexnet")
    assert c.params == 61_100_840


@pytest.mark.parametrize("name", ["alexnet_paper", "zfnet"])
def test_self_consistent_and_round_trips(name):
    g = nasty.zoo.get(name)
    check_self_consistent(g)
    assert parse(format(g)) == g


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper", "zfnet"])
def test_round_trips(name):
    check_round_trips(name)
