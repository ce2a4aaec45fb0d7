"""The one controller protocol: ask for a trial, tell it the result.

    trial = controller.ask()                  # a nasty.space.Trial supplying decisions
    decisions, g = space.sample(trial)        # define-by-run; the budget is checked on g
    controller.tell(trial, result)            # Result(reward, status, metrics)

A controller never sees torch models or Ray. Its whole state round-trips through
`state_dict()` / `load_state_dict()` as plain JSON-able data, which the run folder
stores (controller.json) so `--resume` continues the search instead of restarting it.
The search loop (nasty/search/loop.py) is the only caller in a search; Ray Tune never
sees a controller.
"""
from __future__ import annotations

import abc
import functools
import random
from dataclasses import dataclass, field

from ..errors import NastyError, RunError
from ..search.record import Status
from ..space import RandomTrial, Space, Trial


@dataclass
class Result:
    """What a finished, failed or rejected (over-budget) trial tells the controller."""
    reward: float | None              # None: the trial failed or was rejected
    status: Status = Status.OK        # a trial record's status (strings such as "failed" are accepted)
    metrics: dict = field(default_factory=dict)   # val_acc, macs, params, ...

    def __post_init__(self):
        try:
            self.status = Status(self.status)
        except ValueError:
            raise NastyError(f"unknown trial status {self.status!r}; statuses: "
                             f"{', '.join(s.value for s in Status)}") from None


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


class Controller(abc.ABC):
    """A search strategy. Subclasses implement `ask` and usually `tell`; those with state of
    their own extend `state_dict` and `load_state_dict` (calling `super()` for the header and
    the random generator `self.rng`, which every proposal should draw from)."""

    name = "base"

    # A controller with a finite plan (the compound grid) sets this when every proposal has
    # been made; the search loop stops asking then.
    finished = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "load_state_dict" in vars(cls):          # every controller's own loader is guarded
            cls.load_state_dict = _refuse_damaged_state(vars(cls)["load_state_dict"])

    def __init__(self, space: Space, seed: int = 0, **options):
        self.space, self.seed = space, seed
        self.rng = random.Random(seed)

    @abc.abstractmethod
    def ask(self) -> Trial:
        """A new trial whose decisions the space will ask for (define-by-run).

        Called by the search loop each time a slot is free for another architecture, so
        it may be called several times before any `tell` (parallel trials). The trial's
        values are fixed only as the space asks for them, in the space's order."""

    def tell(self, trial: Trial, result: Result) -> None:
        """Learn from a trial this controller asked for (or one replayed after a resume).

        Called exactly once per trial when it is over: trained (status ok, stopped or
        timeout, `reward` = validation accuracy), failed (`reward` None), or rejected
        over budget before any training (status rejected, `reward` None, `metrics` with
        its target macs and params). Trials are told in the order they finish, which
        is not the order they were asked in. Default: nothing to learn."""

    def discard(self, trial: Trial) -> None:
        """Forget a trial this controller asked for that will never be evaluated: a screen
        (zero-cost scores, `nasty bench run --screen`) proposed it among K candidates and kept
        another. It is neither a result nor a failure. Default: nothing to undo."""

    def screen_keep(self) -> int:
        """With a screen (nasty/search/screen.py), how many of the next screened round to train:
        0 lets the screen decide (one per free slot); a controller's warm-up asks for more."""
        return 0

    def state_dict(self) -> dict:
        """Everything needed to continue the search, as JSON-able data. Called after every
        `tell` (the run folder's controller.json); subclasses extend this dict."""
        version, internal, gauss = self.rng.getstate()
        return {"controller": self.name, "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()`. Called once on `--resume`, before any `ask`;
        subclasses restore their own part after calling this."""
        v, internal, gauss = state["rng"]
        self.rng.setstate((v, tuple(internal), gauss))

    def target_macs(self, trial: Trial) -> int:
        """The target MACs of a told trial whose result did not carry them (re-costed)."""
        from ..cost import cost
        from .values import ReplayTrial, encode_values
        return cost(self.space.genotype(ReplayTrial(encode_values(trial)))).macs


class RandomController(Controller):
    """Random search: the baseline every NAS paper must beat."""
    name = "random"

    def __init__(self, space: Space, seed: int = 0, objective=None, **options):
        super().__init__(space, seed)
        check_objective(self.name, objective)

    def ask(self) -> Trial:
        return RandomTrial(self.rng)
