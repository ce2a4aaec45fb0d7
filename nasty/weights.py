"""Port weights between two networks that have the same layers in the same order.

Layers are matched by structure: the order in which the layers that hold parameters or
buffers run in a forward pass, each with its category (what the op registry's port rules
say it pairs with: conv, linear, bn, ln, scale), the shapes of its tensors and the sizes of
the activations it reads and writes. No per-architecture name map exists, so a genotype-built
net can take the weights of a torchvision or timm model (or a checkpoint on disk, loaded
weights_only). A pointwise 1x1 conv pairs with an nn.Linear of the same shape (ConvNeXt's
per-position Linear), its weight reshaped.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import NastyError
from .genotype.ops import SPECS


def _category(m: nn.Module) -> str:
    """What `m` pairs with, by the first port rule of the op registry that recognises it."""
    for spec in SPECS.values():
        if spec.port is not None:
            cat = spec.port.classify(m)
            if cat is not None:
                return cat
    return type(m).__name__


def _tensors(m: nn.Module):
    return [t for _, t in m.named_parameters(recurse=False)] + [t for _, t in m.named_buffers(recurse=False)]


def _signature(m: nn.Module):
    """(category, tensor shapes) with the shapes in the form that pairs across layouts: a
    linear's weight as out x in (a 1x1 conv's too), a layer scale's as its channel count."""
    cat = _category(m)
    shapes = [tuple(t.shape) for t in _tensors(m)]
    if cat == "linear":
        shapes = [s[:2] if len(s) == 4 else s for s in shapes]
    elif cat == "scale":
        shapes = [(math.prod(s),) for s in shapes]
    return cat, tuple(shapes)


def _trace(model: nn.Module, input_shape) -> list[tuple[str, nn.Module, int, int]]:
    """(name, module, input elements, output elements) of every layer that owns parameters or
    buffers, in the order a forward pass runs them (each at its first call)."""
    names = {id(m): n for n, m in model.named_modules()}
    order, seen, hooks = [], set(), []

    def numel(x):
        x = x[0] if isinstance(x, (tuple, list)) and x else x
        return x.numel() // x.shape[0] if isinstance(x, torch.Tensor) and x.dim() else 0

    def hook(mod, inp, out):
        if id(mod) not in seen:
            seen.add(id(mod))
            order.append((names.get(id(mod), "?"), mod, numel(inp), numel(out)))

    for m in model.modules():
        if _tensors(m):
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


def execution_order(model: nn.Module, input_shape) -> list[tuple[str, nn.Module]]:
    """The layers that own parameters or buffers, in the order a forward pass runs them."""
    return [(name, m) for name, m, _, _ in _trace(model, input_shape)]


def _describe(name, m, n_in, n_out) -> str:
    cat, shapes = _signature(m)
    tensors = " ".join("x".join(map(str, s)) for s in shapes)
    return f"{name} ({cat} {tensors}; reads {n_in:,} values per image, writes {n_out:,})"


def port_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> int:
    """Copy every parameter and buffer of `src` into `dst`, matched by structure.

    `input_shape` (C,H,W) defaults to the compiled genotype's input. Returns the
    number of tensors copied. Raises NastyError at the first layer where the two
    nets diverge.
    """
    shape = input_shape or getattr(dst, "input_shape", None)
    if shape is None:
        raise NastyError("port_weights needs input_shape=(C,H,W) for a module not built by nasty")
    a, b = _trace(src, shape), _trace(dst, shape)
    how = ("layers pair in the order a forward pass runs them, so if the two nets hold the same "
           "layers, reorder the genotype's nodes (or cell inputs) to run in the reference's order")
    for i, (la, lb) in enumerate(zip(a, b)):
        if _signature(la[1]) != _signature(lb[1]) or la[2:] != lb[2:]:
            raise NastyError(f"port_weights: the nets diverge at layer {i} (of {len(a)} in the source, "
                             f"{len(b)} in the destination): source {_describe(*la)} vs destination "
                             f"{_describe(*lb)}; {how}")
    if len(a) != len(b):
        extra = (a if len(a) > len(b) else b)[min(len(a), len(b))]
        side = "source" if len(a) > len(b) else "destination"
        raise NastyError(f"port_weights: the {side} has {abs(len(a) - len(b))} more layer(s), the first "
                         f"{_describe(*extra)}; the two nets are not the same architecture")
    copied = 0
    with torch.no_grad():
        for (_, ma, _, _), (_, mb, _, _) in zip(a, b):
            for theirs, ours in zip(_tensors(ma), _tensors(mb)):
                ours.copy_(theirs.reshape(ours.shape))
                copied += 1
    return copied
