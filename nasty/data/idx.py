"""IDX files: the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

A dataset is four files (train and t10k, images and labels), gzipped or raw; each
header is checked against the bytes that follow it, so a truncated or crafted file is
a one-line error, never a short or huge array.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from nasty.errors import DatasetError

from .dataset import Dataset, checked_dataset

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

CLASSES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(d) for d in range(10)),
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/): all multi-byte values are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a numpy array, checking its header."""
    path = Path(path)
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated inside its IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    # math.prod on Python ints: np.prod would wrap in int64, and a crafted header whose
    # dimensions multiply to 2**64 would then "need" 0 bytes and pass this check.
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{path} holds {len(raw) - header} data bytes but its header "
                           f"{dims} needs {expected}; the file is truncated or corrupt")
    # Copy so the array is writable and native-endian (torch.from_numpy needs both).
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        # Sniff the gzip magic rather than trust the extension: both forms circulate.
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{stem}.gz not found in {directory}")


def _load_idx_split(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find_idx(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1:
        raise DatasetError(f"{prefix} files in {directory} are not uint8 images (N,H,W) "
                           f"and labels (N,): got {images.dtype}{images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{prefix} files in {directory} disagree: "
                           f"{len(images)} images but {len(labels)} labels")
    return images[:, None], labels.astype(np.int64)


def load_idx_dataset(name: str, directory: Path) -> Dataset:
    """``name`` (fashion-mnist or mnist) from the four IDX files in ``directory``."""
    train_x, train_y = _load_idx_split(directory, "train")
    test_x, test_y = _load_idx_split(directory, "t10k")
    return checked_dataset(name, CLASSES[name], directory, train_x, train_y, test_x, test_y)
