"""Rank statistics shared by the screen's picture, the scores' benchmarks and the simulations on
the benchmark tables: one implementation, below all of them (every import in nasty/ points down,
tests/test_imports.py)."""
from __future__ import annotations

import math


def rank_agreement(xs, ys) -> tuple[float, float]:
    """(Kendall tau-b, Spearman rho) of two equally long sequences, ties handled as scipy does."""
    import numpy as np
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(n, 1)
    s, tx, ty = (dx * dy)[iu].sum(), (dx[iu] != 0).sum(), (dy[iu] != 0).sum()
    tau = s / math.sqrt(tx * ty) if tx and ty else math.nan

    def ranks(v):
        order = v.argsort(kind="mergesort")
        r = np.empty(n)
        r[order] = np.arange(n, dtype=float)
        for val in np.unique(v):                     # ties share their mean rank
            m = v == val
            r[m] = r[m].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    rho = np.corrcoef(rx, ry)[0, 1] if rx.std() and ry.std() else math.nan
    return float(tau), float(rho)
