"""Zero-cost scores: rank many candidate networks on one batch of the user's own training data,
with no training, in this process (a tenth of a second per candidate instead of a minute of
proxy training). They are the screen of a search (nasty/search/screen.py): thousands of
candidates are scored, and only the best are trained.

    import nasty
    nasty.score("nasnet_mobile", data, which="naswot")            # one float
    nasty.score(g, (x, y), which=("naswot", "params"))            # {name: float}

    from nasty.scores import batch_of, evaluate, order
    batch = batch_of(dataset, images=64)
    scored = evaluate(genotypes, batch, ("naswot", "synflow"))    # one Scored per candidate
    best_first = order(scored, ("naswot", "synflow"))             # by the average of their ranks

The scores (measures.py): naswot, synflow, snip, grad_norm, jacob_cov, and the exact baselines
params and macs from the cost model. Higher is better for each. A score that comes out NaN or
infinite, or cannot be computed, is None in `Scored.values` with a note, and ranks its
candidate last; it never raises. Which score ranks best was measured (benchmarks/
bench_zerocost.py, docs/screening.md): `DEFAULT_SCREEN` is what it supports.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..errors import NastyError
from . import measures  # noqa: F401 - registers the scores
from .measures import Candidate, ScoreError
from .registry import SCORES, Score, register

DEFAULT_IMAGES = 64             # images in the batch a score sees
# The default screen of a search: no zero-cost score beat #params on our benchmarks with an
# interval excluding 0 (benchmarks/zerocost/, docs/screening.md), so the screen ranks in-budget
# candidates by the rank average of their MACs and params.
DEFAULT_SCREEN = ("macs", "params")

__all__ = ["SCORES", "Score", "register", "Batch", "Scored", "Candidate", "ScoreError", "DEFAULT_IMAGES",
           "DEFAULT_SCREEN", "batch_of", "names", "evaluate", "score", "order", "ranks"]


class ScoreNameError(NastyError):
    """An unknown score name."""


def names(which) -> tuple[str, ...]:
    """Score names from None (all), 'naswot', 'naswot,params' or a sequence; a one-line error
    names an unknown one and lists the known."""
    if which is None:
        return tuple(SCORES)
    items = which.split(",") if isinstance(which, str) else list(which)
    out = []
    for w in items:
        w = str(w).strip()
        if not w:
            continue
        if w not in SCORES:
            import difflib
            hint = difflib.get_close_matches(w, SCORES, 1)
            raise ScoreNameError(f"unknown score {w!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                 + f"; scores: {', '.join(SCORES)}")
        if w not in out:
            out.append(w)
    if not out:
        raise ScoreNameError(f"no score named; scores: {', '.join(SCORES)}")
    return tuple(out)


# ------------------------------------------------------------------ the batch
@dataclass(frozen=True)
class Batch:
    """One batch of normalised images (float32, N x C x H x W) and their labels."""
    x: object
    y: object
    classes: int

    @property
    def input(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def batch_of(data, images: int = DEFAULT_IMAGES, seed: int = 0, rows=None) -> Batch:
    """A Batch of `images` training images: from a nasty Dataset (drawn, seeded, from `rows` or
    else the training side of its validation split, normalised with the dataset's statistics),
    from (x, y) arrays or tensors (uint8 images are normalised with their own channel statistics,
    floats taken as they are), or a Batch as it is."""
    import numpy as np
    import torch

    from ..data import Dataset, to_device_tensors
    if isinstance(data, Batch):
        return data
    if isinstance(images, bool) or not isinstance(images, int) or images < 2:
        raise NastyError(f"a score needs a batch of at least 2 images, got {images!r}")
    if isinstance(data, Dataset):
        if rows is None:
            from ..data import split_train_val
            rows = split_train_val(data)[0]
        rows = np.asarray(rows)
        take = np.sort(np.random.default_rng(seed).choice(rows, min(images, len(rows)), replace=False))
        x, y = to_device_tensors(data.train_x[take], data.train_y[take], "cpu", data.mean, data.std,
                                 channels_last=False)
        return Batch(x, y, data.num_classes)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long().reshape(-1)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or len(x) != len(y) or len(x) < 2:
            raise NastyError(f"score data must be images N x C x H x W (or N x H x W) with one label each and "
                             f"N >= 2; got images {tuple(x.shape)} and {tuple(y.shape)} labels")
        if len(x) > images:
            pick = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(x), images, replace=False)))
            x, y = x[pick], y[pick]
        if x.dtype == torch.uint8:
            f = x.double()
            mean = f.mean(dim=(0, 2, 3), keepdim=True)
            std = f.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
            x = ((f - mean) / std).float()
        else:
            x = x.float()
        return Batch(x.contiguous(), y, int(y.max()) + 1 if len(y) else 1)
    raise NastyError(f"score data must be a nasty Dataset, (images, labels) or a Batch; got {type(data).__name__}")


# ------------------------------------------------------------------ scoring
@dataclass
class Scored:
    """One candidate's scores: {name: value, None when NaN/infinite/failed}, seconds per score,
    and notes saying why a value is missing."""
    values: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def evaluate(genotypes, batch: Batch, which=None, seed: int = 0, progress: bool = False,
             on_each=None, threads: int | None = None) -> list[Scored]:
    """Score every genotype (built at the batch's input and classes) with each score of `which`,
    in this process, one candidate after the other. `progress`: a progress bar on a terminal;
    `on_each(i, scored)`: called after each candidate; `threads`: torch threads meanwhile."""
    import torch
    which = names(which)
    genotypes = list(genotypes)
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    bar = _bar(len(genotypes)) if progress else None
    out = []
    try:
        for i, g in enumerate(genotypes):
            out.append(_score_one(g, batch, which, seed))
            if bar is not None:
                bar[0].advance(bar[1])
            if on_each is not None:
                on_each(i, out[-1])
    finally:
        if threads:
            torch.set_num_threads(saved)
        if bar is not None:
            bar[0].stop()
    return out


def _bar(total: int):
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    console = Console(stderr=True)
    if not console.is_terminal or not sys.stderr.isatty():
        return None
    p = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                 console=console, transient=True)
    p.start()
    return p, p.add_task("scoring", total=total)


def _score_one(g, batch: Batch, which, seed: int) -> Scored:
    from ..cost import cost
    s = Scored()
    try:
        c = Candidate(g, cost(g, input=batch.input, classes=batch.classes), batch.x, batch.y, batch.classes, seed)
    except Exception as e:  # noqa: BLE001 - a genotype that cannot be built at this input
        for name in which:
            s.values[name] = None
        s.notes.append(f"cannot build the network at {'x'.join(map(str, batch.input))}: {_one_line(e)}")
        return s
    if any(SCORES[w].needs_data for w in which):
        t0 = time.perf_counter()
        try:
            c.network()                      # built once (timed on its own); each score gets a copy
        except Exception as e:  # noqa: BLE001
            s.notes.append(f"cannot build the network: {_one_line(e)}")
            s.values.update({w: None for w in which if SCORES[w].needs_data})
            which = [w for w in which if not SCORES[w].needs_data]
        s.seconds["build"] = time.perf_counter() - t0
    for name in which:
        t0 = time.perf_counter()
        try:
            v = float(SCORES[name].fn(c))
            if not math.isfinite(v):
                s.notes.append(f"{name} is {v} (ranked last)")
                v = None
        except Exception as e:  # noqa: BLE001 - a score never stops the others, nor a search
            s.notes.append(f"{name} failed (ranked last): {_one_line(e)}")
            v = None
        s.values[name] = v
        s.seconds[name] = time.perf_counter() - t0
    return s


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= 200 else text[:197] + "..."


def score(genotype, data, which=None, *, images: int = DEFAULT_IMAGES, seed: int = 0):
    """Zero-cost score(s) of one network on one batch of `data` (a nasty Dataset, (images,
    labels), or a Batch). `genotype`: a Genotype, zoo name or genotype file, built at the data's
    input and classes. `which`: a score name (returns a float; NaN when it came out non-finite),
    or several / None for all (returns {name: float})."""
    from .. import resolve
    single = isinstance(which, str) and "," not in which
    chosen = names(which)
    g = resolve(genotype)
    s = _score_one(g, batch_of(data, images, seed), chosen, seed)
    values = {k: (math.nan if v is None else v) for k, v in s.values.items()}
    return values[chosen[0]] if single else values


# ------------------------------------------------------------------ ranking
def ranks(values) -> list[float]:
    """Rank of each value, 1 = highest, ties sharing their mean rank; None or non-finite values
    all rank last (at the mean of the last places)."""
    n = len(values)
    good = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    good.sort(key=lambda t: -t[0])
    out = [0.0] * n
    k = 0
    while k < len(good):
        j = k
        while j + 1 < len(good) and good[j + 1][0] == good[k][0]:
            j += 1
        for m in range(k, j + 1):
            out[good[m][1]] = (k + j) / 2 + 1
        k = j + 1
    bad = [i for i in range(n) if out[i] == 0.0]
    for i in bad:
        out[i] = (len(good) + 1 + n) / 2
    return out


def combined(scored: list[Scored], which) -> list[float]:
    """Each candidate's mean rank over the scores of `which` (lower is better; one score: its rank)."""
    which = names(which)
    per = [ranks([s.values.get(w) for s in scored]) for w in which]
    return [sum(r[i] for r in per) / len(per) for i in range(len(scored))]


def order(scored: list[Scored], which) -> list[int]:
    """Indices of the candidates, best first: by one score, or by the average of their ranks under
    several; a candidate whose score is missing (NaN, infinite, failed) comes last."""
    which = names(which)
    key = combined(scored, which)
    missing = [any(s.values.get(w) is None for w in which) for s in scored]
    return sorted(range(len(scored)), key=lambda i: (missing[i], key[i], i))
