"""Dataset loading: the real Fashion-MNIST files, and each reader on small files made here."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from nasty.data import (
    from_arrays,
    from_torch_dataset,
    load_dataset,
    read_cifar_binary,
    read_idx,
    safe_unpickle,
    split_train_val,
    to_device_tensors,
)
from nasty.errors import DatasetError, NastyError


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist")


def test_fashion_mnist_is_the_real_dataset(fashion):
    assert fashion.train_x.shape == (60000, 1, 28, 28)
    assert fashion.test_x.shape == (10000, 1, 28, 28)
    assert fashion.train_x.dtype == np.uint8 and fashion.train_y.dtype == np.int64
    assert fashion.shape == (1, 28, 28)
    assert len(fashion.classes) == 10
    assert np.bincount(fashion.train_y).tolist() == [6000] * 10
    assert np.bincount(fashion.test_y).tolist() == [1000] * 10
    # Published Fashion-MNIST statistics: mean 0.2860, std 0.3530.
    assert fashion.mean[0] == pytest.approx(0.2860, abs=1e-4)
    assert fashion.std[0] == pytest.approx(0.3530, abs=1e-4)


def test_split_is_stratified_disjoint_and_deterministic(fashion):
    train_idx, val_idx = split_train_val(fashion, val_fraction=0.1, seed=3)
    assert len(val_idx) == 6000 and len(train_idx) == 54000
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert np.bincount(fashion.train_y[val_idx]).tolist() == [600] * 10
    again = split_train_val(fashion, val_fraction=0.1, seed=3)
    assert np.array_equal(again[1], val_idx)
    assert not np.array_equal(split_train_val(fashion, 0.1, seed=4)[1], val_idx)


def test_device_tensors_are_normalized_channels_last(fashion):
    x, y = to_device_tensors(fashion.train_x[:5000], fashion.train_y[:5000], "cpu",
                             fashion.mean, fashion.std)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05


def _write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_round_trips(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.idx", array, compress)
    assert np.array_equal(read_idx(tmp_path / "x.idx"), array)


def test_idx_reader_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\0")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((4, 4)))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(tmp_path / "short")


def test_mnist_style_directory_loads(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), True)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load_dataset("mnist", tmp_path)
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_y.tolist() == list(range(10))


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as e:
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    assert "\n" not in str(e.value) and isinstance(e.value, NastyError)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz not found"):
        load_dataset("fashion-mnist", tmp_path)


def _cifar_records(labels, label_bytes):
    """CIFAR binary records whose pixels encode (image index, channel) for checking layout."""
    rows = []
    for i, label in enumerate(labels):
        pixels = np.repeat(np.array([i, 100 + i, 200 - i], np.uint8), 1024)
        prefix = bytes([0] * (label_bytes - 1) + [label])
        rows.append(prefix + pixels.tobytes())
    return b"".join(rows)


def test_cifar10_binary_version(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(_cifar_records([i, 9, 0], 1))
    (folder / "test_batch.bin").write_bytes(_cifar_records([3, 4], 1))
    data = load_dataset("cifar10", tmp_path)  # the extracted subfolder is found
    assert data.train_x.shape == (15, 3, 32, 32) and data.shape == (3, 32, 32)
    assert data.train_y[:3].tolist() == [1, 9, 0] and data.test_y.tolist() == [3, 4]
    # Channel-major layout: the first 1024 bytes are the red plane.
    assert data.test_x[1, :, 5, 7].tolist() == [1, 101, 199]
    assert data.classes[0] == "airplane" and len(data.mean) == 3


def test_cifar100_binary_uses_fine_label(tmp_path):
    for name in ("train.bin", "test.bin"):
        (tmp_path / name).write_bytes(_cifar_records([42, 99], 2))
    images, labels = read_cifar_binary(tmp_path / "train.bin", label_bytes=2)
    assert labels.tolist() == [42, 99] and images.shape == (2, 3, 32, 32)
    assert load_dataset("cifar100", tmp_path).train_y.tolist() == [42, 99]


def test_truncated_cifar_binary_is_rejected(tmp_path):
    (tmp_path / "train.bin").write_bytes(_cifar_records([1], 2)[:-1])
    with pytest.raises(DatasetError, match="truncated"):
        read_cifar_binary(tmp_path / "train.bin", label_bytes=2)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_python_version_loads_with_safe_unpickler(tmp_path, protocol):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": name, "labels": [1, 2],
                 "data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                 "filenames": ["a.png", "b.png"]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    data = load_dataset("cifar10", tmp_path)
    assert data.train_x.shape == (10, 3, 32, 32) and data.train_y.tolist() == [1, 2] * 5


def test_binary_version_is_preferred_over_pickles(tmp_path):
    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}.bin").write_bytes(_cifar_records([7, 3], 1))
        (tmp_path / f"data_batch_{i}").write_bytes(b"not even a pickle")
    (tmp_path / "test_batch.bin").write_bytes(_cifar_records([7], 1))
    (tmp_path / "test_batch").write_bytes(b"not even a pickle")
    assert load_dataset("cifar10", tmp_path).train_y.tolist() == [7, 3] * 5


class _Exploit:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_safe_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({"data": _Exploit(marker), "labels": [0]}))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        safe_unpickle(evil)
    assert not marker.exists()
    # Through the dataset loader too, with the how-to-get-it hint appended.
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        (tmp_path / name).write_bytes(evil.read_bytes())
    with pytest.raises(DatasetError, match="refusing to unpickle.*--data-dir"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_unknown_dataset_lists_choices():
    with pytest.raises(DatasetError, match="fashion-mnist"):
        load_dataset("imagenet")


def test_idx_header_whose_dimensions_overflow_int64_is_rejected(tmp_path):
    # 65536**4 = 2**64 wraps to 0 in int64: the header would "need" 0 bytes and pass as empty
    header = bytes([0, 0, 0x08, 4]) + struct.pack(">4I", 65536, 65536, 65536, 65536)
    (tmp_path / "crafted").write_bytes(header)
    with pytest.raises(DatasetError, match="truncated or corrupt") as e:
        read_idx(tmp_path / "crafted")
    assert "\n" not in str(e.value)


def test_empty_idx_training_set_is_refused(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((0, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(0))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2))
    with pytest.raises(DatasetError, match="no training images"):
        load_dataset("mnist", tmp_path)


def test_all_constant_images_are_a_data_error_not_a_nan_loss(tmp_path):
    for prefix, n in (("train", 20), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.full((n, 28, 28), 7))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    with pytest.raises(DatasetError, match="same constant value .*nothing to learn") as e:
        load_dataset("mnist", tmp_path)
    assert "learning rate" not in str(e.value)


def test_a_constant_channel_normalises_to_zero_not_nan():
    # one channel never varies (an unused alpha or a blank band): std 1, not 0/0
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 2, 8, 8), dtype=np.uint8)
    x[:, 1] = 200
    data = from_arrays(x, np.arange(30) % 3)
    assert data.std[1] == 1.0 and data.std[0] > 0
    t, _ = to_device_tensors(data.train_x, data.train_y, "cpu", data.mean, data.std)
    assert torch.isfinite(t).all() and t[:, 1].abs().max() == 0


def test_image_size_is_refused_for_fixed_size_datasets():
    with pytest.raises(DatasetError, match="--image-size applies to --dataset imagefolder only"):
        load_dataset("fashion-mnist", image_size=32)


def test_imagefolder_needs_a_data_dir():
    with pytest.raises(DatasetError, match="needs --data-dir"):
        load_dataset("imagefolder")


def test_describe_says_what_the_data_was(fashion):
    d = fashion.describe()
    assert d["kind"] == "fashion-mnist" and d["source"] == "/usr/share/datasets/fashion-mnist"
    assert d["shape"] == [1, 28, 28] and d["classes"] == 10 and d["n_train"] == 60000
    assert d["n_test"] == 10000 and d["n_val"] is None
    import json
    assert json.loads(json.dumps(d)) == d


# ------------------------------------------------------------------ in-memory data

def _images(n=30, shape=(3, 8, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n,) + shape, dtype=np.uint8), np.arange(n) % 3


def _one_line_without_data(e, *forbidden):
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300 and "array(" not in msg
    for f in forbidden:
        assert f not in msg
    return msg


def test_from_arrays_reads_nchw_nhwc_and_grey():
    x, y = _images()
    nchw = from_arrays(x, y)
    nhwc = from_arrays(x.transpose(0, 2, 3, 1), y)
    assert nchw.shape == nhwc.shape == (3, 8, 8)
    assert np.array_equal(nchw.train_x, nhwc.train_x) and np.array_equal(nchw.test_x, nhwc.test_x)
    assert nchw.describe()["layout"] == "NCHW" and nhwc.describe()["layout"] == "NHWC"
    grey = from_arrays(x[:, 0], y)
    assert grey.shape == (1, 8, 8)
    # 20% of each class held out as the test set, seeded
    assert len(nchw.test_x) == 6 and np.bincount(nchw.test_y).tolist() == [2, 2, 2]
    d = nchw.describe()
    assert (d["kind"], d["name"], d["dtype"], d["classes"], d["n_train"], d["n_test"]) == \
        ("arrays", "arrays", "uint8", 3, 24, 6)
    assert d["source"] == "numpy.ndarray" and d["test_fraction"] == 0.2


def test_from_arrays_ambiguous_layout_asks_for_it():
    x = np.random.default_rng(0).integers(0, 256, (12, 3, 8, 3), dtype=np.uint8)
    with pytest.raises(DatasetError, match="cannot tell the channel axis.*layout='NCHW'") as e:
        from_arrays(x, np.arange(12) % 2)
    _one_line_without_data(e)
    assert from_arrays(x, np.arange(12) % 2, layout="NHWC").shape == (3, 3, 8)
    assert from_arrays(x, np.arange(12) % 2, layout="NCHW").shape == (3, 8, 3)
    with pytest.raises(DatasetError, match="layout must be NCHW or NHWC"):
        from_arrays(x, np.arange(12) % 2, layout="CHW")


def test_from_arrays_float_images_in_unit_range_become_uint8():
    x, y = _images()
    f = x.astype(np.float32) / 255
    data = from_arrays(f, y, test_x=f[:6], test_y=y[:6])
    assert data.train_x.dtype == np.uint8 and np.array_equal(data.train_x, x)
    assert np.array_equal(data.test_x, x[:6])
    assert from_arrays(x.astype(np.int64), y).train_x.dtype == np.uint8  # integers in 0..255
    from_tensors = from_arrays(torch.from_numpy(f), torch.from_numpy(y))  # torch tensors too
    assert np.array_equal(from_tensors.train_x, from_arrays(x, y).train_x)
    assert from_tensors.describe()["source"] == "torch.Tensor"


@pytest.mark.parametrize("bad, match", [
    (lambda x: (x.astype(np.float32) - 128) / 64, r"float images must lie in \[0, 1\], these span .*normalis"),
    (lambda x: x.astype(np.float64), r"float images must lie in \[0, 1\].*divide by 255"),
    (lambda x: np.where(x > 100, np.nan, x / 255.0), "NaN or infinite"),
    (lambda x: x.astype(np.int32) * 3, r"integer images must lie in 0..255, these span 0..76"),
    (lambda x: x > 3, "dtype bool"),
    (lambda x: x.reshape(len(x), -1), "2-D 30x192.*reshape flattened images"),
    (lambda x: x[:0], "holds no images"),
])
def test_from_arrays_bad_images_are_one_line_without_the_array(bad, match):
    x, y = _images()
    with pytest.raises(DatasetError, match=match) as e:
        from_arrays(bad(x), y[:len(bad(x))])
    _one_line_without_data(e, "[[", "...")


@pytest.mark.parametrize("labels, match", [
    (lambda y: np.eye(3)[y], "looks one-hot.*argmax"),
    (lambda y: y[:-1], "29 labels for 30 images"),
    (lambda y: y - 1, "negative label -1"),
    (lambda y: y + 0.5, "dtype float64; labels must be whole numbers"),
])
def test_from_arrays_bad_labels_are_one_line(labels, match):
    x, y = _images()
    with pytest.raises(DatasetError, match=match) as e:
        from_arrays(x, labels(y))
    _one_line_without_data(e, "[[")


def test_from_arrays_labels_and_class_names():
    x, y = _images()
    names = np.array(["cat", "dog", "emu"])[y]
    data = from_arrays(x, names)  # string labels: sorted distinct names are the classes
    assert data.classes == ("cat", "dog", "emu")
    for images, labels in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        assert (np.array(data.classes)[labels] == names[_origin(x, images)]).all()
    assert from_arrays(x, y.astype(float), classes=["a", "b", "c"]).classes == ("a", "b", "c")
    assert from_arrays(x, y).classes == ("0", "1", "2")
    with pytest.raises(DatasetError, match="label 2 is out of range for the 2 classes given"):
        from_arrays(x, y, classes=["a", "b"])
    with pytest.raises(DatasetError, match="test_x was given without test_y"):
        from_arrays(x, y, test_x=x)


def _origin(x, images):
    """Where in x each of ``images`` came from (random images are all distinct)."""
    return np.array([int(np.flatnonzero((x == im).all(axis=(1, 2, 3)))[0]) for im in images])


def test_from_arrays_val_split_is_honoured():
    x, y = _images()
    data = from_arrays(x[:20], y[:20], x[20:25], y[20:25], val_x=x[25:], val_y=y[25:])
    train_idx, val_idx = split_train_val(data)
    assert np.array_equal(data.train_x[val_idx], x[25:]) and np.array_equal(data.train_x[train_idx], x[:20])
    assert data.describe()["n_val"] == 5 and data.describe()["n_train"] == 20
    with pytest.raises(DatasetError, match="training images are 3x8x8 but val images are 3x4x4"):
        from_arrays(x, y, val_x=x[:5, :, :4, :4], val_y=y[:5])


def test_from_torch_dataset_matches_from_arrays():
    from torch.utils.data import TensorDataset
    x, y = _images()
    ds = TensorDataset(torch.from_numpy(x).float() / 255, torch.from_numpy(y))
    data = from_torch_dataset(ds, name="mine")
    ref = from_arrays(x, y)
    assert np.array_equal(data.train_x, ref.train_x) and np.array_equal(data.test_y, ref.test_y)
    d = data.describe()
    assert d["kind"] == "torch-dataset" and d["name"] == "mine"
    assert d["source"] == "torch.utils.data.dataset.TensorDataset"


class _PilDataset(torch.utils.data.Dataset):
    """A torchvision-style dataset with no transform: PIL images and int labels, named classes."""
    classes = ["zero", "one"]

    def __init__(self, n=10, normalise=False):
        self.n, self.normalise = n, normalise

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from PIL import Image
        if self.normalise:  # what a Normalize transform gives
            return torch.full((1, 4, 4), -0.5 + i / 10), i % 2
        return Image.new("L", (5, 4), 20 * i), i % 2


def test_from_torch_dataset_reads_pil_images_and_dataset_classes():
    data = from_torch_dataset(_PilDataset(), test=_PilDataset(4))
    assert data.shape == (1, 4, 5) and data.classes == ("zero", "one")
    assert sorted(data.train_x[:, 0, 0, 0].tolist()) == [20 * i for i in range(10)]
    assert data.test_y.tolist() == [0, 1, 0, 1] and data.describe()["name"] == "_PilDataset"


def test_from_torch_dataset_errors_are_one_line():
    with pytest.raises(DatasetError, match=r"image 0 of _PilDataset: float images must lie in \[0, 1\].*normalis") as e:
        from_torch_dataset(_PilDataset(normalise=True))
    _one_line_without_data(e, "tensor(")

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(1, 4, 4), 0

    with pytest.raises(DatasetError, match="not a map-style dataset"):
        from_torch_dataset(Stream())
    with pytest.raises(DatasetError, match="item 0 of list is a Tensor, not an \\(image, label\\) pair"):
        from_torch_dataset([torch.zeros(1, 4, 4)])
    with pytest.raises(DatasetError, match="label 0 of list is float"):
        from_torch_dataset([(torch.zeros(1, 4, 4), 0.5)])
    with pytest.raises(DatasetError, match="image 1 of list is 1x5x5 but image 0 is 1x4x4"):
        from_torch_dataset([(torch.zeros(1, 4, 4), 0), (torch.zeros(1, 5, 5), 1)])


def test_the_package_keeps_every_public_name_and_no_submodule_shadows_one():
    """nasty/data/ is split by source; `from nasty.data import X` works for every name it exported as
    one module, and importing each submodule (nasty.data.idx, ...) replaces none of them."""
    import importlib
    import pkgutil

    import nasty.data as data
    names = {"DATASETS", "DEFAULT_DIRS", "IMAGE_EXTENSIONS", "TEST_FRACTION", "Dataset", "from_arrays",
             "from_torch_dataset", "load_dataset", "load_image", "load_image_folder", "read_cifar_binary",
             "read_cifar_pickle", "read_idx", "safe_unpickle", "split_train_val", "to_device_tensors"}
    assert set(data.__all__) == names
    before = {n: getattr(data, n) for n in names}
    submodules = [m.name for m in pkgutil.iter_modules(data.__path__)]
    assert set(submodules) == {"arrays", "catalog", "cifar", "dataset", "idx", "imagefolder"}
    for m in submodules:
        importlib.import_module(f"nasty.data.{m}")
    assert {n: getattr(data, n) for n in names} == before and not names & set(submodules)
