"""A search on a small data set of one's own (issue 19): a few hundred pictures in an ImageFolder.

The trials are scored only after their BatchNorm statistics are recomputed (train.recalibrate_bn):
with the running averages a few steps leave, a deep proxy scores exactly chance whatever it
learnt. The guards (search/guards.py) say when every trial is at chance, when the validation split
is too small to rank, and the images each stage really used, in the summary, best.json and
report.html."""
import io
import json
import random
import shutil

import pytest
from rich.console import Console

import nasty.search.runner as runner
from nasty.search.folder import RunFolder
from nasty.search.guards import above_chance, image_counts, standard_error
from nasty.search.loop import SerialExecutor
from nasty.search.settings import Settings
from nasty.search.standalone import evaluate, make_payload
from shapes import SHAPES, make_shapes

LOAD_DATA = runner.load_data

# Ten BatchNorm layers: deep enough that running statistics left by six steps put every trial at chance.
DEEP = '''
import nasty
from nasty.space import space


@space(target=dict(input=(3, 32, 32), classes=3), proxy=dict(input=(3, 32, 32), classes=3))
def deep(t, net):
    width = t.choice("width", (8, 16))
    k = t.choice("kernel", (3, 5))
    c, h, w = net.input
    def convs(n):
        return " ".join([f"conv{k}x{k} c={n} bn relu"] * 3)
    return nasty.parse(f"net deep input {c}x{h}x{w} classes {net.classes}\\n"
                       f"stem  conv3x3 c={width} bn relu\\n"
                       f"stage {convs(width)} maxpool2x2\\n"
                       f"stage {convs(2 * width)} maxpool2x2\\n"
                       f"stage {convs(4 * width)} maxpool2x2\\n"
                       "head  gap flatten fc c=classes\\n")
'''


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    """180 pictures of 3 shapes at 32 px, PNG and JPEG: 108 train, 36 validation, 36 test."""
    root = tmp_path_factory.mktemp("own")
    make_shapes(root / "shapes", per_class=60, size=32)
    (root / "deep.py").write_text(DEEP)
    return root


def in_process(monkeypatch) -> SerialExecutor:
    """An executor that runs the real evaluator (standalone.evaluate) in this process, on the images
    the search loads (kept as the runner's payload is made)."""
    payload = {}

    def keep(s, data=None):
        data, tr, va = LOAD_DATA(s, data)
        payload.update(make_payload(data, tr, va, *runner.confirmation_indices(s, data, tr, va)))
        return data, tr, va

    monkeypatch.setattr(runner, "load_data", keep)
    return SerialExecutor(lambda c, rep: evaluate(c, payload, rep))


def small_search(root, data_dir, name, monkeypatch, **kw):
    """A real search (runner, loop, confirmation, evaluator) with the trials run in this process."""
    s = Settings(space=str(root / "deep.py"), trials=3, epochs=3, batch_size=32, lr=0.05, dataset="imagefolder",
                 data_dir=str(data_dir), val_fraction=0.25, seed=0, runs_dir=str(root / "runs"), name=name, confirm=1,
                 confirm_seeds=1, time_budget=600, **kw)
    summary = runner.search(s, console=Console(file=io.StringIO()), live=False, executor=in_process(monkeypatch))
    folder = root / "runs" / name
    return summary, [r for r in RunFolder(folder).records() if r.status.counted], folder


@pytest.mark.slow
def test_recomputed_bn_statistics_lift_a_small_imagefolder_search_above_chance(shapes_dir, monkeypatch):
    # before issue 19: scored with the running statistics six steps leave, every trial sits at 1/3
    summary, recs, folder = small_search(shapes_dir, shapes_dir / "shapes", "running", monkeypatch, precise_bn=0)
    n_val = summary["images"]["search"]["val"]
    before = [r.val_acc for r in recs]
    assert len(before) == 3 and not any(above_chance(a, 1 / 3, n_val) for a in before), before
    chance = [w for w in summary["warnings"] if "chance" in w]
    assert len(chance) == 1 and "0.3333 = 1/3" in chance[0]
    assert chance[0] in json.loads((folder / "best.json").read_text())["warnings"]
    assert "every trained trial (3) scored at chance" in (folder / "report.html").read_text()

    # now: the same weights, scored after recomputing the statistics on training images
    summary, recs, folder = small_search(shapes_dir, shapes_dir / "shapes", "recalibrated", monkeypatch)
    after = [r.val_acc for r in recs]
    assert sum(above_chance(a, 1 / 3, n_val) for a in after) >= 2 and sum(after) / 3 > sum(before) / 3 + 0.25, after
    assert not [w for w in summary["warnings"] if "chance" in w]
    best = json.loads((folder / "best.json").read_text())
    assert above_chance(best["confirmed"]["val_acc"], 1 / 3, n_val)       # the confirmation too
    assert above_chance(best["test_acc"], 1 / 3, 36)                         # and the winner's test accuracy

    # the counts everywhere are the images really used, not the settings' upper bounds (6,000 / 2,000)
    images = {"search": {"train": 108, "val": 36}, "confirm": {"train": 108, "val": 36}, "test": 36, "classes": 3,
              "chance": pytest.approx(1 / 3)}
    assert summary["images"] == images and best["images"] == images
    assert json.loads((folder / "config.json").read_text())["images"] == images
    page = (folder / "report.html").read_text()
    counts = "108 training and 36 validation images per trial, 36 test images"
    assert counts in page and "6,000" not in page and "6000" not in page
    # 36 validation images cannot rank: the warning gives the standard error at that size
    small = [w for w in summary["warnings"] if "validation split has only 36 images" in w]
    assert len(small) == 1 and f"±{100 * standard_error(0.5, 36):.1f} pp" in small[0]


@pytest.mark.slow
def test_the_chance_warning_fires_on_shuffled_labels(shapes_dir, monkeypatch):
    shuffled = shapes_dir / "shuffled"
    files = sorted((shapes_dir / "shapes").glob("*/*"))
    labels = [SHAPES[i % 3] for i in range(len(files))]
    random.Random(0).shuffle(labels)
    for f, label in zip(files, labels):
        (shuffled / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, shuffled / label / f"{f.parent.name}_{f.name}")
    summary, recs, folder = small_search(shapes_dir, shuffled, "shuffled", monkeypatch)
    assert len(recs) == 3 and all(r.val_acc is not None for r in recs)
    chance = [w for w in summary["warnings"] if "scored at chance level" in w]
    assert len(chance) == 1 and "coin toss" in chance[0]
    assert chance[0] in json.loads((folder / "best.json").read_text())["warnings"]
    assert "scored at chance level" in (folder / "report.html").read_text()


def test_above_chance_is_an_exact_binomial_test():
    # 10 of 15 right with 3 classes: a guess does that with p = 0.0085; 9 of 15: p = 0.031
    assert above_chance(10 / 15, 1 / 3, 15) and not above_chance(9 / 15, 1 / 3, 15)
    assert not above_chance(1 / 3, 1 / 3, 15) and not above_chance(0.2, 1 / 3, 15)
    # 2,000 validation images of 10 classes: 233 right has p = 0.0087, 232 p = 0.0106 (exact sums)
    assert above_chance(0.1165, 0.1, 2000) and not above_chance(0.116, 0.1, 2000)
    assert standard_error(0.5, 100) == pytest.approx(0.05)


def test_image_counts_are_the_rows_a_trial_and_a_confirmation_use():
    import numpy as np

    from nasty.data import from_arrays
    x = np.random.default_rng(0).integers(0, 255, (50, 8, 8), dtype=np.uint8)
    y = np.array([0] * 30 + [1] * 20)
    data = from_arrays(x, y, x[:7], y[:7])
    c = image_counts(np.arange(20), np.arange(40, 50), np.arange(20, 30), np.arange(30, 35), data)
    assert c == {"search": {"train": 20, "val": 10}, "confirm": {"train": 30, "val": 15}, "test": 7, "classes": 2,
                 "chance": 1.0}                     # rows 40-49 are all class 1: always guessing 1 scores 100 %
