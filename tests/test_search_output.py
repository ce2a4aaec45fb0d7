"""Nothing silent (issue 19, item 4, the search's side): over-budget samples in a row are shown
and counted while they happen; a search where nothing trains ends with that reason and the
README's Python example still runs; piped output shows the start-up steps before the first trial
ends; the closing hint says how long `nasty train` should take and how that is estimated."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nasty.search.loop as loop_module
import nasty.search.runner as runner
from nasty.search.budget import Budget

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests" / "spaces" / "tiny.py")


def test_a_search_where_nothing_trains_ends_with_the_reason_and_the_readme_example_runs(
        ray_local, tmp_path, monkeypatch, capsys):
    """Every sample over budget (a budget the preflight check let through, as a rare fit would)."""
    from test_readme import _block
    monkeypatch.setattr(runner, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(Budget, "check", lambda self, c: "over budget (this test's budget fits nothing)")
    monkeypatch.setattr(loop_module, "MAX_CONSECUTIVE_REJECTS", 120)
    (tmp_path / "tests" / "spaces").mkdir(parents=True)
    shutil.copy(TINY, tmp_path / "tests" / "spaces" / "tiny.py")
    monkeypatch.chdir(tmp_path)
    scope = {}
    code = _block("## Searching: the run, your tools, your budget", "python")
    exec(compile(code, "README.md", "exec"), scope)          # the README's own code, not user input
    result = scope["result"]
    out, err = capsys.readouterr()
    assert result.best is None and result.genotype is None
    assert result.stop_reason == "120 samples in a row were over budget; raise the budget or use --fit"
    assert f"no winner: {result.stop_reason}" in out
    # shown while it happened, counted: at 50 and 100 in a row
    for n in (50, 100):
        assert f"{n} samples over budget in a row: raise the budget or use --fit" in err
    assert "stopped because 120 samples in a row were over budget" in out
    assert result.records and all(r.status == "rejected" for r in result.records)


def test_the_live_panel_counts_over_budget_samples_in_a_row():
    import io

    from rich.console import Console

    from nasty.search.progress import Progress
    from nasty.search.record import NetCost, Status, TrialRecord
    p = Progress("t", 10, console=Console(file=io.StringIO(), width=200), live=False)
    rejected = TrialRecord(Status.REJECTED, None, target=NetCost(10, 1))
    for _ in range(312):
        p.finished(rejected, None)
    assert p.rejected_in_a_row == 312 and p.rejected == 312
    panel = Console(file=io.StringIO(), width=200)
    panel.print(p._render())
    assert "312 samples over budget in a row: raise the budget or use --fit" in panel.file.getvalue()
    p.started(0, "#0 starting")                    # a sample within budget ends the run of rejects
    assert p.rejected_in_a_row == 0


@pytest.mark.slow
def test_piped_output_says_what_starts_and_the_closing_hint_estimates_nasty_train(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "nasty.cli", "search", "--space", TINY, "--budget", "20MFLOPs",
                          "--trials", "2", "--epochs", "1", "--subset", "300", "--val-subset", "100", "--confirm", "0",
                          "--seed", "2", "--runs-dir", str(tmp_path), "--name", "piped"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    seen, t0 = [], time.time()
    for line in p.stderr:                          # progress goes to stderr when stdout is a pipe
        seen.append(line.rstrip("\n"))
        if " trial #" in line and (" val " in line or "failed" in line):
            break                                  # the first trial has ended
    out, rest = p.communicate(timeout=300)
    assert p.returncode == 0, rest
    text = "\n".join(seen)
    for needle in ("loading fashion-mnist", "300 training and 100 validation images per trial", "Ray started",
                   "trial #0 started"):
        assert needle in text, text                # all of them before the first trial ended
    info = json.loads((tmp_path / "piped" / "best.json").read_text())
    if info.get("trial") is not None:
        est = info["train_estimate"]
        assert est["epochs"] == 10 and est["images"] == 60000 and est["macs"] > 0 and est["seconds"] > 0
        hint = next(line for line in out.splitlines() if line.startswith("next: "))
        assert "here with one thread" in hint and "ns per MAC and image" in hint and "10 epochs over 60,000" in hint
