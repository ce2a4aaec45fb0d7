"""Search spaces, define-by-run: a space is a Python function that asks for named
decisions and returns a Genotype.

    from nasty.space import space

    @space(target=dict(input=(3, 224, 224), classes=1000),
           proxy=dict(input=(1, 28, 28), classes=10))
    def tiny(t, net):
        depth = t.int("depth", 1, 4)
        k = t.choice("kernel", [3, 5, 7])
        se = t.choice("se", [False, True]) if k > 3 else False   # conditional decision
        ...
        return nasty.parse(text)

The function is called once per sample with `t`, which supplies the values
(random, a controller's policy, or a fixed replay), and `net`, which says
whether the TARGET network (where budgets apply) or the small PROXY network
(what is trained on the data at hand) is being built, at what input and with how
many classes. The same decisions build both.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import random
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import NastyError


class SpaceError(NastyError):
    """A search space that cannot be loaded or that misuses the decision API."""


# ------------------------------------------------------------------ decisions
@dataclass(frozen=True)
class Decision:
    """One decision as the space asked for it."""
    name: str
    kind: str                       # "choice" | "int" | "float"
    choices: tuple = ()             # for choice
    low: float | None = None        # for int/float
    high: float | None = None
    step: int = 1
    log: bool = False

    def size(self) -> int | None:
        """How many values a finite decision has (None: a float)."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // self.step + 1
        return None

    def options(self) -> tuple:
        """Every value of a finite decision, in order (ints are enumerated, up to MAX_OPTIONS)."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            if self.size() > MAX_OPTIONS:
                raise SpaceError(f"decision {self.name!r} has {self.size():,} integer values, too many to list "
                                 f"(at most {MAX_OPTIONS:,}); sample it, or give it a step")
            return tuple(range(int(self.low), int(self.high) + 1, self.step))
        raise SpaceError(f"decision {self.name!r} is continuous and has no finite options")

    def index(self, v) -> int:
        """Position of value `v` among the options of a finite decision. An option of the same
        type wins (True is not 1), and a JSON list stands for a tuple option (a stored decision)."""
        if self.kind == "int" and not isinstance(v, bool) and isinstance(v, (int, float)) and v == int(v) \
                and self.contains(int(v)):
            return (int(v) - int(self.low)) // self.step          # no need to list a long range
        opts = self.options()
        for same_type in (True, False):
            for i, o in enumerate(opts):
                if (o == v or (isinstance(o, tuple) and isinstance(v, list) and list(o) == v)) and \
                        (type(o) is type(v) or not same_type):
                    return i
        raise SpaceError(f"value {v!r} is not an option of decision {self.name!r}")

    def contains(self, v) -> bool:
        if self.kind == "choice":
            return v in self.choices
        if self.kind == "int":
            return isinstance(v, int) and self.low <= v <= self.high and (v - self.low) % self.step == 0
        return isinstance(v, (int, float)) and self.low <= v <= self.high


MAX_OPTIONS = 1_000_000          # a finite decision with more values is sampled, never listed


class Trial:
    """What a space function calls to get values. Subclasses decide the values."""

    def __init__(self):
        self.asked: list[Decision] = []
        self.values: dict[str, Any] = {}

    # public API used by spaces
    def choice(self, name: str, choices):
        choices = tuple(choices)
        if not choices:
            raise SpaceError(f"decision {name!r} has no choices")
        return self._ask(Decision(name, "choice", choices=choices))

    def int(self, name: str, low: int, high: int, step: int = 1):
        if low > high or step < 1:
            raise SpaceError(f"decision {name!r}: need low <= high and step >= 1, got {low}..{high} step {step}")
        return self._ask(Decision(name, "int", low=low, high=high, step=step))

    def float(self, name: str, low: float, high: float, log: bool = False):
        if not low < high or (log and low <= 0):
            raise SpaceError(f"decision {name!r}: need 0 < low < high for log, low < high otherwise")
        return self._ask(Decision(name, "float", low=low, high=high, log=log))

    # machinery
    def _ask(self, d: Decision):
        if d.name in self.values:
            prev = next(x for x in self.asked if x.name == d.name)
            if prev != d:
                raise SpaceError(f"decision {d.name!r} asked twice with different options")
            return self.values[d.name]
        v = self.decide(d)
        if not d.contains(v):
            raise SpaceError(f"value {v!r} is not an option of decision {d.name!r}")
        self.asked.append(d)
        self.values[d.name] = v
        return v

    def decide(self, d: Decision):
        raise NotImplementedError


def sample_uniform(d: Decision, rng: random.Random):
    if d.kind == "choice":
        return d.choices[rng.randrange(len(d.choices))]
    if d.kind == "int":
        return rng.randrange(int(d.low), int(d.high) + 1, d.step)
    if d.log:
        return math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    return rng.uniform(d.low, d.high)


class RandomTrial(Trial):
    """Uniformly random values: random search, and the fallback of other controllers."""

    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng

    def decide(self, d):
        return sample_uniform(d, self.rng)


class FixedTrial(Trial):
    """Replays given values; a decision not given is an error (or random with `rng`)."""

    def __init__(self, values: dict, rng: random.Random | None = None):
        super().__init__()
        self.given, self.rng = dict(values), rng

    def decide(self, d):
        if d.name in self.given:
            return self.given[d.name]
        if self.rng is not None:
            return sample_uniform(d, self.rng)
        raise SpaceError(f"no value for decision {d.name!r}")


# ------------------------------------------------------------------ spaces
SPACE_SECONDS = 30.0             # a space function that takes longer to build one network is stopped


def _last_asked(trial) -> str:
    asked = getattr(trial, "asked", [])
    return (f" (after deciding {asked[-1].name!r}, decision {len(asked)})" if asked else
            " (before asking any decision)")


@contextlib.contextmanager
def _time_limit(seconds: float, what):
    """Stop the block with a SpaceError after `seconds` (SIGALRM; in the main thread only, where
    the search loop samples; elsewhere the block runs unlimited)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise SpaceError(what())

    previous = signal.signal(signal.SIGALRM, expired)
    old_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_timer[0]:                       # an outer limit keeps running (nested builds)
            signal.setitimer(signal.ITIMER_REAL, old_timer[0])


LARGE_INPUT = 128


@dataclass(frozen=True)
class NetSpec:
    """Which network a space function is asked to build."""
    proxy: bool
    input: tuple
    classes: int

    @property
    def target(self) -> bool:
        return not self.proxy

    @property
    def large(self) -> bool:
        """Images of at least LARGE_INPUT pixels a side: the built-in spaces then use their
        ImageNet skeleton (early downsampling); smaller ones get their CIFAR skeleton."""
        return min(self.input[1:]) >= LARGE_INPUT


@dataclass
class Space:
    name: str
    fn: Callable
    target: NetSpec
    proxy: NetSpec
    description: str = ""
    canonical: dict = field(default_factory=dict)   # name -> decisions of known members (e.g. NASNet-A)
    width_decision: str | None = None               # the decision `--fit` scales (F, width multiplier)
    # Decisions the proxy does not reflect (it is built the same whatever their value). A search
    # sets such a width by budget fitting (--fit is then on by default); any other unseen decision
    # is pure noise to the controller, and a run says so.
    proxy_ignores: tuple = ()

    def genotype(self, trial_or_values, proxy: bool = False, input=None, classes=None):
        """Build the target (default) or proxy genotype for a trial or a dict of decisions."""
        from .genotype import Genotype
        trial = trial_or_values if isinstance(trial_or_values, Trial) else FixedTrial(trial_or_values)
        spec = self.proxy if proxy else self.target
        if input is not None or classes is not None:
            spec = NetSpec(proxy, tuple(input or spec.input), classes or spec.classes)
        which = "proxy" if proxy else "target"
        with _time_limit(SPACE_SECONDS, lambda: f"space {self.name!r} took more than {SPACE_SECONDS:g} s to build "
                                                f"its {which} network" + _last_asked(trial)):
            g = self.fn(trial, spec)
        if not isinstance(g, Genotype):
            raise SpaceError(f"space {self.name!r} returned {type(g).__name__}, not a Genotype")
        # the proxy is trained on the data as it is; the target may vary its resolution (compound scaling)
        same = tuple(g.input) == tuple(spec.input) if proxy else tuple(g.input)[:1] == tuple(spec.input)[:1]
        if not same or g.classes != spec.classes:
            raise SpaceError(f"space {self.name!r} ignores `net`: asked for its {which} network at "
                             f"{'x'.join(map(str, spec.input))} with {spec.classes} classes, it built "
                             f"{'x'.join(map(str, g.input))} with {g.classes}; write the genotype's header from "
                             "net.input and net.classes")
        return g

    def sample(self, trial: Trial):
        """Run the space with `trial`; returns (decisions, target genotype)."""
        g = self.genotype(trial)
        return dict(trial.values), g

    def decisions(self, values: dict | None = None) -> list[Decision]:
        """The decisions asked when building with `values` (random where not given)."""
        t = FixedTrial(values or {}, rng=random.Random(0))
        self.genotype(t)
        return list(t.asked)


def space(target: dict, proxy: dict, name: str | None = None, description: str = "",
          canonical: dict | None = None, width_decision: str | None = None, proxy_ignores=()):
    """Decorator: turn a define-by-run function `fn(t, net)` into a Space."""
    def wrap(fn):
        return Space(name or fn.__name__, fn,
                     NetSpec(False, tuple(target["input"]), int(target["classes"])),
                     NetSpec(True, tuple(proxy["input"]), int(proxy["classes"])),
                     description or (fn.__doc__ or "").strip().split("\n")[0],
                     dict(canonical or {}), width_decision, tuple(proxy_ignores))
    return wrap


BUILTIN_PACKAGE = "nasty.searchspaces"      # the built-in spaces: nasty/searchspaces/NAME.py, installed


def builtin_names() -> list[str]:
    from importlib import resources
    return sorted(p.name[:-3] for p in resources.files(BUILTIN_PACKAGE).iterdir()
                  if p.name.endswith(".py") and not p.name.startswith("_"))


def load_space(name_or_path: str | Path | Space) -> Space:
    """A Space as it is, a built-in space by name (nasty/searchspaces/NAME.py), or a user's
    space file (a path ending in .py). A built-in is a plain name and a file is a .py path:
    nothing else is looked up."""
    if isinstance(name_or_path, Space):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
        raise SpaceError(f"no search space given (space is {name_or_path!r}): name a built-in space "
                         f"({', '.join(builtin_names()) or 'none'}) or a .py file")
    text = str(name_or_path)
    if not text.endswith(".py"):
        if text in builtin_names():
            return _only_space(importlib.import_module(f"{BUILTIN_PACKAGE}.{text}"), f"built-in space {text!r}")
        hint = " (a space file must end in .py)" if ("/" in text or "\\" in text or text.startswith(".")) else ""
        raise SpaceError(f"unknown search space {text!r}{hint}; built-ins: "
                         f"{', '.join(builtin_names()) or 'none'}, or pass a path to a .py file")
    p = Path(text)
    if not p.is_file():
        raise SpaceError(f"space file {text!r} does not exist" if not p.exists() else
                         f"space file {text!r} is not a file")
    mod_name = f"nasty_space_{p.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # a user's file (even one calling sys.exit): one line
        line = ""
        tb = e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(p):
                line = f" (line {tb.tb_lineno})"
            tb = tb.tb_next
        raise SpaceError(f"space file {str(p)!r} failed to load{line}: {type(e).__name__}: {e}") from None
    return _only_space(module, f"space file {str(p)!r}")


def _only_space(module, what: str) -> Space:
    spaces = [v for v in vars(module).values() if isinstance(v, Space)]
    if len(spaces) != 1:
        raise SpaceError(f"{what} must define exactly one @space function, found {len(spaces)}")
    return spaces[0]
