"""What a third attack on nasty found in run folders, resumes and processes (issue 25, items 1, 2,
4-7), each reproduced and fixed at its root:

1. resume and report trust no damaged or shortened trials.jsonl: a torn last line is at most one
   record cut short (never NUL bytes), and the records must agree with controller.json's count,
   leaderboard.json, best.json and confirm.jsonl, or nothing is touched;
2. `nasty train RUN` holds the run folder: a second training, or one during a search, is refused;
4. --address where something other than Ray listens is a one-line error within seconds;
5. SIGTERM to a search's whole process group ends it at once with nasty's message (rc 143);
6. study.db and sampler.db are views of trials.jsonl, rebuilt from it whenever they are missing,
   damaged, foreign or stale, one study per file named by the run's identity;
7. a trial cut short by Ctrl-C, SIGTERM or SIGKILL runs again under its number on resume.

The runs here train real proxies on Fashion-MNIST; most run their trials in this process (the
real evaluator without Ray: test_own_data.in_process), the signal tests are real subprocesses."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from nasty.cli import main
from nasty.errors import RunError
from nasty.search.folder import RunFolder, torn_tail
from nasty.search.runner import search
from nasty.search.settings import Settings
from procs import kill_session, session_pids
from test_own_data import in_process
from test_study import _check_study_matches_records

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")
ROOT = Path(__file__).parent.parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


def quiet():
    return Console(file=io.StringIO(), width=200)


def hashes(folder: Path) -> dict:
    """Every entry under `folder` (hidden ones too): a file by its bytes' hash, a folder as such."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.err.strip(), captured.out


def one_line(rc, err, out=None):
    assert rc == 2 and err.startswith("nasty: error:") and "\n" not in err and "Traceback" not in err, (rc, err)
    return err


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "trials.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished TPE search (its own sampler.db, study.db, leaderboard, best.json)."""
    root = tmp_path_factory.mktemp("attack3")
    s = Settings(space=TINY, budget="20MFLOPs", trials=6, epochs=1, subset=300, val_subset=100, batch_size=64,
                 lr=0.05, seed=3, runs_dir=str(root), name="base", controller="tpe",
                 controller_options="n_startup_trials=2", confirm=0, time_budget=600)
    with pytest.MonkeyPatch.context() as mp:
        search(s, console=quiet(), live=False, executor=in_process(mp))
    folder = root / "base"
    assert {"sampler.db", "study.db", "leaderboard.json", "best.json", "controller.json"} <= {
        p.name for p in folder.iterdir()}
    return folder


@pytest.fixture
def run(finished, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished, folder)
    return folder


def resume(folder: Path, monkeypatch, trials: int = 8):
    return search(Settings(trials=trials), resume=str(folder), console=quiet(), live=False,
                  executor=in_process(monkeypatch))


# ------------------------------------------------------------------ 1. lost records are refused
def _zeros(p):                               # `head -c $(stat -c %s F) /dev/zero > F`: a power cut
    p.write_bytes(b"\0" * p.stat().st_size)


def _truncated(p):                           # lost its last records (cut at a line boundary)
    p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:3]))


def _no_newline(p):                          # `tr -d '\n'`: records run together
    p.write_bytes(p.read_bytes().replace(b"\n", b""))


LOST = ["controller.json counts", "leaderboard.json ranks", "best.json names trial", "which it lacks"]


@pytest.mark.parametrize("damage, needles", [
    (_zeros, ["all NUL bytes"]),
    (_truncated, ["holds 3 records", "controller.json counts"]),
    (lambda p: p.unlink(), ["trials.jsonl is missing", *LOST]),
    (lambda p: p.write_bytes(b""), ["holds 0 records", *LOST]),
    (_no_newline, ["records run together"]),
], ids=["zero-filled", "truncated", "deleted", "emptied", "no-newline"])
def test_resume_and_report_refuse_lost_records_and_change_no_byte(run, capsys, damage, needles):
    damage(run / "trials.jsonl")
    before = hashes(run)
    for argv in (["search", "--resume", run], ["report", run], ["report", run, "--json"]):
        err = one_line(*cli(capsys, *argv))
        assert all(n in err for n in needles) and "left as it is" in err, err
        assert hashes(run) == before


def test_a_torn_last_line_is_at_most_one_record_cut_short(run, capsys, monkeypatch):
    p = run / "trials.jsonl"
    whole = p.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    # a crash mid-append: the first half of a record; resume mends it (and only it)
    p.write_bytes(whole + last[: len(last) // 2])
    assert len(RunFolder(run).verify().records) == len(whole.splitlines())
    assert RunFolder(run).repair() == "cut" and p.read_bytes() == whole
    # NUL bytes are never a torn record, wherever they are in the tail
    for tail in (b"\0" * 40, last[:30] + b"\0" * 200):
        p.write_bytes(whole + tail)
        before = hashes(run)
        assert "NUL" in one_line(*cli(capsys, "search", "--resume", run))
        assert hashes(run) == before
    # more than one record long, not a record's beginning, or a whole object and more: damage
    monkeypatch.setattr("nasty.search.folder.RECORD_BOUND", 100)
    longest = max(map(len, whole.splitlines()))
    assert "longer than any one record" in torn_tail(b'{"status":"ok","reason":"' + b"x" * longest, longest)
    assert "not the beginning of a record" in torn_tail(b"garbage{", longest)
    assert "not the beginning of a record" in torn_tail(b'{"status":"\xc3\xa9', longest)
    shortest = min(whole.splitlines(), key=len)         # a whole record and more, within one record's length
    assert len(shortest) + 20 <= longest, "the fixture's records are too alike in length for this check"
    assert "run together" in torn_tail(shortest + shortest[:20], longest)
    assert torn_tail(last[:-5], longest) is None


def test_confirmations_of_trials_the_records_lack_are_refused(run, capsys):
    with open(run / "confirm.jsonl", "a") as f:
        f.write('{"trial":99,"seed":0,"status":"ok","val_acc":0.5,"epochs":[],"fidelity":{}}\n')
    before = hashes(run)
    err = one_line(*cli(capsys, "search", "--resume", run))
    assert "confirm.jsonl confirms trial #99, which it lacks" in err and hashes(run) == before


def test_results_are_never_rewritten_from_fewer_records_than_they_hold(run):
    from nasty.search.results import write_results
    folder = RunFolder(run)
    board = (run / "leaderboard.json").read_bytes()
    kept = [r for r in folder.records() if r.status.scored][:1]
    with pytest.raises(RunError, match="not rewritten from fewer records"):
        write_results(folder, kept)
    assert (run / "leaderboard.json").read_bytes() == board
    write_results(folder, folder.records())                    # all of them: rewritten as before
    assert json.loads((run / "leaderboard.json").read_bytes()) == json.loads(board)


# ------------------------------------------------------------------ 2. one training of a run at a time
def _train_args(run):
    return ["train", run, "--epochs", "1", "--subset", "3000", "--val-subset", "200", "--threads", "1"]


def test_a_training_of_a_run_a_search_holds_is_refused(run, capsys, sessions):
    holder = sessions([sys.executable, "-c",
                       "import time\nfrom nasty.search.folder import RunFolder\n"
                       f"with RunFolder({str(run)!r}).lock():\n    print('locked', flush=True)\n    time.sleep(300)\n"],
                      env=ENV)
    assert holder.stdout.readline().strip() == "locked"
    before = hashes(run)
    err = one_line(*cli(capsys, *_train_args(run)))
    assert f"in use by another nasty process (PID {holder.pid}, a search)" in err and "this training" in err
    assert hashes(run) == before and not (run / "final").exists()


@pytest.mark.slow
def test_two_trainings_of_one_run_the_second_is_refused_while_the_first_runs(run, capsys, sessions):
    first = sessions([sys.executable, "-m", "nasty.cli", *map(str, _train_args(run))], env=ENV)
    lines = []
    for line in first.stdout:                     # the first holds the run once it says where it saves
        lines.append(line)
        if "checkpoint after every epoch" in line:
            break
    assert first.poll() is None, "".join(lines)
    err = one_line(*cli(capsys, *_train_args(run)))
    assert f"(PID {first.pid}, a training)" in err
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0 and "weights, genotype and training state saved" in out, "".join(lines) + out
    from nasty.final import load_checkpoint
    assert load_checkpoint(run / "final" / "checkpoint.pt")["epoch"] == 1
    assert cli(capsys, *_train_args(run))[0] == 0            # once it is over, the run is free again


# ------------------------------------------------------------------ 4. --address where Ray is not
class _Server:
    """A TCP server on 127.0.0.1 that accepts connections and says nothing, or answers like HTTP."""

    def __init__(self, http: bool):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.http, self.conns = http, []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.http:
                c.recv(1024)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("http, needle", [(False, "said nothing"), (True, "HTTP/1 server")], ids=["silent", "http"])
def test_an_address_where_ray_is_not_is_a_one_line_error(capsys, tmp_path, http, needle):
    server = _Server(http)
    try:
        err = one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", "--address",
                            f"127.0.0.1:{server.port}", "--runs-dir", tmp_path, "--name", "far"))
    finally:
        server.close()
    assert f"127.0.0.1:{server.port}" in err and "not a Ray cluster" in err and needle in err
    assert not (tmp_path / "far").exists()


def test_a_ray_cluster_passes_the_address_check(ray_local):
    import ray

    from nasty.search.ray_backend import check_reachable
    check_reachable(ray._private.worker._global_node.gcs_address)       # a real GCS answers gRPC


# ------------------------------------------------------------------ 5, 7. signals
def _search_process(sessions, tmp_path, name, trials=8):
    return sessions([sys.executable, "-m", "nasty.cli", "search", "--space", TINY, "--budget", "20MFLOPs",
                     "--confirm", "0", "--trials", str(trials), "--epochs", "2", "--subset", "1500",
                     "--val-subset", "300", "--seed", "3", "--runs-dir", str(tmp_path), "--name", name], env=ENV)


def _wait_for_running(p, folder: Path, seconds=240):
    """Wait until a trial has finished and another one is running (in running.json)."""
    deadline = time.time() + seconds
    while time.time() < deadline and p.poll() is None:
        t, r = folder / "trials.jsonl", folder / "running.json"
        if t.is_file() and b'"status":"ok"' in t.read_bytes() and r.is_file():
            try:
                if json.loads(r.read_text())["trials"]:
                    return
            except ValueError:
                pass
        time.sleep(0.1)
    raise AssertionError("no trial was running:\n" + (p.stdout.read() if p.poll() is not None else ""))


def _resume_and_check_cut_trials_ran_again(folder: Path, before: list[dict], cut: list[dict], trials: int):
    r = subprocess.run([sys.executable, "-m", "nasty.cli", "search", "--resume", str(folder)], env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    after = records(folder)
    assert after[:len(before)] == before                              # append-only: nothing lost or rewritten
    done = [x for x in after if x["trial"] is not None]        # not over budget, not screened out
    assert sorted(x["trial"] for x in done) == list(range(trials))    # every number once, none skipped
    for c in cut:                                                      # run again, with their decisions
        again = [x for x in done if x["trial"] == c["trial"]]
        assert len(again) == 1 and again[0]["decisions"] == c["decisions"] and again[0]["sample"] == c["sample"]
    assert not (folder / "running.json").exists()
    return after


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_ends_the_search_at_once_and_it_resumes(sessions, tmp_path):
    """What a job scheduler does: SIGTERM to every process of the group, Ray's included."""
    folder = tmp_path / "term"
    p = _search_process(sessions, tmp_path, "term")
    _wait_for_running(p, folder)
    os.killpg(p.pid, signal.SIGTERM)
    out, _ = p.communicate(timeout=60)          # Ray's own way out took 64 s and ended with rc 1
    assert p.returncode == 143, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("nasty: stopped by SIGTERM:") and "--resume" in last and "cut short will run again" in last
    assert "Traceback" not in out and "GCS" not in out
    deadline = time.time() + 30                 # nothing of Ray outlives the search
    while session_pids(p.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not session_pids(p.pid)
    before = records(folder)
    recorded = {x["trial"] for x in before}
    # running.json: what ran when the signal came (a trial recorded an instant before may be there too)
    cut = [c for c in json.loads((folder / "running.json").read_text())["trials"] if c["trial"] not in recorded]
    assert cut and all(f"#{c['trial']}" in last for c in cut)
    _resume_and_check_cut_trials_ran_again(folder, before, cut, 8)


def test_a_trial_cut_by_ctrl_c_runs_again_under_its_number(tmp_path, monkeypatch):
    import test_own_data as standalone          # in_process's evaluator: the real one, in this process
    s = Settings(space=TINY, budget="20MFLOPs", trials=5, epochs=2, subset=300, val_subset=100, batch_size=64,
                 lr=0.05, seed=5, runs_dir=str(tmp_path), name="cut", confirm=0, time_budget=600)
    real = standalone.evaluate
    seen = []

    def ctrl_c_in_the_third(config, data, report):
        seen.append(config["trial"])
        if len(seen) == 3:
            report({"epoch": 1, "val_acc": 0.1, "train_s": 0.1})       # an epoch done, then Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return real(config, data, report)

    monkeypatch.setattr(standalone, "evaluate", ctrl_c_in_the_third)
    with pytest.raises(KeyboardInterrupt) as e:
        search(s, console=quiet(), live=False, executor=in_process(monkeypatch))
    folder = tmp_path / "cut"
    cut = seen[2]
    assert e.value.signum == signal.SIGINT and str(e.value).startswith("interrupted:")
    assert f"trial #{cut} cut short will run again" in str(e.value)
    before = records(folder)
    assert cut not in [x["trial"] for x in before]
    journal = json.loads((folder / "running.json").read_text())["trials"]
    assert [c["trial"] for c in journal] == [cut]
    monkeypatch.setattr(standalone, "evaluate", real)
    search(Settings(), resume=str(folder), console=quiet(), live=False, executor=in_process(monkeypatch))
    after = records(folder)
    assert after[:len(before)] == before
    done = [x for x in after if x["trial"] is not None]        # not over budget, not screened out
    assert sorted(x["trial"] for x in done) == list(range(5))
    again = next(x for x in done if x["trial"] == cut)
    assert again["decisions"] == journal[0]["decisions"] and again["sample"] == journal[0]["sample"]
    assert again["status"] == "failed" or len(again["epochs"]) == 2            # trained from its start
    assert not (folder / "running.json").exists()
    _check_study_matches_records(folder)


# ------------------------------------------------------------------ 6. the views are rebuilt from the records
def _hold_locked(sessions, db: Path):
    """Another process holding `db` locked (an exclusive SQLite transaction), until the test ends."""
    p = sessions([sys.executable, "-c",
                  "import sqlite3, sys, time\n"
                  f"con = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                  "con.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(300)\n"])
    assert p.stdout.readline().strip() == "locked"
    return p


def _unwritable(db: Path, kind: str, sessions):
    """A folder (holding a user's file) where the SQLite file was, or the file locked by another process."""
    if kind == "folder":
        db.unlink()
        db.mkdir()
        (db / "mine.txt").write_text("a user's file")
    else:
        _hold_locked(sessions, db)


def _sql(db: Path, statement: str):
    con = sqlite3.connect(db)
    con.execute(statement)
    con.commit()
    con.close()


def _foreign_study(db: Path, name="someone-else"):
    import optuna
    db.unlink()
    st = optuna.create_study(study_name=name, storage=f"sqlite:///{db}")
    st.add_trial(optuna.trial.create_trial(value=0.9, params={}, distributions={}))


@pytest.mark.parametrize("damage", ["garbage", "deleted", "foreign", "second-study", "stale"])
def test_a_damaged_or_foreign_study_db_is_rebuilt_from_the_records(run, monkeypatch, damage):
    import optuna
    db = run / "study.db"
    if damage == "garbage":
        db.write_bytes(b"this is not an SQLite file" * 100)
    elif damage == "deleted":
        db.unlink()
    elif damage == "foreign":
        _foreign_study(db)
    elif damage == "second-study":                # what a renamed run used to get: two studies in one file
        optuna.create_study(study_name="run", storage=f"sqlite:///{db}")
    else:                                         # a record the study does not hold as it is
        _sql(db, "UPDATE trial_user_attributes SET value_json = '\"failed\"' WHERE key = 'status' "
                 "AND trial_id = (SELECT MIN(trial_id) FROM trials)")
    resume(run, monkeypatch)
    _check_study_matches_records(run)            # one study, named by the run: load_study(study_name=None)


@pytest.mark.parametrize("kind", ["folder", "locked"])
def test_a_study_db_that_cannot_be_written_never_stops_a_search(run, monkeypatch, sessions, kind):
    _unwritable(run / "study.db", kind, sessions)
    before = hashes(run)
    summary = resume(run, monkeypatch)
    assert summary["counts"]["ok"] + summary["counts"]["failed"] == 8
    assert {k: v for k, v in hashes(run).items() if k.startswith("study.db")} == \
        {k: v for k, v in before.items() if k.startswith("study.db")}            # left as it was


def test_a_copied_run_keeps_one_study_named_by_its_identity(run, capsys, monkeypatch):
    import optuna
    copy = run.parent / "copy-of-run"
    shutil.copytree(run, copy)
    resume(copy, monkeypatch)
    assert cli(capsys, "report", copy)[0] == 0
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{copy / 'study.db'}")
    assert study.study_name == "base"                                   # the name it was created with
    assert optuna.load_study(study_name=None, storage=f"sqlite:///{copy / 'sampler.db'}").study_name == "base"
    _check_study_matches_records(copy)


def _sampler_lines(folder: Path) -> list[int]:
    import optuna
    own = optuna.load_study(study_name=None, storage=f"sqlite:///{folder / 'sampler.db'}")
    return sorted(t.user_attrs["record"] for t in own.trials if "record" in t.user_attrs)


@pytest.mark.parametrize("damage", ["deleted", "garbage", "foreign", "stale"])
def test_tpes_own_study_is_rebuilt_from_the_records_it_was_told(run, monkeypatch, damage):
    db = run / "sampler.db"
    told = json.loads((run / "controller.json").read_text())["told"]
    assert _sampler_lines(run) == list(range(told))
    if damage == "deleted":
        db.unlink()
    elif damage == "garbage":
        db.write_bytes(b"\0" * 4096)
    elif damage == "foreign":
        _foreign_study(db, "base")                 # the same name, another run's trials
    else:
        _sql(db, "DELETE FROM trials WHERE trial_id = (SELECT MAX(trial_id) FROM trials)")
    resume(run, monkeypatch)
    # every record, the earlier ones included, is in TPE's study again, once
    assert _sampler_lines(run) == list(range(len(records(run))))
    _check_study_matches_records(run)


@pytest.mark.parametrize("kind", ["folder", "locked"])
def test_tpes_own_study_that_cannot_be_rebuilt_is_refused_before_anything_starts(run, capsys, sessions, kind):
    _unwritable(run / "sampler.db", kind, sessions)
    before = hashes(run)
    err = one_line(*cli(capsys, "search", "--resume", run))
    assert "sampler.db" in err and ("folder" in err if kind == "folder" else "locked" in err)
    assert "left as it is" in err and hashes(run) == before
