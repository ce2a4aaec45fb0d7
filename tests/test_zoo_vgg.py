"""VGG-11/13/16/19 with and without BN (vgg.nasty): one genotype, equal to torchvision; and the
course notes' VGG-16 table checked row by row against the analytic per-layer cost."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips, printed, table

M = 1e6
NAMES = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]

# The notes' VGG-16 table: (op, (H, W, C), params, MFLOPs as printed). The notes truncate the
# large conv figures (224*224*64*576 = 1,849.7M is printed 1,849) and round the small ones.
VGG16_NOTES = [
    ("conv", (224, 224, 64), "1792", "86.7"),
    ("conv", (224, 224, 64), "36,928", "1,849"),
    ("maxpool", (112, 112, 64), "0", "3.2"),
    ("conv", (112, 112, 128), "73,856", "924"),
    ("conv", (112, 112, 128), "147,584", "1,849"),
    ("maxpool", (56, 56, 128), "0", "1.6"),
    ("conv", (56, 56, 256), "295,168", "924"),
    ("conv", (56, 56, 256), "590,080", "1,849"),
    ("conv", (56, 56, 256), "590,080", "1,849"),
    ("maxpool", (28, 28, 256), "0", "0.8"),
    ("conv", (28, 28, 512), "1,180,160", None),     # the OCR of the notes lost conv8's FLOPs
    ("conv", (28, 28, 512), "2,359,808", "1,849"),
    ("conv", (28, 28, 512), "2,359,808", "1,849"),
    ("maxpool", (14, 14, 512), "0", "0.4"),
    ("conv", (14, 14, 512), "2,359,808", "462"),
    ("conv", (14, 14, 512), "2,359,808", "462"),
    ("conv", (14, 14, 512), "2,359,808", "462"),
    ("maxpool", (7, 7, 512), "0", "0.1"),
    ("flatten", (25088,), None, None),
    ("fc", (4096,), "102,764,544", "29"),
    ("fc", (4096,), "16,781,312", "16.8"),
    ("fc", (1000,), "4,097,000", "4.1"),
]


def test_vgg16_matches_the_notes_table():
    c = nasty.cost(nasty.zoo.get("vgg16"))
    # torchvision's adaptive 7x7 pool is a no-op at 224x224 (7x7 -> 7x7); the notes have no such row.
    rows = [l for l in table(c, ("conv", "maxpool", "fc", "flatten", "apool")) if l.op != "apool"]
    assert [l.op for l in rows] == [r[0] for r in VGG16_NOTES]
    for i, (l, (op, hwc, params, mflops)) in enumerate(zip(rows, VGG16_NOTES)):
        chw = (hwc[2], hwc[0], hwc[1]) if len(hwc) == 3 else hwc
        assert l.output == chw, (i, l.name)
        if op == "flatten":
            continue
        assert l.params == int(params.replace(",", "")), (i, l.name, l.params)
        if i == 19:
            # FC6: 25088*4096 = 102.8M mult-adds; the notes' "29" is a slip (or an OCR error).
            assert l.flops == 25088 * 4096 and printed(l.flops / M, "102.8") and not printed(l.flops / M, mflops)
        elif mflops is not None:
            assert printed(l.flops / M, mflops), (i, l.name, l.flops / M, mflops)
    assert rows[10].flops == 28 * 28 * 512 * 9 * 256           # conv8: 924.8M (not printed)
    # "Around 138 million parameters": 138,357,544.
    assert c.params == 138_357_544 and printed(c.params / M, "138")
    # The notes' comparison table gives VGG16 13.6 GFLOPs; the layer sizes of the notes' own table give
    # 15.47G mult-adds (15.48G with pooling). The layer sizes win.
    assert c.macs == 15_470_264_320
    assert not printed(c.macs / 1e9, "13.6") and printed(c.macs / 1e9, "15.5")


def test_family_is_one_genotype():
    # Depth per stage is the paper's Table 1 (A, B, D, E); BN only adds BN layers.
    convs = {n: sum(l.op == "conv" for l in nasty.cost(nasty.zoo.get(n)).layers) for n in NAMES}
    assert [convs[f"vgg{d}"] for d in (11, 13, 16, 19)] == [8, 10, 13, 16]
    for d in (11, 13, 16, 19):
        plain, bn = (nasty.cost(nasty.zoo.get(f"vgg{d}{s}")) for s in ("", "_bn"))
        assert bn.macs == plain.macs
        assert bn.params - plain.params == 2 * sum(l.output[0] for l in plain.layers if l.op == "conv")
        assert sum(l.op == "bn" for l in bn.layers) == convs[f"vgg{d}"]


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_torchvision(name):
    check_against_reference(name, logits=False)


# All eight were checked equal (max logit difference 0.0); CI keeps the shallowest plain, the
# notes' VGG-16 and the deepest BN configuration, since the others differ only in `let` values.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg11", "vgg16", "vgg19_bn"])
def test_logits_equal_torchvision(name):
    check_logits(name)


@pytest.mark.parametrize("name", NAMES)
def test_round_trips(name):
    check_round_trips(name)
