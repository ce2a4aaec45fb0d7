"""REINFORCE with an LSTM policy: the RL controller of Zoph & Le (2017) and NASNet (2018).

The policy is define-by-run like the spaces: each decision the space asks is
one LSTM step. The step's input is the embedding of the previous choice (a
learned start vector for the first); its output goes through a head made for
that decision (created the first time the decision is seen, keyed by its name
and number of options) and a softmax over the decision's options, shaped as in
ENAS: `tanh_c * tanh(logits / temperature)`. Decisions with many values are
discretized: floats into `bins` bin centres (log-spaced for log floats), ints
with more than `max_options` values into that many evenly spaced values.

Reward: the trial's reward (validation accuracy), or for `objective="soft"`
MnasNet's soft constraint ACC * (MACs / T) ** w, with T = `target_macs` (or
`budget`) and w = -0.07 by default; MACs come from `result.metrics["macs"]`,
or the analytic cost of the trial's target genotype. Under a latency budget
(`budget.latency_ms`, or `target_ms`) it is MnasNet's own form, ACC * (LAT / T) ** w,
with LAT the trial's predicted latency (`result.metrics["latency_ms"]`).

Learning: an exponential-moving-average baseline (`baseline_decay`), the
advantage divided by a running standard deviation (`normalize`, so that `lr`
and `entropy` mean the same for rewards of any scale), an entropy bonus, Adam.
Updates happen as trials are told, in any order, every `batch` told trials
(1 by default: each worker's result updates the policy when it arrives, as the
asynchronous workers of NASNet did). A trial is re-scored under the current
policy from its stored decisions, so nothing but the trial itself is kept
between ask and tell, and a trial replayed after a resume can be told too.

Failures: a trial rejected as over budget (status rejected, reward None)
is penalised with `over_budget_reward` (default 0.0, the worst accuracy), so
the policy learns to leave over-budget regions; any other failure (a crash, a
diverged loss) says little about the architecture and is skipped, unless
`failed_reward` is set.

State: the LSTM, heads and embeddings as nested lists of floats, Adam's moment
estimates and step counts, the baseline, the Python RNG that samples actions.
All JSON; a resumed controller proposes exactly what the original would have.
"""
from __future__ import annotations

import math

from ..errors import NastyError
from ..space import Decision, Trial
from ..search.record import Status
from .base import Controller, Result, check_objective
from .values import ReplayTrial, budget_macs, encode_values



def discretize(d: Decision, bins: int = 8, max_options: int = 64) -> tuple:
    """The finite values the policy chooses among for decision `d`."""
    if d.kind == "choice":
        return d.choices
    if d.kind == "int":
        n = (int(d.high) - int(d.low)) // d.step + 1
        if n <= max_options:
            return d.options()
        vals = sorted({int(d.low) + d.step * round(i * (n - 1) / (max_options - 1)) for i in range(max_options)})
        return tuple(vals)
    lo, hi = float(d.low), float(d.high)
    if d.log:
        a, b = math.log(lo), math.log(hi)
        return tuple(min(hi, max(lo, math.exp(a + (b - a) * (i + 0.5) / bins))) for i in range(bins))
    return tuple(lo + (hi - lo) * (i + 0.5) / bins for i in range(bins))


def index_of(d: Decision, opts: tuple, v) -> int:
    """Index of value `v` among `opts` (exact for choices, nearest for numbers)."""
    if d.kind == "choice":
        return d.index(v)
    if d.kind == "float" and d.log and v > 0:
        return min(range(len(opts)), key=lambda i: abs(math.log(opts[i]) - math.log(v)))
    return min(range(len(opts)), key=lambda i: abs(opts[i] - v))


class _OneThread:
    """Run the tiny policy on one thread: on a shared CPU, more threads only add contention
    (measured here: 25 ms per update on one thread, 480 ms on two under load)."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        self.n = self.torch.get_num_threads()
        if self.n != 1:
            self.torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.n != 1:
            self.torch.set_num_threads(self.n)


class PolicyTrial(Trial):
    """A trial whose decisions the controller's LSTM samples, one step per decision."""

    def __init__(self, controller):
        super().__init__()
        self.controller = controller
        self.carry = None          # (input, (h, c)) after the last step

    def decide(self, d):
        return self.controller._sample(self, d)


class ReinforceController(Controller):
    name = "reinforce"
    # the options' ranges (checked before a search starts; controllers.check_option_types)
    OPTION_RANGES = {"hidden": "[1, 4096]", "lr": "(0, 10]", "entropy": "[0, 100]", "baseline_decay": "[0, 1)",
                     "temperature": "(0, 1000]", "tanh_c": "[0, 1000]", "bins": "[1, 4096]", "max_options": "[2, 4096]",
                     "batch": "[1, 10000]", "target_macs": "(0, 1e18]", "w": "[-10, 10]",
                     "over_budget_reward": "[-10, 10]", "target_ms": "(0, 1e7]", "failed_reward": "[-10, 10]"}

    def __init__(self, space, seed: int = 0, hidden: int = 64, lr: float = 0.01,
                 entropy: float = 0.01, baseline_decay: float = 0.9, temperature: float = 5.0,
                 tanh_c: float = 2.5, bins: int = 8, max_options: int = 64, batch: int = 1,
                 normalize: bool = True, objective: str | None = None, target_macs: float | None = None,
                 w: float = -0.07, budget=None, over_budget_reward: float | None = 0.0,
                 target_ms: float | None = None,
                 failed_reward: float | None = None, **options):
        super().__init__(space, seed)
        import torch
        from torch import nn
        self.torch, self.nn = torch, nn
        check_objective(self.name, objective, also=("soft",), error=NastyError,
                        hint="use accuracy (default) or 'soft' (MnasNet's ACC*(MACs/T)^w); 'pareto' needs "
                             "--controller tpe or nsga2")
        self.soft_ms = None                       # T of the latency form of the soft objective
        if objective == "soft" and target_macs is None:
            self.soft_ms = target_ms if target_ms is not None else getattr(budget, "latency_ms", None)
            if self.soft_ms is not None and (not isinstance(self.soft_ms, (int, float)) or self.soft_ms <= 0):
                raise NastyError(f"reinforce: target_ms must be a positive number of milliseconds, got {self.soft_ms!r}")
        if objective == "soft" and self.soft_ms is None:
            target_macs = target_macs if target_macs is not None else budget_macs(budget)
            if not isinstance(target_macs, (int, float)) or target_macs <= 0:
                raise NastyError("reinforce: objective 'soft' needs a target T in MACs (target_macs or a "
                                 "MACs budget), e.g. --budget 600M")
        for k, v in (("hidden", hidden), ("bins", bins), ("batch", batch)):
            if int(v) < 1:
                raise NastyError(f"reinforce: {k} must be at least 1, got {v}")
        if int(max_options) < 2:
            raise NastyError(f"reinforce: max_options must be at least 2, got {max_options}")
        if lr <= 0:
            raise NastyError(f"reinforce: lr must be positive, got {lr}")
        if not 0 <= baseline_decay < 1:
            raise NastyError(f"reinforce: baseline_decay must be in [0, 1), got {baseline_decay}")
        self.hidden, self.lr, self.entropy_w = int(hidden), float(lr), float(entropy)
        self.decay, self.temperature, self.tanh_c = float(baseline_decay), float(temperature), float(tanh_c)
        self.bins, self.max_options, self.batch = int(bins), int(max_options), int(batch)
        self.normalize, self.objective = bool(normalize), objective
        self.target_macs, self.w = target_macs, float(w)
        self.over_budget_reward, self.failed_reward = over_budget_reward, failed_reward
        self.baseline: float | None = None
        self.var: float | None = None
        self.told = self.skipped = self.updates = 0
        self.pending: list[tuple] = []            # (trial, advantage) waiting for a full batch
        self.heads: list[list] = []               # [[decision name, n options], ...] in creation order
        self._head_index: dict[tuple, int] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.lstm = nn.LSTMCell(self.hidden, self.hidden)
            self.start = nn.Parameter(torch.zeros(1, self.hidden))
        self.out = nn.ModuleList()                # head i: Linear(hidden, n_i)
        self.emb = nn.ModuleList()                # embedding i: Embedding(n_i, hidden)
        self.opt = torch.optim.Adam([*self.lstm.parameters(), self.start], lr=self.lr)

    # ------------------------------------------------------------ policy
    def _head(self, d: Decision):
        opts = discretize(d, self.bins, self.max_options)
        key = (d.name, len(opts))
        i = self._head_index.get(key)
        if i is None:
            i = self._add_head(d.name, len(opts))
        return i, opts

    def _add_head(self, name: str, n: int) -> int:
        torch, nn = self.torch, self.nn
        i = len(self.heads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + i + 1)
            self.out.append(nn.Linear(self.hidden, n))
            self.emb.append(nn.Embedding(n, self.hidden))
        self.heads.append([name, n])
        self._head_index[(name, n)] = i
        self.opt.add_param_group({"params": [*self.out[i].parameters(), *self.emb[i].parameters()]})
        return i

    def _step(self, carry, i):
        torch = self.torch
        x, hc = carry if carry is not None else (self.start, None)
        h, c = self.lstm(x, hc)
        logits = self.out[i](h)[0] / self.temperature
        if self.tanh_c:
            logits = self.tanh_c * torch.tanh(logits)
        return logits, (h, c)

    def _sample(self, trial: PolicyTrial, d: Decision):
        torch = self.torch
        with torch.no_grad(), _OneThread(torch):
            i, opts = self._head(d)
            logits, hc = self._step(trial.carry, i)
            probs = torch.softmax(logits.double(), 0).tolist()
            u, acc, k = self.rng.random(), 0.0, len(probs) - 1
            for j, p in enumerate(probs):
                acc += p
                if u < acc:
                    k = j
                    break
            trial.carry = (self.emb[i](torch.tensor([k])), hc)
        return opts[k]

    def _score(self, trial: Trial):
        """(log-probability, entropy) of `trial`'s decisions under the current policy, with grad."""
        torch = self.torch
        carry, logp, ent = None, 0.0, 0.0
        for d in trial.asked:
            i, opts = self._head(d)
            logits, hc = self._step(carry, i)
            k = index_of(d, opts, trial.values[d.name])
            ls = torch.log_softmax(logits, 0)
            logp = logp + ls[k]
            ent = ent - (ls.exp() * ls).sum()
            carry = (self.emb[i](torch.tensor([k])), hc)
        return logp, ent

    def probability(self, values: dict) -> float:
        """The policy's probability of proposing exactly `values` (decisions replayed through the space)."""
        t = ReplayTrial(values)
        self.space.genotype(t)
        with self.torch.no_grad(), _OneThread(self.torch):
            logp, _ = self._score(t)
        return math.exp(float(logp))

    # ------------------------------------------------------------ protocol
    def ask(self) -> Trial:
        return PolicyTrial(self)

    def _reward(self, trial: Trial, result: Result):
        if result.reward is None:
            if result.status is Status.REJECTED:
                return self.over_budget_reward
            return self.failed_reward
        r = float(result.reward)
        if self.objective == "soft" and self.soft_ms is not None:
            lat = result.metrics.get("latency_ms")
            if lat is None:
                return None                       # no latency known: not told (a record from before the budget)
            return r * (max(float(lat), 1e-6) / float(self.soft_ms)) ** self.w
        if self.objective == "soft":
            macs = result.metrics.get("macs")
            if macs is None:
                macs = self.target_macs(trial)
            r = r * (max(float(macs), 1.0) / float(self.target_macs)) ** self.w
        return r

    def tell(self, trial: Trial, result: Result) -> None:
        r = self._reward(trial, result)
        if r is None or not trial.asked:
            self.skipped += 1
            return
        self.told += 1
        if self.baseline is None:
            self.baseline = r
        adv = r - self.baseline
        if self.normalize:
            self.var = adv * adv if self.var is None else self.decay * self.var + (1 - self.decay) * adv * adv
            adv = max(-5.0, min(5.0, adv / (math.sqrt(self.var) + 1e-12))) if self.var > 0 else 0.0
        self.baseline = self.decay * self.baseline + (1 - self.decay) * r
        self.pending.append((trial, adv))
        if len(self.pending) >= self.batch:
            with _OneThread(self.torch):
                self._update()

    def _update(self):
        loss = 0.0
        for trial, adv in self.pending:
            logp, ent = self._score(trial)
            loss = loss - adv * logp - self.entropy_w * ent
        loss = loss / len(self.pending)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.pending = []
        self.updates += 1

    # ------------------------------------------------------------ state
    def _modules(self):
        return {"lstm": self.lstm, "out": self.out, "emb": self.emb}

    def state_dict(self) -> dict:
        params = {"start": self.start.detach().tolist()}
        for prefix, m in self._modules().items():
            for k, v in m.state_dict().items():
                params[f"{prefix}.{k}"] = v.detach().tolist()
        osd = self.opt.state_dict()
        optim = {"state": {str(k): {n: (t.tolist() if hasattr(t, "tolist") else t) for n, t in s.items()}
                           for k, s in osd["state"].items()},
                 "param_groups": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
                                  for g in osd["param_groups"]]}
        return {**super().state_dict(), "baseline": self.baseline,
                "var": self.var, "told": self.told, "skipped": self.skipped, "updates": self.updates,
                "heads": [list(h) for h in self.heads], "params": params, "optimizer": optim,
                "pending": [[encode_values(t), a] for t, a in self.pending]}

    def load_state_dict(self, state: dict) -> None:
        torch = self.torch
        super().load_state_dict(state)
        self.baseline, self.var = state["baseline"], state["var"]
        self.told, self.skipped, self.updates = state["told"], state["skipped"], state["updates"]
        # rebuild the heads in creation order, then the optimizer with the same parameter groups
        self.heads, self._head_index = [], {}
        self.out, self.emb = self.nn.ModuleList(), self.nn.ModuleList()
        self.opt = torch.optim.Adam([*self.lstm.parameters(), self.start], lr=self.lr)
        for name, n in state["heads"]:
            self._add_head(name, int(n))
        p = state["params"]
        with torch.no_grad():
            self.start.copy_(torch.tensor(p["start"]))
            for prefix, m in self._modules().items():
                m.load_state_dict({k: torch.tensor(p[f"{prefix}.{k}"]) for k in m.state_dict()})
        o = state["optimizer"]
        self.opt.load_state_dict({
            "state": {int(k): {n: (torch.tensor(v) if isinstance(v, (list, float, int)) else v)
                               for n, v in s.items()} for k, s in o["state"].items()},
            "param_groups": [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
                             for g in o["param_groups"]]})
        self.pending = []
        for enc, adv in state.get("pending", []):
            t = ReplayTrial(enc)
            self.space.genotype(t)
            self.pending.append((t, float(adv)))
