"""The run folder `runs/<name>/`: the truth about a search.

Trial records are appended as JSON lines as trials finish (a line cut by a crash is
repaired on resume); every other file is replaced atomically, so a crash or Ctrl-C at
any moment leaves a folder that `nasty search --resume` continues and `nasty report` reads.
"""
from __future__ import annotations

import dataclasses
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


_ABSENT = object()
_JSON_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),)}


def _has_type(v, annotation: str) -> bool:
    """Is JSON value `v` of a dataclass field annotated `annotation` ('int | None', 'float', ...)?"""
    names = [a.strip() for a in annotation.split("|")]
    if any(a not in _JSON_TYPES for a in names):
        return True                                   # not a plain type: not checked here
    if isinstance(v, bool):
        return "bool" in names
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return any(isinstance(v, _JSON_TYPES[a]) for a in names)


STATUSES = ("ok", "failed", "stopped", "timeout", "rejected")


def _is_record(rec) -> bool:
    """A trial record as the driver writes it: the fields every reader relies on, well typed."""
    if not isinstance(rec, dict) or rec.get("status") not in STATUSES:
        return False
    n = rec.get("trial")
    if rec["status"] == "rejected":
        return n is None
    acc = rec.get("val_acc")
    return (type(n) is int and n >= 0 and (acc is None or type(acc) in (int, float))
            and isinstance(rec.get("target", {}), dict) and isinstance(rec.get("decisions", {}), dict))


def _short(v) -> str:
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


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

    def config(self, settings=None) -> dict:
        """config.json. With `settings` (a dataclass), each of its fields that the file holds must
        have the JSON type the field is annotated with: a damaged file is refused, not half-used."""
        p = self.path / "config.json"
        if not p.is_file():
            if not self.path.exists():
                raise RunError(f"no run folder {self.path}")
            raise RunError(f"{self.path} is not a nasty run folder (no config.json)")
        cfg = self.read_json("config.json")
        if not isinstance(cfg, dict):
            raise RunError(f"{p} is damaged: it holds a JSON {type(cfg).__name__}, not the run's settings; "
                           "the run folder is left as it is")
        for f in dataclasses.fields(settings) if settings is not None else ():
            if f.name in cfg and not _has_type(cfg[f.name], str(f.type)):
                raise RunError(f"{p} is damaged: {f.name!r} is {_short(cfg[f.name])}, not {f.type}; "
                               "the run folder is left as it is")
        return cfg

    def append_trial(self, record: dict):
        line = json.dumps(_jsonable(record), separators=(",", ":")) + "\n"
        with open(self.path / "trials.jsonl", "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def trials(self, repair: bool = False) -> list[dict]:
        """Every complete record. A last line cut by a crash mid-append (no newline at its end) is
        skipped, and with `repair` cut off the file. Any other line that is not a JSON object is
        damage no crash makes: with `repair` (a resume) a RunError that leaves the file as it is;
        when only reading, the records before it."""
        p = self.path / "trials.jsonl"
        if not p.is_file():
            return []
        raw = p.read_bytes()
        *lines, torn = raw.split(b"\n")              # torn: b"" when the file ends with a newline
        out = []
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):      # JSONDecodeError, UnicodeDecodeError
                rec = None
            if not _is_record(rec):
                if repair:
                    raise RunError(f"{p} line {n} is damaged ({_short(line)} is not a trial record); a crash "
                                   "can only cut the last line, so the run folder is left as it is: "
                                   "remove or fix that line, or start a new run")
                return out
            out.append(rec)
        if repair and torn:
            with open(p, "r+b") as f:
                f.truncate(len(raw) - len(torn))
        return out

    def write_json(self, name: str, obj):
        atomic_write(self.path / name, json.dumps(_jsonable(obj), indent=1) + "\n")

    def read_json(self, name: str, default=None):
        p = self.path / name
        if not p.is_file():
            return default
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:    # ValueError: bad JSON or bad UTF-8
            raise RunError(f"cannot read {p}: {type(e).__name__}: {' '.join(str(e).split())[:200]}; "
                           "the run folder is left as it is") from None

    def controller_state(self) -> dict | None:
        """controller.json: None when there is none yet, refused (RunError) when damaged. Read
        before trials.jsonl is repaired, so a refused resume has touched nothing."""
        p = self.path / "controller.json"
        st = self.read_json("controller.json", default=_ABSENT)
        if st is _ABSENT:
            return None
        ok = (isinstance(st, dict) and isinstance(st.get("state"), dict)
              and all(type(st.get(k, 0)) is int and st.get(k, 0) >= 0 for k in ("samples", "told")))
        if not ok:
            raise RunError(f"{p} is damaged (not a controller state with 'state', 'samples' and 'told'); "
                           "the run folder is left as it is: restore the file, or start a new run")
        return st

    def write_text(self, name: str, text: str):
        atomic_write(self.path / name, text)

    def weights(self, trial: int) -> Path:
        return self.path / "weights" / f"trial_{trial:04d}.pt"
