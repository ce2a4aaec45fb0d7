"""One trial of a search, as the run folder keeps it: the `Status` a trial ended with and
the frozen `TrialRecord`, with the only JSON encoder and decoder of records.

A record is one line of `runs/<name>/trials.jsonl`. Records are never rewritten, so the
format only grows: a key this version does not know (written by a newer nasty) is kept
in `extra` and written back unchanged, and every key an older nasty wrote still decodes.

    rec = TrialRecord.from_json(line)         # RecordError (a ValueError) when damaged
    rec.status.scored, rec.target.macs, rec.epochs[-1].val_acc
    line = rec.to_json()
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """How a trial ended. The values are the strings trials.jsonl has always held."""
    OK = "ok"                  # trained every epoch it was asked to
    STOPPED = "stopped"        # stopped early by the scheduler (ASHA) after at least one epoch
    TIMEOUT = "timeout"        # cut by the time budget after at least one epoch
    FAILED = "failed"          # an error: the space could not build it, training diverged, the worker died
    REJECTED = "rejected"      # over budget at the target: costed analytically and never trained
    SCREENED = "screened"      # in budget, scored by the screen (zero-cost scores), never trained

    @property
    def scored(self) -> bool:
        """Has a validation accuracy (it trained at least one epoch)."""
        return self in (Status.OK, Status.STOPPED, Status.TIMEOUT)

    @property
    def counted(self) -> bool:
        """Counts towards `--trials` (everything dispatched to training; rejected and screened samples
        are free)."""
        return self not in (Status.REJECTED, Status.SCREENED)


class RecordError(ValueError):
    """A line of trials.jsonl that is not a trial record (the folder turns it into a RunError)."""


def jsonable(v):
    """Plain JSON data: tuples as lists, numpy/torch scalars as numbers, non-finite floats as null."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and callable(v.item):       # numpy / torch scalars
        return v.item()
    return v


# ------------------------------------------------------------------ parts of a record
@dataclass(frozen=True)
class NetCost:
    """A network of the trial at one size: the TARGET (where budgets apply) or the PROXY (trained)."""
    macs: int
    params: int
    input: tuple[int, ...] | None = None
    classes: int | None = None
    latency_ms: float | None = None          # predicted per op under a latency budget (nasty/latency/)


@dataclass(frozen=True)
class Epoch:
    """What one epoch of training reported."""
    epoch: int
    val_acc: float
    train_loss: float | None = None
    train_s: float | None = None           # seconds of training so far (all epochs up to this one)
    images_per_s: float | None = None


@dataclass(frozen=True)
class Timings:
    """Wall-clock times (time.time()) and durations in seconds of a trial's life."""
    dispatched: float | None = None
    started: float | None = None
    completed: float | None = None
    total_s: float | None = None
    train_s: float | None = None
    queue_s: float | None = None


@dataclass(frozen=True)
class TrialRecord:
    """One line of trials.jsonl: a sample of the space and what became of it."""
    status: Status
    trial: int | None                        # the trial number; None for a rejected or screened sample
    sample: int | None = None                # the controller's proposal number (rejected ones included)
    decisions: dict = field(default_factory=dict)
    reason: str | None = None                # why it failed or was rejected
    genotype: str | None = None              # the TARGET genotype (text form)
    proxy_genotype: str | None = None        # the PROXY genotype that was trained
    target: NetCost | None = None
    proxy: NetCost | None = None
    fitted: dict | None = None               # --fit: {width decision: [sampled, fitted]}
    epochs: tuple[Epoch, ...] = ()
    val_acc: float | None = None             # the last epoch's validation accuracy: the trial's score
    best_val_acc: float | None = None
    timings: Timings | None = None
    placement: dict | None = None            # {"node": Ray node id, "gpu_ids": [...]}
    retries: tuple[str, ...] = ()            # why Ray ran it again (a worker or node died)
    weights_error: str | None = None
    screen: dict | None = None               # the screen's verdict: {"round", "rank", "of", "by", "scores"}
    extra: dict = field(default_factory=dict)   # keys this version does not know: kept as they were

    # ------------------------------------------------------------ reading
    @property
    def train_s(self) -> float | None:
        return self.timings.train_s if self.timings else None

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The JSON object of this record (fields that are None or empty are left out)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if f.name == "trial" or f.name == "status":
                out[f.name] = str(v) if f.name == "status" else v
            elif v is None or (isinstance(v, (tuple, dict)) and not v and f.name != "decisions"):
                continue
            elif isinstance(v, tuple) and v and dataclasses.is_dataclass(v[0]):
                out[f.name] = [_compact(x) for x in v]
            elif dataclasses.is_dataclass(v):
                out[f.name] = _compact(v)
            else:
                out[f.name] = v
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return jsonable(out)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d) -> "TrialRecord":
        """Decode a record; RecordError names what is wrong with a damaged one."""
        if not isinstance(d, dict):
            raise RecordError(f"a record is a JSON object, not {type(d).__name__}")
        try:
            status = Status(d.get("status"))
        except ValueError:
            raise RecordError(f"unknown status {_short(d.get('status'))}; statuses: "
                              f"{', '.join(s.value for s in Status)}") from None
        n = d.get("trial")
        if status in (Status.REJECTED, Status.SCREENED):
            if n is not None:
                raise RecordError(f"a {status.value} sample has no trial number")
        elif type(n) is not int or not 0 <= n < 2**53:
            raise RecordError(f"trial number {_short(n)} is not a whole number from 0 to 2^53")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            status=status, trial=n,
            sample=_opt(d, "sample", int),
            decisions=_dict(d, "decisions"),
            reason=_opt(d, "reason", str),
            genotype=_explicit(_opt(d, "genotype", str), _cost(d, "target")),
            proxy_genotype=_explicit(_opt(d, "proxy_genotype", str), _cost(d, "proxy")),
            target=_cost(d, "target"),
            proxy=_cost(d, "proxy"),
            fitted=_dict(d, "fitted") or None,
            epochs=tuple(_part(Epoch, e, "epochs") for e in _list(d, "epochs")),
            val_acc=_opt(d, "val_acc", float),
            best_val_acc=_opt(d, "best_val_acc", float),
            timings=_part(Timings, d["timings"], "timings") if d.get("timings") else None,
            placement=_dict(d, "placement") or None,
            retries=tuple(_opt({"r": r}, "r", str) for r in _list(d, "retries")),
            weights_error=_opt(d, "weights_error", str),
            screen=_dict(d, "screen") or None,
            extra={k: v for k, v in d.items() if k not in known})

    @classmethod
    def from_json(cls, line: str | bytes) -> "TrialRecord":
        try:
            d = json.loads(line)
        except (ValueError, RecursionError) as e:       # JSONDecodeError, UnicodeDecodeError
            raise RecordError(f"not JSON ({type(e).__name__})") from None
        return cls.from_dict(d)


@dataclass(frozen=True)
class ConfirmRecord:
    """One line of confirm.jsonl: a trial trained again at a higher fidelity (more images and
    epochs, another seed) before the winner is named; the trial's record itself is unchanged."""
    trial: int                               # the trial of trials.jsonl it confirms
    seed: int                                # 0, 1, ...: the confirmation's seed index
    status: Status                           # ok, failed, or timeout
    val_acc: float | None = None             # on the confirmation's validation images
    epochs: tuple[Epoch, ...] = ()
    fidelity: dict = field(default_factory=dict)   # {"epochs", "train_images", "val_images"}
    reason: str | None = None
    timings: Timings | None = None

    def to_json(self) -> str:
        d = {"trial": self.trial, "seed": self.seed, "status": self.status.value, "val_acc": self.val_acc,
             "epochs": [_compact(e) for e in self.epochs], "fidelity": self.fidelity}
        if self.reason:
            d["reason"] = self.reason
        if self.timings:
            d["timings"] = _compact(self.timings)
        return json.dumps(jsonable(d), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes) -> "ConfirmRecord":
        d, status = _stage_head(line, ("trial", "seed"))
        return cls(d["trial"], d["seed"], status, _opt(d, "val_acc", float),
                   tuple(_part(Epoch, e, "epochs") for e in _list(d, "epochs")), _dict(d, "fidelity"),
                   _opt(d, "reason", str), _part(Timings, d["timings"], "timings") if d.get("timings") else None)


@dataclass(frozen=True)
class AuditRecord:
    """One line of audit.jsonl: a random in-budget member of the space, trained with the
    confirmation stage's recipe and seed indices (the run's self-audit, audit.py)."""
    member: int                              # 0, 1, ...: which random member
    seed: int                                # 0, 1, ...: the seed index, as a ConfirmRecord's
    status: Status                           # ok, failed, or timeout
    val_acc: float | None = None             # on the confirmation's validation images
    epochs: tuple[Epoch, ...] = ()
    fidelity: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)
    target: NetCost | None = None
    proxy: NetCost | None = None
    reason: str | None = None
    timings: Timings | None = None

    def to_json(self) -> str:
        d = {"member": self.member, "seed": self.seed, "status": self.status.value, "val_acc": self.val_acc,
             "epochs": [_compact(e) for e in self.epochs], "fidelity": self.fidelity, "decisions": self.decisions}
        for k in ("target", "proxy", "timings"):
            if getattr(self, k) is not None:
                d[k] = _compact(getattr(self, k))
        if self.reason:
            d["reason"] = self.reason
        return json.dumps(jsonable(d), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str | bytes) -> "AuditRecord":
        d, status = _stage_head(line, ("member", "seed"))
        return cls(d["member"], d["seed"], status, _opt(d, "val_acc", float),
                   tuple(_part(Epoch, e, "epochs") for e in _list(d, "epochs")), _dict(d, "fidelity"),
                   _dict(d, "decisions"), _cost(d, "target"), _cost(d, "proxy"), _opt(d, "reason", str),
                   _part(Timings, d["timings"], "timings") if d.get("timings") else None)


def _stage_head(line, numbers: tuple[str, ...]) -> tuple[dict, Status]:
    """The parts a confirmation's and an audit's record share: a JSON object, its status, and the
    whole numbers that name it (`numbers`); a RecordError that says which is wrong."""
    try:
        d = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise RecordError(f"not JSON ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise RecordError(f"a record is a JSON object, not {type(d).__name__}")
    try:
        status = Status(d.get("status"))
    except ValueError:
        raise RecordError(f"unknown status {_short(d.get('status'))}") from None
    for k in numbers:
        if type(d.get(k)) is not int or not 0 <= d[k] < 2**53:
            raise RecordError(f"{k!r} is {_short(d.get(k))}, not a whole number")
    return d, status


def _compact(part) -> dict:
    return {k: v for k, v in dataclasses.asdict(part).items() if v is not None}


def _short(v) -> str:
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


_NUMBER = (int, float)


def _is(v, kind) -> bool:
    if isinstance(v, bool):
        return kind is bool
    if kind is float:
        return isinstance(v, _NUMBER) and math.isfinite(v)
    return isinstance(v, kind)


def _opt(d: dict, key: str, kind):
    v = d.get(key)
    if v is None:
        return None
    if not _is(v, kind):
        raise RecordError(f"{key!r} is {_short(v)}, not {'a number' if kind is float else kind.__name__}")
    return float(v) if kind is float else v


def _dict(d: dict, key: str) -> dict:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordError(f"{key!r} is {_short(v)}, not an object")
    return v


def _list(d: dict, key: str) -> list:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise RecordError(f"{key!r} is {_short(v)}, not a list")
    return v


def _part(cls, d, where: str):
    """A NetCost/Epoch/Timings from its JSON object; unknown keys of a newer nasty are dropped."""
    if not isinstance(d, dict):
        raise RecordError(f"{where!r} holds {_short(d)}, not an object")
    kw = {}
    for f in dataclasses.fields(cls):
        v = d.get(f.name)
        if v is None:
            if f.default is dataclasses.MISSING:
                raise RecordError(f"{where!r} lacks {f.name!r}")
            continue
        t = str(f.type)
        if t.startswith("tuple"):
            if not isinstance(v, list) or not all(_is(x, int) for x in v):
                raise RecordError(f"{where}.{f.name} is {_short(v)}, not a list of whole numbers")
            v = tuple(v)
        elif t.startswith("int"):
            if not _is(v, int):
                raise RecordError(f"{where}.{f.name} is {_short(v)}, not a whole number")
        elif not _is(v, float):
            raise RecordError(f"{where}.{f.name} is {_short(v)}, not a number")
        else:
            v = float(v)
        kw[f.name] = v
    return cls(**kw)


def _explicit(text: str | None, cost: NetCost | None) -> str | None:
    """A genotype text stored before `if` needed `else`, made explicit by the rule that built it
    (its recorded cost decides where the past rules differ: genotype/legacy.py); left as it is
    where that cannot be known, so that every use of it is refused with the explicit form,
    never built otherwise."""
    if text is None:
        return None
    from ..genotype.legacy import needs_else, upgrade
    if not needs_else(text):
        return text
    return upgrade(text, cost) or text


def _cost(d: dict, key: str) -> NetCost | None:
    v = d.get(key)
    if v is None or v == {}:               # a sample the space could not build has no cost ({} in old files)
        return None
    return _part(NetCost, v, key)
