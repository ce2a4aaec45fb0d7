"""Search controllers behind one protocol (see base.py)."""
from ..errors import NastyError, RunError, brief
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


def parse_options(text: str | dict | None, where: str, sep: str = ",",
                  example: str = "population=6,sample=3") -> dict:
    """'population=6,sample=3' -> {'population': 6, 'sample': 3}: values read as JSON (numbers,
    true/false), else kept as text; a one-line error names what is malformed or given twice. The
    one parser of controller options: `--controller-options` and the bench's 'tpe:k=v' specs
    (sep ':'). A dict (from Python) is taken as it is, its keys checked."""
    import json
    if isinstance(text, dict):
        return {_option_key(k, where): v for k, v in text.items()}
    if text is not None and not isinstance(text, str):
        raise RunError(f"{where}: controller options are key=value text or a dict, not {type(text).__name__}")
    out = {}
    for part in (text or "").split(sep):
        if not part.strip():
            continue
        key, eq, raw = part.partition("=")
        if not eq or not key.strip().isidentifier():
            raise RunError(f"{where}: {brief(part.strip())} must look like key=value (e.g. {example})")
        if key.strip() in out:
            raise RunError(f"{where}: option {key.strip()!r} is given twice; give each option once")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except ValueError:
            out[key.strip()] = raw.strip()
    return out


def _option_key(k, where: str) -> str:
    if not isinstance(k, str) or not k.isidentifier():
        raise RunError(f"{where}: option name {brief(k)} is not a name such as population")
    return k


def format_options(options: dict, where: str = "controller_options") -> str:
    """{'population': 6, 'multivariate': True} -> 'population=6,multivariate=true': the text form
    parse_options reads back to the same values (how a run's config.json keeps them)."""
    import json
    parts = []
    for k, v in options.items():
        _option_key(k, where)
        if not (v is None or isinstance(v, (bool, int, float, str))):
            raise RunError(f"{where}: option {k}={brief(v)} must be a number, true/false or text, "
                           f"not a {type(v).__name__}")
        text = json.dumps(v)
        if "," in text or "=" in text:
            raise RunError(f"{where}: option {k}={brief(v)} holds ',' or '=', which the text form of options "
                           "cannot keep")
        parts.append(f"{k}={text}")
    return ",".join(parts)


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
    """Options of the type their defaults have (`multivariate=banana` is an error, not True) and
    within the range the controller declares for them (its OPTION_RANGES: `population_size=1`
    or `lr=1e308` is an error, not a crash or a diverged controller after Ray started)."""
    import inspect
    cls = REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    ranges = getattr(cls, "OPTION_RANGES", {})
    for k, v in options.items():
        p = params.get(k)
        if p is None or p.default is inspect.Parameter.empty:
            continue
        interval = ranges.get(k)
        if p.default is None:
            if v is None or interval is None:
                continue
            want = float
        else:
            want = type(p.default)
        ok = (isinstance(v, bool) if want is bool else
              isinstance(v, int) and not isinstance(v, bool) if want is int else
              isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else True)
        if not ok:
            like = f"like its default {p.default!r}" if p.default is not None else "or null"
            raise NastyError(f"controller {name!r}: option {k}={brief(v)} must be {want.__name__} ({like})")
        if interval is not None and not within(v, interval):
            raise NastyError(f"controller {name!r}: option {k}={v!r} must be in {interval} "
                             f"(its default is {p.default!r})")


def within(v, interval: str) -> bool:
    """Is number `v` in `interval`, written as in mathematics: '[2, 100000]', '(0, 10]', '[0, 1)'."""
    lo, hi = (float(x) for x in interval[1:-1].split(","))
    above = v >= lo if interval[0] == "[" else v > lo
    below = v <= hi if interval[-1] == "]" else v < hi
    return bool(above and below)                      # NaN is in no interval


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
           "format_options", "parse_options",
           "ReinforceController", "TPEController", "NSGA2Controller", "EvolutionController",
           "CompoundController", "DartsController"]
