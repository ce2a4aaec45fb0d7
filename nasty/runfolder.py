"""The run folder `runs/<name>/`: the truth about a search.

Trial records are appended as JSON lines as trials finish (a line cut by a crash is
repaired on resume); every other file is replaced atomically, so a crash or Ctrl-C at
any moment leaves a folder that `nasty search --resume` continues and `nasty report` reads.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from .errors import RunError


def atomic_write(path: Path, data: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and callable(v.item):       # numpy / torch scalars
        return v.item()
    return v


class RunFolder:
    """runs/<name>/: config, trial records (JSON lines), controller state, results."""

    def __init__(self, path):
        self.path = Path(path)

    def __str__(self):
        return str(self.path)

    @property
    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    def create(self, config: dict):
        if self.path.exists():
            raise RunError(f"run folder {self.path} already exists; continue it with "
                           f"`nasty search --resume {self.path}` or pick another --name")
        self.path.mkdir(parents=True)
        atomic_write(self.path / "config.json", json.dumps(_jsonable(config), indent=1) + "\n")

    def config(self) -> dict:
        p = self.path / "config.json"
        if not p.is_file():
            if not self.path.exists():
                raise RunError(f"no run folder {self.path}")
            raise RunError(f"{self.path} is not a nasty run folder (no config.json)")
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RunError(f"cannot read {p}: {e}") from None

    def append_trial(self, record: dict):
        line = json.dumps(_jsonable(record), separators=(",", ":")) + "\n"
        with open(self.path / "trials.jsonl", "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def trials(self, repair: bool = False) -> list[dict]:
        """Every complete record. A line cut by a crash is skipped (and cut off with `repair`)."""
        p = self.path / "trials.jsonl"
        if not p.is_file():
            return []
        out, good_bytes = [], 0
        raw = p.read_bytes()
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good_bytes += len(line)
        if repair and good_bytes != len(raw):
            with open(p, "r+b") as f:
                f.truncate(good_bytes)
        return out

    def write_json(self, name: str, obj):
        atomic_write(self.path / name, json.dumps(_jsonable(obj), indent=1) + "\n")

    def read_json(self, name: str, default=None):
        p = self.path / name
        if not p.is_file():
            return default
        try:
            return json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunError(f"cannot read {p}: {type(e).__name__}: {' '.join(str(e).split())[:200]}; "
                           "the run folder is left as it is") from None

    def write_text(self, name: str, text: str):
        atomic_write(self.path / name, text)

    def weights(self, trial: int) -> Path:
        return self.path / "weights" / f"trial_{trial:04d}.pt"
