"""The controller's side of a search, inside the driver process: the `Driver` proposes
(with the budget check: over-budget samples are recorded and never reach Ray), records
each finished trial in the run folder, and tells the controller. Ray Tune sees it only
through two small adapters: `ControllerSearcher` (Tune's Searcher protocol) and
`ErrorRecorder` (a Tune Callback: failures, retries and the weights a trial sends back).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .budget import Costed
from .results import best_of, finished, ranked, write_results
from .runfolder import atomic_write

if TYPE_CHECKING:
    from .run import Settings
    from .runfolder import RunFolder

MAX_CONSECUTIVE_REJECTS = 2000     # a search stops proposing after this many over-budget samples in a row
KEEP_WEIGHTS = 3                   # proxy weights kept for the best trials (the winner's test accuracy)


@dataclass
class _Pending:
    trial: int
    ctrl_trial: object
    record: dict
    dispatched: float
    epochs: list = field(default_factory=list)


class Driver:
    """The controller's side of a search: propose (with the budget check), record, tell."""

    def __init__(self, s: Settings, folder: RunFolder, space, controller, budget, data_shape, classes,
                 progress=None, records=None, samples=0, told=0, deadline=None, slots=1, images=(0, 0)):
        self.s, self.folder, self.space, self.controller, self.budget = s, folder, space, controller, budget
        self.data_shape, self.classes = tuple(data_shape), classes
        self.progress = progress
        self.records = list(records or [])
        self.samples, self.told = samples, told
        self.deadline, self.slots = deadline, slots
        self.pending: dict[str, _Pending] = {}
        self.next_trial = max((r["trial"] for r in self.records if r.get("trial") is not None), default=-1) + 1
        self.rejected_in_a_row = 0
        self.exhausted = False                       # every trial asked for has been proposed
        self.stop_reason: str | None = None
        self.last_plot = time.time()                 # plots (~0.5 s) at most every 20 s, none at once
        self.start = time.time()
        self.sec_per_unit: list[float] = []          # train seconds per (proxy MAC x image)
        self.images_per_trial = s.epochs * sum(images)             # trained and validated, all epochs

    # counts
    def done(self) -> int:
        return len(finished(self.records))

    def remaining_estimate(self):
        left = self.s.trials - self.done()
        durs = [r["timings"]["total_s"] for r in self.records if r.get("timings", {}).get("total_s")]
        est = None
        if durs:
            est = statistics.median(durs) * max(0, left) / max(1, self.slots)
        if self.deadline is not None:
            cap = max(0.0, self.deadline - time.time())
            est = cap if est is None else min(est, cap + (statistics.median(durs) if durs else 0))
        return est

    def _estimate(self, proxy_macs: int) -> float | None:
        if not self.sec_per_unit:
            return None
        return statistics.median(self.sec_per_unit) * proxy_macs * self.images_per_trial + 2.0

    # proposing
    def propose(self):
        """(trial number, controller trial, record) of the next trial to run, or None when the
        search should stop proposing. Over-budget samples, and samples the space cannot build,
        are recorded and told to the controller here; they never reach Ray."""
        from .controllers import Result
        from .cost import cost
        from .genotype import format as fmt
        while True:
            if self.stop_reason:
                return None
            if self.done() + len(self.pending) >= self.s.trials:
                self.exhausted = True
                return None
            if getattr(self.controller, "finished", False):
                self.stop_reason = "the controller has proposed everything it plans to"
                return None
            if self.rejected_in_a_row >= MAX_CONSECUTIVE_REJECTS:
                self.stop_reason = (f"{MAX_CONSECUTIVE_REJECTS} samples in a row were over budget; "
                                    "raise the budget or use --fit")
                return None
            t = self.controller.ask()
            self.samples += 1
            try:
                values, g = self.space.sample(t)
                c = cost(g)
            except Exception as e:  # noqa: BLE001 - a space that cannot build this sample
                self._failed_sample(t, getattr(t, "values", {}), e)
                continue
            values = dict(values)
            fitted_from = None
            reason = self.budget.check(c)
            if reason and self.s.fit:
                from .budget import fit_width
                fitted = fit_width(self.space, values, self.budget, Costed(values, g, c.macs, c.params))
                if fitted is not None:
                    fitted_from = values.get(self.space.width_decision)
                    values, g = fitted.values, fitted.genotype
                    c = cost(g)
                    reason = None
            if reason:
                self.rejected_in_a_row += 1
                rec = {"trial": None, "sample": self.samples - 1, "status": "rejected", "reason": reason,
                       "decisions": values, "target": {"macs": c.macs, "params": c.params}}
                self._finish_record(rec, t, Result(None, "over_budget", {"macs": c.macs, "params": c.params}))
                continue
            self.rejected_in_a_row = 0
            try:
                pg = self.space.genotype(values, proxy=True, input=self.data_shape, classes=self.classes)
                pc = cost(pg)
            except Exception as e:  # noqa: BLE001
                self._failed_sample(t, values, e)
                continue
            est = self._estimate(pc.macs)
            if self.deadline is not None and est is not None and time.time() + est > self.deadline:
                self.stop_reason = "the time budget is spent"
                return None
            n = self.next_trial
            self.next_trial += 1
            rec = {"trial": n, "sample": self.samples - 1, "status": "running", "decisions": values,
                   "genotype": fmt(g), "proxy_genotype": fmt(pg),
                   "target": {"macs": c.macs, "params": c.params, "input": list(g.input), "classes": g.classes},
                   "proxy": {"macs": pc.macs, "params": pc.params, "input": list(self.data_shape),
                             "classes": self.classes}}
            if fitted_from is not None:
                rec["fitted"] = {self.space.width_decision: [fitted_from, values[self.space.width_decision]]}
            return n, t, rec

    def _failed_sample(self, t, values, e):
        """A sample the space could not build (or cost): a failed trial that never trained."""
        from .controllers import Result
        n = self.next_trial
        self.next_trial += 1
        reason = f"the space could not build this sample: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        rec = {"trial": n, "sample": self.samples - 1, "status": "failed", "reason": reason,
               "decisions": dict(values), "target": {}, "epochs": [], "timings": {}}
        self._finish_record(rec, t, Result(None, "failed", {}))

    def ray_config(self, n: int, rec: dict) -> dict:
        tc = {"epochs": self.s.epochs, "batch_size": self.s.batch_size, "lr": self.s.lr, "seed": self.s.seed + n,
              "subset": None, "val_subset": None}
        return {"trial": n, "seed": self.s.seed + n, "proxy": rec["proxy_genotype"], "train": tc,
                "threads": self.s.cpus_per_trial, "keep_weights": True,
                "deadline": (self.deadline + 20.0) if self.deadline is not None else None}

    # results
    def result(self, pid: str, result: dict):
        p = self.pending.get(pid)
        if p is None or "val_acc" not in result or "epoch" not in result:
            return
        if "node" in result:
            p.record["placement"] = {"node": result["node"], "gpu_ids": result.get("gpu_ids", [])}
        p.epochs.append({"epoch": int(result["epoch"]), "val_acc": result["val_acc"],
                         "train_loss": result.get("train_loss"), "train_s": result.get("train_s"),
                         "images_per_s": result.get("images_per_s")})
        if self.progress:
            self.progress.epoch(p.trial, int(result["epoch"]), self.s.epochs, result["val_acc"])

    def complete(self, pid: str, result: dict | None, error_reason: str | None = None):
        from .controllers import Result
        p = self.pending.pop(pid, None)
        if p is None:
            return
        now = time.time()
        rec = p.record
        result = result or {}
        if "val_acc" in result and "epoch" in result and int(result["epoch"]) not in [e["epoch"] for e in p.epochs]:
            self.pending[pid] = p              # the last result can arrive with the completion only
            self.result(pid, result)
            self.pending.pop(pid)
        rec["epochs"] = p.epochs
        started = result.get("started")
        train_s = p.epochs[-1]["train_s"] if p.epochs else None
        rec["timings"] = {"dispatched": p.dispatched, "started": started, "completed": now,
                          "total_s": now - p.dispatched, "train_s": train_s,
                          "queue_s": (started - p.dispatched) if started else None}
        if error_reason is not None or result.get("failed"):
            rec["status"] = "failed"
            rec["reason"] = error_reason or result.get("reason")
            res = Result(None, "failed", {"reason": rec["reason"]})
        elif not p.epochs:
            return self._forget(p)        # stopped before its first epoch: nothing learnt, not counted
        else:
            accs = [e["val_acc"] for e in p.epochs]
            final = accs[-1]
            rec["val_acc"], rec["best_val_acc"] = final, max(accs)
            if len(p.epochs) >= self.s.epochs:
                rec["status"] = "ok"
            elif result.get("timeout") or (self.deadline is not None and now > self.deadline):
                rec["status"] = "timeout"
            else:
                rec["status"] = "stopped"           # ASHA stopped it early
            res = Result(final, "ok", {"val_acc": final, "macs": rec["target"]["macs"],
                                       "params": rec["target"]["params"], "epochs": len(p.epochs),
                                       "status": rec["status"]})
            if rec["status"] == "ok" and train_s and rec["proxy"]["macs"] and self.images_per_trial:
                self.sec_per_unit.append(train_s / (rec["proxy"]["macs"] * self.images_per_trial))
        self._finish_record(rec, p.ctrl_trial, res)
        self._prune_weights()
        self.write(plots=time.time() - self.last_plot > 20)     # the leaderboard and best.nasty always

    def save_weights(self, pid: str, blob: str):
        """The final weights a trial sent back with its last result (the winner's test accuracy needs them)."""
        import base64
        p = self.pending.get(pid)
        if p is None:
            return
        try:
            atomic_write(self.folder.weights(p.trial), base64.b64decode(blob, validate=True))
        except (ValueError, OSError) as e:
            p.record["weights_error"] = f"{type(e).__name__}: {e}"

    def retry(self, pid: str, reason: str):
        """Ray is running this trial again (its worker or node died): start its epochs afresh."""
        p = self.pending.get(pid)
        if p is None:
            return
        p.epochs = []
        p.record.setdefault("retries", []).append(reason)
        if self.progress:
            self.progress.started(p.trial, f"#{p.trial} retrying: {reason[:60]}")

    def _forget(self, p: _Pending):
        """A trial cut before it reported anything (interrupt, time budget): not recorded."""
        self.folder.weights(p.trial).unlink(missing_ok=True)

    def _finish_record(self, rec, ctrl_trial, res):
        if rec["status"] != "rejected":
            self.records.append(rec)
        self.folder.append_trial(rec)
        try:
            self.controller.tell(ctrl_trial, res)
        finally:
            self.told += 1
            self.save_controller()
        if self.progress:
            self.progress.finished(rec, best_of(self.records))
            self.progress.remaining = self.remaining_estimate()

    def save_controller(self):
        self.folder.write_json("controller.json", {
            "name": self.s.controller, "samples": self.samples, "told": self.told,
            "state": self.controller.state_dict()})

    def _prune_weights(self):
        keep = {r["trial"] for r in ranked(self.records)[:KEEP_WEIGHTS]}
        keep |= {p.trial for p in self.pending.values()}
        d = self.folder.path / "weights"
        if d.is_dir():
            for f in d.glob("trial_*.pt"):
                try:
                    if int(f.stem.split("_")[1]) not in keep:
                        f.unlink(missing_ok=True)
                except ValueError:
                    pass

    def write(self, plots=True):
        if plots:
            self.last_plot = time.time()
        write_results(self.folder, self.records, self.budget.macs, plots=plots)


def _searcher_class():
    from ray.tune.search import Searcher

    class ControllerSearcher(Searcher):
        """Ray Tune's Searcher protocol around a nasty Controller (via the Driver)."""

        def __init__(self, driver: Driver):
            super().__init__()
            self.driver = driver

        def suggest(self, trial_id):
            got = self.driver.propose()
            if got is None:
                return Searcher.FINISHED
            n, t, rec = got
            self.driver.pending[trial_id] = _Pending(n, t, rec, time.time())
            if self.driver.progress:
                self.driver.progress.started(n, f"#{n} starting")
            return self.driver.ray_config(n, rec)

        def on_trial_result(self, trial_id, result):
            self.driver.result(trial_id, result)

        def on_trial_complete(self, trial_id, result=None, error=False):
            if not error:               # errors are completed by the callback, which knows why
                self.driver.complete(trial_id, result)

        def save(self, checkpoint_path):   # the run folder holds the state; nothing for Tune to keep
            pass

        def __getstate__(self):            # Tune snapshots its config; the driver stays in this process
            return {k: v for k, v in self.__dict__.items() if k != "driver"}

        def restore(self, checkpoint_path):
            pass

    return ControllerSearcher


def _callback_class():
    from ray.tune import Callback

    class ErrorRecorder(Callback):
        def __init__(self, driver: Driver):
            self.driver = driver

        def __getstate__(self):
            return {k: v for k, v in self.__dict__.items() if k != "driver"}

        def on_trial_error(self, iteration, trials, trial, **info):
            self.driver.complete(trial.trial_id, trial.last_result, error_reason=_error_reason(trial))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            # Tune lets callbacks edit the result in place: the weights are not kept in Tune's state
            blob = result.pop("weights_b64", None)
            if blob:
                self.driver.save_weights(trial.trial_id, blob)

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.driver.retry(trial.trial_id, _error_reason(trial))

    return ErrorRecorder


def _error_reason(trial) -> str:
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except OSError:
        text = ""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in reversed(lines):
        if ":" in l and not l.startswith(("File ", "Failure #")):
            return " ".join(l.split())[:300]
    return "the trial's worker process died (out of memory, or killed)"
