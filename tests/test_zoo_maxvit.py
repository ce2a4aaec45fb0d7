"""MaxViT-T (maxvit.nasty) equals torchvision 0.29's maxvit_t: params and MACs at 224x224 (meta
device), eval logits within 1e-4 after port_weights under both randomisations of zoo_check (at
224: torchvision builds MaxViT for one input size, and the partitions need every stage's size
divisible by 7, so 224 is the smallest), BN eps 1e-3 / momentum 0.01 and the stochastic-depth rates.
The block and grid attention layers are proven one by one in test_language_attention.py."""
import pytest
import torch

import nasty
from nasty.layers import DropPath
from zoo_check import check_against_reference, check_logits
from zoo_settings import norm_settings


def test_counts_equal_torchvision_at_224():
    c, _ = check_against_reference("maxvit_t", logits=False)
    assert c.params == 30_919_624 and round(c.macs / 1e9, 3) == 5.558       # torchvision: 5.558 GFLOPS


@pytest.mark.slow
def test_logits_equal_torchvision_at_224():
    assert check_logits("maxvit_t") <= 1e-4


def test_settings_equal_torchvision():
    g = nasty.zoo.get("maxvit_t")
    with torch.device("meta"):
        ref, ours = nasty.zoo.reference("maxvit_t"), nasty.build(g)
    assert norm_settings(ref, g.input) == norm_settings(ours, g.input)
    assert set(norm_settings(ours, g.input)) == {(1e-3, 0.01)}
    import numpy as np
    rates = np.linspace(0, 0.2, 11)
    want = [r for r in rates for _ in range(5)]          # MBConv, 2 x (attention, MLP) per layer
    assert [m.p for m in ours.modules() if isinstance(m, DropPath)] == pytest.approx(want)
