"""DenseNet-121/161/169/201 (densenet.nasty): one genotype, equal to torchvision; DenseNet-264
(no reference) checked against the paper's configuration."""
import pytest

import nasty
from zoo_check import check_against_reference, check_self_consistent, check_logits
from zoo_notes import check_round_trips

TV = ["densenet121", "densenet161", "densenet169", "densenet201"]


@pytest.mark.parametrize("name", TV)
def test_counts_equal_torchvision(name):
    check_against_reference(name, logits=False)


def test_densenet121_logits_equal_torchvision():
    check_logits("densenet121", input=(3, 96, 96))     # every layer runs; 96 -> 3x3 at the head


@pytest.mark.slow
@pytest.mark.parametrize("name", TV[1:])
def test_logits_equal_torchvision(name):
    check_logits(name, input=(3, 96, 96))


def test_densenet264_is_the_papers_configuration():
    """Table 1 of the paper: DenseNet-264 (k=32) has dense blocks of 6, 12, 64 and 48 layers."""
    g = nasty.zoo.get("densenet264")
    c = check_self_consistent(g)
    layers = [l for l in c.layers if l.op == "cat"]
    assert len(layers) == 6 + 12 + 64 + 48
    # Counted as DenseNet-121's name counts (1 stem conv + 2 convs per dense layer + 3 transition
    # convs + 1 FC = 121 for blocks 6-12-24-16), the paper's 6-12-64-48 has 265 weighted layers,
    # one more than its name says. The configuration of the paper's Table 1 wins.
    weighted = lambda c: sum(l.op in ("conv", "fc") for l in c.layers)
    assert weighted(nasty.cost(nasty.zoo.get("densenet121"))) == 121
    assert weighted(c) == 1 + 2 * 130 + 3 + 1 == 265
    # Channels: 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 64*32 = 2304 -> 1152;
    # 1152 + 48*32 = 2688 into the classifier.
    trans = [l.output[0] for l in c.layers if l.op == "avgpool"]
    assert trans == [128, 256, 1152]
    assert [l for l in c.layers if l.op == "fc"][0].params == 2688 * 1000 + 1000
    assert c.params == 33_337_704 and c.macs == 5_751_653_376
    # Spatial sizes: 224 -> 112 (stem conv) -> 56 (pool) -> 28 -> 14 -> 7.
    assert [l.output[1] for l in c.layers if l.op == "avgpool"] == [28, 14, 7]


@pytest.mark.parametrize("name", TV + ["densenet264"])
def test_round_trips(name):
    check_round_trips(name)
