"""Search controllers behind one protocol (see base.py)."""
from ..errors import NastyError
from .base import Controller, RandomController, Result

REGISTRY = {"random": RandomController}


def make_controller(name: str, space, seed: int = 0, **options) -> Controller:
    if name not in REGISTRY:
        raise NastyError(f"unknown controller {name!r}; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](space, seed=seed, **options)


__all__ = ["Controller", "RandomController", "Result", "REGISTRY", "make_controller"]
