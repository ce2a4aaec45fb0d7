"""Measure how long a network takes on this machine, the way deployment runs it.

A latency budget is about time on the user's own hardware, so the number must come from
running the compiled network there: eval mode, no autograd (`torch.inference_mode`), a
warm-up, then repeated timed calls with the thread count pinned. One call's time is noisy
(other processes, frequency scaling, the allocator), so a measurement is several *blocks*
of timed calls:

- the latency is the median of all timed calls, with their interquartile range (IQR);
- the measurement's own repeatability is the spread of the blocks' medians: how much the
  same measurement, taken again a moment later, moves. A predictor cannot be judged more
  precisely than this (`Measurement.repeatability`).

    m = measure(model, (3, 224, 224))        # Measurement: median_ms, q1_ms, q3_ms, blocks
    print(m.describe())                      # "21.9 ms (IQR 21.6-22.3, 3 blocks of 14 runs: ±0.8 %)"

Two clocks. `wall` (the default) is what deployment sees: elapsed time. On a machine shared
with other busy processes a long call is preempted and its wall time says more about the
neighbours than about the network; `cpu` times the CPU the measuring thread itself spent
(CLOCK_THREAD_CPUTIME_ID), which other processes do not add to (they still slow it a little
through shared caches). It is valid with one thread (`threads=1`, the default: intra-op work
then runs on the calling thread) and on a CPU only. A table and the measurements it is judged
against must use the same clock (the table's fingerprint carries it).

`time_callable` is the timing harness shared with the per-op calibration (calibrate.py).
"""
from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

from ..errors import NastyError


class LatencyError(NastyError):
    """A latency cannot be measured or predicted as asked (no such device, a foreign table...)."""


DEVICE_HINT = "use --device cpu, or cuda[:N] on a machine with an NVIDIA GPU"
CLOCKS = ("wall", "cpu")


def clock_of(name: str, device=None, threads: int | None = 1):
    """The timer of clock `name` ("wall" or "cpu"); a one-line error where it cannot measure latency."""
    if name == "wall":
        return time.perf_counter
    if name != "cpu":
        raise LatencyError(f"unknown clock {name!r}; use wall (elapsed time) or cpu (the measuring thread's CPU time)")
    if device is not None and str(device).startswith("cuda"):
        raise LatencyError("--clock cpu times the CPU thread, not a GPU; use --clock wall with --device cuda")
    if threads != 1:
        raise LatencyError(f"--clock cpu measures one thread's CPU time, so it needs --threads 1 (got {threads}); "
                           "use --clock wall with more threads")
    return time.thread_time


def resolve_device(text: str | None):
    """'cpu', 'cuda' or 'cuda:N' as a torch.device this machine has; a one-line LatencyError else."""
    import torch
    raw = "cpu" if text is None else str(text).strip().lower()
    try:
        d = torch.device(raw)
    except (RuntimeError, TypeError, ValueError):
        raise LatencyError(f"unknown device {text!r}; {DEVICE_HINT}") from None
    if d.type == "cpu":
        return torch.device("cpu")
    if d.type != "cuda":
        raise LatencyError(f"nasty measures latency on cpu or cuda, not {d.type!r}; {DEVICE_HINT}")
    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA device is visible"
        raise LatencyError(f"--device {text} is not available: {why}; measure on --device cpu")
    n = torch.cuda.device_count()
    if d.index is not None and d.index >= n:
        raise LatencyError(f"--device {text} does not exist: this machine has {n} CUDA device(s)")
    return torch.device("cuda", d.index or 0)


@contextlib.contextmanager
def pinned_threads(threads: int | None):
    """torch's intra-op thread count set to `threads` for the duration (restored after); the
    garbage collector paused, so that a collection does not land inside a timed call."""
    import torch
    before = torch.get_num_threads()
    was_enabled = gc.isenabled()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise LatencyError(f"--threads must be a whole number of at least 1, got {threads!r}")
        torch.set_num_threads(threads)
    gc.collect()
    gc.disable()
    try:
        yield torch.get_num_threads()
    finally:
        if was_enabled:
            gc.enable()
        torch.set_num_threads(before)


@dataclass
class Measurement:
    """What `measure` found. Times in milliseconds."""
    median_ms: float
    q1_ms: float
    q3_ms: float
    block_medians_ms: list            # the median of each block of timed calls
    runs_per_block: int
    warmup: int
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    input: tuple = ()
    compiled: bool = False
    clock: str = "wall"
    load: float | None = None         # the 1-minute load average while measuring (None off Linux)
    times_ms: list = field(default_factory=list, repr=False)

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @property
    def min_ms(self) -> float:
        return min(self.times_ms) if self.times_ms else self.q1_ms

    @property
    def runs(self) -> int:
        return len(self.times_ms)

    @property
    def repeatability(self) -> float:
        """Half the range of the blocks' medians, relative to the median: how far the same
        measurement taken again moves (0.01 = ±1 %)."""
        b = self.block_medians_ms
        return (max(b) - min(b)) / 2 / self.median_ms if len(b) > 1 and self.median_ms > 0 else 0.0

    def describe(self) -> str:
        return (f"{self.median_ms:.3g} ms (IQR {self.q1_ms:.3g}-{self.q3_ms:.3g}; {len(self.block_medians_ms)} "
                f"blocks of {self.runs_per_block} runs, block medians within ±{100 * self.repeatability:.1f} %)")

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("times_ms")
        d.update(iqr_ms=self.iqr_ms, min_ms=self.min_ms, runs=self.runs, repeatability=self.repeatability,
                 input=list(self.input))
        return d


def load_average() -> float | None:
    try:
        import os
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def quartiles(xs) -> tuple[float, float, float]:
    """(q1, median, q3) of a non-empty list (linear interpolation, as numpy's default)."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0], s[0], s[0]
    q = statistics.quantiles(s, n=4, method="inclusive")
    return q[0], q[1], q[2]


def time_callable(fn, sync=None, blocks: int = 3, block_seconds: float = 0.25, min_runs: int = 3,
                  max_runs: int = 200, warmup_seconds: float = 0.1, min_warmup: int = 2, clock=None,
                  before=None):
    """Time `fn()`: a warm-up, then `blocks` blocks of timed calls. The number of calls per block
    follows from the warm-up's speed: as many as fit in `block_seconds`, within [min_runs,
    max_runs]. Returns (per-call times in ms, per-block medians in ms, runs per block, warm-up calls).
    `sync`: called before each clock read (torch.cuda.synchronize on a GPU); `clock`: the timer
    (default time.perf_counter; see clock_of); `before`: called before each timed call, untimed."""
    clock = clock or time.perf_counter
    sync = sync or (lambda: None)
    before = before or (lambda: None)
    n_warm, t_warm = 0, 0.0
    start = time.perf_counter()
    while n_warm < min_warmup or time.perf_counter() - start < warmup_seconds:
        before()
        t0 = clock()
        fn()
        sync()
        t_warm = clock() - t0
        n_warm += 1
        if n_warm >= max(min_warmup, 50):
            break
    per_call = max(t_warm, 1e-7)
    runs = int(min(max_runs, max(min_runs, block_seconds / per_call)))
    times, medians = [], []
    for _ in range(max(1, blocks)):
        block = []
        for _ in range(runs):
            before()
            t0 = clock()
            fn()
            sync()
            block.append((clock() - t0) * 1e3)
        medians.append(statistics.median(block))
        times += block
    return times, medians, runs, n_warm


def prepare(model, device, compile: bool = False):
    """The model in eval mode on `device`, optionally through torch.compile (a one-line error
    when it cannot compile here, e.g. no C++ compiler)."""
    model = model.eval().to(device)
    if compile:
        import torch
        try:
            model = torch.compile(model)
        except Exception as e:  # noqa: BLE001 - whatever inductor raises
            raise LatencyError(f"torch.compile failed: {type(e).__name__}: {str(e)[:200]}; measure without "
                               "--compile") from None
    return model


def measure(model, input_shape, batch: int = 1, device="cpu", threads: int | None = 1, blocks: int = 3,
            block_seconds: float = 0.25, max_runs: int = 200, compile: bool = False, min_runs: int = 3,
            clock: str = "wall") -> Measurement:
    """Measure `model` (an nn.Module taking one N x C x H x W tensor) at `batch` x `input_shape`.

    `threads`: torch's intra-op threads while measuring (default 1: single-stream latency on one
    core, as MnasNet measured on one big phone core; None leaves torch's own setting).
    `clock`: "wall" or "cpu" (see the module's docstring)."""
    import torch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise LatencyError(f"--batch must be a whole number of at least 1, got {batch!r}")
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    timer = clock_of(clock, dev, threads)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    x = torch.randn((batch,) + tuple(input_shape), device=dev)
    with pinned_threads(threads if dev.type == "cpu" else None) as n, torch.inference_mode():
        m = prepare(model, dev, compile)
        try:
            if compile:
                m(x)                               # compiling is not part of the latency
            times, medians, runs, warm = time_callable(lambda: m(x), sync, blocks, block_seconds,
                                                       min_runs=min_runs, max_runs=max_runs, clock=timer)
        except LatencyError:
            raise
        except Exception as e:  # noqa: BLE001 - torch.compile fails lazily, at the first call
            if compile:
                raise LatencyError(f"torch.compile failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}; "
                                   "measure without --compile") from None
            raise
    q1, med, q3 = quartiles(times)
    return Measurement(med, q1, q3, medians, runs, warm, str(dev), n if dev.type == "cpu" else None, batch,
                       tuple(input_shape), compile, clock, load_average(), times)


def measure_genotype(g, input=None, batch: int = 1, device="cpu", threads: int | None = 1, classes=None,
                     **kw) -> Measurement:
    """Compile genotype `g` (at `input`, default its own) and measure it."""
    from ..compile import compile_genotype
    model = compile_genotype(g, input=input, classes=classes)
    return measure(model, model.input_shape, batch, device, threads, **kw)


def relative_error(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured; inf when measured is 0."""
    return (predicted - measured) / measured if measured > 0 else math.inf
