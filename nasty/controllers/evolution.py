"""Regularized evolution (Real et al. 2019, AmoebaNet), asynchronous.

- The first `population` trials asked are uniformly random.
- Then each ask samples `sample` members of the population uniformly, takes
  the best as parent and mutates exactly one of its decisions (an op, an input,
  a depth...): the child gets a different value of that decision and keeps all
  others. Decisions that only exist in the child (a conditional decision that
  appears because of the change) are drawn at random; those that disappear are
  dropped.
- Each told trial joins the population; when it grows beyond `population`, the
  OLDEST member dies (aging, the "regularized" part), whatever its reward.
- A trial a screen discards (`discard`) does not count as asked, so with a screen the
  random start is `population` kept trials, each the best-scored of its candidates.

With a screen (`--screen`), the first population is the best-scored `population` of the
first screened round (a zero-cost warm-up), and each round's children are screened.

Trials may be told in any order and in any number at once, as parallel
workers finish. A trial told with reward None (failed, or rejected as over
budget before training) does not join the population: it has no fitness, and
the budget check already keeps such children from training.
"""
from __future__ import annotations

from ..errors import NastyError
from ..space import RandomTrial, Trial, sample_uniform
from .base import Controller, Result, check_objective
from .values import decode_value, encode_values, mutable_names


class MutantTrial(Trial):
    """A parent's decisions with exactly one (`target`) changed."""

    def __init__(self, parent: dict, target: str | None, rng):
        super().__init__()
        self.parent, self.target, self.rng = parent, target, rng

    def decide(self, d):
        old = None
        have = d.name in self.parent
        if have:
            try:
                old = decode_value(d, self.parent[d.name])
            except Exception:
                have = False
        if not have:
            return sample_uniform(d, self.rng)          # a decision the parent did not have
        if d.name != self.target:
            return old
        if d.kind == "float" or (d.kind == "int" and d.size() > 64):     # draw, never list a long range
            for _ in range(100):
                v = sample_uniform(d, self.rng)
                if v != old:
                    return v
            return old
        opts = d.options()
        others = [o for i, o in enumerate(opts) if i != d.index(old)]
        return self.rng.choice(others) if others else old


class EvolutionController(Controller):
    """Regularized evolution: population P, tournament sample S, one-decision mutation, aging."""
    name = "evolution"
    # the options' ranges (checked before a search starts; controllers.check_option_types)
    OPTION_RANGES = {"population": "[2, 100000]", "sample": "[1, 100000]"}

    def __init__(self, space, seed: int = 0, population: int = 20, sample: int = 5,
                 objective: str | None = None, **options):
        super().__init__(space, seed)
        check_objective(self.name, objective, error=NastyError)
        if int(population) < 2:
            raise NastyError(f"evolution: population must be at least 2, got {population}")
        if not 1 <= int(sample) <= int(population):
            raise NastyError(f"evolution: sample must be between 1 and the population ({population}), "
                             f"got {sample}")
        self.P, self.S = int(population), int(sample)
        self.population: list[dict] = []     # oldest first: {"values", "reward", "mutable"}
        self.asked = 0

    def ask(self) -> Trial:
        self.asked += 1
        if self.asked <= self.P or not self.population:
            return RandomTrial(self.rng)
        pool = self.rng.sample(range(len(self.population)), min(self.S, len(self.population)))
        parent = self.population[max(pool, key=lambda i: (self.population[i]["reward"], -i))]
        target = self.rng.choice(parent["mutable"]) if parent["mutable"] else None
        return MutantTrial(parent["values"], target, self.rng)

    def screen_keep(self) -> int:
        """Screened (nasty/search/screen.py): the first round's best-scored `population` candidates
        are all trained, so that evolution starts from the best-scored population (zero-cost warm-up)."""
        return self.P if self.asked == 0 else 0

    def tell(self, trial: Trial, result: Result) -> None:
        if result.reward is None:
            return
        self.population.append({"values": encode_values(trial), "reward": float(result.reward),
                                "mutable": mutable_names(trial)})
        while len(self.population) > self.P:
            self.population.pop(0)

    def discard(self, trial: Trial) -> None:
        """A screened-out trial is not counted as asked, so the random start is made of the
        trials a screen keeps: with a screen that discards each loser as soon as a better
        candidate comes (nasty/nasbench/simulate.py), the first population - 1 members are each
        the best-scored of K random candidates (zero-cost warm-up; the last round of the start
        mixes one random candidate with mutants, as the round's best so far is still
        outstanding), and children are screened the same way."""
        self.asked = max(0, self.asked - 1)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "asked": self.asked, "population_size": self.P, "sample": self.S,
                "population": [dict(m) for m in self.population]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.asked = int(state["asked"])
        self.population = [{"values": dict(m["values"]), "reward": float(m["reward"]),
                            "mutable": list(m["mutable"])} for m in state["population"]]
