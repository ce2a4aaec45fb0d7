"""`nasty search` end to end: real Ray Tune trials on real Fashion-MNIST, the run folder,
failures, resume after an interruption, report/train, and one-line errors for bad input."""
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

import nasty
from nasty.cli import main
from nasty.search.folder import RunFolder
from nasty.search.loop import SearchLoop
from nasty.search.record import TrialRecord
from nasty.search.results import report
from nasty.search.runner import search
from nasty.search.settings import Settings

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")
BUDGET = 20_000_000


def settings(tmp_path, **kw):
    base = dict(space=TINY, budget="20MFLOPs", trials=6, epochs=2, subset=2000, val_subset=500, batch_size=64,
                lr=0.05, time_budget=600, seed=1, runs_dir=str(tmp_path), name="run", confirm=0,
                screen=0)                  # every proposal trains: these tests follow the sampled sequence
    return Settings(**{**base, **kw})


def quiet():
    return Console(file=io.StringIO(), width=200)


def records(folder):
    return [json.loads(line) for line in (Path(folder) / "trials.jsonl").read_text().splitlines()]


def test_search_trains_on_fashion_mnist_and_records_everything(ray_local, tmp_path):
    console = quiet()
    summary = search(settings(tmp_path), console=console, live=False)
    folder = tmp_path / "run"
    recs = records(folder)
    trained = [r for r in recs if r["status"] != "rejected"]
    rejected = [r for r in recs if r["status"] == "rejected"]
    assert len(trained) == 6 and sorted(r["trial"] for r in trained) == list(range(6))

    # over-budget samples were costed at the target and never trained
    for r in rejected:
        assert r["target"]["macs"] > BUDGET and "epochs" not in r
    # within-budget ones trained on real data, or failed for the reason their decisions predict
    ok = [r for r in trained if r["status"] == "ok"]
    failed = [r for r in trained if r["status"] == "failed"]
    assert ok and failed and len(ok) + len(failed) == 6
    for r in trained:
        assert r["target"]["macs"] <= BUDGET
        g = nasty.parse(r["genotype"])
        assert nasty.cost(g).macs == r["target"]["macs"] and g.input == (3, 64, 64)
        assert nasty.parse(r["proxy_genotype"]).input == (1, 28, 28)
    for r in failed:
        assert r["decisions"]["blowup"] is True
        assert "NaN" in r["reason"] or "inf" in r["reason"]
    for r in ok:
        assert r["decisions"]["blowup"] is False
        assert [e["epoch"] for e in r["epochs"]] == [1, 2]
        assert r["val_acc"] == r["epochs"][-1]["val_acc"] > 0.3          # chance is 0.1
        assert r["timings"]["train_s"] > 0 and r["timings"]["total_s"] >= r["timings"]["train_s"]

    # the controller heard about every sample, and its state is on disk
    ctrl = json.loads((folder / "controller.json").read_text())
    assert ctrl["told"] == len(recs) and ctrl["samples"] >= len(recs) and ctrl["state"]["rng"]

    # the winner: best validation accuracy, within budget, with its genotype and test accuracy
    best = max(ok, key=lambda r: (r["val_acc"], -r["target"]["macs"]))
    info = json.loads((folder / "best.json").read_text())
    assert info["trial"] == best["trial"] == summary["best"]["trial"]
    assert 0.3 < info["test_acc"] <= 1.0 and summary["test_acc"] == info["test_acc"]
    g = nasty.load(folder / "best.nasty")
    assert nasty.cost(g).macs == best["target"]["macs"] <= BUDGET
    board = json.loads((folder / "leaderboard.json").read_text())
    assert [r["trial"] for r in board] == [r["trial"] for r in sorted(
        ok, key=lambda r: (-r["val_acc"], r["target"]["macs"], r["trial"]))]
    for png in ("accuracy_vs_macs.png", "best_so_far.png"):
        assert (folder / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["budget_macs"] == BUDGET and cfg["space"] == TINY and cfg["proxy"]["input"] == [1, 28, 28]
    out = console.file.getvalue()
    assert f"trial #{best['trial']}" in out and "best architecture" in out and str(folder) in out

    # `nasty report` prints the leaderboard and rewrites the plots
    (folder / "plots" / "best_so_far.png").unlink()
    text = report(folder)
    assert f"#{best['trial']}" in text and "failed" in text
    assert (folder / "plots" / "best_so_far.png").is_file()

    # `nasty train RUN` trains the winner's final network at the data's input and reports test accuracy
    assert main(["train", str(folder), "--epochs", "1", "--subset", "1000"]) == 0


@pytest.mark.slow
def test_the_main_job_at_small_scale_finds_a_nasnet_within_600M_mult_adds(ray_local, tmp_path):
    """`nasty search --space nasnet --budget 600MFLOPs`, with fewer and shorter trials."""
    summary = search(Settings(space="nasnet", budget="600MFLOPs", trials=3, epochs=1, subset=1500, val_subset=500,
                              runs_dir=str(tmp_path), name="main"), console=quiet(), live=False)
    folder = tmp_path / "main"
    best = json.loads((folder / "best.json").read_text())
    g = nasty.load(folder / "best.nasty")
    assert g.input == (3, 224, 224) and g.classes == 1000
    assert nasty.cost(g).macs == best["target"]["macs"] <= 600_000_000
    assert summary["best"]["trial"] == best["trial"] and best["val_acc"] > 0.3
    trained = [r for r in records(folder) if r["status"] == "ok"]
    assert len(trained) == 3 and all(r["target"]["macs"] <= 600_000_000 for r in trained)
    assert all(r["proxy"]["input"] == [1, 28, 28] for r in trained)


def test_resume_after_an_interruption_keeps_finished_trials(ray_local, tmp_path, monkeypatch):
    import os
    import signal
    s = settings(tmp_path, trials=5, name="resumed", seed=2)
    finished = []
    original = SearchLoop._finish

    def ctrl_c_after_two(self, rec, trial, result):
        original(self, rec, trial, result)
        if rec.status in ("ok", "failed"):
            finished.append(rec.trial)
            if len(finished) == 2:
                os.kill(os.getpid(), signal.SIGINT)       # what Ctrl-C sends, mid-search

    monkeypatch.setattr(SearchLoop, "_finish", ctrl_c_after_two)
    with pytest.raises(KeyboardInterrupt):
        search(s, console=quiet(), live=False)
    monkeypatch.undo()

    folder = tmp_path / "resumed"
    before = records(folder)
    done_before = [r for r in before if r["status"] in ("ok", "failed")]
    assert [r["trial"] for r in done_before] == finished and 2 <= len(finished) < 5
    samples_before = json.loads((folder / "controller.json").read_text())["samples"]

    # without --resume the folder is refused and left as it was
    assert main(["search", "--space", TINY, "--budget", "20MFLOPs", "--runs-dir", str(tmp_path),
                 "--name", "resumed"]) == 2
    assert records(folder) == before

    search(Settings(), resume=str(folder), console=quiet(), live=False)
    after = records(folder)
    assert after[:len(before)] == before                       # append-only: nothing lost or rewritten
    done = [r for r in after if r["status"] in ("ok", "failed")]
    assert len(done) == 5 and len({r["trial"] for r in done}) == 5
    assert json.loads((folder / "controller.json").read_text())["samples"] > samples_before
    # a finished run resumed again does nothing more
    search(Settings(), resume=str(folder), console=quiet(), live=False)
    assert records(folder) == after


def test_a_trial_whose_worker_dies_is_recorded_as_failed(tmp_path):
    """The path of a Ray-level trial error (no Ray needed: the driver is fed directly)."""
    from nasty.controllers import make_controller
    from nasty.search.budget import Budget
    from nasty.space import load_space
    s = settings(tmp_path).resolved(gpu=False)
    space = load_space(TINY)
    folder = RunFolder(tmp_path / "direct")
    folder.create({})
    told = []
    ctrl = make_controller("random", space, seed=0)
    ctrl.tell = lambda trial, result: told.append(result)
    d = SearchLoop(s, folder, space, ctrl, Budget.parse("20MFLOPs"), (1, 28, 28), 10, images=(800, 400))
    p = d.propose()
    n = p.trial
    d.dispatch("ray-1", p)
    d.epoch("ray-1", {"val_acc": 0.5, "epoch": 1, "train_loss": 1.0, "train_s": 1.0})
    d.complete("ray-1", {"val_acc": 0.5, "epoch": 1}, error="RayActorError: the actor died unexpectedly")
    last = records(folder.path)[-1]
    assert last["trial"] == n and last["status"] == "failed" and "actor died" in last["reason"]
    assert last["epochs"][0]["val_acc"] == 0.5
    assert told[-1].status == "failed" and told[-1].reward is None


# ------------------------------------------------------------------ bad input: one line, exit 2
def run_cli(capsys, *argv):
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("argv, needle", [
    (["--space", "nope", "--budget", "600MFLOPs"], "unknown search space 'nope'"),
    (["--space", "BROKEN", "--budget", "600MFLOPs"], "failed to load (line 4): NameError"),
    (["--space", "nasnet", "--budget", "600MFLOP"], "did you mean 600MFLOPs"),
    (["--space", "nasnet", "--budget", "-1M"], "malformed --budget '-1M'"),
    (["--space", "nasnet", "--budget", "lots"], "malformed --budget 'lots'"),
    (["--space", "nasnet", "--params", "5MFLOPs"], "malformed --params"),
    (["--space", TINY, "--budget", "1K"], "smallest seen"),
    (["--space", TINY, "--budget", "20M", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"],
     "apt-get install dataset-fashion-mnist"),
    (["--space", TINY, "--budget", "20M", "--dataset", "mnist", "--data-dir", "/nonexistent"], "--data-dir"),
    (["--space", TINY, "--budget", "20M", "--controller", "genius"], "unknown --controller 'genius'"),
    (["--budget", "20M"], "--space is required"),
    (["--resume", "/nonexistent/run"], "no run folder"),
    (["--space", TINY, "--trials", "0"], "--trials must be at least 1"),
    (["--space", TINY, "--lr", "-0.1"], "--lr must be positive"),
    (["--space", TINY, "--seed", "-1"], "--seed must be a whole number"),
    (["--space", TINY, "--objective", "pareto"], "random: objective 'pareto' is not supported"),
    (["--space", TINY, "--controller", "evolution", "--controller-options", "pop=3"],
     "controller 'evolution' has no option 'pop'; its options (with defaults): population=20, sample=5"),
    (["--space", TINY, "--controller", "evolution", "--controller-options", "population"], "must look like key=value"),
    (["--space", TINY, "--controller", "evolution", "--controller-options", "population=two"],
     "option population='two' must be int"),
    (["--space", TINY, "--controller", "evolution", "--controller-options", "population=2,sample=5"],
     "sample must be between 1 and the population (2)"),
    (["--space", TINY, "--controller-options", "population=2"], "controller 'random' has no option"),
])
def test_bad_input_is_a_one_line_error_and_makes_no_run_folder(capsys, tmp_path, argv, needle):
    broken = tmp_path / "broken.py"          # a space file with a bug in it
    broken.write_text("import nasty\nfrom nasty.space import space\n\nspace_of_mine = undefined_name\n")
    argv = [str(broken) if a == "BROKEN" else a for a in argv]
    rc, err = run_cli(capsys, "search", *argv, "--runs-dir", str(tmp_path), "--name", "x")
    assert rc == 2 and err.startswith("nasty: error:") and "\n" not in err
    assert needle in err
    assert not (tmp_path / "x").exists()


def test_gpu_request_without_gpus_is_a_one_line_error(capsys, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc, err = run_cli(capsys, "search", "--space", TINY, "--budget", "20M", "--gpus-per-trial", "0.25",
                      "--runs-dir", str(tmp_path), "--name", "x")
    assert rc == 2 and "\n" not in err and "--gpus-per-trial 0.25" in err and "no" in err
    assert not (tmp_path / "x").exists()


def test_existing_run_folder_is_never_touched_without_resume(capsys, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text('{"space": "nasnet"}\n')
    (folder / "trials.jsonl").write_text('{"trial": 0, "status": "ok"}\n')
    rc, err = run_cli(capsys, "search", "--space", "nasnet", "--budget", "600MFLOPs",
                      "--runs-dir", str(tmp_path), "--name", "old")
    assert rc == 2 and "already exists" in err and "--resume" in err and "\n" not in err
    assert (folder / "trials.jsonl").read_text() == '{"trial": 0, "status": "ok"}\n'
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "trials.jsonl"]


def test_resume_refuses_to_change_the_search(capsys, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"space": "nasnet", "budget": "600MFLOPs"}))
    rc, err = run_cli(capsys, "search", "--resume", str(folder), "--budget", "700MFLOPs")
    assert rc == 2 and "--budget cannot change" in err


def test_report_of_a_missing_run_is_a_one_line_error(capsys, tmp_path):
    rc, err = run_cli(capsys, "report", str(tmp_path / "none"))
    assert rc == 2 and "no run folder" in err
    rc, err = run_cli(capsys, "train", str(tmp_path), "--epochs", "1")
    assert rc == 2 and "not a nasty run folder" in err


def _driver(tmp_path, space, budget, **kw):
    from nasty.controllers import make_controller
    from nasty.search.budget import Budget
    s = settings(tmp_path, **kw).resolved(gpu=False)
    folder = RunFolder(tmp_path / "direct")
    folder.create({})
    return SearchLoop(s, folder, space, make_controller("random", space, seed=0), Budget.parse(budget),
                  (1, 28, 28), 10, images=(800, 400)), folder


def test_fit_scales_each_sample_into_the_budget_before_dispatch(tmp_path):
    from nasty.search.budget import target_cost
    from nasty.space import load_space
    space = load_space(TINY)
    d, folder = _driver(tmp_path, space, "6MFLOPs", fit=True, trials=100)
    fitted = 0
    for _ in range(25):
        p = d.propose()
        d.dispatch(f"p{p.trial}", p)
        rec, t = p.record, p.ctrl_trial
        assert rec.target.macs <= 6_000_000
        if rec.fitted:
            fitted += 1
            before, after = rec.fitted["width"]
            assert after != before == t.values["width"] and rec.decisions["width"] == after
            wider = [w for w in (8, 16, 24, 32) if w > after]
            if wider:                             # the next wider option would not have fitted
                assert target_cost(space, {**rec.decisions, "width": wider[0]}).macs > 6_000_000
    assert fitted > 0
    # without --fit the same space rejects samples instead, recording their cost
    d2, folder2 = _driver(tmp_path / "b", space, "6MFLOPs", trials=100, fit=False)
    for _ in range(10):
        p = d2.propose()
        d2.dispatch(f"p{p.trial}", p)
    rejected = [r for r in records(folder2.path) if r["status"] == "rejected"]
    assert rejected and all(r["target"]["macs"] > 6_000_000 for r in rejected)


def test_a_sample_the_space_cannot_build_is_a_failed_trial(tmp_path):
    import nasty as _nasty
    from nasty.space import space as _space

    @_space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10))
    def fragile(t, net):
        if t.choice("bug", (False, True)):
            raise ValueError("this combination is not implemented")
        return _nasty.parse(f"net f input {'x'.join(map(str, net.input))} classes {net.classes}\n"
                            "stem conv3x3 c=8\nhead gap flatten fc c=classes\n")

    d, folder = _driver(tmp_path, fragile, "1G", trials=6)
    got = d.propose()
    assert got is not None and got.record.decisions["bug"] is False
    failed = [r for r in records(folder.path) if r["status"] == "failed"]
    for r in failed:
        assert r["decisions"]["bug"] is True and "not implemented" in r["reason"] and r["trial"] < got.trial
    assert json.loads((folder.path / "controller.json").read_text())["told"] == len(failed)


def test_defaults_fit_ten_minutes_on_a_cpu_and_scale_up_with_a_gpu():
    cpu, gpu = Settings().resolved(gpu=False), Settings().resolved(gpu=True)
    assert cpu.gpus_per_trial == 0 and cpu.cpus_per_trial == 1
    # the search phase plus start-up, the last trial's tail and the hard stop stay under 10 minutes
    assert cpu.time_budget + 60 + 60 <= 600
    assert gpu.gpus_per_trial == 0.25 and gpu.trials > cpu.trials and gpu.epochs > cpu.epochs
    assert gpu.subset > cpu.subset and gpu.val_subset > cpu.val_subset
    explicit = Settings(trials=3, epochs=1).resolved(gpu=True)
    assert (explicit.trials, explicit.epochs) == (3, 1)


def test_a_record_cut_by_a_crash_is_dropped_and_the_file_repaired(tmp_path):
    folder = RunFolder(tmp_path / "r")
    folder.create({"space": "nasnet"})
    folder.append(TrialRecord.from_dict({"trial": 0, "status": "ok", "val_acc": 0.8}))
    folder.append(TrialRecord.from_dict({"trial": 1, "status": "failed", "reason": "x"}))
    with open(folder.path / "trials.jsonl", "a") as f:
        f.write('{"trial": 2, "status": "o')                  # the process died mid-write
    assert [r.trial for r in folder.records()] == [0, 1]
    assert folder.repair() == "cut" and [r.trial for r in folder.records()] == [0, 1]
    folder.append(TrialRecord.from_dict({"trial": 2, "status": "ok", "val_acc": 0.7}))
    assert [r.trial for r in folder.records()] == [0, 1, 2]      # appends stay valid JSON lines
