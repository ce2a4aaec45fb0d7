"""The op registry: one entry per op of the genotype language.

In the spirit of torch's `flop_registry` (one small registered definition per op), every
op is defined once, here, with all that nasty knows about it:

- its attributes, with their defaults and their valid values (`bn eps=-1` is refused,
  naming the op and the attribute);
- its shape rule: input shape + attributes -> the step it emits (or, for ops made of other
  ops such as `sep` or `shortcut`, the steps it lowers to);
- its cost: params, MACs, pooling FLOPs and other FLOPs of one step;
- the torch module (or, for joins, the function) it compiles to;
- what `port_weights` pairs that module with in a reference network.

The parser, the static checks, shape inference (`elaborate.py`), the cost model, the
compiler and weight porting all look ops up here, and the README's op reference is
generated from it (`opref.py`). Adding an op is one
`register(...)` call plus its test. torch is imported only by the compile functions, so
parsing and costing a genotype never load it.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

_REQ = REQUIRED = object()   # marker: an attribute with no default, which must be given


# ======================================================================= attribute domains
class BadValue(ValueError):
    """An attribute value outside its domain; the elaborator names the op and attribute."""


@dataclass(frozen=True)
class Domain:
    """The values an attribute may take: `what` for messages, `convert` checks and normalises."""
    what: str
    convert: Callable[[Any], Any]
    words: tuple[str, ...] = ()        # bare words it accepts (they become value keywords)
    short: str = ""                    # for the op reference: ">= 1", "[0, 1)", "nearest|bilinear"

    @property
    def must(self) -> str:             # "must be a positive integer", "must name an activation (...)"
        return self.what if self.what.startswith("name ") else f"be {self.what}"


def _integer(lo=None):
    def convert(v):
        if type(v) is int and (lo is None or v >= lo):     # the common case, first
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo):
            raise BadValue
        return v
    what = {None: "an integer", 0: "an integer >= 0", 1: "a positive integer"}[lo]
    return Domain(what, convert, short={None: "integer", 0: ">= 0", 1: ">= 1"}[lo])


def _number(lo=None, hi=None, lo_open=False, hi_open=False):
    def convert(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise BadValue
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise BadValue
        if hi is not None and (v > hi or (hi_open and v == hi)):
            raise BadValue
        return float(v)
    if lo is None and hi is None:
        short = ""
    elif hi is None:
        short = f"{'>' if lo_open else '>='} {lo:g}"
    else:
        short = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    what = "a number" + (f" {short}" if hi is None and short else f" in {short}" if short else "")
    return Domain(what, convert, short=short)


def _flag_convert(v):
    if v in ("true", "false"):
        return v == "true"
    if not isinstance(v, str) and v in (0, 1):
        return bool(v)
    raise BadValue


def _choice(*words):
    def convert(v):
        if v not in words:
            raise BadValue
        return v
    return Domain("one of " + ", ".join(words), convert, words, short="|".join(words))


def _named(dom: Domain, phrase: str) -> Domain:
    return Domain(f"{phrase} ({', '.join(dom.words)})", dom.convert, dom.words, short="an activation name")


def _or_word(dom: Domain, word: str) -> Domain:
    def convert(v):
        return v if v == word else dom.convert(v)
    return Domain(f"{dom.what} or {word}", convert, dom.words + (word,), short=f"{dom.short} or {word}")


INT = _integer()
NONNEG = _integer(0)
POS_INT = _integer(1)
NUMBER = _number()
POSITIVE = _number(0, lo_open=True)
PROB = _number(0, 1, hi_open=True)
UNIT = _number(0, 1)
FLAG = Domain("0/1 or true/false", _flag_convert, ("true", "false"), short="0/1")
PADDING = _or_word(NONNEG, "same")


def _axis_convert(v):
    v = INT.convert(v)
    if v not in (1, 2, 3, -1, -2, -3):
        raise BadValue
    return v


AXIS = Domain("an axis of N x C x H x W: 1, 2, 3 (or -3, -2, -1)", _axis_convert, short="1|2|3|-1|-2|-3")


@dataclass(frozen=True)
class Attr:
    default: Any = REQUIRED      # REQUIRED, None (derived from other attributes or the input), or a value
    domain: Domain = NUMBER
    doc: str = ""


# ======================================================================= the op entry
@dataclass(frozen=True)
class Port:
    """What `port_weights` pairs an op's module with: modules of the same category and tensor
    shapes, in execution order. `classify(module)` gives the category of any torch module this
    rule recognises (a reference's as well as ours), or None."""
    pairs_with: str                          # for the op reference
    classify: Callable[[Any], str | None]


@dataclass(frozen=True)
class OpSpec:
    name: str
    doc: str                                 # one line for the op reference
    attrs: dict = field(default_factory=dict)          # name -> Attr, in the order they are documented
    takes: str = "any"                       # "map" (CxHxW), "flat" (F) or "any"
    shape: Callable | None = None            # (ctx, attrs, in_shape) -> (step attrs, out shape), or None
                                             # when these attributes make it a no-op (slice of everything)
    lower: Callable | None = None            # (ctx, attrs, handle, name) -> handle: ops made of other ops
    join: Callable | None = None             # (ctx, attrs, in_shapes) -> (step attrs, out shape): as add(a, b)
    arity: int | None = None                 # operands a join takes (None: any number)
    cost: Callable | None = None             # (step) -> (params, macs, pool_flops, other_flops)
    torch: Callable | None = None            # (step, inplace) -> nn.Module, or emit(graph, args) for joins
    port: Port | None = None
    kernel: bool = False                     # kernel size may be a name suffix: conv3x3, conv1x7
    activation: bool = False                 # an elementwise nonlinearity (a value of `act fn=`)
    inplace: bool = False                    # its module may overwrite its input (ReLU(inplace=True))
    overwritable: bool = False               # its backward does not need its output, so a reader may overwrite it
    aliases: tuple[str, ...] = ()            # other names people use for it (did-you-mean)
    examples: tuple[str, ...] = ()           # chains the registration test costs and compiles
    compiles_to: str = ""                    # the torch module or function, for the op reference
    join_doc: str = ""                       # for an op that also has a join form: what the join does
    join_compiles_to: str = ""
    cost_doc: str = ""                       # how its FLOPs are counted, for the op reference


SPECS: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in SPECS:
        raise ValueError(f"op {spec.name!r} registered twice")
    if spec.shape is not None and spec.lower is not None:
        raise ValueError(f"op {spec.name!r}: a shape rule emits one step, a lowering other ops' steps; not both")
    if spec.shape is None and spec.lower is None and spec.join is None:
        raise ValueError(f"op {spec.name!r} needs a shape rule, a lowering or a join rule")
    if (spec.shape is not None or spec.join is not None) and (spec.torch is None or spec.cost is None):
        raise ValueError(f"op {spec.name!r} emits a step, so it needs cost= and torch=")
    SPECS[spec.name] = spec
    return spec


def _free(st):
    return 0, 0, 0, 0


# ======================================================================= shared shape helpers
def fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def conv_out(length, k, s, pad_total, d=1):
    return (length + pad_total - d * (k - 1) - 1) // s + 1


def pool_out(length, k, s, p, ceil):
    num = length + 2 * p - k
    if ceil:
        o = -(-num // s) + 1
        if (o - 1) * s >= length + p:   # torch: the last window must start inside the input
            o -= 1
        return o
    return num // s + 1


def same_pads(length, k, s, d=1):
    """TensorFlow 'SAME': output ceil(L/s); the odd extra pixel goes bottom/right."""
    out = -(-length // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - length, 0)
    return total // 2, total - total // 2


def _adaptive_window_sum(length, out):
    """Sum of the window sizes of torch's adaptive pooling along one axis."""
    total = 0
    for i in range(out):
        start = (i * length) // out
        end = -((-(i + 1) * length) // out)
        total += end - start
    return total


def _per_element(n):
    return lambda st: (0, 0, 0, n * math.prod(st.out))


# ======================================================================= port rules
def _nn():
    from torch import nn
    return nn


def _is_pointwise(m) -> bool:
    """A 1x1 conv, stride 1, no padding or groups: a linear layer at every position."""
    return (tuple(m.kernel_size) == (1, 1) and tuple(m.stride) == (1, 1) and m.groups == 1
            and tuple(m.dilation) == (1, 1) and not isinstance(m.padding, str)
            and tuple(m.padding) == (0, 0))


def _classify_conv(m):
    nn = _nn()
    if isinstance(m, nn.modules.conv._ConvNd):
        return "linear" if isinstance(m, nn.Conv2d) and _is_pointwise(m) else "conv"
    return None


def _classify_linear(m):
    return "linear" if isinstance(m, _nn().Linear) else None


def _classify_bn(m):
    return "bn" if isinstance(m, _nn().modules.batchnorm._BatchNorm) else None


def _classify_ln(m):
    return "ln" if isinstance(m, _nn().LayerNorm) else None


def _classify_layer_scale(m):
    """Any other module whose own tensors are one parameter of C or C x 1 x 1 values: ConvNeXt's
    CNBlock holds its layer scale that way, timm's LayerScale as `gamma`."""
    own = list(m.named_parameters(recurse=False))
    if len(own) == 1 and not list(m.named_buffers(recurse=False)):
        shape = tuple(own[0][1].shape)
        if len(shape) == 1 or (len(shape) == 3 and shape[1:] == (1, 1)):
            return "scale"
    return None


# ======================================================================= shape rules
def _conv_shape(ctx, a, shape):
    cin, H, W = shape
    kh, kw, s, d = a["kh"], a["kw"], a["s"], a["d"]
    g = a["g"]
    c = a["c"] if a["c"] is not None else cin
    if cin % g or c % g:
        ctx.fail(f"groups={g} must divide both input channels {cin} and output channels {c}")
    p = a["p"]
    same = p == "same"
    if same:
        pt, pb = same_pads(H, kh, s, d)
        pl, pr = same_pads(W, kw, s, d)
    else:
        ph = a["ph"] if a["ph"] is not None else (p if p is not None else d * (kh - 1) // 2)
        pw = a["pw"] if a["pw"] is not None else (p if p is not None else d * (kw - 1) // 2)
        pt = pb = ph
        pl = pr = pw
    Ho, Wo = conv_out(H, kh, s, pt + pb, d), conv_out(W, kw, s, pl + pr, d)
    attrs = {"cin": cin, "c": c, "kh": kh, "kw": kw, "s": s, "d": d, "g": g,
             "pads": (pt, pb, pl, pr), "same": same, "bias": a["bias"]}
    return attrs, (c, Ho, Wo)


def _conv_cost(st):
    a = st.attrs
    per_out = (a["cin"] // a["g"]) * a["kh"] * a["kw"]
    params = a["c"] * per_out + (a["c"] if a["bias"] else 0)
    return params, math.prod(st.out) * per_out, 0, 0


def _conv_torch(st, inplace):
    from torch import nn
    from ..layers import Conv2dSame
    a = st.attrs
    pt, pb, pl, pr = a["pads"]
    common = dict(stride=a["s"], dilation=a["d"], groups=a["g"], bias=a["bias"])
    if a["same"]:
        return Conv2dSame(a["cin"], a["c"], (a["kh"], a["kw"]), padding=0, **common)
    if pt == pb and pl == pr:
        return nn.Conv2d(a["cin"], a["c"], (a["kh"], a["kw"]), padding=(pt, pl), **common)
    return nn.Sequential(nn.ZeroPad2d((pl, pr, pt, pb)),
                         nn.Conv2d(a["cin"], a["c"], (a["kh"], a["kw"]), padding=0, **common))


def _dwconv_lower(ctx, a, h, name):
    cin = ctx.shape(h)[0]
    return ctx.apply("conv", dict(a, g=cin), h, name)


def _sep_lower(ctx, a, h, name):
    cin = ctx.shape(h)[0]
    h = ctx.apply("conv", dict(a, c=cin, g=cin), h, name + ".dw")
    pw = dict(a, kh=1, kw=1, s=1, p=0, ph=None, pw=None, d=1, g=1)
    return ctx.apply("conv", pw, h, name + ".pw")


def _pool_shape(kind):
    def shape_rule(ctx, a, shape):
        C, H, W = shape
        kh, kw = a["kh"], a["kw"]
        sh, sw = (kh, kw) if a["s"] is None else (a["s"],) * 2
        attrs = {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "ceil": a["ceil"]}
        if kind == "avgpool":
            attrs["cip"] = a["cip"]
        if a["p"] == "same":
            pt, pb = same_pads(H, kh, sh)
            pl, pr = same_pads(W, kw, sw)
            attrs.update(pads=(pt, pb, pl, pr), same=True, ph=0, pw=0)
            Ho, Wo = pool_out(H + pt + pb, kh, sh, 0, a["ceil"]), pool_out(W + pl + pr, kw, sw, 0, a["ceil"])
        else:
            ph = a["ph"] if a["ph"] is not None else a["p"]
            pw = a["pw"] if a["pw"] is not None else a["p"]
            if 2 * ph > kh or 2 * pw > kw:
                ctx.fail(f"{kind} padding {ph}x{pw} must be at most half the kernel {kh}x{kw}")
            attrs.update(pads=(ph, ph, pw, pw), same=False, ph=ph, pw=pw)
            Ho, Wo = pool_out(H, kh, sh, ph, a["ceil"]), pool_out(W, kw, sw, pw, a["ceil"])
        return attrs, (C, Ho, Wo)
    return shape_rule


def _pool_cost(st):
    return 0, 0, math.prod(st.out) * st.attrs["kh"] * st.attrs["kw"], 0


def _maxpool_torch(st, inplace):
    from torch import nn
    from ..layers import MaxPool2dSame
    a = st.attrs
    kernel, stride = (a["kh"], a["kw"]), (a["sh"], a["sw"])
    if a["same"]:
        return MaxPool2dSame(kernel, stride, 0, ceil_mode=a["ceil"])
    return nn.MaxPool2d(kernel, stride, (a["ph"], a["pw"]), ceil_mode=a["ceil"])


def _avgpool_torch(st, inplace):
    from torch import nn
    from ..layers import AvgPool2dSame
    a = st.attrs
    kernel, stride = (a["kh"], a["kw"]), (a["sh"], a["sw"])
    if a["same"]:
        return AvgPool2dSame(kernel, stride, 0, ceil_mode=a["ceil"], count_include_pad=a["cip"])
    return nn.AvgPool2d(kernel, stride, (a["ph"], a["pw"]), ceil_mode=a["ceil"], count_include_pad=a["cip"])


def _global_shape(ctx, a, shape):
    return {}, (shape[0], 1, 1)


def _global_cost(st):
    return 0, 0, math.prod(st.in_shapes[0]), 0


def _apool_shape(ctx, a, shape):
    oh = a["oh"] if a["oh"] is not None else a["o"]
    ow = a["ow"] if a["ow"] is not None else a["o"]
    if oh is None or ow is None:
        ctx.fail("apool needs o= (or oh= and ow=)")
    return {"oh": oh, "ow": ow}, (shape[0], oh, ow)


def _apool_cost(st):
    c, h, w = st.in_shapes[0]
    return 0, 0, c * _adaptive_window_sum(h, st.attrs["oh"]) * _adaptive_window_sum(w, st.attrs["ow"]), 0


def _fc_shape(ctx, a, shape):
    return {"cin": shape[0], "c": a["c"], "bias": a["bias"]}, (a["c"],)


def _fc_cost(st):
    a = st.attrs
    return a["cin"] * a["c"] + (a["c"] if a["bias"] else 0), a["cin"] * a["c"], 0, 0


def _linear_lower(ctx, a, h, name):
    if len(ctx.shape(h)) == 1:
        return ctx.apply("fc", {"c": a["c"], "bias": a["bias"]}, h, name)
    conv = {"c": a["c"], "kh": 1, "kw": 1, "s": 1, "p": 0, "ph": None, "pw": None, "d": 1, "g": 1,
            "bias": a["bias"]}
    return ctx.apply("conv", conv, h, name)


def _same_shape(*keys):
    def shape_rule(ctx, a, shape):
        return {k: a[k] for k in keys}, shape
    return shape_rule


def _bn_shape(ctx, a, shape):
    return {"c": shape[0], "eps": a["eps"], "momentum": a["momentum"], "affine": a["affine"]}, shape


def _bn_cost(st):
    return (2 * st.attrs["c"] if st.attrs["affine"] else 0), 0, 0, 2 * math.prod(st.out)


def _bn_torch(st, inplace):
    from torch import nn
    a = st.attrs
    cls = nn.BatchNorm2d if len(st.out) == 3 else nn.BatchNorm1d
    return cls(a["c"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


def _ln_shape(ctx, a, shape):
    dim = _dim(ctx, "ln", a["axis"], shape)
    if dim == 2:
        ctx.fail("ln axis=2: ln normalises the channels (axis=1) or the last axis (axis=-1), not the height")
    attrs = {"c": shape[dim - 1], "eps": a["eps"], "affine": a["affine"]}
    if dim == 3:
        attrs["last"] = True           # over W: nn.LayerNorm on the tensor as it is
    return attrs, shape


def _dim(ctx, op, axis, shape):
    """The torch dim of N x shape that `axis=` names (1: the channels, or a flat input's
    features; 2: the height; 3 or -1: the last axis W)."""
    dim = axis if axis > 0 else axis + len(shape) + 1
    if not 1 <= dim <= len(shape):
        ctx.fail(f"{op} axis={axis}: a {'flat input has one axis (1)' if len(shape) == 1 else 'map has axes 1, 2, 3'}")
    return dim


def _ln_cost(st):
    # as fvcore counts a norm at inference: mean, centre, variance, normalise (+ the affine)
    affine = st.attrs["affine"]
    return (2 * st.attrs["c"] if affine else 0), 0, 0, (5 if affine else 4) * math.prod(st.out)


def _ln_torch(st, inplace):
    from torch import nn
    from ..layers import LayerNorm2d
    a = st.attrs
    cls = LayerNorm2d if len(st.out) == 3 and not a.get("last") else nn.LayerNorm
    return cls(a["c"], eps=a["eps"], elementwise_affine=a["affine"])


def _lrn_torch(st, inplace):
    from torch import nn
    a = st.attrs
    return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])


def _p_shape(ctx, a, shape):
    return {"p": a["p"]}, shape


def _dropout_torch(st, inplace):
    from torch import nn
    return nn.Dropout(st.attrs["p"])


def _droppath_torch(st, inplace):
    from ..layers import DropPath
    return DropPath(st.attrs["p"])


def _identity_lower(ctx, a, h, name):
    return h


def _flatten_shape(ctx, a, shape):
    return {}, (math.prod(shape),)


def _flatten_torch(st, inplace):
    from torch import nn
    return nn.Flatten(1)


def _pad_shape(ctx, a, shape):
    l, r, t, b = a["l"], a["r"], a["t"], a["b"]
    return {"l": l, "r": r, "t": t, "b": b}, (shape[0], shape[1] + t + b, shape[2] + l + r)


def _pad_torch(st, inplace):
    from torch import nn
    a = st.attrs
    return nn.ZeroPad2d((a["l"], a["r"], a["t"], a["b"]))


def _scale_torch(st, inplace):
    from ..layers import Scale
    return Scale(st.attrs["v"])


def _lscale_shape(ctx, a, shape):
    return {"c": shape[0], "v": a["v"]}, shape


def _lscale_torch(st, inplace):
    from ..layers import LayerScale
    return LayerScale(st.attrs["c"], st.attrs["v"], spatial=len(st.out) == 3)


def _slice_shape(ctx, a, shape):         # channels [start, end): ShuffleNet's channel split
    C = shape[0]
    start = a["start"]
    end = C if a["end"] is None else a["end"]
    if not start < end <= C:
        ctx.fail(f"slice start={start} end={end} must be a non-empty range of the input's {C} channels")
    if (start, end) == (0, C):
        return None
    return {"start": start, "end": end}, (end - start,) + tuple(shape[1:])


def _slice_torch(st, inplace):
    from ..layers import ChannelSlice
    return ChannelSlice(st.attrs["start"], st.attrs["end"])


def _shuffle_shape(ctx, a, shape):
    g = a["g"]
    if shape[0] % g:
        ctx.fail(f"shuffle g={g} must divide the input's {shape[0]} channels")
    return ({"g": g}, shape) if g > 1 else None


def _shuffle_torch(st, inplace):
    from ..layers import ChannelShuffle
    return ChannelShuffle(st.attrs["g"])


def _softmax_shape(ctx, a, shape):
    dim = _dim(ctx, "softmax", a["axis"], shape)
    if dim != 1:
        if a["r"] is not None or a["g"] != 1:
            ctx.fail(f"softmax axis={a['axis']}: r= and g= split the channels; give them with axis=1 only")
        return {"r": None, "g": 1, "dim": dim}, shape
    C, g = shape[0], a["g"]
    r = a["r"] if a["r"] is not None else C
    if C % (g * r):
        ctx.fail(f"softmax r={r} g={g}: r * g must divide the input's {C} channels")
    return {"r": r, "g": g}, shape


def _softmax_torch(st, inplace):
    from ..layers import GroupSoftmax
    if st.attrs.get("dim", 1) != 1:
        return _nn().Softmax(dim=st.attrs["dim"])
    return GroupSoftmax(st.attrs["r"], st.attrs["g"])


def _upsample_shape(ctx, a, shape):
    f = a["f"]
    return ({"f": f, "mode": a["mode"], "align": a["align"]},
            (shape[0], shape[1] * f, shape[2] * f))


def _upsample_cost(st):
    return 0, 0, 0, (4 * math.prod(st.out) if st.attrs["mode"] == "bilinear" else 0)


def _upsample_torch(st, inplace):
    from torch import nn
    a = st.attrs
    if len(st.inputs) == 2:                  # upsample(x, like): to another node's size
        from ..layers import ResizeLike
        return ResizeLike(a["mode"], a["align"])
    if a["mode"] == "bilinear":
        return nn.Upsample(scale_factor=a["f"], mode="bilinear", align_corners=a["align"])
    return nn.Upsample(scale_factor=a["f"], mode="nearest")


def _shortcut_lower(ctx, a, h, name):
    c, s = a["c"], a["s"]
    if c == ctx.shape(h)[0] and s == 1:
        return h
    conv = {"c": c, "kh": 1, "kw": 1, "s": s, "p": 0, "ph": None, "pw": None, "d": 1, "g": 1,
            "bias": ctx.default("conv", "bias")}
    h = ctx.apply("conv", conv, h, name + ".conv")
    if a["bn"]:
        h = ctx.apply("bn", {}, h, name + ".bn")
    return h


def _activation_torch(cls_name):
    def build(st, inplace):
        from torch import nn
        cls = getattr(nn, cls_name)
        return cls(inplace=True) if inplace else cls()
    return build


def _act_lower(ctx, a, h, name):
    fn = a["fn"]
    if fn == "identity":
        return h
    return ctx.apply(fn, {k: a[k] for k in SPECS[fn].attrs}, h, name)


# ======================================================================= joins
def _fold_emit(fn):
    def emit(graph, args):
        v = args[0]
        for other in args[1:]:
            v = graph.call_function(fn, (v, other))
        return v
    return emit


def _add_torch(st, inplace):
    # `out += shortcut` as torchvision writes it, when the compiler finds that the first
    # operand is read by nothing else and its producer's backward does not need it
    import operator
    return _fold_emit(operator.iadd if inplace else operator.add)


def _mul_torch(st, inplace):
    import operator
    return _fold_emit(operator.mul)


def _sub_torch(st, inplace):
    import operator
    return _fold_emit(operator.sub)


def _cat_torch(st, inplace):
    import torch

    def emit(graph, args):
        return graph.call_function(torch.cat, (tuple(args), 1))
    return emit


def _equal_shapes(kind):
    def shape_rule(ctx, a, shapes):
        if any(s != shapes[0] for s in shapes):
            ctx.fail_join(kind, shapes)
        return {}, shapes[0]
    return shape_rule


def _cat_shape(ctx, a, shapes):
    if any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:] for s in shapes):
        ctx.fail_join("cat", shapes)
    return {}, (sum(s[0] for s in shapes),) + tuple(shapes[0][1:])


def _mul_shape(ctx, a, shapes):       # equal shapes, or a C x 1 x 1 gate (squeeze-and-excitation)
    big = max(shapes, key=math.prod)
    for s in shapes:
        if s != big and not (len(s) == 3 and s[0] == big[0] and s[1:] == (1, 1)):
            ctx.fail_join("mul", shapes)
    return {}, big


def _upsample_join_shape(ctx, a, shapes):      # upsample(x, like): x at like's H x W
    x, like = shapes
    if len(x) != 3 or len(like) != 3:
        ctx.fail(f"upsample(x, like) needs two CxHxW maps, got {fmt_shape(x)}, {fmt_shape(like)}")
    return {"f": None, "mode": a["mode"], "align": a["align"]}, (x[0],) + tuple(like[1:])


def _add_cost(st):
    return 0, 0, 0, math.prod(st.out) * (len(st.inputs) - 1)


# ======================================================================= the registry
_CONV_ATTRS = {
    "c": Attr(REQUIRED, POS_INT, "output channels"),
    "kh": Attr(REQUIRED, POS_INT, "kernel height (or the name suffix: conv3x3, conv1x7; k= for both)"),
    "kw": Attr(REQUIRED, POS_INT, "kernel width"),
    "s": Attr(1, POS_INT, "stride (also written conv3x3/2)"),
    "p": Attr(None, PADDING, "padding (default: keeps the size at stride 1); same: TensorFlow SAME"),
    "ph": Attr(None, NONNEG, "padding of the height only"),
    "pw": Attr(None, NONNEG, "padding of the width only"),
    "d": Attr(1, POS_INT, "dilation"),
    "g": Attr(1, POS_INT, "groups"),
    "bias": Attr(1, FLAG, "learnable bias"),
}
_POOL_ATTRS = {
    "kh": Attr(REQUIRED, POS_INT, "window height (or the suffix: maxpool3x3)"),
    "kw": Attr(REQUIRED, POS_INT, "window width"),
    "s": Attr(None, POS_INT, "stride (default: the window)"),
    "p": Attr(0, PADDING, "padding; same: TensorFlow SAME"),
    "ph": Attr(None, NONNEG, "padding of the height only"),
    "pw": Attr(None, NONNEG, "padding of the width only"),
    "ceil": Attr(0, FLAG, "ceil_mode"),
}
_LINEAR_ATTRS = {"c": Attr(REQUIRED, POS_INT, "output features"), "bias": Attr(1, FLAG, "learnable bias")}
_ONE_PER_ELEMENT = "other FLOPs: 1 per element"

# ---- convolutions (the kernel may be a name suffix: conv3x3, conv1x7)
register(OpSpec(
    "conv", "2-D convolution", _CONV_ATTRS, takes="map", kernel=True,
    shape=_conv_shape, cost=_conv_cost, torch=_conv_torch, overwritable=True,
    port=Port("nn.Conv2d of the same shape (a 1x1 conv with stride 1, no padding or groups also "
              "pairs with an nn.Linear of the same shape)", _classify_conv),
    compiles_to="nn.Conv2d (behind nn.ZeroPad2d for uneven padding; Conv2dSame for p=same)",
    aliases=("conv2d", "convolution"),
    examples=("conv3x3 c=8", "conv1x7/2 c=6 d=2 bias=0", "conv3x3/2 c=4 p=same", "conv5x3 c=6 ph=0 pw=2 g=3")))
register(OpSpec(
    "dwconv", "depthwise conv: groups = input channels (c defaults to them)",
    {**_CONV_ATTRS, "c": Attr(None, POS_INT, "output channels (default: the input's)"),
     "g": Attr(None, POS_INT, "groups: always the input channels")},
    takes="map", kernel=True, lower=_dwconv_lower, aliases=("depthwise", "dw"),
    examples=("dwconv3x3", "dwconv5x5/2 c=6 bias=0")))
register(OpSpec(
    "sep", "depthwise-separable conv: depthwise kxk, then pointwise 1x1 to c (steps .dw, .pw)",
    _CONV_ATTRS, takes="map", kernel=True, lower=_sep_lower, aliases=("separable", "sepconv"),
    examples=("sep3x3 c=8", "sep5x5/2 c=4 bias=0")))

# ---- pooling
register(OpSpec(
    "maxpool", "max pooling", _POOL_ATTRS, takes="map", kernel=True,
    shape=_pool_shape("maxpool"), cost=_pool_cost, torch=_maxpool_torch,
    compiles_to="nn.MaxPool2d (MaxPool2dSame for p=same)", cost_doc="pooling FLOPs: kh x kw per output",
    aliases=("maxpool2d", "pool"),
    examples=("maxpool3x3/2 p=1", "maxpool3x3/2 ceil=1", "maxpool2x2", "maxpool3x3/2 p=same")))
register(OpSpec(
    "avgpool", "average pooling", {**_POOL_ATTRS, "cip": Attr(1, FLAG, "count_include_pad")},
    takes="map", kernel=True, shape=_pool_shape("avgpool"), cost=_pool_cost, torch=_avgpool_torch,
    compiles_to="nn.AvgPool2d (AvgPool2dSame for p=same)", cost_doc="pooling FLOPs: kh x kw per output",
    aliases=("avgpool2d", "avg"),
    examples=("avgpool3x3 s=1 p=1 cip=0", "avgpool2x2", "avgpool3x3/2 p=same cip=0")))
register(OpSpec(
    "gap", "global average pool -> C x 1 x 1", takes="map",
    shape=_global_shape, cost=_global_cost, torch=lambda st, inplace: _nn().AdaptiveAvgPool2d(1),
    compiles_to="nn.AdaptiveAvgPool2d(1)", cost_doc="pooling FLOPs: H x W per channel",
    aliases=("globalavgpool", "avgpool_global"), examples=("gap",)))
register(OpSpec(
    "gmp", "global max pool -> C x 1 x 1", takes="map",
    shape=_global_shape, cost=_global_cost, torch=lambda st, inplace: _nn().AdaptiveMaxPool2d(1),
    compiles_to="nn.AdaptiveMaxPool2d(1)", cost_doc="pooling FLOPs: H x W per channel",
    aliases=("globalmaxpool",), examples=("gmp",)))
register(OpSpec(
    "apool", "adaptive average pool to o x o (or oh x ow)",
    {"o": Attr(None, POS_INT, "output size"), "oh": Attr(None, POS_INT, "output height"),
     "ow": Attr(None, POS_INT, "output width")},
    takes="map", shape=_apool_shape, cost=_apool_cost,
    torch=lambda st, inplace: _nn().AdaptiveAvgPool2d((st.attrs["oh"], st.attrs["ow"])),
    compiles_to="nn.AdaptiveAvgPool2d", cost_doc="pooling FLOPs: the sum of torch's window sizes",
    aliases=("adaptiveavgpool", "adaptive"), examples=("apool o=3", "apool oh=2 ow=5")))

# ---- classifier and regularisers
register(OpSpec(
    "flatten", "C x H x W -> CHW", shape=_flatten_shape, cost=_free, torch=_flatten_torch,
    compiles_to="nn.Flatten(1)", aliases=("reshape", "view"), examples=("flatten",)))
register(OpSpec(
    "fc", "fully connected layer on a flat input", _LINEAR_ATTRS, takes="flat",
    shape=_fc_shape, cost=_fc_cost, overwritable=True,
    torch=lambda st, inplace: _nn().Linear(st.attrs["cin"], st.attrs["c"], bias=st.attrs["bias"]),
    port=Port("nn.Linear (or a pointwise 1x1 nn.Conv2d) of the same shape", _classify_linear),
    compiles_to="nn.Linear", aliases=("dense", "fullyconnected"),
    examples=("flatten fc c=5", "gap flatten fc c=3 bias=0")))
register(OpSpec(
    "linear", "linear layer over the channels at every position: conv1x1 on CxHxW (port_weights "
              "pairs it with an nn.Linear of the same shape, as in ConvNeXt), fc on a flat input",
    _LINEAR_ATTRS, lower=_linear_lower, aliases=("pointwise", "pwlinear", "mlp"),
    examples=("linear c=8", "linear c=4 bias=0 gap flatten linear c=3")))
register(OpSpec(
    "dropout", "dropout (identity at eval)", {"p": Attr(0.5, PROB, "drop probability, in [0, 1)")},
    shape=_p_shape, cost=_free, torch=_dropout_torch, compiles_to="nn.Dropout",
    examples=("dropout p=0.2",)))
register(OpSpec(
    "droppath", "stochastic depth: drops the whole branch per sample in training; identity at eval",
    {"p": Attr(0.0, PROB, "drop probability, in [0, 1)")},
    shape=_p_shape, cost=_free, torch=_droppath_torch, compiles_to="DropPath",
    aliases=("stochasticdepth", "drop_path"), examples=("droppath p=0.1",)))

# ---- normalisation
register(OpSpec(
    "bn", "batch norm (BatchNorm1d on a flat input)",
    {"eps": Attr(1e-5, POSITIVE, "added to the variance"),
     "momentum": Attr(0.1, UNIT, "running-statistics momentum"),
     "affine": Attr(1, FLAG, "learnable scale and shift")},
    shape=_bn_shape, cost=_bn_cost, torch=_bn_torch, overwritable=True,
    port=Port("any BatchNorm of the same channels", _classify_bn),
    compiles_to="nn.BatchNorm2d / nn.BatchNorm1d",
    cost_doc="other FLOPs: 2 per element (scale and shift at inference)",
    aliases=("batchnorm", "batchnorm2d", "batch_norm"),
    examples=("bn", "bn eps=0.001 momentum=0.01 affine=0", "flatten bn")))
register(OpSpec(
    "ln", "layer norm over the channels at every position of a CxHxW map (ConvNeXt's "
          "LayerNorm2d; over the features of tokens); over the features of a flat input; axis=-1: "
          "over the last axis W",
    {"eps": Attr(1e-5, POSITIVE, "added to the variance"),
     "affine": Attr(1, FLAG, "learnable scale and shift"),
     "axis": Attr(1, AXIS, "1: the channels; -1 (or 3): the last axis W of a CxHxW map (the features "
                           "of tokens held last, as in an attention map (G heads) x n x d)")},
    shape=_ln_shape, cost=_ln_cost, torch=_ln_torch,
    port=Port("nn.LayerNorm (or a subclass, e.g. torchvision's LayerNorm2d) of the same channels",
              _classify_ln),
    compiles_to="LayerNorm2d (an nn.LayerNorm) / nn.LayerNorm",
    cost_doc="other FLOPs: 5 per element (4 without affine), as fvcore counts norms",
    aliases=("layernorm", "layer_norm", "layernorm2d", "lnorm"),
    examples=("ln", "ln eps=1e-6 affine=0", "gap flatten ln", "ln axis=-1", "ln axis=3 affine=0")))
register(OpSpec(
    "lrn", "local response norm (AlexNet)",
    {"size": Attr(5, POS_INT, "channels summed over"), "alpha": Attr(1e-4, NUMBER, "scale"),
     "beta": Attr(0.75, NUMBER, "exponent"), "k": Attr(1.0, NUMBER, "additive constant")},
    takes="map", shape=_same_shape("size", "alpha", "beta", "k"),
    cost=lambda st: (0, 0, 0, math.prod(st.out) * st.attrs["size"]), torch=_lrn_torch,
    compiles_to="nn.LocalResponseNorm", cost_doc="other FLOPs: size per element",
    aliases=("localresponsenorm",), examples=("lrn", "lrn size=3 alpha=0.001 beta=0.5 k=2")))

# ---- activations (the list of them is this section: `activation=True`)
for _name, _cls, _inplace, _aliases in [
        ("relu", "ReLU", True, ("rectifier",)), ("relu6", "ReLU6", True, ()), ("tanh", "Tanh", False, ()),
        ("sigmoid", "Sigmoid", False, ()), ("silu", "SiLU", True, ()),
        ("hswish", "Hardswish", True, ("hardswish", "h_swish")),
        ("hsigmoid", "Hardsigmoid", False, ("hardsigmoid", "h_sigmoid")), ("gelu", "GELU", False, ())]:
    register(OpSpec(
        _name, "activation", shape=_same_shape(), cost=_per_element(1), torch=_activation_torch(_cls),
        activation=True, inplace=_inplace, compiles_to=f"nn.{_cls}", cost_doc=_ONE_PER_ELEMENT,
        aliases=_aliases, examples=(_name,)))
register(OpSpec(
    "swish", "activation: another name for silu", lower=lambda ctx, a, h, name: ctx.apply("silu", {}, h, name),
    activation=True, examples=("swish",)))
register(OpSpec(
    "lrelu", "activation", {"slope": Attr(0.01, NUMBER, "negative slope")},
    shape=_same_shape("slope"), cost=_per_element(1),
    torch=lambda st, inplace: _nn().LeakyReLU(st.attrs["slope"]), activation=True,
    compiles_to="nn.LeakyReLU", cost_doc=_ONE_PER_ELEMENT,
    aliases=("leakyrelu", "leaky_relu"), examples=("lrelu", "lrelu slope=0.2")))

register(OpSpec(
    "gelu_tanh", "activation: GELU's tanh approximation (gelu is the exact, erf form)", shape=_same_shape(),
    cost=_per_element(1), torch=lambda st, inplace: _nn().GELU(approximate="tanh"), activation=True,
    compiles_to="nn.GELU(approximate='tanh')", cost_doc=_ONE_PER_ELEMENT,
    aliases=("gelutanh", "approx_gelu", "gelu_approx"), examples=("gelu_tanh",)))

ACTIVATIONS = frozenset(name for name, s in SPECS.items() if s.activation)

register(OpSpec(
    "act", "the activation named by a value, e.g. a cell parameter: act fn=nl",
    {"fn": Attr(REQUIRED, _named(_choice(*sorted(ACTIVATIONS), "identity"), "name an activation"),
                "activation name, or identity"),
     "slope": Attr(0.01, NUMBER, "negative slope, for fn=lrelu")},
    lower=_act_lower, aliases=("activation",),
    examples=("act fn=relu6", "act fn=lrelu slope=0.1", "act fn=identity")))

# ---- plumbing
register(OpSpec(
    "identity", "no-op (a named skip)", lower=_identity_lower, aliases=("skip", "noop", "none"),
    examples=("identity",)))
register(OpSpec(
    "pad", "zero padding; negative values crop",
    {"l": Attr(0, INT, "left"), "r": Attr(0, INT, "right"), "t": Attr(0, INT, "top"),
     "b": Attr(0, INT, "bottom")},
    takes="map", shape=_pad_shape, cost=_free, torch=_pad_torch, compiles_to="nn.ZeroPad2d",
    aliases=("zeropad", "crop"), examples=("pad l=1 r=2 t=0 b=1", "pad l=-1 t=-1 r=1 b=1")))
register(OpSpec(
    "scale", "multiply by a constant (scaled residuals)", {"v": Attr(REQUIRED, NUMBER, "the constant")},
    shape=_same_shape("v"), cost=_per_element(1), torch=_scale_torch,
    compiles_to="Scale", cost_doc=_ONE_PER_ELEMENT, aliases=("mulconst",), examples=("scale v=0.17",)))
register(OpSpec(
    "lscale", "learnable per-channel scale initialised to v (ConvNeXt's layer scale)",
    {"v": Attr(REQUIRED, NUMBER, "initial value")},
    shape=_lscale_shape, cost=lambda st: (st.attrs["c"], 0, 0, math.prod(st.out)), torch=_lscale_torch,
    port=Port("any other module whose own tensors are one parameter of C or Cx1x1 values "
              "(torchvision's CNBlock.layer_scale, timm's LayerScale)", _classify_layer_scale),
    compiles_to="LayerScale (one C x 1 x 1 parameter)", cost_doc=_ONE_PER_ELEMENT,
    aliases=("layerscale", "layer_scale", "gamma"), examples=("lscale v=1e-6", "gap flatten lscale v=0.5")))
register(OpSpec(
    "softmax", "softmax across a group axis: channels viewed as (g, r, C/(g r)), softmax over r, "
               "laid out (r, g, C/(g r)) as split attention's rSoftMax; without r, softmax over channels; "
               "axis= picks another axis",
    {"r": Attr(None, POS_INT, "size of the softmax axis (radix; default: all channels)"),
     "g": Attr(1, POS_INT, "groups (cardinality)"),
     "axis": Attr(1, AXIS, "1: the channels (with r= and g=); 2 (or -2): the height; 3 (or -1): the "
                           "last axis W, as attention's softmax over keys")},
    shape=_softmax_shape, cost=_per_element(3), torch=_softmax_torch,
    compiles_to="GroupSoftmax (nn.Softmax for axis=2, 3)", cost_doc="other FLOPs: 3 per element (exp, sum, divide)",
    aliases=("rsoftmax", "radixsoftmax"),
    examples=("softmax", "softmax r=3", "conv1x1 c=8 softmax r=2 g=2", "gap flatten fc c=8 softmax r=4",
              "softmax axis=-1", "softmax axis=2", "softmax axis=-3")))
register(OpSpec(
    "upsample", "upsample by an integer factor f",
    {"f": Attr(2, POS_INT, "scale factor"),
     "mode": Attr("nearest", _choice("nearest", "bilinear"), "interpolation"),
     "align": Attr(0, FLAG, "align_corners (bilinear)")},
    takes="map", shape=_upsample_shape, join=_upsample_join_shape, arity=2,
    cost=_upsample_cost, torch=_upsample_torch,
    compiles_to="nn.Upsample", cost_doc="other FLOPs: 4 per output element for bilinear, none for nearest",
    join_doc="x resized to like's H x W (FPN, HRNet fusion); mode and align from `defaults upsample.mode=`",
    join_compiles_to="ResizeLike (F.interpolate to like's size)",
    aliases=("interpolate", "resize", "upsampling"),
    examples=("upsample", "upsample f=3 mode=bilinear", "upsample mode=bilinear align=1",
              "upsample(maxpool2x2 <- a, b)", "upsample(avgpool3x3/3 <- a, in)")))
register(OpSpec(
    "shortcut", "residual shortcut: identity, or conv1x1/s + bn when the shape changes (steps .conv, .bn)",
    {"c": Attr(REQUIRED, POS_INT, "output channels"), "s": Attr(1, POS_INT, "stride"),
     "bn": Attr(1, FLAG, "BN after the projection")},
    takes="map", lower=_shortcut_lower, aliases=("projection", "downsample", "residual"),
    examples=("shortcut c=3", "shortcut c=8 s=2", "shortcut c=6 s=2 bn=0", "shortcut c=6")))
register(OpSpec(
    "slice", "channels start .. end-1 (ShuffleNetV2's split)",
    {"start": Attr(0, NONNEG, "first channel"), "end": Attr(None, POS_INT, "one past the last (default: all)")},
    shape=_slice_shape, cost=_free, torch=_slice_torch, compiles_to="ChannelSlice",
    aliases=("split", "narrow", "chunk"), examples=("slice start=1", "slice end=2", "conv1x1 c=6 slice start=2 end=5")))
register(OpSpec(
    "shuffle", "channel shuffle in g groups (ShuffleNet)", {"g": Attr(REQUIRED, POS_INT, "groups")},
    shape=_shuffle_shape, cost=_free, torch=_shuffle_torch, compiles_to="ChannelShuffle",
    aliases=("channelshuffle", "channel_shuffle"), examples=("conv1x1 c=6 shuffle g=3", "shuffle g=1")))

# ======================================================================= tokens and attention
# A token sequence is a C x 1 x N map (the tokens along the width), and windows of tokens are the
# rows of a C x G x n map: G groups of n tokens, each attending within its row. After the head
# split, attention's maps are (G heads) x n x d, one matrix per row and head, and `matmul(a, b)`
# multiplies them pairwise. Every shape stays CxHxW, so every per-position op (ln, linear, gelu,
# droppath, add) works on tokens unchanged; docs/attention.md says why.
def _layers():
    from .. import layers
    return layers


def _tokens_shape(ctx, a, shape):
    C, H, W = shape
    return None if H == 1 else ({}, (C, 1, H * W))


def _untokens_shape(ctx, a, shape):
    C, G, N = shape
    h = a["h"]
    if G != 1 or N % h:
        ctx.fail(f"untokens h={h} needs one row of tokens whose count h divides, got {fmt_shape(shape)}")
    return {"h": h}, (C, h, N // h)


def _patchembed_lower(ctx, a, h, name):
    p = a["p"]
    conv = {"c": a["c"], "kh": p, "kw": p, "s": p, "p": 0, "ph": None, "pw": None, "d": 1, "g": 1, "bias": a["bias"]}
    h = ctx.apply("conv", conv, h, name + ".conv")
    return ctx.apply("tokens", {}, h, name + ".tokens")


def _clstoken_shape(ctx, a, shape):
    C, G, n = shape
    return {"c": C}, (C, G, n + 1)


def _posembed_shape(ctx, a, shape):
    C, G, n = shape
    return {"c": C, "n": n}, shape


def _token_shape(ctx, a, shape):
    C, G, n = shape
    i = a["i"]
    if i >= n:
        ctx.fail(f"token i={i}: the rows hold {n} tokens (0 .. {n - 1})")
    return {"i": i}, (C, G, 1)


def _ceil_to(v, s):
    return -(-v // s) * s


def _window_shape(ctx, a, shape):
    C, H, W = shape
    s, shift = a["s"], a["shift"]
    hp, wp = _ceil_to(H, s), _ceil_to(W, s)
    if shift >= s:
        ctx.fail(f"window s={s} shift={shift}: the shift must be smaller than the window")
    return {"s": s, "shift": shift, "h": H, "w": W}, (C, (hp // s) * (wp // s), s * s)


def _unwindow_shape(ctx, a, shape):
    C, G, n = shape
    s, h, w = a["s"], a["h"], a["w"]
    want = (_ceil_to(h, s) // s) * (_ceil_to(w, s) // s)
    if n != s * s or G != want:
        ctx.fail(f"unwindow s={s} h={h} w={w} needs {want} windows of {s * s} tokens, got {fmt_shape(shape)}")
    return {"s": s, "shift": a["shift"], "h": h, "w": w}, (C, h, w)


def _grid_shape(ctx, a, shape):
    C, H, W = shape
    s = a["s"]
    if H % s or W % s:
        ctx.fail(f"grid s={s} needs a map whose height and width s divides, got {fmt_shape(shape)}")
    return {"s": s}, (C, (H // s) * (W // s), s * s)


def _ungrid_shape(ctx, a, shape):
    C, G, n = shape
    s, h, w = a["s"], a["h"], a["w"]
    if h % s or w % s or n != s * s or G != (h // s) * (w // s):
        ctx.fail(f"ungrid s={s} h={h} w={w} needs {(h // s) * (w // s)} groups of {s * s} tokens "
                 f"(s dividing h and w), got {fmt_shape(shape)}")
    return {"s": s, "h": h, "w": w}, (C, h, w)


def _split_heads_shape(ctx, a, shape):
    C, G, n = shape
    heads = a["heads"]
    if C % heads:
        ctx.fail(f"split_heads heads={heads} must divide the input's {C} channels")
    return {"heads": heads}, (G * heads, n, C // heads)


def _merge_heads_shape(ctx, a, shape):
    X, n, d = shape
    heads = a["heads"]
    if X % heads:
        ctx.fail(f"merge_heads heads={heads} must divide the {X} matrices of its input")
    return {"heads": heads}, (heads * d, X // heads, n)


def _position_terms(kind):
    """relbias, cpb and shift_mask: a term added to the attention logits, from the tokens' layout."""
    def shape_rule(ctx, a, shape):
        C, G, n = shape
        s, heads = a["s"], a["heads"]
        if n != s * s:
            ctx.fail(f"{kind} s={s} needs rows of {s}x{s}={s * s} tokens, got {fmt_shape(shape)}")
        attrs = {k: a[k] for k in a}
        if kind == "shift_mask":
            want = (_ceil_to(a["h"], s) // s) * (_ceil_to(a["w"], s) // s)
            if G != want:
                ctx.fail(f"shift_mask s={s} h={a['h']} w={a['w']} needs {want} windows, got {G}")
        return attrs, (G * heads, n, n)
    return shape_rule


def _relbias_cost(st):
    return (2 * st.attrs["s"] - 1) ** 2 * st.attrs["heads"], 0, 0, 0


def _cpb_cost(st):
    a = st.attrs
    rows, hidden, heads = (2 * a["s"] - 1) ** 2, a["hidden"], a["heads"]
    n = a["s"] ** 2
    # the MLP runs on the (2s-1)^2 offsets once per forward pass; ReLU on its hidden layer,
    # sigmoid and x16 on the gathered n x n table of each head
    return (2 * hidden + hidden + hidden * heads, rows * (2 * hidden + hidden * heads), 0,
            rows * hidden + 2 * heads * n * n)


def _matmul_shape(ctx, a, shapes):
    x, y = shapes
    if len(x) != 3 or len(y) != 3 or x[0] != y[0] or x[2] != y[1]:
        ctx.fail(f"matmul(a, b) multiplies the matrices of a (B x n x k) and b (B x k x m) pairwise, "
                 f"got {fmt_shape(x)}, {fmt_shape(y)}; transpose one (e.g. matmul(q, transpose <- k))")
    return {}, (x[0], x[1], y[2])


def _matmul_cost(st):
    (b, n, k), (_, _, m) = st.in_shapes
    return 0, b * n * k * m, 0, 0


def _matmul_torch(st, inplace):
    import torch

    def emit(graph, args):
        return graph.call_function(torch.matmul, tuple(args))
    return emit


def _logitscale_shape(ctx, a, shape):
    heads = a["heads"]
    if shape[0] % heads:
        ctx.fail(f"logitscale heads={heads} must divide the {shape[0]} matrices of its input")
    return {"heads": heads}, shape


def _qkv_shape(ctx, a, shape):
    C, G, n = shape
    c = a["c"]
    if not a["kbias"] and c % 3:
        ctx.fail(f"qkv_proj kbias=0 zeroes the middle third of the bias: c={c} must be a multiple of 3")
    return {"cin": C, "c": c, "kh": 1, "kw": 1, "g": 1, "bias": a["bias"], "kbias": a["kbias"]}, (c, G, n)


def _classify_in_proj(m):
    """nn.MultiheadAttention holds its q, k, v projections as one packed linear layer."""
    mha = _nn().MultiheadAttention
    if isinstance(m, mha) and m.in_proj_weight is not None and m.bias_k is None:
        return "linear"
    return None


def _qkv_torch(st, inplace):
    a = st.attrs
    return _layers().QKV(a["cin"], a["c"], bias=a["bias"], kbias=a["kbias"])


def _grn_shape(ctx, a, shape):
    return {"c": shape[0], "eps": a["eps"]}, shape


def _patchmerge_shape(ctx, a, shape):
    C, H, W = shape
    return {}, (4 * C, -(-H // 2), -(-W // 2))


def _roll_shape(ctx, a, shape):
    dy, dx = a["dy"], a["dx"]
    return ({"dy": dy, "dx": dx}, shape) if dy or dx else None


def _attention_lower(ctx, a, h, name):
    """The multi-head self-attention block as the ops it is made of (docs/attention.md writes it
    out): window or grid partition (or one row of all positions), the position terms, the qkv
    projection, the head split, scaled (or cosine) logits, softmax over the keys, the weighted sum
    of the values, the head merge, the output projection, and the partition undone."""
    C, H, W = ctx.shape(h)
    heads, win, grid, shift = a["heads"], a["win"], a["grid"], a["shift"]
    if C % heads:
        ctx.fail(f"attention heads={heads} must divide the input's {C} channels")
    if win and grid:
        ctx.fail("attention: give win= (windows) or grid= (a grid), not both")
    if shift and not win:
        ctx.fail("attention shift= shifts windows: give win= too")
    if a["rel"] and a["cpb"]:
        ctx.fail("attention: give rel=1 (a learned table) or cpb=1 (Swin V2's MLP), not both")
    s = win or grid
    if (a["rel"] or a["cpb"]) and not s:
        ctx.fail("attention rel=1 and cpb=1 bias positions within a square window: give win= or grid=")
    if win:
        x = ctx.apply("window", {"s": win, "shift": shift}, h, name + ".window")
    elif grid:
        x = ctx.apply("grid", {"s": grid}, h, name + ".grid")
    else:
        x = ctx.apply("tokens", {}, h, name + ".tokens")
    terms = []              # computed before the projections, as torchvision's Swin does
    if a["rel"]:
        terms.append(ctx.apply("relbias", {"s": s, "heads": heads}, x, name + ".bias"))
    if a["cpb"]:
        terms.append(ctx.apply("cpb", {"s": s, "heads": heads, "hidden": a["hidden"]}, x, name + ".bias"))
    if win and any(swin_shift(win, shift, H, W)):
        terms.append(ctx.apply("shift_mask", {"s": win, "shift": shift, "heads": heads, "h": H, "w": W}, x, name + ".mask"))
    qkv = ctx.apply("qkv_proj", {"c": 3 * C, "bias": a["qkvbias"], "kbias": a["kbias"]}, x, name + ".qkv")
    part = {}
    for i, which in enumerate("qkv"):
        t = ctx.apply("slice", {"start": i * C, "end": (i + 1) * C}, qkv, f"{name}.{which}.slice")
        part[which] = ctx.apply("split_heads", {"heads": heads}, t, f"{name}.{which}.heads")
    q, k, v = part["q"], part["k"], part["v"]
    if a["cos"]:
        q = ctx.apply("l2norm", {}, q, name + ".q.l2norm")
        k = ctx.apply("l2norm", {}, k, name + ".k.l2norm")
    else:
        sd = a["sd"] if a["sd"] is not None else C // heads
        q = ctx.apply("scale", {"v": sd ** -0.5}, q, name + ".q.scale")
    k = ctx.apply("transpose", {}, k, name + ".k.transpose")
    logits = ctx.combine("matmul", [q, k], name + ".logits")
    if a["cos"]:
        logits = ctx.apply("logitscale", {"heads": heads}, logits, name + ".logitscale")
    if terms:
        logits = ctx.combine("add", [logits] + terms, name + ".add")
    p = ctx.apply("softmax", {"axis": -1}, logits, name + ".softmax")
    o = ctx.combine("matmul", [p, v], name + ".values")
    o = ctx.apply("merge_heads", {"heads": heads}, o, name + ".merge")
    o = ctx.apply("linear", {"c": C, "bias": a["projbias"]}, o, name + ".proj")
    if win:
        return ctx.apply("unwindow", {"s": win, "shift": shift, "h": H, "w": W}, o, name + ".unwindow")
    if grid:
        return ctx.apply("ungrid", {"s": grid, "h": H, "w": W}, o, name + ".ungrid")
    return ctx.apply("untokens", {"h": H}, o, name + ".untokens") if H > 1 else o


def swin_shift(s, shift, h, w):
    """The cyclic shift of Swin's windows per axis at an h x w map: none along an axis that one
    window covers once padded (torchvision's rule)."""
    hp, wp = _ceil_to(h, s), _ceil_to(w, s)
    return (0 if s >= hp else shift), (0 if s >= wp else shift)


def _module(cls_name, *keys):
    """A torch builder: layers.<cls_name>(*attrs[keys])."""
    def build(st, inplace):
        return getattr(_layers(), cls_name)(*(st.attrs[k] for k in keys))
    return build


_TOKEN_PORT = Port("any parameter a module owns directly, of the same shape (torchvision's "
                   "VisionTransformer.class_token, Encoder.pos_embedding)", lambda m: None)
_TABLE_PORT = Port("any parameter and integer buffer of the same shapes that a module owns "
                   "directly (torchvision's Swin and MaxViT attention: relative_position_bias_table, "
                   "relative_position_index), one by one", lambda m: None)

register(OpSpec(
    "tokens", "a map's positions as one row of tokens, row by row: C x H x W -> C x 1 x HW",
    takes="map", shape=_tokens_shape, cost=_free, torch=_module("Tokens"), compiles_to="Tokens",
    aliases=("flatten_tokens", "to_tokens", "seq"), examples=("tokens", "conv2x2/2 c=4 tokens")))
register(OpSpec(
    "untokens", "one row of tokens back to a map: C x 1 x N -> C x h x N/h",
    {"h": Attr(REQUIRED, POS_INT, "height of the map")},
    takes="map", shape=_untokens_shape, cost=_free, torch=_module("Untokens", "h"), compiles_to="Untokens",
    aliases=("from_tokens", "unflatten"), examples=("tokens untokens h=3",)))
register(OpSpec(
    "patchembed", "patch embedding: conv pxp/p to c channels, then tokens (steps .conv, .tokens)",
    {"p": Attr(REQUIRED, POS_INT, "patch size (the conv's kernel and stride)"),
     "c": Attr(REQUIRED, POS_INT, "embedding width"), "bias": Attr(1, FLAG, "learnable bias")},
    takes="map", lower=_patchembed_lower, aliases=("patch_embed", "patchify", "conv_proj"),
    examples=("patchembed p=3 c=8", "patchembed p=2 c=4 bias=0")))
register(OpSpec(
    "clstoken", "prepend a learned class token to every row of tokens: C x G x n -> C x G x n+1",
    takes="map", shape=_clstoken_shape, cost=lambda st: (st.attrs["c"], 0, 0, 0), torch=_module("ClassToken", "c"),
    port=_TOKEN_PORT, compiles_to="ClassToken (one 1 x 1 x C parameter)",
    aliases=("cls_token", "class_token", "cls"), examples=("tokens clstoken", "clstoken")))
register(OpSpec(
    "posembed", "add a learned embedding per token position (the same for every row)",
    takes="map", shape=_posembed_shape, cost=lambda st: (st.attrs["n"] * st.attrs["c"], 0, 0, math.prod(st.out)),
    torch=_module("PosEmbed", "n", "c"), port=_TOKEN_PORT, compiles_to="PosEmbed (one 1 x n x C parameter)",
    cost_doc=_ONE_PER_ELEMENT, aliases=("pos_embed", "pos_embedding", "position_embedding"),
    examples=("tokens clstoken posembed", "posembed")))
register(OpSpec(
    "token", "token i of every row: C x G x n -> C x G x 1 (ViT reads its class token)",
    {"i": Attr(0, NONNEG, "which token")},
    takes="map", shape=_token_shape, cost=_free, torch=_module("TakeToken", "i"), compiles_to="TakeToken",
    aliases=("take_token", "select_token"), examples=("tokens token", "tokens token i=4")))
register(OpSpec(
    "window", "Swin's windows: zero-pad to multiples of s, cyclic shift by -shift (none along an "
              "axis one window covers), s x s windows as rows: C x H x W -> C x G x s*s",
    {"s": Attr(REQUIRED, POS_INT, "window side"), "shift": Attr(0, NONNEG, "cyclic shift (Swin's s // 2)")},
    takes="map", shape=_window_shape, cost=_free, torch=_module("WindowPartition", "s", "shift"),
    compiles_to="WindowPartition", aliases=("window_partition", "partition", "windows"),
    examples=("window s=3", "window s=4 shift=2", "window s=5 shift=2")))
register(OpSpec(
    "unwindow", "windows back to the h x w map they came from (merge, shift back, crop)",
    {"s": Attr(REQUIRED, POS_INT, "window side"), "shift": Attr(0, NONNEG, "the window's shift"),
     "h": Attr(REQUIRED, POS_INT, "height of the map before window"), "w": Attr(REQUIRED, POS_INT, "its width")},
    takes="map", shape=_unwindow_shape, cost=_free, torch=_module("WindowMerge", "s", "shift", "h", "w"),
    compiles_to="WindowMerge", aliases=("window_merge", "window_reverse", "departition"),
    examples=("apool o=6 window s=4 shift=2 unwindow s=4 shift=2 h=6 w=6", "apool oh=5 ow=7 window s=3 shift=1 unwindow s=3 shift=1 h=5 w=7")))
register(OpSpec(
    "grid", "MaxViT's grid: s x s tokens spread over the map with stride H/s as rows: "
            "C x H x W -> C x (H/s)(W/s) x s*s",
    {"s": Attr(REQUIRED, POS_INT, "grid side (s divides H and W)")},
    takes="map", shape=_grid_shape, cost=_free, torch=_module("GridPartition", "s"),
    compiles_to="GridPartition", aliases=("grid_partition", "dilated_window"), examples=("apool o=6 grid s=3", "apool o=4 grid s=2")))
register(OpSpec(
    "ungrid", "a grid back to the h x w map",
    {"s": Attr(REQUIRED, POS_INT, "grid side"), "h": Attr(REQUIRED, POS_INT, "height of the map"),
     "w": Attr(REQUIRED, POS_INT, "its width")},
    takes="map", shape=_ungrid_shape, cost=_free, torch=_module("GridMerge", "s", "h", "w"),
    compiles_to="GridMerge", aliases=("grid_merge", "grid_reverse"), examples=("apool oh=6 ow=9 grid s=3 ungrid s=3 h=6 w=9",)))
register(OpSpec(
    "roll", "cyclic shift of a map by dy rows and dx columns (Swin's shift)",
    {"dy": Attr(0, INT, "rows"), "dx": Attr(0, INT, "columns")},
    takes="map", shape=_roll_shape, cost=_free, torch=_module("Roll", "dy", "dx"), compiles_to="Roll (torch.roll)",
    aliases=("cyclic_shift", "shift"), examples=("roll dy=-2 dx=-2", "roll dy=1")))
register(OpSpec(
    "split_heads", "multi-head split: C x G x n -> (G heads) x n x C/heads, channel c in head c // (C/heads)",
    {"heads": Attr(REQUIRED, POS_INT, "heads")},
    takes="map", shape=_split_heads_shape, cost=_free, torch=_module("SplitHeads", "heads"),
    compiles_to="SplitHeads", aliases=("heads", "split", "to_heads"), examples=("split_heads heads=2", "split_heads heads=3")))
register(OpSpec(
    "merge_heads", "multi-head merge: (G heads) x n x d -> heads d x G x n",
    {"heads": Attr(REQUIRED, POS_INT, "heads")},
    takes="map", shape=_merge_heads_shape, cost=_free, torch=_module("MergeHeads", "heads"),
    compiles_to="MergeHeads", aliases=("merge", "from_heads", "unheads"), examples=("split_heads heads=3 merge_heads heads=3",)))
register(OpSpec(
    "transpose", "swap the last two axes: C x H x W -> C x W x H (kᵀ in attention)",
    takes="map", shape=lambda ctx, a, shape: ({}, (shape[0], shape[2], shape[1])), cost=_free,
    torch=_module("Transpose"), compiles_to="Transpose", aliases=("t", "swapaxes", "permute"),
    examples=("transpose",)))
register(OpSpec(
    "relbias", "learned relative position bias of an s x s window per head, for each row of tokens: "
               "C x G x s*s -> (G heads) x s*s x s*s (to add to attention logits; the input gives the layout)",
    {"s": Attr(REQUIRED, POS_INT, "window side"), "heads": Attr(REQUIRED, POS_INT, "heads")},
    takes="map", shape=_position_terms("relbias"), cost=_relbias_cost, torch=_module("RelPosBias", "s", "heads"),
    port=_TABLE_PORT, compiles_to="RelPosBias (a (2s-1)^2 x heads table, an s^2 x s^2 index)",
    aliases=("rel_pos_bias", "relative_position_bias", "relpos"), examples=("window s=3 relbias s=3 heads=2",)))
register(OpSpec(
    "cpb", "Swin V2's continuous position bias: an MLP (2 -> hidden -> heads) of the log-spaced offsets "
           "in an s x s window, 16 sigmoid(.), for each row: C x G x s*s -> (G heads) x s*s x s*s",
    {"s": Attr(REQUIRED, POS_INT, "window side"), "heads": Attr(REQUIRED, POS_INT, "heads"),
     "hidden": Attr(512, POS_INT, "the MLP's hidden width")},
    takes="map", shape=_position_terms("cpb"), cost=_cpb_cost, torch=_module("ContinuousPosBias", "s", "heads", "hidden"),
    port=Port("its MLP's nn.Linear layers as linears; its coordinate table and index as buffers a module "
              "owns directly (torchvision's ShiftedWindowAttentionV2)", lambda m: None),
    compiles_to="ContinuousPosBias (an nn.Sequential MLP)",
    cost_doc="MACs: the MLP on the (2s-1)^2 offsets, once per forward pass; other FLOPs: its ReLU, the sigmoid and x16",
    aliases=("continuous_position_bias", "cpb_mlp"), examples=("window s=3 cpb s=3 heads=2 hidden=8",)))
register(OpSpec(
    "shift_mask", "Swin's attention mask for shifted windows (-100 between tokens from different regions), "
            "for each window and head: C x G x s*s -> (G heads) x s*s x s*s",
    {"s": Attr(REQUIRED, POS_INT, "window side"), "shift": Attr(REQUIRED, NONNEG, "the windows' shift"),
     "heads": Attr(REQUIRED, POS_INT, "heads"), "h": Attr(REQUIRED, POS_INT, "height of the map before window"),
     "w": Attr(REQUIRED, POS_INT, "its width")},
    takes="map", shape=_position_terms("shift_mask"), cost=_free, torch=_module("ShiftMask", "s", "shift", "heads", "h", "w"),
    compiles_to="ShiftMask", aliases=("attn_mask", "mask", "attention_mask"),
    examples=("apool o=6 window s=3 shift=1 shift_mask s=3 shift=1 heads=2 h=6 w=6",)))
register(OpSpec(
    "logitscale", "Swin V2's learned temperature per head: x exp(min(t, log 100)), t initialised to log 10",
    {"heads": Attr(REQUIRED, POS_INT, "heads")},
    takes="map", shape=_logitscale_shape, cost=lambda st: (st.attrs["heads"], 0, 0, math.prod(st.out)),
    torch=_module("LogitScale", "heads"),
    port=Port("a heads x 1 x 1 parameter, as a layer scale (torchvision's logit_scale)", lambda m: None),
    compiles_to="LogitScale (one heads x 1 x 1 parameter)", cost_doc=_ONE_PER_ELEMENT,
    aliases=("logit_scale", "temperature"), examples=("logitscale heads=2", "logitscale heads=3")))
register(OpSpec(
    "l2norm", "divide each vector along the last axis by its L2 norm (cosine attention's q and k)",
    takes="map", shape=_same_shape(), cost=_per_element(3), torch=_module("L2Norm"), compiles_to="L2Norm (F.normalize)",
    cost_doc="other FLOPs: 3 per element (square, sum, divide)", aliases=("normalize", "l2_normalize"),
    examples=("l2norm",)))
register(OpSpec(
    "qkv_proj", "the query/key/value projection: a linear layer over the channels at every position; kbias=0 "
           "holds the keys' (middle) third of the bias at zero, as Swin V2",
    {"c": Attr(REQUIRED, POS_INT, "output channels (3 x the width)"), "bias": Attr(1, FLAG, "learnable bias"),
     "kbias": Attr(1, FLAG, "the keys' bias (0: held at zero)")},
    takes="map", shape=_qkv_shape, cost=_conv_cost, torch=_qkv_torch,
    port=Port("an nn.Linear of the same shape, or nn.MultiheadAttention's packed in_proj (its own "
              "in_proj_weight and in_proj_bias; its out_proj is an nn.Linear)", _classify_in_proj),
    compiles_to="QKV (an nn.Conv2d 1x1)", aliases=("qkv", "in_proj", "to_qkv"),
    examples=("qkv_proj c=18", "qkv_proj c=12 kbias=0", "qkv_proj c=6 bias=0")))
register(OpSpec(
    "grn", "ConvNeXt V2's global response norm: x + bias + weight x N(x), N = each channel's L2 norm over "
           "positions / its mean over channels",
    {"eps": Attr(1e-6, POSITIVE, "added to the mean")},
    takes="map", shape=_grn_shape, cost=lambda st: (2 * st.attrs["c"], 0, 0, 6 * math.prod(st.out)),
    torch=_module("GRN", "c", "eps"),
    port=Port("timm's GlobalResponseNorm: its weight and bias, one by one", lambda m: None),
    compiles_to="GRN (weight and bias of C values)", cost_doc="other FLOPs: 6 per element",
    aliases=("global_response_norm", "globalresponsenorm"), examples=("grn", "grn eps=1e-5")))
register(OpSpec(
    "patchmerge", "Swin's patch merging: zero-pad odd sizes, 2x2 neighbours as channels in the order "
                  "(0,0), (1,0), (0,1), (1,1): C x H x W -> 4C x H/2 x W/2",
    takes="map", shape=_patchmerge_shape, cost=_free, torch=_module("PatchMerge"), compiles_to="PatchMerge",
    aliases=("patch_merging", "patch_merge", "space2depth"), examples=("patchmerge", "patchmerge ln linear c=6")))
register(OpSpec(
    "attention", "multi-head self-attention: qkv, scaled dot-product (or cosine) logits + position terms, "
                 "softmax over keys, values, output projection; within win x win windows (Swin, shifted by "
                 "shift=), a grid (MaxViT), or over all positions (ViT)",
    {"heads": Attr(REQUIRED, POS_INT, "heads"),
     "win": Attr(0, NONNEG, "window side (0: none)"), "shift": Attr(0, NONNEG, "window shift (Swin: win // 2)"),
     "grid": Attr(0, NONNEG, "grid side (MaxViT; 0: none)"),
     "rel": Attr(0, FLAG, "learned relative position bias (Swin, MaxViT)"),
     "cpb": Attr(0, FLAG, "continuous position bias and cosine logits (Swin V2)"),
     "cos": Attr(0, FLAG, "cosine logits with a learned temperature (Swin V2)"),
     "hidden": Attr(512, POS_INT, "width of the cpb MLP"),
     "sd": Attr(None, POS_INT, "the logits are scaled by sd^-1/2 (default: the head width; MaxViT: the width)"),
     "qkvbias": Attr(1, FLAG, "bias of the qkv projection"), "kbias": Attr(1, FLAG, "the keys' bias (Swin V2: 0)"),
     "projbias": Attr(1, FLAG, "bias of the output projection")},
    takes="map", lower=_attention_lower, aliases=("attn", "mha", "self_attention", "multihead_attention"),
    examples=("attention heads=2", "tokens attention heads=3", "attention heads=2 win=3 shift=1 rel=1",
              "attention heads=2 win=4 shift=2 cpb=1 cos=1 kbias=0 hidden=8", "apool o=6 attention heads=3 grid=3 rel=1 sd=6",
              "attention heads=1 win=3 qkvbias=0 projbias=0")))

# ---- joins: `add(a, b, ...)` in a cell node
register(OpSpec(
    "add", "sum of equal shapes", join=_equal_shapes("add"), cost=_add_cost, torch=_add_torch,
    overwritable=True, compiles_to="`a + b` (`+=` when the first operand is read by nothing else)",
    cost_doc="other FLOPs: 1 per element per extra operand", aliases=("sum", "plus"),
    examples=("add(a, b)", "add(a, b, in)")))
register(OpSpec(
    "sub", "difference a - b of equal shapes", join=_equal_shapes("sub"), arity=2, cost=_add_cost,
    torch=_sub_torch, compiles_to="`a - b`", cost_doc=_ONE_PER_ELEMENT, aliases=("subtract", "minus", "diff"),
    examples=("sub(a, b)", "sub(in, avgpool3x3 s=1 p=1 cip=0 <- a)")))
register(OpSpec(
    "mul", "product of equal shapes, or by a Cx1x1 gate (squeeze-and-excitation)", join=_mul_shape,
    cost=lambda st: (0, 0, 0, math.prod(st.out)), torch=_mul_torch, compiles_to="`a * b`",
    cost_doc=_ONE_PER_ELEMENT, aliases=("multiply", "prod", "times"),
    examples=("mul(a, b)", "mul(a, gap <- b)", "mul(gap <- b, a)")))
register(OpSpec(
    "cat", "concatenation along channels (equal H x W); an operand that is none (`else none`) is left out, "
           "as from add and mul",
    join=_cat_shape, cost=_free, torch=_cat_torch, overwritable=True, compiles_to="torch.cat(..., 1)",
    aliases=("concat", "concatenate", "stack"), examples=("cat(a, b)", "cat(a, b, in)")))

register(OpSpec(
    "matmul", "matrix product of two activations, matrix by matrix: B x n x k and B x k x m -> B x n x m "
              "(q kᵀ, attention x values)",
    join=_matmul_shape, arity=2, cost=_matmul_cost, torch=_matmul_torch, compiles_to="torch.matmul",
    cost_doc="MACs: B n k m", aliases=("bmm", "matrix_product", "einsum"),
    examples=("matmul(matmul(a, transpose <- b), a)", "matmul(softmax axis=-1 <- matmul(a, transpose <- b), in)")))

# ======================================================================= derived views
# (what the parser and the static checks read; all of it follows from the entries above)
OPS: dict[str, dict] = {name: {k: a.default for k, a in s.attrs.items()}
                        for name, s in SPECS.items() if s.shape is not None or s.lower is not None}
KERNEL_OPS = frozenset(name for name, s in SPECS.items() if s.kernel)
COMBINERS = tuple(sorted((name for name, s in SPECS.items() if s.join is not None),
                         key=lambda name: SPECS[name].shape is not None))     # the pure joins first
INPUT_NAMES = ("in", "prev")
# bare words that are values rather than names to look up: `p=same`, `act fn=relu`, `mode=bilinear`
WORDS = frozenset({"same", "valid", "true", "false", "identity"} | ACTIVATIONS
                  | {w for s in SPECS.values() for a in s.attrs.values() for w in a.domain.words})

_KERNEL_NAME = re.compile(r"^(%s)(\d+)x(\d+)$" % "|".join(sorted(KERNEL_OPS)))
_REPEAT = re.compile(r"^x\d+$")


def split_op_name(name: str):
    """'conv1x7' -> ('conv', 1, 7); 'relu' -> ('relu', None, None); unknown -> None."""
    m = _KERNEL_NAME.match(name)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    if name in OPS:
        return name, None, None
    return None


def is_reserved(name: str) -> bool:
    """Names a node or cell may not take, since they already mean something."""
    return (split_op_name(name) is not None or name in COMBINERS or name in ("x", "rest", "if")
            or bool(_REPEAT.match(name)))


def required(kind: str, attr: str) -> bool:
    return OPS[kind].get(attr, None) is _REQ


def default(kind: str, attr: str):
    v = OPS[kind].get(attr)
    return None if v is _REQ else v


def known_attrs(kind: str) -> tuple[str, ...]:
    extra = ("k",) if SPECS[kind].kernel else ()
    return tuple(OPS[kind]) + extra


def check_value(kind: str, attr: str, value):
    """`value` normalised to attribute `attr` of op `kind` (ints from 3.0, bools from 0/1), or a
    BadValue whose message names the op, the attribute and what it accepts."""
    if value is None:                 # derived from the other attributes or the input
        return None
    dom = SPECS[kind].attrs[attr].domain
    try:
        return dom.convert(value)
    except BadValue:
        raise BadValue(f"{kind} {attr}= must {dom.must}, got {value!r}") from None


# ======================================================================= did you mean
def _display(name: str) -> str:
    return f"{name}3x3" if name in KERNEL_OPS else name


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from a to b: Damerau-Levenshtein."""
    d = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def nearest(name: str, options) -> str | None:
    """The option a mistyped `name` most likely meant. Short names (node names are often one or
    two letters) need edit distance: difflib's ratio finds no neighbour for 'hq' among 'hp'."""
    options = list(options)
    scored = sorted((_distance(name.lower(), o.lower()), i) for i, o in enumerate(options))
    if scored and scored[0][0] <= max(1, len(name) // 3):
        return options[scored[0][1]]
    close = difflib.get_close_matches(name, options, n=1)
    return close[0] if close else None


def suggest_input(name: str, defined, inputs: int = 1) -> str:
    """A hint for an undefined input or node name inside a cell."""
    if name == "prev" and inputs == 1:
        return " ('prev' is the second input of a cell declared `cell NAME(...) inputs 2:`)"
    pick = nearest(name, defined)
    return f" (did you mean {pick!r}?)" if pick else f" (defined so far: {', '.join(sorted(defined))})"


def suggest_op(name: str, cells=()) -> str:
    """A did-you-mean hint for an unknown op (or cell) name: the real neighbour, found among op
    names, the other names people use for ops (layernorm -> ln, concat -> cat) and the cells;
    and the activation names where the word looks like one (mish, elu)."""
    low = name.lower()
    by_alias = {a.lower(): n for n, s in SPECS.items() for a in s.aliases}
    stem = re.sub(r"\d+x\d+$", "", low)
    pick = None
    if stem in by_alias:
        pick = by_alias[stem]
    elif stem in SPECS and stem != low:
        pick = stem
    else:
        options = {**{n: n for n in OPS}, **{c: c for c in cells}, **by_alias,
                   **{_display(n): n for n in KERNEL_OPS}}
        close = difflib.get_close_matches(stem, list(options), n=1, cutoff=0.7)
        pick = options[close[0]] if close else None
    parts = [f"did you mean {_display(pick) if pick in SPECS else pick!r}?"] if pick else []
    if (pick is None or pick in ACTIVATIONS) and re.search(r"lu|sig|tanh|swish|mish|act|softplus", low):
        parts.append(f"the activations are {', '.join(sorted(ACTIVATIONS))}")
    return f" ({' '.join(parts)})" if parts else ""
