"""CIFAR-10 and CIFAR-100, in either of their published forms.

The binary version is read as fixed-size records; the python version is a pickle,
read by an unpickler that can build only arrays, lists and strings (``safe_unpickle``),
so a data file can never run code.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from nasty.errors import DatasetError
from nasty.limits import memory_problem

from .dataset import Dataset, checked_dataset, require_regular

try:  # numpy >= 2 moved its internals to numpy._core
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_CIFAR_PIXELS = 3 * 32 * 32


def read_cifar_binary(path: str | Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a CIFAR binary batch: records of label byte(s) then 3072 pixel bytes.

    CIFAR-10 has one label byte; CIFAR-100 has two (coarse, fine) and we use the fine one.
    """
    path = Path(path)
    require_regular(path)
    problem = memory_problem(str(path), path.stat().st_size)
    if problem:
        raise DatasetError(problem)
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
    require_regular(path)
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
    # a pickle can share one list many times over (its memo), so np.asarray of nested lists could
    # build a far larger array than the file: the images must be an array already, as CIFAR's are,
    # and the labels a flat list of numbers
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        what = f"{data.dtype}{data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DatasetError(f"{path}: 'data' is {what}, expected a uint8 array (N, {_CIFAR_PIXELS})")
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)
    else:
        ok = isinstance(labels, (list, tuple)) and all(type(v) is int for v in labels)
    if not ok:
        raise DatasetError(f"{path}: {label_key!r} is not a flat list of whole-number labels")
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels")
    labels = np.asarray(labels, dtype=np.int64)
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


def load_cifar10(directory: Path) -> Dataset:
    """CIFAR-10 from ``directory`` or its extracted subfolder: the binary version, else the python one."""
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
    return checked_dataset("cifar10", CIFAR10_CLASSES, d, train_x, train_y, test_x, test_y)


def load_cifar100(directory: Path) -> Dataset:
    """CIFAR-100 (its 100 fine labels) from ``directory`` or its extracted subfolder, binary or python."""
    if d := _first_dir(directory, "cifar-100-binary", ["train.bin", "test.bin"]):
        train_x, train_y = read_cifar_binary(d / "train.bin", label_bytes=2)
        test_x, test_y = read_cifar_binary(d / "test.bin", label_bytes=2)
    elif d := _first_dir(directory, "cifar-100-python", ["train", "test"]):
        train_x, train_y = read_cifar_pickle(d / "train", "fine_labels")
        test_x, test_y = read_cifar_pickle(d / "test", "fine_labels")
    else:
        raise DatasetError(f"no CIFAR-100 train and test files in {directory}")
    return checked_dataset("cifar100", _cifar100_classes(d), d, train_x, train_y, test_x, test_y)


def _cifar100_classes(d: Path) -> tuple[str, ...]:
    # Names are only for display, so a missing meta file falls back to numbers.
    if (d / "fine_label_names.txt").is_file():
        names = (d / "fine_label_names.txt").read_text().split()
    elif (d / "meta").is_file():
        names = [str(n) for n in _field(safe_unpickle(d / "meta"), "fine_label_names", d / "meta")]
    else:
        names = []
    return tuple(names) if len(names) == 100 else tuple(str(i) for i in range(100))
