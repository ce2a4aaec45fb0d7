"""The registry of zero-cost scores: one entry per score, so that the search's screen, the
public `nasty.score` and the benchmark (benchmarks/bench_zerocost.py) all compute a score
the same way, and a new score is one registered function (measures.py).

A score function takes a `Candidate` (the genotype, its analytic cost, a freshly initialised
copy of its network, and the batch) and returns a float: higher is better for every score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Score:
    """One registered score."""
    name: str
    fn: Callable              # fn(candidate) -> float
    needs_data: bool          # False: analytic (params, macs), no network is built
    summary: str              # one line: what it measures, and where it comes from


SCORES: dict[str, Score] = {}


def register(name: str, summary: str, needs_data: bool = True):
    """Decorator: register `fn(candidate) -> float` as the score `name`."""
    def wrap(fn):
        if name in SCORES:
            raise ValueError(f"score {name!r} is registered twice")
        SCORES[name] = Score(name, fn, needs_data, summary)
        return fn
    return wrap
