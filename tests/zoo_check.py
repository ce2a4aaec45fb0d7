"""Shared checks that a zoo entry *is* its reference network (imported by test_zoo_*.py).

1. params equal, exactly;
2. analytic MACs equal FlopCounterMode/2 of the reference at its native input, exactly;
3. the analytic cost equals the compiled module's own numel / FlopCounterMode count;
4. port_weights copies the reference's weights by structure, and eval-mode logits agree to 1e-4
   after every normalisation layer of the reference got random running statistics and random
   affine parameters (`randomize_norms`), chosen so that eps matters.

Why randomise: a freshly initialised reference has BN weight 1, bias 0, mean 0, var 1 (and timm
zero-initialises the last BN of each residual branch). Then a misplaced BN, a residual branch that
is never added, or a wrong BN eps (1e-3 for 1e-5 moves a default-initialised net's logits by less
than 1e-4) would all pass.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasty

# Every normalisation layer with statistics or affine parameters: BatchNorm/InstanceNorm (and
# timm's BatchNormAct2d, a BatchNorm2d subclass), GroupNorm, LayerNorm (and LayerNorm2d subclasses).
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


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


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every normalisation layer random affine parameters and running statistics (seeded).

    A BN with an affine weight gets running var in [0.01, 0.1) and weight sqrt(var) * [0.5, 1.5):
    the layer's gain stays near 1 (deep nets keep finite logits) while eps weighs 10-100 times
    more than at var 1, so a BN eps of 1e-5 instead of 1e-3 moves the logits by far more than the
    tolerance. Running means ~ 0.1 N(0, 1), biases ~ 0.1 N(0, 1); norms without running
    statistics (GroupNorm, LayerNorm) get weight in [0.5, 1.5), those without a weight var in [0.5, 1.5).
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    with torch.no_grad():
        for m in model.modules():
            if not isinstance(m, NORMS):
                continue
            w, b = getattr(m, "weight", None), getattr(m, "bias", None)
            mean, var = getattr(m, "running_mean", None), getattr(m, "running_var", None)
            if var is not None:
                var.copy_(uniform(var.shape, 0.01, 0.1) if w is not None else uniform(var.shape, 0.5, 1.5))
                mean.copy_(0.1 * torch.randn(mean.shape, generator=gen))
            if w is not None:
                gain = uniform(w.shape, 0.5, 1.5)
                w.copy_(gain * var.sqrt() if var is not None else gain)
            if b is not None:
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
    return model


def check_logits(name: str, atol: float = 1e-4, seed: int = 0, rtol: float = 0.0,
                 input=None, genotype=None, rel: float = 1e-3) -> float:
    """Port the reference's (norm-randomised) weights into the zoo build; compare eval logits.

    Returns the largest absolute difference. It must be at most atol + rtol * max|logit| (`rtol`
    allows for deep nets whose logits are large) and at most rel * max|logit|: some nets have tiny
    logits at random init (mobilenet_v3_small's are ~0.02), where a 1e-4 bound alone would let a
    2% error (a wrong BN eps) through. `input` (C, H, W) runs both at a smaller input than
    the native one, to keep big nets cheap; every layer still runs. `genotype` replaces the zoo's
    own genotype of `name` (to prove that the check catches a wrong one).
    """
    g = genotype if genotype is not None else nasty.zoo.get(name)
    if input is not None:
        g = g.with_header(input=tuple(input))
    torch.manual_seed(seed)
    ref = randomize_norms(nasty.zoo.reference(name), seed).eval()
    with torch.device("meta"):          # every tensor is overwritten by port_weights: skip the init
        model = nasty.build(g)
    model = model.to_empty(device="cpu").eval()
    copied = nasty.port_weights(ref, model, tuple(g.input))
    assert copied == len(model.state_dict()), f"{name}: port_weights filled {copied} of {len(model.state_dict())} tensors"
    torch.manual_seed(seed + 1)
    x = torch.randn((2,) + tuple(g.input))
    with torch.no_grad():
        want = ref(x)
        got = model(x)
    assert got.shape == want.shape
    diff, scale = (got - want).abs().max().item(), want.abs().max().item()
    assert scale > 0, f"{name}: reference logits are all zero; the check would be empty"
    bound = atol + rtol * scale
    assert diff <= bound, f"{name}: logits differ by {diff} > {bound}"
    assert diff <= rel * scale, f"{name}: logits differ by {diff}, more than {rel} of their scale {scale}"
    return diff


def check_against_reference(name, atol=1e-4, logits=True, seed=0, input=None):
    """All four equivalence claims for zoo entry `name`. Returns (cost, max_abs_diff).

    Counts are at the native input, on the meta device; logits (unless `logits=False`) at
    `input` (default: native), with the reference's norm statistics randomised.
    """
    g = nasty.zoo.get(name)
    c = nasty.cost(g)
    ref_meta = nasty.zoo.reference(name, meta=True)     # counting needs shapes only: no weights
    with torch.device("meta"):
        ours_meta = nasty.build(g)
    assert c.params == count_params(ref_meta), f"{name}: params {c.params} vs reference {count_params(ref_meta)}"
    assert c.params == count_params(ours_meta), f"{name}: analytic params {c.params} vs compiled {count_params(ours_meta)}"
    ref_macs = count_macs(ref_meta, g.input)
    assert c.macs == ref_macs, f"{name}: MACs {c.macs} vs reference {ref_macs}"
    assert c.macs == count_macs(ours_meta, g.input), f"{name}: analytic MACs vs compiled"
    if not logits:
        return c, None
    return c, check_logits(name, atol=atol, seed=seed, input=input)


def _on_meta(m):
    return any(p.is_meta for p in m.parameters())
