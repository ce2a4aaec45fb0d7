"""The op vocabulary: which primitive ops exist, their attributes and defaults.

This is the single place that says what a genotype may contain. The parser,
validator, elaborator, cost model and compiler all read it.
"""
from __future__ import annotations

import re

_REQ = object()   # marker: attribute has no default and must be given

# kind -> {attr: default}. `None` means "derived" (e.g. padding from kernel).
_CONV = {"c": _REQ, "kh": _REQ, "kw": _REQ, "s": 1, "p": None, "ph": None, "pw": None,
         "d": 1, "g": 1, "bias": 1}
_POOL = {"kh": _REQ, "kw": _REQ, "s": None, "p": 0, "ph": None, "pw": None, "ceil": 0}

OPS: dict[str, dict] = {
    # convolutions (kernel may be written as a suffix: conv3x3, conv1x7)
    "conv": _CONV,
    "dwconv": {**_CONV, "c": None},                 # depthwise: groups = input channels
    "sep": {**_CONV, "g": 1},                       # depthwise kxk then pointwise 1x1 -> c
    # pooling
    "maxpool": _POOL,
    "avgpool": {**_POOL, "cip": 1},                 # cip: count_include_pad
    "gap": {},                                      # global average pool -> C x 1 x 1
    "gmp": {},                                      # global max pool
    "apool": {"o": None, "oh": None, "ow": None},   # adaptive average pool to o x o
    # shape and classifier
    "flatten": {},
    "fc": {"c": _REQ, "bias": 1},
    "dropout": {"p": 0.5},
    "droppath": {"p": 0.0},                         # stochastic depth; identity at eval
    # normalisation
    "bn": {"eps": 1e-5, "momentum": 0.1, "affine": 1},
    "lrn": {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
    # activations
    "relu": {}, "relu6": {}, "tanh": {}, "sigmoid": {}, "silu": {}, "swish": {},
    "hswish": {}, "hsigmoid": {}, "gelu": {}, "lrelu": {"slope": 0.01},
    "act": {"fn": _REQ, "slope": 0.01},             # activation named by a value: act fn=nl
    # plumbing
    "identity": {},
    "pad": {"l": 0, "r": 0, "t": 0, "b": 0},        # zero pad; negative values crop
    "scale": {"v": _REQ},                           # multiply by a constant (scaled residuals)
    "shortcut": {"c": _REQ, "s": 1, "bn": 1},       # identity, or conv1x1/s (+bn) when shapes differ
    "slice": {"start": 0, "end": None},             # channels start..end-1 (end: the last)
    "shuffle": {"g": _REQ},                         # channel shuffle in g groups (ShuffleNet)
}
ACTIVATIONS = frozenset({"relu", "relu6", "tanh", "sigmoid", "silu", "swish", "hswish",
                         "hsigmoid", "gelu", "lrelu"})
KERNEL_OPS = frozenset({"conv", "dwconv", "sep", "maxpool", "avgpool"})
COMBINERS = ("add", "cat", "mul")
INPUT_NAMES = ("in", "prev")

_KERNEL_NAME = re.compile(r"^(conv|dwconv|sep|maxpool|avgpool)(\d+)x(\d+)$")
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
    extra = ("k",) if "kh" in OPS[kind] else ()
    return tuple(OPS[kind]) + extra
