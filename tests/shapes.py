"""A small dataset of one's own, as a new user brings it: pictures of three shapes (circle,
square, triangle) at random places, sizes and colours on a white background (`hard=True`: on a
noisy background of a random colour, where only the outline tells the shapes apart), saved as
PNG and JPEG files in torchvision's ImageFolder layout, or handed over as numpy arrays. Issue
19's reproduction (180 images, 3 classes, 64 px) and tests/test_own_data.py use it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, size: int, rng: np.random.Generator, hard: bool = False):
    """One RGB picture (a PIL image) of `shape`, `size` x `size` pixels."""
    from PIL import Image, ImageDraw
    if hard:
        bg = rng.integers(0, 256, 3)
        noise = rng.normal(0, 18, (size, size, 3))
        im = Image.fromarray(np.clip(bg + noise, 0, 255).astype(np.uint8), "RGB")
        colour = tuple(int(v) for v in (bg + rng.integers(90, 166, 3)) % 256)   # far from the background
    else:
        im = Image.new("RGB", (size, size), (255, 255, 255))
        colour = tuple(int(v) for v in rng.integers(0, 200, 3))
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.18, 0.35) * size
    cx, cy = rng.uniform(r, size - r, 2)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return im


def make_shapes(root, per_class: int = 60, size: int = 64, seed: int = 0, hard: bool = False) -> Path:
    """root/<shape>/<i>.png|jpg: `per_class` pictures per shape, every other one a JPEG."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = draw(shape, size, rng, hard)
            if i % 2:
                im.save(root / shape / f"{i:03d}.jpg", quality=90)
            else:
                im.save(root / shape / f"{i:03d}.png")
    return root


def shapes_arrays(per_class: int = 60, size: int = 64, seed: int = 0, hard: bool = False):
    """The same kind of pictures as (x uint8 NHWC, y int64) numpy arrays, classes interleaved."""
    rng = np.random.default_rng(seed)
    x = np.stack([np.asarray(draw(SHAPES[i % 3], size, rng, hard)) for i in range(3 * per_class)])
    y = np.arange(3 * per_class) % 3
    return x, y.astype(np.int64)
