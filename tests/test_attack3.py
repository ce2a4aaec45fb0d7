"""What the third attack on nasty found (issue 25, items 3 and 8-12), each reproduced as it was
found and refused at its root: a FIFO in an image folder (a hang), memory bombs (billion-laughs
YAML, gzip bombs, lying headers, huge images, absurd labels, thread counts and dataset lengths),
checks that came after Ray started (an unwritable --runs-dir, controller options out of range,
a full disk, damaged checkpoints), Python API types, benchmark tables with bad rows, and input
accepted but wrong. Each is a one-line NastyError (rc 2 from the CLI) or a one-line warning, with
nothing computed lost and no file changed.

Bombs are small but lying (a header that claims 10^9 images, a PNG header that claims 9000x9000
pixels, a gzip whose few KB expand past a limit lowered for the test), so no test allocates GBs.
The limits are in nasty/limits.py and docs/limits.md, which a test keeps in step.
"""
import gzip
import io
import json
import os
import re
import struct
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

import nasty
from nasty import limits as L
from nasty.cli import main
from nasty.data import from_arrays, from_torch_dataset, load_dataset, load_image, load_image_folder, read_idx
from nasty.errors import NastyError, NastyWarning

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from test_confirm import TINY, fake_evaluate  # noqa: E402  (a search without Ray: true quality + noise)


def refused(fn, *args, says=(), **kw) -> str:
    """`fn(*args)` raises a one-line NastyError containing every string in `says`."""
    with pytest.raises(NastyError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert msg and "\n" not in msg and len(msg) < 600, msg
    for s in says:
        assert s in msg, (s, msg)
    return msg


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_refuses(capsys, *argv, says=()):
    rc, out, err = cli(capsys, *argv)
    assert rc == 2 and err.startswith("nasty: error: ") and err.count("\n") == 1, (rc, err)
    for s in says:
        assert s in err, (s, err)
    return err


def within(seconds, fn, *args, on_hang=None, **kw):
    """fn(*args) in a thread that must end within `seconds` (a hang fails the test instead of the suite)."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if on_hang:
            on_hang()
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not end within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def image_folder(root: Path, classes=("a", "b"), n=5, size=8, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def png_claiming(path: Path, width: int, height: int):
    """A real small PNG whose header says width x height: Pillow opens it lazily, so a reader that
    trusted the header would decode (and allocate) the claimed size."""
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (4, 4), 7).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    path.write_bytes(bytes(data))


def idx_header(dims, code=0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


# ------------------------------------------------------------------ item 3: a FIFO in an image folder
def test_a_fifo_named_like_an_image_is_skipped_and_named(tmp_path):
    root = image_folder(tmp_path / "pets")
    fifo = root / "a" / "evil.png"
    os.mkfifo(fifo)
    (root / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")

    def unblock():                                   # a hung reader waits in open(): give it a writer
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    with pytest.warns(NastyWarning) as caught:
        data = within(60, load_image_folder, root, on_hang=unblock)
    assert len(data.train_y) + len(data.test_y) == 10
    said = " ".join(str(w.message) for w in caught)
    assert "skipped 2 files" in said and str(fifo) in said and "gone.png" in said and "\n" not in said
    assert str(fifo) in data.describe()["skipped"]


def test_every_reader_refuses_a_fifo_instead_of_blocking(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    refused(within, 30, load_image, fifo, (1, 8, 8), says=("a FIFO", "not an image file"))
    idx = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(idx)
    refused(within, 30, read_idx, idx, says=("a FIFO", "not a regular file"))
    from nasty.data import read_cifar_binary
    refused(within, 30, read_cifar_binary, idx, 1, says=("a FIFO",))
    cfg = tmp_path / "config.yaml"
    os.mkfifo(cfg)
    from nasty.search.settings import read_config
    refused(within, 30, read_config, cfg, says=("not a regular file",))


# ------------------------------------------------------------------ item 8: memory, bounded before allocating
def test_a_gzip_bomb_of_training_images_stops_at_the_size_its_header_says(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as z:      # 32 MB of zeros in ~30 KB behind a 10-image header
        z.write(idx_header((10, 28, 28)))
        for _ in range(32):
            z.write(bytes(2 ** 20))
    assert bomb.stat().st_size < 2 ** 20
    tracemalloc.start()
    try:
        msg = refused(read_idx, bomb, says=("holds more data than its header", "(10, 28, 28)"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2 ** 20, f"{peak} bytes allocated reading a bomb: not streamed ({msg})"


def test_an_idx_header_is_checked_against_the_memory_before_its_data_is_read(tmp_path):
    # a gzip that would expand past the limit (lowered for the test): refused from its header alone
    f = tmp_path / "t.gz"
    f.write_bytes(gzip.compress(idx_header((10, 28, 28)) + bytes(7840)))
    refused(read_idx, f, max_bytes=1000, says=("more than the 1000 bytes allowed", "corrupt, or too large"))
    assert read_idx(f, max_bytes=7840).shape == (10, 28, 28)
    # a header claiming 10^9 images with a short body: the real machine's limit, nothing allocated
    lie = tmp_path / "lie.gz"
    lie.write_bytes(gzip.compress(idx_header((10 ** 9, 28, 28)) + bytes(100)))
    tracemalloc.start()
    try:
        refused(read_idx, lie, says=("(1000000000, 28, 28) array its header announces", "would take"))
        assert tracemalloc.get_traced_memory()[1] < 2 ** 20
    finally:
        tracemalloc.stop()
    # as a dataset, the error also says how to get the real files
    d = tmp_path / "mnist"
    d.mkdir()
    for prefix, n in (("train", 10 ** 9), ("t10k", 10)):
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header((n, 28, 28)) + bytes(64)))
        (d / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_header((10,)) + bytes(10))
    refused(load_dataset, "mnist", d, says=("--data-dir",))


def test_huge_images_are_refused_from_their_headers(tmp_path):
    root = image_folder(tmp_path / "big")
    png_claiming(root / "a" / "0.png", 9000, 9000)                  # 81 M pixels: over MAX_IMAGE_PIXELS
    refused(load_image_folder, root, 64, says=("9000x9000", "67,108,864", "docs/limits.md"))
    refused(load_image, root / "a" / "0.png", (1, 8, 8), says=("9000x9000",))
    root = image_folder(tmp_path / "wide")
    for c in "ab":                                                  # 5000 a side: kept at their size, 4096 at most
        for i in range(5):
            png_claiming(root / c / f"{i}.png", 5000, 5000)
    refused(load_image_folder, root, says=("5000x5000", "4096", "--image-size"))


def test_the_images_array_is_checked_against_the_memory_before_it_is_allocated(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "pets", n=10)
    monkeypatch.setenv(L.MEMORY_ENV, "100000")
    refused(load_image_folder, root, 80, says=("20 images of 1x80x80", "97.7 KiB allowed", L.MEMORY_ENV))
    assert load_image_folder(root, 16).shape == (1, 16, 16)


def test_channel_statistics_of_4096_pixel_images_take_no_int64_copy_of_them():
    from nasty.data.dataset import _channel_stats
    x = np.random.default_rng(0).integers(0, 256, (3, 1, 4096, 4096), dtype=np.uint8)
    tracemalloc.start()
    try:
        mean, std = _channel_stats(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2 ** 20, peak                # one int64 copy of these images would be 400 MB
    f = x.astype(np.float64) / 255
    assert abs(mean[0] - f.mean()) < 1e-9 and abs(std[0] - f.std()) < 1e-9


def test_sixteen_bit_greys_are_scaled_without_an_int64_copy(tmp_path):
    from PIL import Image
    root = tmp_path / "g"
    for c, values in (("a", (0, 1, 2)), ("b", (65535, 65534, 65533))):
        (root / c).mkdir(parents=True)
        for i, v in enumerate(values):
            Image.fromarray(np.full((4, 4), v, dtype=np.uint16)).save(root / c / f"{i}.png")
    d = load_image_folder(root, test_fraction=0.34)
    assert set(np.unique(np.concatenate([d.train_x.ravel(), d.test_x.ravel()]))) == {0, 255}


def test_a_label_of_10_to_the_8_is_refused_before_100_million_class_names_are_made():
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y = np.arange(20) % 2
    y[0] = 10 ** 8
    msg = refused(within, 10, from_arrays, x, y, says=("100,000,000", "100,000", "renumber"))
    assert "docs/limits.md" in msg
    refused(from_arrays, x, np.arange(20) % 2, classes=[str(i) for i in range(L.MAX_CLASSES + 1)],
            says=("over the limit",))


class _Lying:
    """A map-style dataset whose len() says `n` (its items are 8x8 greys)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.zeros((1, 8, 8), np.float32), i % 2


class _BadLen(_Lying):
    def __len__(self):
        return -1


def test_a_dataset_whose_len_says_10_to_the_12_is_refused_before_allocating(monkeypatch):
    refused(within, 10, from_torch_dataset, _Lying(10 ** 12), says=("1,000,000,000,000", "limit"))
    monkeypatch.setenv(L.MEMORY_ENV, str(10 ** 9))          # the same on any machine, and nothing allocated
    refused(within, 10, from_torch_dataset, _Lying(10 ** 9), says=("1,000,000,000 labels alone",))
    tracemalloc.start()
    try:
        refused(within, 10, from_torch_dataset, _Lying(10 ** 8), says=("100,000,000 images of 1x8x8",))
        assert tracemalloc.get_traced_memory()[1] < 2 ** 20
    finally:
        tracemalloc.stop()
    refused(from_torch_dataset, _BadLen(3), says=("len() fails",))


def test_absurd_thread_counts_are_one_line_errors(capsys):
    n = L.max_threads() + 1
    cli_refuses(capsys, "train", "lenet5", "--threads", 100000, says=("--threads 100,000", "CPUs"))
    cli_refuses(capsys, "train", "lenet5", "--threads", n, says=(f"at most {L.max_threads():,}",))
    cli_refuses(capsys, "bench", "build", "--threads", 100000, "--out", "/nonexistent/x", says=("--threads",))
    cli_refuses(capsys, "latency", "lenet5", "--threads", 100000, says=("--threads",))


def test_a_billion_laughs_inside_a_known_setting_is_named_in_a_short_line(tmp_path, capsys):
    text = "budget:\n  - &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
        f"  - &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    (tmp_path / "laughs.yaml").write_text(text)
    from nasty.search.settings import Settings, check_types, read_config
    given = within(30, read_config, tmp_path / "laughs.yaml")                # shared, never expanded
    msg = refused(within, 30, check_types, Settings(**given), says=("setting budget (--budget) must be text",))
    assert len(msg) < 300, msg
    err = cli_refuses(capsys, "search", "--config", tmp_path / "laughs.yaml", "--space", "nb201mini",
                      says=("setting budget (--budget) must be text", "list"))
    assert len(err) < 300, err


def test_a_config_file_over_its_size_limit_is_refused_unread(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("budget: 5M\n" + "#" * L.MAX_CONFIG_BYTES)
    cli_refuses(capsys, "search", "--config", big, says=("over the limit of 1,000,000",))


# ------------------------------------------------------------------ item 9: checked before Ray starts
class _NoRay:
    """An executor that fails the test if a search gets as far as running trials."""

    def run(self, loop):
        raise AssertionError("the search started its trials: the check came too late")


def _settings(tmp_path, **kw):
    from nasty.search.settings import Settings
    base = dict(space=TINY, budget="20MFLOPs", trials=4, epochs=1, subset=500, val_subset=300, seed=3,
                confirm=0, runs_dir=str(tmp_path), name="r")
    return Settings(**{**base, **kw})


def _search(s, executor=None, **kw):
    from nasty.search.loop import SerialExecutor
    from nasty.search.runner import search
    return search(s, console=Console(file=io.StringIO()), live=False,
                  executor=executor or SerialExecutor(fake_evaluate), **kw)


@pytest.mark.parametrize("where, says", [
    ("/proc/nasty-runs/inside", "cannot create folders in /proc"),
    ("FILE/runs", "is a file, not a folder"),
])
def test_an_unwritable_runs_dir_is_refused_before_anything_starts(tmp_path, where, says):
    (tmp_path / "FILE").write_text("x")
    where = where.replace("FILE", str(tmp_path / "FILE"))
    refused(_search, _settings(tmp_path, runs_dir=where), _NoRay(), says=("--runs-dir", says))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_runs_dir_without_write_permission_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        refused(_search, _settings(tmp_path, runs_dir=str(ro / "runs")), _NoRay(), says=("cannot create folders",))
    finally:
        ro.chmod(0o700)


def test_a_runs_dir_with_too_little_free_space_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(L, "MIN_FREE_BYTES", 2 ** 62)
    refused(_search, _settings(tmp_path), _NoRay(), says=("free on its file system", "docs/limits.md"))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("controller, options, says", [
    ("nsga2", "population_size=1", "population_size=1 must be in [2, 100000]"),
    ("reinforce", "lr=1e308", "lr=1e+308 must be in (0, 10]"),
    ("tpe", "n_startup_trials=-5", "n_startup_trials=-5 must be in [0, 100000]"),
    ("reinforce", "hidden=1000000000", "hidden=1000000000"),
    ("tpe", "over_budget_value=NaN", "over_budget_value=nan"),
    ("evolution", "population=3,population=4", "given twice"),
])
def test_controller_options_out_of_range_are_refused_before_ray(capsys, tmp_path, controller, options, says):
    cli_refuses(capsys, "search", "--space", "nb201mini", "--budget", "1M", "--controller", controller,
                "--controller-options", options, "--runs-dir", tmp_path, says=(says,))
    assert not any(tmp_path.iterdir())


def test_every_declared_option_range_is_an_option_and_holds_its_default():
    from nasty.controllers import REGISTRY, user_options, within as inside
    declared = 0
    for name, cls in REGISTRY.items():
        options = user_options(name)
        for k, interval in getattr(cls, "OPTION_RANGES", {}).items():
            declared += 1
            assert k in options, (name, k)
            assert options[k] is None or inside(options[k], interval), (name, k, options[k], interval)
    assert declared >= 20
    assert inside(0.5, "[0, 1)") and not inside(1.0, "[0, 1)") and not inside(float("nan"), "[-10, 10]")


def test_disk_full_while_writing_study_db_is_one_line_and_resumable(tmp_path, monkeypatch):
    import sqlite3

    from nasty.search import study
    real = study.StudyLog.sync

    def full(self, *a, **kw):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(study.StudyLog, "sync", full)
    refused(_search, _settings(tmp_path), says=("no space left", "study.db", "--resume"))
    monkeypatch.setattr(study.StudyLog, "sync", real)
    summary = _search(_settings(tmp_path), resume=str(tmp_path / "r"))      # the advice works
    assert summary["counts"]["ok"] >= 1


def test_disk_full_mid_run_keeps_the_records_and_says_resume(tmp_path, monkeypatch):
    import errno

    from nasty.search.loop import SearchLoop

    def full(self, plots=True):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.folder.path / "leaderboard.json"))
    monkeypatch.setattr(SearchLoop, "write", full)
    refused(_search, _settings(tmp_path), says=("no space left", "leaderboard.json", "--resume"))
    lines = (tmp_path / "r" / "trials.jsonl").read_text().splitlines()
    # the records written before the disk filled are all there, whole (over-budget and screened
    # samples have no trial number; at least the trained trial the failed write followed has one)
    recs = [json.loads(x) for x in lines]
    assert recs and any(r["trial"] is not None for r in recs)


def _mount_tmpfs(path: Path, size: str) -> bool:
    import subprocess
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_real_full_disk_is_one_line_and_leaves_the_records(tmp_path, monkeypatch):
    import subprocess
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "400k"):
        pytest.skip("needs a tmpfs mount (root)")
    try:
        monkeypatch.setattr(L, "MIN_FREE_BYTES", 0)
        refused(_search, _settings(disk, trials=40, controller="tpe"), says=("no space left", "--resume"))
        # the disk (400 KB) holds the run's first files and some records before it fills
        for line in (disk / "r" / "trials.jsonl").read_text().splitlines(keepends=True)[:-1]:
            json.loads(line)                                     # every whole line is a record
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)     # lazily: SQLite may still hold study.db


# ------------------------------------------------------------------ item 9/12: damaged final checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real checkpoint of `nasty train` (lenet5, one epoch on 300 random 28x28 greys)."""
    tmp = tmp_path_factory.mktemp("ck")
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), np.arange(300) % 3)
    path = tmp / "ck.pt"
    with io.StringIO() as out, __import__("contextlib").redirect_stdout(out):
        nasty.train("lenet5", data=data, epochs=1, threads=1, save=str(path), val_subset=50)
    return path, data


@pytest.mark.parametrize("damage, says", [
    (lambda ck: dict(ck, epoch=99), "epoch 99 of 1"),
    (lambda ck: dict(ck, epoch=-1), "epoch -1 of 1"),
    (lambda ck: dict(ck, train=None), "training state ('train') is missing"),
    (lambda ck: {k: v for k, v in ck.items() if k != "model"}, "no weights"),
    (lambda ck: dict(ck, model={k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                                for k, v in ck["model"].items()}), "NaN or infinite"),
    (lambda ck: dict(ck, classes="10"), "class count '10'"),
    (lambda ck: dict(ck, mean=[float("nan")]), "normalisation mean"),
])
def test_a_damaged_final_checkpoint_is_refused_and_left_as_it_is(checkpoint, tmp_path, capsys, damage, says):
    from nasty.deploy import load_model
    path, data = checkpoint
    bad = tmp_path / "bad.pt"
    torch.save(damage(torch.load(path, weights_only=True)), bad)
    before = bad.read_bytes()
    with io.StringIO() as out, __import__("contextlib").redirect_stdout(out):
        refused(nasty.train, "lenet5", data=data, epochs=1, threads=1, save=str(bad), val_subset=50,
                says=(says, "--restart"))
    assert bad.read_bytes() == before
    if "train" not in says:                                   # predicting needs no training state
        refused(load_model, bad, says=(says,))
        png = tmp_path / "x.png"
        from PIL import Image
        Image.new("L", (28, 28), 3).save(png)
        cli_refuses(capsys, "predict", bad, png, says=(says,))
    with io.StringIO() as out, __import__("contextlib").redirect_stdout(out):   # the advice works
        nasty.train("lenet5", data=data, epochs=1, threads=1, save=str(bad), val_subset=50, restart=True)
    assert load_model(bad).info["epoch"] == 1


def test_predict_refuses_a_meta_tensor_and_images_of_another_shape(checkpoint):
    from nasty.deploy import load_model
    model = load_model(checkpoint[0])
    refused(model.predict, torch.empty(2, 1, 28, 28, device="meta"), says=("meta device",))
    refused(model.predict, np.zeros((2, 3, 28, 28), np.uint8), says=("(N, 1, 28, 28)", "(2, 3, 28, 28)"))
    refused(model.predict, [[1, 2], [3]], says=("cannot read the images",))
    assert len(model.predict(np.zeros((2, 1, 28, 28), np.uint8))) == 2


# ------------------------------------------------------------------ item 9: a damaged oneshot/supernet.pt
def test_a_supernet_checkpoint_that_cannot_be_restored_is_named_before_ray(tmp_path):
    from nasty.search.oneshot import check_checkpoint, checkpoint_problem
    from nasty.search.supernet import to_bytes
    assert "cannot be read" in checkpoint_problem(b"\x80\x02 torn")
    assert "lacks" in checkpoint_problem(to_bytes({"supernet": {}}))
    assert "'pool'" in checkpoint_problem(to_bytes({"supernet": {}, "run": {}, "warm_rng": [3, [1], None]}))
    f = tmp_path / "supernet.pt"
    f.write_bytes(b"torn")
    refused(check_checkpoint, f, says=("is damaged", "move", "away", "trains again"))


@pytest.mark.slow
def test_a_damaged_supernet_checkpoint_refuses_the_resume_untouched_and_the_advice_works(tmp_path):
    from nasty.search import oneshot
    from nasty.search.loop import SerialExecutor
    from nasty.search.settings import Settings
    s = _settings(tmp_path, space="nb201mini", budget="2MFLOPs", evaluator="supernet", controller="random",
                  time_budget=10, supernet_warmup=0.0, subset=800, val_subset=200, score_images=32, batch_size=32, confirm=1,
                  confirm_seeds=1, confirm_epochs=1, confirm_subset=800, trials=None)
    _search(s, SerialExecutor(oneshot.in_process))
    folder = tmp_path / "r"
    ck = folder / "oneshot" / "supernet.pt"
    assert ck.is_file()
    ck.write_bytes(ck.read_bytes()[:len(ck.read_bytes()) // 2])           # torn, as by a full disk
    def files():
        return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and "lock" not in p.name}
    before = files()
    again = Settings(time_budget=10)
    refused(_search, again, _NoRay(), resume=str(folder), says=(str(ck), "move"))
    assert files() == before
    ck.rename(tmp_path / "supernet.pt.damaged")                          # what the message says to do
    _search(again, SerialExecutor(oneshot.in_process), resume=str(folder))
    assert ck.is_file() and json.loads((folder / "oneshot.json").read_text())["resumed_from"] is None
    trials = folder / "trials.jsonl"
    assert trials.read_bytes().startswith(before.get(trials, b"")) and (folder / "best.json").is_file()


# ------------------------------------------------------------------ item 10: Python API types
def test_python_api_types_are_one_line_errors(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (200, 8, 8), dtype=np.uint8)
    y = np.arange(200) % 2
    kw = dict(trials=1, epochs=1, confirm=0, runs_dir=str(tmp_path))
    refused(nasty.search, "nb201mini", "1M", data={"x": x, "y": y}, **kw, says=("got a dict", "(d['x'], d['y'])"))
    refused(nasty.search, "nb201mini", "1M", data=(x, y), **{**kw, "runs_dir": 5}, says=("runs_dir= must be text",))
    refused(nasty.search, "nb201mini", "1M", data=(x, y), **{**kw, "seed": True}, says=("seed=",))
    meta = torch.empty(200, 1, 8, 8, device="meta")
    refused(nasty.search, "nb201mini", "1M", data=(meta, y), **kw, says=("meta device",))
    refused(from_torch_dataset, {0: (x[0], 0)}, says=("not a dataset of (image, label) items",))
    assert not any(tmp_path.iterdir())


def test_nasty_train_from_python_refuses_values_of_the_wrong_type():
    refused(nasty.train, 5, says=("not a int",))
    refused(nasty.train, "lenet5", lr="0.1", says=("--lr must be a number",))
    refused(nasty.train, "lenet5", epochs="3", says=("--epochs must be a whole number",))
    refused(nasty.train, "lenet5", val_fraction=None, says=("--val-fraction must be a number",))
    refused(nasty.train, "lenet5", data={"x": 1}, says=("got a dict",))


def test_controller_options_as_a_dict_are_accepted(tmp_path):
    from nasty.controllers import format_options, parse_options
    s = _settings(tmp_path, controller="evolution", controller_options={"population": 4, "sample": 2}, trials=5)
    assert s.controller_options == "population=4,sample=2"
    _search(s)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["controller_options"] == "population=4,sample=2"
    ctrl = json.loads((tmp_path / "r" / "controller.json").read_text())
    assert ctrl["told"] == len((tmp_path / "r" / "trials.jsonl").read_text().splitlines())
    opts = {"n_startup_trials": 3, "multivariate": False, "note": "a b", "x": None, "r": 0.25}
    assert parse_options(format_options(opts), "t") == opts
    refused(format_options, {"k": "a,b"}, says=("','",))
    refused(format_options, {"k": [1]}, says=("number, true/false or text",))
    refused(format_options, {"not a name": 1}, says=("not a name",))


# ------------------------------------------------------------------ item 11: benchmark tables
@pytest.fixture(scope="module")
def table_doc():
    from nasty.nasbench.table import TABLE
    return json.loads(Path(str(TABLE)).read_text())


@pytest.mark.parametrize("row, key, value, says", [
    (100, "val_acc", float("nan"), "val_acc nan"),
    (100, "val_acc", "0.9", "val_acc '0.9'"),
    (7, "test_acc", 1.5, "test_acc 1.5"),
    (7, "val_acc", None, "val_acc None"),
    (5, "ops", ["bogus"] * 6, "has ops"),
    (5, "val_curve", [0.1, "x"], "val_curve"),
    (5, "macs", -3, "macs -3"),
])
def test_a_benchmark_table_row_that_is_wrong_is_named(tmp_path, capsys, table_doc, row, key, value, says):
    from nasty.nasbench.table import load_table
    doc = json.loads(json.dumps(table_doc))
    doc["rows"][row][key] = value
    (tmp_path / "table.json").write_text(json.dumps(doc))
    refused(load_table, tmp_path, says=(f"row {row}", says, "nasty bench build"))
    cli_refuses(capsys, "bench", "run", "--table", tmp_path / "table.json", "--trials", 5, "--seeds", 1,
                "--controllers", "random", "--out", tmp_path / "out", says=(f"row {row}",))
    assert not (tmp_path / "out").exists()


def test_a_benchmark_table_missing_or_repeating_a_cell_is_named(tmp_path, table_doc):
    from nasty.nasbench.table import load_table
    doc = json.loads(json.dumps(table_doc))
    doc["rows"][3] = dict(doc["rows"][4])
    (tmp_path / "table.json").write_text(json.dumps(doc))
    refused(load_table, tmp_path, says=("row 4 repeats cell",))


def test_a_torn_benchmark_progress_line_is_cut_and_a_damaged_one_named(tmp_path):
    from nasty.nasbench.table import read_progress
    f = tmp_path / "partial.jsonl"
    f.write_text('{"live": "a", "val_acc": 0.5}\n{"live": "b", "va')
    assert read_progress(f) == [{"live": "a", "val_acc": 0.5}]
    assert f.read_text() == '{"live": "a", "val_acc": 0.5}\n'
    f.write_text('{"live": "a"}\n[1, 2]\n')
    refused(read_progress, f, says=("line 2 is not a record",))


# ------------------------------------------------------------------ item 12: refused or warned, one line each
def test_a_genotype_cut_before_its_head_is_built_with_a_one_line_warning(tmp_path, capsys):
    rc, text, _ = cli(capsys, "show", "resnet18", "--format", "genotype")
    cut = "\n".join(line for line in text.splitlines() if not line.startswith("head")) + "\n"
    (tmp_path / "cut.nasty").write_text(cut)
    for command in ("show", "build"):
        rc, out, err = cli(capsys, command, tmp_path / "cut.nasty")
        assert rc == 0 and out, (command, err)
        assert err.startswith("nasty: warning: ") and err.count("\n") == 1 and "no head line" in err, err
    rc, out, err = cli(capsys, "show", "resnet18")
    assert rc == 0 and not err


def test_duplicate_keys_are_refused(tmp_path, capsys):
    (tmp_path / "d.yaml").write_text("space: nb201mini\nbudget: 5M\nbudget: 6M\n")
    cli_refuses(capsys, "search", "--config", tmp_path / "d.yaml", says=("'budget' is given twice (line 3)",))
    (tmp_path / "d.json").write_text('{"space": "nb201mini", "budget": "5M", "budget": "6M"}')
    cli_refuses(capsys, "search", "--config", tmp_path / "d.json", says=("'budget' is given twice",))
    from nasty.final import FinalError, split_sets
    refused(split_sets, ["N=2,F=16", "N=4"], says=("--set N is given twice (N=2 and N=4)",))
    with pytest.raises(FinalError):
        split_sets("N=2,N=2")
    assert split_sets(["edge=prev,in", "N=2"]) == [("edge", "prev,in"), ("N", "2")]


def test_flags_accepted_but_wrong_are_refused(capsys, tmp_path):
    cli_refuses(capsys, "train", "lenet5", "--image-size", 0, says=("--image-size must be at least 1",))
    cli_refuses(capsys, "search", "--space", "nb201mini", "--budget", "1M", "--image-size", 0, says=("--image-size",))
    cli_refuses(capsys, "search", "--space", "nb201mini", "--budget", "1M", "--subset", 3000, "--confirm-subset",
                1000, "--runs-dir", tmp_path, says=("--confirm-subset 1000 is below --subset 3000",))
    cli_refuses(capsys, "search", "--space", "nb201mini", "--budget=--", says=("--budget needs a value",))


def test_arrays_that_cannot_train_a_classifier_are_refused():
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    two = np.arange(20) % 2
    refused(from_arrays, x, np.zeros(20, int), says=("one class", "at least two"))
    refused(from_arrays, x, np.zeros(20, int), classes=["cat", "dog"], says=("every training image has the one class",))
    refused(from_arrays, x, two, classes=["cat", "cat"], says=("'cat' is given twice",))
    refused(from_arrays, x, two, classes={0: "cat", 1: "dog"}, says=("not a dict",))
    refused(from_arrays, x, two, x, np.arange(20) % 3, says=("test label 2", "no training images"))
    refused(from_arrays, x, two, val_x=x[:4], val_y=np.array([0, 1, 2, 2]), classes=["a", "b", "c"],
            says=("validation label 2",))
    with pytest.warns(NastyWarning, match="1 of the 3 classes have no training images"):
        assert from_arrays(x, two, classes=["a", "b", "c"]).num_classes == 3


def test_seed_true_is_refused_everywhere():
    from nasty.data import split_train_val
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    refused(from_arrays, x, np.arange(20) % 2, seed=True, says=("True",))
    d = from_arrays(x, np.arange(20) % 2)
    refused(split_train_val, d, 0.2, seed=True, says=("True",))
    refused(nasty.train, "lenet5", data=d, seed=True, says=("--seed must be a whole number",))


def test_data_and_dataset_together_are_refused(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (200, 8, 8), dtype=np.uint8)
    refused(nasty.search, "nb201mini", "1M", data=(x, np.arange(200) % 2), dataset="cifar10", trials=1,
            runs_dir=str(tmp_path), says=("both data= and dataset=",))
    refused(_search, _settings(tmp_path, dataset="cifar10"), _NoRay(), data=(x, np.arange(200) % 2),
            says=("--dataset cifar10",))


# ------------------------------------------------------------------ the limits page
def test_docs_limits_lists_every_limit_with_its_value():
    page = (TESTS.parent / "docs" / "limits.md").read_text()
    for name, value in [("MAX_IMAGE_SIDE", L.MAX_IMAGE_SIDE), ("MAX_IMAGE_PIXELS", L.MAX_IMAGE_PIXELS),
                        ("MAX_CLASSES", L.MAX_CLASSES), ("MAX_IMAGES", L.MAX_IMAGES),
                        ("MAX_CONFIG_BYTES", L.MAX_CONFIG_BYTES), ("MAX_THREADS_PER_CPU", L.MAX_THREADS_PER_CPU)]:
        assert f"`{name}`" in page and f"{value:,}" in page, (name, value)
    assert "64 MiB" in page and L.MIN_FREE_BYTES == 64 * 2 ** 20
    assert L.MEMORY_ENV in page
    documented = set(re.findall(r"`(MAX_[A-Z_]+|MIN_[A-Z_]+)`", page))
    declared = {k for k in vars(L) if re.fullmatch(r"(MAX|MIN)_[A-Z_]+", k)}
    assert declared <= documented, declared - documented
