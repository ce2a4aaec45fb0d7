"""Datasets (being split by source; this commit only moves nasty/data.py to nasty/data/dataset.py)."""
from .dataset import (DATASETS, DEFAULT_DIRS, IMAGE_EXTENSIONS, TEST_FRACTION, Dataset, from_arrays,
                      from_torch_dataset, load_dataset, load_image, load_image_folder, read_cifar_binary,
                      read_cifar_pickle, read_idx, safe_unpickle, split_train_val, to_device_tensors)
