"""The run folder `runs/<name>/`: the truth about a search.

Trial records are appended to trials.jsonl as trials finish, one JSON line each (see
record.py); every other file is replaced atomically. So a crash or Ctrl-C at any moment
leaves a folder that `nasty search --resume` continues and `nasty report` reads.

A damaged folder is refused, never half-used: any line of trials.jsonl that is not a
record, or a config/controller file of the wrong shape, is a RunError that leaves every
byte as it was. The one repair is that of a crash mid-append, and it is made only by
`repair()`, which the resume calls after every other check has passed: a torn last line
(no newline, not a record) is cut; a whole last record that only lacks its newline gets it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import RunError
from .record import AuditRecord, ConfirmRecord, RecordError, TrialRecord, jsonable

TRIALS = "trials.jsonl"
CONFIRMS = "confirm.jsonl"          # the confirmation stage's records (record.ConfirmRecord)
AUDITS = "audit.jsonl"              # the self-audit's random members (record.AuditRecord, audit.py)
DECODERS = {TRIALS: TrialRecord.from_json, CONFIRMS: ConfirmRecord.from_json, AUDITS: AuditRecord.from_json}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(name: str) -> str:
    """A run folder's name: a plain file name (no path, no newline), so it stays under --runs-dir."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise RunError(f"run name {name!r} is not a plain name: use letters, digits and . _ + - "
                       "(starting with a letter or digit, at most 128 characters)")
    return name


def atomic_write(path: Path, data: str | bytes | Callable[[str], None]):
    """Replace `path` all at once: readers see the old file or the new one, never a part.

    `data` is the content, or a function that writes the file it is given (a matplotlib
    savefig); the temporary file gets the permissions a plain open() would give.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w", encoding=None) as f:
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


def _lock_holder(path: Path, st) -> int | None:
    """The PID holding the run folder's lock: the kernel's word where it tells it (Linux), else
    what the holder wrote in its PID note (macOS, Windows)."""
    pid = _kernel_holder(st)
    if pid is not None:
        return pid
    try:
        return int(_pid_note(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kernel_holder(st) -> int | None:
    """The PID holding a flock on the file with stat `st`, from Linux's /proc/locks (by inode)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 fd:01:1234567 0 EOF"
        if len(f) >= 6 and f[1] == "FLOCK" and f[5].rsplit(":", 1)[-1] == str(st.st_ino):
            try:
                return int(f[4])
            except ValueError:
                return None
    return None


def _pid_note(path: Path) -> Path:
    """Where the holder of run folder `path` notes its PID: outside the folder (in the temp
    directory), so that taking the lock changes no byte of the run."""
    import hashlib
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / "nasty-locks" / f"{key}.pid"


def _open_for_lock(path: Path) -> int:
    """A descriptor to lock for run folder `path`: the folder itself where the OS opens folders
    (POSIX: no file is created), else its .lock file (Windows)."""
    if os.name == "nt":
        return os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _short(v) -> str:
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


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
        atomic_write(self.path / "config.json", json.dumps(jsonable(config), indent=1) + "\n")

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

    # ------------------------------------------------------------ trial records
    def append(self, record, name: str = TRIALS):
        """Append one record, on disk (fsync) before this returns; a failure is a RunError."""
        line = record.to_json() + "\n"
        p = self.path / name
        try:
            with open(p, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            n = getattr(record, "trial", None)
            raise RunError(f"cannot append {'trial ' + str(n) if n is not None else 'a record'} "
                           f"to {p}: {e.strerror or e}; the search stops so that no result is lost "
                           "silently (earlier records are intact)") from None

    def _scan(self, name: str = TRIALS) -> tuple[list, bytes, str | None]:
        """(records, raw bytes, what repair() would do: None, 'cut' or 'newline')."""
        p = self.path / name
        decode = DECODERS[name]
        if not p.exists():
            return [], b"", None
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise RunError(f"cannot read {p}: {e.strerror or e}; the run folder is left as it is") from None
        *lines, tail = raw.split(b"\n")              # tail: b"" when the file ends with a newline
        out = []
        for n, line in enumerate(lines, 1):
            try:
                out.append(decode(line))
            except RecordError as e:
                raise RunError(f"{p} line {n} is damaged ({e}: {_short(line)}); a crash can only cut the "
                               "last line, so the run folder is left as it is: remove or fix that line, "
                               "or start a new run") from None
        fix = None
        if tail:
            try:
                out.append(decode(tail))
                fix = "newline"                       # a whole record whose newline never made it
            except RecordError:
                fix = "cut"                           # torn by a crash mid-append
        return out, raw, fix

    def records(self) -> list[TrialRecord]:
        """Every record. A damaged line is a RunError, except a torn last line (a crash
        mid-append), which is left out here and cut by `repair()`."""
        return self._scan()[0]

    def confirmations(self) -> list[ConfirmRecord]:
        """The confirmation stage's records (confirm.jsonl), read as records() reads trials."""
        return self._scan(CONFIRMS)[0]

    def audits(self) -> list[AuditRecord]:
        """The self-audit's records (audit.jsonl), read as records() reads trials."""
        return self._scan(AUDITS)[0]

    def repair(self, name: str | None = None) -> str | None:
        """Mend what a crash mid-append leaves (see the module docstring); says what it did.
        Without `name`: trials.jsonl, confirm.jsonl and audit.jsonl (returns what was done to trials.jsonl)."""
        if name is None:
            self.repair(CONFIRMS)
            self.repair(AUDITS)
            name = TRIALS
        _, raw, fix = self._scan(name)
        p = self.path / name
        if fix == "cut":
            with open(p, "r+b") as f:
                f.truncate(raw.rfind(b"\n") + 1)
        elif fix == "newline":
            with open(p, "ab") as f:
                f.write(b"\n")
        return fix

    # ------------------------------------------------------------ other files
    # ------------------------------------------------------------ one writer at a time
    @contextlib.contextmanager
    def lock(self, what: str = "search"):
        """Hold the run folder for this process: an exclusive lock (filelock's, on every OS: flock
        on POSIX, LockFileEx on Windows) on the folder itself where the OS can open a folder (no
        file is created, so a refused command leaves every byte as it was), released when the
        process ends however it ends, so a killed run never leaves a stale lock. A second process
        gets a RunError naming the holder's PID."""
        from filelock import lock_descriptor, unlock_descriptor
        if not self.path.is_dir():
            raise RunError(f"no run folder {self.path}")
        try:
            fd = _open_for_lock(self.path)
        except OSError as e:
            if self.writable():
                raise RunError(f"cannot open run folder {self.path}: {e.strerror or e}") from None
            fd = None                           # nothing can be written there, by anyone: the caller says so
        if fd is None:
            yield
            return
        note = _pid_note(self.path)
        try:
            try:
                held = lock_descriptor(fd, blocking=False)
            except OSError as e:
                raise RunError(f"cannot lock run folder {self.path}: {e.strerror or e}") from None
            if not held:
                pid = _lock_holder(self.path, os.fstat(fd))
                raise RunError(f"run folder {self.path} is in use by another nasty process"
                               + (f" (PID {pid})" if pid else "")
                               + f"; wait for it to end, or stop it, before this {what}") from None
            try:
                note.parent.mkdir(exist_ok=True)
                note.write_text(f"{os.getpid()}\n")
            except OSError:
                pass                            # the PID is a courtesy; the lock holds without it
            try:
                yield
            finally:
                note.unlink(missing_ok=True)
                unlock_descriptor(fd)
        finally:
            os.close(fd)                        # releases the lock

    def writable(self) -> bool:
        return os.access(self.path, os.W_OK)

    def write_json(self, name: str, obj):
        atomic_write(self.path / name, json.dumps(jsonable(obj), indent=1) + "\n")

    def read_json(self, name: str, default=None):
        p = self.path / name
        if not p.exists():
            return default
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:    # ValueError: bad JSON or bad UTF-8
            raise RunError(f"cannot read {p}: {type(e).__name__}: {' '.join(str(e).split())[:200]}; "
                           "the run folder is left as it is") from None

    def controller_state(self) -> dict | None:
        """controller.json: None when there is none yet, refused (RunError) when damaged."""
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

    def prune_weights(self, keep: set[int]):
        """Delete the proxy weights of trials not in `keep`: only regular files directly in this
        folder's weights/ (never through a symlink, never outside the run folder)."""
        d = self.path / "weights"
        if d.is_symlink() or not d.is_dir():
            return
        for f in d.iterdir():
            if f.is_symlink() or not f.is_file() or not (f.name.startswith("trial_") and f.suffix == ".pt"):
                continue
            try:
                if int(f.stem.split("_")[1]) not in keep:
                    f.unlink(missing_ok=True)
            except (ValueError, OSError):
                pass
