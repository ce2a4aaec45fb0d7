"""The live view of a search: trials done/running/failed, best so far with its cost,
elapsed and remaining time. A rich Live panel on a terminal; one plain line per
finished trial otherwise (logs, CI, tests)."""
from __future__ import annotations

import time

from ..display import human
from .record import Status, TrialRecord


REJECTS_SHOWN = 50          # over-budget samples in a row from which the live view says so


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
        self.rejected_in_a_row = 0           # over-budget samples since the last one within budget
        self.said_started = False
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
        self.rejected_in_a_row = 0
        if n >= 0 and not self._live and (self.verbosity >= 2 or self.verbosity >= 1 and not self.said_started):
            # piped output: the first trial's start is news before any trial ends (-v: every one)
            self.said_started = True
            self.console.print(f"[{clock(time.time() - self.start)}] trial #{n} started", soft_wrap=True,
                               highlight=False, markup=False)

    def epoch(self, n: int, epoch: int, epochs: int, val_acc: float):
        self.running[n] = f"#{n} epoch {epoch}/{epochs} val {val_acc:.3f}"
        if self.verbosity >= 2:
            self.console.print(f"[{clock(time.time() - self.start)}] trial #{n} epoch {epoch}/{epochs}: "
                               f"val {val_acc:.4f}", soft_wrap=True, highlight=False, markup=False)

    def confirmed(self, rec):
        """A confirmation (confirm.py) finished."""
        self.running.pop(rec.trial, None)
        if self.verbosity >= 1:
            # only a finished confirmation is "confirmed": one cut by the time budget or failed says so
            if rec.status is Status.OK:
                text = f"confirmed #{rec.trial} (seed {rec.seed + 1}): val {rec.val_acc:.4f} on " \
                       f"{rec.fidelity.get('val_images')} images"
            else:
                text = f"confirmation of #{rec.trial} (seed {rec.seed + 1}) {rec.status}: {rec.reason}" + (
                    f" (val {rec.val_acc:.4f} so far, not counted)" if rec.val_acc is not None else "")
            self.console.print(f"[{clock(time.time() - self.start)}] {text}", soft_wrap=True, highlight=False,
                               markup=False)

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
        if record.status is Status.REJECTED:
            self.rejected_in_a_row += 1
            n = self.rejected_in_a_row
            doubling = n % REJECTS_SHOWN == 0 and (n // REJECTS_SHOWN).bit_count() == 1     # 50, 100, 200, 400...
            if not self._live and self.verbosity >= 1 and doubling:
                self.console.print(f"[{clock(time.time() - self.start)}] {self.rejects_line()}", soft_wrap=True,
                                   highlight=False, markup=False)
            return
        if record.status is Status.SCREENED:     # scored by the screen, never trained: counted, no line
            return
        self.rejected_in_a_row = 0
        self.best = best
        if self.verbosity >= 1:
            self.console.print(self._line(record), soft_wrap=True, highlight=False, markup=False)

    def rejects_line(self) -> str:
        return (f"{self.rejected_in_a_row} samples over budget in a row: raise the budget or use --fit "
                "(over-budget samples are costed and never trained)")

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
        elif r.val_acc is None:
            what = f"{r.status}: {r.reason}"
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
        if self.rejected_in_a_row >= REJECTS_SHOWN:
            grid.add_row("budget", self.rejects_line())
        left = self.remaining
        grid.add_row("time", f"{clock(elapsed)} elapsed · "
                     + (f"~{clock(left)} remaining" if left is not None else "estimating the time left"))
        for what in list(self.running.values())[:8]:
            grid.add_row("", what)
        return Panel(grid, title=self.title, expand=False)
