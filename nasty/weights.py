"""Port weights between two networks that have the same layers in the same order.

Layers are matched by structure: the order in which parameterised layers run in
a forward pass, and the shapes of their parameters and buffers. No per-
architecture name map exists, so a genotype-built net can take the weights of
a torchvision or timm model (or a checkpoint on disk, loaded weights_only).
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import NastyError


def _category(m: nn.Module) -> str:
    if isinstance(m, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "bn"
    return type(m).__name__


def _signature(m: nn.Module):
    own = list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))
    return _category(m), tuple((n, tuple(t.shape)) for n, t in own)


def execution_order(model: nn.Module, input_shape) -> list[tuple[str, nn.Module]]:
    """The layers that own parameters or buffers, in the order a forward pass runs them."""
    names = {id(m): n for n, m in model.named_modules()}
    order, seen, hooks = [], set(), []

    def hook(mod, _inp, _out):
        if id(mod) not in seen:
            seen.add(id(mod))
            order.append((names.get(id(mod), "?"), mod))

    for m in model.modules():
        if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order


def port_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> int:
    """Copy every parameter and buffer of `src` into `dst`, matched by structure.

    `input_shape` (C,H,W) defaults to the compiled genotype's input. Returns the
    number of tensors copied. Raises NastyError naming the first layer that
    does not match.
    """
    shape = input_shape or getattr(dst, "input_shape", None)
    if shape is None:
        raise NastyError("port_weights needs input_shape=(C,H,W) for a module not built by nasty")
    a, b = execution_order(src, shape), execution_order(dst, shape)
    for i, ((na, ma), (nb, mb)) in enumerate(zip(a, b)):
        if _signature(ma) != _signature(mb):
            raise NastyError(f"port_weights: layer {i} differs: source {na} {_signature(ma)} "
                             f"vs destination {nb} {_signature(mb)}; the two nets are not the same architecture")
    if len(a) != len(b):
        extra = (a if len(a) > len(b) else b)[min(len(a), len(b))]
        side = "source" if len(a) > len(b) else "destination"
        raise NastyError(f"port_weights: {side} has {abs(len(a) - len(b))} more layer(s), first "
                         f"{extra[0]}; the two nets are not the same architecture")
    copied = 0
    with torch.no_grad():
        for (_, ma), (_, mb) in zip(a, b):
            theirs = dict(list(ma.named_parameters(recurse=False)) + list(ma.named_buffers(recurse=False)))
            for name, t in list(mb.named_parameters(recurse=False)) + list(mb.named_buffers(recurse=False)):
                t.copy_(theirs[name])
                copied += 1
    return copied
