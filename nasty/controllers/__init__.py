"""Search controllers behind one protocol (see base.py)."""
from ..errors import NastyError, RunError
from .base import Controller, RandomController, Result
from .compound import CompoundController
from .darts import DartsController
from .evolution import EvolutionController
from .reinforce import ReinforceController
from .tpe import NSGA2Controller, TPEController

REGISTRY = {"random": RandomController, "reinforce": ReinforceController, "tpe": TPEController,
            "nsga2": NSGA2Controller, "evolution": EvolutionController, "compound": CompoundController,
            "darts": DartsController}


def make_controller(name: str, space, seed: int = 0, **options) -> Controller:
    if name not in REGISTRY:
        raise NastyError(f"unknown controller {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    check_option_types(name, options)
    return REGISTRY[name](space, seed=seed, **options)


def check_option_types(name: str, options: dict):
    """Options of the type their defaults have: `multivariate=banana` is an error, not True."""
    import inspect
    params = inspect.signature(REGISTRY[name].__init__).parameters
    for k, v in options.items():
        p = params.get(k)
        if p is None or p.default is inspect.Parameter.empty or p.default is None:
            continue
        want = type(p.default)
        ok = (isinstance(v, bool) if want is bool else
              isinstance(v, int) and not isinstance(v, bool) if want is int else
              isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else True)
        if not ok:
            raise NastyError(f"controller {name!r}: option {k}={v!r} must be {want.__name__} "
                             f"(like its default {p.default!r})")


def check_resume(state: dict, controller_name: str) -> None:
    """Refuse (one line) to resume a saved controller state with another controller."""
    saved = state.get("controller") if isinstance(state, dict) else None
    if saved is None:
        raise RunError("the saved controller state does not say which controller wrote it; "
                       "cannot resume safely (start a new run)")
    if saved != controller_name:
        raise RunError(f"this run was searched with --controller {saved}; resume it with --controller "
                       f"{saved}, or start a new run to use {controller_name}")


__all__ = ["Controller", "RandomController", "Result", "REGISTRY", "make_controller", "check_option_types", "check_resume",
           "ReinforceController", "TPEController", "NSGA2Controller", "EvolutionController",
           "CompoundController", "DartsController"]
