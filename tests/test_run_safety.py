"""What an attack on nasty found on the search side (issue 15), each reproduced and fixed at
its root: results are never lost or rewritten from damaged records, one run has one writer,
Ray listens on loopback only, names stay names, nothing hangs, and bad values are one line."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasty.cli import main
from nasty.errors import RunError
from nasty.search.folder import RunFolder
from procs import kill_session, listening_sockets, session_pids

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")
FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return rc, err


def one_line(rc, err):
    assert rc == 2 and err.startswith("nasty: error:") and "\n" not in err and "Traceback" not in err, (rc, err)
    return err


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run(tmp_path):
    """A finished run folder (written by nasty 0.1.0), its space path pointing at this checkout."""
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(space=TINY, runs_dir=str(tmp_path), name="run")
    (folder / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    return folder


# ------------------------------------------------------------------ 1. data loss
def test_report_refuses_damaged_records_and_changes_nothing(run, capsys):
    lines = (run / "trials.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    lines[1] = lines[1][: len(lines[1]) // 2] + b"\n"          # line 2 cut short
    (run / "trials.jsonl").write_bytes(b"".join(lines))
    before = snapshot(run)
    err = one_line(*cli(capsys, "report", run))
    assert "line 2 is damaged" in err
    assert snapshot(run) == before


def test_a_record_number_beyond_reason_is_damage(run, capsys):
    with open(run / "trials.jsonl", "a") as f:
        f.write('{"trial": 1000000000000000000000000000000, "status": "ok", "val_acc": 0.5}\n')
    before = snapshot(run)
    assert "is damaged" in one_line(*cli(capsys, "report", run))
    assert snapshot(run) == before


def test_a_whole_last_record_without_its_newline_is_kept(run, capsys):
    p = run / "trials.jsonl"
    p.write_bytes(p.read_bytes()[:-1])                       # `truncate -s -1`
    before = snapshot(run)
    n = len(RunFolder(run).records())
    # a resume refused for another reason touches nothing
    assert "cannot change" in one_line(*cli(capsys, "search", "--resume", run, "--budget", "30M"))
    assert snapshot(run) == before
    # the repair a resume makes completes the record; it is never cut
    assert RunFolder(run).repair() == "newline"
    assert p.read_bytes() == before["trials.jsonl"] + b"\n" and len(RunFolder(run).records()) == n


def test_pruning_never_follows_a_symlink(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "trial_0042.pt").write_bytes(b"not ours")
    shutil.rmtree(run / "weights", ignore_errors=True)
    (run / "weights").symlink_to(elsewhere)
    RunFolder(run).prune_weights(keep=set())
    assert (elsewhere / "trial_0042.pt").read_bytes() == b"not ours"
    (run / "weights").unlink()
    (run / "weights").mkdir()
    (run / "weights" / "trial_0007.pt").symlink_to(elsewhere / "trial_0042.pt")
    RunFolder(run).prune_weights(keep=set())
    assert (elsewhere / "trial_0042.pt").is_file()


def test_train_checks_where_it_saves_before_training(capsys, tmp_path):
    t = time.time()
    err = one_line(*cli(capsys, "train", "lenet5", "--epochs", "1", "--save", "/nonexistent/x.pt"))
    assert "/nonexistent" in err and "does not exist" in err and time.time() - t < 30
    out = capsys.readouterr().out
    assert "training" not in out
    err = one_line(*cli(capsys, "train", "lenet5", "--save", str(tmp_path)))
    assert "is a folder" in err


def test_a_record_that_cannot_be_written_stops_the_search_with_an_error(capsys, tmp_path, monkeypatch):
    """Appends fail from the third record on (a full disk, an immutable file): the search stops
    with a non-zero exit and a one-line error; the records before it are intact."""
    real = RunFolder.append
    calls = []

    def failing(self, record):
        calls.append(record)
        if len(calls) > 2:
            raise RunError(f"cannot append trial {record.trial} to {self.path / 'trials.jsonl'}: "
                           "Operation not permitted; the search stops so that no result is lost silently")
        return real(self, record)

    monkeypatch.setattr(RunFolder, "append", failing)
    rc, err = cli(capsys, "search", "--space", TINY, "--budget", "20MFLOPs", "--trials", "6", "--epochs", "1", "--confirm", "0",
                  "--subset", "300", "--val-subset", "100", "--seed", "2", "--runs-dir", tmp_path, "--name", "full")
    assert rc == 2 and "cannot append" in err.splitlines()[-1], err
    written = (tmp_path / "full" / "trials.jsonl").read_bytes().splitlines()
    assert len(written) == 2 and all(json.loads(line) == calls[i].to_dict() for i, line in enumerate(written))
    assert "trained" not in capsys.readouterr().out            # no summary claims the trials were done


# ------------------------------------------------------------------ 2. one run, one writer
def test_a_second_process_on_a_run_folder_is_refused_and_a_killed_holder_leaves_no_lock(run, capsys, sessions):
    holder = sessions([sys.executable, "-c",
                       "import sys, time\nfrom nasty.search.folder import RunFolder\n"
                       f"with RunFolder({str(run)!r}).lock():\n    print('locked', flush=True)\n    time.sleep(300)\n"],
                      env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert holder.stdout.readline().strip() == "locked"
    before = snapshot(run)
    err = one_line(*cli(capsys, "search", "--resume", run))
    assert f"PID {holder.pid}" in err and "in use" in err
    assert snapshot(run) == before
    # `nasty report` still shows the leaderboard, without rewriting what the holder writes
    rc = main(["report", str(run)])
    assert rc == 0 and "in use" in capsys.readouterr().out and snapshot(run) == before
    # where the kernel does not say who holds a lock (macOS, Windows), the holder's PID note does
    import nasty.search.folder as folder_module
    real = folder_module._kernel_holder
    folder_module._kernel_holder = lambda st: None
    try:
        err = one_line(*cli(capsys, "search", "--resume", run))
    finally:
        folder_module._kernel_holder = real
    assert f"PID {holder.pid}" in err and snapshot(run) == before
    os.kill(holder.pid, signal.SIGKILL)                        # a killed holder: the lock goes with it
    holder.wait(timeout=30)
    with RunFolder(run).lock():
        pass


# ------------------------------------------------------------------ 3. nothing listens beyond localhost
def test_a_local_search_listens_on_loopback_only(sessions, tmp_path):
    import ipaddress
    p = sessions([sys.executable, "-m", "nasty.cli", "search", "--space", TINY, "--budget", "20MFLOPs", "--confirm", "0",
                  "--trials", "3", "--epochs", "1", "--subset", "2000", "--val-subset", "300", "--seed", "1",
                  "--runs-dir", str(tmp_path), "--name", "net"], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen, deadline = {}, time.time() + 180
    while p.poll() is None and time.time() < deadline:
        for addr, port in listening_sockets(session_pids(p.pid)):
            seen[(addr, port)] = True
        time.sleep(0.3)
    out = p.stdout.read()
    assert p.returncode == 0, out
    assert len(seen) >= 3, seen                                # GCS, raylet, workers... were seen listening
    def loopback(a):
        ip = ipaddress.ip_address(a)
        return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback     # ::ffff:127.0.0.1 is 127.0.0.1
    assert all(loopback(a) for a, _ in seen), seen


def test_a_builtin_space_is_a_name_and_a_file_is_a_py_path(capsys, tmp_path):
    evil = tmp_path / "x"
    evil.write_text("raise SystemExit('ran a file that is not a space file')\n")
    for given in (str(evil), "../../../" + str(evil).lstrip("/")):
        err = one_line(*cli(capsys, "search", "--space", given, "--budget", "600M", "--runs-dir", tmp_path))
        assert "unknown search space" in err and "must end in .py" in err


@pytest.mark.parametrize("name", ["../../escaped_run", "a/b", "line\nbreak", ".hidden", "", "x" * 200])
def test_a_run_name_is_a_plain_name(capsys, tmp_path, name):
    err = one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", "--runs-dir", tmp_path / "runs",
                        "--name", name))
    assert "plain name" in err
    assert not (tmp_path / "escaped_run").exists() and not (tmp_path / "runs").exists()


def test_runs_dir_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert "is a file" in one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", "--runs-dir", f))


# ------------------------------------------------------------------ 4. no silent hang
def test_a_space_that_sleeps_is_stopped_naming_where(tmp_path, monkeypatch):
    import nasty.space
    from nasty.search.budget import Budget, preflight
    from nasty.space import SpaceError, load_space
    monkeypatch.setattr(nasty.space, "SPACE_SECONDS", 1.0)
    f = tmp_path / "sleepy.py"
    f.write_text("import time, nasty\nfrom nasty.space import space\n"
                 "@space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10))\n"
                 "def sleepy(t, net):\n    k = t.choice('k', [3, 5])\n"
                 "    if net.proxy or k == 5:\n        time.sleep(60)\n"
                 "    return nasty.parse(f\"net s input {'x'.join(map(str, net.input))} classes {net.classes}\\n"
                 "stem conv3x3 c=8\\nhead gap flatten fc c=classes\\n\")\n")
    s = load_space(str(f))
    t0 = time.time()
    with pytest.raises(SpaceError, match=r"took more than 1 s to build its target network \(after deciding 'k'"):
        s.genotype({"k": 5})
    with pytest.raises(SpaceError, match="proxy network"):
        s.genotype({"k": 3}, proxy=True)
    assert time.time() - t0 < 10
    assert preflight(s, Budget.parse("1G"), fit=False, seed=0).macs > 0     # k=3 samples build in time


def test_resources_the_machine_can_never_give_are_refused(capsys, tmp_path):
    err = one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", "--cpus-per-trial", "100",
                        "--runs-dir", tmp_path, "--name", "big"))
    assert "--cpus-per-trial 100" in err and "CPUs" in err and not (tmp_path / "big").exists()


def test_an_unreachable_cluster_is_an_error_within_seconds(capsys, tmp_path):
    t = time.time()
    err = one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", "--address", "127.0.0.1:1",
                        "--runs-dir", tmp_path, "--name", "far"))
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in err and time.time() - t < 60
    assert not (tmp_path / "far").exists()


@pytest.mark.slow
def test_sigterm_ends_a_search_as_ctrl_c_does(sessions, tmp_path):
    p = sessions([sys.executable, "-m", "nasty.cli", "search", "--space", TINY, "--budget", "20MFLOPs", "--confirm", "0",
                  "--trials", "8", "--epochs", "1", "--subset", "1500", "--val-subset", "300", "--seed", "3",
                  "--runs-dir", str(tmp_path), "--name", "term"], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    trials = tmp_path / "term" / "trials.jsonl"
    deadline = time.time() + 200
    while time.time() < deadline and p.poll() is None:
        if trials.is_file() and b'"status":"ok"' in trials.read_bytes() + b'"status":"failed"':
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    kill_session(p.pid)
    assert p.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out and "stack trace" not in out.lower() and "SIGTERM" not in out
    assert RunFolder(tmp_path / "term").records()


# ------------------------------------------------------------------ 5. clean errors
@pytest.mark.parametrize("argv, needle", [
    (["--time-budget", "nan"], "--time-budget must be a finite number"),
    (["--cpus-per-trial", "nan"], "--cpus-per-trial must be a finite number"),
    (["--subset", "-5"], "--subset must be at least 1"),
    (["--lr", "inf"], "--lr must be a finite number"),
])
def test_bad_numbers_for_a_search(capsys, tmp_path, argv, needle):
    err = one_line(*cli(capsys, "search", "--space", TINY, "--budget", "20M", *argv, "--runs-dir", tmp_path,
                        "--name", "n"))
    assert needle in err and not (tmp_path / "n").exists()


@pytest.mark.parametrize("argv, needle", [
    (["train", "lenet5", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["train", "lenet5", "--lr", "0"], "--lr must be a positive number"),
    (["bench", "run", "--controllers", "tpe:multivariate=banana", "--trials", "2", "--seeds", "1"],
     "multivariate='banana' must be bool"),
])
def test_bad_numbers_for_other_commands(capsys, argv, needle):
    assert needle in one_line(*cli(capsys, *argv))


def test_report_top_must_be_positive(run, capsys):
    assert "--top must be a whole number of at least 1" in one_line(*cli(capsys, "report", run, "--top", "-3"))


def test_trials_jsonl_replaced_by_a_folder(run, capsys):
    (run / "trials.jsonl").unlink()
    (run / "trials.jsonl").mkdir()
    for argv in (["report", run], ["search", "--resume", run]):
        err = one_line(*cli(capsys, *argv))
        assert "trials.jsonl" in err


def test_a_space_that_exits_or_ignores_net_is_a_one_line_error(capsys, tmp_path):
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(0)\n")
    assert "SystemExit" in one_line(*cli(capsys, "search", "--space", exits, "--budget", "1G", "--runs-dir", tmp_path))
    ignores = tmp_path / "ignores.py"
    ignores.write_text("import nasty\nfrom nasty.space import space\n"
                       "@space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10))\n"
                       "def ignores(t, net):\n    t.choice('k', [3])\n"
                       "    return nasty.parse('net s input 3x32x32 classes 10\\nstem conv3x3 c=8\\n"
                       "head gap flatten fc c=classes\\n')\n")
    from nasty.search.budget import Budget, preflight
    from nasty.space import SpaceError, load_space
    s = load_space(str(ignores))
    with pytest.raises(SpaceError, match="ignores `net`"):
        s.genotype({"k": 3}, proxy=True)
    assert preflight(s, Budget.parse("1G"), fit=False)            # the target itself is what it declares


def test_evolution_over_a_huge_integer_decision(tmp_path):
    from nasty.controllers import Result, make_controller
    from nasty.space import space

    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def huge(t, net):
        import nasty
        n = t.int("n", 1, 10**12)
        return nasty.parse(f"net h input 1x8x8 classes 2\nstem conv3x3 c={1 + n % 4}\nhead gap flatten fc c=classes\n")

    ctrl = make_controller("evolution", huge, seed=0, population=3, sample=2)
    for i in range(12):
        t = ctrl.ask()
        values, _ = huge.sample(t)
        ctrl.tell(t, Result(float(values["n"] % 97)))
    assert len(ctrl.population) == 3


def test_a_read_only_run_folder(run, capsys):
    r = subprocess.run(["chattr", "+i", str(run)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {r.stderr.decode().strip()}")
    try:
        before = snapshot(run)
        assert "read-only" in one_line(*cli(capsys, "search", "--resume", run))
        assert main(["report", str(run)]) == 0 and "read-only" in capsys.readouterr().out
        assert snapshot(run) == before
    finally:
        subprocess.run(["chattr", "-i", str(run)])
