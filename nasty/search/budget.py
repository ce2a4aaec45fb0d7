"""Budgets: how much a searched network may cost at the space's TARGET, checked
analytically before anything trains (and `preflight`: is the budget possible at all?).

    b = Budget.parse(macs="600MFLOPs", params="5M")
    b.check(nasty.cost(g))          # -> None when within budget, else the reason

A time unit makes a latency budget: `Budget.parse("15ms")`, or with MACs `"600MFLOPs,15ms"`.
Latency is predicted per op from this machine's lookup table (nasty/latency/), so a latency
budget needs its predictor attached (`with_predictor`, done by the search before preflight);
the search then measures its finalists for real (nasty/latency/search.py).

The FLOP convention: one multiply-add is one FLOP, as the course notes and the
mobile NAS papers ("mult-adds") count it, so `600MFLOPs`, `600MMACs` and
`600MMAdds` are the same budget: 600 million multiply-adds at the target input.

`fit_width` is `--fit`: it moves a sample's width decision (NASNet's F, a
width multiplier) to the largest value whose target still fits the budget,
which is how NASNet picked N and F for its mobile setting.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from ..display import human
from ..errors import BudgetError, NastyError

_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
_COST = re.compile(_NUMBER + r"\s*(?P<rest>[A-Za-z-]*)$")
# Unit words, lower-cased. All mean "multiply-adds" under the FLOP convention.
MAC_UNITS = ("flops", "macs", "madds", "mult-adds", "multadds")
PARAM_UNITS = ("", "params", "p", "parameters")


def parse_quantity(text: str, what: str = "budget") -> int:
    """'600MFLOPs' -> 600_000_000; '5M' -> 5_000_000 (`what`: 'budget' or 'params').

    The SI prefix K/M/G/T is case-insensitive (nobody budgets in milli-FLOPs); '600MACs'
    is 600 multiply-adds and '600MMACs' 600 million.
    """
    s = str(text).strip()
    m = _COST.match(s)
    units = PARAM_UNITS if what == "params" else ("",) + MAC_UNITS
    example = "5M or 3.5Mparams" if what == "params" else "600MFLOPs, 600M, 1.2GMACs, 600MMAdds or a latency, 15ms"
    flag = "--params" if what == "params" else "--budget"
    si = None
    if m is not None:
        rest = m.group("rest")
        if rest.lower() in units:
            si = ""
        elif rest[:1].upper() in _SCALE and rest[:1] and rest[1:].lower() in units:
            si = rest[:1].upper()
    if si is None:
        hint = ""
        if m is not None and m.group("rest").lower().endswith("flop"):
            hint = f" (did you mean {m.group('num')}{m.group('rest')}s?)"
        raise BudgetError(f"malformed {flag} {text!r}{hint}: write a positive number with an optional "
                          f"K/M/G unit, e.g. {example}")
    value = float(m.group("num")) * _SCALE[si]
    if not math.isfinite(value) or value < 1:
        raise BudgetError(f"{flag} {text!r} must be at least 1; e.g. {example}")
    return int(round(value))


_TIME = re.compile(_NUMBER + r"\s*(?P<unit>ms|s|us|µs)$")
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3}
LATENCY_CONDITIONS = "batch 1, one CPU thread, on this machine"


def parse_latency(text: str) -> float:
    """'15ms' -> 15.0, '0.02s' -> 20.0, '900us' -> 0.9 (milliseconds)."""
    m = _TIME.match(str(text).strip())
    if m is None:
        raise BudgetError(f"malformed latency budget {text!r}: write a number with a time unit, e.g. 15ms, 0.02s")
    ms = float(m.group("num")) * _TO_MS[m.group("unit")]
    if not math.isfinite(ms) or ms <= 0:
        raise BudgetError(f"latency budget {text!r} must be a positive time, e.g. 15ms")
    return ms


def is_latency(text: str) -> bool:
    """Does this part of a --budget carry a time unit (15ms, 0.02s)?"""
    return _TIME.match(str(text).strip()) is not None


@dataclass(frozen=True)
class Budget:
    """Upper limits at the target: multiply-adds (the FLOP convention), parameters, and latency
    (milliseconds at batch 1 on this machine, predicted per op by `predictor`)."""
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None
    predictor: object = field(default=None, compare=False, repr=False)   # a nasty.latency Predictor

    @classmethod
    def parse(cls, macs: str | None = None, params: str | None = None) -> "Budget":
        """`macs`: the --budget text, MACs and/or a latency, comma-separated (600MFLOPs,15ms)."""
        mac = lat = None
        for part in ([] if macs is None else [p.strip() for p in str(macs).split(",")]):
            if is_latency(part):
                if lat is not None:
                    raise BudgetError(f"--budget {macs!r} gives two latencies; give one, e.g. 600MFLOPs,15ms")
                lat = parse_latency(part)
            else:
                if mac is not None:
                    raise BudgetError(f"--budget {macs!r} gives two MAC budgets; give one, e.g. 600MFLOPs,15ms")
                mac = parse_quantity(part, "budget")
        return cls(mac, parse_quantity(params, "params") if params is not None else None, lat)

    def __bool__(self) -> bool:
        return self.macs is not None or self.params is not None or self.latency_ms is not None

    def with_predictor(self, predictor) -> "Budget":
        return replace(self, predictor=predictor)

    def latency(self, cost) -> float | None:
        """The predicted latency (ms) of `cost` (a Cost, or anything carrying `latency_ms`), None
        without a latency budget. Predicted once per Cost: the value is kept on it."""
        v = getattr(cost, "latency_ms", None)
        if v is not None or self.latency_ms is None or not hasattr(cost, "per_step"):
            return v
        if self.predictor is None:
            raise BudgetError("a latency budget needs this machine's latency predictor (nasty.latency); "
                              "the search attaches it before its preflight")
        v = self.predictor.predict(cost)
        try:
            cost.latency_ms = v
        except (AttributeError, TypeError):       # a frozen cost: predicted again next time
            pass
        return v

    def check(self, cost) -> str | None:
        """None when `cost` (anything with .macs and .params) fits, else why it does not."""
        over = []
        if self.macs is not None and cost.macs > self.macs:
            over.append(f"{human(cost.macs)}MACs > {human(self.macs)}")
        if self.params is not None and cost.params > self.params:
            over.append(f"{human(cost.params)} params > {human(self.params)}")
        if self.latency_ms is not None:
            lat = self.latency(cost)
            if lat is not None and lat > self.latency_ms:
                over.append(f"{lat:.3g} ms predicted > {self.latency_ms:g} ms")
        return "; ".join(over) or None

    def excess(self, cost) -> float:
        """How far over budget, as the largest ratio cost/limit (<= 1 means within)."""
        r = 0.0
        if self.macs is not None:
            r = max(r, _ratio(cost.macs, self.macs))
        if self.params is not None:
            r = max(r, _ratio(cost.params, self.params))
        if self.latency_ms is not None:
            lat = getattr(cost, "latency_ms", None) if self.predictor is None else self.latency(cost)
            if lat is not None:                       # unknown (a record without it): not counted
                r = max(r, lat / self.latency_ms)
        return r

    def describe(self) -> str:
        parts = []
        if self.macs is not None:
            parts.append(f"{human(self.macs)}FLOPs (multiply-adds)")
        if self.params is not None:
            parts.append(f"{human(self.params)} params")
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:g} ms latency ({LATENCY_CONDITIONS})")
        return " and ".join(parts) or "none"

    def as_dict(self) -> dict:
        return {"macs": self.macs, "params": self.params, "latency_ms": self.latency_ms}


def _ratio(a: int, b: int) -> float:
    try:
        return a / b
    except OverflowError:          # a cost beyond 1e308 times the limit
        return math.inf


@dataclass(frozen=True)
class Costed:
    """A sample of a space with its target cost (and predicted latency, under a latency budget)."""
    values: dict
    genotype: object
    macs: int
    params: int
    latency_ms: float | None = None


def target_cost(space, values: dict, budget: Budget | None = None) -> Costed:
    """Build the target genotype of `values` and cost it analytically (its latency predicted
    when `budget` has a latency limit)."""
    from ..cost import cost
    g = space.genotype(values)
    c = cost(g)
    return Costed(dict(values), g, c.macs, c.params, budget.latency(c) if budget is not None else None)


def fit_width(space, values: dict, budget: Budget, costed: Costed | None = None) -> Costed | None:
    """`--fit`: the sample with its width decision moved to the largest value within budget.

    The search is a bisection over the decision's options (or over the interval of a
    float width multiplier), assuming cost grows with width. Returns None when even
    the smallest width is over budget, or when the space has no width decision and
    the sample does not fit as it is.
    """
    costed = costed or target_cost(space, values, budget)
    name = space.width_decision
    if name is None or not budget:
        return costed if budget.check(costed) is None else None
    decisions = {d.name: d for d in space.decisions(values)}
    if name not in decisions:
        from ..space import SpaceError
        raise SpaceError(f"space {space.name!r} names width decision {name!r} but never asks for it")
    d = decisions[name]
    if d.kind == "choice" and not all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in d.choices):
        from ..space import SpaceError
        raise SpaceError(f"--fit scales width decision {name!r} of space {space.name!r}, but its options "
                         f"{list(d.choices)!r} are not all numbers; give it numeric widths or do not use --fit")
    cache: dict = {}

    def at(v) -> Costed:
        if v not in cache:
            cache[v] = costed if v == values.get(name) else target_cost(space, {**values, name: v}, budget)
        return cache[v]

    if d.kind == "float":
        lo, hi = d.low, d.high
        if budget.check(at(lo)) is not None:
            return None
        if budget.check(at(hi)) is None:
            return at(hi)
        for _ in range(14):                      # 2^-14 of the range: far below any channel rounding
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if budget.check(at(mid)) is None else (lo, mid)
        return at(lo)
    options = sorted(d.options())
    lo, hi = 0, len(options) - 1                 # invariant: options[lo] fits (checked), answer in [lo, hi]
    if budget.check(at(options[0])) is not None:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if budget.check(at(options[mid])) is None:
            lo = mid
        else:
            hi = mid - 1
    return at(options[lo])


PREFLIGHT_TRIES = 300              # samples tried before a budget is declared impossible


def preflight(space, budget: Budget, fit: bool, seed: int = 0, tries: int = PREFLIGHT_TRIES,
              seconds: float = 30.0) -> Costed:
    """Sample until one architecture fits the budget; a broken space or an impossible
    budget is a one-line error before any run folder or Ray process exists."""
    import random
    import time

    from ..space import RandomTrial, SpaceError
    rng = random.Random(seed + 7919)
    smallest, fastest, errors, start = None, None, 0, time.time()
    last_error = None
    for i in range(tries):
        t = RandomTrial(rng)
        try:
            values, _ = space.sample(t)
            c = target_cost(space, values, budget)
        except NastyError as e:
            errors += 1
            last_error = e
            if errors >= 5 and errors > i // 2:
                raise SpaceError(f"space {space.name!r} fails to build its samples: {e}") from None
            continue
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a bug in the user's space file
            raise SpaceError(f"space {space.name!r} failed building a sample: {type(e).__name__}: {e}") from None
        if not budget or budget.check(c) is None:
            return c
        if fit:
            f = fit_width(space, values, budget, c)
            if f is not None:
                return f
            d = next(x for x in t.asked if x.name == space.width_decision)
            c = target_cost(space, {**values, space.width_decision:
                                    d.low if d.kind == "float" else min(d.options())}, budget)
        if smallest is None or budget.excess(c) < budget.excess(smallest):
            smallest = c
        if c.latency_ms is not None and (fastest is None or c.latency_ms < fastest.latency_ms):
            fastest = c
        if time.time() - start > seconds and i >= 20:
            break
    if smallest is None:
        raise SpaceError(f"space {space.name!r} fails to build its samples: {last_error}")
    if fastest is not None:
        also = (f"; the smallest by MACs and params costs {human(smallest.macs)}MACs and {human(smallest.params)} "
                f"params" if budget.macs is not None or budget.params is not None else "")
        raise BudgetError(f"no architecture of space {space.name!r} fits the budget {budget.describe()} "
                          f"after {i + 1} samples; the fastest seen is predicted at {fastest.latency_ms:.3g} ms "
                          f"({human(fastest.macs)}MACs, {human(fastest.params)} params at the target; "
                          f"{_short_values(fastest.values)}){also}"
                          + ("" if fit else "; raise the budget or try --fit"))
    raise BudgetError(f"no architecture of space {space.name!r} fits the budget {budget.describe()} "
                      f"after {i + 1} samples; the smallest seen costs {human(smallest.macs)}MACs "
                      f"({smallest.macs:,}) and {human(smallest.params)} params at the target"
                      + ("" if fit else "; raise the budget or try --fit"))


def _short_values(values: dict, limit: int = 160) -> str:
    text = ", ".join(f"{k}={v}" for k, v in values.items())
    return text if len(text) <= limit else text[:limit - 3] + "..."
