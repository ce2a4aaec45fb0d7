"""The per-op latency lookup table: what each distinct layer configuration costs in time here.

A network's latency is predicted as the sum of its elaborated layers' times (predict.py), so
the table holds one timing per *configuration*: the op, its timing-relevant attributes
(kernel, stride, groups, channels in/out, padding...), its input shapes and the batch. The
same configuration recurs across a space's members, so a space of millions of networks
has a few thousand configurations (`nasty latency calibrate` times them).

Timings only hold on the machine and software that produced them, so a table is keyed by a
*fingerprint*: the device (CPU model and instruction set, or the GPU's name), the thread
count, and the library versions (torch, Python). A table with another fingerprint is
refused (`LatencyError`), never silently used: `nasty latency calibrate --recalibrate
--table FILE` re-times its configurations here instead.

Where tables live: the user's cache folder, one file per fingerprint,
`$NASTY_CACHE_DIR` or `$XDG_CACHE_HOME/nasty` or `~/.cache/nasty`, then `latency/`; a search
with a latency budget copies the table it used into its run folder, for the record.
The file is JSON (never pickle): {"format", "fingerprint", "overhead_ms", "entries",
"networks", "spaces"}.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

from .measure import LatencyError

FORMAT = 1
# attributes that do not change how long an op takes in eval mode (BN's eps and momentum; the
# drop probability of dropout and stochastic depth, which are the identity at inference)
IGNORED = {"eps", "momentum"}
IDENTITY_AT_EVAL = {"dropout", "droppath"}


# ------------------------------------------------------------------ the machine
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def fingerprint(device: str = "cpu", threads: int | None = 1, clock: str = "wall") -> dict:
    """What a table's timings depend on: the device, its thread count, the library versions, and
    the clock they were read from (measure.py: wall or cpu)."""
    import sys

    import torch
    fp = {"device": "cpu", "machine": platform.machine(), "torch": torch.__version__,
          "python": f"{sys.version_info.major}.{sys.version_info.minor}", "clock": clock}
    if str(device).startswith("cuda"):
        fp.update(device="cuda", gpu=torch.cuda.get_device_name(torch.device(device)), cuda=torch.version.cuda,
                  cudnn=torch.backends.cudnn.version())
    else:
        fp.update(cpu=_cpu_model(), isa=torch.backends.cpu.get_cpu_capability(), cores=os.cpu_count(),
                  threads=threads)
    return fp


def fingerprint_id(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def describe_fingerprint(fp: dict) -> str:
    if fp.get("device") == "cuda":
        where = f"{fp.get('gpu')} (CUDA {fp.get('cuda')})"
    else:
        t = fp.get("threads")
        where = f"{fp.get('cpu')} {fp.get('isa')}, {fp.get('cores')} cores, {t} thread{'s' if t != 1 else ''}"
    clock = "" if fp.get("clock", "wall") == "wall" else f", {fp['clock']} clock"
    return f"{where}, torch {fp.get('torch')}, Python {fp.get('python')}{clock}"


def cache_dir() -> Path:
    base = os.environ.get("NASTY_CACHE_DIR")
    if base:
        return Path(base) / "latency"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "nasty" / "latency"


# ------------------------------------------------------------------ configurations
def _plain(v):
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return str(v)


def config_of(step, batch: int = 1) -> str:
    """The lookup key of one elaborated step: op, timing-relevant attributes, input shapes, batch."""
    attrs = {} if step.kind in IDENTITY_AT_EVAL else {
        k: _plain(v) for k, v in sorted(step.attrs.items()) if k not in IGNORED}
    return json.dumps([step.kind, batch, [list(s) for s in step.in_shapes], attrs], separators=(",", ":"))


def step_record(step) -> dict:
    """A step as JSON: enough to build its module again (calibrate.step_module) anywhere."""
    return {"kind": step.kind, "inputs": list(step.inputs), "attrs": {k: _plain(v) for k, v in step.attrs.items()},
            "in_shapes": [list(s) for s in step.in_shapes], "out": list(step.out)}


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def step_from_record(d):
    """The Step of `step_record`, or None for a record that is not one."""
    from ..genotype.elaborate import Step
    from ..genotype.ops import SPECS
    try:
        if d["kind"] not in SPECS:
            return None
        return Step("op", d["kind"], tuple(d["inputs"]), {k: _tuples(v) for k, v in d["attrs"].items()},
                    tuple(tuple(s) for s in d["in_shapes"]), tuple(d["out"]))
    except (KeyError, TypeError, AttributeError):
        return None


def describe_config(key: str) -> str:
    """'conv 32x112x112 -> k3x3 s1 g32 c32' style one-liner of a key (for progress and errors)."""
    kind, batch, shapes, attrs = json.loads(key)
    shape = ",".join("x".join(map(str, s)) for s in shapes)
    bits = []
    if kind == "conv":
        bits = [f"k{attrs.get('kh')}x{attrs.get('kw')}", f"s{attrs.get('s')}", f"c{attrs.get('c')}"]
        if attrs.get("g", 1) != 1:
            bits.append(f"g{attrs['g']}")
    return f"{kind} {shape}" + (f" {' '.join(bits)}" if bits else "") + (f" batch {batch}" if batch != 1 else "")


# ------------------------------------------------------------------ the table
class LookupTable:
    """Per-configuration timings of one machine (its `fingerprint`), plus the networks measured
    whole (for the predictor's correction) and what has been calibrated (per space)."""

    def __init__(self, fp: dict, path: Path | None = None):
        self.fingerprint = dict(fp)
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = {}       # config key -> {"ms", "iqr_ms", "runs"}
        self.networks: list[dict] = []          # {"name", "space", "layers", "sum_ms", "measured_ms", ...}
        self.spaces: dict[str, dict] = {}        # space name -> what its calibration covered
        self.overhead_ms: float | None = None    # the timing harness's own cost per call (subtracted)
        self.dirty = False

    # ---------------------------------------------------------------- files
    @classmethod
    def default_path(cls, fp: dict) -> Path:
        return cache_dir() / f"{fp['device']}-{fingerprint_id(fp)}.json"

    @classmethod
    def for_machine(cls, device: str = "cpu", threads: int | None = 1, clock: str = "wall") -> "LookupTable":
        """This machine's table from the cache folder (empty if there is none yet)."""
        fp = fingerprint(device, threads, clock)
        path = cls.default_path(fp)
        return cls.load(path, expect=fp) if path.exists() else cls(fp, path)

    @classmethod
    def load(cls, path, expect: dict | None = None, refuse_foreign: bool = True) -> "LookupTable":
        """Read a table file. `expect`: this machine's fingerprint; a table made elsewhere (or with
        other library versions) is refused with a LatencyError saying what differs."""
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LatencyError(f"no latency table {p}") from None
        except (OSError, ValueError, RecursionError) as e:
            raise LatencyError(f"cannot read latency table {p}: {type(e).__name__}: {' '.join(str(e).split())[:160]}; "
                               "delete it and calibrate again (`nasty latency calibrate`)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("fingerprint"), dict) \
                or not isinstance(doc.get("entries"), dict):
            raise LatencyError(f"{p} is not a nasty latency table (format {FORMAT}); delete it and calibrate again "
                               "(`nasty latency calibrate`)")
        t = cls(doc["fingerprint"], p)
        if expect is not None and refuse_foreign:
            t.check_fingerprint(expect)
        for k, v in doc["entries"].items():
            if isinstance(v, dict) and isinstance(v.get("ms"), (int, float)) and v["ms"] >= 0:
                t.entries[k] = v
        t.networks = [n for n in doc.get("networks") or [] if isinstance(n, dict)
                      and all(isinstance(n.get(k), (int, float)) for k in ("layers", "sum_ms", "measured_ms"))]
        t.spaces = {k: v for k, v in (doc.get("spaces") or {}).items() if isinstance(v, dict)}
        oh = doc.get("overhead_ms")
        t.overhead_ms = float(oh) if isinstance(oh, (int, float)) else None
        return t

    def check_fingerprint(self, expect: dict):
        """Refuse this table when it was not made on a machine and software like `expect`."""
        if self.fingerprint == expect:
            return
        diff = [k for k in sorted(set(self.fingerprint) | set(expect)) if self.fingerprint.get(k) != expect.get(k)]
        what = "; ".join(f"{k} {self.fingerprint.get(k)!r} there, {expect.get(k)!r} here" for k in diff[:3])
        raise LatencyError(f"latency table {self.path} was calibrated on another machine or software ({what}): "
                           "its timings do not hold here. Calibrate this machine (`nasty latency calibrate --space "
                           f"SPACE`), or re-time that table's configurations here with `nasty latency calibrate "
                           f"--recalibrate --table {self.path}`")

    def save(self, path: Path | None = None):
        from ..search.folder import atomic_write
        p = Path(path or self.path)
        doc = {"format": FORMAT, "fingerprint": self.fingerprint, "describe": describe_fingerprint(self.fingerprint),
               "saved": time.strftime("%Y-%m-%d %H:%M:%S"), "overhead_ms": self.overhead_ms,
               "spaces": self.spaces, "networks": self.networks, "entries": self.entries}
        atomic_write(p, json.dumps(doc, indent=0, sort_keys=False) + "\n")
        if path is None or Path(path) == self.path:
            self.dirty = False

    # ---------------------------------------------------------------- contents
    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def ms(self, key: str) -> float | None:
        e = self.entries.get(key)
        return None if e is None else float(e["ms"])

    def put(self, key: str, ms: float, iqr_ms: float, runs: int, step=None):
        """File one configuration's time; `step` (its elaborated step) is kept with it, so that the
        configuration can be re-timed on another machine (`--recalibrate`)."""
        e = {"ms": round(ms, 6), "iqr_ms": round(iqr_ms, 6), "runs": runs}
        if step is not None:
            e["step"] = step_record(step)
        elif key in self.entries and "step" in self.entries[key]:
            e["step"] = self.entries[key]["step"]
        self.entries[key] = e
        self.dirty = True

    def steps(self) -> dict:
        """{key: Step} of the entries that carry their step (all those nasty wrote)."""
        out = {}
        for k, e in self.entries.items():
            st = step_from_record(e.get("step"))
            if st is not None:
                out[k] = st
        return out

    def add_network(self, record: dict):
        """A network measured whole, with the raw sum of its layers' table times (the correction's data)."""
        key = (record.get("name"), record.get("space"), record.get("batch", 1))
        self.networks = [n for n in self.networks if (n.get("name"), n.get("space"), n.get("batch", 1)) != key]
        self.networks.append(record)
        self.dirty = True

    @property
    def clock(self) -> str:
        return self.fingerprint.get("clock", "wall")

    def describe(self) -> str:
        return (f"{len(self.entries):,} configurations, {len(self.networks)} networks measured whole, on "
                f"{describe_fingerprint(self.fingerprint)}")
