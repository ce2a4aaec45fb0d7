"""Everything a search needs, in one dataclass: `Settings`. Each field carries its help
text and, where it depends on the hardware, its CPU and GPU defaults; the flags of
`nasty search` are derived from the fields (`add_arguments`), so a new setting is one
line here. The resolved settings are stored in runs/<name>/config.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import RunError


def setting(default=None, help: str = "", *, cpu=None, gpu=None, metavar: str | None = None,
            choices: tuple | None = None, resumable: bool = False, flag: bool = True):
    """A Settings field. `cpu`/`gpu`: the default where it depends on a GPU being used (the field's
    own default is then None, meaning "resolve"); `resumable`: may change on `--resume`."""
    return field(default=default, metadata=dict(help=help, cpu=cpu, gpu=gpu, metavar=metavar, choices=choices,
                                                resumable=resumable, flag=flag))


@dataclass
class Settings:
    """A search, as `nasty search` flags or `nasty.search(...)` keywords give it."""
    space: str | None = setting(
        None, "built-in space (nasnet, mbconv, resnet, darts, nb201mini) or a .py file with one @space")
    budget: str | None = setting(
        None, "multiply-adds at the target (one multiply-add = one FLOP), e.g. 600MFLOPs, 600M, 1.2GMACs, "
              "600MMAdds", metavar="FLOPS")
    params: str | None = setting(None, "parameters at the target, e.g. 5M", metavar="N")
    fit: bool = setting(False, "scale each sample's width (F, width multiplier) to the largest value within "
                               "budget")
    controller: str = setting("random", "search controller: random, reinforce, tpe, nsga2, evolution, compound")
    objective: str | None = setting(
        None, "what the controller optimises: accuracy (default), pareto (accuracy vs target MACs; tpe, nsga2) "
              "or soft (MnasNet's ACC*(MACs/T)^w; reinforce)")
    baseline: str | None = setting(
        None, "with --controller compound: the network whose depth/width/resolution scaling is searched "
              "(e.g. efficientnet_b0), instead of --space", metavar="NAME")
    trials: int | None = setting(None, "trials to train (--time-budget may end the search first)",
                                 cpu=48, gpu=200, resumable=True)
    epochs: int | None = setting(None, "proxy training epochs per trial", cpu=2, gpu=5)
    subset: int | None = setting(None, "training images per trial", cpu=6000, gpu=20000)
    val_subset: int | None = setting(None, "validation images per trial", cpu=2000, gpu=5000)
    val_fraction: float = setting(0.1, "share of the training set held out for validation")
    batch_size: int | None = setting(None, "proxy batch size", cpu=64, gpu=256)
    lr: float | None = setting(None, "peak learning rate (one-cycle SGD)", cpu=0.05, gpu=0.1)
    time_budget: float | None = setting(
        None, "seconds of searching: no trial starts that would end after it (so that a default search ends "
              "within 10 minutes)", cpu=450.0, gpu=450.0, metavar="SECONDS", resumable=True)
    dataset: str = setting("fashion-mnist", "fashion-mnist, mnist, cifar10, cifar100")
    data_dir: str | None = setting(None, "directory with the dataset's files (default /usr/share/datasets/NAME)")
    cpus_per_trial: float | None = setting(None, "CPUs per trial; concurrency follows from the resources",
                                           cpu=1.0, gpu=2.0, resumable=True)
    gpus_per_trial: float | None = setting(None, "GPUs per trial; fractional packs trials (0.25: four per GPU)",
                                           cpu=0.0, gpu=0.25, resumable=True)
    address: str | None = setting(None, "join an existing Ray cluster (e.g. 10.0.0.1:6379) instead of a local "
                                        "one", resumable=True)
    scheduler: str = setting("fifo", "asha stops weak trials early (Ray Tune's ASHA on per-epoch accuracy)",
                             choices=("fifo", "asha"))
    seed: int = setting(0, "random seed of the controller, the data split and the trials")
    name: str | None = setting(None, "run folder name under --runs-dir (default SPACE-DATE-TIME)")
    runs_dir: str = setting("runs", "where run folders go")

    # ------------------------------------------------------------ defaults
    @classmethod
    def hardware_defaults(cls, gpu: bool) -> dict:
        """{field: default} of the fields whose default depends on a GPU being used."""
        key = "gpu" if gpu else "cpu"
        return {f.name: f.metadata[key] for f in dataclasses.fields(cls) if f.metadata.get(key) is not None}

    def resolved(self, gpu: bool) -> "Settings":
        """A copy with every hardware-dependent default filled in."""
        out = dataclasses.replace(self)
        for k, v in self.hardware_defaults(gpu).items():
            if getattr(out, k) is None:
                setattr(out, k, v)
        return out

    @classmethod
    def resumable(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls) if f.metadata.get("resumable")}

    # ------------------------------------------------------------ validation
    def check(self):
        """One-line errors for values no search can use (called before anything is created)."""
        if self.scheduler not in ("fifo", "asha"):
            raise RunError(f"unknown --scheduler {self.scheduler!r}; use fifo or asha")
        for k in ("trials", "epochs", "batch_size", "subset", "val_subset"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise RunError(f"--{_flag(k)} must be a whole number, got {v!r}")
            if v is not None and v < 1:
                raise RunError(f"--{_flag(k)} must be at least 1, got {v}")
        for k in ("cpus_per_trial", "gpus_per_trial", "time_budget", "lr"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise RunError(f"--{_flag(k)} must be a finite number, got {v!r}")
        if self.cpus_per_trial is not None and self.cpus_per_trial <= 0:
            raise RunError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise RunError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")
        if self.gpus_per_trial and self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise RunError(f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise RunError(f"--time-budget must be positive, got {self.time_budget}")
        if self.lr is not None and not self.lr > 0:
            raise RunError(f"--lr must be positive, got {self.lr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise RunError(f"--seed must be a whole number from 0 to 2^31-1, got {self.seed!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise RunError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _arg_type(f: dataclasses.Field):
    t = str(f.type)
    return int if t.startswith("int") else float if t.startswith("float") else str


def add_arguments(parser: argparse.ArgumentParser):
    """One `--flag` per Settings field, with the field's help, type and defaults. Defaults stay
    None on the parser (argparse.SUPPRESS), so the caller sees only what the user gave."""
    for f in dataclasses.fields(Settings):
        m = f.metadata
        if not m.get("flag", True):
            continue
        help_text = m["help"]
        if m.get("cpu") is not None:
            cpu, gpu = m["cpu"], m["gpu"]
            help_text += (f" (default {cpu:g})" if cpu == gpu else f" (default {cpu:g} on CPU, {gpu:g} with a GPU)")
        elif f.default not in (None, False):
            help_text += f" (default {f.default})"
        kw = dict(help=help_text, default=argparse.SUPPRESS, dest=f.name)
        if str(f.type) == "bool":
            parser.add_argument(f"--{_flag(f.name)}", action="store_true", **kw)
            continue
        if m.get("metavar"):
            kw["metavar"] = m["metavar"]
        if m.get("choices"):
            kw["choices"] = list(m["choices"])
        parser.add_argument(f"--{_flag(f.name)}", type=_arg_type(f), **kw)


def from_arguments(args: argparse.Namespace) -> Settings:
    """Settings from parsed flags: the fields the user gave, defaults for the rest."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in vars(args).items() if k in names})
