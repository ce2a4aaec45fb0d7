"""The Python API of a search: `nasty.search(space, budget=..., data=..., controller=..., **settings)`,
the same search as `nasty search` on the command line, returning a `SearchResult`.

    import nasty
    result = nasty.search("nasnet", budget="600MFLOPs", trials=10)        # a built-in, a .py path,
    result.genotype                 # the winner's target genotype          # or a Space object
    result.leaderboard[:3]          # TrialRecords, best first
    result.study()                  # the run's Optuna study
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunError
from .record import TrialRecord
from .settings import Settings, check_types

PYTHON_SPACE = "python:"        # Settings.space of a Space object with no file to load it from


@dataclass
class SearchResult:
    """What a finished search left in its run folder, read back as objects."""
    run: Path                       # runs/<name>/
    summary: dict                   # what the CLI prints at the end (also in best.json)

    @property
    def records(self) -> list[TrialRecord]:
        from .folder import RunFolder
        return RunFolder(self.run).records()

    @property
    def leaderboard(self) -> list[TrialRecord]:
        """Trained trials, best first (as leaderboard.txt ranks them: confirmed ones first)."""
        from .folder import RunFolder
        from .results import ranked
        return ranked(self.records, RunFolder(self.run).confirmations())

    @property
    def best(self) -> TrialRecord | None:
        """The winner (as best.json names it), or None when no trial finished training:
        `stop_reason` then says why (e.g. every sample was over budget)."""
        board = self.leaderboard
        return board[0] if board else None

    @property
    def stop_reason(self) -> str | None:
        """Why the search stopped before its --trials (the time budget, samples over budget...)."""
        return self.summary.get("stop_reason")

    @property
    def warnings(self) -> list[str]:
        """What the run's accuracies cannot say (search/guards.py): every trial at chance, a validation
        split too small to rank."""
        return list(self.summary.get("warnings") or [])

    @property
    def genotype(self):
        """The winner's TARGET genotype (where the budget applies), or None."""
        from ..genotype import parse
        return parse(self.best.genotype) if self.best else None

    @property
    def proxy_genotype(self):
        """The winner's PROXY genotype (what the search trained), or None."""
        from ..genotype import parse
        return parse(self.best.proxy_genotype) if self.best else None

    @property
    def test_acc(self) -> float | None:
        return self.summary.get("test_acc")

    def model(self, device: str = "cpu"):
        """The run's trained FINAL network (after `nasty train RUN` or nasty.train(result)) as a
        nasty.deploy.Classifier in eval mode: input float pixels in [0, 1], normalisation inside,
        `classes` and `predict(images)`. A run with no final training: a one-line NastyError."""
        from ..deploy import load_model
        return load_model(self.run, device=device)

    def study(self):
        """The run as an Optuna study (runs/<name>/study.db)."""
        import optuna

        from .study import STUDY_FILE
        return optuna.load_study(study_name=None, storage=f"sqlite:///{self.run / STUDY_FILE}")


def _space_setting(space) -> tuple[str, object]:
    """(Settings.space, the Space object or None) for what the caller passed as `space`."""
    from ..space import Space
    if isinstance(space, Space):
        try:
            source = inspect.getsourcefile(space.fn)
        except TypeError:
            source = None
        if source and source.endswith(".py") and Path(source).is_file():
            return str(Path(source).resolve()), space          # resumable from the command line too
        return f"{PYTHON_SPACE}{space.name}", space
    if isinstance(space, (str, Path)):
        return str(space), None
    raise RunError(f"space must be a Space, a built-in space name or a .py file, got {type(space).__name__}")


def search(space=None, budget: str | None = None, data=None, controller: str = "random", *,
           target: str | None = None, resume: str | Path | None = None, console=None, live: bool | None = False,
           **settings) -> SearchResult:
    """Run a search (or resume one with `resume="runs/NAME"`) and return its result.

    `space`: a built-in name ("nasnet"), a path to a space file, or a Space object.
    `budget`: multiply-adds at the target, e.g. "600MFLOPs" (one multiply-add = one FLOP).
    `data`: None (then `dataset=`/`data_dir=` as on the command line), a nasty Dataset,
    (x, y) or (x, y, test_x, test_y) arrays, or a map-style torch Dataset.
    `target`: where budgets apply, "space" or "data", as `--target` (`target_kind=`, the setting's
    own name, is the same keyword).
    `**settings`: any other `nasty search` option by its Settings name (trials=, epochs=, fit=, ...).
    """
    from .runner import search as run
    if target is not None:
        if settings.get("target_kind", target) != target:
            raise RunError(f"target={target!r} and target_kind={settings['target_kind']!r} disagree; give target= only")
        settings["target_kind"] = target
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        import difflib
        hint = difflib.get_close_matches(unknown[0], known, 1)
        raise RunError(f"nasty.search got an unknown setting {unknown[0]!r}"
                       + (f"; did you mean {hint[0]!r}?" if hint else f"; settings: {', '.join(sorted(known))}"))
    if data is not None and ("dataset" in settings or "data_dir" in settings):
        given = "dataset=" if "dataset" in settings else "data_dir="
        raise RunError(f"nasty.search got both data= and {given}: give the images one way, data= (arrays, a "
                       "Dataset) or dataset=/data_dir= (files read by name)")
    for k, v in settings.items():                      # folders as Paths, like the command line's text
        if isinstance(v, os.PathLike):
            settings[k] = os.fspath(v)
    space_obj = None
    if space is not None:
        settings["space"], space_obj = _space_setting(space)
    if budget is not None:
        settings["budget"] = str(budget)
    if controller != "random" or not resume:
        settings["controller"] = controller
    s = Settings(**settings)
    check_types(s, source="python")
    summary = run(s, resume=str(resume) if resume else None, console=console, live=live,
                  data=data, space=space_obj)
    return SearchResult(Path(summary["run"]), summary)
