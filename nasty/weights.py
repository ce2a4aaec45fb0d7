"""Port weights between two networks that have the same layers in the same order.

Layers are matched by structure: the order in which a forward pass first uses their tensors,
each with its category (what the op registry's port rules say it pairs with: conv, linear, bn,
ln, scale), the shapes of its tensors and the sizes of the activations it reads and writes. No
per-architecture name map exists, so a genotype-built net can take the weights of a torchvision
or timm model (or a checkpoint on disk, loaded weights_only). A pointwise 1x1 conv pairs with
an nn.Linear of the same shape (ConvNeXt's per-position Linear), its weight reshaped.

Transformers keep weights outside such layers and use them without calling the layer that owns
them: ViT's class token and position embedding belong to the model and its encoder, torchvision's
Swin attention hands its qkv and proj weights to a function and computes its position bias before
its qkv projection. So the units paired are: a module that a port rule recognises (all its own
tensors together), else each tensor a module owns directly, classified as if it were a module of
its own (by the port rules, else as a parameter, a float buffer or an integer index). Units pair
category by category, each category in the order of first use (seen by a TorchFunctionMode), so
the order in which two implementations interleave layers of different kinds does not matter,
while the order of the layers of one kind does.
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


def _recognised(m: nn.Module) -> bool:
    return any(spec.port is not None and spec.port.classify(m) is not None for spec in SPECS.values())


def _tensors(m: nn.Module):
    return [t for _, t in m.named_parameters(recurse=False)] + [t for _, t in m.named_buffers(recurse=False)]


def _normalised(cat: str, shapes):
    """Tensor shapes in the form that pairs across layouts: a linear's weight as out x in (a 1x1
    conv's too), a layer scale's and an index's as their element count."""
    if cat == "linear":
        return tuple(s[:2] if len(s) == 4 else s for s in shapes)
    if cat in ("scale", "index"):
        return tuple((math.prod(s),) for s in shapes)
    return tuple(shapes)


def _signature(m: nn.Module):
    """(category, tensor shapes) of a module, the shapes in the form that pairs across layouts."""
    cat = _category(m)
    return cat, _normalised(cat, [tuple(t.shape) for t in _tensors(m)])


def _trace(model: nn.Module, input_shape) -> list[tuple[str, nn.Module, int, int]]:
    """(name, module, input elements, output elements) of every layer that owns parameters or
    buffers, in the order a forward pass runs them (each at its first call)."""
    order, _ = _run(model, input_shape)
    return order


def _run(model: nn.Module, input_shape, watch=frozenset()):
    """One forward pass at batch 1 (zeros): the layers with tensors in the order they finish
    their first call, with the values per image each reads and writes; and the order in which
    the tensors whose ids are in `watch` are first passed to a torch function."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    names = {id(m): n for n, m in model.named_modules()}
    order, seen, hooks, first = [], set(), [], {}

    def numel(x):
        x = x[0] if isinstance(x, (tuple, list)) and x else x
        return x.numel() // x.shape[0] if isinstance(x, torch.Tensor) and x.dim() else 0

    def hook(mod, inp, out):
        if id(mod) not in seen:
            seen.add(id(mod))
            order.append((names.get(id(mod), "?"), mod, numel(inp), numel(out)))

    class FirstUse(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            for leaf in tree_flatten((args, kwargs))[0]:
                if isinstance(leaf, torch.Tensor) and id(leaf) in watch and id(leaf) not in first:
                    first[id(leaf)] = len(first)
            return func(*args, **kwargs)

    for m in model.modules():
        if _tensors(m):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad(), FirstUse() if watch else _nothing():
            model(torch.zeros((1,) + tuple(input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order, first


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def execution_order(model: nn.Module, input_shape) -> list[tuple[str, nn.Module]]:
    """The layers that own parameters or buffers, in the order a forward pass runs them."""
    return [(name, m) for name, m, _, _ in _trace(model, input_shape)]


class _Holder(nn.Module):
    """One tensor as a module of its own, for the port rules to classify."""

    def __init__(self, t: torch.Tensor, parameter: bool):
        super().__init__()
        if parameter:
            self.t = t if isinstance(t, nn.Parameter) else nn.Parameter(t, requires_grad=False)
        else:
            self.register_buffer("t", t)


def _tensor_category(t: torch.Tensor, parameter: bool) -> str:
    cat = _category(_Holder(t, parameter))
    if cat != "_Holder":
        return cat
    if not t.is_floating_point():
        return "index"
    return "param" if parameter else "buffer"


def units(model: nn.Module, input_shape) -> list[dict]:
    """What port_weights pairs, in the order a forward pass first uses it: dicts with `name`,
    `category`, `tensors`, `shapes` (as they pair) and `sizes` ((values read, values written)
    per image, for a layer with no tensors below it that the forward pass calls; else None)."""
    out = []
    for mname, m in model.named_modules():
        params = list(m.named_parameters(recurse=False))
        buffers = list(m.named_buffers(recurse=False))
        if not params and not buffers:
            continue
        if _recognised(m):
            cat = _category(m)
            ts = [t for _, t in params + buffers]
            leaf = not any(_tensors(c) for c in m.modules() if c is not m)
            out.append({"name": mname or type(m).__name__, "category": cat, "tensors": ts,
                        "module": m if leaf else None, "shapes": _normalised(cat, [tuple(t.shape) for t in ts])})
            continue
        for tname, t in params + buffers:
            cat = _tensor_category(t, any(t is p for _, p in params))
            out.append({"name": f"{mname}.{tname}" if mname else tname, "category": cat, "tensors": [t],
                        "module": None, "shapes": _normalised(cat, [tuple(t.shape)])})
    watch = frozenset(id(t) for u in out for t in u["tensors"])
    order, first = _run(model, input_shape, watch)
    sizes = {id(m): (n_in, n_out) for _, m, n_in, n_out in order}
    never = len(first)
    for i, u in enumerate(out):
        u["first"] = (min(first.get(id(t), never) for t in u["tensors"]), i)
        u["sizes"] = sizes.get(id(u["module"])) if u["module"] is not None else None
    return sorted(out, key=lambda u: u["first"])


def _describe(u) -> str:
    tensors = " ".join("x".join(map(str, s)) for s in u["shapes"])
    io = f"; reads {u['sizes'][0]:,} values per image, writes {u['sizes'][1]:,}" if u["sizes"] else ""
    return f"{u['name']} ({u['category']} {tensors}{io})"


def _pairs(a: list[dict], b: list[dict]):
    """(source unit, destination unit) pairs, category by category in first-use order; a
    NastyError at the first destination unit (in its net's order) without a matching source."""
    by_cat: dict[str, list] = {}
    for u in a:
        by_cat.setdefault(u["category"], []).append(u)
    taken = {cat: 0 for cat in by_cat}
    how = ("layers pair in the order a forward pass runs them, so if the two nets hold the same "
           "layers, reorder the genotype's nodes (or cell inputs) to run in the reference's order")
    pairs = []
    for i, ub in enumerate(b):
        cat = ub["category"]
        k = taken.get(cat, 0)
        queue = by_cat.get(cat, [])
        if k >= len(queue):
            have = f"only {len(queue)} {cat} layer(s)" if queue else f"no {cat} layer"
            raise NastyError(f"port_weights: the nets diverge at layer {i} (of {len(a)} in the source, "
                             f"{len(b)} in the destination): the source has {have}, the destination's "
                             f"{_describe(ub)} has no counterpart; the two nets are not the same architecture")
        ua = queue[k]
        taken[cat] = k + 1
        sizes_differ = ua["sizes"] is not None and ub["sizes"] is not None and ua["sizes"] != ub["sizes"]
        if ua["shapes"] != ub["shapes"] or sizes_differ:
            raise NastyError(f"port_weights: the nets diverge at layer {i} (of {len(a)} in the source, "
                             f"{len(b)} in the destination): source {_describe(ua)} vs destination "
                             f"{_describe(ub)}; {how}")
        pairs.append((ua, ub))
    left = [u for cat, queue in by_cat.items() for u in queue[taken[cat]:]]
    if left:
        first = min(left, key=lambda u: u["first"])
        raise NastyError(f"port_weights: the source has {len(left)} more layer(s), the first "
                         f"{_describe(first)}; the two nets are not the same architecture")
    return pairs


def port_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> int:
    """Copy every parameter and buffer of `src` into `dst`, matched by structure.

    `input_shape` (C,H,W) defaults to the compiled genotype's input. Returns the
    number of tensors copied. Raises NastyError at the first layer where the two
    nets diverge.
    """
    shape = input_shape or getattr(dst, "input_shape", None)
    if shape is None:
        raise NastyError("port_weights needs input_shape=(C,H,W) for a module not built by nasty")
    pairs = _pairs(units(src, shape), units(dst, shape))
    copied = 0
    with torch.no_grad():
        for ua, ub in pairs:
            for theirs, ours in zip(ua["tensors"], ub["tensors"]):
                ours.copy_(theirs.reshape(ours.shape))
                copied += 1
    return copied
