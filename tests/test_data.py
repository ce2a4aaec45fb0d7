"""Dataset loading: the real Fashion-MNIST files, and each reader on small files made here."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from nasty.data import (load_dataset, read_cifar_binary, read_idx, safe_unpickle,
                        split_train_val, to_device_tensors)
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
        (tmp_path / f"data_batch_{i}.bin").write_bytes(_cifar_records([7, 7], 1))
        (tmp_path / f"data_batch_{i}").write_bytes(b"not even a pickle")
    (tmp_path / "test_batch.bin").write_bytes(_cifar_records([7], 1))
    (tmp_path / "test_batch").write_bytes(b"not even a pickle")
    assert load_dataset("cifar10", tmp_path).train_y.tolist() == [7] * 10


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
    from nasty.data import from_arrays
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
