"""Real image-classification datasets, read from local files only.

Loading never downloads: a search must be reproducible offline, and a missing file
should be a clear one-line error, not a hang on the network. Fashion-MNIST comes
from Debian's ``dataset-fashion-mnist`` package or from ``nasty data fetch
fashion-mnist`` (nasty/data_fetch.py: the one module that downloads, into a cache
folder searched after Debian's); MNIST and CIFAR are read from a directory the user
fills (``--data-dir``).

Images stay uint8 numpy arrays (N, C, H, W) until the trainer moves them to the
device; that keeps a loaded CIFAR-10 at 150 MB instead of 600 MB of floats.
"""

from __future__ import annotations

import codecs
import gzip
import math
import numbers
import os
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

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder")

DEFAULT_DIRS = {name: Path("/usr/share/datasets") / name for name in DATASETS if name != "imagefolder"}

# Share of the training images held out as the test set when a dataset brings none
# (an ImageFolder without test/, arrays without test_x): the test set scores the winner only.
TEST_FRACTION = 0.2

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# How to get each dataset; appended to every error about it.
_HOW_TO_GET = {
    "fashion-mnist": "run `nasty data fetch fashion-mnist` (downloads the official files, 30 MB), "
                     "`apt-get install dataset-fashion-mnist`, or pass --data-dir with the four Fashion-MNIST IDX "
                     "files",
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
    """A train/test image-classification dataset held as uint8 arrays.

    ``train_x`` holds every image a search may train or validate on. A dataset that
    comes with its own validation split (an ImageFolder's ``val/``, ``from_arrays(val_x=)``)
    keeps those images in ``train_x`` too, at the positions ``val_idx``, and
    ``split_train_val`` then returns that split instead of drawing one.
    """

    name: str
    classes: tuple[str, ...]
    train_x: np.ndarray  # (N, C, H, W) uint8
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    val_idx: np.ndarray | None = None  # the dataset's own validation split, as rows of train_x
    source: dict = field(default_factory=dict)  # where the data came from: see describe()
    # Per-channel statistics of the training images on the 0..1 scale.
    mean: tuple[float, ...] = field(init=False)
    std: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        mean, std = _channel_stats(self.train_x)
        object.__setattr__(self, "mean", mean)
        # A channel that is constant over the whole training set carries nothing, and
        # dividing by its std of 0 would turn every image into NaN (which then surfaces as
        # a "diverged" loss). With std 1 normalisation just centres it at 0.
        object.__setattr__(self, "std", tuple(s if s > 0 else 1.0 for s in std))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        """What the data really was, as plain JSON values (for a run's config.json).

        ``kind`` says how it was read (a built-in dataset's name, ``imagefolder``,
        ``arrays`` or ``torch-dataset``) and ``source`` where from (a folder, a Python
        type); the rest are counts as loaded. ``n_val`` is the dataset's own validation
        split, or None when a search holds one out of the training images.
        """
        n_val = None if self.val_idx is None else len(self.val_idx)
        return {
            "kind": self.source.get("kind", self.name),
            "name": self.name,
            **{k: v for k, v in self.source.items() if k != "kind"},
            "shape": [int(d) for d in self.shape],
            "classes": self.num_classes,
            "class_names": list(self.classes),
            "n_train": len(self.train_x) - (n_val or 0),
            "n_val": n_val,
            "n_test": len(self.test_x),
        }


def load_dataset(name: str, data_dir: str | Path | None = None, *,
                 image_size: int | tuple[int, int] | None = None, seed: int = 0,
                 test_fraction: float | None = None) -> Dataset:
    """Load a dataset by name from ``data_dir`` (default: /usr/share/datasets/<name>, then
    nasty's cache, where ``nasty data fetch`` puts it: nasty.data_fetch.candidate_dirs).

    ``imagefolder`` reads ``data_dir`` as torchvision's ImageFolder layout (see
    ``load_image_folder``, which also explains ``image_size``, ``seed`` and
    ``test_fraction``); the other datasets have fixed files, sizes and splits.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "imagefolder":
        if data_dir is None:
            raise DatasetError("--dataset imagefolder needs --data-dir DIR: a folder with one "
                               "subfolder of images per class")
        return load_image_folder(data_dir, image_size, seed=seed,
                                 test_fraction=TEST_FRACTION if test_fraction is None else test_fraction)
    if image_size is not None:
        raise DatasetError(f"--image-size applies to --dataset imagefolder only; {name} images "
                           "are used at their own size")
    if data_dir is None:
        from nasty.data_fetch import candidate_dirs, default_dir
        directory = default_dir(name) or candidate_dirs(name)[0]
        if not directory.is_dir():
            raise DatasetError(f"{name} is not in {' nor '.join(str(d) for d in candidate_dirs(name))}; "
                               f"{_HOW_TO_GET[name]}")
    else:
        directory = Path(data_dir)
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


# --------------------------------------------------------------------------- ImageFolder

# What torchvision's ImageFolder reads, and the Pillow formats they map to: a file is
# decoded only as the format its extension names, so no other Pillow plugin ever parses it.
IMAGE_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
                    ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM",
                    ".pbm": "PPM"}
_SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
# Pillow modes that hold one grey channel (1: bilevel, I;16: 16-bit, LA: with alpha).
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"})
_MAX_IMAGE_SIZE = 4096
_IMAGEFOLDER_LAYOUT = ("an ImageFolder is one subfolder of images per class (DIR/cat/1.png, "
                       "DIR/dog/2.jpg), optionally under DIR/train, DIR/val and DIR/test")


def load_image_folder(root: str | Path, image_size: int | tuple[int, int] | None = None, *,
                      seed: int = 0, test_fraction: float = TEST_FRACTION,
                      threads: int | None = None) -> Dataset:
    """Read torchvision's ImageFolder layout: one subfolder of images per class.

    Splits: ``root/train``, ``root/val`` (or ``valid``, ``validation``) and ``root/test``
    when ``root/train`` holds class folders; the classes are those of ``train/``, and
    ``val/`` becomes the dataset's own validation split (see ``split_train_val``). With
    no ``test/``, or with class folders directly in ``root``, ``test_fraction`` of each
    class is held out as the test set (seeded by ``seed``; keep it fixed so that runs
    compare on the same test images). Class folders are read recursively; hidden files
    and files of other types are skipped.

    Images are decoded once with Pillow and kept as uint8 (N, C, H, W). Colour: one
    channel when every file is greyscale (Pillow modes 1, L, LA, I, I;16), otherwise
    three, with greyscale files replicated to RGB (colour is never thrown away); alpha
    is dropped, 16-bit values are scaled to 8 bits. Size: ``image_size`` (N, or (H, W))
    resizes every image to exactly that size (bilinear with antialiasing, the aspect
    ratio is not kept, as in downsampled ImageNet); without it all files must share one
    size. ``threads`` (default: the CPUs, at most 8) decode in parallel, as Pillow's
    decoders release the GIL.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"imagefolder directory {root} does not exist")
    size = _image_size(image_size)
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"the test fraction must be between 0 and 1, got {test_fraction}")
    splits = _split_folders(root)
    train_dir = splits.get("train", root)
    classes, files, labels = _scan_classes(train_dir)
    parts = {"train": (files, labels)}
    for split in ("val", "test"):
        if split in splits:
            parts[split] = _scan_split(splits[split], train_dir, classes)
    if "test" not in parts:
        keep, held = _stratified_holdout(labels, test_fraction, _holdout_rng(seed))
        if not len(held):
            raise DatasetError(f"{train_dir} has too few images ({len(labels)}) to hold out a "
                               f"{test_fraction} test split; add images or a {root / 'test'} folder")
        parts["train"] = ([files[i] for i in keep], labels[keep])
        parts["test"] = ([files[i] for i in held], labels[held])

    # One decode of every file, in the order train, val, test, so each split is a view.
    order = [split for split in ("train", "val", "test") if split in parts]
    every_file = [f for split in order for f in parts[split][0]]
    x = _decode_images(every_file, size, threads)
    bounds = np.cumsum([0] + [len(parts[split][0]) for split in order])
    arrays = {split: (x[a:b], parts[split][1]) for split, a, b in zip(order, bounds, bounds[1:])}
    train_x, train_y = arrays["train"]
    val_idx = None
    if "val" in arrays:
        # train and val are adjacent in x, so one slice holds both without a copy
        val_idx = np.arange(len(train_x), len(train_x) + len(arrays["val"][0]))
        train_x = x[:bounds[order.index("val") + 1]]
        train_y = np.concatenate([train_y, arrays["val"][1]])
    source = {"kind": "imagefolder", "source": str(root.resolve()),
              "splits": "folders" if splits else "held out", "image_size": list(size) if size else None}
    if "test" not in splits:
        source.update(test_fraction=test_fraction, split_seed=seed)
    return _checked("imagefolder", classes, root, train_x, train_y, *arrays["test"],
                    val_idx=val_idx, source=source)


def _image_size(image_size) -> tuple[int, int] | None:
    """None, N or (H, W) -> None or (H, W), checked."""
    if image_size is None:
        return None
    hw = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        h, w = hw
        ok = all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                 and 1 <= d <= _MAX_IMAGE_SIZE for d in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"--image-size must be a whole number of pixels from 1 to {_MAX_IMAGE_SIZE} "
                           f"(or an (H, W) pair from Python), got {image_size!r}")
    return int(h), int(w)


def _holdout_rng(seed) -> np.random.Generator:
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"the split seed must be a whole number 0 or more, got {seed!r}")
    # Its own stream, so the test split never mirrors the validation split of the same seed.
    return np.random.default_rng((int(seed), 0x7E57))


def _split_folders(root: Path) -> dict[str, Path]:
    """{"train": path, "val": path, "test": path} of those present, or {} when ``root``
    holds the class folders itself. ``root/train`` counts as a split only when it holds
    folders (a class named "train" holds images)."""
    found = {}
    for split, names in _SPLIT_NAMES.items():
        present = [root / n for n in names if (root / n).is_dir()]
        if len(present) > 1:
            raise DatasetError(f"{root} has both {present[0].name}/ and {present[1].name}/; "
                               "keep one folder per split")
        if present:
            found[split] = present[0]
    if "train" not in found or not _has_folders(found["train"]):
        if "train" not in found and any(_has_folders(d) for d in found.values()):
            named = ", ".join(f"{d.name}/" for d in found.values())
            raise DatasetError(f"{root} has {named} but no train/ folder of class folders; "
                               f"{_IMAGEFOLDER_LAYOUT}")
        return {}
    others = [p.name + "/" for p in _visible(root) if p.is_dir() and p not in found.values()]
    if others:
        raise DatasetError(f"{root} mixes split folders ({', '.join(d.name + '/' for d in found.values())}) "
                           f"with other folders ({', '.join(others[:3])}); "
                           "put every class folder inside train/, val/ or test/")
    return found


def _has_folders(folder: Path) -> bool:
    return any(p.is_dir() for p in _visible(folder))


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"cannot read folder {folder}: {e.strerror or e}") from None


def _scan_classes(folder: Path) -> tuple[tuple[str, ...], list[Path], np.ndarray]:
    """Class names (sorted folder names) and every image file with its label."""
    class_dirs = [p for p in _visible(folder) if p.is_dir()]
    if not class_dirs:
        loose = sum(1 for p in _visible(folder) if p.suffix.lower() in IMAGE_EXTENSIONS)
        what = f"holds {loose} images but no class subfolders" if loose else "has no class subfolders"
        raise DatasetError(f"{folder} {what}; {_IMAGEFOLDER_LAYOUT}")
    if len(class_dirs) == 1:
        raise DatasetError(f"{folder} has a single class folder ({class_dirs[0].name}/); "
                           "classification needs at least two classes")
    files, labels = [], []
    for label, d in enumerate(class_dirs):
        found = _image_files(d)
        files += found
        labels += [label] * len(found)
    return tuple(d.name for d in class_dirs), files, np.asarray(labels, dtype=np.int64)


def _scan_split(folder: Path, train_dir: Path, classes: tuple[str, ...]) -> tuple[list[Path], np.ndarray]:
    """The images of a val/ or test/ folder, labelled by the train/ classes."""
    index = {name: i for i, name in enumerate(classes)}
    files, labels = [], []
    class_dirs = [p for p in _visible(folder) if p.is_dir()]
    if not class_dirs:
        raise DatasetError(f"{folder} has no class subfolders; {_IMAGEFOLDER_LAYOUT}")
    for d in class_dirs:
        if d.name not in index:
            raise DatasetError(f"{d} is a class that {train_dir} does not have; "
                               f"every class needs training images")
        found = _image_files(d)
        files += found
        labels += [index[d.name]] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def _image_files(class_dir: Path) -> list[Path]:
    """Every image file under ``class_dir`` (recursively, sorted), skipping hidden ones
    (macOS leaves ._name.jpg files that are not images)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, onerror=_raise_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    if not found:
        raise DatasetError(f"class folder {class_dir} has no images "
                           f"({', '.join(sorted(set(IMAGE_EXTENSIONS)))} files)")
    return found


def _raise_walk_error(e: OSError):
    raise DatasetError(f"cannot read folder {e.filename}: {e.strerror or e}")


def _decode_images(files: list[Path], size: tuple[int, int] | None, threads: int | None) -> np.ndarray:
    """Decode ``files`` into one uint8 (N, C, H, W) array (see load_image_folder).

    A first pass reads only the headers (size and mode): a size mismatch fails before
    anything is decoded, and the array is allocated once, its rows written in place.
    """
    from concurrent.futures import ThreadPoolExecutor
    common, grey = _survey(files)
    if size is None:
        if isinstance(common, str):
            raise DatasetError(f"{common}; pass --image-size N (image_size= from Python) "
                               "to resize them all to N x N")
        size = common
    out = np.empty((len(files), 1 if grey else 3) + size, dtype=np.uint8)

    def decode(start: int) -> None:
        for i in range(start, min(start + _DECODE_CHUNK, len(files))):
            im = _decode_image(files[i], size, grey)
            # (H, W) grey broadcasts over RGB: the same replication as Pillow's L -> RGB
            out[i] = im.transpose(2, 0, 1) if im.ndim == 3 else im

    starts = range(0, len(files), _DECODE_CHUNK)
    threads = min(threads or os.cpu_count() or 1, 8, len(starts))
    if threads <= 1:
        for start in starts:
            decode(start)
        return out
    pool = ThreadPoolExecutor(threads)
    try:
        for _ in pool.map(decode, starts):  # re-raises the first file's error
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a bad file stops the rest at once
    return out


_DECODE_CHUNK = 256


def _survey(files: list[Path]) -> tuple[tuple[int, int] | str, bool]:
    """((H, W) every file has, or a sentence naming two that differ; whether all are grey)."""
    first, mismatch, grey = None, None, True
    for f in files:
        with _open_image(f) as im:
            hw, grey = _upright_size(im), grey and im.mode in _GREY_MODES
        if first is None:
            first = (f, hw)
        elif hw != first[1] and mismatch is None:
            mismatch = (f"images differ in size: {first[0]} is {first[1][1]}x{first[1][0]} but "
                        f"{f} is {hw[1]}x{hw[0]} (width x height)")
    return mismatch or first[1], grey


def _open_image(path: Path):
    from PIL import Image
    try:
        return Image.open(path, formats=[IMAGE_EXTENSIONS[path.suffix.lower()]])
    except Image.DecompressionBombError as e:
        raise DatasetError(f"{path} is too large to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise DatasetError(f"{path} is not a readable {path.suffix.lower()[1:].upper()} image "
                           "(Pillow cannot identify it); remove or replace it") from None
    except OSError as e:
        if e.strerror:  # the file itself could not be read: missing, no permission
            raise DatasetError(f"cannot read {path}: {e.strerror}") from None
        raise DatasetError(f"{path} is not a readable {path.suffix.lower()[1:].upper()} image "
                           f"({e}); remove or replace it") from None


# EXIF orientations (a camera's tag) whose upright picture is the stored one turned by 90 degrees
_TURNED = (5, 6, 7, 8)


def _orientation(im) -> int:
    try:
        if im.format == "PNG" and "exif" not in im.info:
            # only an eXIf chunk before the pixels counts: Pillow would decode the whole image to
            # look for one after them (100x the cost of the survey's header read)
            return 1
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block: take the pixels as stored
        return 1


def _upright_size(im) -> tuple[int, int]:
    """(H, W) as a viewer shows the image: EXIF's orientation applied (phone photos are stored sideways)."""
    return (im.width, im.height) if _orientation(im) in _TURNED else (im.height, im.width)


def load_image(path: str | Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image file as uint8 (C, H, W) at ``shape``, read as ``load_image_folder`` reads each
    of its files (upright, grey for C=1 or RGB for C=3, resized bilinearly): what ``nasty predict``
    feeds a network trained on any dataset of that shape."""
    c, h, w = shape
    if c not in (1, 3):
        raise DatasetError(f"images are read as grey (1 channel) or RGB (3), not {c} channels")
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DatasetError(f"{path} is not an image file nasty reads ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if not path.is_file():
        raise DatasetError(f"no image file {path}")
    im = _decode_image(path, (h, w), grey=c == 1)
    return im[None] if im.ndim == 2 else im.transpose(2, 0, 1)


def _decode_image(path: Path, size: tuple[int, int], grey: bool) -> np.ndarray:
    """One file as uint8 (H, W) grey or (H, W, 3) RGB, upright (EXIF orientation applied, as
    every image viewer does), resized to ``size`` (H, W)."""
    from PIL import Image, ImageOps
    with _open_image(path) as im:
        try:
            orientation = _orientation(im)
            if _upright_size(im) != size:       # JPEG: decode at a reduced scale when shrinking
                im.draft(None, (size[0], size[1]) if orientation in _TURNED else (size[1], size[0]))
            im.load()
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            if im.mode in _GREY_MODES:
                im = _to_grey8(im, path)
            else:
                im = im.convert("L" if grey else "RGB")  # palette, RGBA, CMYK...: alpha is dropped
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(im)
        except DatasetError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow surfaces damaged files as many exception types
            raise DatasetError(f"{path} is not a readable {path.suffix.lower()[1:].upper()} image "
                               f"({type(e).__name__}: {e}); remove or replace it") from None


def _to_grey8(im, path: Path):
    from PIL import Image
    if im.mode in ("1", "L", "LA", "La"):
        return im.convert("L")
    # 16-bit (I;16*) and 32-bit integer (I, how older Pillow opens 16-bit PNGs) greys:
    # Pillow's own convert("L") would clip at 255 rather than scale, so scale here.
    a = np.asarray(im).astype(np.int64)
    if a.min() < 0 or a.max() > 65535:
        raise DatasetError(f"{path}: {im.mode} pixel values span {a.min()}..{a.max()}, "
                           "not 16-bit greys; save it as an 8-bit or 16-bit image")
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8))


# --------------------------------------------------------------------------- in-memory data

_LAYOUTS = ("NCHW", "NHWC")
_MAX_AUTO_CHANNELS = 4


def from_arrays(x, y, test_x=None, test_y=None, *, val_x=None, val_y=None, name: str = "arrays",
                classes=None, layout: str | None = None, seed: int = 0,
                test_fraction: float = TEST_FRACTION) -> Dataset:
    """A Dataset from in-memory images and labels (numpy arrays, or anything np.asarray takes).

    Images: uint8 0..255, other integers within 0..255, or floats in [0, 1] (rounded to
    uint8, the form every dataset is kept in; a float outside [0, 1] is refused, as it
    means the images were normalised already). Shapes: (N, H, W) is greyscale; a 4-D
    array is NCHW when axis 1 has at most 4 entries and axis 3 more, NHWC the other way
    round; when both or neither do, pass ``layout="NCHW"`` or ``"NHWC"``.

    Labels: (N,) integers 0..K-1 (K = len(classes), else the largest label + 1), or
    strings (the classes are then the sorted distinct names). ``classes`` names them.
    With no ``test_x``, ``test_fraction`` of each class is held out as the test set
    (seeded by ``seed``). ``val_x``/``val_y`` give the dataset its own validation split.
    """
    layout = _check_layout(layout)
    _check_name(name)
    parts = {"train": (x, y), "val": (val_x, val_y), "test": (test_x, test_y)}
    images, labels = {}, {}
    for split, (xs, ys) in parts.items():
        if xs is None and ys is None:
            continue
        if xs is None or ys is None:
            given, missing = (f"{split}_x", f"{split}_y") if xs is not None else (f"{split}_y", f"{split}_x")
            given, missing = (given.replace("train_", ""), missing.replace("train_", ""))
            raise DatasetError(f"{given} was given without {missing}; pass both or neither")
        what = "x" if split == "train" else f"{split}_x"
        images[split], used = _images_from_array(xs, what, layout)
        if split == "train":
            layout = used  # every split is read the way the training images were
        labels[split] = _labels_from_array(ys, "y" if split == "train" else f"{split}_y", len(images[split]))
    classes, labels = _class_labels(labels, classes)
    source = {"kind": "arrays", "source": f"{type(x).__module__}.{type(x).__qualname__}",
              "dtype": str(getattr(x, "dtype", type(x).__name__)), "layout": layout}
    return _from_uint8(name, classes, images, labels, seed, test_fraction, source, "the arrays")


def from_torch_dataset(ds, test=None, *, val=None, name: str | None = None, classes=None,
                       seed: int = 0, test_fraction: float = TEST_FRACTION) -> Dataset:
    """A Dataset from map-style torch Datasets whose items are (image, integer label).

    An image is a tensor (C, H, W) or (H, W) as torchvision's ToTensor gives (floats in
    [0, 1], or uint8), a PIL image, or a numpy array read like ``from_arrays`` reads
    one image. Give the images before any Normalize transform. Every item is read once
    into uint8 arrays. Classes: ``classes``, else ``ds.classes`` when it names every
    label, else the label numbers. With no ``test`` dataset, ``test_fraction`` of each
    class is held out (seeded by ``seed``); ``val`` gives the dataset its own validation split.
    """
    if name is not None:
        _check_name(name)
    label = name or type(ds).__name__
    images, labels = {}, {}
    for split, d in (("train", ds), ("val", val), ("test", test)):
        if d is not None:
            images[split], labels[split] = _read_torch_dataset(d, label if split == "train" else f"{split} dataset")
    if classes is None:
        named = getattr(ds, "classes", None)
        top = max(int(y.max()) for y in labels.values() if len(y)) + 1
        if isinstance(named, (list, tuple)) and len(named) >= top and all(isinstance(c, str) for c in named):
            classes = named
    classes, labels = _class_labels(labels, classes)
    source = {"kind": "torch-dataset", "source": f"{type(ds).__module__}.{type(ds).__qualname__}"}
    if getattr(ds, "root", None) is not None:
        source["root"] = str(ds.root)
    return _from_uint8(name or label, classes, images, labels, seed, test_fraction, source, label)


def _from_uint8(name, classes, images, labels, seed, test_fraction, source, where) -> Dataset:
    """Assemble checked uint8 splits into a Dataset, holding out a test split if none."""
    shapes = {split: x.shape[1:] for split, x in images.items()}
    for split, shape in shapes.items():
        if shape != shapes["train"]:
            raise DatasetError(f"{where}: training images are {_dims(shapes['train'])} "
                               f"but {split} images are {_dims(shape)}")
    train_x, train_y = images["train"], labels["train"]
    if "test" in images:
        test_x, test_y = images["test"], labels["test"]
    else:
        if not 0.0 < test_fraction < 1.0:
            raise DatasetError(f"the test fraction must be between 0 and 1, got {test_fraction}")
        keep, held = _stratified_holdout(train_y, test_fraction, _holdout_rng(seed))
        if not len(held) or not len(keep):
            raise DatasetError(f"{where}: {len(train_y)} images are too few to hold out a "
                               f"{test_fraction} test split; add images or give a test set")
        test_x, test_y = train_x[held], train_y[held]
        train_x, train_y = train_x[keep], train_y[keep]
        source = {**source, "test_fraction": test_fraction, "split_seed": seed}
    val_idx = None
    if "val" in images:
        val_idx = np.arange(len(train_x), len(train_x) + len(images["val"]))
        train_x = np.concatenate([train_x, images["val"]])
        train_y = np.concatenate([train_y, labels["val"]])
    return _checked(name, classes, where, train_x, train_y, test_x, test_y, val_idx=val_idx, source=source)


def _check_name(name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"the dataset name must be a non-empty string, got {type(name).__name__}")


def _check_layout(layout):
    if layout is None or layout in _LAYOUTS:
        return layout
    raise DatasetError(f"layout must be {' or '.join(_LAYOUTS)} (or None to detect it), got {layout!r}")


def _as_numpy(a, what: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, perhaps on a GPU or needing grad
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # noqa: BLE001 - ragged lists and odd objects fail in many ways
        raise DatasetError(f"{what} cannot be read as an array ({type(e).__name__}); "
                           "pass a numpy array") from None


def _images_from_array(x, what: str, layout: str | None) -> tuple[np.ndarray, str]:
    """uint8 (N, C, H, W) and the layout it was read in."""
    x = _as_numpy(x, what)
    if x.ndim == 3:
        x, layout = x[:, None], layout or "NCHW"
    elif x.ndim == 4:
        if layout is None:
            layout = _detect_layout(x.shape, what)
        if layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 2:
        raise DatasetError(f"{what} is 2-D {_dims(x.shape)}: images must be (N, H, W) or 4-D; "
                           "reshape flattened images first, e.g. x.reshape(-1, 28, 28)")
    else:
        raise DatasetError(f"{what} is {x.ndim}-D ({_dims(x.shape) or 'a scalar'}); images must "
                           "be (N, H, W), (N, C, H, W) or (N, H, W, C)")
    if not len(x) or not x.size:
        raise DatasetError(f"{what} holds no images (shape {_dims(x.shape)})")
    return np.ascontiguousarray(_to_uint8(x, what)), layout


def _detect_layout(shape, what: str) -> str:
    first, last = shape[1] <= _MAX_AUTO_CHANNELS, shape[3] <= _MAX_AUTO_CHANNELS
    if first != last:
        return "NCHW" if first else "NHWC"
    raise DatasetError(f"{what} is {_dims(shape)}: cannot tell the channel axis (the one with at "
                       f"most {_MAX_AUTO_CHANNELS} entries, axis 1 for NCHW or axis 3 for NHWC); "
                       "pass layout='NCHW' or layout='NHWC'")


def _to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """0..255 integers or [0, 1] floats -> uint8; anything else is refused, naming its range."""
    if x.dtype == np.uint8:
        return x
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"{what} has dtype {x.dtype}; images must be uint8 0..255 or floats in [0, 1]")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DatasetError(f"{what} holds NaN or infinite values; images must be floats in [0, 1]")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            hint = ("divide by 255, or pass uint8" if hi > 1 and lo >= 0 else
                    "it looks normalised already; give the images before normalising")
            raise DatasetError(f"{what}: float images must lie in [0, 1], these span "
                               f"{lo:.4g}..{hi:.4g}; {hint}")
        out = np.empty(x.shape, np.uint8)
        for i in range(0, len(x), 4096):  # in chunks: no float64 copy of the whole set
            np.rint(x[i:i + 4096] * 255.0, out=out[i:i + 4096], casting="unsafe")
        return out
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > 255:
        raise DatasetError(f"{what}: integer images must lie in 0..255, these span {lo}..{hi}")
    return x.astype(np.uint8)


def _labels_from_array(y, what: str, n: int) -> np.ndarray:
    y = _as_numpy(y, what)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.shape[1] > 1:
        raise DatasetError(f"{what} is {_dims(y.shape)}, which looks one-hot; pass class indices "
                           "(e.g. y.argmax(1))")
    if y.ndim != 1:
        raise DatasetError(f"{what} must be one label per image, shape ({n},); got {_dims(y.shape) or 'a scalar'}")
    if len(y) != n:
        raise DatasetError(f"{what} has {len(y)} labels for {n} images")
    if y.dtype.kind in "US":
        return y.astype(str)
    if y.dtype.kind == "O" and all(isinstance(v, str) for v in y):
        return y.astype(str)
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)  # 3.0 is class 3; 2.5 is not a class
        else:
            raise DatasetError(f"{what} has dtype {y.dtype}; labels must be whole numbers or strings")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{what} holds the negative label {int(y.min())}; labels are 0..K-1")
    return y.astype(np.int64)


def _class_labels(labels: dict, classes) -> tuple[tuple[str, ...], dict]:
    """(class names, int64 labels per split) from integer or string labels."""
    kinds = {y.dtype.kind == "U" for y in labels.values()}
    if len(kinds) > 1:
        raise DatasetError("some labels are strings and some are numbers; use one kind for every split")
    if kinds == {True}:
        names = tuple(sorted(set().union(*(set(y.tolist()) for y in labels.values()))))
        if classes is not None:
            missing = sorted(set(names) - set(map(str, classes)))
            if missing:
                raise DatasetError(f"label {missing[0]!r} is not one of the {len(classes)} classes given")
            names = tuple(map(str, classes))
        index = {c: i for i, c in enumerate(names)}
        return names, {s: np.array([index[v] for v in y.tolist()], dtype=np.int64) for s, y in labels.items()}
    top = max(int(y.max()) for y in labels.values() if len(y))
    if classes is None:
        return tuple(str(i) for i in range(top + 1)), labels
    if isinstance(classes, str) or not hasattr(classes, "__len__"):
        raise DatasetError(f"classes must be a list of class names, got {type(classes).__name__}")
    if top >= len(classes):
        raise DatasetError(f"label {top} is out of range for the {len(classes)} classes given (0..{len(classes) - 1})")
    return tuple(str(c) for c in classes), labels


def _read_torch_dataset(ds, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every item of a map-style dataset as uint8 (N, C, H, W) images and int64 labels."""
    try:
        n = len(ds)
    except TypeError:
        raise DatasetError(f"{what} is not a map-style dataset (it needs __len__ and __getitem__); "
                           "an IterableDataset cannot be indexed, collect it into arrays and use "
                           "from_arrays") from None
    if not n:
        raise DatasetError(f"{what} is empty")
    images, labels = None, np.empty(n, dtype=np.int64)
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DatasetError(f"item {i} of {what} is a {type(item).__name__}, not an (image, label) pair")
        image = _item_image(item[0], f"image {i} of {what}")
        if images is None:
            images = np.empty((n,) + image.shape, dtype=np.uint8)
        elif image.shape != images.shape[1:]:
            raise DatasetError(f"image {i} of {what} is {_dims(image.shape)} but image 0 is "
                               f"{_dims(images.shape[1:])}; resize them to one size (e.g. a Resize transform)")
        images[i] = image
        labels[i] = _item_label(item[1], f"label {i} of {what}")
    return images, labels


def _item_image(image, what: str) -> np.ndarray:
    """One item's image as uint8 (C, H, W)."""
    if hasattr(image, "getbands") and hasattr(image, "convert"):  # a PIL image: (H, W[, C])
        image = image.convert("L" if image.mode in _GREY_MODES else "RGB")
        a = np.asarray(image)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    tensor = hasattr(image, "detach")
    a = _as_numpy(image, what)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and not tensor:  # a numpy image: the from_arrays rule on one image
        a = _images_from_array(a[None], what, None)[0][0]
    elif a.ndim != 3:
        raise DatasetError(f"{what} is {a.ndim}-D ({_dims(a.shape)}); expected (C, H, W) or (H, W)")
    return _to_uint8(a, what)


def _item_label(label, what: str) -> int:
    if hasattr(label, "item") and getattr(label, "ndim", 0) == 0:
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise DatasetError(f"{what} is {type(label).__name__} {str(label)[:20]!r}; labels must be whole numbers")
    if label < 0:
        raise DatasetError(f"{what} is {label}; labels are 0..K-1")
    return int(label)


# --------------------------------------------------------------------------- checks and stats

def _checked(name, classes, directory, train_x, train_y, test_x, test_y,
             val_idx=None, source=None) -> Dataset:
    """Build a Dataset after checking what every consumer relies on.

    ``directory`` names where the data came from in messages (a folder, "the arrays").
    """
    if not len(train_x):
        raise DatasetError(f"{directory} holds no training images")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(f"{directory}: train images are {_dims(train_x.shape[1:])} "
                           f"but test images are {_dims(test_x.shape[1:])}")
    for split, y in (("train", train_y), ("test", test_y)):
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetError(f"{directory}: {split} labels span {y.min()}..{y.max()}, "
                               f"outside 0..{len(classes) - 1}")
    # Images with no variation at all cannot be learned from; without this check the
    # failure would surface much later as a "diverged" loss blamed on the learning rate.
    lo, hi = train_x.min(axis=(0, 2, 3)), train_x.max(axis=(0, 2, 3))
    if (lo == hi).all():
        value = "/".join(str(int(v)) for v in lo)
        raise DatasetError(f"{directory}: every training image is the same constant value "
                           f"({value} in every pixel); there is nothing to learn, check the images")
    return Dataset(name, tuple(classes), train_x, train_y, test_x, test_y,
                   val_idx=val_idx, source=dict(source or {"kind": name, "source": str(directory)}))


def _dims(shape) -> str:
    """(3, 32, 32) -> '3x32x32': shapes in messages, never the arrays themselves."""
    return "x".join(str(int(d)) for d in shape)


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

    A dataset with its own validation split (``dataset.val_idx``: an ImageFolder's
    ``val/``) returns that split; ``val_fraction`` and ``seed`` are then not used.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {val_fraction}; "
                           "use e.g. 0.1")
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"the seed of the validation split (--seed) must be a whole number 0 or more, "
                           f"got {seed!r}")
    if dataset.val_idx is not None:
        val_idx = np.sort(np.asarray(dataset.val_idx, dtype=np.int64))
        train_idx = np.setdiff1d(np.arange(len(dataset.train_y)), val_idx)
    else:
        train_idx, val_idx = _stratified_holdout(dataset.train_y, val_fraction,
                                                 np.random.default_rng(seed))
    if not len(val_idx) or not len(train_idx):
        raise DatasetError(f"a {val_fraction} validation split of {len(dataset.train_y)} images "
                           "leaves one side empty; use a fraction nearer 0.1")
    return train_idx, val_idx


def _stratified_holdout(labels: np.ndarray, fraction: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) sorted indices, holding out ``fraction`` of each class (rounded)."""
    held = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    held = np.sort(np.concatenate([m[:round(len(m) * fraction)] for m in held]))
    return np.setdiff1d(np.arange(len(labels)), held), held


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
