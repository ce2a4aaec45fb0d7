"""Decision values <-> JSON, shared by the controllers' state_dicts and the resume of a run.

A value that JSON carries exactly (None, bool, int, float, str) is stored as itself; any
other choice (a tuple, an object) is stored as {"index": i} into its decision's options
and resolved again when a trial replays it, so a controller's state never needs pickle.
A trial record's decisions (JSON lists where the space had tuples) decode the same way.
"""
from __future__ import annotations

import math
import random

from ..space import Decision, SpaceError, Trial, sample_uniform

_PRIMITIVES = (type(None), bool, int, float, str)


def is_primitive(v) -> bool:
    return isinstance(v, _PRIMITIVES) and not (isinstance(v, float) and not math.isfinite(v))


def encode_values(trial: Trial) -> dict:
    return {d.name: encode_value(d, trial.values[d.name]) for d in trial.asked}


def encode_value(d: Decision, v):
    if d.kind == "choice" and not is_primitive(v):
        return {"index": d.index(v)}
    return v


def decode_value(d: Decision, enc):
    """The value `enc` stands for in decision `d`, or raise SpaceError if it is not an option."""
    if isinstance(enc, dict) and set(enc) == {"index"} and d.kind == "choice":
        i = enc["index"]
        if type(i) is int and 0 <= i < len(d.choices):
            return d.choices[i]
        raise SpaceError(f"stored index {i!r} is out of range for decision {d.name!r}")
    if d.kind == "choice":
        return d.choices[d.index(enc)]
    if not d.contains(enc):
        raise SpaceError(f"stored value {enc!r} is not an option of decision {d.name!r}")
    return enc


def mutable_names(trial: Trial) -> list[str]:
    """Names of the decisions of `trial` that have another value to mutate to."""
    return [d.name for d in trial.asked if d.kind == "float" or d.size() > 1]


class ReplayTrial(Trial):
    """Replays stored (encoded) values; a decision not stored is drawn with `rng` or is an error."""

    def __init__(self, encoded: dict, rng: random.Random | None = None):
        super().__init__()
        self.encoded, self.rng = dict(encoded), rng

    def decide(self, d):
        if d.name in self.encoded:
            try:
                return decode_value(d, self.encoded[d.name])
            except SpaceError:
                if self.rng is None:
                    raise
        if self.rng is not None:
            return sample_uniform(d, self.rng)
        raise SpaceError(f"no stored value for decision {d.name!r}")


def budget_macs(budget):
    """The MACs limit of a budget given as a number or as a nasty Budget (None if none)."""
    if budget is None:
        return None
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return budget
    macs = getattr(budget, "macs", None)
    if macs is None and hasattr(budget, "params"):
        return None
    if isinstance(macs, (int, float)):
        return macs
    from ..errors import NastyError
    raise NastyError(f"budget must be a number of MACs or a Budget, got {budget!r}")
