"""The datasets nasty knows by name (``--dataset NAME``): where each is looked for, how a
user gets it, and ``load_dataset``, which hands the folder to the reader of its format.

Loading never downloads: a search must be reproducible offline, and a missing file
should be a clear one-line error, not a hang on the network. Fashion-MNIST comes
from Debian's ``dataset-fashion-mnist`` package or from ``nasty data fetch
fashion-mnist`` (nasty/data_fetch.py: the one module that downloads, into a cache
folder searched after Debian's); MNIST and CIFAR are read from a directory the user
fills (``--data-dir``); ``imagefolder`` is the user's own images.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nasty.errors import DatasetError

from .cifar import load_cifar10, load_cifar100
from .dataset import TEST_FRACTION, Dataset
from .idx import IDX_FILES, load_idx_dataset
from .imagefolder import load_image_folder

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder")

DEFAULT_DIRS = {name: Path("/usr/share/datasets") / name for name in DATASETS if name != "imagefolder"}

# How to get each dataset; appended to every error about it.
_HOW_TO_GET = {
    "fashion-mnist": "run `nasty data fetch fashion-mnist` (downloads the official files, 30 MB), "
                     "`apt-get install dataset-fashion-mnist`, or pass --data-dir with the four Fashion-MNIST IDX "
                     "files",
    "mnist": "put " + ", ".join(f + ".gz" for f in IDX_FILES)
             + " (gzipped or not) in --data-dir",
    "cifar10": "put the extracted CIFAR-10 binary version (data_batch_1.bin .. data_batch_5.bin, "
               "test_batch.bin) or python version (data_batch_1 .. data_batch_5, test_batch) "
               "in --data-dir",
    "cifar100": "put the extracted CIFAR-100 binary version (train.bin, test.bin) or python "
                "version (train, test, meta) in --data-dir",
}

_LOADERS = {
    "fashion-mnist": partial(load_idx_dataset, "fashion-mnist"),
    "mnist": partial(load_idx_dataset, "mnist"),
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
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
