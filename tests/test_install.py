"""nasty installs like any Python package, by its distribution name `nasty-nas`: a wheel built from
this tree, installed with its declared dependencies into a fresh environment with no source tree
on its path, follows docs/install.md from an empty folder: `nasty --version`, `nasty data fetch`
(from a local server), the headline command, a one-epoch `nasty train` and `nasty predict`."""
from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import site
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_imported_package_is_declared():
    """Each third-party module nasty imports belongs to a declared dependency (or to an extra,
    imported only where that feature is used)."""
    project = PYPROJECT["project"]
    declared = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for group, reqs in project["optional-dependencies"].items() if group != "test" for r in reqs}
    imported = set()
    for f in (ROOT / "nasty").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"nasty", "__future__"}
    owners = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(third_party):
        dists = {_name(d) for d in owners.get(module, [module])}
        if not dists & (declared | extras):
            missing[module] = sorted(dists)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert {"pyyaml", "filelock"} <= declared and {"onnx", "onnxscript"} <= extras


def test_the_distribution_name_and_metadata():
    project = PYPROJECT["project"]
    assert project["name"] == "nasty-nas" and project["scripts"] == {"nasty": "nasty.cli:main"}
    assert project["readme"] == "README.md" and project["license"] == "MIT"
    assert "Copyright (c) 2026 the nasty authors" in (ROOT / "LICENSE").read_text()


def _fresh_env(tmp_path):
    """(python of a fresh venv with the wheel installed, its bin folder). The dependencies (torch,
    ray, optuna...) come from this environment's site-packages through a plain path entry (.pth
    files there, such as an editable install of this tree, are not processed), so only the wheel
    provides `nasty`; pip resolves the wheel's declared dependencies against them."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}   # no tree on the path
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(wheels)], capture_output=True, text=True, timeout=300, env=clean)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("nasty_nas-*.whl"))
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    fresh_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (fresh_site / "deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    # docs/install.md: `pip install nasty-nas` (here: the wheel file; the upload to PyPI is not ours)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", str(wheel)],
                             capture_output=True, text=True, timeout=600, env=clean, cwd=tmp_path)
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        pytest.skip("pip is too old for --python")
    assert install.returncode == 0, (install.stdout + install.stderr)[-3000:]
    assert "Successfully installed nasty-nas-0.1.0" in install.stdout
    return py, env_dir / "bin", fresh_site


@pytest.mark.slow
def test_a_wheel_in_a_fresh_environment_follows_the_install_page(tmp_path):
    from fetch_server import DEBIAN, ZALANDO_MD5, Server, official
    if not all((DEBIAN / f).is_file() for f in ZALANDO_MD5):
        pytest.skip("needs Debian's dataset-fashion-mnist (the test server's files are made from it)")
    py, bin_dir, fresh_site = _fresh_env(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "NASTY_DATA_MIRROR")}
    env["NASTY_CACHE"] = str(cache)

    def nasty(*argv, timeout=600):
        out = subprocess.run([str(bin_dir / "nasty"), *map(str, argv)], cwd=empty, env=env, capture_output=True,
                             text=True, timeout=timeout)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        return out.stdout

    where = subprocess.run([str(py), "-c", "import nasty, nasty.searchspaces, nasty.nasbench.table as t; "
                            "print(nasty.__file__); print(nasty.__version__); print(t.TABLE.is_file())"],
                           cwd=empty, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    file, version, table = where.stdout.split()
    assert str(fresh_site) in file and str(ROOT) not in file          # the wheel, not this tree
    assert version == "0.1.0" and table == "True"                      # the benchmark table ships too
    assert nasty("--version").strip() == "nasty 0.1.0"

    # the data: fetched from a local server holding the official files, checked, into the cache
    with Server({n: official(n) for n in ZALANDO_MD5}) as server:
        out = nasty("data", "fetch", "fashion-mnist", "--url", server.url)
    data_dir = cache / "datasets" / "fashion-mnist"
    assert out.count("checksum ok") == 4 and sorted(p.name for p in data_dir.iterdir() if p.suffix == ".gz") \
        == sorted(ZALANDO_MD5)

    # the headline command, short, on the fetched files
    out = nasty("search", "--space", "nasnet", "--budget", "600MFLOPs", "--trials", "2", "--epochs", "1",
                "--subset", "300", "--val-subset", "100", "--confirm", "0", "--time-budget", "300", "--name", "w",
                "--data-dir", data_dir)
    assert (empty / "runs" / "w" / "trials.jsonl").is_file() and "best architecture" in out

    # a run with no final network: predict says what to run
    img = empty / "shirt.png"
    from PIL import Image

    from nasty.data import load_dataset
    test = load_dataset("fashion-mnist", data_dir)
    Image.fromarray(test.test_x[0, 0]).save(img)
    no_final = subprocess.run([str(bin_dir / "nasty"), "predict", "runs/w", str(img)], cwd=empty, env=env,
                              capture_output=True, text=True, timeout=300)
    assert no_final.returncode == 2 and "`nasty train runs/w`" in no_final.stderr

    # the final network, one epoch on a small subset, then a prediction for an image file
    nasty("train", "runs/w", "--epochs", "1", "--subset", "500", "--val-subset", "500", "--threads", "1",
          "--set", "N=2,F=16", "--export", "final.pt2")
    out = nasty("predict", "runs/w", img, "--top", "2")
    name, rest = out.strip().split("  ", 1)
    assert name == str(img) and any(c in rest for c in test.classes)
    assert (empty / "final.pt2").is_file()
