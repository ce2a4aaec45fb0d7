"""Window arithmetic shared by the cost model (nasty/genotype/ops.py) and the torch layers
(nasty/layers.py): both must agree on how a map is padded to whole windows and when Swin shifts.
Torch-free, below both, so that neither imports the other for it.
"""


def ceil_to(v, s):
    """v rounded up to a multiple of s (a map padded to whole windows)."""
    return -(-v // s) * s


def swin_shift(s, shift, h, w):
    """The cyclic shift of Swin's windows per axis at an h x w map: none along an axis that one
    window covers once padded (torchvision's rule)."""
    hp, wp = ceil_to(h, s), ceil_to(w, s)
    return (0 if s >= hp else shift), (0 if s >= wp else shift)
