"""Real image-classification datasets, read from local files only.

nasty never downloads: a search must be reproducible offline, and a missing file
should be a clear one-line error, not a hang on the network. Fashion-MNIST comes
from Debian's ``dataset-fashion-mnist`` package; MNIST and CIFAR are read from a
directory the user fills (``--data-dir``).

Images stay uint8 numpy arrays (N, C, H, W) until the trainer moves them to the
device; that keeps a loaded CIFAR-10 at 150 MB instead of 600 MB of floats.
"""

from __future__ import annotations

import codecs
import gzip
import numbers
import pickle
import struct
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nasty.errors import DatasetError

if TYPE_CHECKING:
    import torch

try:  # numpy >= 2 moved its internals to numpy._core
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100")

DEFAULT_DIRS = {name: Path("/usr/share/datasets") / name for name in DATASETS}

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# How to get each dataset; appended to every error about it.
_HOW_TO_GET = {
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist`, "
                     "or pass --data-dir with the four Fashion-MNIST IDX files",
    "mnist": "put " + ", ".join(f + ".gz" for f in _IDX_FILES)
             + " (gzipped or not) in --data-dir",
    "cifar10": "put the extracted CIFAR-10 binary version (data_batch_1.bin .. data_batch_5.bin, "
               "test_batch.bin) or python version (data_batch_1 .. data_batch_5, test_batch) "
               "in --data-dir",
    "cifar100": "put the extracted CIFAR-100 binary version (train.bin, test.bin) or python "
                "version (train, test, meta) in --data-dir",
}

_CLASSES = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(d) for d in range(10)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"),
}


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; identity is what we want
class Dataset:
    """A train/test image-classification dataset held as uint8 arrays."""

    name: str
    classes: tuple[str, ...]
    train_x: np.ndarray  # (N, C, H, W) uint8
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    # Per-channel statistics of the training images on the 0..1 scale.
    mean: tuple[float, ...] = field(init=False)
    std: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        mean, std = _channel_stats(self.train_x)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a dataset by name from ``data_dir`` (default: /usr/share/datasets/<name>)."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    directory = Path(data_dir) if data_dir is not None else DEFAULT_DIRS[name]
    try:
        if not directory.is_dir():
            raise DatasetError(f"{name} directory {directory} does not exist")
        return _LOADERS[name](directory)
    except DatasetError as e:
        raise DatasetError(f"{e}; {_HOW_TO_GET[name]}") from None


# --------------------------------------------------------------------------- IDX

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
    expected = int(np.prod(dims)) * dtype.itemsize
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


def _load_idx_dataset(name: str, directory: Path) -> Dataset:
    train_x, train_y = _load_idx_split(directory, "train")
    test_x, test_y = _load_idx_split(directory, "t10k")
    return _checked(name, _CLASSES[name], directory, train_x, train_y, test_x, test_y)


# --------------------------------------------------------------------------- CIFAR

_CIFAR_PIXELS = 3 * 32 * 32


def read_cifar_binary(path: str | Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a CIFAR binary batch: records of label byte(s) then 3072 pixel bytes.

    CIFAR-10 has one label byte; CIFAR-100 has two (coarse, fine) and we use the fine one.
    """
    path = Path(path)
    raw = np.fromfile(path, np.uint8)
    record = label_bytes + _CIFAR_PIXELS
    if raw.size == 0 or raw.size % record:
        raise DatasetError(f"{path} has {raw.size} bytes, not a whole number of "
                           f"{record}-byte CIFAR records; the file is truncated or corrupt")
    rows = raw.reshape(-1, record)
    labels = rows[:, label_bytes - 1].astype(np.int64)
    images = np.ascontiguousarray(rows[:, label_bytes:]).reshape(-1, 3, 32, 32)
    return images, labels


# CIFAR's "python version" is a pickle, and unpickling can run arbitrary code. The
# security rule: nasty never unpickles arbitrary objects from data files. These
# batches are only a dict of lists, strings and numpy arrays, so the unpickler may
# build exactly those and nothing else; any other global (os.system, eval, ...)
# is refused before it is imported, let alone called.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,  # numpy 1.x writers
    ("numpy._core.multiarray", "_reconstruct"): _np_multiarray._reconstruct,  # numpy 2.x writers
    ("numpy.core.numeric", "_frombuffer"): _np_numeric._frombuffer,  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"): _np_numeric._frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 spells bytes
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(f"refusing to unpickle {module}.{name}: CIFAR batches hold "
                               "only arrays, lists and strings") from None


def safe_unpickle(path: str | Path):
    """Unpickle a data file allowing only plain containers and numpy arrays."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            # latin1 is how numpy arrays pickled by Python 2 (the CIFAR originals) decode.
            return _ArrayOnlyUnpickler(f, encoding="latin1").load()
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}") from None
    except Exception as e:  # any malformed pickle surfaces as one of many exception types
        raise DatasetError(f"{path} is not a readable CIFAR python batch ({e})") from None


def read_cifar_pickle(path: str | Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a CIFAR python-version batch with the safe unpickler."""
    batch = safe_unpickle(path)
    data, labels = _field(batch, "data", path), _field(batch, label_key, path)
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise DatasetError(f"{path}: 'data' is {data.dtype}{data.shape}, "
                           f"expected uint8 (N, {_CIFAR_PIXELS})")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _field(batch, key: str, path):
    # Keys are str when decoded as latin1, bytes when a file was written with bytes keys.
    if isinstance(batch, dict):
        for k in (key, key.encode()):
            if k in batch:
                return batch[k]
    raise DatasetError(f"{path} has no {key!r} entry; it is not a CIFAR python batch")


def _first_dir(directory: Path, subdir: str, files: list[str]) -> Path | None:
    """The directory (given, or its standard extracted subfolder) holding all ``files``."""
    for d in (directory, directory / subdir):
        if all((d / f).is_file() for f in files):
            return d
    return None


def _load_cifar10(directory: Path) -> Dataset:
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    # Prefer the binary version: it needs no unpickling at all.
    if d := _first_dir(directory, "cifar-10-batches-bin", [f"{b}.bin" for b in batches]):
        parts = [read_cifar_binary(d / f"{b}.bin", label_bytes=1) for b in batches]
    elif d := _first_dir(directory, "cifar-10-batches-py", batches):
        parts = [read_cifar_pickle(d / b, "labels") for b in batches]
    else:
        raise DatasetError(f"no complete set of CIFAR-10 batches in {directory}")
    train_x = np.concatenate([x for x, _ in parts[:5]])
    train_y = np.concatenate([y for _, y in parts[:5]])
    test_x, test_y = parts[5]
    return _checked("cifar10", _CLASSES["cifar10"], d, train_x, train_y, test_x, test_y)


def _load_cifar100(directory: Path) -> Dataset:
    if d := _first_dir(directory, "cifar-100-binary", ["train.bin", "test.bin"]):
        train_x, train_y = read_cifar_binary(d / "train.bin", label_bytes=2)
        test_x, test_y = read_cifar_binary(d / "test.bin", label_bytes=2)
    elif d := _first_dir(directory, "cifar-100-python", ["train", "test"]):
        train_x, train_y = read_cifar_pickle(d / "train", "fine_labels")
        test_x, test_y = read_cifar_pickle(d / "test", "fine_labels")
    else:
        raise DatasetError(f"no CIFAR-100 train and test files in {directory}")
    return _checked("cifar100", _cifar100_classes(d), d, train_x, train_y, test_x, test_y)


def _cifar100_classes(d: Path) -> tuple[str, ...]:
    # Names are only for display, so a missing meta file falls back to numbers.
    if (d / "fine_label_names.txt").is_file():
        names = (d / "fine_label_names.txt").read_text().split()
    elif (d / "meta").is_file():
        names = [str(n) for n in _field(safe_unpickle(d / "meta"), "fine_label_names", d / "meta")]
    else:
        names = []
    return tuple(names) if len(names) == 100 else tuple(str(i) for i in range(100))


# --------------------------------------------------------------------------- checks and stats

def _checked(name, classes, directory, train_x, train_y, test_x, test_y) -> Dataset:
    """Build a Dataset after checking what every consumer relies on."""
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(f"{directory}: train images are {train_x.shape[1:]} "
                           f"but test images are {test_x.shape[1:]}")
    for split, y in (("train", train_y), ("test", test_y)):
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetError(f"{directory}: {split} labels span {y.min()}..{y.max()}, "
                               f"outside 0..{len(classes) - 1}")
    return Dataset(name, tuple(classes), train_x, train_y, test_x, test_y)


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on the 0..1 scale.

    A 256-bin histogram per channel is exact for uint8 and needs no float copy of
    the images (which for CIFAR would be over a gigabyte).
    """
    values = np.arange(256) / 255.0
    chunk = 4096  # bincount widens to int64, so count a slice of images at a time
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = sum(np.bincount(x[i:i + chunk, c].ravel(), minlength=256)
                     for i in range(0, len(x), chunk))
        n = max(counts.sum(), 1)
        mean = counts @ values / n
        means.append(float(mean))
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / n)))
    return tuple(means), tuple(stds)


# --------------------------------------------------------------------------- splits and tensors

def split_train_val(dataset: Dataset, val_fraction: float = 0.1,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a stratified validation split of the training set.

    Architectures are ranked on this split; the test set is kept for the final
    winner only, so the search never sees it. Returns sorted index arrays.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {val_fraction}; "
                           "use e.g. 0.1")
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"the seed of the validation split (--seed) must be a whole number 0 or more, "
                           f"got {seed!r}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(dataset.train_y):
        members = rng.permutation(np.flatnonzero(dataset.train_y == c))
        val.append(members[:round(len(members) * val_fraction)])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(dataset.train_y)), val_idx)
    if not len(val_idx) or not len(train_idx):
        raise DatasetError(f"a {val_fraction} validation split of {len(dataset.train_y)} images "
                           "leaves one side empty; use a fraction nearer 0.1")
    return train_idx, val_idx


def to_device_tensors(x_uint8: np.ndarray, y: np.ndarray, device, mean, std,
                      channels_last: bool = True, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized image tensor and int64 label tensor, both resident on ``device``.

    ``dtype`` defaults to torch.float32.
    """
    import torch  # imported here so loading data (and the CLI) does not pay for torch

    dtype = torch.float32 if dtype is None else dtype
    # Ship uint8 and convert on the device: 4x less host-to-device traffic than floats.
    x = torch.from_numpy(np.ascontiguousarray(x_uint8)).to(device)
    shift = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
    scale = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
    x = ((x.float() - shift) / scale).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
    return x, labels


_LOADERS = {
    "fashion-mnist": partial(_load_idx_dataset, "fashion-mnist"),
    "mnist": partial(_load_idx_dataset, "mnist"),
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
}
