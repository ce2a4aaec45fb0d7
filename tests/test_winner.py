"""One truth about the winner (issue 19, item 5): `nasty report`, `--json`, leaderboard.txt and
best.json rank alike (confirmed trials first); a confirmation the time budget cut is never shown as
confirmed; and the time budget is hard: a trial still running at the deadline stops mid-epoch and
is recorded as stopped by it."""
from __future__ import annotations

import io
import json
import time

from rich.console import Console

from nasty.search.folder import RunFolder
from nasty.search.loop import SerialExecutor
from nasty.search.record import Status
from nasty.search.results import report, report_json
from nasty.search.runner import search
from nasty.search.settings import Settings
from test_confirm import TINY, fake_evaluate, run


def test_report_and_json_rank_with_the_confirmations_as_the_leaderboard_does(tmp_path):
    summary = run(tmp_path, "c", seed=4, screen=0)         # the unscreened sample sequence of seed 4
    folder = RunFolder(tmp_path / "c")
    ok = [r for r in folder.records() if r.status is Status.OK]
    search_best = max(ok, key=lambda r: r.val_acc).trial
    winner = json.loads((folder.path / "best.json").read_text())["trial"]
    assert winner == summary["best"]["trial"] != search_best          # the confirmations changed the order
    board = (folder.path / "leaderboard.txt").read_text().splitlines()
    assert board[2].split()[:2] == ["1", f"#{winner}"]
    text = report(folder.path)
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert rows[0][:2] == ["1", f"#{winner}"] and f"best: trial #{winner}" in text
    data = report_json(folder.path)
    assert data["leaderboard"][0]["trial"] == winner == data["best"]["trial"]
    assert "confirmed_val_acc" in data["leaderboard"][0]


def cut_second_seed(config, report):
    """Confirmations of seed index 1 are cut by the time budget after one of two epochs (as
    standalone.evaluate reports it); everything else as fake_evaluate."""
    if config["seed"] >= 200_006:                       # seed + trial + 100_003 * 2: a second confirmation
        report({"epoch": 1, "val_acc": 0.99, "train_s": 0.01, "started": 0.0})
        report({"timeout": 1, "reason": "stopped at the time budget in epoch 2 of 2", "started": 0.0})
        return
    fake_evaluate(config, report)


def test_a_confirmation_cut_by_the_time_budget_is_never_shown_as_confirmed(tmp_path):
    out = io.StringIO()
    s = Settings(space=TINY, budget="20MFLOPs", trials=6, epochs=1, subset=500, val_subset=300, seed=3, confirm=2,
                 confirm_seeds=2, confirm_epochs=2, confirm_subset=1000, runs_dir=str(tmp_path), name="cut")
    summary = search(s, console=Console(file=out, width=300), summary_console=Console(file=out, width=300),
                     live=False, executor=SerialExecutor(cut_second_seed))
    folder = RunFolder(tmp_path / "cut")
    confs = folder.confirmations()
    assert {c.status for c in confs if c.seed == 1} == {Status.TIMEOUT}
    text = out.getvalue()
    assert "(seed 2): val" not in text and "confirmed #" in text
    cut = "(seed 2) timeout: stopped at the time budget after 1 of 2 epochs (val 0.9900 so far, not counted)"
    lines = text.splitlines()
    assert sum("confirmation of #" in line and cut in line for line in lines) == 2
    # the audit's random members (issue 20) are cut alike at their second seed, and told so
    assert sum(line.startswith("audit: random member") and cut in line for line in lines) == 2
    best = json.loads((folder.path / "best.json").read_text())
    assert best["confirmed"]["accs"] == [summary["best"]["confirmed_val_acc"]]      # the cut 0.99 is not in it
    assert "1 of 2 seeds: the time budget cut the others" in text
    board = (folder.path / "leaderboard.txt").read_text()
    assert "0.9900" not in board
    # a resume runs the cut confirmations again
    search(Settings(), resume=str(folder.path), console=Console(file=io.StringIO()), live=False,
           executor=SerialExecutor(fake_evaluate))
    again = RunFolder(folder.path).confirmations()
    assert sorted((c.trial, c.seed) for c in again if c.status is Status.OK) == sorted(
        (c.trial, c.seed) for c in confs if c.seed in (0, 1))


def test_the_time_budget_stops_a_running_trial_mid_epoch_and_records_it(tmp_path, monkeypatch):
    """A real standalone evaluation (in this process) of a trial far longer than the budget."""
    from test_own_data import in_process
    s = Settings(space=TINY, budget="20MFLOPs", trials=2, epochs=500, subset=2000, val_subset=200, batch_size=32,
                 seed=1, confirm=0, time_budget=4, runs_dir=str(tmp_path), name="hard")
    t0 = time.time()
    summary = search(s, console=Console(file=io.StringIO()), live=False, executor=in_process(monkeypatch))
    recs = [r for r in RunFolder(tmp_path / "hard").records() if r.status.counted]
    assert time.time() - t0 < 60
    cut = [r for r in recs if r.status is Status.TIMEOUT]
    assert cut and "stopped at the time budget" in cut[0].reason
    assert all(len(r.epochs) < 500 for r in recs)
    assert summary["stop_reason"] == "the time budget is spent" or len(recs) == 2
    assert cut[0].timings.completed <= cut[0].timings.dispatched + 4 + 5    # the deadline, plus one step


def test_a_winner_without_kept_weights_says_why_it_has_no_test_accuracy(tmp_path):
    """Under a latency budget the finalists measured over it drop out at the end, and the winner can
    be a trial whose proxy weights were pruned: best.json and the summary say so, never silently."""
    from nasty.search.results import write_pictures
    from nasty.search.runner import score_winner
    run(tmp_path, "w", seed=4)
    folder = RunFolder(tmp_path / "w")
    info = json.loads((folder.path / "best.json").read_text())
    for f in [*folder.path.rglob("*.pt")]:
        f.unlink()                                   # the weights gone, as pruning leaves a lower-ranked winner
    info.pop("test_acc", None)
    folder.write_json("best.json", info)
    out = score_winner(folder, folder.records(), data=None)
    assert "test_acc" not in out and f"weights of trial #{info['trial']} were not kept" in out["test_acc_error"]
    assert "nasty train" in json.loads((folder.path / "best.json").read_text())["test_acc_error"]
    write_pictures(folder, folder.records(), folder.config(), None, 1.0)
    assert "test accuracy not measured: the weights of trial" in (folder.path / "report.html").read_text()
