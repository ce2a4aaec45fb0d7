"""How a run's trials rank: what the confirmations say of a trial, the ranking (confirmed trials
first), the winner, the Pareto front.

Below the loop (which keeps the best trials' weights), the confirmation stage (which picks the
finalists), the results (leaderboard, summary) and the latency finalists, which all rank alike:
every import in nasty/search/ points down (tests/test_imports.py).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from .record import Status, TrialRecord


@dataclass(frozen=True)
class Confirmed:
    """What the confirmations of one trial say."""
    trial: int
    mean: float
    accs: tuple[float, ...]

    @property
    def spread(self) -> float:
        """Half the range of the seeds' accuracies (0 with one seed)."""
        return (max(self.accs) - min(self.accs)) / 2 if len(self.accs) > 1 else 0.0


def confirmed(confirmations) -> dict[int, Confirmed]:
    """{trial: Confirmed} from confirm.jsonl's records (finished ones only)."""
    accs: dict[int, list[float]] = {}
    for c in confirmations:
        if c.status is Status.OK and c.val_acc is not None:
            accs.setdefault(c.trial, []).append(c.val_acc)
    return {t: Confirmed(t, statistics.mean(a), tuple(a)) for t, a in accs.items()}


def ranked(records, confirmations=()) -> list[TrialRecord]:
    """Trials with a validation accuracy, best first: those the confirmation stage trained again
    first, by their mean confirmed accuracy; then the others by the search's score (complete ones
    before stopped ones). A finalist measured over a latency budget (a `rejected` confirmation,
    nasty/latency/search.py) is left out."""
    conf = confirmed(confirmations)
    refused = {c.trial for c in confirmations if c.status is Status.REJECTED}   # measured over a latency budget
    rs = [r for r in records if r.status.scored and r.val_acc is not None and r.trial not in refused]
    return sorted(rs, key=lambda r: (r.trial not in conf, -conf[r.trial].mean if r.trial in conf else 0.0,
                                     r.status is not Status.OK, -r.val_acc, r.target.macs, r.trial))


def best_of(records, confirmations=()) -> TrialRecord | None:
    """The winner: the best confirmed trial when there are confirmations, else the search's best."""
    r = ranked(records, confirmations)
    return r[0] if r else None


def counts(records) -> dict[str, int]:
    """{status: number of records}, every status present (rejected samples included)."""
    out = {s.value: 0 for s in Status}
    for r in records:
        out[r.status.value] += 1
    return out


def pareto(records, cost=lambda r: r.target.macs) -> list[TrialRecord]:
    """Trials no other beats on both validation accuracy and target cost (MACs, or `cost`), by cost."""
    pts = sorted(ranked(records), key=lambda r: (cost(r), -r.val_acc))
    front, best_acc = [], -1.0
    for r in pts:
        if r.val_acc > best_acc:
            front.append(r)
            best_acc = r.val_acc
    return front
