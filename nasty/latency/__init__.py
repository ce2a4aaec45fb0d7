"""Latency on the user's own hardware: measured, predicted per op, searched under.

MACs and params are analytic (nasty.cost); time is not, and MACs rank it poorly (a depthwise
conv has few MACs and is slow, a wide 1x1 conv many and is fast). So:

    measure.py    measure a compiled network here: eval, no grad, warm-up, blocks of timed calls,
                  median + IQR, and the measurement's own repeatability
    table.py      the per-op lookup table, keyed by this machine's fingerprint (device, threads,
                  library versions); a foreign table is refused
    calibrate.py  time each distinct layer configuration a space can produce into the table
    predict.py    predicted latency = corrected sum of the layers' table times
    search.py     what a search with a latency budget adds: the predictor behind the budget, the
                  finalists measured for real, the leaderboard's latency columns

    import nasty
    nasty.latency("resnet18")                  # a Measurement: median_ms, q1_ms, q3_ms, repeatability
    nasty.latency("resnet18", predict=True)    # a Prediction: total_ms and per-layer times

The package itself is callable (as `nasty.search` is): `nasty.latency(...)` is `latency` below,
and its modules stay importable (`from nasty.latency.table import LookupTable`). It imports no
torch until something is measured or timed.
"""
from __future__ import annotations

import sys
import types

from .measure import LatencyError, Measurement

__all__ = ["LatencyError", "Measurement", "latency", "predictor"]


def predictor(device: str = "cpu", threads: int | None = 1, batch: int = 1, table=None, space: str | None = None,
              on_missing: str = "time", clock: str = "wall"):
    """A Predictor over this machine's lookup table (the user's cache folder), or over the table
    file `table`, which must have been calibrated on this machine and software (else LatencyError)."""
    from .measure import clock_of, resolve_device
    from .predict import Predictor
    from .table import LookupTable, fingerprint
    dev = str(resolve_device(device))
    clock_of(clock, dev, threads)
    if table is not None:
        t = LookupTable.load(table, expect=fingerprint(dev, threads, clock))
    else:
        t = LookupTable.for_machine(dev, threads, clock)
    return Predictor(t, batch=batch, device=dev, threads=threads, on_missing=on_missing, space=space)


def latency(name_or_genotype, input=None, batch: int = 1, device: str = "cpu", threads: int | None = 1,
            predict: bool = False, num_classes: int | None = None, compile: bool = False, table=None,
            clock: str = "wall"):
    """The latency of a zoo network, genotype file or Genotype at `input` (default its own) and `batch`.

    Measured here by default (a `Measurement`: eval mode, no grad, `threads` pinned); with
    `predict=True`, predicted from the per-op lookup table instead (a `Prediction`, per layer;
    configurations the table lacks are timed now and kept). `clock`: "wall" (elapsed time) or
    "cpu" (the measuring thread's CPU time: steadier on a machine other processes load)."""
    from .. import resolve
    from ..genotype import elaborate
    g = resolve(name_or_genotype)
    if predict:
        p = predictor(device, threads, batch, table, clock=clock)
        out = p.explain(elaborate(g, input, num_classes))
        p.save()
        return out
    from .measure import measure_genotype
    return measure_genotype(g, input, batch, device, threads, classes=num_classes, compile=compile, clock=clock)


class _LatencyModule(types.ModuleType):
    """The module `nasty.latency`, callable as `latency(...)`."""

    def __call__(self, *args, **kwargs):
        return latency(*args, **kwargs)


sys.modules[__name__].__class__ = _LatencyModule
