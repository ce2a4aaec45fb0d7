"""Confirm before crowning: the top K trials are trained again at a higher fidelity, and the
winner is the best confirmed trial, not the luckiest proxy score. Driven without Ray: the
serial executor and an evaluation whose search scores are true quality plus seeded noise."""
from __future__ import annotations

import io
import json
import random
from pathlib import Path

from rich.console import Console

from nasty import parse
from nasty.search.folder import RunFolder
from nasty.search.loop import SerialExecutor
from nasty.search.runner import search
from nasty.search.settings import Settings

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


def quality(proxy_text: str) -> float:
    """A made-up true accuracy of a proxy: deterministic in the architecture."""
    return 0.5 + (sum(map(ord, proxy_text)) % 997) / 4000


def fake_evaluate(config, report):
    """Search trials (few validation images) see the truth plus big noise; confirmations (the
    whole validation split) see it almost exactly."""
    truth = quality(config["proxy"])
    val_images = config["rows"]["val"][1] - config["rows"]["val"][0]
    noise = random.Random(config["seed"]).gauss(0, 0.2 if val_images < 1000 else 0.001)
    for e in range(1, config["train"]["epochs"] + 1):
        report({"epoch": e, "val_acc": truth + noise, "train_s": 0.01 * e, "started": 0.0})


def run(tmp_path, name, **kw):
    base = dict(space=TINY, budget="20MFLOPs", trials=8, epochs=1, subset=500, val_subset=300, seed=3,
                confirm=3, confirm_seeds=2, confirm_epochs=1, confirm_subset=1000, runs_dir=str(tmp_path), name=name)
    s = Settings(**{**base, **kw})
    return search(s, console=Console(file=io.StringIO()), live=False, executor=SerialExecutor(fake_evaluate))


def test_the_winner_is_the_best_confirmed_trial(tmp_path):
    summary = run(tmp_path, "c")
    folder = RunFolder(tmp_path / "c")
    recs = [r for r in folder.records() if r.status == "ok"]
    confs = folder.confirmations()
    top = sorted(recs, key=lambda r: -r.val_acc)[:3]
    assert sorted({c.trial for c in confs}) == sorted(r.trial for r in top)
    assert len(confs) == 6 and {c.seed for c in confs} == {0, 1}
    for c in confs:
        assert c.fidelity == {"epochs": 1, "train_images": 1000, "val_images": 6000}
    truth = {r.trial: quality(r.proxy_genotype) for r in top}
    winner = max(truth, key=truth.get)
    best = json.loads((folder.path / "best.json").read_text())
    assert best["trial"] == winner == summary["best"]["trial"]
    assert abs(best["confirmed"]["val_acc"] - truth[winner]) < 0.01 and best["val_acc"] == \
        next(r.val_acc for r in recs if r.trial == winner)          # both scores are kept
    text = (folder.path / "leaderboard.txt").read_text()
    assert "confirmed" in text.splitlines()[0]
    board = json.loads((folder.path / "leaderboard.json").read_text())
    assert board[0]["trial"] == winner and "confirmed_val_acc" in board[0]
    assert parse((folder.path / "best_proxy.nasty").read_text()).name


def test_confirm_zero_skips_the_stage(tmp_path):
    run(tmp_path, "z", confirm=0)
    folder = RunFolder(tmp_path / "z")
    assert folder.confirmations() == [] and not (folder.path / "confirm.jsonl").exists()
    best = json.loads((folder.path / "best.json").read_text())
    recs = [r for r in folder.records() if r.status == "ok"]
    assert best["trial"] == max(recs, key=lambda r: r.val_acc).trial and "confirmed" not in best


def test_a_resumed_run_confirms_only_what_is_missing(tmp_path):
    run(tmp_path, "r")
    folder = RunFolder(tmp_path / "r")
    lines = (folder.path / "confirm.jsonl").read_text().splitlines(keepends=True)
    (folder.path / "confirm.jsonl").write_text("".join(lines[:2]))     # as if killed after two confirmations
    search(Settings(), resume=str(folder.path), console=Console(file=io.StringIO()), live=False,
           executor=SerialExecutor(fake_evaluate))
    after = (folder.path / "confirm.jsonl").read_text().splitlines(keepends=True)
    assert after[:2] == lines[:2] and len(after) == 6
    assert len({(json.loads(x)["trial"], json.loads(x)["seed"]) for x in after}) == 6
