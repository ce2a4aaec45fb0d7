"""How a search stops when it is told to (Ctrl-C, or SIGTERM from `kill` or a job scheduler):
within seconds, with nasty's one-line message, its records intact and the run resumable.

    with Stop(describe) as stop:      # search() holds one for the whole search
        ...                           # the executor asks `stopping()`; Tune runs with `in_tune(True)`

The first SIGINT or SIGTERM stops dispatching (the executor's searcher has nothing more to
propose) and tells Ray Tune to stop the trials (the stopper); trials cut short are not recorded
but stay in running.json, so a resume runs them again under their numbers. Outside Tune's loop
(start-up, a serial executor, the end of a run) the signal interrupts what runs at once, as
Ctrl-C does. The search then ends with `Interrupted` (a KeyboardInterrupt carrying the signal and
the message): the CLI prints `nasty: <message>` and exits with 128 + the signal (130, 143).

When Ray cannot answer, nothing would end: a scheduler signals the whole process group, Ray's own
processes die with it, and Ray then waits a minute for its GCS before dying with its own fatal
message. A watchdog thread therefore ends the process itself as soon as the Ray this process
started is gone, GRACE_S seconds after a SIGTERM (a Ctrl-C in a notebook must not end the
kernel), or at a second signal: after any record being written is complete (folder.WRITING),
with the same message and exit status. What it cuts is what a resume re-runs.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable

GRACE_S = 15.0                 # seconds a search may take to stop before the watchdog ends it
_current: "Stop | None" = None


class Interrupted(KeyboardInterrupt):
    """A search stopped by a signal: `str()` is nasty's message, `signum` the signal."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


def stopping() -> bool:
    """Has the running search been told to stop (a signal arrived)?"""
    return _current is not None and _current.signum is not None


def in_tune(flag: bool):
    """Ray Tune's loop runs (True) or not (False): a signal inside it stops the trials through the
    executor's stopper instead of interrupting the loop."""
    if _current is not None:
        _current.tune = flag


def shutting_down():
    """The search is stopping Ray itself: its processes ending now is no reason to cut it short."""
    if _current is not None:
        _current.shutdown = True


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _ray_gone() -> bool:
    """Has a process of the local Ray this process started ended (the GCS, the raylet)?"""
    try:
        import ray._private.worker as worker
        node = worker._global_node
        if node is None or not getattr(node, "head", False):
            return False
        for infos in node.all_processes.values():
            for info in infos:
                if info.process is not None and info.process.poll() is not None:
                    return True
    except Exception:  # noqa: BLE001 - private Ray internals: when unsure, wait for GRACE_S
        return False
    return False


class Stop:
    """SIGINT and SIGTERM handlers for the length of a search (in the main thread only; elsewhere
    nothing is installed). `describe(signum)` says what was kept and how to continue."""

    def __init__(self, describe: Callable[[int], str]):
        self.describe = describe
        self.signum: int | None = None
        self.tune = False
        self.shutdown = False
        self.previous: dict = {}
        self.over = threading.Event()
        self.told = threading.Lock()

    def __enter__(self):
        global _current
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
            _current = self
        return self

    def __exit__(self, *exc):
        global _current
        self.over.set()
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if _current is self:
            _current = None
        return False

    def interrupted(self) -> Interrupted:
        """The exception a stopped search ends with."""
        signum = self.signum or signal.SIGINT
        return Interrupted(self._message(signum), signum)

    def _message(self, signum: int) -> str:
        try:
            return self.describe(signum)
        except Exception:  # noqa: BLE001 - the message must never be what fails
            return f"{'interrupted' if signum == signal.SIGINT else 'stopped by ' + signal_name(signum)}"

    def _handle(self, signum, frame):
        if self.signum is not None:               # a second signal: end now
            self._end()
        self.signum = signum
        threading.Thread(target=self._watch, name="nasty-stop", daemon=True).start()
        if not self.tune:
            raise KeyboardInterrupt               # start-up, a serial executor, the end: cut it now

    def _watch(self):
        start = time.monotonic()
        while not self.over.wait(0.2):
            if not self.shutdown and _ray_gone():
                self._end()                       # nothing can stop its trials: Ray would wait a minute, then die
            if self.signum != signal.SIGINT and time.monotonic() - start > GRACE_S:
                self._end()                       # SIGTERM: the process must end (a Ctrl-C may take its time)

    def _end(self):
        """End the process now, between two writes, with nasty's message."""
        from .folder import WRITING
        if not self.told.acquire(blocking=False):
            return
        WRITING.acquire(timeout=5.0)
        signum = self.signum or signal.SIGINT
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            sys.stderr.write(f"nasty: {self._message(signum)}\n")
            sys.stderr.flush()
        finally:
            os._exit(128 + signum)
