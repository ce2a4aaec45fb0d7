"""What runs a trial and what proposes it: a Proposal on its way to training, what is known of a
Running trial, the TrialSource protocol an Executor drives (the search loop, the confirmation stage,
the self-audit), and the Executor itself.

Below all of them, so that none imports another for these types: every import in nasty/search/
points down (tests/test_imports.py).
"""
from __future__ import annotations

import abc
import statistics
import time
from dataclasses import dataclass, field

from .record import Epoch, Timings, TrialRecord


@dataclass
class Proposal:
    """A within-budget sample on its way to training: its record so far and its controller trial."""
    record: TrialRecord              # status OK as a placeholder until the trial completes
    ctrl_trial: object

    @property
    def trial(self) -> int:
        return self.record.trial


@dataclass
class Running:
    """What a TrialSource knows of a dispatched trial until it completes."""
    proposal: Proposal
    dispatched: float
    epochs: list = field(default_factory=list)
    placement: dict | None = None
    retries: list = field(default_factory=list)
    weights_error: str | None = None

    def add_epoch(self, result: dict) -> bool:
        """Keep one epoch's result (one that carries val_acc and epoch); says whether it did."""
        if "val_acc" not in result or "epoch" not in result:
            return False
        if "node" in result:
            self.placement = {"node": result["node"], "gpu_ids": result.get("gpu_ids", [])}
        self.epochs.append(Epoch(int(result["epoch"]), float(result["val_acc"]), result.get("train_loss"),
                                 result.get("train_s"), result.get("images_per_s")))
        return True

    def end(self, result: dict) -> Timings:
        """The trial is over: its last result may arrive with the completion only; its timings."""
        if "epoch" in result and int(result["epoch"]) not in [e.epoch for e in self.epochs]:
            self.add_epoch(result)
        now, started = time.time(), result.get("started")
        return Timings(self.dispatched, started, now, now - self.dispatched,
                       self.epochs[-1].train_s if self.epochs else None,
                       (started - self.dispatched) if started else None)


class TrialSource(abc.ABC):
    """What an Executor runs: the search loop, or the confirmation stage (confirm.py). The
    executor calls these, and only these, in this order for each trial it runs."""

    running: dict                     # executor key -> the source's view of a dispatched trial
    exhausted: bool = False           # everything asked for has been proposed
    stop_reason: str | None = None    # why it stopped proposing early (time budget, ...)
    fatal: Exception | None = None    # a failure that must end the search (a record not written)
    deadline: float | None = None

    @abc.abstractmethod
    def propose(self):
        """The next thing to run, or None when there is nothing more (now or ever). Called
        whenever the executor has a free slot."""

    @abc.abstractmethod
    def dispatch(self, key: str, proposal) -> dict:
        """Called once a proposal is about to run under the executor's `key`: the config that
        the evaluator (standalone.evaluate) trains from."""

    @abc.abstractmethod
    def epoch(self, key: str, result: dict):
        """Called for every result the running trial reports (one per epoch)."""

    @abc.abstractmethod
    def complete(self, key: str, result: dict | None, error: str | None = None):
        """Called once when the trial is over: its last result, or the error that ended it."""

    def save_weights(self, key: str, blob: bytes):
        """Called with the final weights a trial sent back (before `complete`)."""

    def retry(self, key: str, reason: str):
        """Called when the executor runs the trial again from scratch (its worker died)."""

    def abandon(self, key: str):
        """Called for a trial cut before it finished (Ctrl-C, the hard time limit): not recorded."""


class JobQueue(TrialSource):
    """A TrialSource with a fixed list of jobs to run in order (the confirmation stage, the self-audit):
    `jobs`, and `seconds`, the measured durations of finished ones, which stop it proposing a job that
    would end after the deadline. Subclasses dispatch, record and complete."""

    jobs: list
    seconds: list

    def propose(self):
        if self.fatal or self.stop_reason:
            return None
        if not self.jobs:
            self.exhausted = True
            return None
        if self.deadline is not None and self.seconds and time.time() + statistics.median(self.seconds) > \
                self.deadline:
            self.stop_reason = "the time budget is spent"
            return None
        return self.jobs.pop(0)


class Executor(abc.ABC):
    """Runs the trials a TrialSource proposes, somewhere."""

    @abc.abstractmethod
    def run(self, loop: TrialSource) -> bool:
        """Drive `loop` until it stops proposing and every dispatched trial is over.

        Call `loop.propose()` whenever a slot is free (None: nothing more to run), then
        `loop.dispatch(key, proposal)` for the evaluator's config; feed back each epoch with
        `loop.epoch(key, result)` and the end with `loop.complete(key, result, error)`.
        Returns True when the user interrupted (Ctrl-C); trials cut before their first
        epoch are then `loop.abandon`ed."""
