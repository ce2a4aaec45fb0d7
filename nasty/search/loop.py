"""The search loop, on the controller's side of a search (the driver process), with no Ray:

    propose ── controller.ask() → space → TARGET genotype → analytic cost
       │         over budget? → recorded (rejected), told, never trained (--fit: width scaled first)
       ▼
    dispatch ── the PROXY genotype and its training config go to an Executor
       │
    epoch / complete ◀── what the trial reports (per epoch, then its end or its error)
       ▼
    record (trials.jsonl) → tell the controller → leaderboard, best.nasty, plots

An `Executor` runs what the loop proposes: `ray_backend.TuneExecutor` (Ray Tune trials,
on one machine or a cluster) or `SerialExecutor` here (one trial at a time in this process,
for tests and debugging). Both only call the loop's methods, so a test can drive a whole
search through the loop with a fake evaluation in milliseconds.

"Trial" here is a trial number (a line of trials.jsonl); the executor's own handle of a
running trial (Ray's trial id) is its `key`; `nasty.space.Trial` is the controller's
source of decision values.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable

from ..errors import RunError
from .budget import Costed
from .folder import RunFolder, atomic_write
from .record import NetCost, Status, TrialRecord, jsonable
from .results import KEEP_WEIGHTS, best_of, ranked, write_results
from .settings import Settings
from .trial_source import Executor, Proposal, Running, TrialSource  # noqa: F401  (re-exported)
from .signals import stopping
from .standalone import take_weights

MAX_CONSECUTIVE_REJECTS = 2000     # a search stops proposing after this many over-budget samples in a row


class SearchLoop(TrialSource):
    """Propose (with the budget check), record, tell: the controller's side of a search.

    `rows`: which rows of the executor's data payload a trial trains and validates on;
    `reserve()`: seconds to keep free at the end of the time budget (the confirmation stage)."""

    def __init__(self, s: Settings, folder: RunFolder, space, controller, budget, data_shape, classes,
                 progress=None, records=None, samples=0, told=0, deadline=None, slots=1, images=(0, 0),
                 study=None, rows: dict | None = None, reserve=None, interrupted=()):
        """`interrupted`: proposals of trials a previous process dispatched and never recorded
        (running.json): proposed first, under their numbers, with their decisions."""
        self.rows = rows
        self.reserve = reserve or (lambda: 0.0)
        self.screen = None                          # a Screen (screen.py): score many, train the best
        self.s, self.folder, self.space, self.controller, self.budget = s, folder, space, controller, budget
        self.study = study                          # a StudyLog: the run as an Optuna study (study.py)
        self.lines = len(records or [])             # records in trials.jsonl, rejected ones included
        self.data_shape, self.classes = tuple(data_shape), classes
        self.progress = progress
        self.records: list[TrialRecord] = [r for r in (records or []) if r.status.counted]
        self.samples, self.told = samples, told
        self.deadline, self.slots = deadline, slots
        self.running: dict[str, Running] = {}
        self.rerun: list[TrialRecord] = sorted(interrupted, key=lambda r: r.trial)
        # dispatched (or waiting to run again) and not recorded: running.json (RunFolder.note_running)
        self.unrecorded: dict[int, TrialRecord] = {r.trial: r for r in self.rerun}
        self.next_trial = max([r.trial for r in self.records] + list(self.unrecorded), default=-1) + 1
        self.rejected_in_a_row = 0
        self.exhausted = False                       # every trial asked for has been proposed
        self.stop_reason: str | None = None
        self.fatal: Exception | None = None          # a failure that must end the search (a record not written)
        self.last_plot = time.time()                 # plots (~0.5 s) at most every 20 s, none at once
        self.sec_per_unit: list[float] = []          # train seconds per (proxy MAC x image)
        self.images_per_trial = s.epochs * sum(images)             # trained and validated, all epochs

    # ------------------------------------------------------------ counts and estimates
    def done(self) -> int:
        return sum(1 for r in self.records if r.status.counted)

    def remaining_estimate(self):
        """Seconds left, from the measured trial times (None until a trial has finished); never
        beyond the time budget plus one trial."""
        left = self.s.trials - self.done()
        durs = [r.timings.total_s for r in self.records if r.timings and r.timings.total_s]
        if not durs:
            return None
        est = statistics.median(durs) * max(0, left) / max(1, self.slots)
        if self.deadline is not None:
            est = min(est, max(0.0, self.deadline - time.time()) + statistics.median(durs))
        return est

    def _estimate(self, proxy_macs: int) -> float | None:
        if not self.sec_per_unit:
            return None
        return statistics.median(self.sec_per_unit) * proxy_macs * self.images_per_trial + 2.0

    def _out_of_time(self) -> bool:
        """Would a typical trial (the median proxy size so far) end after the time budget?"""
        if self.deadline is None:
            return False
        sizes = [r.proxy.macs for r in self.records if r.status.scored and r.proxy]
        est = self._estimate(statistics.median(sizes)) if sizes else None
        return time.time() + (est or 0.0) + self.reserve() > self.deadline

    # ------------------------------------------------------------ proposing
    def propose(self) -> Proposal | None:
        """The next within-budget sample to train, or None when the search should stop proposing.
        Over-budget samples, and samples the space cannot build, are recorded and told to the
        controller here; they never reach an executor. With a screen (screen.py), each round of
        in-budget samples is scored and only the best are proposed."""
        if self.rerun and not (self.stop_reason or self.fatal) and not self._out_of_time() \
                and self.done() + len(self.running) < self.s.trials:
            return self._again(self.rerun.pop(0))    # a trial cut short before (running.json): first, as it was
        if self.screen is not None:
            return self.screen.propose(self)
        while not self.should_stop():
            got = self.sample()
            if got is not None:
                return self.number(got[0])
        return None

    def reject_limit(self) -> int:
        """Over-budget samples in a row after which the search stops proposing (the module's constant,
        read when asked: tests lower it)."""
        return MAX_CONSECUTIVE_REJECTS

    def should_stop(self) -> bool:
        """Should the search stop proposing (trials done, time spent, ...)? Sets why."""
        if self.stop_reason or self.fatal:
            return True
        if self.done() + len(self.running) >= self.s.trials:
            self.exhausted = True
            return True
        if getattr(self.controller, "finished", False):
            self.stop_reason = "the controller has proposed everything it plans to"
            return True
        if self.rejected_in_a_row >= MAX_CONSECUTIVE_REJECTS:
            self.stop_reason = (f"{MAX_CONSECUTIVE_REJECTS} samples in a row were over budget; "
                                "raise the budget or use --fit")
            return True
        if self._out_of_time():
            # decided before asking, so that no proposal is asked and then dropped untold
            self.stop_reason = "the time budget is spent"
            return True
        return False

    def sample(self, defer_fit: bool = False):
        """Ask the controller for one sample: (a Proposal with no trial number yet, its proxy
        Genotype), or None when it was over budget or could not be built (then it is recorded and
        told to the controller here). `defer_fit` (the screen): when --fit sets a width the proxy
        does not see, only check that some width fits, and leave the fitting (a bisection of target
        builds) to `fit_deferred`, for the samples chosen to train."""
        from ..cost import cost
        from ..controllers import Result
        t = self.controller.ask()
        self.samples += 1
        try:
            values, g = self.space.sample(t)
            c = cost(g)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a space that cannot build this sample
            self._failed_sample(t, getattr(t, "values", {}), e)
            return None
        values = dict(values)
        fitted_from, unfitted = None, None
        reason = self.budget.check(c)
        if self.s.fit and self.budget and defer_fit and self.space.width_decision in self.space.proxy_ignores:
            fits = (Costed(values, g, c.macs, c.params, self.budget.latency(c)) if reason is None
                    else self._narrowest(t, values))
            if fits is not None:
                if fits.values != values:
                    fitted_from = values.get(self.space.width_decision)
                unfitted, values, g, c, reason = values, fits.values, fits.genotype, fits, None
        elif self.s.fit and self.budget:
            # the width is the budget's: the largest value within it, up or down from the sample's
            from .budget import fit_width
            fitted = fit_width(self.space, values, self.budget,
                               Costed(values, g, c.macs, c.params, self.budget.latency(c)))
            if fitted is not None:
                if fitted.values != values:
                    fitted_from = values.get(self.space.width_decision)
                values, g, c = fitted.values, fitted.genotype, fitted
                reason = None
        if reason:
            self.rejected_in_a_row += 1
            lat = self.budget.latency(c)
            rec = TrialRecord(Status.REJECTED, None, sample=self.samples - 1, decisions=values, reason=reason,
                              target=NetCost(c.macs, c.params, latency_ms=lat))
            self._finish(rec, t, Result(None, Status.REJECTED, {"macs": c.macs, "params": c.params,
                                                                 **({"latency_ms": lat} if lat else {})}))
            return None
        self.rejected_in_a_row = 0
        try:
            pg = self.space.genotype(values, proxy=True, input=self.data_shape, classes=self.classes)
            pc = cost(pg)
        except (Exception, SystemExit) as e:  # noqa: BLE001
            self._failed_sample(t, values, e)
            return None
        p = Proposal(self._record(values, g, c, fitted_from, proxy=(pg, pc)), t)
        p.unfitted = unfitted
        return p, pg

    def _record(self, values, g, c, fitted_from, proxy) -> TrialRecord:
        from ..genotype import format as fmt
        pg, pc = proxy
        return TrialRecord(
            Status.OK, None, sample=self.samples - 1, decisions=values, genotype=fmt(g), proxy_genotype=fmt(pg),
            target=NetCost(c.macs, c.params, tuple(g.input), g.classes, self.budget.latency(c)),
            proxy=NetCost(pc.macs, pc.params, self.data_shape, self.classes),
            fitted=({self.space.width_decision: [fitted_from, values[self.space.width_decision]]}
                    if fitted_from is not None else None))

    def _narrowest(self, t, values: dict):
        """The sample at its narrowest width (Costed) when that is within budget, else None."""
        from .budget import target_cost
        name = self.space.width_decision
        d = next((x for x in getattr(t, "asked", ()) if x.name == name), None)
        if d is None:
            return None
        c = target_cost(self.space, {**values, name: d.low if d.kind == "float" else min(d.options())}, self.budget)
        return c if self.budget.check(c) is None else None

    def fit_deferred(self, p: Proposal) -> Proposal:
        """A sample whose width fitting `sample(defer_fit=True)` left out, fitted now (it will train;
        its proxy does not see the width, so only its target changes)."""
        unfitted = getattr(p, "unfitted", None)
        if unfitted is None:
            return p
        from ..genotype import format as fmt
        from .budget import fit_width
        p.unfitted = None
        fitted = fit_width(self.space, unfitted, self.budget)
        if fitted is None:                            # cannot happen for a monotone width; keep the narrowest
            return p
        name, g = self.space.width_decision, fitted.genotype
        p.record = dataclasses.replace(
            p.record, decisions=fitted.values, genotype=fmt(g),
            target=NetCost(fitted.macs, fitted.params, tuple(g.input), g.classes, fitted.latency_ms),
            fitted=({name: [unfitted.get(name), fitted.values[name]]} if fitted.values != unfitted else None))
        return p

    def number(self, p: Proposal) -> Proposal:
        """Give a proposal about to train its trial number."""
        p.record = dataclasses.replace(p.record, trial=self.next_trial)
        self.next_trial += 1
        return p

    def _again(self, rec: TrialRecord) -> Proposal:
        """A trial cut short by an interrupt or a kill, proposed again under its number with its
        decisions; the controller learns its result as a replayed trial (it asked for it before)."""
        from ..controllers.values import ReplayTrial
        t = ReplayTrial(rec.decisions)
        try:
            self.space.sample(t)
        except Exception:  # noqa: BLE001 - it still trains; the controller is not told its decisions
            t = None
        if self.progress:
            self.progress.note(f"trial #{rec.trial} was cut short before: it runs again")
        return Proposal(dataclasses.replace(rec, status=Status.OK), t)

    def note_running(self):
        """running.json: the trials dispatched (or waiting to run again) and not recorded yet."""
        self.folder.note_running(list(self.unrecorded.values()))

    def _failed_sample(self, t, values, e):
        """A sample the space could not build (or cost): a failed trial that never trained."""
        from ..controllers import Result
        n = self.next_trial
        self.next_trial += 1
        reason = f"the space could not build this sample: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        rec = TrialRecord(Status.FAILED, n, sample=self.samples - 1, decisions=dict(values), reason=reason)
        self._finish(rec, t, Result(None, Status.FAILED, {}))

    def dispatch(self, key: str, proposal: Proposal) -> dict:
        """Register a proposal an executor is about to run; returns the evaluator's config."""
        self.running[key] = Running(proposal, time.time())
        n = proposal.trial
        self.unrecorded[n] = proposal.record
        self.note_running()
        if self.progress:
            self.progress.started(n, f"#{n} starting")
        tc = {"epochs": self.s.epochs, "batch_size": self.s.batch_size, "lr": self.s.lr, "seed": self.s.seed + n,
              "subset": None, "val_subset": None, "precise_bn": self.s.precise_bn}
        return {"trial": n, "seed": self.s.seed + n, "proxy": proposal.record.proxy_genotype, "train": tc,
                "decisions": jsonable(proposal.record.decisions),      # Tune's params.json: what was tried
                "threads": self.s.cpus_per_trial, "keep_weights": True, "rows": self.rows,
                "deadline": self.deadline}                # the time budget is hard (standalone.evaluate)

    # ------------------------------------------------------------ what trials report
    def epoch(self, key: str, result: dict):
        """One epoch's result of a running trial (ignored unless it carries val_acc and epoch)."""
        r = self.running.get(key)
        if r is not None and r.add_epoch(result) and self.progress:
            self.progress.epoch(r.proposal.trial, int(result["epoch"]), self.s.epochs, result["val_acc"])

    def complete(self, key: str, result: dict | None, error: str | None = None):
        """A trial is over: it ended (its last result, if any, in `result`) or failed (`error`)."""
        from ..controllers import Result
        r = self.running.pop(key, None)
        if r is None:
            return
        result = result or {}
        timings = r.end(result)
        now, train_s = timings.completed, timings.train_s
        rec = dataclasses.replace(r.proposal.record, epochs=tuple(r.epochs), placement=r.placement,
                                  retries=tuple(r.retries), weights_error=r.weights_error, timings=timings)
        if stopping() and len(r.epochs) < self.s.epochs:
            return self._forget(r)        # cut short by a signal (its worker may have died of it): runs again
        if error is not None or result.get("failed"):
            rec = dataclasses.replace(rec, status=Status.FAILED, reason=error or result.get("reason"))
            res = Result(None, Status.FAILED, {"reason": rec.reason})
        elif not r.epochs and result.get("timeout"):
            # cut by the hard time budget before its first epoch: recorded, with no score
            rec = dataclasses.replace(rec, status=Status.TIMEOUT, reason=result.get("reason"))
            res = Result(None, Status.TIMEOUT, {"macs": rec.target.macs, "params": rec.target.params})
        elif not r.epochs:
            return self._forget(r)        # stopped before its first epoch (an interrupt): not counted
        else:
            accs = [e.val_acc for e in r.epochs]
            reason = None
            if len(r.epochs) >= self.s.epochs:
                status = Status.OK
            elif result.get("timeout") or (self.deadline is not None and now > self.deadline):
                status = Status.TIMEOUT
                reason = f"stopped at the time budget after {len(r.epochs)} of {self.s.epochs} epochs"
            else:
                status = Status.STOPPED           # ASHA stopped it early
            rec = dataclasses.replace(rec, status=status, val_acc=accs[-1], best_val_acc=max(accs), reason=reason)
            res = Result(accs[-1], status, {"val_acc": accs[-1], "macs": rec.target.macs,
                                            "params": rec.target.params, "epochs": len(r.epochs), "curve": accs,
                                            **({"latency_ms": rec.target.latency_ms}
                                               if rec.target.latency_ms is not None else {})})
            if status is Status.OK and train_s and rec.proxy.macs and self.images_per_trial:
                self.sec_per_unit.append(train_s / (rec.proxy.macs * self.images_per_trial))
        self._finish(rec, r.proposal.ctrl_trial, res)
        self.folder.prune_weights(self._weights_to_keep())
        self.write(plots=time.time() - self.last_plot > 20)     # the leaderboard and best.nasty always

    def save_weights(self, key: str, blob: bytes):
        """The final weights a trial sent back with its last result (the winner's test accuracy needs them)."""
        r = self.running.get(key)
        if r is None:
            return
        try:
            atomic_write(self.folder.weights(r.proposal.trial), blob)
        except OSError as e:
            r.weights_error = f"{type(e).__name__}: {e}"

    def retry(self, key: str, reason: str):
        """The executor is running this trial again (its worker or node died): its epochs start afresh."""
        r = self.running.get(key)
        if r is None:
            return
        r.epochs = []
        r.retries.append(reason)
        if self.progress:
            self.progress.started(r.proposal.trial, f"#{r.proposal.trial} retrying: {reason[:60]}")

    def abandon(self, key: str):
        """A trial cut before it finished (an interrupt, the hard time limit): not recorded; it stays
        in running.json, and a resume runs it again under its number."""
        r = self.running.pop(key, None)
        if r is not None:
            self._forget(r)

    def _forget(self, r: Running):
        self.folder.weights(r.proposal.trial).unlink(missing_ok=True)

    # ------------------------------------------------------------ recording
    def _finish(self, rec: TrialRecord, ctrl_trial, res, save: bool = True):
        """Record (on disk first), then tell the controller, save its state (unless `save` is off:
        the caller saves once after many), update the study."""
        from .study import record_attrs
        line = self.lines
        try:
            self.folder.append(rec)
        except RunError as e:
            self.fatal = e                  # the executor stops; the search ends with this error
            raise
        self.lines += 1
        if rec.trial is not None and self.unrecorded.pop(rec.trial, None) is not None:
            self.note_running()
        if rec.status.counted:
            self.records.append(rec)
        res.metrics["attrs"] = record_attrs(rec, line)      # an Optuna-based controller files them
        try:
            if ctrl_trial is not None:
                self.controller.tell(ctrl_trial, res)
        finally:
            self.told += 1
            if save:
                self.save_controller()
        if self.study is not None:
            self.study.record(rec, line, getattr(ctrl_trial, "asked", None))
        if self.progress:
            self.progress.finished(rec, best_of(self.records))
            self.progress.remaining = self.remaining_estimate()

    def save_controller(self):
        self.folder.write_json("controller.json", {
            "name": self.s.controller, "samples": self.samples, "told": self.told,
            "state": self.controller.state_dict()})

    def _weights_to_keep(self) -> set[int]:
        # Under a latency budget the finalists measured over it drop out of the ranking at the end,
        # so the weights of as many more are kept: the winner then still has its own to be tested.
        keep = KEEP_WEIGHTS + ((self.s.confirm or 0) if getattr(self.budget, "latency_ms", None) else 0)
        return {r.trial for r in ranked(self.records)[:keep]} | {r.proposal.trial for r in self.running.values()}

    def write(self, plots=True):
        if plots:
            self.last_plot = time.time()
        write_results(self.folder, self.records, self.budget.macs, plots=plots,
                      canonical=getattr(self.space, "canonical", None))

    # ------------------------------------------------------------ resume
    def replay(self, records: list[TrialRecord], first_line: int):
        """Tell the controller the records it was not told before a crash (best effort: a record
        the space can no longer rebuild is skipped; the record itself is safe on disk)."""
        tell_records(self.controller, self.space, records, first_line)
        self.told += len(records)


def replay_result(rec: TrialRecord, line: int):
    """The controllers.Result a record was told with (its user attributes for Optuna included)."""
    from ..controllers import Result
    from .study import record_attrs
    if rec.status in (Status.REJECTED, Status.SCREENED):
        res = Result(None, rec.status, {"macs": rec.target.macs, "params": rec.target.params}
                     if rec.target else {})
    elif rec.status is Status.FAILED:
        res = Result(None, Status.FAILED, {})
    else:
        res = Result(rec.val_acc, rec.status, {"val_acc": rec.val_acc, "curve": [e.val_acc for e in rec.epochs]})
    if rec.target and rec.target.latency_ms is not None:
        res.metrics["latency_ms"] = rec.target.latency_ms
    res.metrics["attrs"] = record_attrs(rec, line)
    return res


def tell_records(controller, space, records: list[TrialRecord], first_line: int = 0) -> int:
    """Tell `controller` the `records` (lines first_line, ...) as replayed trials, in order: after a
    crash, and when the controller's own Optuna study is rebuilt. Best effort: a record the space
    can no longer rebuild is skipped. Returns how many were told."""
    from ..controllers.values import ReplayTrial
    told = 0
    for line, rec in enumerate(records, first_line):
        try:
            t = ReplayTrial(rec.decisions)
            space.sample(t)
            controller.tell(t, replay_result(rec, line))
            told += 1
        except Exception:  # noqa: BLE001
            pass
    return told


class SerialExecutor(Executor):
    """One trial at a time in this process: `evaluate(config, report)` trains the trial the
    config describes and calls `report(result)` once per epoch (the last result may carry
    `failed` and `reason`). For tests, debugging, and machines without Ray."""

    def __init__(self, evaluate: Callable[[dict, Callable[[dict], None]], None]):
        self.evaluate = evaluate

    def run(self, loop: SearchLoop) -> bool:
        n = 0
        while (p := loop.propose()) is not None:
            key = f"serial-{n}"
            n += 1
            config = loop.dispatch(key, p)
            last: dict = {}

            def report(result: dict):
                nonlocal last
                blob = take_weights(result)
                if blob:
                    loop.save_weights(key, blob)
                last = result
                loop.epoch(key, result)

            try:
                self.evaluate(config, report)
            except KeyboardInterrupt:
                loop.abandon(key)
                return True
            except Exception as e:  # noqa: BLE001 - an evaluation that raised: the trial failed
                loop.complete(key, last, error=f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
                continue
            loop.complete(key, last)
        return False
