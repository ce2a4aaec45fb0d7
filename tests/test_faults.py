"""Fault injection with real Ray Tune trials: a trial that raises, one whose loss becomes
NaN, one that runs out of memory (simulated: torch.OutOfMemoryError from inside the proxy's
forward) and one whose worker process is SIGKILLed. Each is recorded in the run folder as
failed with its reason, the controller is told, and the search completes with the other
trials trained. The killed worker is retried first (TRIAL_RETRIES times), as a lost node would be. No trial over the budget is ever trained."""
import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from nasty.controllers import RandomController
from nasty.search.ray_backend import TRIAL_RETRIES
from nasty.search.runner import search
from nasty.search.settings import Settings
from nasty.search.standalone import FAULT_ENV

FAULTS = str(Path(__file__).parent / "spaces" / "faults.py")
BUDGET = 20_000_000


@pytest.fixture(scope="module")
def ray_with_faults():
    """A local Ray whose workers see NASTY_FAULT_INJECT=1 (they inherit the driver's environment)."""
    from nasty.search.ray_backend import quiet_ray
    quiet_ray()
    import ray
    old = os.environ.get(FAULT_ENV)
    os.environ[FAULT_ENV] = "1"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=200 * 2**20)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop(FAULT_ENV, None)
    else:
        os.environ[FAULT_ENV] = old


def test_every_kind_of_failing_trial_is_recorded_and_the_search_completes(ray_with_faults, tmp_path, monkeypatch):
    told = []
    original = RandomController.tell

    def spy(self, trial, result):
        told.append((dict(trial.values), result))
        return original(self, trial, result)

    monkeypatch.setattr(RandomController, "tell", spy)
    # seed 7 draws, among its first 7 within-budget samples: nan, ok, kill, raise, ok, oom, nan
    s = Settings(space=FAULTS, budget="20MFLOPs", trials=7, epochs=1, subset=1000, val_subset=300, batch_size=64,
                 lr=0.05, time_budget=600, seed=7, runs_dir=str(tmp_path), name="faults", confirm=0,
                 screen=0)                 # unscreened: the seed's sequence of faults is what trains
    summary = search(s, console=Console(file=io.StringIO(), width=200), live=False)
    folder = tmp_path / "faults"
    recs = [json.loads(l) for l in (folder / "trials.jsonl").read_text().splitlines()]
    trials = [r for r in recs if r["status"] != "rejected"]
    rejected = [r for r in recs if r["status"] == "rejected"]

    # the search completed: every trial asked for has a final record, exactly once
    assert sorted(r["trial"] for r in trials) == list(range(7))
    assert {r["status"] for r in trials} <= {"ok", "failed"}
    by_mode = {}
    for r in trials:
        by_mode.setdefault(r["decisions"]["fault"], []).append(r)
    assert set(by_mode) == {"ok", "nan", "raise", "oom", "kill"}, "the seed must draw every fault"

    expected_reason = {"nan": ("TrainingError", "NaN"), "raise": ("RuntimeError", "injected fault"),
                       "oom": ("OutOfMemoryError", "out of memory"), "kill": None}
    for mode, rs in by_mode.items():
        for r in rs:
            if mode == "ok":
                assert r["status"] == "ok" and 0 < r["val_acc"] <= 1 and len(r["epochs"]) == 1
                continue
            assert r["status"] == "failed" and r["reason"], r
            assert "val_acc" not in r
            if expected_reason[mode]:
                for needle in expected_reason[mode]:
                    assert needle in r["reason"], (mode, r["reason"])
            else:   # the worker died: Ray's error (actor died / worker crashed) or our fallback sentence
                low = r["reason"].lower()
                assert any(w in low for w in ("died", "killed", "crash", "exit", "unexpectedly")), r["reason"]
            # a dead worker is run again (it might have been the node's fault) before it counts as
            # failed; an error raised inside the trial is final at once
            assert len(r.get("retries", [])) == (TRIAL_RETRIES if mode == "kill" else 0), r

    # the controller was told every sample, the failures as failures, and its count is on disk
    ctrl = json.loads((folder / "controller.json").read_text())
    assert ctrl["told"] == len(recs) == len(told)
    for values, result in told:
        if values["width"] == 64:
            assert result.status == "rejected"
        elif values["fault"] == "ok":
            assert result.status == "ok" and result.reward is not None
        else:
            assert result.status == "failed" and result.reward is None

    # invariant: nothing over the budget ever trained; over-budget samples were recorded, never run
    assert rejected and all(r["target"]["macs"] > BUDGET and "epochs" not in r for r in rejected)
    assert all(r["target"]["macs"] <= BUDGET for r in trials)
    assert all(r["target"]["macs"] <= BUDGET for r in recs if r["status"] == "ok")

    # the summary, leaderboard and best genotype come from the trials that trained
    assert summary["counts"]["ok"] == len(by_mode["ok"]) and summary["counts"]["failed"] == 7 - len(by_mode["ok"])
    board = json.loads((folder / "leaderboard.json").read_text())
    assert sorted(r["trial"] for r in board) == sorted(r["trial"] for r in by_mode["ok"])
    assert json.loads((folder / "best.json").read_text())["decisions"]["fault"] == "ok"
    text = (folder / "leaderboard.txt").read_text()
    assert f"{7 - len(by_mode['ok'])} failed" in text


def test_the_fault_hook_is_inert_without_its_environment_variable(monkeypatch):
    import nasty
    from nasty.compile import compile_genotype
    from nasty.search.standalone import inject_fault
    import torch
    monkeypatch.delenv(FAULT_ENV, raising=False)
    g = nasty.parse("net fault_raise input 1x28x28 classes 10\nstem conv3x3 c=8\nhead gap flatten fc c=classes\n")
    m = compile_genotype(g)
    inject_fault(m, g.name)
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    monkeypatch.setenv(FAULT_ENV, "1")
    m2 = compile_genotype(g)
    inject_fault(m2, g.name)
    with pytest.raises(RuntimeError, match="injected fault"):
        m2(torch.zeros(2, 1, 28, 28))
