"""`nasty.search(...)`: the Python API runs the same search as the CLI, on a Space object or a
path, on a named dataset or in-memory arrays, and returns a result object; `--target data`
budgets the network at the data's own input; `nasty --version`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nasty
from nasty.cli import main
from nasty.errors import NastyError
from nasty.space import load_space

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")
SMALL = dict(trials=3, epochs=1, subset=400, val_subset=200, time_budget=600, seed=4, confirm=0)


def _arrays(n=600, size=20, classes=3, seed=0):
    """Images whose class is visible in them (a bright quadrant per class), uint8 NHWC."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    for i, c in enumerate(y):
        q = size // 2
        x[i, (c // 2) * q:(c // 2 + 1) * q, (c % 2) * q:(c % 2 + 1) * q] += 150
    return x, y


def test_search_from_python_with_a_space_object_and_arrays(ray_local, tmp_path):
    space = load_space(TINY)
    x, y = _arrays()
    r = nasty.search(space, budget="20MFLOPs", data=(x[:500], y[:500], x[500:], y[500:]), target="data",
                     runs_dir=str(tmp_path), name="api", **SMALL)
    assert r.run == tmp_path / "api" and len([t for t in r.records if t.status.counted]) == 3
    cfg = json.loads((r.run / "config.json").read_text())
    assert cfg["dataset"] == "in-memory" and cfg["data"]["kind"] == "arrays"
    assert cfg["data"]["shape"] == [3, 20, 20] and cfg["space"] == str(Path(TINY).resolve())
    assert cfg["target"] == {"input": [3, 20, 20], "classes": 3}            # --target data
    if r.best is not None:
        assert r.genotype.input == (3, 20, 20) and r.genotype.classes == 3
        assert nasty.cost(r.genotype).macs == r.best.target.macs <= 20_000_000
        assert r.leaderboard[0] == r.best and r.study().best_trial.values[0] == r.best.val_acc
    # an in-memory run resumes only with its data given again
    with pytest.raises(NastyError, match="with the same data"):
        nasty.search(resume=r.run, trials=4)


def test_search_from_python_by_path_resumes_from_the_cli(ray_local, tmp_path, capsys):
    r = nasty.search(TINY, budget="20MFLOPs", runs_dir=str(tmp_path), name="bypath", **SMALL)
    assert r.summary["run"] == str(tmp_path / "bypath")
    assert main(["search", "--resume", str(r.run), "--trials", "4"]) == 0
    assert len([t for t in nasty.search.RunFolder(r.run).records() if t.status.counted]) == 4


def test_target_input_and_classes_move_the_budget(tmp_path):
    from nasty.search.budget import Budget, preflight
    from nasty.search.runner import with_target
    from nasty.search.settings import Settings
    space = load_space(TINY)

    class Data:
        shape, num_classes = (1, 28, 28), 10

    moved = with_target(space, Settings(target_input="3x32x32", target_classes=12), Data)
    assert moved.target.input == (3, 32, 32) and moved.target.classes == 12
    c = preflight(moved, Budget.parse("20M"), fit=False)
    assert c.genotype.input == (3, 32, 32) and c.genotype.classes == 12
    assert with_target(space, Settings(target_kind="data"), Data).target.input == (1, 28, 28)
    assert with_target(space, Settings(), Data) is space


@pytest.mark.parametrize("kw, needle", [
    (dict(trails=3), "did you mean 'trials'"),
    (dict(target_input="3x64"), "must be CxHxW"),
    (dict(target_kind="data", target_classes=3), "leave out --target-input"),
    (dict(target="data", target_classes=3), "leave out --target-input"),      # target= is --target
    (dict(target="dat"), "must be 'space' or 'data'"),
    (dict(target="data", target_kind="space"), "give target= only"),
])
def test_bad_api_settings_are_one_line_errors(tmp_path, kw, needle):
    with pytest.raises(NastyError, match=needle):
        nasty.search(TINY, budget="20M", runs_dir=str(tmp_path), **kw)


def test_a_config_file_says_target_as_the_flag_does(tmp_path):
    from nasty.search.settings import read_config
    f = tmp_path / "c.yaml"
    f.write_text("target: data\nbudget: 20M\n")
    assert read_config(f) == {"target_kind": "data", "budget": "20M"}
    f.write_text('{"target": {"input": [3, 8, 8], "classes": 2}, "target_kind": "data"}')    # a run's config.json
    assert read_config(f.rename(tmp_path / "c.json")) == {"target_kind": "data"}


def test_version(capsys):
    assert nasty.__version__ and nasty.__version__ != "0+unknown"
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"nasty {nasty.__version__}"


def test_nasnet_at_the_datas_input_is_a_small_image_network():
    """--target data on 28x28 images: the full-size cells on NASNet's CIFAR skeleton (no ImageNet stem)."""
    from nasty.space import FixedTrial, NetSpec
    import dataclasses
    space = load_space("nasnet")
    a = space.canonical["nasnet_a"]
    small = dataclasses.replace(space, target=NetSpec(False, (1, 28, 28), 10))
    g = small.genotype(FixedTrial(a))
    assert g.input == (1, 28, 28) and nasty.cost(g).macs > nasty.cost(small.genotype(FixedTrial(a), proxy=True)).macs
    assert nasty.cost(space.genotype(FixedTrial(a))).macs == nasty.cost("nasnet_mobile").macs
