"""Real image-classification datasets, read from local files or memory, behind one ``Dataset``.

Every source ends in the same ``Dataset`` of uint8 (N, C, H, W) images (nasty/data/dataset.py,
which also holds the checks, the normalisation statistics and the splits), so the trainer and
the search never ask where the images came from. One module per source:

    catalog.py      the datasets by name (--dataset), where each is looked for: load_dataset
    idx.py          IDX files: Fashion-MNIST, MNIST
    cifar.py        CIFAR-10 and CIFAR-100 (binary, or python with a safe unpickler)
    imagefolder.py  your own images, one folder per class; load_image for `nasty predict`
    arrays.py       numpy arrays and torch Datasets already in memory

Loading never downloads (``nasty data fetch``, nasty/data_fetch.py, is the one thing that
does, and only when asked). This module is the public interface: import from ``nasty.data``.
"""
from .arrays import from_arrays, from_torch_dataset
from .catalog import DATASETS, DEFAULT_DIRS, load_dataset
from .cifar import read_cifar_binary, read_cifar_pickle, safe_unpickle
from .dataset import TEST_FRACTION, Dataset, split_train_val, to_device_tensors
from .idx import read_idx
from .imagefolder import IMAGE_EXTENSIONS, load_image, load_image_folder

__all__ = ["DATASETS", "DEFAULT_DIRS", "IMAGE_EXTENSIONS", "TEST_FRACTION", "Dataset", "from_arrays",
           "from_torch_dataset", "load_dataset", "load_image", "load_image_folder", "read_cifar_binary",
           "read_cifar_pickle", "read_idx", "safe_unpickle", "split_train_val", "to_device_tensors"]
