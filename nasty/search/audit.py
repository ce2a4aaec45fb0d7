"""Every run audits itself: does the winner beat random members of the space?

A search's winner is only worth its cost if it beats what a random draw from the same space,
under the same budget, gives. So the confirmation stage also trains `--audit R` (default 2 on a
CPU) random in-budget members of the space, drawn with the run's seed (the same --fit as the
search's samples; never over budget), with the confirmation's recipe: the same images, epochs and
seed indices (`--confirm-seeds`). Their records go to audit.jsonl (record.AuditRecord). The
end-of-run summary, best.json and report.html then say

    winner vs random members: +x pp (mean ± std over n seeds)

where for each seed index k, the winner's confirmed accuracy minus the mean of the members'
accuracies at seed k is one difference, and the mean and std are over the seed indices. When the
winner does not beat them, the line says so.

The audit runs in the confirmation's executor run (`Together`: every pick's and member's first
seed before any second seed, picks and members taking turns), and its time is reserved inside the
time budget with the confirmation's (confirm.reserve_seconds).
"""
from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass

from .folder import AUDITS, RunFolder
from .trial_source import JobQueue, Proposal, Running, TrialSource
from .record import AuditRecord, NetCost, Status, TrialRecord, jsonable

AUDIT_SEED = 2_718_281          # the members' draw: random.Random(seed + AUDIT_SEED)
SEED_BASE = 10_000_019          # member m's training seeds: seed + SEED_BASE + m + 100_003 * (k + 1)
MAX_DRAWS = 5000                # samples tried to find R distinct in-budget members


@dataclass
class Member:
    """A random in-budget member: its decisions, genotypes (text) and costs."""
    index: int
    decisions: dict
    genotype: str
    proxy_genotype: str
    target: NetCost
    proxy: NetCost


def draw_members(space, budget, s, data_shape, classes, n: int) -> list[Member]:
    """`n` distinct random in-budget members of `space` (with --fit as the search fits its samples),
    the same for a given --seed (a resumed run audits the same members)."""
    from ..cost import cost
    from ..genotype import format as fmt
    from ..space import RandomTrial
    from .budget import Costed, fit_width
    rng = random.Random(s.seed + AUDIT_SEED)
    out, seen = [], set()
    for _ in range(MAX_DRAWS):
        if len(out) >= n:
            break
        try:
            values, g = space.sample(RandomTrial(rng))
            c = cost(g)
            values = dict(values)
            if s.fit and budget:
                fitted = fit_width(space, values, budget, Costed(values, g, c.macs, c.params))
                if fitted is None:
                    continue
                values, g = fitted.values, fitted.genotype
                c = cost(g)
            if budget.check(c) is not None:
                continue
            pg = space.genotype(values, proxy=True, input=tuple(data_shape), classes=classes)
            pc = cost(pg)
        except Exception:  # noqa: BLE001 - a sample the space cannot build is not a member
            continue
        key = fmt(pg)
        if key in seen:
            continue
        seen.add(key)
        out.append(Member(len(out), values, fmt(g), key, NetCost(c.macs, c.params, tuple(g.input), g.classes),
                          NetCost(pc.macs, pc.params, tuple(data_shape), classes)))
    return out


@dataclass
class AuditJob(Proposal):
    """One training of a member at one seed index."""
    member: Member = None
    seed: int = 0


class AuditLoop(JobQueue):
    """The members' trainings as something an Executor runs (the TrialSource protocol)."""

    def __init__(self, s, folder: RunFolder, members: list[Member], done: list[AuditRecord], rows: dict,
                 fidelity: dict, deadline: float | None, progress=None, seconds: list | None = None):
        """`seconds`: the confirmation's list of measured durations, shared, so that the audit stops
        when a training of the same recipe would end after the time budget (as the confirmation does)."""
        self.s, self.folder, self.rows, self.fidelity = s, folder, rows, fidelity
        self.deadline, self.progress = deadline, progress
        finished = {(a.member, a.seed) for a in done if a.status in (Status.OK, Status.FAILED)}
        self.members = members
        self.jobs = [AuditJob(TrialRecord(Status.OK, m.index, decisions=m.decisions, proxy_genotype=m.proxy_genotype,
                                          target=m.target, proxy=m.proxy), None, m, k)
                     for k in range(s.confirm_seeds) for m in members if (m.index, k) not in finished]
        self.records = list(done)
        self.running: dict[str, Running] = {}
        self.exhausted = False
        self.stop_reason = None
        self.fatal = None
        self.seconds: list[float] = seconds if seconds is not None else []

    def dispatch(self, key: str, job: AuditJob) -> dict:
        self.running[key] = Running(job, time.time())
        m = job.member
        if self.progress:
            self.progress.started(-100 - m.index, f"random member {m.index + 1} (seed {job.seed + 1})")
        seed = self.s.seed + SEED_BASE + m.index + 100_003 * (job.seed + 1)
        tc = {"epochs": self.fidelity["epochs"], "batch_size": self.s.batch_size, "lr": self.s.lr, "seed": seed,
              "subset": None, "val_subset": None, "precise_bn": self.s.precise_bn}     # the confirmation's recipe
        return {"trial": m.index, "audit": True, "seed": seed, "proxy": m.proxy_genotype, "train": tc,
                "decisions": jsonable(m.decisions), "threads": self.s.cpus_per_trial, "keep_weights": False,
                "rows": self.rows, "deadline": self.deadline}      # the time budget is hard, as the confirmation's

    def epoch(self, key: str, result: dict):
        r = self.running.get(key)
        if r is not None:
            r.add_epoch(result)

    def complete(self, key: str, result: dict | None, error: str | None = None):
        r = self.running.pop(key, None)
        if r is None:
            return
        result = result or {}
        timings = r.end(result)
        job: AuditJob = r.proposal
        m = job.member
        common = dict(fidelity=self.fidelity, decisions=m.decisions, target=m.target, proxy=m.proxy,
                      timings=timings)
        if error is not None or result.get("failed"):
            rec = AuditRecord(m.index, job.seed, Status.FAILED, None, tuple(r.epochs),
                              reason=error or result.get("reason"), **common)
        elif not r.epochs and result.get("timeout"):        # cut by the hard time budget: run again on resume
            rec = AuditRecord(m.index, job.seed, Status.TIMEOUT, None, (), reason=result.get("reason"), **common)
        elif not r.epochs:
            return
        else:
            done = len(r.epochs) >= self.fidelity["epochs"]
            rec = AuditRecord(m.index, job.seed, Status.OK if done else Status.TIMEOUT, r.epochs[-1].val_acc,
                              tuple(r.epochs), reason=None if done else f"stopped at the time budget after "
                              f"{len(r.epochs)} of {self.fidelity['epochs']} epochs", **common)
            self.seconds.append(timings.total_s)
        self.folder.append(rec, AUDITS)
        self.records.append(rec)
        if self.progress:
            self.progress.running.pop(-100 - m.index, None)
            # as a confirmation is told (progress.confirmed): only a finished training shows a plain val
            what = (f": val {rec.val_acc:.4f}" if rec.status is Status.OK else f" {rec.status}: {rec.reason}"
                    + (f" (val {rec.val_acc:.4f} so far, not counted)" if rec.val_acc is not None else ""))
            self.progress.note(f"audit: random member {m.index + 1} (seed {job.seed + 1}){what}")

    def retry(self, key: str, reason: str):
        r = self.running.get(key)
        if r is not None:
            r.epochs = []

    def abandon(self, key: str):
        self.running.pop(key, None)


class Together(TrialSource):
    """Two TrialSources run by one executor: each proposal comes from the source whose next job
    has the lowest seed index, so every pick and every member gets its first seed before any gets
    a second; within a seed index they take turns (the first source first), so that a time budget
    that ends the stage early leaves the best picks and some members trained, not only picks."""

    def __init__(self, *sources):
        self.sources = [x for x in sources if x is not None]
        self.owner: dict[str, TrialSource] = {}
        self._next: TrialSource | None = None
        self.turns: dict = {}                          # (source, seed index) -> proposals made

    @property
    def running(self) -> dict:
        return {k: v for src in self.sources for k, v in src.running.items()}

    @property
    def exhausted(self) -> bool:
        return all(src.exhausted or src.stop_reason for src in self.sources)

    @property
    def stop_reason(self):
        return next((src.stop_reason for src in self.sources if src.stop_reason), None)

    @property
    def fatal(self):
        return next((src.fatal for src in self.sources if src.fatal), None)

    @fatal.setter
    def fatal(self, e):
        self.sources[0].fatal = e

    @property
    def deadline(self):
        return self.sources[0].deadline

    @property
    def jobs(self) -> list:
        return [j for src in self.sources for j in src.jobs]

    def propose(self):
        def seed(src):
            return src.jobs[0].seed if src.jobs else math.inf

        def order(i_src):
            i, src = i_src
            return seed(src), self.turns.get((i, seed(src)), 0), i
        for i, src in sorted(enumerate(self.sources), key=order):
            k = seed(src)
            p = src.propose()
            if p is not None:
                self._next = src
                self.turns[(i, k)] = self.turns.get((i, k), 0) + 1
                return p
        return None

    def dispatch(self, key: str, proposal) -> dict:
        self.owner[key] = self._next
        return self._next.dispatch(key, proposal)

    def epoch(self, key: str, result: dict):
        if key in self.owner:
            self.owner[key].epoch(key, result)

    def complete(self, key: str, result: dict | None, error: str | None = None):
        src = self.owner.pop(key, None)
        if src is not None:
            src.complete(key, result, error)

    def save_weights(self, key: str, blob: bytes):
        if key in self.owner:
            self.owner[key].save_weights(key, blob)

    def retry(self, key: str, reason: str):
        if key in self.owner:
            self.owner[key].retry(key, reason)

    def abandon(self, key: str):
        src = self.owner.pop(key, None)
        if src is not None:
            src.abandon(key)


def audit_stage(s, folder: RunFolder, space, budget, data_shape, classes, rows: dict, fidelity: dict,
                deadline, progress=None, seconds: list | None = None) -> AuditLoop | None:
    """The audit's TrialSource for a run (None when --audit is 0 or no member can be drawn)."""
    if not s.audit or not s.confirm:
        return None
    members = draw_members(space, budget, s, data_shape, classes, s.audit)
    if not members:
        if progress:
            progress.note("audit: no random in-budget member could be drawn; the run is not audited")
        return None
    return AuditLoop(s, folder, members, folder.audits(), rows, fidelity, deadline, progress, seconds)


# ------------------------------------------------------------------ what the audit says
def audit_info(folder: RunFolder, winner: int | None) -> dict:
    """best.json's "audit": the winner's confirmed accuracy against the members', per seed index."""
    try:
        audits = [a for a in folder.audits() if a.status is Status.OK and a.val_acc is not None]
        cfg = folder.read_json("config.json", {}) or {}
    except Exception:  # noqa: BLE001 - a damaged audit.jsonl: the run's results stand without it
        return {}
    requested = cfg.get("audit") if isinstance(cfg, dict) and cfg.get("confirm") else 0
    if not audits:
        return {"audit": {"members": 0, "requested": requested}} if requested and winner is not None else {}
    members = sorted({a.member for a in audits})
    out = {"members": len(members),
           "member_accs": {str(m): [a.val_acc for a in sorted(audits, key=lambda a: a.seed) if a.member == m]
                           for m in members},
           "member_costs": {str(a.member): {"macs": a.target.macs, "params": a.target.params} if a.target else None
                            for a in audits}}
    if winner is None:
        return {"audit": out}
    conf = {c.seed: c.val_acc for c in folder.confirmations()
            if c.trial == winner and c.status is Status.OK and c.val_acc is not None}
    diffs, per_seed = [], []
    for k in sorted(conf):
        accs = [a.val_acc for a in audits if a.seed == k]
        if accs:
            d = conf[k] - statistics.mean(accs)
            diffs.append(d)
            per_seed.append({"seed": k, "winner": conf[k], "members_mean": statistics.mean(accs), "members": len(accs),
                             "diff": d})
    out.update(winner=winner, per_seed=per_seed)
    if diffs:
        mean = statistics.mean(diffs)
        std = statistics.stdev(diffs) if len(diffs) > 1 else None
        out.update(diff_pp=100 * mean, std_pp=None if std is None else 100 * std, seeds=len(diffs),
                   verdict=verdict(mean, std))
    return {"audit": out}


def verdict(mean: float, std: float | None) -> str:
    if mean <= 0:
        return "the winner does not beat the random members"
    if std is None:
        return "the winner is ahead on one seed only: too few seeds to say it beats them"
    if mean - std <= 0:
        return "the winner is ahead by less than the seeds' spread: not distinguishable from the random members"
    return "the winner beats the random members by more than the seeds' spread"


def audit_line(info: dict) -> str | None:
    """The summary's line: 'winner vs random members: +x pp (mean ± std over n seeds)' and what it means."""
    a = (info or {}).get("audit")
    if not a:
        return None
    if not a.get("members"):
        return (f"winner vs random members: not measured — none of the {a.get('requested')} random members "
                "finished training before the time budget ended the confirmation stage (a longer --time-budget, "
                "or --confirm 2, leaves them time)")
    if "diff_pp" not in a:
        return (f"winner vs random members: not measured — the winner has no finished confirmation at the "
                f"members' seeds ({a['members']} member(s) trained)")
    spread = "" if a.get("std_pp") is None else f" ± {a['std_pp']:.2f}"
    seeds = f"{a['seeds']} seed{'s' if a['seeds'] != 1 else ''}"
    return (f"winner vs random members: {a['diff_pp']:+.2f}{spread} pp (mean{' ± std' if spread else ''} over "
            f"{seeds}; {a['members']} random in-budget member{'s' if a['members'] != 1 else ''}, trained as the "
            f"winner's confirmation) — {a['verdict']}")
