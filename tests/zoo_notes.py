"""Helpers for the zoo tests that check printed figures (course notes, papers) and logits.

`printed(value, text)`: does a computed value agree with a figure printed as `text` at the
precision it is printed with? The notes round most figures but truncate some (VGG-16's
conv FLOPs 1,849.7M are printed "1,849"), so either reading is accepted.

`check_logits(name)`: eval-mode logits of the zoo entry equal its reference's after
port_weights, with the reference's BatchNorm affine parameters and running statistics
randomised first. Freshly initialised references often have BN weight 1, bias 0, mean 0,
var 1 (and timm zero-initialises the last BN of each residual branch), which would hide a
misplaced BN or a branch that is never added.
"""
from __future__ import annotations

import math

import torch
from torch import nn

import nasty


def printed(value: float, text: str) -> bool:
    """`value` rounds or truncates to the figure printed as `text` (e.g. '1,849', '0.08')."""
    text = text.replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    q = 10 ** decimals
    target = round(float(text) * q)
    return round(value * q) == target or math.floor(value * q + 1e-9) == target


def table(cost, ops=("conv", "maxpool", "avgpool", "fc", "flatten")):
    """The rows of a per-layer cost table the notes tabulate (ReLU, LRN, dropout left out)."""
    return [l for l in cost.layers if l.op in ops]


def randomize_bn(model: nn.Module, seed: int = 0, scale: float = 1.0):
    """Give every BatchNorm random affine parameters and running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                if m.affine:
                    m.weight.copy_(scale * (0.5 + torch.rand(n, generator=gen)))
                    m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                if m.running_mean is not None:
                    m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model


def check_logits(name: str, atol: float = 1e-4, seed: int = 0, bn_scale: float = 1.0, rtol: float = 0.0,
                 input=None):
    """Port the reference's (BN-randomised) weights into the zoo build; compare eval logits.

    Returns the largest absolute difference. `rtol` allows for deep nets whose logits are large
    (the bound is atol + rtol * max|logit|). `input` (C, H, W) runs both at a smaller input than
    the native one, to keep big nets cheap; every layer still runs.
    """
    g = nasty.zoo.get(name)
    if input is not None:
        g = g.with_header(input=tuple(input))
    torch.manual_seed(seed)
    ref = randomize_bn(nasty.zoo.reference(name), seed, bn_scale).eval()
    model = nasty.build(g).eval()
    nasty.port_weights(ref, model, tuple(g.input))
    torch.manual_seed(seed + 1)
    x = torch.randn((2,) + tuple(g.input))
    with torch.no_grad():
        want = ref(x)
        got = model(x)
    assert got.shape == want.shape
    diff = (got - want).abs().max().item()
    bound = atol + rtol * want.abs().max().item()
    assert diff <= bound, f"{name}: logits differ by {diff} > {bound}"
    assert want.abs().max().item() > 0, f"{name}: reference logits are all zero; the check would be empty"
    return diff


def check_round_trips(name: str):
    """The zoo genotype survives text and JSON round trips unchanged."""
    from nasty.genotype import format, parse
    from nasty.genotype.jsonform import from_json, to_json
    g = nasty.zoo.get(name)
    assert parse(format(g)) == g, name
    assert from_json(to_json(g)) == g, name
