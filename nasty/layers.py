"""The torch modules nasty's ops compile to where torch has none of its own.

Each is small and plain, so a compiled genotype stays ordinary torch code: TensorFlow
'SAME' padding, drop-path, constant and learnable scales, channel slicing and shuffling,
LayerNorm over the channels of a CxHxW map, softmax across a group axis. Which op
compiles to which module is said once, in the op registry (`nasty/genotype/ops.py`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class LayerScale(nn.Module):
    """Multiply by a learnable per-channel scale, initialised to `v` (ConvNeXt's layer scale)."""

    def __init__(self, channels: int, v: float, spatial: bool = True):
        super().__init__()
        shape = (channels, 1, 1) if spatial else (channels,)
        self.weight = nn.Parameter(torch.full(shape, float(v)))

    def forward(self, x):
        return self.weight * x


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W map, at every position (ConvNeXt's)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GroupSoftmax(nn.Module):
    """Softmax across a group axis (split attention's rSoftMax).

    The channels are viewed as (g, r, C / (g r)); softmax runs across the r axis and the
    result is laid out (r, g, C / (g r)), so that the i-th run of C / r channels weighs the
    i-th of r splits. With r = C and g = 1 it is the plain softmax over channels.
    """

    def __init__(self, r: int, g: int = 1):
        super().__init__()
        self.r, self.g = r, g

    def forward(self, x):
        n, c = x.shape[:2]
        rest = x.shape[2:]
        y = x.reshape(n, self.g, self.r, c // (self.g * self.r), *rest).transpose(1, 2)
        return F.softmax(y, dim=1).reshape(n, c, *rest)

    def extra_repr(self):
        return f"r={self.r}, g={self.g}"


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


class ResizeLike(nn.Module):
    """Resize the first input to the height and width of the second (FPN's top-down path)."""

    def __init__(self, mode: str = "nearest", align_corners: bool = False):
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners if mode == "bilinear" else None

    def forward(self, x, like):
        return F.interpolate(x, size=like.shape[-2:], mode=self.mode, align_corners=self.align_corners)

    def extra_repr(self):
        return f"mode={self.mode!r}"
