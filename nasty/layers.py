"""The torch modules nasty's ops compile to where torch has none of its own.

Each is small and plain, so a compiled genotype stays ordinary torch code: TensorFlow
'SAME' padding, drop-path, constant and learnable scales, channel slicing and shuffling,
LayerNorm over the channels of a CxHxW map, softmax across a group axis. Which op
compiles to which module is said once, in the op registry (`nasty/genotype/ops.py`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .genotype.ops import swin_shift


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


# ---------------------------------------------------------------- tokens and attention
# nasty's tensors stay channels-first: a token sequence is a C x 1 x N map (tokens along the
# width), windows of tokens are its rows (C x G x n: G groups of n tokens), and after the head
# split an attention map is (G * heads) x n x d, one matrix per row group and head. Every module
# below takes and returns N x C x H x W tensors; docs/attention.md says why.
class Tokens(nn.Module):
    """C x H x W -> C x 1 x HW: the positions of a map as one sequence of tokens, row by row."""

    def forward(self, x):
        return x.flatten(2).unsqueeze(2)


class Untokens(nn.Module):
    """C x 1 x N -> C x h x N/h: a sequence of tokens back to a map."""

    def __init__(self, h: int):
        super().__init__()
        self.h = h

    def forward(self, x):
        return x.reshape(x.shape[0], x.shape[1], self.h, -1)

    def extra_repr(self):
        return f"h={self.h}"


class ClassToken(nn.Module):
    """Prepend a learned token to every row of tokens (ViT's class token, kept as torchvision
    keeps it: 1 x 1 x C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, channels))

    def forward(self, x):
        n, c, g, _ = x.shape
        tok = self.token.expand(n, -1, -1).transpose(1, 2).unsqueeze(3).expand(n, c, g, 1)
        return torch.cat([tok, x], dim=3)


class PosEmbed(nn.Module):
    """Add a learned embedding per token position (ViT's, kept as torchvision keeps it: 1 x N x C),
    the same for every row."""

    def __init__(self, tokens: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, tokens, channels).normal_(std=0.02))

    def forward(self, x):
        return x + self.weight.transpose(1, 2).unsqueeze(2)


class TakeToken(nn.Module):
    """Token i of every row: C x G x n -> C x G x 1 (ViT reads its class token)."""

    def __init__(self, i: int):
        super().__init__()
        self.i = i

    def forward(self, x):
        return x[..., self.i:self.i + 1]

    def extra_repr(self):
        return f"i={self.i}"


def _window_grid(x, s):
    """N x C x H x W (H, W multiples of s) -> N x C x G x s*s: s x s windows, row by row."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // s, s, w // s, s).permute(0, 1, 2, 4, 3, 5)
    return x.reshape(n, c, (h // s) * (w // s), s * s)


def _window_ungrid(x, s, h, w):
    n, c = x.shape[:2]
    x = x.reshape(n, c, h // s, w // s, s, s).permute(0, 1, 2, 4, 3, 5)
    return x.reshape(n, c, h, w)


class WindowPartition(nn.Module):
    """Swin's windows: zero-pad bottom and right to multiples of s, shift cyclically by -shift
    (none along an axis one window covers), cut into s x s windows: C x H x W -> C x G x s*s."""

    def __init__(self, s: int, shift: int = 0):
        super().__init__()
        self.s, self.shift = s, shift

    def forward(self, x):
        s = self.s
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (s - w % s) % s, 0, (s - h % s) % s))
        dy, dx = swin_shift(s, self.shift, h, w)
        if dy or dx:
            x = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))
        return _window_grid(x, s)

    def extra_repr(self):
        return f"s={self.s}, shift={self.shift}"


class WindowMerge(nn.Module):
    """The inverse of WindowPartition: windows back to the padded map, shifted back, cropped to h x w."""

    def __init__(self, s: int, shift: int, h: int, w: int):
        super().__init__()
        self.s, self.shift, self.h, self.w = s, shift, h, w

    def forward(self, x):
        s = self.s
        hp, wp = -(-self.h // s) * s, -(-self.w // s) * s
        x = _window_ungrid(x, s, hp, wp)
        dy, dx = swin_shift(s, self.shift, self.h, self.w)
        if dy or dx:
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        return x[..., :self.h, :self.w]

    def extra_repr(self):
        return f"s={self.s}, shift={self.shift}, h={self.h}, w={self.w}"


class GridPartition(nn.Module):
    """MaxViT's grid: C x H x W -> C x G x s*s, G = (H/s)(W/s) groups; group (i, j) holds the
    s x s positions (a H/s + i, b W/s + j), a and b row by row."""

    def __init__(self, s: int):
        super().__init__()
        self.s = s

    def forward(self, x):
        n, c, h, w = x.shape
        s = self.s
        x = x.reshape(n, c, s, h // s, s, w // s).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, c, (h // s) * (w // s), s * s)

    def extra_repr(self):
        return f"s={self.s}"


class GridMerge(nn.Module):
    def __init__(self, s: int, h: int, w: int):
        super().__init__()
        self.s, self.h, self.w = s, h, w

    def forward(self, x):
        n, c = x.shape[:2]
        s, h, w = self.s, self.h, self.w
        x = x.reshape(n, c, h // s, w // s, s, s).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c, h, w)

    def extra_repr(self):
        return f"s={self.s}, h={self.h}, w={self.w}"


class Roll(nn.Module):
    """Cyclic shift of a map by dy rows and dx columns (torch.roll)."""

    def __init__(self, dy: int, dx: int):
        super().__init__()
        self.dy, self.dx = dy, dx

    def forward(self, x):
        return torch.roll(x, shifts=(self.dy, self.dx), dims=(2, 3))

    def extra_repr(self):
        return f"dy={self.dy}, dx={self.dx}"


class SplitHeads(nn.Module):
    """C x G x n -> (G heads) x n x (C/heads): channel c is head c // (C/heads)."""

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    def forward(self, x):
        n, c, g, t = x.shape
        x = x.reshape(n, self.heads, c // self.heads, g, t).permute(0, 3, 1, 4, 2)
        return x.reshape(n, g * self.heads, t, c // self.heads)

    def extra_repr(self):
        return f"heads={self.heads}"


class MergeHeads(nn.Module):
    """(G heads) x n x d -> (heads d) x G x n: the inverse of SplitHeads."""

    def __init__(self, heads: int):
        super().__init__()
        self.heads = heads

    def forward(self, x):
        n, gh, t, d = x.shape
        x = x.reshape(n, gh // self.heads, self.heads, t, d).permute(0, 2, 4, 1, 3)
        return x.reshape(n, self.heads * d, gh // self.heads, t)

    def extra_repr(self):
        return f"heads={self.heads}"


class Transpose(nn.Module):
    """Swap the last two axes: C x H x W -> C x W x H."""

    def forward(self, x):
        return x.transpose(-1, -2)


def relative_position_index(s: int) -> torch.Tensor:
    """For each pair of positions of an s x s window, the row of a (2s-1)^2 table holding their
    relative offset (Swin's and MaxViT's index), as an s^2 x s^2 tensor."""
    coords = torch.stack(torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[:, :, 0] + s - 1) * (2 * s - 1) + rel[:, :, 1] + s - 1


def _per_group(bias, x, heads):
    """A heads x n x n bias for each of x's G rows and each image: N x (G heads) x n x n."""
    n, g = x.shape[0], x.shape[2]
    t = bias.shape[-1]
    return bias.unsqueeze(0).unsqueeze(0).expand(n, g, heads, t, t).reshape(n, g * heads, t, t)


class RelPosBias(nn.Module):
    """A learned bias per head for each relative offset of two positions in an s x s window
    (Swin, MaxViT): a (2s-1)^2 x heads table, gathered by the index; the input (C x G x s*s
    tokens) gives only the number of rows G. Output (G heads) x s*s x s*s."""

    def __init__(self, s: int, heads: int):
        super().__init__()
        self.s, self.heads = s, heads
        self.table = nn.Parameter(torch.empty((2 * s - 1) ** 2, heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        self.register_buffer("index", relative_position_index(s))

    def forward(self, x):
        t = self.s * self.s
        bias = self.table[self.index.reshape(-1)].reshape(t, t, self.heads).permute(2, 0, 1)
        return _per_group(bias, x, self.heads)

    def extra_repr(self):
        return f"s={self.s}, heads={self.heads}"


class ContinuousPosBias(nn.Module):
    """Swin V2's continuous position bias: an MLP (2 -> hidden -> heads, ReLU) maps the
    log-spaced relative coordinates of an s x s window to a bias per head, 16 sigmoid(.).
    Output (G heads) x s*s x s*s, as RelPosBias."""

    def __init__(self, s: int, heads: int, hidden: int = 512):
        super().__init__()
        self.s, self.heads = s, heads
        r = torch.arange(-(s - 1), s, dtype=torch.float32)
        table = torch.stack(torch.meshgrid([r, r], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
        table = table / (s - 1) * 8 if s > 1 else table
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
        self.register_buffer("coords", table)
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, heads, bias=False))
        self.register_buffer("index", relative_position_index(s))

    def forward(self, x):
        t = self.s * self.s
        table = self.mlp(self.coords).reshape(-1, self.heads)
        bias = table[self.index.reshape(-1)].reshape(t, t, self.heads).permute(2, 0, 1)
        return _per_group(16 * torch.sigmoid(bias), x, self.heads)

    def extra_repr(self):
        return f"s={self.s}, heads={self.heads}"


class ShiftMask(nn.Module):
    """Swin's attention mask for shifted windows: -100 between two tokens of a window that came
    from different regions of the shifted map, else 0. Output (G heads) x s*s x s*s."""

    def __init__(self, s: int, shift: int, heads: int, h: int, w: int):
        super().__init__()
        self.s, self.shift, self.heads, self.h, self.w = s, shift, heads, h, w

    def forward(self, x):
        s = self.s
        hp, wp = -(-self.h // s) * s, -(-self.w // s) * s
        dy, dx = swin_shift(s, self.shift, self.h, self.w)
        mask = x.new_zeros((hp, wp))
        count = 0
        for h in ((0, -s), (-s, -dy), (-dy, None)):
            for w in ((0, -s), (-s, -dx), (-dx, None)):
                mask[h[0]:h[1], w[0]:w[1]] = count
                count += 1
        mask = mask.reshape(hp // s, s, wp // s, s).permute(0, 2, 1, 3).reshape(-1, s * s)
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        n, g, t = x.shape[0], mask.shape[0], s * s
        return mask.unsqueeze(1).expand(g, self.heads, t, t).reshape(1, g * self.heads, t, t).expand(n, -1, -1, -1)

    def extra_repr(self):
        return f"s={self.s}, shift={self.shift}, heads={self.heads}, h={self.h}, w={self.w}"


class LogitScale(nn.Module):
    """Swin V2's learned temperature of cosine attention: multiply each head's logits by
    exp(min(weight, log 100)), the weight initialised to log 10 (kept heads x 1 x 1, as torchvision)."""

    def __init__(self, heads: int):
        super().__init__()
        self.weight = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))

    def forward(self, x):
        n, gh, t, u = x.shape
        heads = self.weight.shape[0]
        scale = torch.clamp(self.weight, max=math.log(100.0)).exp()
        return (x.reshape(n, gh // heads, heads, t, u) * scale).reshape(n, gh, t, u)


class L2Norm(nn.Module):
    """Divide each vector along the last axis by its Euclidean norm (F.normalize)."""

    def forward(self, x):
        return F.normalize(x, dim=-1)


class QKV(nn.Conv2d):
    """The query/key/value projection: a 1x1 conv (a linear layer at every position). With
    kbias=False the middle third of the bias (the keys') is held at zero in forward, as Swin
    V2 does."""

    def __init__(self, cin: int, cout: int, bias: bool = True, kbias: bool = True):
        super().__init__(cin, cout, 1, bias=bias)
        self.kbias = kbias

    def forward(self, x):
        if self.kbias or self.bias is None:
            return super().forward(x)
        bias = self.bias.clone()
        third = bias.numel() // 3
        bias[third:2 * third].zero_()
        return F.conv2d(x, self.weight, bias)


class GRN(nn.Module):
    """ConvNeXt V2's global response normalisation: x + bias + weight * x * N(x), where N(x) is
    each channel's L2 norm over the positions divided by its mean over the channels (+ eps)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        g = x.norm(p=2, dim=(2, 3), keepdim=True)
        nx = g / (g.mean(dim=1, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1), x * nx)

    def extra_repr(self):
        return f"eps={self.eps}"


class PatchMerge(nn.Module):
    """Swin's patch merging before its linear layer: zero-pad odd sizes, then stack the 2x2
    neighbours as channels in Swin's order (0,0), (1,0), (0,1), (1,1): C x H x W -> 4C x H/2 x W/2."""

    def forward(self, x):
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 1::2]], 1)
