"""The one compiler: Genotype -> a plain torch.fx.GraphModule (an nn.Module).

The elaborated program is turned into standard torch modules and a straight-
line generated `forward` (torch.fx codegen), so the compiled net runs no more
Python per call than a hand-written module, and `torch.compile`,
`torch.export` and ONNX export see ordinary code.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from .genotype import Genotype, elaborate
from .genotype.elaborate import INPUT, Step


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding computed from the actual input size."""

    def forward(self, x):
        return super().forward(_pad_same(x, self.kernel_size, self.stride, self.dilation))


class MaxPool2dSame(nn.MaxPool2d):
    def forward(self, x):
        x = _pad_same(x, _pair(self.kernel_size), _pair(self.stride), (1, 1), value=float("-inf"))
        return super().forward(x)


class AvgPool2dSame(nn.AvgPool2d):
    """'SAME' average pooling; with count_include_pad=False the padding is not averaged in."""

    def forward(self, x):
        k, s = _pair(self.kernel_size), _pair(self.stride)
        if self.count_include_pad:
            return super().forward(_pad_same(x, k, s, (1, 1)))
        ones = torch.ones_like(x[:1, :1])
        num = F.avg_pool2d(_pad_same(x, k, s, (1, 1)), k, s, 0, self.ceil_mode, True)
        den = F.avg_pool2d(_pad_same(ones, k, s, (1, 1)), k, s, 0, self.ceil_mode, True)
        return num / den


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _same_amount(length, k, s, d):
    out = -(-length // s)
    return max((out - 1) * s + (k - 1) * d + 1 - length, 0)


def _pad_same(x, k, s, d, value=0.0):
    ph = _same_amount(x.shape[-2], k[0], s[0], d[0])
    pw = _same_amount(x.shape[-1], k[1], s[1], d[1])
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=value)
    return x


class DropPath(nn.Module):
    """Stochastic depth: drop the whole branch per sample in training; identity at eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        # scale the (N,1,1,1) mask, not the activation: one full-size multiply, as torchvision does
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep).div_(keep)
        return x * mask

    def extra_repr(self):
        return f"p={self.p}"


class Scale(nn.Module):
    """Multiply by a constant (the scaled residual branches of Inception-ResNet)."""

    def __init__(self, v: float):
        super().__init__()
        self.v = v

    def forward(self, x):
        return x * self.v

    def extra_repr(self):
        return f"v={self.v}"


class ChannelSlice(nn.Module):
    """Channels [start, end) of the input (ShuffleNetV2's channel split)."""

    def __init__(self, start: int, end: int):
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x):
        return x[:, self.start:self.end]

    def extra_repr(self):
        return f"start={self.start}, end={self.end}"


class ChannelShuffle(nn.Module):
    """Shuffle channels across g groups: view (N, g, C/g, ...), swap the two, flatten back."""

    def __init__(self, g: int):
        super().__init__()
        self.g = g

    def forward(self, x):
        n, c = x.shape[:2]
        rest = x.shape[2:]
        return x.reshape(n, self.g, c // self.g, *rest).transpose(1, 2).reshape(n, c, *rest)

    def extra_repr(self):
        return f"g={self.g}"


_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                "silu": nn.SiLU, "hswish": nn.Hardswish, "hsigmoid": nn.Hardsigmoid, "gelu": nn.GELU}


# Activations that may overwrite their input, as torchvision's ReLU(inplace=True) does,
# when that input is read by nothing else and its producer's backward does not need it.
_INPLACE = {"relu", "relu6", "hswish", "silu"}
_INPLACE_SAFE_PRODUCERS = {"conv", "bn", "add", "fc", "cat"}


def module_for(st: Step, inplace: bool = False) -> nn.Module:
    """The torch module computing one step."""
    a, k = st.attrs, st.kind
    if k == "conv":
        pt, pb, pl, pr = a["pads"]
        common = dict(stride=a["s"], dilation=a["d"], groups=a["g"], bias=a["bias"])
        if a["same"]:
            return Conv2dSame(a["cin"], a["c"], (a["kh"], a["kw"]), padding=0, **common)
        if pt == pb and pl == pr:
            return nn.Conv2d(a["cin"], a["c"], (a["kh"], a["kw"]), padding=(pt, pl), **common)
        return nn.Sequential(nn.ZeroPad2d((pl, pr, pt, pb)),
                             nn.Conv2d(a["cin"], a["c"], (a["kh"], a["kw"]), padding=0, **common))
    if k == "fc":
        return nn.Linear(a["cin"], a["c"], bias=a["bias"])
    if k == "bn":
        cls = nn.BatchNorm2d if len(st.out) == 3 else nn.BatchNorm1d
        return cls(a["c"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
    if k in ("maxpool", "avgpool"):
        kernel, stride = (a["kh"], a["kw"]), (a["sh"], a["sw"])
        if a["same"]:
            if k == "maxpool":
                return MaxPool2dSame(kernel, stride, 0, ceil_mode=a["ceil"])
            return AvgPool2dSame(kernel, stride, 0, ceil_mode=a["ceil"], count_include_pad=a["cip"])
        pad = (a["ph"], a["pw"])
        if k == "maxpool":
            return nn.MaxPool2d(kernel, stride, pad, ceil_mode=a["ceil"])
        return nn.AvgPool2d(kernel, stride, pad, ceil_mode=a["ceil"], count_include_pad=a["cip"])
    if k == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if k == "gmp":
        return nn.AdaptiveMaxPool2d(1)
    if k == "apool":
        return nn.AdaptiveAvgPool2d((a["oh"], a["ow"]))
    if k == "flatten":
        return nn.Flatten(1)
    if k == "dropout":
        return nn.Dropout(a["p"])
    if k == "droppath":
        return DropPath(a["p"])
    if k == "lrn":
        return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])
    if k == "pad":
        return nn.ZeroPad2d((a["l"], a["r"], a["t"], a["b"]))
    if k == "scale":
        return Scale(a["v"])
    if k == "slice":
        return ChannelSlice(a["start"], a["end"])
    if k == "shuffle":
        return ChannelShuffle(a["g"])
    if k == "lrelu":
        return nn.LeakyReLU(a["slope"])
    if k in _ACTIVATIONS:
        return _ACTIVATIONS[k](inplace=True) if inplace and k in _INPLACE else _ACTIVATIONS[k]()
    raise ValueError(f"no module for step kind {k!r}")   # unreachable for an elaborated program


def _attach(root: nn.Module, path: str, module: nn.Module):
    *parents, leaf = path.split(".")
    node = root
    for p in parents:
        if not hasattr(node, p) or p not in node._modules:
            node.add_module(p, nn.Module())
        node = node._modules[p]
    if leaf in node._modules:
        raise ValueError(f"two layers compile to the same module path {path!r}")
    node.add_module(leaf, module)


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) or "Net"


def compile_genotype(g: Genotype, input=None, classes=None) -> fx.GraphModule:
    """Compile genotype `g` to a torch module (shapes checked first, at `input`)."""
    prog = elaborate(g, input, classes)
    readers: dict[int, int] = {}
    for st in prog.steps:
        for h in st.inputs:
            readers[h] = readers.get(h, 0) + 1
    readers[prog.output] = readers.get(prog.output, 0) + 1
    root = nn.Module()
    graph = fx.Graph()
    values = {INPUT: graph.placeholder("x")}
    for i, st in enumerate(prog.steps):
        args = [values[h] for h in st.inputs]
        if st.kind == "add":
            # `out += shortcut` as torchvision writes it, when the sum's first operand is read by
            # nothing else and its producer's backward does not need it: saves an allocation.
            first = st.inputs[0]
            fold = (first != INPUT and readers.get(first) == 1 and st.inputs.count(first) == 1
                    and prog.steps[first].kind in _INPLACE_SAFE_PRODUCERS)
            v = args[0]
            for other in args[1:]:
                v = graph.call_function(operator.iadd if fold else operator.add, (v, other))
        elif st.kind == "mul":
            v = args[0]
            for other in args[1:]:
                v = graph.call_function(operator.mul, (v, other))
        elif st.kind == "cat":
            v = graph.call_function(torch.cat, (tuple(args), 1))
        else:
            src = st.inputs[0]
            inplace = (src != INPUT and readers.get(src) == 1
                       and prog.steps[src].kind in _INPLACE_SAFE_PRODUCERS)
            _attach(root, st.name, module_for(st, inplace))
            v = graph.call_module(st.name, (args[0],))
        values[i] = v
    graph.output(values[prog.output])
    gm = fx.GraphModule(root, graph, class_name=_class_name(g.name))
    gm.genotype = g
    gm.input_shape = tuple(prog.input)
    return gm
