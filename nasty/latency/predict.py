"""Predicted latency: the sum of a network's elaborated layers' times from the lookup table,
with the correction the whole-network measurements call for.

Timing a layer alone is not the same as timing it inside the network: caches are warm
differently, the allocator reuses memory, and each call of a module has a fixed Python cost
that the table's entries carry once the harness's own cost is subtracted. So the predictor is

    predicted = scale x sum(table[layer] for layer in network) + per_layer_ms x layers

with `scale` and `per_layer_ms` fitted (least squares on the relative error) to the networks
the table has measured whole (calibrate.measure_networks); with fewer than 3 of them the
correction is the identity, and says so. Both numbers are stated wherever a prediction is
shown (`Correction.describe`).

    p = Predictor(LookupTable.for_machine())
    p.predict(nasty.cost("resnet18"))          # ms
    p.explain("resnet18").layers               # per layer: name, op, ms
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from .measure import LatencyError
from .table import LookupTable, config_of, describe_config

MIN_NETWORKS = 3                   # whole-network measurements needed to fit the correction


@dataclass(frozen=True)
class Correction:
    scale: float = 1.0
    per_layer_ms: float = 0.0
    networks: int = 0                # how many measured networks it was fitted on
    median_abs_error: float | None = None   # of the fitted predictor on those networks (relative)

    def apply(self, raw_ms: float, layers: int) -> float:
        return self.scale * raw_ms + self.per_layer_ms * layers

    def describe(self) -> str:
        if self.networks < MIN_NETWORKS:
            return (f"uncorrected sum of the layers' times ({self.networks} networks measured whole; "
                    f"the correction needs {MIN_NETWORKS})")
        err = f", median error {100 * self.median_abs_error:.1f} % on them" if self.median_abs_error is not None else ""
        return (f"{self.scale:.3f} x sum of the layers' times {'+' if self.per_layer_ms >= 0 else '-'} "
                f"{abs(self.per_layer_ms) * 1e3:.1f} us per layer (fitted on {self.networks} networks measured "
                f"whole{err})")

    def as_dict(self) -> dict:
        return {"scale": self.scale, "per_layer_ms": self.per_layer_ms, "networks": self.networks,
                "median_abs_error": self.median_abs_error}


def fit_correction(networks: list[dict]) -> Correction:
    """scale and per-layer time minimising the squared relative error over measured networks."""
    pts = [(float(n["sum_ms"]), float(n["layers"]), float(n["measured_ms"])) for n in networks
           if n.get("measured_ms", 0) > 0 and n.get("sum_ms", 0) > 0]
    if len(pts) < MIN_NETWORKS:
        return Correction(networks=len(pts))
    import numpy as np
    A = np.array([[s / m, L / m] for s, L, m in pts])
    (a, b), *_ = np.linalg.lstsq(A, np.ones(len(pts)), rcond=None)
    if not (0.2 < a < 5.0) or not math.isfinite(b):     # a degenerate fit: the scale alone
        a, b = statistics.median(m / s for s, _, m in pts), 0.0
    errs = [abs((a * s + b * L) - m) / m for s, L, m in pts]
    return Correction(float(a), float(b), len(pts), statistics.median(errs))


@dataclass
class LayerLatency:
    name: str
    op: str
    output: tuple
    raw_ms: float                 # the table's time of this configuration
    ms: float                     # with the correction applied
    config: str = field(repr=False, default="")


@dataclass
class Prediction:
    total_ms: float
    raw_ms: float
    layers: list
    correction: Correction
    timed_now: int = 0            # configurations the table lacked, timed for this prediction

    def describe(self) -> str:
        return f"{self.total_ms:.3g} ms predicted ({self.correction.describe()})"


def _steps(what):
    """The (step, ...) pairs of a Cost, a Program, a Genotype, a zoo name or anything with `.genotype`."""
    from ..cost import Cost, cost
    from ..genotype import Genotype
    from ..genotype.elaborate import Program
    if isinstance(what, Cost):
        return [st for st, _ in what.per_step]
    if isinstance(what, Program):
        return list(what.steps)
    if isinstance(what, Genotype):
        return [st for st, _ in cost(what).per_step]
    if hasattr(what, "genotype") and isinstance(what.genotype, Genotype):
        return [st for st, _ in cost(what.genotype).per_step]
    if isinstance(what, str):
        from .. import resolve
        return [st for st, _ in cost(resolve(what)).per_step]
    raise TypeError(f"cannot predict the latency of a {type(what).__name__}")


class Predictor:
    """Predicts latencies from a lookup table. `on_missing`: "time" (time a configuration the table
    lacks now, and keep it) or "error". `correction`: a Correction, None (fit it from the table's
    measured networks), or False (the raw sum)."""

    def __init__(self, table: LookupTable, batch: int = 1, device: str = "cpu", threads: int | None = None,
                 on_missing: str = "time", correction=None, space: str | None = None):
        self.table, self.batch, self.device = table, batch, device
        self.threads = threads if threads is not None else table.fingerprint.get("threads")
        self.on_missing = on_missing
        self.space = space
        self.timed_now = 0
        if correction is False:
            self.correction = Correction()
        elif correction is None:
            self.correction = self.fitted()
        else:
            self.correction = correction

    def fitted(self) -> Correction:
        """The correction from the table's measured networks: those of this predictor's space when
        there are enough of them, else all."""
        own = [n for n in self.table.networks if n.get("batch", 1) == self.batch]
        mine = [n for n in own if self.space and n.get("space") == self.space]
        return fit_correction(mine if len(mine) >= MIN_NETWORKS else own)

    def refit(self):
        self.correction = self.fitted()

    # ---------------------------------------------------------------- lookups
    def _times(self, steps) -> list[tuple[float, str]]:
        keys: dict = {}
        out = []
        missing = {}
        for st in steps:
            ident = (id(st.attrs), st.kind, st.in_shapes)
            k = keys.get(ident)
            if k is None:
                k = keys[ident] = config_of(st, self.batch)
            ms = self.table.ms(k)
            if ms is None:
                missing.setdefault(k, st)
            out.append((ms, k))
        if missing:
            self._fill(missing)
            out = [(self.table.ms(k) if ms is None else ms, k) for ms, k in out]
        return out

    def _fill(self, missing: dict):
        if self.on_missing != "time":
            k = next(iter(missing))
            raise LatencyError(f"the latency table has no timing for {len(missing)} layer configuration(s) of this "
                               f"network (e.g. {describe_config(k)}); calibrate them: `nasty latency calibrate "
                               "--space SPACE` or `nasty latency calibrate NETWORK`")
        from .calibrate import time_configs
        n, _ = time_configs(self.table, missing, self.batch, self.device, self.threads, save=False)
        self.timed_now += n

    # ---------------------------------------------------------------- predictions
    def raw(self, what) -> tuple[float, int]:
        """(sum of the table's times, number of layers)."""
        steps = _steps(what)
        return sum(ms for ms, _ in self._times(steps)), len(steps)

    def predict(self, what) -> float:
        """Predicted latency in ms of a Cost, Program, Genotype or zoo name."""
        raw, n = self.raw(what)
        return self.correction.apply(raw, n)

    def explain(self, what) -> Prediction:
        """The prediction layer by layer."""
        before = self.timed_now
        steps = _steps(what)
        times = self._times(steps)
        c = self.correction
        layers = [LayerLatency(st.name, st.kind, st.out, ms, c.apply(ms, 1), k) for st, (ms, k) in zip(steps, times)]
        raw = sum(ms for ms, _ in times)
        return Prediction(c.apply(raw, len(steps)), raw, layers, c, self.timed_now - before)

    def save(self):
        """Keep what was timed on demand (the table file is rewritten only when it changed)."""
        if self.table.dirty and self.table.path:
            self.table.save()
