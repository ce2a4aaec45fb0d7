"""Shared checks that a zoo entry *is* its reference network (imported by test_zoo_*.py).

1. params equal, exactly;
2. analytic MACs equal FlopCounterMode/2 of the reference at its native input, exactly;
3. the analytic cost equals the compiled module's own numel / FlopCounterMode count;
4. port_weights copies the reference's weights by structure, and eval-mode logits agree to 1e-4.
"""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

import nasty


def count_macs(model, input_shape, device="meta") -> int:
    """FlopCounterMode total / 2 of one forward pass at batch 1 (meta device: no arithmetic).

    The model itself is left untouched: a copy goes to the meta device unless it is there already.
    """
    if not _on_meta(model):
        model = copy.deepcopy(model).to(device)
    model = model.eval()
    x = torch.zeros((1,) + tuple(input_shape), device=device)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return fc.get_total_flops() // 2


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def check_self_consistent(g):
    """Analytic cost == compiled module (params by numel, MACs by FlopCounterMode/2)."""
    c = nasty.cost(g)
    m = nasty.build(g)
    assert c.params == count_params(m), (c.params, count_params(m))
    assert c.macs == count_macs(m, g.input), (c.macs, count_macs(m, g.input))
    return c


def check_against_reference(name, atol=1e-4, logits=True, seed=0):
    """All four equivalence claims for zoo entry `name`. Returns (cost, max_abs_diff)."""
    g = nasty.zoo.get(name)
    c = nasty.cost(g)
    with torch.device("meta"):            # counting needs shapes only: build without weights
        ref_meta = nasty.zoo.reference(name)
        ours_meta = nasty.build(g)
    assert c.params == count_params(ref_meta), f"{name}: params {c.params} vs reference {count_params(ref_meta)}"
    assert c.params == count_params(ours_meta), f"{name}: analytic params {c.params} vs compiled {count_params(ours_meta)}"
    ref_macs = count_macs(ref_meta, g.input)
    assert c.macs == ref_macs, f"{name}: MACs {c.macs} vs reference {ref_macs}"
    assert c.macs == count_macs(ours_meta, g.input), f"{name}: analytic MACs vs compiled"
    if not logits:
        return c, None
    torch.manual_seed(seed)
    ref = nasty.zoo.reference(name).eval()
    model = nasty.build(g).eval()
    nasty.port_weights(ref, model)
    torch.manual_seed(seed + 1)
    x = torch.randn((1,) + tuple(g.input))
    with torch.no_grad():
        diff = (model(x) - ref(x)).abs().max().item()
    assert diff <= atol, f"{name}: logits differ by {diff} > {atol}"
    return c, diff


def _on_meta(m):
    return any(p.is_meta for p in m.parameters())
