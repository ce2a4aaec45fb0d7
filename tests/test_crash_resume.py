"""The whole `nasty search` process SIGKILLed mid-run (a real subprocess, a real signal),
then `nasty search --resume` in a new process: the run completes, no finished trial is
lost or re-run, a trial the kill cut short runs again under its number, and the leaderboard
holds every trial exactly once. Also: a corrupted run
folder on --resume is a one-line error that leaves every byte of it as it was."""
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from procs import kill_session as _kill_session

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")
TRIALS = 6


def _nasty(*args):
    return [sys.executable, "-m", "nasty.cli", *args]


def _lines(path: Path):
    out = []
    if path.is_file():
        for line in path.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                out.append(json.loads(line))
    return out


@pytest.mark.slow
def test_search_killed_mid_run_resumes_without_losing_or_rerunning_trials(sessions, tmp_path):
    folder = tmp_path / "crash"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = sessions(_nasty("search", "--space", TINY, "--budget", "20MFLOPs", "--trials", str(TRIALS),
                        "--epochs", "1", "--subset", "1500", "--val-subset", "300", "--batch-size", "64",
                        "--time-budget", "600", "--confirm", "0", "--seed", "3", "--runs-dir", str(tmp_path), "--name", "crash"),
                 env=env)
    trials_file = folder / "trials.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if any(r.get("status") in ("ok", "failed") for r in _lines(trials_file)):
            break
        time.sleep(0.05)
    assert p.poll() is None, "the search ended before it could be killed:\n" + p.stdout.read()
    os.killpg(p.pid, signal.SIGKILL)             # the whole search: driver and the Ray it started
    p.wait(timeout=30)
    _kill_session(p.pid)
    before = [r for r in _lines(trials_file) if r.get("status") in ("ok", "failed")]
    assert 1 <= len(before) < TRIALS
    running = folder / "running.json"
    # running.json: what ran when the kill came (a trial recorded an instant before the kill may still
    # be there: the resume knows it by its record and does not run it again)
    recorded = {r.get("trial") for r in _lines(trials_file)}
    cut = [c for c in (json.loads(running.read_text())["trials"] if running.is_file() else [])
           if c["trial"] not in recorded]

    r = sessions(_nasty("search", "--resume", str(folder)), env=env)
    out, _ = r.communicate(timeout=300)
    assert r.returncode == 0, out

    after = _lines(trials_file)
    done = [x for x in after if x.get("status") in ("ok", "failed")]
    # the run completed: exactly TRIALS finished trials, each trial number once, none skipped (a
    # trial cut by the kill is not recorded; running.json named it, and the resumed run ran it again
    # under its number, with its decisions)
    ids = [x["trial"] for x in done]
    assert sorted(ids) == list(range(TRIALS))
    for c in cut:
        assert [(x["decisions"], x["sample"]) for x in done if x["trial"] == c["trial"]] == [(c["decisions"],
                                                                                             c["sample"])]
    assert not (folder / "running.json").exists()
    # nothing finished before the kill was lost, rewritten or run again
    for old in before:
        again = [x for x in done if x["trial"] == old["trial"]]
        assert again == [old]
    # the leaderboard holds every trained trial exactly once; failed ones are listed once too
    board = json.loads((folder / "leaderboard.json").read_text())
    ok = sorted(x["trial"] for x in done if x["status"] == "ok")
    assert sorted(b["trial"] for b in board) == ok and len(board) == len(ok)
    text = (folder / "leaderboard.txt").read_text()
    rows = [line.split()[1] for line in text.splitlines() if line.split()[:1] and line.split()[0].isdigit()]
    assert sorted(rows) == sorted(f"#{t}" for t in ok)         # one row per trained trial
    counts = {s: sum(1 for x in done if x["status"] == s) for s in ("ok", "failed")}
    assert ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if v) in text
    best = json.loads((folder / "best.json").read_text())
    assert best["trial"] in ok
    # the controller was told every record once
    assert json.loads((folder / "controller.json").read_text())["told"] == len(after)
    # never trained over the budget
    assert all(x["target"]["macs"] <= 20_000_000 for x in done if x["status"] == "ok")


@pytest.mark.parametrize("broken", ["config", "controller", "record"])
def test_a_corrupted_run_folder_on_resume_is_a_one_line_error_and_nothing_is_touched(tmp_path, capsys, broken):
    from nasty.cli import main
    folder = tmp_path / "run"
    folder.mkdir()
    config = json.dumps({"space": TINY, "budget": "20MFLOPs", "trials": 3, "epochs": 1, "subset": 500,
                         "val_subset": 200, "seed": 0, "controller": "random", "name": "run",
                         "runs_dir": str(tmp_path)}, indent=1)
    files = {
        "config.json": config[:len(config) // 2] if broken == "config" else config + "\n",
        # a record cut by a crash at the end; with "record", a whole line of the wrong types before it
        "trials.jsonl": ('{"trial":"zero","status":"ok","val_acc":"high"}\n' if broken == "record" else "")
        + '{"trial":0,"status":"failed","reason":"x","decisions":{},"target":{}}\n{"trial":1,"sta',
        "controller.json": "\x00\x89garbage{{{ not json" if broken == "controller" else
                           json.dumps({"name": "random", "samples": 1, "told": 1, "state": {}}),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    rc = main(["search", "--resume", str(folder)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("nasty: error:") and "\n" not in err, err
    assert {"config": "config.json", "controller": "controller.json", "record": "trials.jsonl line 1"}[broken] in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
