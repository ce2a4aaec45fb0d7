"""Shared checks that a zoo entry *is* its reference network (imported by test_zoo_*.py).

1. params equal, exactly;
2. analytic MACs equal FlopCounterMode/2 of the reference at its native input, exactly;
3. the analytic cost equals the compiled module's own numel / FlopCounterMode count;
4. port_weights copies the reference's weights by structure, and eval-mode logits agree to 1e-4
   under two randomisations of the reference (`RANDOMISATIONS`):
   - "norms": the reference's own initialisation, with every normalisation layer given random
     running statistics and random affine parameters (`randomize_norms`), chosen so that eps matters;
   - "weights": every parameter re-initialised (`reinit_weights`: PyTorch's default init of each
     layer, raw parameters such as class tokens, position tables and layer scales drawn at random),
     then the norms randomised as above, so that the logits depend on the input through every layer.

Why randomise: a freshly initialised reference has BN weight 1, bias 0, mean 0, var 1 (and timm
zero-initialises the last BN of each residual branch). Then a misplaced BN, a residual branch that
is never added, or a wrong BN eps (1e-3 for 1e-5 moves a default-initialised net's logits by less
than 1e-4) would all pass. Why twice: randomised norms alone keep the reference's own init, under
which some nets' logits barely depend on the input (torchvision's ViT zero-initialises its head, so
its logits are all 0; ConvNeXt's layer scales start at 1e-6, so every residual branch is nearly
invisible), and a missing residual could hide there; re-initialised weights alone would lose the
reference's init scale, under which the eps check is calibrated. Each catches what the other can miss.
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasty

# Every normalisation layer with statistics or affine parameters: BatchNorm/InstanceNorm (and
# timm's BatchNormAct2d, a BatchNorm2d subclass), GroupNorm, LayerNorm (and LayerNorm2d subclasses).
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def count_macs(model, input_shape, device="meta") -> int:
    """FlopCounterMode total / 2 of one forward pass at batch 1 (meta device: no arithmetic), with
    attention unfused (`nasty.zoo.unfused_attention`: FlopCounterMode does not count a fused
    scaled_dot_product_attention on the CPU).

    The model itself is left untouched: a copy goes to the meta device unless it is there already.
    """
    if not _on_meta(model):
        model = copy.deepcopy(model).to(device)
    model = model.eval()
    x = torch.zeros((1,) + tuple(input_shape), device=device)
    with FlopCounterMode(display=False) as fc, torch.no_grad(), nasty.zoo.unfused_attention():
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


def reinit_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter re-initialised, seeded: each layer with a `reset_parameters` gets PyTorch's
    default init (conv and linear weights and biases uniform in +-1/sqrt(fan_in); norms 1 and 0,
    which `randomize_norms` then randomises); every other parameter a module owns directly (a class
    token, a position embedding or table, a layer scale, MultiheadAttention's in_proj) uniform in
    +-1/sqrt(its last dimension) (+-0.5 for a vector), so that nothing stays zero or 1e-6."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if callable(getattr(m, "reset_parameters", None)) and not isinstance(m, NORMS):
                m.reset_parameters()
            elif not isinstance(m, NORMS):
                for p in m.parameters(recurse=False):
                    b = p.shape[-1] ** -0.5 if p.dim() >= 2 else 0.5
                    p.copy_((2 * torch.rand(p.shape, generator=gen) - 1) * b)
    return model


RANDOMISATIONS = ("norms", "weights")


def randomised_reference(name: str, how: str, seed: int = 0, ref_kwargs=None) -> nn.Module:
    """The reference of zoo entry `name` under randomisation `how` ("norms" or "weights")."""
    torch.manual_seed(seed)
    if how == "weights":       # every parameter is drawn here: skip the reference's own init
        with _parameters_on_meta():
            ref = nasty.zoo.reference(name, **(ref_kwargs or {}))
        _materialise(ref, float("nan"))
        reinit_weights(ref, seed)
        randomize_norms(ref, seed)
        missed = [n for n, p in ref.named_parameters() if torch.isnan(p).any()]
        assert not missed, f"{name}: reinit_weights left {missed[:3]} unset"
        return ref.eval()
    ref = nasty.zoo.reference(name, **(ref_kwargs or {}))
    return randomize_norms(ref, seed).eval()


def _materialise(model: nn.Module, fill: float) -> nn.Module:
    """Parameters left on the meta device by _parameters_on_meta, made real (all `fill`)."""
    with torch.no_grad():
        for m in model.modules():
            for pname, p in list(m._parameters.items()):
                if p is not None and p.is_meta:
                    m._parameters[pname] = nn.Parameter(torch.full(p.shape, fill, dtype=p.dtype),
                                                        requires_grad=p.requires_grad)
    return model


def build_for_porting(g) -> nn.Module:
    """The compiled genotype with its parameters allocated but not initialised (port_weights
    overwrites them all) and its buffers as built (index tables: port_weights runs the net first)."""
    with _parameters_on_meta():
        model = nasty.build(g)
    return _materialise(model, 0.0).eval()


@contextlib.contextmanager
def _parameters_on_meta():
    """Parameters go to the meta device as modules register them (no init arithmetic, no memory);
    buffers (index tables, running statistics) stay real."""
    register = nn.Module.register_parameter

    def to_meta(self, pname, param):
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(self, pname, param)

    nn.Module.register_parameter = to_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def check_logits(name: str, atol: float = 1e-4, seed: int = 0, rtol: float = 0.0,
                 input=None, genotype=None, rel: float = 1e-3, ref_kwargs=None,
                 randomisations=RANDOMISATIONS, diffs: dict | None = None) -> float:
    """Port the reference's randomised weights into the zoo build; compare eval logits, once per
    randomisation (RANDOMISATIONS: the reference's init with randomised norms; every weight
    re-initialised, norms randomised).

    Returns the largest absolute difference (`diffs`, a dict, receives each randomisation's). It
    must be at most atol + rtol * max|logit| (`rtol` allows for deep nets whose logits are large)
    and at most rel * max|logit|: some nets have tiny logits at random init (mobilenet_v3_small's
    are ~0.02), where a 1e-4 bound alone would let a 2% error (a wrong BN eps) through. `input`
    (C, H, W) runs both at a smaller input than the native one, to keep big nets cheap; every layer
    still runs (`ref_kwargs` builds the reference for it where its layout depends on the input
    size, as ViT's position embedding does). `genotype` replaces the zoo's own genotype of `name`
    (to prove that the check catches a wrong one). Under "norms" a reference whose own init makes
    every logit 0 (ViT's zero-initialised head) cannot be compared; "weights" must then run.
    """
    g = genotype if genotype is not None else nasty.zoo.get(name)
    if input is not None:
        g = g.with_header(input=tuple(input))
    worst = 0.0
    compared = 0
    for how in randomisations:
        ref = randomised_reference(name, how, seed, ref_kwargs)
        model = build_for_porting(g)       # every tensor is overwritten by port_weights: skip the init
        copied = nasty.port_weights(ref, model, tuple(g.input))
        assert copied == len(model.state_dict()), f"{name}: port_weights filled {copied} of {len(model.state_dict())} tensors"
        torch.manual_seed(seed + 1)
        x = torch.randn((2,) + tuple(g.input))
        with torch.no_grad():
            want = ref(x)
            got = model(x)
        del ref, model
        assert got.shape == want.shape
        diff, scale = (got - want).abs().max().item(), want.abs().max().item()
        if scale == 0 and how == "norms" and "weights" in randomisations:
            if diffs is not None:
                diffs[how] = None              # nothing to compare: the reference's logits are all 0
            assert diff == 0, f"{name}: logits differ by {diff} where the reference's are all 0"
            continue
        assert scale > 0, f"{name}: reference logits are all zero under {how!r}; the check would be empty"
        bound = atol + rtol * scale
        assert diff <= bound, f"{name}: logits differ by {diff} > {bound} (randomised {how})"
        assert diff <= rel * scale, (f"{name}: logits differ by {diff}, more than {rel} of their scale {scale} "
                                     f"(randomised {how})")
        if diffs is not None:
            diffs[how] = diff
        worst = max(worst, diff)
        compared += 1
    assert compared, f"{name}: no randomisation compared any logits"
    return worst


def check_against_reference(name, atol=1e-4, logits=True, seed=0, input=None, ref_kwargs=None):
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
    return c, check_logits(name, atol=atol, seed=seed, input=input, ref_kwargs=ref_kwargs)


def _on_meta(m):
    return any(p.is_meta for p in m.parameters())
