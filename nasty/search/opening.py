"""What a search searches: its space and its budget, opened from the settings (a built-in name, a
file, a Space object given from Python, or a baseline's compound scaling).

Its own module, below the runner and `nasty train` (nasty/final.py), which both open a run's
space: every import in nasty/ points down (tests/test_imports.py).
"""
from __future__ import annotations

from ..errors import RunError
from .budget import Budget


def open_space(s, given=None):
    """(space, budget) of a search with Settings `s`; a one-line error for a missing or broken space. `given`:
    the Space object a search from Python was handed (its settings hold only its name)."""
    from ..space import load_space
    budget = Budget.parse(s.budget, s.params)
    if s.controller == "compound":
        if not s.baseline or s.space:
            raise RunError("--controller compound searches the scaling of one network: give --baseline NAME "
                           "(e.g. efficientnet_b0) instead of --space")
        from ..controllers.compound import compound_space
        space = compound_space(s.baseline)
    else:
        if s.baseline:
            raise RunError("--baseline is for --controller compound")
        if given is not None:
            space = given
        elif str(s.space).startswith("python:"):
            raise RunError(f"this run's space ({s.space[7:]}) was given from Python as a Space object; resume "
                           "it from Python: nasty.search(space, resume=RUN_DIR)")
        else:
            space = load_space(s.space)
    if s.fit and not space.width_decision:
        raise RunError(f"--fit needs a width decision, and space {space.name!r} declares none "
                       "(@space(..., width_decision='NAME'))")
    return space, budget
