"""Our NAS benchmark: the cell space, building the table, simulating controllers on it."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from nasty import cost
from nasty.nasbench import all_archs
from nasty.nasbench.simulate import parse_spec, simulate
from nasty.nasbench.table import TABLE, build_table, load_table
from nasty.searchspaces import nb201mini as space
from nasty.space import FixedTrial
from nasty.cli import main
from nasty.errors import NastyError

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def test_space_has_729_cells_and_pruning_is_sound():
    archs = all_archs()
    assert len(archs) == 3 ** 6 == len(set(archs))
    lives = {space.live_edges(a) for a in archs}
    assert len(lives) == 291
    for a in random.Random(0).sample(archs, 60):
        live = space.live_edges(a)
        assert space.live_edges(live) == live                 # idempotent
        assert space.genotype_text(a) == space.genotype_text(live)
    # an edge out of a dead node is dropped; the all-none cell outputs zero
    assert space.live_edges(("none", "none", "conv3x3", "skip", "skip", "none")) == \
        ("none", "none", "none", "skip", "none", "none")
    assert "scale v=0" in space.genotype_text(("none",) * 6)


def test_space_decisions_and_costs():
    values, g = space.nb201mini.sample(FixedTrial(dict(zip(space.EDGE_NAMES, ["conv3x3"] * 6))))
    assert list(values) == list(space.EDGE_NAMES)
    full = cost(g)
    none = cost(space.arch_genotype(("none",) * 6))
    assert full.macs > none.macs and full.params > none.params
    assert space.arch_str(["a", "b", "c", "d", "e", "f"]) == "|a~0|+|b~0|c~1|+|d~0|e~1|f~2|"


def _fake_table(path: Path, complete=True):
    rng = random.Random(1)
    w = {e: {o: rng.random() for o in space.OPS} for e in space.EDGE_NAMES}
    rows = []
    for a in all_archs():
        live = space.live_edges(a)
        v = 0.5 + 0.05 * sum(w[e][o] for e, o in zip(space.EDGE_NAMES, live))
        rows.append({"arch": space.arch_str(a), "ops": list(a), "live": space.arch_str(live), "val_acc": v,
                     "test_acc": v - 0.01 * rng.random(), "params": 1, "macs": 1,
                     "val_curve": [v - 0.2 + 0.05 * rng.random(), v - 0.05 + 0.02 * rng.random(), v]})
    if not complete:
        rows = rows[:100]
    path.mkdir(parents=True, exist_ok=True)
    (path / "table.json").write_text(json.dumps({"info": {}, "rows": rows}))
    return path


@pytest.mark.parametrize("name", ["random", "evolution", "reinforce", "tpe", "nsga2"])
def test_simulate_each_controller(tmp_path, name):
    table = load_table(_fake_table(tmp_path))
    r = simulate(table, name, trials=20, seed=3, workers=2)
    assert len(r["best_val"]) == 20
    assert all(b >= a for a, b in zip(r["best_val"], r["best_val"][1:]))     # best-so-far never drops
    opt = max(x["val_acc"] for x in table["rows"])
    assert all(v <= opt for v in r["best_val"])


def test_bench_run_writes_plot_and_table(tmp_path, capsys):
    t = _fake_table(tmp_path / "t")
    assert main(["bench", "run", "--table", str(t), "--controllers", "random,evolution", "--trials", "12",
                 "--seeds", "3", "--at", "5,12", "--out", str(tmp_path / "o")]) == 0
    out = tmp_path / "o"
    assert (out / "regret.png").stat().st_size > 10_000
    md = (out / "results.md").read_text()
    assert "regret@5" in md and "| evolution |" in md
    res = json.loads((out / "results.json").read_text())
    assert len(res["controllers"]["random"]["regret_mean"]) == 12


def test_bench_run_bad_input(tmp_path, capsys):
    t = _fake_table(tmp_path / "t")
    assert main(["bench", "run", "--table", str(t), "--controllers", "bogus"]) == 2
    assert "unknown controller 'bogus'" in capsys.readouterr().err
    assert main(["bench", "run", "--table", str(t), "--controllers", "compound"]) == 2
    assert "cannot search the bench" in capsys.readouterr().err
    assert main(["bench", "run", "--table", str(_fake_table(tmp_path / "p", complete=False))]) == 2
    assert "lacks 629 of 729" in capsys.readouterr().err
    assert main(["bench", "run", "--table", str(tmp_path / "none")]) == 2
    assert "nasty bench build" in capsys.readouterr().err


@pytest.mark.skipif(not FMNIST.exists(), reason="needs dataset-fashion-mnist")
def test_build_a_tiny_table_and_resume(tmp_path):
    recipe = {"epochs": 1, "train_subset": 256, "val_subset": 256, "test_subset": 256}
    logs = []
    info = build_table(tmp_path, recipe, limit=2, log=logs.append)
    assert not info["complete"] and info["rows"] > 2            # 2 networks stand for several cells
    doc = json.loads((tmp_path / "table.json").read_text())
    row = doc["rows"][0]
    assert set(row) >= {"arch", "val_acc", "test_acc", "params", "macs"}
    assert 0 <= row["val_acc"] <= 1 and row["macs"] > 0
    assert (tmp_path / "table.csv").read_text().startswith("arch,live,val_acc,test_acc,params,macs")
    assert doc["info"]["recipe"]["epochs"] == 1 and "machine" in doc["info"]
    logs.clear()
    build_table(tmp_path, recipe, limit=2, log=logs.append)
    assert "2 already trained" in logs[0] and len(logs) == 2     # nothing retrained


@pytest.mark.skipif(not TABLE.is_file(), reason="the table is not built")
def test_stored_table_is_complete_and_consistent():
    table = load_table()
    rows = table["rows"]
    assert len(rows) == 729 and table["info"]["complete"]
    by_live = {}
    for r in rows:
        assert 0 < r["val_acc"] <= 1 and 0 < r["test_acc"] <= 1
        by_live.setdefault(r["live"], set()).add((r["val_acc"], r["test_acc"]))
    assert all(len(v) == 1 for v in by_live.values())            # equivalent cells share one training


def test_controller_specs_and_dedupe(tmp_path):
    assert parse_spec("tpe:multivariate=false:n_startup_trials=5") == \
        ("tpe", {"multivariate": False, "n_startup_trials": 5})
    with pytest.raises(NastyError, match="key=value"):
        parse_spec("tpe:multivariate")
    table = load_table(_fake_table(tmp_path))
    r = simulate(table, "evolution:population=5:sample=2", trials=40, seed=0, dedupe=True)
    assert len(set(r["archs"])) == 40                 # every counted trial is a new cell
    assert main(["bench", "run", "--table", str(tmp_path), "--controllers", "tpe:multivarate=1"]) == 2


def test_multi_fidelity_schedulers_on_the_table(tmp_path):
    """ASHA and Hyperband stop trials at epoch milestones: more trials start for the same epochs,
    every pick is a fully trained trial, and the costs add up."""
    from nasty.nasbench.fidelity import _brackets, run_fidelity_benchmark, simulate_scheduled
    assert _brackets("asha", 3)[0] == [[1, 2]] and _brackets("hyperband", 3)[0] == [[1], []]
    assert _brackets("fifo", 3) == ([[]], [1.0])
    table = load_table(_fake_table(tmp_path))
    fifo = simulate_scheduled(table, "random", "fifo", 90, seed=1)
    asha = simulate_scheduled(table, "random", "asha", 90, seed=1)
    assert fifo["trials"] == fifo["full"] == 30 and len(fifo["best_val"]) == 90
    assert asha["trials"] > 30 and asha["full"] < asha["trials"]            # stopped trials cost less
    opt = max(r["val_acc"] for r in table["rows"])
    assert all(v <= opt for v in asha["best_val"] if v > -1)
    bohb = simulate_scheduled(table, "tpe", "hyperband", 60, seed=2)        # TPE hears the pruned curves
    assert bohb["trials"] >= 20
    res = run_fidelity_benchmark(tmp_path, ("random",), ("fifo", "asha"), 60, seeds=3, at=(30, 60),
                                 out_dir=tmp_path / "out", log=lambda s: None)
    assert set(res["runs"]) == {"random+fifo", "random+asha"} and (tmp_path / "out" / "fidelity.md").is_file()
    assert main(["bench", "run", "--table", str(tmp_path), "--controllers", "random", "--schedulers", "asha",
                 "--budget-epochs", "30", "--seeds", "2", "--out", str(tmp_path / "cli")]) == 0
