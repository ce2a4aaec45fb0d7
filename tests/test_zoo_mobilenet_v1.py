"""MobileNet v1 (mobilenet_v1.nasty): timm's mobilenetv1_100, and the paper's width multipliers
1.0 / 0.75 / 0.5 / 0.25 from the same genotype (`scale width=`), checked against the paper's
Table 6 as the course notes print it (mult-adds and parameters at 224x224)."""
import pytest
from torch import nn

import nasty
from zoo_check import check_against_reference, check_self_consistent, check_logits
from zoo_notes import printed
from zoo_settings import check_settings

PAPER = ["mobilenet_v1_100", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"]

# Table 6 "MobileNet Width Multiplier" in the course notes: alpha, million mult-adds, million params.
TABLE6 = {"mobilenet_v1_100": (1.0, "569", "4.2"), "mobilenet_v1_075": (0.75, "325", "2.6"),
          "mobilenet_v1_050": (0.5, "149", "1.3"), "mobilenet_v1_025": (0.25, "41", "0.5")}


def test_equals_timm():
    c, _ = check_against_reference("mobilenetv1_100", logits=False)
    assert check_logits("mobilenetv1_100") <= 1e-4
    assert check_settings("mobilenetv1_100") == [(1e-5, 0.1)]
    assert (c.params, c.macs) == (4_231_976, 568_740_352)


@pytest.mark.parametrize("name", PAPER)
def test_table6_of_the_paper(name):
    alpha, madds, params = TABLE6[name]
    g = nasty.zoo.get(name)
    assert dict(g.scale).get("width", 1.0) == alpha
    c = nasty.cost(g)
    assert printed(c.macs / 1e6, madds), (name, c.macs)
    assert printed(c.params / 1e6, params), (name, c.params)
    # every layer is alpha times as wide as the 1.0 network (no rounding at these alphas)
    full = nasty.cost(nasty.zoo.get("mobilenet_v1_100"))
    convs = [l.output[0] for l in c.layers if l.op == "conv"]
    assert convs == [int(x.output[0] * alpha) for x in full.layers if x.op == "conv"]


def test_paper_variants_are_the_timm_genotype_with_relu():
    """Same layers and costs as timm's; only the activation differs (ReLU, the paper's Fig. 3)."""
    timm_g, paper_g = nasty.zoo.get("mobilenetv1_100"), nasty.zoo.get("mobilenet_v1_100")
    assert paper_g.cells == timm_g.cells and paper_g.layers == timm_g.layers
    a, b = nasty.cost(timm_g), nasty.cost(paper_g)
    assert (a.params, a.macs) == (b.params, b.macs)
    acts = {type(m) for m in nasty.build(paper_g).modules()}
    assert nn.ReLU in acts and nn.ReLU6 not in acts
    check_self_consistent(nasty.zoo.get("mobilenet_v1_025"))


def test_mobilenetv2_table_figure_for_v1_is_a_slip():
    """The notes' MobileNetV2 results table lists MobileNetV1 at 575M MAdds (4.2M params); the
    layer sizes of the notes' Table 1 (and Table 6's own 569M) give 568.7M."""
    c = nasty.cost(nasty.zoo.get("mobilenet_v1_100"))
    assert printed(c.macs / 1e6, "569") and not printed(c.macs / 1e6, "575")
    assert round(575 - c.macs / 1e6, 1) == 6.3
    assert printed(c.params / 1e6, "4.2")
