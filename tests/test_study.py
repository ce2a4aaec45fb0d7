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
    """The study of a run, checked with Optuna's own API against trials.jsonl and best.json."""
    import datetime
    import statistics

    import optuna
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{folder / 'study.db'}")
    # named by the run's identity (the name it was created with), which a copied or renamed run keeps
    assert study.study_name == json.loads((folder / "config.json").read_text())["name"]
    recs = RunFolder(folder).records()
    trained = {r.trial: (line, r) for line, r in enumerate(recs) if r.status.counted}
    trials = study.get_trials()
    # Optuna's trial N is nasty's trial #N; over-budget samples are not trials, only counted
    assert [t.number for t in trials] == sorted(trained) == [t.user_attrs["nasty_trial"] for t in trials]
    assert study.user_attrs["over_budget_samples"] == sum(r.status == "rejected" for r in recs)
    # nor are the candidates the screen did not train: each screen round is a study user attribute
    in_rounds = sorted(e["record"] for k, v in study.user_attrs.items() if k.startswith("screen_round_") for e in v)
    assert in_rounds == [line for line, r in enumerate(recs) if r.status == "screened"]
    for t in trials:
        line, r = trained[t.number]
        assert t.user_attrs["record"] == line and t.user_attrs["status"] == r.status.value
        if r.timings:                                          # the trial's real start and end
            assert t.datetime_start == datetime.datetime.fromtimestamp(r.timings.dispatched)
            assert t.datetime_complete == datetime.datetime.fromtimestamp(r.timings.completed)
            assert t.duration.total_seconds() > 0
        if r.epochs:                                           # every trained trial's curve
            assert t.intermediate_values == {e.epoch: e.val_acc for e in r.epochs}
        if r.status == "ok":
            assert t.state == optuna.trial.TrialState.COMPLETE and t.values == [r.val_acc]
            assert t.user_attrs["target_macs"] == r.target.macs
            assert set(t.params) >= {"width", "kernel"}         # the decisions are the params
            assert t.system_attrs["constraints"][0] <= 0        # feasible
        elif r.status in ("stopped", "timeout") and r.epochs:
            assert t.state == optuna.trial.TrialState.PRUNED and t.values is None
        else:
            assert t.state == optuna.trial.TrialState.FAIL and t.values is None
    ok = [r for _, r in trained.values() if r.status == "ok"]
    df = study.trials_dataframe()
    if ok:                                                     # a naive mean is the trained trials' mean
        assert df.value.mean() == pytest.approx(statistics.mean(r.val_acc for r in ok))
        assert study.best_trial.values[0] == max(r.val_acc for r in ok)
    best = json.loads((folder / "best.json").read_text()) if (folder / "best.json").exists() else {}
    if best.get("trial") is not None:                          # the winner (the confirmed one) is marked
        assert study.user_attrs["winner"]["trial"] == best["trial"]
        assert [t.number for t in trials if t.user_attrs.get("winner")] == [best["trial"]]
        if best.get("confirmed"):
            assert trials[best["trial"]].user_attrs["confirmed_val_acc"] == best["confirmed"]["val_acc"]
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
    if controller == "tpe":                # TPE's own study, over-budget samples included, is sampler.db
        import optuna
        own = optuna.load_study(study_name=None, storage=f"sqlite:///{folder / 'sampler.db'}")
        assert len(own.trials) == len(RunFolder(folder).records())
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
    by_trial = {r.trial: r for r in recs}
    for d in dirs:
        text = (folder / "tune" / d / "result.json").read_text()
        assert "val_acc" in text or "failed" in text
        assert "weights_b64" not in text                      # the weights go to weights/, not Tune's logs
        params = json.loads((folder / "tune" / d / "params.json").read_text())
        assert params["decisions"] == by_trial[int(d[6:10])].to_dict()["decisions"]   # what the trial tried
