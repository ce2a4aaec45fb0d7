"""The zero-cost scores themselves, one registered function each (registry.py). Each is written
from its paper's definition and checked against the reference implementations' conventions
(NASWOT's code, Abdelfattah et al.'s `foresight`, NASLib's predictors), and each is proved
against a value computed by hand on a tiny network (tests/test_scores.py).

All scores run on a freshly initialised network (seeded), in training mode as the reference
code runs them (BatchNorm normalises with the batch's own statistics), and higher is better:

    naswot     log|K_H|, K_H[i,j] = N_A - Hamming(c_i, c_j), c_i the binary code of image i's
               ReLU units (Mellor et al., Neural Architecture Search without Training, ICML 2021)
    synflow    log of sum |theta * dR/dtheta| over conv and linear weights, R = sum of the output
               of the network with BatchNorm removed and every parameter replaced by its absolute
               value, on an all-ones input, in double precision (Tanaka et al. 2020, as
               Abdelfattah et al. 2021 use it); the log keeps 1e30 and 1e60 comparable
    snip       sum |theta * dL/dtheta| over conv and linear weights, L the cross-entropy on the
               batch (Lee et al. 2019)
    grad_norm  sum over conv and linear layers of ||dL/dW||_2 (Abdelfattah et al. 2021)
    jacob_cov  -sum_i [log(v_i + k) + 1/(v_i + k)], v the eigenvalues of the correlation matrix of
               the per-image input gradients of the summed output, k = 1e-5 (Mellor et al. 2020,
               v1 of NASWOT; Abdelfattah et al.'s form)
    params     parameters of the scored network (the analytic cost model: exact)
    macs       its multiply-adds (the analytic cost model: exact)

A score may come out NaN or infinite (a network whose output does not depend on its input has
a singular kernel); the caller ranks such a candidate last (nasty/scores/__init__.py).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from .registry import register

JACOB_K = 1e-5                   # jacob_cov's regulariser (Mellor et al.: k = 1e-5)


class ScoreError(ArithmeticError):
    """A score that cannot be computed for this network (noted; the candidate ranks last)."""


def _torch():
    import torch
    return torch


def _prunable():
    """The layers whose weights the gradient scores sum over (foresight: Conv2d and Linear)."""
    from torch import nn
    return (nn.Conv2d, nn.Linear)


def _gating():
    """Activations that gate by the sign of their input, so a unit is "on" when its output is
    positive: ReLU as in NASWOT, and the smooth rectifiers of other spaces (output > 0 exactly
    when input > 0 for each of them)."""
    from torch import nn
    return (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Hardswish, nn.ELU, nn.Mish)


@dataclass
class Candidate:
    """What a score sees of one candidate: its genotype at the batch's input, its analytic cost,
    the batch (normalised images `x`, labels `y`) and the seed of its random initialisation."""
    genotype: object
    cost: object
    x: object = None
    y: object = None
    classes: int | None = None         # the network's classes (default: the genotype's own)
    seed: int = 0
    _base: object = field(default=None, repr=False)

    def network(self):
        """A freshly initialised copy of the network (the same weights on every call), in training
        mode: each score gets its own, so that none sees another's gradients or changes."""
        torch = _torch()
        if self._base is None:
            from ..compile import compile_genotype
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self._base = compile_genotype(self.genotype, input=tuple(self.x.shape[1:]),
                                              classes=self.classes or self.genotype.classes)
        model = copy.deepcopy(self._base)
        model.train()
        return model


def _logits(out):
    """The main output of a network (a network with an auxiliary head returns a pair in training)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _weights(model):
    return [m.weight for m in model.modules() if isinstance(m, _prunable()) and m.weight is not None]


@register("naswot", "log-determinant of the ReLU-code Hamming kernel of one batch (Mellor et al. 2021)")
def naswot(c: Candidate) -> float:
    torch = _torch()
    model = c.network()
    n = len(c.x)
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(module, inputs, output):
        code = (_logits(output).detach() > 0).flatten(1)
        units = code.shape[1]
        # K = c c^T + (1-c)(1-c)^T = 2 c c^T + units - |c_i| - |c_j|: one product; exact in float32
        # while a count stays below 2^24, else in float64
        f = code.to(torch.float32 if units < 2 ** 24 else torch.float64)
        ones = f.sum(1, dtype=torch.float64)
        kernel.add_(2 * (f @ f.T).double() + units - ones[:, None] - ones[None, :])

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _gating())]
    if not hooks:
        raise ScoreError("the network has no ReLU-like activation, so no binary codes")
    try:
        with torch.no_grad():
            model(c.x)
    finally:
        for h in hooks:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 else -math.inf


def _drop_batchnorm(model):
    """Replace every BatchNorm by the identity (synflow is defined on the network without it)."""
    from torch import nn
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(m, child_name, nn.Identity())


@register("synflow", "log of the synaptic flow: sum |theta * dR/dtheta| of the linearised network, "
                     "no BatchNorm, double precision (Tanaka et al. 2020; Abdelfattah et al. 2021)")
def synflow(c: Candidate) -> float:
    torch = _torch()
    model = c.network()
    _drop_batchnorm(model)
    model.double()
    model.eval()            # with BatchNorm gone this only turns off dropout and drop-path draws
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    ones = torch.ones((1, *c.x.shape[1:]), dtype=torch.float64)
    out = _logits(model(ones))
    weights = _weights(model)
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    total = sum(float((w * g).abs().sum().detach()) for w, g in zip(weights, grads) if g is not None)
    if total <= 0:
        return -math.inf
    return math.log(total)          # inf when the sum overflowed double precision


def _loss_grads(c: Candidate):
    torch = _torch()
    model = c.network()
    loss = torch.nn.functional.cross_entropy(_logits(model(c.x)), c.y)
    weights = _weights(model)
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [(w, g) for w, g in zip(weights, grads) if g is not None]


@register("snip", "connection sensitivity: sum |theta * dL/dtheta| on one batch (Lee et al. 2019)")
def snip(c: Candidate) -> float:
    return sum(float((w * g).abs().sum().detach()) for w, g in _loss_grads(c))


@register("grad_norm", "sum over layers of the L2 norm of the loss gradient on one batch "
                       "(Abdelfattah et al. 2021)")
def grad_norm(c: Candidate) -> float:
    return sum(float(g.norm()) for _, g in _loss_grads(c))


@register("jacob_cov", "how uncorrelated the input Jacobians of a batch are (Mellor et al. 2020)")
def jacob_cov(c: Candidate) -> float:
    torch = _torch()
    model = c.network()
    x = c.x.detach().clone().requires_grad_(True)
    out = _logits(model(x))
    (jac,) = torch.autograd.grad(out, x, torch.ones_like(out))
    corr = torch.corrcoef(jac.reshape(len(x), -1).double())
    if not bool(torch.isfinite(corr).all()):
        raise ScoreError("an input Jacobian is constant (the output does not depend on the input)")
    v = torch.linalg.eigvalsh(corr)
    return -float((torch.log(v + JACOB_K) + 1.0 / (v + JACOB_K)).sum())


@register("params", "parameters of the network (analytic, exact)", needs_data=False)
def params(c: Candidate) -> float:
    return float(c.cost.params)


@register("macs", "multiply-adds of the network at the batch's input (analytic, exact)", needs_data=False)
def macs(c: Candidate) -> float:
    return float(c.cost.macs)
