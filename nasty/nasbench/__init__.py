"""Our own NAS benchmark: the nb201mini cell space (nasty/searchspaces/nb201mini.py), a
small NAS-Bench-201-like space trained exhaustively on Fashion-MNIST with the proxy
trainer (table.py), then used to simulate every controller cheaply (simulate.py).

    nasty bench build            # exhaustively train the space (resumable)
    nasty bench run              # simulate the controllers; regret curves and a table
"""
from __future__ import annotations

import itertools

from ..searchspaces.nb201mini import EDGES, OPS


def all_archs():
    """Every cell of the space (3^6 = 729), as tuples of edge ops in NAS-Bench-201's order."""
    return list(itertools.product(OPS, repeat=len(EDGES)))
