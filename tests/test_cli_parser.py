"""The `nasty` command line itself: `--version` and `--help` answer without importing torch (every
command module's top level stays light), `import nasty` neither, and an unknown option, command or
choice gets a did-you-mean."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasty.cli import COMMANDS, main

ROOT = Path(__file__).parent.parent


def _modules_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.splitlines()[-1].split())


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["train", "--help"], ["search", "--help"]])
def test_version_and_help_do_not_import_torch(argv):
    code = ("import contextlib, io\nfrom nasty.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main({argv!r})\n"
            "    except SystemExit as e:\n        assert e.code == 0\n")
    loaded = _modules_after(code)
    assert "torch" not in loaded and "ray" not in loaded and "optuna" not in loaded


def test_import_nasty_does_not_import_torch_until_asked():
    assert "torch" not in _modules_after("import nasty; nasty.cost('resnet50'); nasty.zoo.names()")
    assert "torch" in _modules_after("import nasty; nasty.load_model")        # lazily, on first use


def test_every_command_is_listed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS) and "predict" in out and "data" in out


@pytest.mark.parametrize("argv, hint", [
    (["serch", "--space", "nasnet"], "did you mean search?"),
    (["train", "runs/x", "--epochz", "3"], "did you mean --epochs?"),
    (["train", "runs/x", "--recipe", "shrot"], "did you mean short?"),
    (["search", "--budjet", "600M"], "did you mean --budget?"),
    (["predict", "runs/x", "a.png", "--topk", "2"], "did you mean --top?"),
    (["data", "fetch", "fashion-mnist", "--urll", "http://x/"], "did you mean --url?"),
    (["data", "fecth", "fashion-mnist"], "did you mean fetch?"),
])
def test_did_you_mean(capsys, argv, hint):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.rstrip().endswith(hint), err


def test_nasty_train_is_the_trainer_module_and_callable():
    import nasty
    import nasty.train as trainer
    assert nasty.train is trainer and callable(nasty.train)
    from nasty.train import TrainConfig                                      # the module keeps working
    assert trainer.TrainConfig is TrainConfig
