"""The one Dataset every source produces, and what every source shares.

Every reader (nasty/data/idx.py, cifar.py, imagefolder.py, arrays.py) ends in
``checked_dataset``, so the checks every consumer relies on (labels in range, images of
one shape that are not all one constant) live in one place, as do the per-channel
normalisation statistics, the validation split a search ranks on, the held-out test
split of a dataset that brings none, and the move to device tensors.

Images stay uint8 numpy arrays (N, C, H, W) until the trainer moves them to the
device; that keeps a loaded CIFAR-10 at 150 MB instead of 600 MB of floats.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nasty.errors import DatasetError, warn
from nasty.limits import MAX_CLASSES, over

if TYPE_CHECKING:
    import torch

# Share of the training images held out as the test set when a dataset brings none
# (an ImageFolder without test/, arrays without test_x): the test set scores the winner only.
TEST_FRACTION = 0.2


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


# --------------------------------------------------------------------------- every reader ends here

def checked_dataset(name, classes, directory, train_x, train_y, test_x, test_y,
                    val_idx=None, source=None) -> Dataset:
    """Build a Dataset after checking what every consumer relies on.

    ``directory`` names where the data came from in messages (a folder, "the arrays").
    """
    if not len(train_x):
        raise DatasetError(f"{directory} holds no training images")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(f"{directory}: train images are {format_shape(train_x.shape[1:])} "
                           f"but test images are {format_shape(test_x.shape[1:])}")
    check_classes(classes, directory)
    for split, y in (("train", train_y), ("test", test_y)):
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetError(f"{directory}: {split} labels span {y.min()}..{y.max()}, "
                               f"outside 0..{len(classes) - 1}")
    _check_coverage(classes, directory, train_y, test_y, val_idx)
    # Images with no variation at all cannot be learned from; without this check the
    # failure would surface much later as a "diverged" loss blamed on the learning rate.
    lo, hi = train_x.min(axis=(0, 2, 3)), train_x.max(axis=(0, 2, 3))
    if (lo == hi).all():
        value = "/".join(str(int(v)) for v in lo)
        raise DatasetError(f"{directory}: every training image is the same constant value "
                           f"({value} in every pixel); there is nothing to learn, check the images")
    return Dataset(name, tuple(classes), train_x, train_y, test_x, test_y,
                   val_idx=val_idx, source=dict(source or {"kind": name, "source": str(directory)}))


def check_classes(classes, where) -> None:
    """Class names a classifier can be trained on: at least two, within MAX_CLASSES, distinct."""
    if len(classes) > MAX_CLASSES:
        raise DatasetError(f"{where}: " + over("the class count", len(classes), MAX_CLASSES)
                           + "; labels are class indices 0..K-1")
    if len(classes) < 2:
        what = f"every image has the one class {str(classes[0])[:40]!r}" if classes else "there are no classes"
        raise DatasetError(f"{where}: {what}; classification needs at least two classes")
    index: dict = {}
    for i, c in enumerate(classes):
        if str(c) in index:
            raise DatasetError(f"{where}: class name {str(c)[:40]!r} is given twice (classes {index[str(c)]} and "
                               f"{i}); give each class its own name")
        index[str(c)] = i


def _check_coverage(classes, where, train_y, test_y, val_idx) -> None:
    """Every class the test or validation images hold has training images (else no network can
    learn it, and the test accuracy is capped without a word); classes without any image are
    allowed (a class list larger than the labels) but said."""
    training = train_y if val_idx is None else np.delete(train_y, np.asarray(val_idx, dtype=np.int64))
    counts = np.bincount(training, minlength=len(classes))
    for split, y in (("test", test_y), ("validation", None if val_idx is None else train_y[val_idx])):
        if y is None or not len(y):
            continue
        unseen = np.flatnonzero((np.bincount(y, minlength=len(classes)) > 0) & (counts == 0))
        if len(unseen):
            c = int(unseen[0])
            raise DatasetError(f"{where}: {split} label {c} ({str(classes[c])[:40]!r}) has no training images"
                               + (f" (nor {len(unseen) - 1} more {split} classes)" if len(unseen) > 1 else "")
                               + "; every class the network is scored on needs training images")
    if np.count_nonzero(counts) < 2:
        c = int(np.flatnonzero(counts)[0]) if counts.any() else 0
        raise DatasetError(f"{where}: every training image has the one class {c} ({str(classes[c])[:40]!r}); "
                           "classification needs images of at least two classes")
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        warn(f"{where}: {len(empty)} of the {len(classes)} classes have no training images (e.g. class "
             f"{int(empty[0])}, {str(classes[int(empty[0])])[:40]!r}); the network still gets {len(classes)} outputs")


def not_regular(path) -> str | None:
    """What ``path`` is when it is not a regular file (links followed), or None. Every reader
    opens regular files only: opening a FIFO blocks until a writer comes, and a device never ends."""
    import os
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return "a broken link" if os.path.islink(path) else f"unreadable ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return None
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file")


def require_regular(path) -> None:
    """A one-line DatasetError unless ``path`` is a regular file (see not_regular)."""
    kind = not_regular(path)
    if kind is not None and kind.startswith("unreadable"):
        raise DatasetError(f"cannot read {path}: {kind[len('unreadable ('):-1]}")
    if kind is not None:
        raise DatasetError(f"cannot read {path}: it is {kind}, not a regular file")


def format_shape(shape) -> str:
    """(3, 32, 32) -> '3x32x32': shapes in messages, never the arrays themselves."""
    return "x".join(str(int(d)) for d in shape)


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on the 0..1 scale.

    A 256-bin histogram per channel is exact for uint8 and needs no float copy of
    the images (which for CIFAR would be over a gigabyte).
    """
    values = np.arange(256) / 255.0
    # bincount widens its input to int64 (8x the pixels), so it counts at most 2**22 pixels at a time
    # (32 MB), however large the images: 4096 images at a time would be 550 GB for 4096x4096 ones
    step = 2 ** 22
    per = max(1, step // max(1, x.shape[2] * x.shape[3]))
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = np.zeros(256, np.int64)
        for i in range(0, len(x), per):
            flat = x[i:i + per, c].reshape(-1)          # a uint8 copy at most, of one channel of `per` images
            for j in range(0, flat.size, step):
                counts += np.bincount(flat[j:j + step], minlength=256)
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
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"the seed of the validation split (--seed) must be a whole number 0 or more, "
                           f"got {seed!r}")
    if dataset.val_idx is not None:
        val_idx = np.sort(np.asarray(dataset.val_idx, dtype=np.int64))
        train_idx = np.setdiff1d(np.arange(len(dataset.train_y)), val_idx)
    else:
        train_idx, val_idx = stratified_holdout(dataset.train_y, val_fraction,
                                                np.random.default_rng(seed))
    if not len(val_idx) or not len(train_idx):
        raise DatasetError(f"a {val_fraction} validation split of {len(dataset.train_y)} images "
                           "leaves one side empty; use a fraction nearer 0.1")
    return train_idx, val_idx


def stratified_holdout(labels: np.ndarray, fraction: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) sorted indices, holding out ``fraction`` of each class (rounded)."""
    held = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    held = np.sort(np.concatenate([m[:round(len(m) * fraction)] for m in held]))
    return np.setdiff1d(np.arange(len(labels)), held), held


def holdout_rng(seed) -> np.random.Generator:
    """The random stream that draws a held-out test split (``seed``: --seed, checked)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DatasetError(f"the split seed must be a whole number 0 or more, got {seed!r}")
    # Its own stream, so the test split never mirrors the validation split of the same seed.
    return np.random.default_rng((int(seed), 0x7E57))


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
