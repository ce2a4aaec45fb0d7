"""Confirm before crowning: the top trials of a search, trained again at a higher fidelity.

A search ranks its trials on proxies trained briefly on a few thousand images and scored on a
few thousand more: the standard error of such a score (about 0.5-0.8 pp) is as large as the
spread among the best trials, so the search's own best is partly luck. Before a run names its
winner, the top K trials (--confirm K, default 5) are trained again with more images, on the
whole validation split, with --confirm-seeds seeds (default 2), as trials of the same executor
(Ray Tune). The winner is the trial with the best mean confirmed accuracy; both scores are kept:
the search's in trials.jsonl, the confirmations in confirm.jsonl (record.ConfirmRecord).

The confirmation stage is part of the time budget: the search loop keeps `reserve()` seconds
free for it, estimated from the search's own measured trial times.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from .folder import CONFIRMS, RunFolder, atomic_write
from .trial_source import JobQueue, Proposal, Running
from .record import ConfirmRecord, Status, TrialRecord, jsonable
from .settings import Settings
from .signals import stopping


def picks(ranked_records: list[TrialRecord], k: int) -> list[TrialRecord]:
    """The trials to confirm: the top k trained ones (complete ones only; stopped early, no)."""
    return [r for r in ranked_records if r.status is Status.OK][:k]


@dataclass
class ConfirmJob(Proposal):
    """One confirmation to run: a search trial's record and the confirmation's seed index."""
    seed: int = 0


class ConfirmLoop(JobQueue):
    """The confirmation stage as something an Executor runs (the same protocol as SearchLoop)."""

    def __init__(self, s: Settings, folder: RunFolder, chosen: list[TrialRecord], done: list[ConfirmRecord],
                 rows: dict, fidelity: dict, deadline: float | None, progress=None):
        self.s, self.folder, self.rows, self.fidelity = s, folder, rows, fidelity
        self.deadline, self.progress = deadline, progress
        finished = {(c.trial, c.seed) for c in done if c.status in (Status.OK, Status.FAILED)}
        # seed 0 of every pick first, then seed 1...: when time runs short, every pick has one score
        self.jobs = [ConfirmJob(r, None, k) for k in range(s.confirm_seeds) for r in chosen
                     if (r.trial, k) not in finished]
        self.records: list[ConfirmRecord] = list(done)
        self.running: dict[str, Running] = {}
        self.exhausted = False
        self.stop_reason: str | None = None
        self.fatal: Exception | None = None
        self.seconds: list[float] = []

    def dispatch(self, key: str, job: ConfirmJob) -> dict:
        self.running[key] = Running(job, time.time())
        if self.progress:
            self.progress.started(job.trial, f"#{job.trial} confirming (seed {job.seed + 1})")
        # another seed than the search's (s.seed + trial), and another per confirmation
        seed = self.s.seed + job.trial + 100_003 * (job.seed + 1)
        tc = {"epochs": self.fidelity["epochs"], "batch_size": self.s.batch_size, "lr": self.s.lr, "seed": seed,
              "subset": None, "val_subset": None, "precise_bn": self.s.precise_bn}
        return {"trial": job.trial, "seed": seed, "proxy": job.record.proxy_genotype, "train": tc,
                "decisions": jsonable(job.record.decisions),
                "threads": self.s.cpus_per_trial, "keep_weights": True, "rows": self.rows,
                "deadline": self.deadline}                # the time budget is hard (standalone.evaluate)

    def epoch(self, key: str, result: dict):
        r = self.running.get(key)
        if r is not None and r.add_epoch(result) and self.progress:
            self.progress.epoch(r.proposal.trial, int(result["epoch"]), self.fidelity["epochs"], result["val_acc"])

    def complete(self, key: str, result: dict | None, error: str | None = None):
        r = self.running.pop(key, None)
        if r is None:
            return
        result = result or {}
        timings = r.end(result)
        job = r.proposal
        if stopping() and len(r.epochs) < self.fidelity["epochs"]:
            return                                    # cut short by a signal: confirmed again on resume
        if error is not None or result.get("failed"):
            rec = ConfirmRecord(job.trial, job.seed, Status.FAILED, None, tuple(r.epochs), self.fidelity,
                                error or result.get("reason"), timings)
        elif not r.epochs and result.get("timeout"):        # cut by the hard time budget: run again on resume
            rec = ConfirmRecord(job.trial, job.seed, Status.TIMEOUT, None, (), self.fidelity, result.get("reason"),
                                timings)
        elif not r.epochs:
            return
        else:
            done = len(r.epochs) >= self.fidelity["epochs"]
            rec = ConfirmRecord(job.trial, job.seed, Status.OK if done else Status.TIMEOUT, r.epochs[-1].val_acc,
                                tuple(r.epochs), self.fidelity, None if done else
                                f"stopped at the time budget after {len(r.epochs)} of {self.fidelity['epochs']} epochs",
                                timings)
            self.seconds.append(timings.total_s)
        self.folder.append(rec, CONFIRMS)
        self.records.append(rec)
        if self.progress:
            self.progress.confirmed(rec)

    def save_weights(self, key: str, blob: bytes):
        r = self.running.get(key)
        if r is not None:
            try:
                atomic_write(confirm_weights(self.folder, r.proposal.trial, r.proposal.seed), blob)
            except OSError:
                pass

    def retry(self, key: str, reason: str):
        r = self.running.get(key)
        if r is not None:
            r.epochs = []

    def abandon(self, key: str):
        self.running.pop(key, None)


def reserve_seconds(s: Settings, records, slots: int, ratio: float) -> float:
    """Seconds the confirmation stage (and the audit's members, audit.py) will need, from the search's
    measured trial times (0 before any), at most half the time budget (the search itself must have
    time to find candidates)."""
    if not s.confirm:
        return 0.0
    durs = [r.timings.total_s for r in records if r.status is Status.OK and r.timings and r.timings.total_s]
    if not durs:
        return 0.0
    waves = -(-(s.confirm + (s.audit or 0)) * s.confirm_seeds // max(1, slots))    # the audit's members too
    need = waves * statistics.median(durs) * ratio
    return min(need, 0.5 * s.time_budget) if s.time_budget else need


def confirm_weights(folder: RunFolder, trial: int, seed: int):
    return folder.path / "weights" / f"confirm_{trial:04d}_{seed}.pt"


def fidelity(s: Settings, rows: dict) -> dict:
    """What a confirmation trains on: epochs, training and validation images."""
    tr, va = rows["train"], rows["val"]
    return {"epochs": s.confirm_epochs, "train_images": tr[1] - tr[0], "val_images": va[1] - va[0]}


def cost_ratio(s: Settings, search_rows: dict, confirm_rows: dict) -> float:
    """How much longer a confirmation takes than a search trial (images x epochs)."""
    def work(rows, epochs):
        return (rows["train"][1] - rows["train"][0] + rows["val"][1] - rows["val"][0]) * epochs
    return work(confirm_rows, s.confirm_epochs) / max(1, work(search_rows, s.epochs))
