"""The Ray Tune side of a search: starting (or joining) Ray, and `TuneExecutor`, which runs
the trials a SearchLoop (or the confirmation stage) proposes as Ray Tune trials on this machine or a cluster.

Tune sees the loop only through two small adapters: `LoopSearcher` (Tune's Searcher
protocol: suggest, on_trial_result, on_trial_complete) and `LoopCallback` (a Tune Callback:
errors, retries, and the weights a trial sends back). The trainable is
`standalone.evaluate` wrapped for Tune. Nothing else in nasty imports Ray at module level.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import RunError
from .loop import Executor, TrialSource
from .settings import Settings
from .signals import in_tune, stopping
from .standalone import take_weights

# A trial whose worker process or node dies is run again from scratch this many times before it
# is recorded as failed. Errors inside the trial (a raise, NaN, CUDA OOM) are caught in the
# trial and recorded at once: running them again would fail the same way.
TRIAL_RETRIES = 2


def quiet_ray():
    """Ray and Tune without their console chatter, per-trial loggers or strict metric checks."""
    import logging
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")   # no CSV/TensorBoard per trial
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")  # failed trials report no val_acc
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")         # signals.Stop stops Tune (its stopper)
    for name in ("ray", "ray.tune", "ray.train", "ray.air", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def local_only():
    """Make a Ray started by this process listen on loopback only (GCS, raylet, workers, agents).
    Ray binds its servers to its node IP; with this setting, read when Ray is imported, the node
    IP of a local instance is 127.0.0.1. Must run before `import ray` anywhere in the process."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"   # + empty SETTINGS


def check_reachable(address: str, seconds: float = 5.0):
    """A one-line error, within about `seconds`, unless a Ray cluster answers at --address HOST:PORT.
    Ray itself would retry for minutes, in C++ code that no signal interrupts, when nothing listens
    there or something else does. Ray's GCS (and the Ray client server of ray://) speak gRPC: sent
    HTTP/2's connection preface, a gRPC server answers with a SETTINGS frame. A port that accepts
    and says nothing, or answers anything else (an HTTP/1 server such as Ray's dashboard), is not
    a Ray cluster. With RAY_USE_TLS set, the cluster speaks TLS: only the connection is checked."""
    import socket
    where = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = where.rpartition(":")
    if address.startswith("auto") or not sep:
        return
    hint = ("start it with `ray start --head` there, and give the address it prints (HOST:6379 by default), "
            "or check it with `ray status` on the head node")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=seconds)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot reach a Ray cluster at {address}: {getattr(e, 'strerror', None) or e}; "
                       f"{hint}") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        sock.close()
        return
    with sock:
        try:
            sock.settimeout(seconds)
            sock.sendall(HTTP2_PREFACE)
            answer = b""
            while len(answer) < 9:
                chunk = sock.recv(9 - len(answer))
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            raise RunError(f"{address} accepts connections but is not a Ray cluster: it said nothing in "
                           f"{seconds:g} s to a gRPC greeting (Ray's GCS answers at once); {hint}") from None
        except OSError as e:
            raise RunError(f"cannot reach a Ray cluster at {address}: {e.strerror or e}; {hint}") from None
    if len(answer) == 9 and answer[3] == 0x04:           # an HTTP/2 SETTINGS frame: a gRPC server
        return
    what = ("it answered as an HTTP/1 server (Ray's dashboard, at port 8265, is one; the cluster's address is "
            "its GCS's)" if answer.startswith((b"HTTP/", b"<")) else
            "it closed the connection" if not answer else f"it answered {answer[:9]!r}")
    raise RunError(f"{address} is not a Ray cluster: to a gRPC greeting {what}; {hint}")


def start_ray(s: Settings, payload_bytes: int):
    """Join --address, or start a local Ray (loopback only, dashboard off). Returns (started_here, resources)."""
    quiet_ray()
    if s.address:
        check_reachable(s.address)
    else:
        local_only()
    import ray
    if ray.is_initialized():
        return False, ray.cluster_resources()
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    import signal
    on_term = signal.getsignal(signal.SIGTERM)      # ray.init installs a C handler that dumps a stack
    try:
        if s.address:
            ray.init(address=s.address, **kw)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1,   # local even if RAY_ADDRESS is set
                     object_store_memory=int(max(256 * 2**20, 3 * payload_bytes)), **kw)
    except Exception as e:  # noqa: BLE001 - connection problems are the user's to fix
        where = f"join the Ray cluster at {s.address}" if s.address else "start a local Ray instance"
        hint = ("; check the address with `ray status` on the head node (a cluster started with token "
                "authentication also needs RAY_AUTH_MODE=token here)") if s.address else ""
        raise RunError(f"cannot {where}: {type(e).__name__}: {' '.join(str(e).split())[:200]}{hint}") from None
    if callable(on_term):
        signal.signal(signal.SIGTERM, on_term)         # ours again: SIGTERM ends the search as Ctrl-C does
    return True, ray.cluster_resources()


def stop_ray():
    import ray
    ray.shutdown()


def trainable(config, data=None):
    """`standalone.evaluate` as a Ray Tune function trainable (results go to tune.report)."""
    from ray import tune

    from .standalone import evaluate
    evaluate(config, data, tune.report)


TUNE_DIR = "tune"        # Ray Tune's results of a run: runs/<name>/tune/ (ExperimentAnalysis, TensorBoard)


def tune_loggers() -> list:
    """Tune's JSON and CSV result loggers, and TensorBoard's when tensorboardX is installed."""
    import importlib.util

    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    out = [JsonLoggerCallback(), CSVLoggerCallback()]
    if importlib.util.find_spec("tensorboardX") is not None:
        from ray.tune.logger import TBXLoggerCallback
        out.append(TBXLoggerCallback())
    return out


class TuneExecutor(Executor):
    """Runs the loop's trials as Ray Tune trials, `slots` at a time; Tune's own results (per-trial
    curves, as Tune's tools read them) stay in the run folder's tune/."""

    def __init__(self, s: Settings, payload: dict, slots: int, run_dir: Path, name: str = TUNE_DIR,
                 function=None):
        """`function(config, data)`: what a trial runs (default `trainable`, the standalone evaluation;
        oneshot.trainable for a one-shot search)."""
        self.s, self.payload, self.slots, self.run_dir, self.name = s, payload, slots, Path(run_dir), name
        self.function = function or trainable

    def run(self, loop: TrialSource) -> bool:
        from ray import tune
        s = self.s
        scheduler = make_scheduler(s)
        resources = {"cpu": s.cpus_per_trial}
        if s.gpus_per_trial:
            resources["gpu"] = s.gpus_per_trial
        fn = tune.with_resources(tune.with_parameters(self.function, data=self.payload), resources)
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(search_alg=_searcher_class()(loop), scheduler=scheduler, metric="val_acc",
                                        mode="max", num_samples=-1, reuse_actors=True,
                                        max_concurrent_trials=self.slots,
                                        time_budget_s=(s.time_budget + 60.0) if s.time_budget else None,
                                        trial_dirname_creator=_trial_dirname),
            # our callback comes first: it takes the weights out of each result before the loggers see it
            run_config=tune.RunConfig(name=self.name, storage_path=str(self.run_dir.resolve()), verbose=0,
                                      callbacks=[_callback_class()(loop), *tune_loggers()],
                                      stop=_stopper_class()(loop),
                                      failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES)),
        )
        # Ctrl-C, SIGTERM: signals.Stop stops dispatching and the stopper stops the trials
        in_tune(True)
        try:
            tuner.fit()
        finally:
            in_tune(False)
        stopped_early = bool(loop.running) or not (loop.exhausted or loop.stop_reason or loop.fatal)
        # trials cut before they finished (Ctrl-C, the hard time limit) are not recorded: a resume runs them again
        for key in list(loop.running):
            loop.abandon(key)
        return stopping() or (stopped_early and not loop.fatal
                              and (loop.deadline is None or time.time() < loop.deadline + 30))


def make_scheduler(s: Settings):
    """FIFO, ASHA (successive halving, stopping at epoch milestones), or asynchronous Hyperband
    (ASHA with several brackets, Li et al. 2020): Ray Tune's schedulers, on per-epoch accuracy.
    Tune's synchronous HyperBandScheduler pauses trials and needs checkpoints to continue them;
    the asynchronous form only stops trials, which is what our trials support."""
    import math

    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    if s.scheduler == "fifo" or s.epochs < 2:
        return FIFOScheduler()
    if s.scheduler == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=s.epochs, grace_period=1, reduction_factor=2)
    eta = 3
    brackets = max(1, int(math.log(s.epochs, eta) + 1e-9) + 1)
    return ASHAScheduler(time_attr="training_iteration", max_t=s.epochs, grace_period=1, reduction_factor=eta,
                         brackets=brackets)


def _trial_dirname(trial) -> str:
    """tune/trial_0007_<ray id>: named by the trial number of trials.jsonl (unique across resumes)."""
    return f"trial_{int(trial.config.get('trial', 0)):04d}_{trial.trial_id}"


def _guarded(loop: TrialSource, call, *args):
    """Call into the loop from a Tune hook; a fatal error (a record that cannot be written) is kept
    on the loop, where the stopper and the runner see it, instead of being lost inside Tune."""
    if loop.fatal:
        return None
    try:
        return call(*args)
    except RunError as e:
        loop.fatal = loop.fatal or e
        return None


def _searcher_class():
    from ray.tune.search import Searcher

    class LoopSearcher(Searcher):
        """Ray Tune's Searcher protocol around a TrialSource (the search loop or the confirmation stage)."""

        def __init__(self, loop: TrialSource):
            super().__init__()
            self.loop = loop

        def suggest(self, trial_id):
            if stopping():
                return Searcher.FINISHED
            p = _guarded(self.loop, self.loop.propose)
            if p is None:
                return Searcher.FINISHED
            return self.loop.dispatch(trial_id, p)

        def on_trial_result(self, trial_id, result):
            self.loop.epoch(trial_id, result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            if not error:               # errors are completed by the callback, which knows why
                _guarded(self.loop, self.loop.complete, trial_id, result)

        def save(self, checkpoint_path):   # the run folder holds the state; nothing for Tune to keep
            pass

        def restore(self, checkpoint_path):
            pass

        def __getstate__(self):            # Tune snapshots its config; the loop stays in this process
            return {k: v for k, v in self.__dict__.items() if k != "loop"}

    return LoopSearcher


def _callback_class():
    from ray.tune import Callback

    class LoopCallback(Callback):
        def __init__(self, loop: TrialSource):
            self.loop = loop

        def __getstate__(self):
            return {k: v for k, v in self.__dict__.items() if k != "loop"}

        def on_trial_error(self, iteration, trials, trial, **info):
            _guarded(self.loop, self.loop.complete, trial.trial_id, trial.last_result, error_reason(trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            # Tune lets callbacks edit the result in place: the weights are not kept in Tune's state
            blob = take_weights(result)
            if blob:
                self.loop.save_weights(trial.trial_id, blob)

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.loop.retry(trial.trial_id, error_reason(trial))

    return LoopCallback


def _stopper_class():
    from ray.tune import Stopper

    class LoopStopper(Stopper):
        """Stops every trial once the loop has a fatal error (a record it could not write), or a
        signal told the search to stop (signals.Stop)."""

        def __init__(self, loop: TrialSource):
            self.loop = loop

        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return self.loop.fatal is not None or stopping()

        def __getstate__(self):
            return {}

    return LoopStopper


def error_reason(trial) -> str:
    """The last line of a Tune trial's error file that says what went wrong."""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        text = ""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in reversed(lines):
        if ":" in l and not l.startswith(("File ", "Failure #")):
            return " ".join(l.split())[:300]
    return "the trial's worker process died (out of memory, or killed)"
