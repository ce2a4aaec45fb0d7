"""Data already in memory: numpy arrays (``from_arrays``) and map-style torch Datasets
(``from_torch_dataset``), read into the uint8 (N, C, H, W) form every Dataset holds.

What is accepted is said in one place each (images: uint8, 0..255 integers or [0, 1]
floats, greyscale or NCHW/NHWC; labels: integers or strings), and anything else is
refused with what to do, such as images that were normalised already.
"""

from __future__ import annotations

import numbers

import numpy as np

from nasty.errors import DatasetError
from nasty.limits import DOCS, MAX_CLASSES, MAX_IMAGES, memory_problem, over

from .dataset import TEST_FRACTION, Dataset, checked_dataset, format_shape, holdout_rng, stratified_holdout
from .imagefolder import GREY_MODES

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
    _check_class_list(classes)
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
            raise DatasetError(f"{where}: training images are {format_shape(shapes['train'])} "
                               f"but {split} images are {format_shape(shape)}")
    train_x, train_y = images["train"], labels["train"]
    if "test" in images:
        test_x, test_y = images["test"], labels["test"]
    else:
        if not 0.0 < test_fraction < 1.0:
            raise DatasetError(f"the test fraction must be between 0 and 1, got {test_fraction}")
        keep, held = stratified_holdout(train_y, test_fraction, holdout_rng(seed))
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
    return checked_dataset(name, classes, where, train_x, train_y, test_x, test_y, val_idx=val_idx, source=source)


def _check_name(name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"the dataset name must be a non-empty string, got {type(name).__name__}")


def _check_layout(layout):
    if layout is None or layout in _LAYOUTS:
        return layout
    raise DatasetError(f"layout must be {' or '.join(_LAYOUTS)} (or None to detect it), got {layout!r}")


def _as_numpy(a, what: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, perhaps on a GPU or needing grad
        if getattr(getattr(a, "device", None), "type", None) == "meta" or getattr(a, "is_meta", False):
            raise DatasetError(f"{what} is a tensor on the meta device: it has a shape but no values; "
                               "pass the real images (a tensor on the CPU or a GPU, or a numpy array)")
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
        raise DatasetError(f"{what} is 2-D {format_shape(x.shape)}: images must be (N, H, W) or 4-D; "
                           "reshape flattened images first, e.g. x.reshape(-1, 28, 28)")
    else:
        raise DatasetError(f"{what} is {x.ndim}-D ({format_shape(x.shape) or 'a scalar'}); images must "
                           "be (N, H, W), (N, C, H, W) or (N, H, W, C)")
    if not len(x) or not x.size:
        raise DatasetError(f"{what} holds no images (shape {format_shape(x.shape)})")
    return np.ascontiguousarray(_to_uint8(x, what)), layout


def _detect_layout(shape, what: str) -> str:
    first, last = shape[1] <= _MAX_AUTO_CHANNELS, shape[3] <= _MAX_AUTO_CHANNELS
    if first != last:
        return "NCHW" if first else "NHWC"
    raise DatasetError(f"{what} is {format_shape(shape)}: cannot tell the channel axis (the one with at "
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
        raise DatasetError(f"{what} is {format_shape(y.shape)}, which looks one-hot; pass class indices "
                           "(e.g. y.argmax(1))")
    if y.ndim != 1:
        raise DatasetError(f"{what} must be one label per image, shape ({n},); got {format_shape(y.shape) or 'a scalar'}")
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
    _check_class_list(classes)
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
        if top >= MAX_CLASSES:
            raise DatasetError(f"label {top:,} would make {top + 1:,} classes, over the limit of {MAX_CLASSES:,} "
                               f"({DOCS}); labels are class indices 0..K-1: renumber them, e.g. "
                               "np.unique(y, return_inverse=True)[1], or pass class-name strings")
        return tuple(str(i) for i in range(top + 1)), labels
    if top >= len(classes):
        raise DatasetError(f"label {top} is out of range for the {len(classes)} classes given (0..{len(classes) - 1})")
    return tuple(str(c) for c in classes), labels


def _check_class_list(classes) -> None:
    """``classes=`` is a sequence of names in label order (a dict's order is not its labels')."""
    if classes is None:
        return
    if isinstance(classes, dict) or hasattr(classes, "keys"):
        raise DatasetError("classes must be a list of names in label order, not a dict; for {label: name} "
                           "pass [names[i] for i in sorted(names)]")
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__") or not hasattr(classes, "__iter__"):
        raise DatasetError(f"classes must be a list of class names, got {type(classes).__name__}")
    if len(classes) > MAX_CLASSES:
        raise DatasetError(over("classes given:", len(classes), MAX_CLASSES))


def _read_torch_dataset(ds, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every item of a map-style dataset as uint8 (N, C, H, W) images and int64 labels; its length
    and its first item's size are checked against the memory before anything is allocated."""
    if isinstance(ds, dict) or hasattr(ds, "keys"):
        raise DatasetError(f"{what} is a {type(ds).__name__}, not a dataset of (image, label) items; pass "
                           "arrays as (x, y) (from_arrays) or a map-style torch Dataset")
    try:
        n = len(ds)
    except TypeError:
        raise DatasetError(f"{what} is not a map-style dataset (it needs __len__ and __getitem__); "
                           "an IterableDataset cannot be indexed, collect it into arrays and use "
                           "from_arrays") from None
    except (ValueError, OverflowError) as e:
        raise DatasetError(f"{what}: len() fails ({e}); a dataset's length is a whole number 0 or more") from None
    if not n:
        raise DatasetError(f"{what} is empty")
    if n > MAX_IMAGES:
        raise DatasetError(f"{what}: " + over("its length", n, MAX_IMAGES))
    problem = memory_problem(f"{what}: {n:,} labels alone", 9 * n)          # 8 bytes a label, 1 at least an image
    if problem:
        raise DatasetError(problem)
    images = labels = None
    for i in range(n):
        try:
            item = ds[i]
        except Exception as e:  # noqa: BLE001 - the user's __getitem__ fails in its own ways
            raise DatasetError(f"reading item {i} of {what} failed ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:100]})") from None
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DatasetError(f"item {i} of {what} is a {type(item).__name__}, not an (image, label) pair")
        image = _item_image(item[0], f"image {i} of {what}")
        if images is None:                              # the first item says the size of them all
            problem = memory_problem(f"{what}: {n:,} images of {format_shape(image.shape)}", n * (image.size + 8))
            if problem:
                raise DatasetError(problem)
            images, labels = np.empty((n,) + image.shape, dtype=np.uint8), np.empty(n, dtype=np.int64)
        elif image.shape != images.shape[1:]:
            raise DatasetError(f"image {i} of {what} is {format_shape(image.shape)} but image 0 is "
                               f"{format_shape(images.shape[1:])}; resize them to one size (e.g. a Resize transform)")
        images[i] = image
        labels[i] = _item_label(item[1], f"label {i} of {what}")
    return images, labels


def _item_image(image, what: str) -> np.ndarray:
    """One item's image as uint8 (C, H, W)."""
    if hasattr(image, "getbands") and hasattr(image, "convert"):  # a PIL image: (H, W[, C])
        image = image.convert("L" if image.mode in GREY_MODES else "RGB")
        a = np.asarray(image)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    tensor = hasattr(image, "detach")
    a = _as_numpy(image, what)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and not tensor:  # a numpy image: the from_arrays rule on one image
        a = _images_from_array(a[None], what, None)[0][0]
    elif a.ndim != 3:
        raise DatasetError(f"{what} is {a.ndim}-D ({format_shape(a.shape)}); expected (C, H, W) or (H, W)")
    return _to_uint8(a, what)


def _item_label(label, what: str) -> int:
    if hasattr(label, "item") and getattr(label, "ndim", 0) == 0:
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise DatasetError(f"{what} is {type(label).__name__} {str(label)[:20]!r}; labels must be whole numbers")
    if label < 0:
        raise DatasetError(f"{what} is {label}; labels are 0..K-1")
    return int(label)
