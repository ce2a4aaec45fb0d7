"""Timing one layer configuration alone, as the lookup table stores it.

Below both the calibration (which times every configuration a space can produce) and the
predictor (which times, on demand, one that calibration never sampled), so neither imports the
other for it: every import in nasty/ points down (tests/test_imports.py).
"""
from __future__ import annotations

import statistics
import time

from .measure import LatencyError, clock_of, pinned_threads, quartiles, resolve_device, time_callable
from .table import LookupTable, config_of, describe_config

# how long one configuration is timed: enough for a stable median of a microsecond op,
# few calls of a slow one
OP_TIMING = dict(blocks=3, block_seconds=0.005, min_runs=3, max_runs=40, warmup_seconds=0.005, min_warmup=2)
SAVE_EVERY_S = 10.0
EVICT_BYTES = 8 << 20             # written before each timed call of an op: its caches as a network leaves them
_scratch = {}


def _evictor(device):
    """A function that pushes the caches out (untimed, before each call); nothing on a GPU."""
    import torch
    if device.type != "cpu":
        return None
    buf = _scratch.get("cpu")
    if buf is None:
        buf = _scratch["cpu"] = torch.zeros(EVICT_BYTES // 4)
    return lambda: buf.add_(1.0)


# ------------------------------------------------------------------ one configuration
def step_module(step):
    """A module computing just `step` (its op registry entry, as the compiler builds it), and the
    shapes of its distinct inputs, in the order the module takes them."""
    from torch import fx, nn

    from ..genotype.ops import SPECS
    root, graph = nn.Module(), fx.Graph()
    placeholders, shapes, args = {}, [], []
    for h, shape in zip(step.inputs, step.in_shapes):
        if h not in placeholders:
            placeholders[h] = graph.placeholder(f"x{len(placeholders)}")
            shapes.append(tuple(shape))
        args.append(placeholders[h])
    target = SPECS[step.kind].torch(step, False)
    if isinstance(target, nn.Module):
        root.add_module("op", target)
        out = graph.call_module("op", tuple(args))
    else:
        out = target(graph, args)
    graph.output(out)
    return fx.GraphModule(root, graph), shapes


def _empty_module():
    from torch import fx, nn
    graph = fx.Graph()
    graph.output(graph.placeholder("x0"))
    return fx.GraphModule(nn.Module(), graph)


def _sync(device):
    import torch
    return torch.cuda.synchronize if device.type == "cuda" else None


def time_step(step, batch: int, device, clock=None) -> tuple[float, float, int]:
    """(median ms, IQR ms, runs) of `step` alone at `batch` (threads and no-grad set by the caller)."""
    import torch
    try:
        module, shapes = step_module(step)
        module = module.eval().to(device)
        xs = [torch.randn((batch,) + s, device=device) for s in shapes]
        times, _, _, _ = time_callable(lambda: module(*xs), _sync(device), clock=clock, before=_evictor(device),
                                       **OP_TIMING)
    except Exception as e:  # noqa: BLE001 - an op that cannot run alone: say which
        raise LatencyError(f"cannot time {describe_config(config_of(step, batch))} alone: "
                           f"{type(e).__name__}: {' '.join(str(e).split())[:200]}") from None
    q1, med, q3 = quartiles(times)
    return med, q3 - q1, len(times)


def harness_overhead(device, clock=None) -> float:
    """ms the timing harness takes around an op that does nothing (an empty fx module)."""
    import torch
    m = _empty_module()
    x = torch.zeros(1, device=device)
    timing = dict(OP_TIMING, blocks=5, max_runs=200, block_seconds=0.01)
    times, _, _, _ = time_callable(lambda: m(x), _sync(device), clock=clock, before=_evictor(device), **timing)
    return statistics.median(times)


# ------------------------------------------------------------------ timing them
def time_configs(table: LookupTable, configs: dict, batch: int = 1, device="cpu", threads: int | None = 1,
                 progress=None, recalibrate: bool = False, save: bool = True) -> tuple[int, float]:
    """Time every configuration of `configs` ({key: step}) missing from `table` (all of them with
    `recalibrate`); the table is saved every few seconds, at the end and when interrupted (`save`
    False: only every few seconds; the caller saves, as a predictor timing a few on demand does).
    `progress(done, total, key)` is called after each. Returns (configurations timed, seconds)."""
    import torch
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    todo = [(k, st) for k, st in configs.items() if recalibrate or k not in table]
    clock = clock_of(table.clock, dev, threads)
    start = last_save = time.time()
    done = 0
    with pinned_threads(threads if dev.type == "cpu" else None), torch.inference_mode():
        if table.overhead_ms is None or (recalibrate and todo):
            table.overhead_ms = harness_overhead(dev, clock)
            table.dirty = True
        try:
            for k, st in todo:
                med, iqr, runs = time_step(st, batch, dev, clock)
                table.put(k, max(0.0, med - table.overhead_ms), iqr, runs, st)
                done += 1
                if progress:
                    progress(done, len(todo), k)
                if table.path and time.time() - last_save > SAVE_EVERY_S:
                    table.save()
                    last_save = time.time()
        except BaseException:
            if table.path and table.dirty:      # Ctrl-C mid-calibration: what was timed is kept
                table.save()
            raise
    if save and table.path and table.dirty:
        table.save()
    return done, time.time() - start
