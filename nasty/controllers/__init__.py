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


# keywords the search itself passes to every controller: not the user's to set
_RUN_KEYWORDS = ("space", "seed", "budget", "objective", "storage", "study_name")


def make_controller(name: str, space, seed: int = 0, **options) -> Controller:
    if name not in REGISTRY:
        raise NastyError(f"unknown controller {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    check_option_types(name, options)
    return REGISTRY[name](space, seed=seed, **options)


def user_options(name: str) -> dict:
    """{option: default} a user may set on controller `name` (its constructor's own keywords)."""
    import inspect
    params = inspect.signature(REGISTRY[name].__init__).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("self", *_RUN_KEYWORDS) and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def parse_options(text: str | None, where: str, sep: str = ",",
                  example: str = "population=6,sample=3") -> dict:
    """'population=6,sample=3' -> {'population': 6, 'sample': 3}: values read as JSON (numbers,
    true/false), else kept as text; a one-line error names what is malformed. The one parser
    of controller options: `--controller-options` and the bench's 'tpe:k=v' specs (sep ':')."""
    import json
    out = {}
    for part in (text or "").split(sep):
        if not part.strip():
            continue
        key, eq, raw = part.partition("=")
        if not eq or not key.strip().isidentifier():
            raise RunError(f"{where}: {part.strip()!r} must look like key=value (e.g. {example})")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except ValueError:
            out[key.strip()] = raw.strip()
    return out


def check_options(name: str, options: dict) -> None:
    """A one-line error for an option controller `name` does not have, or of the wrong type."""
    if name not in REGISTRY:
        raise RunError(f"unknown --controller {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    known = user_options(name)
    for k in options:
        if k not in known:
            listed = ", ".join(f"{o}={d!r}" for o, d in known.items()) or "none"
            raise RunError(f"controller {name!r} has no option {k!r}; its options (with defaults): {listed}")
    try:
        check_option_types(name, options)
    except NastyError as e:
        raise RunError(str(e)) from None


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
