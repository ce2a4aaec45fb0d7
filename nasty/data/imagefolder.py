"""A user's own images in torchvision's ImageFolder layout (one folder per class), and
``load_image``, which reads one image file the same way for ``nasty predict``.

Files are decoded with Pillow only as the format their extension names, upright (EXIF
orientation applied), grey or RGB, at one size; a damaged file is a one-line error that
names it.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

from nasty.errors import DatasetError, warn
from nasty.limits import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, memory_problem, over

from .dataset import TEST_FRACTION, Dataset, checked_dataset, holdout_rng, not_regular, stratified_holdout

# What torchvision's ImageFolder reads, and the Pillow formats they map to: a file is
# decoded only as the format its extension names, so no other Pillow plugin ever parses it.
IMAGE_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
                    ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM",
                    ".pbm": "PPM"}
_SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
# Pillow modes that hold one grey channel (1: bilevel, I;16: 16-bit, LA: with alpha).
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"})
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
    and files of other types are skipped, and so is anything that is not a regular file
    (a FIFO or a device named like an image would block or never end), with a warning
    naming it (the names are also in ``describe()["skipped"]``).

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
    skipped: list[Path] = []
    classes, files, labels = _scan_classes(train_dir, skipped)
    parts = {"train": (files, labels)}
    for split in ("val", "test"):
        if split in splits:
            parts[split] = _scan_split(splits[split], train_dir, classes, skipped)
    if skipped:
        names = ", ".join(str(p) for p in skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        warn(f"{root}: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} named like images that "
             f"{'are' if len(skipped) > 1 else 'is'} not a regular file (a FIFO, device, socket or broken link): {names}")
    if "test" not in parts:
        keep, held = stratified_holdout(labels, test_fraction, holdout_rng(seed))
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
    if skipped:
        source["skipped"] = [str(p) for p in skipped[:20]]
    return checked_dataset("imagefolder", classes, root, train_x, train_y, *arrays["test"],
                           val_idx=val_idx, source=source)


def _image_size(image_size) -> tuple[int, int] | None:
    """None, N or (H, W) -> None or (H, W), checked."""
    if image_size is None:
        return None
    hw = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    try:
        h, w = hw
        ok = all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                 and 1 <= d <= MAX_IMAGE_SIDE for d in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DatasetError(f"--image-size must be a whole number of pixels from 1 to {MAX_IMAGE_SIDE} "
                           f"(or an (H, W) pair from Python), got {image_size!r}")
    return int(h), int(w)


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


def _scan_classes(folder: Path, skipped: list) -> tuple[tuple[str, ...], list[Path], np.ndarray]:
    """Class names (sorted folder names) and every image file with its label (files that are not
    regular files are appended to ``skipped``)."""
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
        found = _image_files(d, skipped)
        files += found
        labels += [label] * len(found)
    return tuple(d.name for d in class_dirs), files, np.asarray(labels, dtype=np.int64)


def _scan_split(folder: Path, train_dir: Path, classes: tuple[str, ...],
                skipped: list) -> tuple[list[Path], np.ndarray]:
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
        found = _image_files(d, skipped)
        files += found
        labels += [index[d.name]] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


def _image_files(class_dir: Path, skipped: list) -> list[Path]:
    """Every image file under ``class_dir`` (recursively, sorted), skipping hidden ones
    (macOS leaves ._name.jpg files that are not images) and appending to ``skipped`` those that
    are not regular files: opening a FIFO blocks until a writer comes, a device never ends."""
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, onerror=_raise_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith(".") or Path(f).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath) / f
            (found if not_regular(path) is None else skipped).append(path)
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
        if max(size) > MAX_IMAGE_SIDE:
            raise DatasetError(f"{files[0]}: the images are {size[1]}x{size[0]} (width x height), larger than "
                               f"{MAX_IMAGE_SIDE} pixels a side, the most a dataset keeps; pass --image-size N "
                               "(image_size= from Python) to resize them, e.g. --image-size 224")
    shape = (len(files), 1 if grey else 3) + size
    problem = memory_problem(f"{len(files):,} images of {shape[1]}x{size[0]}x{size[1]}", math.prod(shape))
    if problem:
        raise DatasetError(f"{problem}; pass a smaller --image-size or use fewer images")
    out = np.empty(shape, dtype=np.uint8)

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
            hw, grey = _upright_size(im), grey and im.mode in GREY_MODES
        _check_pixels(f, hw)
        if first is None:
            first = (f, hw)
        elif hw != first[1] and mismatch is None:
            mismatch = (f"images differ in size: {first[0]} is {first[1][1]}x{first[1][0]} but "
                        f"{f} is {hw[1]}x{hw[0]} (width x height)")
    return mismatch or first[1], grey


def _check_pixels(path: Path, hw: tuple[int, int]) -> None:
    """Refuse, from its header alone, a file too large to decode (one decode holds it whole, and
    several threads decode at once)."""
    if hw[0] * hw[1] > MAX_IMAGE_PIXELS:
        raise DatasetError(f"{path} is {hw[1]}x{hw[0]}: " + over("its pixel count", hw[0] * hw[1], MAX_IMAGE_PIXELS)
                           + "; shrink it first")


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
    if not path.exists() and not path.is_symlink():
        raise DatasetError(f"no image file {path}")
    kind = not_regular(path)
    if kind is not None:
        raise DatasetError(f"{path} is {kind}, not an image file; give a regular file")
    im = _decode_image(path, (h, w), grey=c == 1)
    return im[None] if im.ndim == 2 else im.transpose(2, 0, 1)


def _decode_image(path: Path, size: tuple[int, int], grey: bool) -> np.ndarray:
    """One file as uint8 (H, W) grey or (H, W, 3) RGB, upright (EXIF orientation applied, as
    every image viewer does), resized to ``size`` (H, W)."""
    from PIL import Image, ImageOps
    with _open_image(path) as im:
        _check_pixels(path, (im.height, im.width))
        try:
            orientation = _orientation(im)
            if _upright_size(im) != size:       # JPEG: decode at a reduced scale when shrinking
                im.draft(None, (size[0], size[1]) if orientation in _TURNED else (size[1], size[0]))
            im.load()
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            if im.mode in GREY_MODES:
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
    # Pillow's own convert("L") would clip at 255 rather than scale, so scale here
    # (in uint32: 65535 * 255 fits, and it is half the memory of an int64 copy).
    a = np.asarray(im)
    if a.min() < 0 or a.max() > 65535:
        raise DatasetError(f"{path}: {im.mode} pixel values span {a.min()}..{a.max()}, "
                           "not 16-bit greys; save it as an 8-bit or 16-bit image")
    return Image.fromarray(((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))
