"""The screen (nasty/search/screen.py) and the self-audit (nasty/search/audit.py), driven without
Ray: the serial executor and an evaluation whose accuracy is a made-up function of the proxy."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from nasty.scores import Scored, order
from nasty.search.budget import Budget
from nasty.search.folder import RunFolder
from nasty.search.loop import SerialExecutor
from nasty.search.record import Status
from nasty.search.runner import search
from nasty.search.screen import SHARE, Screen
from nasty.search.settings import Settings

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


def quality(proxy_text: str) -> float:
    return 0.5 + (sum(map(ord, proxy_text)) % 997) / 4000


def fake_evaluate(config, report):
    acc = quality(config["proxy"]) + random.Random(config["seed"]).gauss(0, 0.01)
    for e in range(1, config["train"]["epochs"] + 1):
        report({"epoch": e, "val_acc": acc, "train_s": 0.01, "started": 0.0})


def run(tmp_path, name, evaluate=fake_evaluate, **kw):
    base = dict(space=TINY, budget="20MFLOPs", trials=4, epochs=1, subset=300, val_subset=200, seed=3, confirm=0,
                audit=0, screen=12, runs_dir=str(tmp_path), name=name)
    s = Settings(**{**base, **kw})
    out = io.StringIO()
    summary = search(s, console=Console(file=out, width=300), live=False, executor=SerialExecutor(evaluate))
    return summary, RunFolder(tmp_path / name), out.getvalue()


def by_round(records):
    rounds = {}
    for r in records:
        if r.screen and "rank" in r.screen:
            rounds.setdefault(r.screen["round"], []).append(r)
    return rounds


def test_the_screen_scores_many_in_budget_candidates_and_trains_only_the_best(tmp_path):
    summary, folder, text = run(tmp_path, "s")
    every = folder.records()
    trained = [r for r in every if r.status.counted]
    screened = [r for r in every if r.status is Status.SCREENED]
    assert len(trained) == 4 and len(screened) >= 12
    assert all(r.trial is None and r.genotype is None and r.screen for r in screened)
    budget = Budget.parse("20MFLOPs")
    for r in trained + screened:
        assert budget.check(r.target) is None
    for rnd, recs in by_round(every).items():
        # the trained ones are the round's best by the rank average of MACs and params, as recorded
        scored = [Scored(r.screen["scores"]) for r in recs]
        best = {id(recs[i]) for i in order(scored, ("macs", "params"))[:sum(r.status.counted for r in recs)]}
        assert {id(r) for r in recs if r.status.counted} == best
        assert all(r.screen["of"] == len(recs) for r in recs)
    assert "screen: " in text and "screened out (scored, never trained)" in text
    assert summary["counts"]["screened"] == len(screened)
    # the study: trained trials carry their scores, each round's screened-out candidates are an attribute
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{folder.path / 'study.db'}")
    ok = [t for t in study.trials if t.user_attrs.get("status") == "ok"]
    assert len(ok) == 4 and all("score_params" in t.user_attrs and "screen_rank" in t.user_attrs for t in ok)
    rounds = {k: v for k, v in study.user_attrs.items() if k.startswith("screen_round_")}
    assert sum(len(v) for v in rounds.values()) == len(screened)
    assert (folder.path / "plots" / "screen.svg").is_file()
    assert "the screen: each score" in (folder.path / "report.html").read_text()


def test_screen_zero_turns_the_stage_off(tmp_path):
    _, folder, text = run(tmp_path, "off", screen=0)
    every = folder.records()
    assert not any(r.status is Status.SCREENED or r.screen for r in every)
    assert "screen:" not in text and not (folder.path / "plots" / "screen.svg").exists()


def test_the_screen_never_lets_an_over_budget_candidate_train(tmp_path):
    # a budget most samples of the tiny space exceed, and no width fitting: they must be rejected
    _, folder, _ = run(tmp_path, "b", budget="6MFLOPs", fit=False, trials=3, screen=8)
    every = folder.records()
    budget = Budget.parse("6MFLOPs")
    rejected = [r for r in every if r.status is Status.REJECTED]
    assert rejected and all(budget.check(r.target) for r in rejected)
    assert all(r.screen is None for r in rejected)
    for r in every:
        if r.status.counted or r.status is Status.SCREENED:
            assert budget.check(r.target) is None, r


def test_a_candidate_whose_score_is_not_finite_is_screened_out_first(tmp_path):
    # blowup=True multiplies activations by 1e76: in float32 its outputs and input Jacobians are not
    # finite, so its jacob_cov is missing and it ranks last
    _, folder, _ = run(tmp_path, "nan", screen_score="jacob_cov", trials=3, screen=10)
    every = folder.records()
    for r in every:
        if r.status.counted:
            assert r.screen["scores"]["jacob_cov"] is not None and not r.decisions["blowup"]
    assert any(r.screen and r.screen.get("scores", {}).get("jacob_cov") is None and r.screen.get("notes")
               for r in every if r.status is Status.SCREENED)


@pytest.mark.parametrize("controller, options", [("random", None), ("evolution", "population=3,sample=2"),
                                                 ("tpe", "n_startup_trials=2"), ("reinforce", None)])
def test_every_controller_trains_only_what_the_screen_lets_through(tmp_path, controller, options):
    _, folder, _ = run(tmp_path, controller, controller=controller, controller_options=options, trials=5, screen=6)
    every = folder.records()
    trained = [r for r in every if r.status.counted]
    screened = [r for r in every if r.status is Status.SCREENED]
    assert len(trained) == 5 and screened
    assert all(r.screen and r.screen.get("rank") for r in trained)
    state = json.loads((folder.path / "controller.json").read_text())
    assert state["told"] == len(every)
    if controller == "evolution":
        # the first population is the first round's best-scored 3, all trained; no screened one joins
        first = by_round(every)[1]
        assert sorted(r.screen["rank"] for r in first if r.status.counted) == [1, 2, 3]
        kept = [json.dumps(m["values"], sort_keys=True) for m in state["state"]["population"]]
        trained_values = {json.dumps(r.decisions, sort_keys=True) for r in trained}
        assert kept and all(k in trained_values for k in kept)
    if controller == "tpe":
        # TPE's own study (sampler.db) holds every candidate it proposed: the screened ones as FAIL
        from nasty.search.study import SAMPLER_FILE, STUDY_FILE
        sampler = optuna.load_study(study_name=folder.path.name, storage=f"sqlite:///{folder.path / SAMPLER_FILE}")
        fail = [t for t in sampler.trials if t.user_attrs.get("status") == "screened"]
        assert len(fail) == len(screened) and all(t.state == optuna.trial.TrialState.FAIL for t in fail)
        ok = [t for t in sampler.trials if t.user_attrs.get("status") == "ok"]
        assert len(ok) == 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in ok)
        # the run's study (study.db) numbers only what trained; the screened ones are per-round attributes
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{folder.path / STUDY_FILE}")
        assert not [t for t in study.trials if t.user_attrs.get("status") == "screened"]
        rounds = [v for k, v in study.user_attrs.items() if k.startswith("screen_round_")]
        assert sum(len(v) for v in rounds) == len(screened)
    if controller == "reinforce":
        # the policy learnt from the trained samples (and the over-budget ones, reward 0), not the screened
        rejected = sum(r.status is Status.REJECTED for r in every)
        assert state["state"]["told"] == 5 + rejected and state["state"]["skipped"] == len(screened)


def test_the_screens_share_of_the_time_budget_caps_each_round():
    s = Screen(k=500, which=("params",), batch=None, slots=2, time_budget=100.0)
    assert s.size(2) == 500                          # nothing measured yet: K as asked
    s.scored, s.seconds = 100, 10.0                  # 0.1 s per candidate, 10 s of the 20 s share spent
    assert s.size(2) == 50                           # half of what is left: 5 s
    s.seconds = SHARE * 100.0 + 5
    assert s.size(2) == 2                            # the share is spent: only what will train
    assert Screen(k=50, which=("params",), batch=None, slots=2, time_budget=None).size(3) == 50


def test_the_audit_trains_random_in_budget_members_and_reports_them(tmp_path):
    configs = []

    def keep(config, report):
        configs.append(config)
        fake_evaluate(config, report)
    summary, folder, text = run(tmp_path, "a", evaluate=keep, confirm=2, audit=2, confirm_seeds=2, confirm_epochs=1,
                                confirm_subset=600)
    # the members train with the confirmation's recipe and images (only the seed differs)
    confirm_cfgs = [c for c in configs if c["rows"]["train"][1] > 300 and not c.get("audit")]
    audit_cfgs = [c for c in configs if c.get("audit")]
    assert confirm_cfgs and len(audit_cfgs) == 4
    for c in audit_cfgs:
        same = confirm_cfgs[0]
        assert {k: v for k, v in c["train"].items() if k != "seed"} == \
            {k: v for k, v in same["train"].items() if k != "seed"}
        assert c["rows"] == same["rows"] and c["threads"] == same["threads"]
    audits = folder.audits()
    assert sorted((a.member, a.seed) for a in audits) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    budget = Budget.parse("20MFLOPs")
    assert all(a.status is Status.OK and budget.check(a.target) is None for a in audits)
    assert {a.fidelity["train_images"] for a in audits} == {c.fidelity["train_images"] for c in folder.confirmations()}
    best = json.loads((folder.path / "best.json").read_text())
    a = best["audit"]
    assert a["members"] == 2 and a["seeds"] == 2 and len(a["per_seed"]) == 2
    conf = {c.seed: c.val_acc for c in folder.confirmations() if c.trial == best["trial"]}
    want = sum(conf[k] - (sum(x.val_acc for x in audits if x.seed == k) / 2) for k in (0, 1)) / 2
    assert a["diff_pp"] == pytest.approx(100 * want)
    line = next(x for x in text.splitlines() if x.startswith("winner vs random members:"))
    assert f"{a['diff_pp']:+.2f}" in line and "over 2 seeds" in line
    assert "winner vs random members:" in (folder.path / "report.html").read_text()


def test_the_audit_says_so_when_the_winner_does_not_beat_the_members(tmp_path):
    def members_win(config, report):
        acc = 0.99 if config.get("audit") else quality(config["proxy"])
        for e in range(1, config["train"]["epochs"] + 1):
            report({"epoch": e, "val_acc": acc, "train_s": 0.01, "started": 0.0})
    _, folder, text = run(tmp_path, "w", evaluate=members_win, confirm=1, audit=1, confirm_seeds=1)
    best = json.loads((folder.path / "best.json").read_text())
    assert best["audit"]["diff_pp"] < 0
    assert "the winner does not beat the random members" in text


def test_a_run_from_before_the_screen_resumes_without_it(tmp_path):
    _, folder, _ = run(tmp_path, "old", screen=0, trials=2)
    cfg = json.loads((folder.path / "config.json").read_text())
    for k in ("screen", "screen_score", "audit"):
        cfg.pop(k)                                   # as an older nasty wrote it
    (folder.path / "config.json").write_text(json.dumps(cfg))
    search(Settings(trials=4), resume=str(folder.path), console=Console(file=io.StringIO()), live=False,
           executor=SerialExecutor(fake_evaluate))
    every = folder.records()
    assert sum(r.status.counted for r in every) == 4
    assert not any(r.status is Status.SCREENED or r.screen for r in every)


@pytest.mark.slow
def test_the_screen_and_the_audit_through_ray_tune_from_the_command_line(ray_local, tmp_path, capsys):
    """`nasty search --space nb201mini --screen K`, small: real trials under Ray Tune, the audit's
    members trained beside the confirmation in the same executor run."""
    from nasty.cli import main
    assert main(["search", "--space", "nb201mini", "--screen", "40", "--trials", "2", "--epochs", "1",
                 "--subset", "600", "--val-subset", "300", "--confirm", "1", "--confirm-seeds", "1",
                 "--confirm-subset", "900", "--audit", "1", "--time-budget", "600", "--runs-dir", str(tmp_path),
                 "--name", "cli"]) == 0
    out = capsys.readouterr().out
    folder = RunFolder(tmp_path / "cli")
    every = folder.records()
    assert sum(r.status.counted for r in every) == 2 and sum(r.status is Status.SCREENED for r in every) >= 38
    assert [(a.member, a.seed, a.status) for a in folder.audits()] == [(0, 0, Status.OK)]
    assert "winner vs random members:" in out and "screen: " in out


def test_picks_and_members_take_turns_within_each_seed():
    from types import SimpleNamespace

    from nasty.search.audit import Together

    class Source:
        def __init__(self, name, jobs):
            self.jobs = [SimpleNamespace(name=name, seed=k) for k in jobs]
            self.running, self.exhausted, self.stop_reason, self.fatal, self.deadline = {}, False, None, None, None

        def propose(self):
            return self.jobs.pop(0) if self.jobs else None
    t = Together(Source("pick", [0, 0, 0, 1, 1, 1]), Source("member", [0, 0, 1, 1]))
    got = []
    while (p := t.propose()) is not None:
        got.append((p.name, p.seed))
    assert got == [("pick", 0), ("member", 0), ("pick", 0), ("member", 0), ("pick", 0),
                   ("pick", 1), ("member", 1), ("pick", 1), ("member", 1), ("pick", 1)]


def test_the_summary_says_so_when_the_audit_could_not_be_measured(tmp_path):
    from nasty.search.audit import audit_info, audit_line
    _, folder, _ = run(tmp_path, "nm", confirm=1, audit=2, confirm_seeds=1)
    (folder.path / "audit.jsonl").unlink()            # as if the time budget ended the stage first
    best = json.loads((folder.path / "best.json").read_text())
    line = audit_line(audit_info(folder, best["trial"]))
    assert line.startswith("winner vs random members: not measured") and "2 random members" in line
