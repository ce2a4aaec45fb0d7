"""`nasty.train`: the trainer's names, and the call that trains a run's final network from Python.

The trainer itself lives in nasty/trainer.py, which the search imports; this module sits on top
(it calls the command's code, nasty/commands/train.py), so that nothing below points up to it.
The package attribute `nasty.train` is this module, callable: `nasty.train(result, epochs=1)`. A
function of that name in nasty/__init__.py would be replaced by the module the first time
anything imported `nasty.train`, so the module itself is made callable.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

from . import trainer as _trainer
from .trainer import *  # noqa: F401,F403  (`from nasty.train import TrainConfig, train` keeps working)
from .trainer import train as _train_network


def __getattr__(name):
    """The trainer's other names (`from nasty.train import _cutout` in older code and tests)."""
    try:
        return getattr(_trainer, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def train_final(target, data=None, **options):
    """`nasty.train(result_or_run, data=None, **options)`: train the final network as `nasty train`
    does (printing its progress; checkpointed in runs/NAME/final/ for a run) and return it as a
    nasty.deploy.Classifier in eval mode, its normalisation and class names known.

    `target`: a SearchResult, a run folder, a genotype file or zoo name, or a Genotype.
    `data`: None to read the run's dataset by name as the command line does, or data as
    nasty.search takes it (a Dataset, (x, y) or (x, y, test_x, test_y) arrays, a torch Dataset):
    a run searched on arrays needs it. `**options`: `nasty train`'s options by name (epochs=1,
    subset=2000, threads=1, set={"N": 2, "F": 16}, budget="50MFLOPs", save=..., export=...)."""
    from .commands.train import options_for, train_final as run_final
    run = getattr(target, "run", target)                # a SearchResult: its run folder
    return run_final(options_for(run if not isinstance(run, Path) else str(run), options), data=data)["model"]


class _CallableModule(types.ModuleType):
    """`nasty.train(run, data=..., **options)` is train_final; `nasty.train.train` the trainer's
    train(model, data, config)."""

    def __call__(self, target, data=None, **options):
        return train_final(target, data, **options)


train = _train_network
sys.modules[__name__].__class__ = _CallableModule
