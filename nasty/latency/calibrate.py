"""Calibration: time each distinct layer configuration a space (or a set of networks) can
produce, on this machine, into the lookup table (table.py).

    configurations ── from the elaborated layers of sampled members (deduplicated by table.config_of)
         │            sampling stops when `stall` samples in a row add no new configuration
         ▼
    time each one ── the step compiled alone (the same op registry entry the compiler uses),
         │           on random inputs of its shapes: warm-up + 3 short blocks, the median;
         │           the harness's own per-call cost (an empty module) is subtracted
         ▼
    a few members measured whole ── the data of the predictor's correction (predict.py)

An op timed alone in a tight loop finds its weights and code in the caches; inside a network
they were pushed out by the layers before it. On this project's 2-core machine (under load, cpu
clock) the isolated times of a mobile network's layers added up to 53-69 % of its measured
latency; writing an 8 MiB scratch buffer before every timed call (untimed) brought that to
65-80 %. The correction fitted on whole networks (predict.py) does the rest.

It is resumable: the table is saved every few seconds and on Ctrl-C, and configurations
already in it are not timed again. A configuration a prediction meets that calibration
did not sample is timed on demand (predict.Predictor) and added to the table.
"""
from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from .measure import LatencyError, clock_of, pinned_threads, quartiles, resolve_device, time_callable
from .table import LookupTable, config_of, describe_config

# how long one configuration is timed: enough for a stable median of a microsecond op,
# few calls of a slow one
OP_TIMING = dict(blocks=3, block_seconds=0.005, min_runs=3, max_runs=40, warmup_seconds=0.005, min_warmup=2)
NET_TIMING = dict(blocks=3, block_seconds=0.15, min_runs=3, max_runs=100)
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


# ------------------------------------------------------------------ what to time
@dataclass
class Sampled:
    """The configurations of a space found by sampling: {key: step}, how many samples, how long."""
    configs: dict
    samples: int
    seconds: float
    stalled: bool                  # the last `stall` samples added nothing (else: the sample cap was hit)
    failed: int = 0


def space_configs(space, batch: int = 1, stall: int = 300, max_samples: int = 4000, seed: int = 0,
                  max_seconds: float = 120.0) -> Sampled:
    """Every configuration of the space's TARGET networks that random sampling finds: samples until
    `stall` in a row add no new configuration (or `max_samples`/`max_seconds`). The space's
    canonical members come first."""
    from ..cost import cost
    from ..space import RandomTrial
    rng = random.Random(seed + 104729)
    configs: dict = {}
    start, since_new, n, failed = time.time(), 0, 0, 0

    def add(g) -> bool:
        new = False
        for st, _ in cost(g).per_step:
            k = config_of(st, batch)
            if k not in configs:
                configs[k] = st
                new = True
        return new

    for values in dict(getattr(space, "canonical", {}) or {}).values():
        try:
            add(space.genotype(values))
        except Exception:  # noqa: BLE001 - a canonical member the target cannot build is not ours to fix
            pass
    while n < max_samples and since_new < stall and time.time() - start < max_seconds:
        n += 1
        try:
            _, g = space.sample(RandomTrial(rng))
            new = add(g)
        except Exception:  # noqa: BLE001 - a sample the space cannot build
            failed += 1
            new = False
        since_new = 0 if new else since_new + 1
    return Sampled(configs, n, time.time() - start, since_new >= stall, failed)


def genotype_configs(genotypes, batch: int = 1) -> dict:
    """{key: step} of the elaborated layers of some genotypes (zoo networks, a run's winner)."""
    from ..cost import cost
    configs: dict = {}
    for g in genotypes:
        for st, _ in cost(g).per_step:
            configs.setdefault(config_of(st, batch), st)
    return configs


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


def measure_networks(table: LookupTable, genotypes: list, space_name: str | None, batch: int = 1, device="cpu",
                     threads: int | None = 1, progress=None, names=None) -> list[dict]:
    """Measure whole networks and file them in the table with the raw sum of their layers' times
    (the predictor's correction is fitted on them). Returns the records added."""
    from ..compile import compile_genotype
    from ..cost import cost
    from ..genotype import format as fmt
    from .measure import measure
    from .predict import Predictor
    pred = Predictor(table, batch=batch, device=device, threads=threads, correction=False)
    out = []
    for i, g in enumerate(genotypes):
        c = cost(g)
        raw = pred.predict(c)
        m = measure(compile_genotype(g), c.input, batch, device, threads, clock=table.clock, **NET_TIMING)
        rec = {"name": (names[i] if names else g.name), "space": space_name, "batch": batch, "genotype": fmt(g),
               "input": list(c.input), "layers": len(c.per_step), "macs": c.macs, "sum_ms": round(raw, 6),
               "measured_ms": round(m.median_ms, 6), "iqr_ms": round(m.iqr_ms, 6),
               "repeatability": round(m.repeatability, 5), "load": m.load}
        table.add_network(rec)
        out.append(rec)
        if progress:
            progress(i + 1, len(genotypes), rec["name"])
    if table.path:
        table.save()
    return out


def sample_members(space, n: int, seed: int = 0, budget=None) -> list[tuple[dict, object]]:
    """`n` random members (values, target genotype) of a space, distinct; within `budget` (a Budget,
    MACs/params only) when given."""
    from ..cost import cost
    from ..genotype import format as fmt
    from ..space import RandomTrial
    rng = random.Random(seed)
    out, seen, tries = [], set(), 0
    while len(out) < n and tries < 50 * n + 100:
        tries += 1
        try:
            values, g = space.sample(RandomTrial(rng))
        except Exception:  # noqa: BLE001
            continue
        text = fmt(g)
        if text in seen:
            continue
        if budget is not None and budget.check(cost(g)) is not None:
            continue
        seen.add(text)
        out.append((values, g))
    return out


# ------------------------------------------------------------------ a whole calibration
class Bar:
    """Progress of a long loop: a rich bar on a terminal (stderr), a plain line every `every`
    seconds otherwise (logs, CI); `say` prints the lines a person should keep."""

    def __init__(self, say=None, every: float = 15.0, quiet: bool = False):
        import sys

        from rich.console import Console
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.say = say or (lambda text: None if quiet else print(text, file=sys.stderr, flush=True))
        self.every = every
        self._progress = self._task = None
        self._last = 0.0
        self._what = ""

    def start(self, what: str, total: int):
        self._what, self._last = what, time.time()
        if self.quiet or not self.console.is_terminal or total == 0:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeRemainingColumn(), TextColumn("{task.fields[item]}"),
                                  console=self.console, transient=True)
        self._progress.__enter__()
        self._task = self._progress.add_task(what, total=total, item="")

    def __call__(self, done: int, total: int, item: str = ""):
        if self._progress is not None:
            self._progress.update(self._task, completed=done, item=describe_config(item) if item.startswith("[")
                                  else item)
        elif not self.quiet and time.time() - self._last > self.every:
            self._last = time.time()
            self.say(f"  {self._what}: {done:,}/{total:,}")

    def stop(self):
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = self._task = None


def space_key(space) -> str:
    """How a calibrated space is filed in the table: its name and target."""
    t = space.target
    return f"{space.name}@{'x'.join(map(str, t.input))}/{t.classes}"


def calibrate_space(table: LookupTable, space, batch: int = 1, device="cpu", threads: int | None = 1,
                    networks: int = 8, seed: int = 0, bar: Bar | None = None, recalibrate: bool = False,
                    stall: int = 300, max_samples: int = 4000) -> dict:
    """Calibrate one space at its target: sample its configurations, time the missing ones, measure
    `networks` random members whole (the correction's data). Resumable; returns what it did (also
    filed in `table.spaces`)."""
    bar = bar or Bar()
    t0 = time.time()
    sampled = space_configs(space, batch, stall=stall, max_samples=max_samples, seed=seed)
    have = sum(1 for k in sampled.configs if k in table)
    bar.say(f"  sampled {sampled.samples:,} members in {sampled.seconds:.0f} s: {len(sampled.configs):,} distinct "
            f"layer configurations" + (f" (the last {stall} samples added none)" if sampled.stalled else
                                       " (sampling stopped at its cap: rarer configurations are timed when met)")
            + (f"; {have:,} already in the table" if have and not recalibrate else ""))
    bar.start("timing layer configurations", len(sampled.configs) if recalibrate else len(sampled.configs) - have)
    try:
        n, secs = time_configs(table, sampled.configs, batch, device, threads, bar, recalibrate)
    finally:
        bar.stop()
    bar.say(f"  timed {n:,} configurations in {secs:.0f} s")
    key = space_key(space)
    done = {x.get("name") for x in table.networks if x.get("space") == space.name and x.get("batch", 1) == batch}
    members = [(f"{space.name}#{seed + 1}.{i}", g) for i, (_, g) in
               enumerate(sample_members(space, networks, seed=seed + 1) if networks else [])]
    members = [(n, g) for n, g in members if recalibrate or n not in done]
    if members:
        bar.start("measuring members whole", len(members))
        t1 = time.time()
        try:
            measure_networks(table, [g for _, g in members], space.name, batch, device, threads, bar,
                             names=[n for n, _ in members])
        finally:
            bar.stop()
        bar.say(f"  measured {len(members)} members whole (for the correction) in {time.time() - t1:.0f} s")
    info = {"target": list(space.target.input), "classes": space.target.classes, "batch": batch,
            "configs": len(sampled.configs), "samples": sampled.samples, "stalled": sampled.stalled,
            "seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load": _load()}
    table.spaces[key] = info
    table.dirty = True
    if table.path:
        table.save()
    return info


def _load():
    from .measure import load_average
    return load_average()
