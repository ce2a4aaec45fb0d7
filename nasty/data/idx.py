"""IDX files: the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

A dataset is four files (train and t10k, images and labels), gzipped or raw; each
header is checked against the bytes that follow it and against the memory before anything
is allocated, so a truncated or crafted file, or a gzip bomb, is a one-line error, never a
short or huge array.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from nasty.errors import DatasetError
from nasty.limits import memory_problem

from .dataset import Dataset, checked_dataset, require_regular

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

CLASSES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(d) for d in range(10)),
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/): all multi-byte values are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a numpy array, checking its header.

    The file is read as a stream: the header says how many bytes follow, that size is checked
    against the file (a raw one), against ``max_bytes`` (default: nasty.limits.memory_limit(),
    this machine's memory) and then read into one array, so a gzip bomb (a few MB that
    decompress to many GB) or a header that lies is refused before its data is allocated."""
    path = Path(path)
    require_regular(path)
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"        # sniff: both forms circulate under either name
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            return _read_idx_stream(stream, path, None if gzipped else path.stat().st_size, max_bytes)
    except DatasetError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _read_idx_stream(f, path: Path, file_size: int | None, max_bytes: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number {magic.hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DatasetError(f"{path} is truncated inside its IDX header")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    # math.prod on Python ints: np.prod would wrap in int64, and a crafted header whose
    # dimensions multiply to 2**64 would then "need" 0 bytes and pass this check.
    expected = math.prod(dims) * dtype.itemsize
    header = 4 + 4 * ndim
    if file_size is not None and file_size - header != expected:
        raise DatasetError(f"{path} holds {file_size - header} data bytes but its header "
                           f"{dims} needs {expected}; the file is truncated or corrupt")
    problem = memory_problem(f"{path}: the {dims} array its header announces", expected, max_bytes)
    if problem:
        raise DatasetError(f"{problem}; the file is corrupt, or too large for this machine")
    out = np.empty(expected, np.uint8)
    view, got = memoryview(out), 0
    while got < expected:
        n = f.readinto(view[got:got + (1 << 24)])
        if not n:
            break
        got += n
    if got < expected:
        raise DatasetError(f"{path} holds {got} data bytes but its header {dims} needs {expected}; "
                           "the file is truncated or corrupt")
    if f.read(1):
        raise DatasetError(f"{path} holds more data than its header {dims} says ({expected} bytes); the file "
                           "is corrupt (or a decompression bomb)")
    # native-endian, as torch.from_numpy needs (a uint8 array is already)
    arr = out.view(dtype).reshape(dims)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


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
