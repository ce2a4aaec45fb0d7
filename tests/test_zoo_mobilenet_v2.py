"""MobileNetV2 (mobilenet_v2.nasty): torchvision's mobilenet_v2 at width 1.0 and 1.4, from one
genotype; the figures of the notes' MobileNetV2 results table checked against the layer sizes."""
import pytest

import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import printed
from zoo_settings import check_settings


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v2_140"])
def test_equals_torchvision(name):
    """Params and MACs (meta device), BN and dropout settings; logits at width 1.0."""
    check_against_reference(name, logits=False)
    assert check_settings(name) == [(1e-5, 0.1)]
    if name == "mobilenet_v2":
        assert check_logits(name) <= 1e-4


@pytest.mark.slow
def test_width_140_logits_equal_torchvision():
    assert check_logits("mobilenet_v2_140") <= 1e-4


def _weights_only(c):
    """Parameters without BatchNorm's (conv and fc weights and biases), as the papers count."""
    return c.params - sum(l.params for l in c.layers if l.op == "bn")


def test_notes_figures_v2_100():
    """Notes: MobileNetV2 72.0%, 3.4M params, 300M MAdds. The MAdds agree (300.8M, printed
    truncated); 3.4M is the weights without BN (3.47M, truncated): with BN it is 3.50M."""
    c = nasty.cost(nasty.zoo.get("mobilenet_v2"))
    assert printed(c.macs / 1e6, "300")
    assert printed(_weights_only(c) / 1e6, "3.4")
    assert not printed(c.params / 1e6, "3.4") and printed(c.params / 1e6, "3.5")


def test_notes_figures_v2_140_are_slips():
    """Notes: MobileNetV2 (1.4) 74.7%, 6.9M params, 585M MAdds. The layer sizes (the notes' t, c,
    n, s table at width 1.4, last conv 1792, as torchvision and the authors' TF-slim code build
    it) give 6.1M params (6.06M weights without BN) and 582.2M MAdds: the printed 6.9M and 585M
    are slips of the paper's table, kept by the notes."""
    c = nasty.cost(nasty.zoo.get("mobilenet_v2_140"))
    assert (c.params, c.macs) == (6_108_776, 582_195_824)
    assert not printed(c.params / 1e6, "6.9") and not printed(_weights_only(c) / 1e6, "6.9")
    assert round(6.9 - _weights_only(c) / 1e6, 2) == 0.84
    assert not printed(c.macs / 1e6, "585") and round(585 - c.macs / 1e6, 1) == 2.8
