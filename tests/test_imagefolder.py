"""A user's own images: torchvision's ImageFolder layout read into uint8 arrays, on folders of
PNG and JPEG files generated here, and a one-line error naming the file or folder for every
way such a folder goes wrong."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from nasty.data import load_dataset, load_image_folder, split_train_val
from nasty.errors import DatasetError

CLASSES = ("cat", "dog", "emu")


def _pixel(label, i):
    """Every image is one flat colour that encodes its class and index, so a test can tell
    where each file landed."""
    return 40 * label + i + 1


def make_folder(root, n=10, size=(8, 8), mode="RGB", fmt="png", classes=CLASSES):
    """root/<class>/<i>.<fmt>: n flat images per class, plus a checker pixel so no image set
    is constant."""
    for label, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            v = _pixel(label, i)
            channels = {"RGB": (v, 255 - v, v // 2), "L": v}[mode]
            im = Image.new(mode, (size[1], size[0]), channels)
            im.save(d / f"{i:03d}.{fmt}")
    return root


def one_line(e):
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


# ------------------------------------------------------------------ layouts and splits

def test_flat_folder_is_read_and_a_stratified_test_split_held_out(tmp_path):
    make_folder(tmp_path / "pets")
    data = load_image_folder(tmp_path / "pets")
    assert data.classes == CLASSES and data.shape == (3, 8, 8)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert len(data.train_x) == 24 and len(data.test_x) == 6  # 20% of each class of 10
    assert np.bincount(data.test_y).tolist() == [2, 2, 2]
    # every image carries its label: the red value decodes back to (class, index)
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        red = x[:, 0, 0, 0].astype(int)
        assert ((red - 1) // 40 == y).all()
        assert (x[:, 1] == 255 - x[:, 0]).all() and (x[:, 2] == x[:, 0] // 2).all()
    seen = np.concatenate([data.train_x[:, 0, 0, 0], data.test_x[:, 0, 0, 0]])
    assert sorted(seen.tolist()) == sorted(_pixel(c, i) for c in range(3) for i in range(10))
    # seeded: the same seed holds out the same images, another seed others
    again = load_image_folder(tmp_path / "pets")
    assert np.array_equal(again.test_x, data.test_x)
    other = load_image_folder(tmp_path / "pets", seed=1)
    assert not np.array_equal(other.test_x, data.test_x)
    d = data.describe()
    assert d["kind"] == "imagefolder" and d["source"] == str((tmp_path / "pets").resolve())
    assert d["splits"] == "held out" and d["test_fraction"] == 0.2 and d["split_seed"] == 0
    assert d["class_names"] == list(CLASSES) and d["n_train"] == 24 and d["n_test"] == 6
    assert json.loads(json.dumps(d)) == d


def test_train_val_test_folders_are_the_splits_and_val_is_honoured(tmp_path):
    make_folder(tmp_path / "train", n=6)
    make_folder(tmp_path / "val", n=3)
    make_folder(tmp_path / "test", n=2, classes=CLASSES[:2])  # a class may be missing from test
    data = load_dataset("imagefolder", tmp_path)
    assert len(data.train_x) == 18 + 9 and len(data.test_x) == 4
    assert data.val_idx.tolist() == list(range(18, 27))
    train_idx, val_idx = split_train_val(data, val_fraction=0.5, seed=7)  # fraction unused
    assert val_idx.tolist() == list(range(18, 27)) and train_idx.tolist() == list(range(18))
    assert np.bincount(data.train_y[val_idx]).tolist() == [3, 3, 3]
    assert data.train_x[val_idx][:, 0, 0, 0].max() <= _pixel(2, 2)
    d = data.describe()
    assert (d["splits"], d["n_train"], d["n_val"], d["n_test"]) == ("folders", 18, 9, 4)
    assert "test_fraction" not in d


def test_train_folder_without_test_holds_the_test_split_out_of_train(tmp_path):
    make_folder(tmp_path / "train", n=10)
    make_folder(tmp_path / "valid", n=2)  # valid/ and validation/ name the val split too
    data = load_image_folder(tmp_path, seed=3)
    assert len(data.test_x) == 6 and len(data.val_idx) == 6 and len(data.train_x) == 24 + 6
    assert data.describe()["splits"] == "folders" and data.describe()["test_fraction"] == 0.2


def test_a_class_named_train_is_a_class_not_a_split(tmp_path):
    make_folder(tmp_path, n=5, classes=("test", "train"))
    data = load_image_folder(tmp_path)
    assert data.classes == ("test", "train") and data.val_idx is None


def test_hidden_and_non_image_files_are_skipped_and_class_folders_read_recursively(tmp_path):
    make_folder(tmp_path, n=5)
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0\1junk")
    (tmp_path / "cat" / "._000.png").write_bytes(b"AppleDouble, not a PNG")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "labels.csv").write_text("a,b")
    (tmp_path / ".git").mkdir()
    nested = tmp_path / "emu" / "more"
    nested.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(nested / "x.PNG")  # extensions in any case
    data = load_image_folder(tmp_path)
    assert data.classes == CLASSES and len(data.train_x) + len(data.test_x) == 16


def test_threads_decode_the_same_arrays(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(300):  # more than one chunk of 256 per thread
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    one = load_image_folder(tmp_path, threads=1)
    two = load_image_folder(tmp_path, threads=2)
    assert one.shape == (3, 6, 5)
    assert np.array_equal(one.train_x, two.train_x) and np.array_equal(one.test_x, two.test_x)


# ------------------------------------------------------------------ modes and sizes

def test_all_grey_gives_one_channel_and_mixed_gives_rgb(tmp_path):
    make_folder(tmp_path / "grey", mode="L")
    grey = load_image_folder(tmp_path / "grey")
    assert grey.shape == (1, 8, 8)
    make_folder(tmp_path / "mixed", mode="L")
    Image.new("RGB", (8, 8), (200, 10, 30)).save(tmp_path / "mixed" / "dog" / "colour.png")
    mixed = load_image_folder(tmp_path / "mixed")
    assert mixed.shape == (3, 8, 8)
    # greys are replicated into three equal channels, colour is kept
    x = np.concatenate([mixed.train_x, mixed.test_x])
    colour = (x[:, 0] != x[:, 1]).any(axis=(1, 2))
    assert colour.sum() == 1 and x[colour][0, :, 0, 0].tolist() == [200, 10, 30]


def test_alpha_palette_bilevel_and_16_bit_files_convert(tmp_path):
    make_folder(tmp_path, n=4, mode="L")
    Image.new("LA", (8, 8), (77, 0)).save(tmp_path / "cat" / "alpha.png")        # alpha dropped
    Image.new("1", (8, 8), 1).save(tmp_path / "dog" / "bilevel.png")              # 1 -> 255
    Image.fromarray(np.full((8, 8), 257 * 100, np.uint16)).save(tmp_path / "emu" / "deep.png")
    data = load_image_folder(tmp_path)
    assert data.shape == (1, 8, 8)  # every file is a grey mode
    values = set(np.concatenate([data.train_x, data.test_x])[:, 0, 0, 0].tolist())
    assert {77, 255, 100} <= values  # 16-bit 25700 scales to 100, not clipped to 255
    Image.new("P", (8, 8), 3).save(tmp_path / "emu" / "palette.gif")
    Image.new("RGBA", (8, 8), (9, 8, 7, 0)).save(tmp_path / "emu" / "rgba.png")
    data = load_image_folder(tmp_path)
    x = np.concatenate([data.train_x, data.test_x])
    assert data.shape == (3, 8, 8) and [9, 8, 7] in x[:, :, 0, 0].tolist()


def test_jpeg_files_decode(tmp_path):
    make_folder(tmp_path, n=5, fmt="jpg", size=(16, 16))
    data = load_image_folder(tmp_path)
    x = np.concatenate([data.train_x, data.test_x]).astype(int)
    y = np.concatenate([data.train_y, data.test_y])
    assert data.shape == (3, 16, 16)
    assert (abs(x[:, 0, 8, 8] - (40 * y + 1)) <= 8).all()  # lossy, but each class is where it should be


def test_mixed_sizes_need_image_size_and_it_resizes(tmp_path):
    make_folder(tmp_path, n=5, size=(8, 8))
    Image.new("RGB", (12, 10), (90, 90, 90)).save(tmp_path / "dog" / "big.png")
    with pytest.raises(DatasetError, match="pass --image-size N") as e:
        load_image_folder(tmp_path)
    msg = one_line(e)
    assert "000.png is 8x8" in msg and "big.png is 12x10" in msg
    data = load_dataset("imagefolder", tmp_path, image_size=16)
    assert data.shape == (3, 16, 16) and data.describe()["image_size"] == [16, 16]
    x = np.concatenate([data.train_x, data.test_x])
    # a flat colour stays that colour when resized
    assert [90, 90, 90] in x[:, :, 5, 9].tolist()
    assert (x == x[:, :, :1, :1]).all()
    assert load_image_folder(tmp_path, image_size=(4, 6)).shape == (3, 4, 6)


def test_large_jpegs_shrink_through_draft_mode(tmp_path):
    make_folder(tmp_path, n=3, fmt="jpg", size=(256, 320))
    data = load_image_folder(tmp_path, image_size=20, test_fraction=0.34)
    y = np.concatenate([data.train_y, data.test_y])
    x = np.concatenate([data.train_x, data.test_x]).astype(int)
    assert data.shape == (3, 20, 20) and (abs(x[:, 0, 10, 10] - (40 * y + 1)) <= 8).all()


@pytest.mark.parametrize("size", [0, -3, True, 1.5, "32", (8,), (8, 0), 100000])
def test_bad_image_size_is_refused(tmp_path, size):
    make_folder(tmp_path, n=2)
    with pytest.raises(DatasetError, match="--image-size must be a whole number"):
        load_image_folder(tmp_path, image_size=size)


# ------------------------------------------------------------------ one-line errors naming the file or folder

def test_corrupt_and_truncated_images_are_named(tmp_path):
    make_folder(tmp_path, n=5)
    bad = tmp_path / "dog" / "002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    with pytest.raises(DatasetError, match="002.png is not a readable PNG image") as e:
        load_image_folder(tmp_path)
    assert str(bad) in one_line(e)
    good = (tmp_path / "cat" / "001.png").read_bytes()
    bad.write_bytes(good[:len(good) // 2])  # cut short inside its pixel data
    with pytest.raises(DatasetError, match="002.png is not a readable PNG image"):
        load_image_folder(tmp_path)
    bad.write_bytes(b"")
    with pytest.raises(DatasetError, match="002.png is not a readable PNG image"):
        load_image_folder(tmp_path)


def test_a_png_named_jpg_is_not_parsed_as_anything_else(tmp_path):
    make_folder(tmp_path, n=3)
    (tmp_path / "emu" / "000.png").rename(tmp_path / "emu" / "000.jpg")
    with pytest.raises(DatasetError, match="000.jpg is not a readable JPG image"):
        load_image_folder(tmp_path)


def test_corrupt_file_among_many_is_named_with_threads(tmp_path):
    make_folder(tmp_path, n=200, size=(4, 4))
    (tmp_path / "emu" / "150.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="150.png is not a readable PNG"):
        load_image_folder(tmp_path, threads=2)


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    make_folder(tmp_path, n=3)
    f = tmp_path / "cat" / "001.png"
    if os.name == "posix" and os.geteuid() != 0:
        f.chmod(0)
    else:  # root reads any file: make the open fail as it would for another user
        real_open = Image.open

        def denied(path, *args, **kwargs):
            if str(path) == str(f):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)
        monkeypatch.setattr(Image, "open", denied)
    try:
        with pytest.raises(DatasetError, match="cannot read .*001.png: Permission denied") as e:
            load_image_folder(tmp_path)
        one_line(e)
    finally:
        f.chmod(0o644)


def test_empty_class_folder_is_named(tmp_path):
    make_folder(tmp_path, n=3)
    (tmp_path / "fox").mkdir()
    (tmp_path / "fox" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="class folder .*fox has no images") as e:
        load_image_folder(tmp_path)
    one_line(e)


def test_single_class_is_refused(tmp_path):
    make_folder(tmp_path, n=3, classes=("cat",))
    with pytest.raises(DatasetError, match=r"single class folder \(cat/\); .*at least two") as e:
        load_image_folder(tmp_path)
    assert str(tmp_path) in one_line(e)


def test_images_without_class_folders_are_not_an_imagefolder(tmp_path):
    for i in range(3):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(DatasetError, match="holds 3 images but no class subfolders; an ImageFolder is"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no class subfolders"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "missing")


def test_split_folder_mistakes_are_named(tmp_path):
    make_folder(tmp_path / "a" / "train", n=3)
    make_folder(tmp_path / "a" / "test", n=2, classes=("cat", "zebra"))
    with pytest.raises(DatasetError, match="test/zebra is a class that .*train does not have"):
        load_image_folder(tmp_path / "a")
    make_folder(tmp_path / "b" / "val", n=3)
    make_folder(tmp_path / "b" / "test", n=3)
    with pytest.raises(DatasetError, match="has val/, test/ but no train/ folder"):
        load_image_folder(tmp_path / "b")
    make_folder(tmp_path / "c" / "train", n=3)
    make_folder(tmp_path / "c" / "extra", n=3)
    with pytest.raises(DatasetError, match=r"mixes split folders \(train/\) with other folders \(extra/\)"):
        load_image_folder(tmp_path / "c")
    make_folder(tmp_path / "d" / "train", n=3)
    make_folder(tmp_path / "d" / "val", n=1)
    make_folder(tmp_path / "d" / "valid", n=1)
    with pytest.raises(DatasetError, match="has both val/ and valid/"):
        load_image_folder(tmp_path / "d")


def test_too_few_images_to_hold_out_a_test_split(tmp_path):
    make_folder(tmp_path, n=2)  # 20% of 2 rounds to 0 per class
    with pytest.raises(DatasetError, match="too few images .* to hold out a 0.2 test split"):
        load_image_folder(tmp_path)


def test_constant_images_are_refused_by_name(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.new("L", (4, 4), 0).save(tmp_path / c / f"{i}.png")
    with pytest.raises(DatasetError, match="same constant value"):
        load_image_folder(tmp_path)


# ------------------------------------------------------------------ the data trains

def test_an_imagefolder_dataset_trains_a_compiled_genotype(tmp_path):
    import nasty
    from nasty.train import TrainConfig, evaluate_test_set, train
    make_folder(tmp_path, n=20, size=(12, 12))
    data = load_image_folder(tmp_path)
    g = nasty.parse("net tiny input 3x12x12 classes 3\n"
                    "stem conv3x3 c=8 bn relu\nhead gap flatten fc c=classes\n")
    model = nasty.build(g, num_classes=data.num_classes, input=data.shape)
    train_idx, val_idx = split_train_val(data, 0.25, seed=0)
    result = train(model, data, TrainConfig(epochs=2, batch_size=8, lr=0.05, threads=1),
                   train_idx, val_idx)
    assert 0 <= result.final_val_acc <= 1 and np.isfinite(result.history[-1]["train_loss"])
    assert 0 <= evaluate_test_set(model, data) <= 1


def test_readme_example_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("## Your own images")
    block = re.compile(r"```python\n(.*?)```", re.S).search(readme, start).group(1)
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "pets", n=5, size=(40, 30), classes=("cat", "dog"))
    Image.new("RGB", (100, 80), (1, 2, 3)).save(tmp_path / "pets" / "dog" / "big.jpg")
    scope = {}
    exec(block, scope)
    d = scope["data"].describe()
    assert (d["kind"], d["shape"], d["classes"]) == ("imagefolder", [3, 64, 64], 2)
    assert d["source"] == str((tmp_path / "pets").resolve())


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_camera_photos_stored_sideways_are_read_upright(tmp_path, fmt):
    """A phone stores a portrait photo sideways with an EXIF orientation tag; every viewer shows
    it upright, and so does nasty: sizes are surveyed upright, pixels are turned."""
    make_folder(tmp_path, n=4, size=(8, 12), fmt=fmt)
    upright = Image.new("RGB", (12, 8), (0, 0, 0))          # W=12, H=8, one bright corner block
    for r in range(3):
        for c in range(4):
            upright.putpixel((c, r), (255, 255, 255))
    stored = upright.transpose(Image.Transpose.ROTATE_90)   # as the camera wrote it: 8 wide, 12 high
    exif = Image.Exif()
    exif[0x0112] = 6                                        # "turn 90 degrees clockwise to view"
    stored.save(tmp_path / "emu" / f"photo.{fmt}", exif=exif)
    data = load_image_folder(tmp_path, test_fraction=0.25)
    assert data.shape == (3, 8, 12)                        # no "images differ in size"
    x = np.concatenate([data.train_x, data.test_x]).astype(int)
    photo = [im for im in x if im[0, 0, 0] > 200 and im[0, 7, 11] < 50]
    assert len(photo) == 1                                 # top-left bright, bottom-right dark: upright
    assert (photo[0][:, :2, :3] > 200).all() and (photo[0][:, 5:, 6:] < 50).all()
