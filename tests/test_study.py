"""Every run is a real Optuna study (runs/NAME/study.db) and keeps Ray Tune's results
(runs/NAME/tune/): the user's own tools open what nasty writes."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from nasty.search.folder import RunFolder
from nasty.search.runner import search
from nasty.search.settings import Settings

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


def _run(tmp_path, name, **kw):
    base = dict(space=TINY, budget="20MFLOPs", trials=5, epochs=1, subset=600, val_subset=200, batch_size=64,
                lr=0.05, time_budget=600, seed=6, runs_dir=str(tmp_path), name=name, confirm=0)
    search(Settings(**{**base, **kw}), console=Console(file=io.StringIO()), live=False)
    return tmp_path / name


def _check_study_matches_records(folder: Path):
    import optuna
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{folder / 'study.db'}")
    assert study.study_name == folder.name
    every = RunFolder(folder).records()
    trials = sorted(study.get_trials(), key=lambda t: t.user_attrs["record"])
    # a candidate the screen did not train is a trial only of a controller that asked Optuna for it
    # (tpe); else it is in the study's user attribute of its screen round
    lines = [t.user_attrs["record"] for t in trials]
    in_rounds = {e["record"] for k, v in study.user_attrs.items() if k.startswith("screen_round_") for e in v}
    assert sorted(set(lines) | in_rounds) == list(range(len(every))) and len(set(lines)) == len(lines)
    assert all(every[i].status == "screened" for i in in_rounds)
    recs = [every[i] for i in lines]
    for t, r in zip(trials, recs):
        assert t.user_attrs["status"] == r.status.value and t.user_attrs["nasty_trial"] == r.trial
        if r.status in ("stopped", "timeout"):
            assert t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values[len(r.epochs)] == r.val_acc
        elif r.status.scored:
            assert t.state == optuna.trial.TrialState.COMPLETE and t.values == [r.val_acc]
            assert t.user_attrs["target_macs"] == r.target.macs
            assert set(t.params) >= {"width", "kernel"}         # the decisions are the params
        elif r.status == "rejected":
            assert t.user_attrs["target_macs"] == r.target.macs > 20_000_000
        elif r.status == "screened":
            assert t.state == optuna.trial.TrialState.FAIL and "screen_round" in t.user_attrs
        else:
            assert t.state == optuna.trial.TrialState.FAIL
    ok = [r for r in recs if r.status == "ok"]
    if ok:                                                     # over-budget samples are never "best"
        best = max(ok, key=lambda r: r.val_acc)
        assert study.best_trial.values[0] == best.val_acc
    return study


@pytest.mark.parametrize("controller, options", [("random", None), ("tpe", "n_startup_trials=2"),
                                                 ("evolution", "population=2,sample=1")])
def test_every_run_is_an_optuna_study_with_its_records(ray_local, tmp_path, controller, options):
    folder = _run(tmp_path, controller, controller=controller, controller_options=options)
    study = _check_study_matches_records(folder)
    if controller == "evolution":          # --controller-options reached the controller, and its state
        state = json.loads((folder / "controller.json").read_text())["state"]
        assert state["population_size"] == 2 and state["sample"] == 1
    assert json.loads((folder / "config.json").read_text())["controller_options"] == options
    # Optuna's own plots work on it
    import optuna.visualization.matplotlib as ovm
    ovm.plot_optimization_history(study)
    # a resumed run adds its new records to the same study
    search(Settings(trials=7), resume=str(folder), console=Console(file=io.StringIO()), live=False)
    _check_study_matches_records(folder)


def test_the_study_of_an_old_run_is_built_from_its_records(tmp_path):
    """A run folder from before study.db existed gets its study from trials.jsonl (`nasty report`)."""
    import shutil

    from nasty.search.results import report
    folder = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run_v0_1", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["space"] = TINY
    (folder / "config.json").write_text(json.dumps(cfg))
    assert not (folder / "study.db").exists()
    report(folder)
    _check_study_matches_records(folder)


def test_tune_results_stay_in_the_run_folder(ray_local, tmp_path):
    folder = _run(tmp_path, "tuned", trials=3)
    from ray.tune import ExperimentAnalysis
    ea = ExperimentAnalysis(str(folder / "tune"))
    recs = [r for r in RunFolder(folder).records() if r.status.counted]
    dfs = ea.trial_dataframes
    assert len(dfs) == len(recs)
    dirs = sorted(p.name for p in (folder / "tune").iterdir() if p.name.startswith("trial_"))
    assert [d[:10] for d in dirs] == [f"trial_{r.trial:04d}" for r in sorted(recs, key=lambda r: r.trial)]
    for d in dirs:
        text = (folder / "tune" / d / "result.json").read_text()
        assert "val_acc" in text or "failed" in text
        assert "weights_b64" not in text                      # the weights go to weights/, not Tune's logs
