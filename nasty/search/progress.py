"""The live view of a search: trials done/running/failed, best so far with its cost,
elapsed and remaining time. A rich Live panel on a terminal; one plain line per
finished trial otherwise (logs, CI, tests)."""
from __future__ import annotations

import time

from ..display import human
from .record import Status, TrialRecord


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Fed by the search driver; renders with rich when the console is a terminal."""

    def __init__(self, title: str, total: int, console=None, live: bool | None = None, records=(),
                 verbosity: int = 1):
        """`records`: those of a resumed run (counted from the start); `verbosity`: 0 quiet (no live
        panel, no line per trial), 1 a line per finished trial, 2 also a line per epoch."""
        import sys

        from rich.console import Console
        # on a terminal the panel shares stdout; when stdout is a file or a pipe it goes to stderr
        self.console = console or Console(stderr=not sys.stdout.isatty(), highlight=False)
        self.title, self.total, self.verbosity = title, total, verbosity
        self.start = time.time()
        self.done = self.failed = self.rejected = self.stopped = self.screened = 0
        for r in records:
            self._count(r)
        self.running: dict[int, str] = {}
        self.best: dict | None = None
        self.eta: float | None = None        # wall-clock time the search is expected to end
        self.use_live = (self.console.is_terminal if live is None else live) and verbosity > 0
        self._live = None

    # ---------------------------------------------------------------- events
    def __enter__(self):
        if self.use_live:
            from rich.live import Live
            self._live = Live(self._render(), console=self.console, refresh_per_second=2,
                              transient=False, get_renderable=self._render)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def started(self, n: int, what: str):
        self.running[n] = what

    def epoch(self, n: int, epoch: int, epochs: int, val_acc: float):
        self.running[n] = f"#{n} epoch {epoch}/{epochs} val {val_acc:.3f}"
        if self.verbosity >= 2:
            self.console.print(f"[{clock(time.time() - self.start)}] trial #{n} epoch {epoch}/{epochs}: "
                               f"val {val_acc:.4f}", soft_wrap=True, highlight=False, markup=False)

    def confirmed(self, rec):
        """A confirmation (confirm.py) finished."""
        self.running.pop(rec.trial, None)
        if self.verbosity >= 1:
            what = f"val {rec.val_acc:.4f}" if rec.val_acc is not None else f"{rec.status}: {rec.reason}"
            self.console.print(f"[{clock(time.time() - self.start)}] confirmed #{rec.trial} (seed {rec.seed + 1}): "
                               f"{what} on {rec.fidelity.get('val_images')} images", soft_wrap=True,
                               highlight=False, markup=False)

    def _count(self, record: TrialRecord):
        if record.status is Status.OK:
            self.done += 1
        elif record.status is Status.FAILED:
            self.failed += 1
        elif record.status is Status.REJECTED:
            self.rejected += 1
        elif record.status is Status.SCREENED:
            self.screened += 1
        else:
            self.stopped += 1

    def finished(self, record: TrialRecord, best: TrialRecord | None):
        self.running.pop(record.trial, None)
        self._count(record)
        if record.status in (Status.REJECTED, Status.SCREENED):
            return
        self.best = best
        if self.verbosity >= 1:
            self.console.print(self._line(record), soft_wrap=True, highlight=False, markup=False)

    @property
    def remaining(self):
        return None if self.eta is None else max(0.0, self.eta - time.time())

    @remaining.setter
    def remaining(self, seconds):
        self.eta = None if seconds is None else time.time() + seconds

    def note(self, text: str):
        if self.verbosity >= 1:
            self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    # ---------------------------------------------------------------- rendering
    def _line(self, r: TrialRecord) -> str:
        t = r.target
        cost = f"{human(t.macs)}MACs {human(t.params)} params" if t else ""
        if r.status is Status.FAILED:
            what = f"failed: {r.reason}"
        else:
            what = f"val {r.val_acc:.4f}" + ("" if r.status is Status.OK else f" ({r.status})")
        best = f" | best #{self.best.trial} {self.best.val_acc:.4f}" if self.best else ""
        return (f"[{clock(time.time() - self.start)}] trial #{r.trial} {what}  {cost}  "
                f"({self.done + self.failed + self.stopped}/{self.total}){best}")

    def _render(self):
        from rich.panel import Panel
        from rich.table import Table
        elapsed = time.time() - self.start
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("trials", f"{self.done + self.failed + self.stopped}/{self.total} finished "
                     f"({self.done} trained, {self.failed} failed"
                     + (f", {self.stopped} stopped early" if self.stopped else "")
                     + f") · {len(self.running)} running · {self.rejected} over budget"
                     + (f" · {self.screened} screened out" if self.screened else ""))
        if self.best:
            t = self.best.target
            grid.add_row("best", f"#{self.best.trial}  val acc {self.best.val_acc:.4f}  "
                                 f"target {human(t.macs)}MACs, {human(t.params)} params")
        else:
            grid.add_row("best", "-")
        left = self.remaining
        grid.add_row("time", f"{clock(elapsed)} elapsed · "
                     + (f"~{clock(left)} remaining" if left is not None else "estimating the time left"))
        for what in list(self.running.values())[:8]:
            grid.add_row("", what)
        return Panel(grid, title=self.title, expand=False)
