"""Searching: everything between a search space and a run folder, one concept per module.

    settings.py      Settings: every option of a search, its defaults, its checks; the CLI flags
    record.py        TrialRecord and Status: one line of trials.jsonl, its only JSON codec
    folder.py        RunFolder: runs/<name>/ on disk (append-only records, atomic files)
    budget.py        Budget, --fit and preflight: costs at the TARGET, before any training
    loop.py          SearchLoop: propose -> budget check -> dispatch -> complete -> tell (no Ray)
    standalone.py    the standalone evaluation of one trial: compile the proxy, train, report
    ray_backend.py   TuneExecutor: the loop's trials as Ray Tune trials (the only Ray import)
    results.py       ranking, Pareto front, leaderboard, plots, summary, `nasty report`
    html_report.py   report.html: the run on one static page (template and escaping only)
    progress.py      the live display of a running search
    runner.py        search(settings): one search from settings to summary, new or resumed
    api.py           nasty.search(space, budget=..., ...): the Python API, a SearchResult
    study.py         the run as an Optuna study (study.db)

The package itself is callable: `nasty.search(space, budget="600MFLOPs", ...)` is `api.search`.
It is importable without Ray or torch (they are imported where they are used).
"""
from __future__ import annotations

import sys
import types

__all__ = ["Settings", "Status", "TrialRecord", "RunFolder", "SearchResult", "report"]


def __getattr__(name):
    # Lazy: `from nasty.search import Settings` should not import torch, matplotlib or Ray.
    if name == "Settings":
        from .settings import Settings
        return Settings
    if name in ("Status", "TrialRecord"):
        from . import record
        return getattr(record, name)
    if name == "RunFolder":
        from .folder import RunFolder
        return RunFolder
    if name == "SearchResult":
        from .api import SearchResult
        return SearchResult
    if name == "report":
        from .results import report
        return report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _SearchModule(types.ModuleType):
    """The module `nasty.search`, callable as the Python API of a search (api.search)."""

    def __call__(self, space=None, budget=None, data=None, controller="random", **settings):
        from .api import search
        return search(space, budget, data, controller, **settings)


sys.modules[__name__].__class__ = _SearchModule
