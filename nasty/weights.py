"""Port weights between two networks that have the same layers in the same order.

Layers are matched by structure: the order in which the layers that hold parameters or
buffers run in a forward pass, each with its category (what the op registry's port rules
say it pairs with: conv, linear, bn, ln, scale), the shapes of its tensors and the sizes of
the activations it reads and writes. No per-architecture name map exists, so a genotype-built
net can take the weights of a torchvision or timm model (or a checkpoint on disk, loaded
weights_only). A pointwise 1x1 conv pairs with an nn.Linear of the same shape (ConvNeXt's
per-position Linear), its weight reshaped.

Activation sizes are compared as the elements a layer reads and writes for the one image the
trace runs, whatever their layout: a reference that folds patches or windows into the batch
(Swin's window attention, a sequence-first nn.MultiheadAttention) pairs like any other. Where
two layers do not pair, the error names both and the cause: a bias (or affine) one side lacks,
a module no op of the language pairs with, the same layer run later on the other side (then,
and only then, the nodes are in another order), another activation size, or other shapes.
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


def _trace(model: nn.Module, input_shape) -> list[tuple[str, nn.Module, int, int, int]]:
    """(name, module, input elements, output elements, input rows) of every layer that owns
    parameters or buffers, in the order a forward pass runs them (each at its first call), for a
    batch of one image: the elements whatever the layout, the rows (the input's first dimension)
    above 1 where a layer folds patches or windows into the batch."""
    names = {id(m): n for n, m in model.named_modules()}
    order, seen, hooks = [], set(), []

    def first(x):
        x = x[0] if isinstance(x, (tuple, list)) and x else x
        return x if isinstance(x, torch.Tensor) and x.dim() else None

    def hook(mod, inp, out):
        if id(mod) not in seen:
            seen.add(id(mod))
            i, o = first(inp), first(out)
            order.append((names.get(id(mod), "?"), mod, i.numel() if i is not None else 0,
                          o.numel() if o is not None else 0, i.shape[0] if i is not None else 1))

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
    return [(name, m) for name, m, *_ in _trace(model, input_shape)]


def _describe(name, m, n_in, n_out, rows=1) -> str:
    cat, shapes = _signature(m)
    tensors = " ".join("x".join(map(str, s)) for s in shapes)
    folded = f" in {rows} rows" if rows > 1 else ""
    return f"{name} ({cat} {tensors}; reads {n_in:,} values{folded}, writes {n_out:,})"


# the categories the op registry's port rules give (what a genotype-built layer can be)
_PAIRED = ("conv", "linear", "bn", "ln", "scale")


def _cause(a, b, i) -> str:
    """Why layer i of the source trace `a` and of the destination trace `b` do not pair, and
    what to do, naming the real cause (never "reorder" unless the other side runs it later)."""
    la, lb = a[i], b[i]
    (ca, sa), (cb, sb) = _signature(la[1]), _signature(lb[1])
    for side, (name, m, *_), cat in (("source", la, ca), ("destination", lb, cb)):
        if cat not in _PAIRED:
            return (f"the {side}'s {name} is a {type(m).__name__}, which no op of the genotype language pairs "
                    f"with (port_weights pairs convs, linears, batch and layer norms and layer scales; "
                    f"docs/language.md says what it cannot pair), so these weights cannot be ported")
    if ca == cb and sa != sb and len(sa) != len(sb) and sa[0] == sb[0]:
        more, less = ("source", "destination") if len(sa) > len(sb) else ("destination", "source")
        if ca in ("conv", "linear"):
            return (f"the {more}'s {ca} has a bias and the {less}'s has none: give the genotype's op bias=1 "
                    f"or bias=0 to match (`defaults conv.bias=` reaches ops written conv, not dwconv, sep or "
                    f"linear, which take dwconv.bias=, sep.bias=, linear.bias=)")
        return (f"the {more}'s {ca} has learnable affine parameters (or running statistics) the {less}'s lacks: "
                f"give the genotype's {ca} affine= to match")
    for j in range(i + 1, len(b)):
        if _signature(b[j][1]) == (ca, sa) and b[j][2:4] == la[2:4]:
            return (f"the destination runs the source's layer later, as layer {j} ({b[j][0]}): the same layers "
                    f"in another order (layers pair in the order a forward pass runs them), so reorder the "
                    f"genotype's nodes, a join's operands or a cell's inputs to run in the reference's order")
    for j in range(i + 1, len(a)):
        if _signature(a[j][1]) == (cb, sb) and a[j][2:4] == lb[2:4]:
            return (f"the source runs the destination's layer later, as layer {j} ({a[j][0]}): the same layers "
                    f"in another order (layers pair in the order a forward pass runs them), so reorder the "
                    f"genotype's nodes, a join's operands or a cell's inputs to run in the reference's order")
    if (ca, sa) == (cb, sb):
        folded = " (one side folds patches or windows into the batch, which alone would pair)" \
            if la[4] != lb[4] else ""
        return (f"the same weights at another activation size{folded}: a stride, padding or size differs at or before "
                f"this layer, or input_shape= is not an input both nets are built for")
    if ca != cb:
        return f"a {ca} in the source where the destination has a {cb}: the nets differ at this layer"
    return f"{ca}s of other shapes: the nets differ in width, kernel or groups at this layer"


def port_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> int:
    """Copy every parameter and buffer of `src` into `dst`, matched by structure.

    Both nets run one forward pass, in eval mode and without gradients, on one image of zeros
    of shape `input_shape` (C,H,W); the layers that own parameters or buffers pair in the
    order they run, by category, tensor shapes and the elements they read and write.
    `input_shape` defaults to the input of `dst` when nasty built it (then of `src`); it must
    be given for two modules nasty did not build, and must be an input both nets accept (a
    ViT's position embedding fixes its size). Returns the number of tensors copied. Raises a
    one-line NastyError at the first layer where the two nets diverge, naming both layers and
    the cause.
    """
    shape = input_shape or getattr(dst, "input_shape", None) or getattr(src, "input_shape", None)
    if shape is None:
        raise NastyError("port_weights needs input_shape=(C,H,W) for two modules not built by nasty: the input "
                         "both run at while their layers are paired")
    a, b = _trace(src, shape), _trace(dst, shape)
    for i, (la, lb) in enumerate(zip(a, b)):
        if _signature(la[1]) != _signature(lb[1]) or la[2:4] != lb[2:4]:
            raise NastyError(f"port_weights: the nets diverge at layer {i} (of {len(a)} in the source, "
                             f"{len(b)} in the destination): source {_describe(*la)} vs destination "
                             f"{_describe(*lb)}: {_cause(a, b, i)}")
    if len(a) != len(b):
        extra = (a if len(a) > len(b) else b)[min(len(a), len(b))]
        side = "source" if len(a) > len(b) else "destination"
        raise NastyError(f"port_weights: the {side} has {abs(len(a) - len(b))} more layer(s), the first "
                         f"{_describe(*extra)}; the two nets are not the same architecture")
    copied = 0
    with torch.no_grad():
        for (_, ma, *_), (_, mb, *_) in zip(a, b):
            for theirs, ours in zip(_tensors(ma), _tensors(mb)):
                ours.copy_(theirs.reshape(ours.shape))
                copied += 1
    return copied
