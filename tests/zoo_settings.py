"""Checks of module settings that eval-mode logits cannot see (imported by test_zoo_*.py).

BatchNorm eps and momentum, dropout rates and stochastic-depth (drop-path) rates of a zoo
build must equal its reference's, layer by layer: a wrong momentum or drop rate changes
training, not inference, so `check_logits` would never notice it.
"""
from __future__ import annotations

import torch
from torch import nn

import nasty
from nasty.compile import DropPath
from nasty.weights import execution_order


def _meta_pair(name):
    g = nasty.zoo.get(name)
    with torch.device("meta"):
        ours = nasty.build(g)
    return g, nasty.zoo.reference(name, meta=True), ours


def norm_settings(model, input_shape):
    """(eps, momentum) of every BatchNorm, in the order a forward pass runs them."""
    return [(m.eps, m.momentum) for _, m in execution_order(model, input_shape)
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def dropout_rates(model):
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


def drop_path_rates(model):
    """Rates of the stochastic-depth modules that act on a residual branch.

    torchvision's EfficientNet gives every MBConv a StochasticDepth but applies it only where
    the block has its residual (`use_res_connect`); nasty emits droppath only there.
    """
    from torchvision.ops import StochasticDepth
    out = []
    for m in model.modules():
        if isinstance(m, DropPath):
            out.append(m.p)
        elif isinstance(getattr(m, "stochastic_depth", None), StochasticDepth) and m.use_res_connect:
            out.append(m.stochastic_depth.p)
    return out


def check_settings(name):
    """BN eps/momentum, dropout and drop-path rates equal the reference's, in order."""
    g, ref, ours = _meta_pair(name)
    a, b = norm_settings(ref, g.input), norm_settings(ours, g.input)
    assert len(a) == len(b) and a == b, f"{name}: BN settings differ: {set(a)} vs {set(b)}"
    assert dropout_rates(ref) == dropout_rates(ours), (dropout_rates(ref), dropout_rates(ours))
    assert drop_path_rates(ref) == drop_path_rates(ours), (drop_path_rates(ref), drop_path_rates(ours))
    return sorted(set(b))
