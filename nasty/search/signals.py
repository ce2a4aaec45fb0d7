"""How a search stops when it is told to (Ctrl-C, or SIGTERM from `kill` or a job scheduler):
within seconds, with nasty's one-line message, its records intact and the run resumable.

    with Stop(describe) as stop:      # search() holds one for the whole search
        ...                           # the executor asks `stopping()`; Tune runs with `in_tune(True)`

Ctrl-C (SIGINT) stops dispatching (the executor's searcher has nothing more to propose) and
tells Ray Tune to stop the trials (the stopper); outside Tune's loop (start-up, a serial executor,
the end of a run) it interrupts what runs at once. The search then ends with `Interrupted` (a
KeyboardInterrupt carrying the signal and the message): the CLI prints `nasty: <message>` and
exits with 128 + the signal (130). Ray's own processes ignore SIGINT, so the Ctrl-C a terminal
sends to the whole process group reaches only the driver.

SIGTERM ends the process at once (143). A job scheduler sends it to the whole process group, and
Ray's processes die of it: a graceful stop would then wait a minute for Ray's GCS and die with
Ray's own fatal message (or Ray's core worker ends the driver with rc 1 as soon as its raylet is
gone). Nothing needs the graceful path: every finished trial is on disk when it finishes, and the
trials running now are in running.json from the moment they were dispatched, so a resume runs
them again under their numbers; the Ray processes this one started die with it (Ray binds them
to their parent). So a thread woken by the signal itself (signal.set_wakeup_fd, not the main
thread, which may be inside Ray's C++ for a while) ends the process between two writes
(folder.WRITING) with the message. After a Ctrl-C the same happens when the Ray this process
started is gone (nothing could stop its trials), and at a second Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable

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


def _descendants(roots: list[int]) -> list[int]:
    """The processes `roots` started, and theirs (Linux: /proc; elsewhere none are found)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
                children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(name))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], list(roots)
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_local_ray():
    """SIGKILL the local Ray this process started (its GCS, raylet, ...) and every process they
    started (workers, agents), which would otherwise outlive a process that ends at once."""
    try:
        import ray._private.worker as worker
        node = worker._global_node
        if node is None or not getattr(node, "head", False):
            return
        roots = [info.process.pid for infos in node.all_processes.values() for info in infos
                 if info.process is not None and info.process.poll() is None]
    except Exception:  # noqa: BLE001 - private Ray internals
        return
    for pid in _descendants(roots) + roots:           # all found first: orphans would be reparented
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


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
        self.pipe: tuple[int, int] | None = None
        self.wakeup = -1

    def __enter__(self):
        global _current
        if threading.current_thread() is threading.main_thread():
            r, w = os.pipe()
            os.set_blocking(w, False)
            try:
                self.wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
                self.pipe = (r, w)
            except (ValueError, OSError):           # Windows takes a socket: the handlers alone then
                os.close(r)
                os.close(w)
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
            if self.pipe is not None:
                threading.Thread(target=self._listen, args=(r,), name="nasty-signals", daemon=True).start()
            _current = self
        return self

    def __exit__(self, *exc):
        global _current
        self.over.set()
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if self.pipe is not None:
            signal.set_wakeup_fd(self.wakeup)
            os.close(self.pipe[1])                # the listener reads the end of the pipe and stops
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

    def _listen(self, fd: int):
        """The signals as they arrive (the wakeup fd gets each one's number), in this thread."""
        try:
            while True:
                data = os.read(fd, 64)
                if not data:
                    return
                if signal.SIGTERM in data and not self.over.is_set():
                    self.signum = signal.SIGTERM
                    self._end()
        finally:
            os.close(fd)

    def _handle(self, signum, frame):
        if signum == signal.SIGTERM or self.signum is not None:     # SIGTERM, or a second Ctrl-C: end now
            self.signum = self.signum or signum
            self._end()
        self.signum = signum
        threading.Thread(target=self._watch, name="nasty-stop", daemon=True).start()
        if not self.tune:
            raise KeyboardInterrupt               # start-up, a serial executor, the end: cut it now

    def _watch(self):
        while not self.over.wait(0.2):
            if not self.shutdown and _ray_gone():
                self._end()                       # nothing can stop its trials: Ray would wait a minute, then die

    def _end(self):
        """End the process now, between two writes, with nasty's message."""
        from .folder import WRITING
        if not self.told.acquire(blocking=False):
            if threading.current_thread() is threading.main_thread():
                time.sleep(60)                    # another thread is ending the process
            return
        WRITING.acquire(timeout=5.0)
        signum = self.signum or signal.SIGINT
        _kill_local_ray()
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            sys.stderr.write(f"nasty: {self._message(signum)}\n")
            sys.stderr.flush()
        finally:
            os._exit(128 + signum)
