"""nasty installs like any Python package: a wheel built from this tree, installed into a fresh
environment with no source tree on its path, runs the headline command from an empty folder."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_a_wheel_in_a_fresh_environment_runs_the_headline_command(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("nasty-*.whl"))

    # a fresh venv; the dependencies (torch, ray, optuna...) come from this environment's site-packages
    # through a plain path entry (.pth files there, such as the editable install of this tree, are
    # not processed), so only the wheel can provide `nasty`
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    fresh_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (fresh_site / "deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        pytest.skip("pip is too old for --python")
    assert install.returncode == 0, install.stderr[-2000:]

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run([str(py), "-c", "import nasty, nasty.searchspaces, nasty.nasbench.table as t; "
                            "print(nasty.__file__); print(nasty.__version__); print(t.TABLE.is_file())"],
                           cwd=empty, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    file, version, table = where.stdout.split()
    assert str(fresh_site) in file and str(ROOT) not in file          # the wheel, not this tree
    assert version == "0.1.0" and table == "True"                      # the benchmark table ships too

    nasty_cli = env_dir / "bin" / "nasty"
    out = subprocess.run([str(nasty_cli), "--version"], cwd=empty, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "nasty 0.1.0", out.stderr
    run = subprocess.run([str(nasty_cli), "search", "--space", "nasnet", "--budget", "600MFLOPs", "--trials", "2",
                          "--epochs", "1", "--subset", "300", "--val-subset", "100", "--confirm", "0", "--name", "w"],
                         cwd=empty, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (empty / "runs" / "w" / "trials.jsonl").is_file() and "best architecture" in run.stdout
