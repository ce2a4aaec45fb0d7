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


def _trace(model: nn.Module, input_shape) -> list[tuple[str, nn.Module, int, int, int]]:
    """(name, module, input elements, output elements, input rows) of every layer that owns
    parameters or buffers, in the order a forward pass runs them (each at its first call), for a
    batch of one image."""
    order, _ = _run(model, input_shape)
    return order


def _run(model: nn.Module, input_shape, watch=frozenset()):
    """One forward pass at batch 1 (zeros): the layers with tensors in the order they finish
    their first call, with the values each reads and writes and its input rows; and the order in which
    the tensors whose ids are in `watch` are first passed to a torch function."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    names = {id(m): n for n, m in model.named_modules()}
    order, seen, hooks, first = [], set(), [], {}

    def first_tensor(x):
        x = x[0] if isinstance(x, (tuple, list)) and x else x
        return x if isinstance(x, torch.Tensor) and x.dim() else None

    def hook(mod, inp, out):
        if id(mod) not in seen:
            seen.add(id(mod))
            # batch 1: every element belongs to the one image, whatever the layout; the rows (the
            # input's first dimension) are above 1 where a layer folds patches or windows into the batch
            i, o = first_tensor(inp), first_tensor(out)
            order.append((names.get(id(mod), "?"), mod, i.numel() if i is not None else 0,
                          o.numel() if o is not None else 0, i.shape[0] if i is not None else 1))

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
    return [(name, m) for name, m, *_ in _trace(model, input_shape)]


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
    `category`, `tensors`, `shapes` (as they pair), `sizes` ((values read, values written, input
    rows) for the one image of the trace, for a layer with no tensors below it that the forward
    pass calls; else None) and `owner` (the module holding the tensors, and its name)."""
    out = []
    for mname, m in model.named_modules():
        params = list(m.named_parameters(recurse=False))
        buffers = list(m.named_buffers(recurse=False))
        if not params and not buffers:
            continue
        leaf = not any(_tensors(c) for c in m.modules() if c is not m)
        if _recognised(m):
            cat = _category(m)
            ts = [t for _, t in params + buffers]
            out.append({"name": mname or type(m).__name__, "category": cat, "tensors": ts,
                        "module": m if leaf else None, "owner": (mname, m, leaf),
                        "shapes": _normalised(cat, [tuple(t.shape) for t in ts])})
            continue
        for tname, t in params + buffers:
            cat = _tensor_category(t, any(t is p for _, p in params))
            out.append({"name": f"{mname}.{tname}" if mname else tname, "category": cat, "tensors": [t],
                        "module": None, "owner": (mname, m, leaf), "shapes": _normalised(cat, [tuple(t.shape)])})
    watch = frozenset(id(t) for u in out for t in u["tensors"])
    order, first = _run(model, input_shape, watch)
    sizes = {id(m): (n_in, n_out, rows) for _, m, n_in, n_out, rows in order}
    never = len(first)
    for i, u in enumerate(out):
        u["first"] = (min(first.get(id(t), never) for t in u["tensors"]), i)
        u["sizes"] = sizes.get(id(u["module"])) if u["module"] is not None else None
        u["owner_sizes"] = sizes.get(id(u["owner"][1]))
    return sorted(out, key=lambda u: u["first"])


def _io(sizes) -> str:
    if not sizes:
        return ""
    folded = f" in {sizes[2]} rows" if sizes[2] > 1 else ""
    return f"; reads {sizes[0]:,} values{folded}, writes {sizes[1]:,}"


def _describe(u) -> str:
    if _foreign(u):                      # a whole module no port rule knows: named as the module it is
        name, m, _ = u["owner"]
        tensors = " ".join("x".join(map(str, t.shape)) for t in _tensors(m))
        return f"{name or type(m).__name__} ({type(m).__name__} {tensors}{_io(u['owner_sizes'])})"
    tensors = " ".join("x".join(map(str, s)) for s in u["shapes"])
    return f"{u['name']} ({u['category']} {tensors}{_io(u['sizes'])})"


def _foreign(u) -> bool:
    """A tensor of a called layer that no port rule recognises (a GroupNorm, say): no op of the
    language builds such a layer, so nothing can pair with it. (A tensor a transformer keeps on a
    module with layers below it, such as ViT's class token, is not foreign: ops pair with it.)"""
    name, m, leaf = u["owner"]
    return u["module"] is None and leaf and u["owner_sizes"] is not None and not _recognised(m) \
        and not m.__class__.__module__.startswith("nasty.")


def _same(u, v) -> bool:
    return u["category"] == v["category"] and u["shapes"] == v["shapes"] and \
        (u["sizes"] is None or v["sizes"] is None or u["sizes"][:2] == v["sizes"][:2])


def _cause(a: list[dict], b: list[dict], ua, ub, i: int) -> str:
    """Why the source unit `ua` (None: its category ran out) and the destination's unit `ub`, the
    i-th in its net's order, do not pair, and what to do, naming the real cause: never "reorder"
    unless the other side runs the layer later."""
    if ua is None:                       # the unit the source runs at this place in its own order
        ua = a[i] if i < len(a) else None
        if ua is None:
            return "the source has no more layers: the two nets are not the same architecture"
    for side, u in (("source", ua), ("destination", ub)):
        if _foreign(u):
            name, m, _ = u["owner"]
            return (f"the {side}'s {name or type(m).__name__} is a {type(m).__name__}, which no op of the genotype "
                    f"language pairs with (port_weights pairs convs, linears, batch and layer norms, layer scales "
                    f"and attention's tensors; docs/language.md says what it cannot pair), so these weights "
                    f"cannot be ported")
    (ca, sa), (cb, sb) = (ua["category"], ua["shapes"]), (ub["category"], ub["shapes"])
    if ca == cb and sa != sb and len(sa) != len(sb) and sa[0] == sb[0]:
        more, less = ("source", "destination") if len(sa) > len(sb) else ("destination", "source")
        if ca in ("conv", "linear"):
            return (f"the {more}'s {ca} has a bias and the {less}'s has none: give the genotype's op bias=1 "
                    f"or bias=0 to match (`defaults conv.bias=` reaches ops written conv, not dwconv, sep or "
                    f"linear, which take dwconv.bias=, sep.bias=, linear.bias=)")
        return (f"the {more}'s {ca} has learnable affine parameters (or running statistics) the {less}'s lacks: "
                f"give the genotype's {ca} affine= to match")
    for later, this, side, other in ((b, ua, "destination", "source"), (a, ub, "source", "destination")):
        start = (b.index(ub) if later is b else a.index(ua)) + 1
        for j in range(start, len(later)):
            if _same(later[j], this):
                return (f"the {side} runs the {other}'s layer later, as layer {j} ({later[j]['name']}): the same "
                        f"layers in another order (layers pair in the order a forward pass runs them), so reorder "
                        f"the genotype's nodes, a join's operands or a cell's inputs to run in the reference's order")
    if ca != cb:
        return f"a {ca} in the source where the destination has a {cb}: the nets differ at this layer"
    if sa == sb:
        folded = " (one side folds patches or windows into the batch, which alone would pair)" \
            if ua["sizes"] and ub["sizes"] and ua["sizes"][2] != ub["sizes"][2] else ""
        return (f"the same weights at another activation size{folded}: a stride, padding or size differs at or "
                f"before this layer, or input_shape= is not an input both nets are built for")
    return f"{ca}s of other shapes: the nets differ in width, kernel or groups at this layer"


def _pairs(a: list[dict], b: list[dict]):
    """(source unit, destination unit) pairs, category by category in first-use order; a
    NastyError at the first destination unit (in its net's order) without a matching source."""
    by_cat: dict[str, list] = {}
    for u in a:
        by_cat.setdefault(u["category"], []).append(u)
    taken = {cat: 0 for cat in by_cat}
    pairs = []
    for i, ub in enumerate(b):
        cat = ub["category"]
        k = taken.get(cat, 0)
        queue = by_cat.get(cat, [])
        ua = queue[k] if k < len(queue) else None
        if ua is None or not _same(ua, ub):
            shown = ua if ua is not None else (a[i] if i < len(a) else None)
            source = f"source {_describe(shown)} vs destination" if shown is not None else "destination"
            raise NastyError(f"port_weights: the nets diverge at layer {i} (of {len(a)} in the source, "
                             f"{len(b)} in the destination): {source} {_describe(ub)}: {_cause(a, b, ua, ub, i)}")
        taken[cat] = k + 1
        pairs.append((ua, ub))
    left = [u for cat, queue in by_cat.items() for u in queue[taken[cat]:]]
    if left:
        first = min(left, key=lambda u: u["first"])
        raise NastyError(f"port_weights: the source has {len(left)} more layer(s), the first "
                         f"{_describe(first)}; the two nets are not the same architecture")
    return pairs


def port_weights(src: nn.Module, dst: nn.Module, input_shape=None) -> int:
    """Copy every parameter and buffer of `src` into `dst`, matched by structure.

    Both nets run one forward pass, in eval mode and without gradients, on one image of zeros
    of shape `input_shape` (C,H,W); what holds parameters or buffers pairs category by category
    in the order the forward pass first uses it, by tensor shapes and the elements a layer reads
    and writes. `input_shape` defaults to the input of `dst` when nasty built it (then of `src`);
    it must be given for two modules nasty did not build, and must be an input both nets accept
    (a ViT's position embedding fixes its size). Returns the number of tensors copied. Raises a
    one-line NastyError at the first layer where the two nets diverge, naming both layers and
    the cause.
    """
    shape = input_shape or getattr(dst, "input_shape", None) or getattr(src, "input_shape", None)
    if shape is None:
        raise NastyError("port_weights needs input_shape=(C,H,W) for two modules not built by nasty: the input "
                         "both run at while their layers are paired")
    pairs = _pairs(units(src, shape), units(dst, shape))
    copied = 0
    with torch.no_grad():
        for ua, ub in pairs:
            for theirs, ours in zip(ua["tensors"], ub["tensors"]):
                ours.copy_(theirs.reshape(ours.shape))
                copied += 1
    return copied
