"""The one controller protocol: ask for a trial, tell it the result.

    trial = controller.ask()                  # a nasty.space.Trial supplying decisions
    decisions, g = space.sample(trial)        # define-by-run; the budget is checked on g
    controller.tell(trial, result)            # result: Result(reward, ...) or a failure

A controller never sees torch. Its whole state round-trips through
`state_dict()` / `load_state_dict()` as plain JSON-able data, which the run
folder stores so `--resume` continues the search instead of restarting it.
Ray Tune drives controllers through a thin `Searcher` adapter (nasty/run.py).
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

from ..errors import NastyError, RunError
from ..space import RandomTrial, Space, Trial


@dataclass
class Result:
    """What a finished (or failed, or over-budget) trial tells the controller."""
    reward: float | None            # None: the trial failed or was rejected
    status: str = "ok"              # ok | failed | over_budget
    metrics: dict = field(default_factory=dict)   # val_acc, macs, params, ...


def _refuse_damaged_state(load):
    """Wrap a `load_state_dict`: a state it cannot take (a damaged controller.json) is a one-line
    RunError instead of whatever the controller's code happens to raise on it."""
    @functools.wraps(load)
    def guarded(self, state):
        try:
            return load(self, state)
        except NastyError:
            raise
        except Exception as e:  # noqa: BLE001 - any slip on a damaged state
            raise RunError(f"the saved state of controller {self.name!r} (controller.json) is damaged: "
                           f"{type(e).__name__}: {' '.join(str(e).split())[:200]}; the run folder is left as "
                           "it is: restore the file, or start a new run") from None
    return guarded


PLAIN_OBJECTIVES = (None, "acc", "accuracy", "val_acc", "max")     # all mean: maximise validation accuracy


def check_objective(controller: str, objective, also=(), hint: str = "", error=NastyError):
    """A one-line error for an objective this controller does not optimise."""
    if objective not in PLAIN_OBJECTIVES + tuple(also):
        raise error(f"{controller}: objective {objective!r} is not supported; "
                    + (hint or "it maximises the reward (validation accuracy). Use --controller reinforce "
                       "for 'soft', tpe or nsga2 for 'pareto'"))


class Controller:
    name = "base"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "load_state_dict" in vars(cls):          # every controller's own loader is guarded
            cls.load_state_dict = _refuse_damaged_state(vars(cls)["load_state_dict"])

    def __init__(self, space: Space, seed: int = 0, **options):
        self.space, self.seed = space, seed
        self.rng = random.Random(seed)

    def ask(self) -> Trial:
        raise NotImplementedError

    def tell(self, trial: Trial, result: Result) -> None:
        """Learn from a finished trial. Default: nothing to learn."""

    # Optional: a controller with a finite plan (the compound grid) sets this when
    # every proposal has been made; the runner may stop asking then.
    finished = False

    def state_dict(self) -> dict:
        return {"controller": self.name, "rng": _rng_state(self.rng)}

    @_refuse_damaged_state
    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(_rng_restore(state["rng"]))


def _rng_state(rng: random.Random):
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_restore(s):
    return (s[0], tuple(s[1]), s[2])


class RandomController(Controller):
    """Random search: the baseline every NAS paper must beat."""
    name = "random"

    def __init__(self, space: Space, seed: int = 0, objective=None, **options):
        super().__init__(space, seed)
        check_objective(self.name, objective)

    def ask(self) -> Trial:
        return RandomTrial(self.rng)
