"""The screen: score many in-budget candidates for almost nothing, train only the best.

A trained proxy costs a minute of CPU and ranks final accuracy at rho ~0.4; a zero-cost score or
the analytic size of a candidate costs a tenth of a second or less (nasty/scores). So before each
training round of a search (`--screen K`, default on):

    the controller proposes K in-budget candidates      (over-budget ones are rejected as always)
      -> each is scored on one batch of the training images (the --screen-score scores)
      -> ranked (one score, or the average of the scores' ranks; NaN/inf last)
      -> the best `keep` are trained (one per slot, or the controller's warm-up: evolution's
         first population); the others are recorded in trials.jsonl as `screened`, with their
         scores, and told to the controller

How each controller hears of a screened-out candidate: as a result with no reward and status
`screened`, the same as a failed trial. Random search ignores it (it is screened random search);
evolution gives it no fitness, so it never joins the population, and its first population is the
best-scored `population` of the first round (a zero-cost warm-up, as Abdelfattah et al. 2021
warm up evolution); TPE files it as a FAIL trial, which its sampler ignores, so TPE models only
what was trained; REINFORCE skips it (no reward), so its policy is updated on the trained samples
only - the screen's choices, not a sample of the policy, which biases its gradient towards what
the screen likes. No controller learns from the scores themselves.

A candidate whose proxy network was trained already (or chosen to train), or that repeats another
of its round, is screened out as a duplicate; one screened out before may be chosen in a later round.
Where --fit sets a width the proxy does not see (nasnet's F), a candidate is screened at the width it
was sampled with, or the narrowest one within budget when that was over it (so it is known to fit),
and only the candidates chosen to train are fitted: the fitting is a bisection of target builds,
most of the cost of a candidate. Screened-out records carry that width (`fitted` says so).
The screen's time is bounded: at most SHARE of --time-budget goes to screening; a round is cut to
half of what the measured seconds per candidate leave of that share, so later rounds screen fewer.
"""
from __future__ import annotations

import dataclasses
import math
import time

from .record import Status

SHARE = 0.2                 # at most this share of the time budget is spent screening


class Screen:
    """The screen stage of a SearchLoop (loop.screen): rounds of `k` candidates scored with
    `which` on `batch`, the best `slots` (or the controller's warm-up) trained."""

    def __init__(self, k: int, which: tuple, batch, slots: int, time_budget: float | None = None,
                 seed: int = 0, trained=()):
        self.k, self.which, self.batch, self.slots, self.seed = int(k), tuple(which), batch, max(1, slots), seed
        self.allowance = SHARE * time_budget if time_budget else None
        self.queue: list = []                 # Proposals chosen to train, best first
        self.seconds = 0.0                    # spent screening, rounds' wall time
        self.scored = 0                       # candidates scored in this process
        self.rounds = 0
        self.seen: set[str] = {t for t in trained if t}     # proxy genotypes trained or chosen to train

    # ------------------------------------------------------------ what the loop calls
    def propose(self, loop):
        """The loop's propose(): the next chosen candidate, screening a new round when none is left."""
        while True:
            if loop.should_stop():
                self.flush(loop, "chosen by the screen, but the search ended before it trained")
                return None
            if self.queue:
                return loop.number(loop.fit_deferred(self.queue.pop(0)))
            if not self.round(loop):
                loop.stop_reason = loop.stop_reason or ("every candidate of a screen round had been trained "
                                                        "already: the space looks exhausted")

    def flush(self, loop, reason: str):
        """Chosen candidates that will not train (the search ended): recorded as screened, told."""
        left, self.queue = self.queue, []
        out = [self._screen_out(loop, p, reason) for p in left]
        if left:
            loop.save_controller()
            if loop.study is not None:
                loop.study.screened(out)

    # ------------------------------------------------------------ a round
    def size(self, keep: int) -> int:
        """This round's K: --screen, cut so that a round takes at most half of what the screening share
        of the time budget still allows (at the measured seconds per candidate): the share is never
        exceeded, and later rounds still screen, fewer."""
        k = max(self.k, keep)
        if self.allowance is None or not self.scored:
            return k
        per = self.seconds / self.scored
        return max(keep, min(k, int((self.allowance - self.seconds) / 2 / max(per, 1e-6))))

    def round(self, loop) -> bool:
        """Ask, score and rank one round; queue the best. False when nothing new was found."""
        from ..scores import evaluate, order
        start = time.time()
        left = loop.s.trials - loop.done() - len(loop.running)
        keep = max(1, min(left, max(self.slots, int(loop.controller.screen_keep() or 0))))
        k = self.size(keep)
        self.rounds += 1
        progress = loop.progress
        cands = []
        # a round also stops asking once it has used half of what is left of the share (the first round
        # has no measured seconds per candidate to size it by: a slow controller, TPE on SQLite, is cut here)
        budget = (self.allowance - self.seconds) / 2 if self.allowance is not None else None
        while len(cands) < k and not (loop.stop_reason or loop.fatal or getattr(loop.controller, "finished", False)):
            if (loop.rejected_in_a_row >= loop.reject_limit()
                    or (loop.deadline and time.time() > loop.deadline)):
                break
            if budget is not None and len(cands) >= keep and time.time() - start > budget:
                break
            got = loop.sample(defer_fit=True)
            if got is not None:
                cands.append(got)
                # (only on a new candidate: the panel's count of over-budget samples in a row goes on)
                if progress and len(cands) % 10 == 0:
                    progress.started(-1, f"screen round {self.rounds}: {len(cands)}/{k} in-budget candidates")
        fresh, dups, here = [], [], set()
        for p, g in cands:
            key = p.record.proxy_genotype
            (dups if key in self.seen or key in here else fresh).append((p, g))
            here.add(key)
        scored = evaluate([g for _, g in fresh], self.batch, self.which, seed=self.seed, threads=1,
                          on_each=(lambda i, s: progress.started(-1, f"screen round {self.rounds}: scored "
                                                                     f"{i + 1}/{len(fresh)}")) if progress else None)
        best_first = order(scored, self.which) if scored else []
        by = ",".join(self.which)
        out = []                              # (line in trials.jsonl, record) of those screened out
        for rank, i in enumerate(best_first, 1):
            p, _ = fresh[i]
            s = scored[i]
            verdict = {"round": self.rounds, "rank": rank, "of": len(fresh), "by": by, "scores": dict(s.values)}
            if s.notes:
                verdict["notes"] = list(s.notes)
            p.record = dataclasses.replace(p.record, screen=verdict)
            if rank <= keep:
                self.queue.append(p)
                self.seen.add(p.record.proxy_genotype)
            else:
                out.append(self._screen_out(loop, p, f"screened out: rank {rank} of {len(fresh)} by {by}"))
        for p, _ in dups:
            p.record = dataclasses.replace(p.record, screen={"round": self.rounds, "by": by, "duplicate": True})
            out.append(self._screen_out(loop, p, "screened out: its proxy network was trained (or chosen) already"))
        loop.save_controller()
        if loop.study is not None and out:
            loop.study.screened(out)
        took = time.time() - start
        self.seconds += took
        self.scored += len(cands)
        if progress:
            progress.running.pop(-1, None)
            progress.note(f"screen round {self.rounds}: {len(cands)} in-budget candidates scored by {by} in "
                          f"{took:.1f} s; training the best {min(keep, len(fresh))}"
                          + (f" ({len(dups)} duplicates)" if dups else ""))
        return bool(fresh) or not cands

    def _screen_out(self, loop, p, reason: str):
        from ..controllers import Result
        rec = dataclasses.replace(p.record, status=Status.SCREENED, trial=None, reason=reason, genotype=None,
                                  proxy_genotype=None)
        metrics = {"macs": rec.target.macs, "params": rec.target.params} if rec.target else {}
        line = loop.lines
        loop._finish(rec, p.ctrl_trial, Result(None, Status.SCREENED, metrics), save=False)
        return line, rec


def make_screen(s, loop, data, train_idx, slots: int, records=()) -> Screen | None:
    """The screen of a search's SearchLoop (None when --screen is 0, or for a controller with a
    fixed plan of its own: the compound grid)."""
    if not s.screen or s.controller == "compound":
        return None
    from ..scores import DEFAULT_SCREEN, batch_of, names
    which = names(s.screen_score) if s.screen_score else DEFAULT_SCREEN
    batch = batch_of(data, seed=s.seed, rows=train_idx)
    return Screen(s.screen, which, batch, slots, s.time_budget, s.seed,
                  trained=[r.proxy_genotype for r in records if r.status.counted])


def screened_summary(records) -> str | None:
    """One line for the end-of-run summary: how many candidates the screen scored and trained."""
    screened = [r for r in records if r.status is Status.SCREENED]
    trained = [r for r in records if r.status.counted and r.screen]
    if not screened and not trained:
        return None
    by = next((r.screen.get("by") for r in trained + screened if r.screen and r.screen.get("by")), "?")
    rounds = max((r.screen.get("round", 0) for r in trained + screened if r.screen), default=0)
    return (f"screen: {len(screened) + len(trained)} in-budget candidates scored by {by} in {rounds} round(s); "
            f"{len(trained)} trained, {len(screened)} screened out (trials.jsonl, status screened)")


PLOT = "screen"                 # plots/screen.png and .svg


def screen_figure(records):
    """The figure of plots/screen (results.write_run_plots saves it): each screen score against the
    trained accuracy of the trials it let through (with their Spearman rho), over a strip of the
    scores of the candidates it screened out. None when the run was not screened."""
    from matplotlib.figure import Figure

    from ..stats import rank_agreement
    trained = [r for r in records if r.status.scored and r.val_acc is not None and r.screen and r.screen.get("scores")]
    out = [r for r in records if r.status is Status.SCREENED and r.screen and r.screen.get("scores")]
    if not trained and not out:
        return None
    by = next(((r.screen.get("by") or "").split(",") for r in trained + out if r.screen.get("by")), [])
    by = [w for w in by if w] or sorted((trained + out)[0].screen["scores"])
    fig = Figure(figsize=(4.2 * len(by) + 0.6, 4.6), dpi=110)
    grid = fig.add_gridspec(2, len(by), height_ratios=(5, 1), hspace=0.08, wspace=0.25,
                            left=0.09 if len(by) == 1 else 0.06, right=0.98, top=0.86, bottom=0.14)
    for j, w in enumerate(by):
        ax = fig.add_subplot(grid[0, j])
        strip = fig.add_subplot(grid[1, j], sharex=ax)
        pts = [(r.screen["scores"].get(w), r.val_acc) for r in trained if r.screen["scores"].get(w) is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22, color="tab:blue", label="trained")
        rho = rank_agreement([p[0] for p in pts], [p[1] for p in pts])[1] if len(pts) >= 3 else math.nan
        ax.set_title(f"{w}: rho {rho:.2f} over {len(pts)} trained" if rho == rho else f"{w} ({len(pts)} trained)",
                     fontsize=9)
        xs = [r.screen["scores"].get(w) for r in out if r.screen["scores"].get(w) is not None]
        ys = [0.15 + 0.7 * ((r.sample or 0) * 0.618034 % 1) for r in out if r.screen["scores"].get(w) is not None]
        strip.scatter(xs, ys, s=30, marker="|", color="tab:orange", alpha=0.6)
        strip.set_ylim(0, 1)
        strip.set_yticks([])
        strip.set_xlabel(f"{w} (higher ranks first)")
        ax.tick_params(labelbottom=False)
        ax.grid(alpha=0.3)
        strip.grid(alpha=0.3, axis="x")
        if j == 0:
            ax.set_ylabel("proxy validation accuracy")
            strip.set_ylabel("screened\nout", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"the screen: its scores against trained accuracy ({len(trained)} trained, {len(out)} screened "
                 "out, never trained)", fontsize=10, y=0.975)
    return fig
