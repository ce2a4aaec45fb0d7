"""benchmarks/gpu_check.sh in its CPU=1 dry run: the same steps as on a GPU (the main job, one
final training with the paper recipe and ONNX export, the trainer against a plain loop) at a
tiny size, each under a time limit, the figures in $OUT/gpu_check.txt. (The GPU form itself
runs only on a GPU machine; CI never depends on it.)"""
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu_check.sh"


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.slow
def test_cpu_dry_run_runs_every_step_and_writes_the_figures(tmp_path):
    import sys
    env = {**os.environ, "CPU": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    p = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    report = (tmp_path / "gpu_check.txt").read_text()
    assert "(CPU=1 dry run" in report
    for step in ("nvidia-smi", "environment", "search", "final-training", "trainer-vs-plain"):
        assert f"## {step} (limit" in report and f"-- {step}: exit" in report, step
    for step in ("search", "final-training", "trainer-vs-plain"):
        assert f"-- {step}: exit 0 " in report, report
    figures = report.split("## figures", 1)[1]
    assert "best architecture" in figures and "test accuracy" in figures and "ratio nasty/plain" in figures
    assert "drop-path 0.2" in figures and "aux head x0.4" in figures       # the paper recipe ran
    assert "onnx export:" in figures
    assert "===== final-training" in (tmp_path / "logs.txt").read_text()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["gpu_check.txt", "logs.txt"]
