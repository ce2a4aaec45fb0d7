"""The run folder `runs/<name>/`: the truth about a search.

Trial records are appended to trials.jsonl as trials finish, one JSON line each (see
record.py); every other file is replaced atomically. So a crash or Ctrl-C at any moment
leaves a folder that `nasty search --resume` continues and `nasty report` reads.

A damaged folder is refused, never half-used: any line of trials.jsonl that is not a
record, or a config/controller file of the wrong shape, is a RunError that leaves every
byte as it was. Before a resume or a report writes anything, `verify()` reads the whole
folder and checks that the records agree with what was derived from them (controller.json's
count of records told, the trials leaderboard.json ranks and best.json names, those that
confirm.jsonl confirms): records lost to a truncated, zero-filled, emptied or deleted
trials.jsonl are refused instead of a search started again over the old results, and results
are never rewritten from fewer records than they hold (`never_fewer`).

The one repair is that of a crash mid-append, and it is made only by `repair()`, which the
resume calls after every other check has passed: a torn last line is cut, and a line counts
as torn only when it can be one record cut short (`torn_tail`: the printable-ASCII beginning
of one JSON record, no longer than one record, never NUL bytes); a whole last record that only
lacks its newline gets it.

running.json names the trials dispatched and not yet recorded (`note_running`): a trial cut
short by an interrupt, a kill or a crash is there and not in trials.jsonl, and a resume runs
it again under its number.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Callable

from ..errors import RunError
from .record import AuditRecord, ConfirmRecord, RecordError, TrialRecord, jsonable

TRIALS = "trials.jsonl"
CONFIRMS = "confirm.jsonl"          # the confirmation stage's records (record.ConfirmRecord)
RUNNING = "running.json"            # the trials dispatched and not yet recorded (RunFolder.running)
AUDITS = "audit.jsonl"              # the self-audit's random members (record.AuditRecord, audit.py)
DECODERS = {TRIALS: TrialRecord.from_json, CONFIRMS: ConfirmRecord.from_json, AUDITS: AuditRecord.from_json}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
WRITING = threading.RLock()         # held while a file of a run is written: signals.Stop ends a process between writes


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
    with WRITING:
        _atomic_write(path, data)


def _atomic_write(path: Path, data):
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


def _lock_holder(path: Path, st) -> tuple[int | None, str | None]:
    """(PID, what it does: search, training, report) of the holder of the run folder's lock: the PID
    is the kernel's word where it tells it (Linux), else what the holder wrote in its note (macOS,
    Windows); what it does is in its note."""
    pid = _kernel_holder(st)
    try:
        words = _pid_note(path).read_text().split()
        noted, what = int(words[0]), " ".join(words[1:]) or None
    except (OSError, ValueError, IndexError):
        noted, what = None, None
    if pid is None:
        return noted, what
    return pid, what if noted == pid else None


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


RECORD_BOUND = 1 << 20       # bytes: no record is longer (unless the file holds a longer whole line)


def torn_tail(tail: bytes, longest: int = 0) -> str | None:
    """Why `tail`, the bytes after the last newline of a records file, cannot be one record cut short
    by a crash mid-append (None when it can). A crash cuts one record: a prefix of one JSON line of
    printable ASCII (records are written with ensure_ascii) that opens with "{", no longer than one
    record (RECORD_BOUND, or the longest whole line), and holding no complete JSON value. A power cut
    that zero-fills the end of a file, or several records run together, are damage, not a torn line."""
    if b"\x00" in tail:
        n = tail.count(b"\x00")
        return ("are all NUL bytes (a file zero-filled by a power cut or a failing disk)" if n == len(tail)
                else f"hold {n:,} NUL byte(s) (zero-filled by a power cut or a failing disk)")
    if len(tail) > max(RECORD_BOUND, longest):
        return f"are longer than any one record ({max(RECORD_BOUND, longest):,} bytes)"
    if not tail.startswith(b"{") or any(b < 0x20 or b > 0x7e for b in tail):
        return "are not the beginning of a record (one JSON object of printable ASCII)"
    text = tail.decode("ascii")
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None                                   # an unfinished JSON object: a torn record
    if end < len(text):
        return "hold a whole JSON object followed by more (records run together, their newlines lost)"
    return "are a whole JSON object, but not a record"


def _trials(numbers) -> str:
    shown = ", ".join(f"#{n}" for n in list(numbers)[:6])
    return f"trial{'s' if len(numbers) > 1 else ''} {shown}{', ...' if len(numbers) > 6 else ''}"


@dataclasses.dataclass
class Checked:
    """A run folder read whole and found consistent (RunFolder.verify)."""
    records: list                # every record of trials.jsonl (rejected samples included), a torn line left out
    confirmations: list          # confirm.jsonl's records
    controller: dict | None      # controller.json
    interrupted: list            # proposals of trials dispatched and never recorded (running.json), by number


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
            with WRITING, open(p, "a", encoding="utf-8") as f:
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
                why = torn_tail(tail, max(map(len, lines), default=0))
                if why:
                    raise RunError(f"{p} is damaged: it ends in {len(tail):,} bytes after its last newline "
                                   f"({len(lines)} whole record(s) before them) that {why}, so they are not a "
                                   "record cut short by a crash; the run folder is left as it is: restore the "
                                   "file from a backup, or start a new run") from None
                fix = "cut"                           # torn by a crash mid-append
        return out, raw, fix

    def records(self) -> list[TrialRecord]:
        """Every record. A damaged line is a RunError, except a torn last line (a crash
        mid-append), which is left out here and cut by `repair()`."""
        return self._scan()[0]

    def confirmations(self) -> list[ConfirmRecord]:
        """The confirmation stage's records (confirm.jsonl), read as records() reads trials."""
        return self._scan(CONFIRMS)[0]

    def verify(self) -> "Checked":
        """The whole folder read and cross-checked before a resume or a report writes anything: every
        record file is sound (a torn last line at most one record long, never NUL bytes), and the
        records agree with what was derived from them: controller.json's count of records told,
        the trials leaderboard.json ranks and best.json names (with their scores), the trials that
        confirm.jsonl confirms. A folder whose records were lost (a file truncated, zero-filled,
        emptied or deleted) is a RunError that says what disagrees, and nothing is changed.
        The files derived from the records are read first, so a search appending at the same time
        can only make the records more complete than they are."""
        ctrl = self.controller_state()
        board = self._witness("leaderboard.json")
        best = self._witness("best.json")
        confirmations = self.confirmations()
        records = self.records()
        running = self.running()
        by_number = {r.trial: r for r in records if r.trial is not None}

        def lacks(row) -> bool:
            n = row.get("trial") if isinstance(row, dict) else None
            if type(n) is not int:
                return False
            rec, acc = by_number.get(n), row.get("val_acc")
            return rec is None or (isinstance(acc, float) and rec.val_acc is not None and rec.val_acc != acc)

        problems = []
        if ctrl is not None and ctrl.get("told", 0) > len(records):
            problems.append(f"controller.json counts {ctrl['told']} records told to the controller")
        ranked = [row["trial"] for row in board if lacks(row)] if isinstance(board, list) else []
        if ranked:
            problems.append(f"leaderboard.json ranks {_trials(ranked)}, which it lacks")
        if lacks(best):
            problems.append(f"best.json names trial #{best['trial']}"
                            + (f" (val acc {best['val_acc']})" if isinstance(best.get("val_acc"), float) else "")
                            + ", which it lacks")
        confirmed = sorted({c.trial for c in confirmations if c.trial not in by_number})
        if confirmed:
            problems.append(f"{CONFIRMS} confirms {_trials(confirmed)}, which it lacks")
        if problems:
            trained = sum(1 for r in records if r.status.scored)
            held = ("is missing" if not (self.path / TRIALS).exists() else
                    f"holds {len(records)} record{'s' if len(records) != 1 else ''} ({trained} trained)")
            raise RunError(
                f"run folder {self.path} disagrees with itself: {TRIALS} {held}, yet {'; '.join(problems)}: "
                "records were lost (the file was truncated, emptied, replaced or deleted); the run folder is left "
                f"as it is: restore {TRIALS} from a backup, or start a new run")
        interrupted = sorted((r for r in running if r.trial not in by_number), key=lambda r: r.trial)
        return Checked(records, confirmations, ctrl, interrupted)

    def never_fewer(self, records):
        """Refuse (RunError) to rewrite the results from `records` when leaderboard.json ranks a trial
        they lack: a results file is never rewritten from fewer records than it holds."""
        board = self._witness("leaderboard.json")
        have = {r.trial for r in records if r.trial is not None}
        lost = [row["trial"] for row in board if isinstance(row, dict) and type(row.get("trial")) is int
                and row["trial"] not in have] if isinstance(board, list) else []
        if lost:
            raise RunError(f"{self.path / 'leaderboard.json'} ranks {_trials(lost)}, which the {len(have)} "
                           f"trial record(s) at hand lack; it is not rewritten from fewer records than it holds "
                           f"(is {self.path / TRIALS} complete?)")

    def _witness(self, name: str):
        """A file derived from the records (leaderboard.json, best.json), to check them against; None
        when it is missing or unreadable (it is rebuilt from the records, never the reverse)."""
        try:
            return self.read_json(name)
        except RunError:
            return None

    # ------------------------------------------------------------ trials running now
    def running(self) -> list[TrialRecord]:
        """running.json: the trials dispatched and not yet recorded, as their proposals (status ok as a
        placeholder). A trial that a crash, a kill or an interrupt cut is in it and not in trials.jsonl:
        a resume runs it again under its number. A damaged file is a RunError."""
        st = self.read_json(RUNNING)
        if st is None:
            return []
        try:
            if not isinstance(st, dict) or not isinstance(st.get("trials"), list):
                raise RecordError("not {\"trials\": [...]}")
            out = [TrialRecord.from_dict(d) for d in st["trials"]]
            if any(r.trial is None for r in out):
                raise RecordError("a running trial without a number")
        except RecordError as e:
            raise RunError(f"{self.path / RUNNING} is damaged ({e}); the run folder is left as it is: "
                           "restore the file, or delete it (the trials it names are then not run again)") from None
        return out

    def note_running(self, proposals):
        """Replace running.json with `proposals` (TrialRecords of the trials running now; none: removed)."""
        if proposals:
            self.write_json(RUNNING, {"trials": [r.to_dict() for r in sorted(proposals, key=lambda r: r.trial)]})
        else:
            (self.path / RUNNING).unlink(missing_ok=True)

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
                pid, doing = _lock_holder(self.path, os.fstat(fd))
                raise RunError(f"run folder {self.path} is in use by another nasty process"
                               + (f" (PID {pid}" + (f", a {doing}" if doing else "") + ")" if pid else "")
                               + f"; wait for it to end, or stop it, before this {what}") from None
            try:
                note.parent.mkdir(exist_ok=True)
                note.write_text(f"{os.getpid()} {what}\n")
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
