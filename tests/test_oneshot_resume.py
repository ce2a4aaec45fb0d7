"""A one-shot search (`--evaluator supernet`) SIGKILLed mid-run, as a real `nasty search`
subprocess with its Ray, then resumed with `nasty search --resume`: the supernet continues from
its last checkpoint in the run folder, the controller from controller.json, no scored child is
lost or recorded twice, and the pick is confirmed by standalone training."""
import json
import os
import signal
import sys
import time

import pytest
from procs import kill_session


def _nasty(*args):
    return [sys.executable, "-m", "nasty.cli", *args]


def _lines(path):
    if not path.is_file():
        return []
    return [json.loads(l) for l in path.read_bytes().splitlines(keepends=True) if l.endswith(b"\n")]


@pytest.mark.slow
def test_a_killed_one_shot_search_resumes_from_its_supernet_checkpoint(sessions, tmp_path):
    import torch
    folder = tmp_path / "oneshot"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    p = sessions(_nasty("search", "--space", "nb201mini", "--budget", "2MFLOPs", "--evaluator", "supernet",
                        "--controller", "random", "--supernet-warmup", "0.2", "--time-budget", "70",
                        "--subset", "2000", "--val-subset", "500", "--score-images", "128", "--confirm", "1",
                        "--confirm-seeds", "1", "--confirm-epochs", "1", "--confirm-subset", "2500", "--seed", "5",
                        "--runs-dir", str(tmp_path), "--name", "oneshot"), env=env)
    trials, checkpoint = folder / "trials.jsonl", folder / "oneshot" / "supernet.pt"
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if checkpoint.is_file() and sum(1 for r in _lines(trials) if r["status"] == "ok") >= 3:
            break
        time.sleep(0.1)
    assert p.poll() is None, "the search ended before it could be killed:\n" + p.stdout.read()
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    kill_session(p.pid)
    before = _lines(trials)
    saved = torch.load(checkpoint, weights_only=True)
    steps_at_kill = saved["supernet"]["steps"]
    assert steps_at_kill > 0 and before
    assert not (folder / "best.json").exists()

    r = sessions(_nasty("search", "--resume", str(folder)), env=env)
    out, _ = r.communicate(timeout=400)
    assert r.returncode == 0, out
    after = _lines(trials)
    # nothing recorded before the kill was lost or rewritten; every child has one trial number
    assert after[:len(before)] == before
    ids = [x["trial"] for x in after if x["trial"] is not None]
    assert len(ids) == len(set(ids)) and len(after) > len(before)
    # the supernet went on from its checkpoint (not from scratch), and trained further
    info = json.loads((folder / "oneshot.json").read_text())
    assert info["resumed_from"]["steps"] == steps_at_kill
    assert info["steps"] > steps_at_kill
    # the controller was told every record once; never anything over the budget
    assert json.loads((folder / "controller.json").read_text())["told"] == len(after)
    assert all(x["target"]["macs"] <= 2_000_000 for x in after if x["status"] == "ok")
    assert all(x["status"] != "ok" or x["val_acc"] is not None for x in after)
    # the pick was confirmed by standalone training before it was crowned
    confirmed = _lines(folder / "confirm.jsonl")
    best = json.loads((folder / "best.json").read_text())
    assert confirmed and best["trial"] in {c["trial"] for c in confirmed if c["status"] == "ok"}
