"""Optuna's TPE (and NSGA-II) behind the controller protocol, via ask-and-tell.

Each define-by-run decision becomes a suggest call on an Optuna trial:
`choice` -> suggest_categorical (the values themselves when they are JSON
primitives, else their indices), `int` -> suggest_int(step=...), `float` ->
suggest_float(log=...). Optuna refuses a parameter name whose choices change
between trials; when a conditional decision is asked with other options than
the first time, the parameter is named `name@<hash of its options>`.

- `storage`: a path (`runs/x/study.db`) or an `sqlite:///` URL. The study then
  lives in SQLite, where `optuna-dashboard sqlite:///runs/x/study.db` can open
  it, and resume reopens it. Without storage the study is in memory and the
  state_dict carries its finished trials instead.
- Hard budgets: every trial gets a constraint value (<= 0 feasible), passed to
  the sampler's `constraints_func`. It is `result.metrics["constraint"]` when
  given (e.g. macs / budget - 1), else computed from metrics["macs"] and the
  `budget` option, else 0. A trial rejected as over budget (reward None,
  status rejected) is told as complete with accuracy `over_budget_value`
  (0.0) and a positive constraint, so the sampler learns where the budget ends;
  other failures are told as FAIL, which TPE ignores.
- `objective="pareto"`: two objectives, validation accuracy (max) and target
  MACs (min), by multi-objective TPE (`tpe`) or NSGA-II (`nsga2`); under a
  latency budget (`budget.latency_ms`) the second is the predicted latency
  (`metrics["latency_ms"]`): the accuracy-latency front.
- `multivariate=True` by default (Optuna's default is False): on our benchmark
  (benchmarks/nasbench) independent TPE re-proposed an already-evaluated cell in
  58% of its trials and did worse than random search at 100 trials; multivariate
  TPE, which models the decisions jointly, repeated 24% and beat random
  (regret 0.27 vs 0.39 pp). This default was chosen on that benchmark.
- The samplers' NumPy random states are saved in the state_dict, so a resumed
  search proposes what the uninterrupted one would have (this reaches into
  Optuna's private `_rng` attributes; if a future Optuna moves them, resume still
  works but is no longer bit-identical).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import NastyError, RunError
from ..space import Trial
from ..search.record import Status
from ..search.study import ParamNames, storage_url
from .base import Controller, Result, check_objective
from .values import budget_macs



class OptunaTrial(Trial):
    """A nasty trial whose decisions come from an Optuna trial's suggest calls."""

    def __init__(self, controller, optuna_trial):
        super().__init__()
        self.controller, self.optuna_trial = controller, optuna_trial

    def decide(self, d):
        name, dist, by_index = self.controller.names.param(d)
        ot = self.optuna_trial
        if d.kind == "choice":
            v = ot.suggest_categorical(name, dist.choices)
        elif d.kind == "int":
            v = ot.suggest_int(name, dist.low, dist.high, step=dist.step)
        else:
            v = ot.suggest_float(name, dist.low, dist.high, log=dist.log)
        if by_index:
            return d.choices[int(v)]
        if d.kind == "int":
            return int(v)
        if d.kind == "choice":       # Optuna may hand back an equal value of another type (1.0 for 1)
            return d.choices[d.index(v)]
        return float(v)


class TPEController(Controller):
    name = "tpe"
    # the options' ranges (checked before a search starts; controllers.check_option_types)
    OPTION_RANGES = {"n_startup_trials": "[0, 100000]", "population_size": "[2, 100000]",
                     "over_budget_value": "[-10, 10]"}

    def __init__(self, space, seed: int = 0, storage=None, study_name: str = "nasty",
                 objective: str | None = None, budget=None, n_startup_trials: int = 10,
                 multivariate: bool = True, population_size: int = 20,
                 over_budget_value: float = 0.0, **options):
        super().__init__(space, seed)
        import optuna
        self.optuna = optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        check_objective(self.name, objective, also=("pareto",), error=NastyError,
                        hint="use accuracy (default) or 'pareto' (accuracy vs target MACs)")
        self.budget_obj = budget if hasattr(budget, "excess") else None
        budget = budget_macs(budget)
        if budget is not None and budget <= 0:
            raise NastyError(f"{self.name}: budget must be a positive number of MACs, got {budget!r}")
        self.pareto = objective == "pareto"
        self.latency = getattr(self.budget_obj, "latency_ms", None) is not None    # the front is accuracy-latency
        self.budget, self.over_budget_value = budget, float(over_budget_value)
        self.storage, self.study_name = storage, str(study_name)
        self.n_startup_trials, self.multivariate = int(n_startup_trials), bool(multivariate)
        self.population_size = int(population_size)
        self.names = ParamNames()                # Optuna parameter names of the decisions
        self.memory_trials: list[dict] = []      # finished trials, kept only for in-memory studies
        self.sampler = self._make_sampler()
        self.study = self._open_study()

    # ------------------------------------------------------------ optuna objects
    def _constraints(self, frozen):
        return [float(frozen.user_attrs.get("constraint", 0.0))]

    def _make_sampler(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.optuna.samplers.TPESampler(
                seed=self.seed, n_startup_trials=self.n_startup_trials, multivariate=self.multivariate,
                constraints_func=self._constraints)

    def _open_study(self):
        directions = ["maximize", "minimize"] if self.pareto else ["maximize"]
        url = storage_url(self.storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                study = self.optuna.create_study(storage=url, study_name=self.study_name, sampler=self.sampler,
                                                 directions=directions, load_if_exists=True)
            except Exception as e:  # a corrupt file, or a study of other directions
                raise RunError(f"{self.name}: cannot open study {self.study_name!r} in {self.storage}: "
                               f"{type(e).__name__}: {e}") from None
        if [str(x.name).lower() for x in study.directions] != directions:
            raise RunError(f"{self.name}: study {self.study_name!r} in {self.storage} optimises "
                           f"{len(study.directions)} objective(s); this search wants {len(directions)} "
                           f"(objective {'pareto' if self.pareto else 'accuracy'})")
        return study

    # ------------------------------------------------------------ protocol
    def ask(self) -> Trial:
        return OptunaTrial(self, self.study.ask())

    def _values(self, trial: Trial, result: Result):
        if result.reward is None:
            if result.status is not Status.REJECTED:
                return None
            acc = self.over_budget_value
        else:
            acc = float(result.reward)
        if not self.pareto:
            return [acc]
        if self.latency:
            lat = result.metrics.get("latency_ms")
            return None if lat is None else [acc, float(lat)]
        macs = result.metrics.get("macs")
        if macs is None:
            macs = self.target_macs(trial)
        return [acc, float(macs)]

    def _constraint(self, trial: Trial, result: Result) -> float:
        m = result.metrics
        if m.get("constraint") is not None:
            return float(m["constraint"])
        if self.budget_obj is not None and m.get("macs") is not None and m.get("params") is not None:
            from types import SimpleNamespace
            return float(self.budget_obj.excess(SimpleNamespace(macs=m["macs"], params=m["params"],
                                                                latency_ms=m.get("latency_ms")))) - 1.0
        if self.budget is not None and m.get("macs") is not None:
            return float(m["macs"]) / float(self.budget) - 1.0
        return 1.0 if result.status is Status.REJECTED else 0.0

    def tell(self, trial: Trial, result: Result) -> None:
        optuna = self.optuna
        values = self._values(trial, result)
        constraint = self._constraint(trial, result)
        attrs = result.metrics.get("attrs") or {}          # the run's record: trial number, status, costs
        # a trial a scheduler stopped early (ASHA, Hyperband) is a PRUNED trial with its per-epoch
        # curve as intermediate values: TPE then learns from low-fidelity results as BOHB does,
        # ranking them below the complete ones instead of mistaking them for full scores
        curve = list(result.metrics.get("curve") or [])
        pruned = bool(result.status in (Status.STOPPED, Status.TIMEOUT) and values is not None and curve
                      and not self.pareto)
        intermediate = {i: float(v) for i, v in enumerate(curve, 1)} if pruned else {}
        if isinstance(trial, OptunaTrial) and trial.controller is self:
            ot = trial.optuna_trial
            ot.set_user_attr("constraint", constraint)
            for k, v in attrs.items():
                ot.set_user_attr(k, v)
            if values is None:
                self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
            elif pruned:
                for step, v in intermediate.items():
                    ot.report(v, step)
                self.study.tell(ot, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(ot, values)
            params = {k: v for k, v in ot.params.items()}
            dists = {k: optuna.distributions.distribution_to_json(v) for k, v in ot.distributions.items()}
            system_attrs, number = {}, ot.number
            if self.storage is None:        # samplers keep state there (NSGA-II's generation)
                system_attrs = dict(self.study.get_trials(deepcopy=False)[ot.number].system_attrs)
        else:
            # a trial this controller did not issue (e.g. replayed after a resume): add it as finished
            params, dists_obj = self.names.params(trial.asked, trial.values)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ft = optuna.trial.create_trial(
                    params=params, distributions=dists_obj, values=None if pruned else values,
                    state=(optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
                           if values is not None else optuna.trial.TrialState.FAIL),
                    intermediate_values=intermediate or None, user_attrs={"constraint": constraint, **attrs})
                self.study.add_trial(ft)
            dists = {k: optuna.distributions.distribution_to_json(v) for k, v in dists_obj.items()}
            system_attrs, number = {}, len(self.study.get_trials(deepcopy=False)) - 1
        if self.storage is None:
            self.memory_trials.append({"number": number, "params": params, "distributions": dists,
                                       "values": None if pruned else values, "constraint": constraint,
                                       "system_attrs": system_attrs,
                                       **({"intermediate": list(intermediate.values())} if pruned else {})})

    def discard(self, trial: Trial) -> None:
        """A screened-out trial is closed as FAIL, which the samplers ignore (no RUNNING trial is
        left behind in the study)."""
        if isinstance(trial, OptunaTrial) and trial.controller is self:
            self.study.tell(trial.optuna_trial, state=self.optuna.trial.TrialState.FAIL)

    # ------------------------------------------------------------ state
    def _rng_objects(self):
        """The sampler's NumPy random states, by attribute path (private Optuna internals)."""
        from optuna.samplers._lazy_random_state import LazyRandomState
        found = {}

        def walk(obj, path, depth):
            for k, v in sorted(vars(obj).items()):
                if isinstance(v, LazyRandomState):
                    found[path + k] = v
                elif depth < 2 and hasattr(v, "__dict__") and type(v).__module__.startswith("optuna.samplers"):
                    walk(v, path + k + ".", depth + 1)
        try:
            walk(self.sampler, "", 0)
        except Exception:
            return {}
        return found

    def state_dict(self) -> dict:
        rngs = {}
        for path, lazy in self._rng_objects().items():
            name, keys, pos, has_gauss, cached = lazy.rng.get_state()
            rngs[path] = [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
        return {**super().state_dict(), "study_name": self.study_name,
                "storage": None if self.storage is None else str(self.storage),
                "objective": "pareto" if self.pareto else "accuracy", "dists": dict(self.names.first),
                "sampler_rngs": rngs, "trials": list(self.memory_trials) if self.storage is None else None,
                "study_system_attrs": (dict(self.study._storage.get_study_system_attrs(self.study._study_id))
                                       if self.storage is None else None)}

    def load_state_dict(self, state: dict) -> None:
        import numpy as np
        optuna = self.optuna
        if state.get("objective", "accuracy") != ("pareto" if self.pareto else "accuracy"):
            raise RunError(f"{self.name}: the saved search used objective {state.get('objective')!r}; "
                           "resume it with the same --objective")
        super().load_state_dict(state)
        self.names = ParamNames(state.get("dists", {}))
        if state.get("storage") is not None:
            # the study where the run folder is now (the folder may have moved since it was saved)
            storage = self.storage if self.storage is not None else state["storage"]
            url = storage_url(storage)
            if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
                raise RunError(f"{self.name}: the study database {storage} is missing; cannot resume")
            self.storage, self.study_name = storage, state["study_name"]
            self.sampler = self._make_sampler()
            self.study = self._open_study()
            # trials asked but never told died with the previous process
            for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
                self.study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        else:
            self.sampler = self._make_sampler()
            self.study = self._open_study()
            self.memory_trials = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # re-add in the order they were asked (trial numbers), as failed where a number
                # was asked but never told, so that the study looks as it did
                by_number = {t["number"]: t for t in state.get("trials") or []}
                for n in range(max(by_number, default=-1) + 1):
                    t = by_number.get(n)
                    if t is None:
                        self.study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
                        continue
                    dists = {k: optuna.distributions.json_to_distribution(v)
                             for k, v in t["distributions"].items()}
                    inter = {i: float(v) for i, v in enumerate(t.get("intermediate") or [], 1)}
                    ft = optuna.trial.create_trial(
                        params=t["params"], distributions=dists, values=t["values"],
                        state=(optuna.trial.TrialState.PRUNED if inter else optuna.trial.TrialState.COMPLETE
                               if t["values"] is not None else optuna.trial.TrialState.FAIL),
                        intermediate_values=inter or None, user_attrs={"constraint": t["constraint"]},
                        system_attrs=t.get("system_attrs") or {})
                    self.study.add_trial(ft)
                    self.memory_trials.append(dict(t))
            # samplers' caches (NSGA-II's parent populations, chosen with the RNG)
            for k, v in (state.get("study_system_attrs") or {}).items():
                self.study._storage.set_study_system_attr(self.study._study_id, k, v)
        objs = self._rng_objects()
        for path, s in (state.get("sampler_rngs") or {}).items():
            if path in objs:
                objs[path].rng.set_state((s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4]))

    # ------------------------------------------------------------ reporting
    def pareto_front(self) -> list[dict]:
        """Pareto-optimal finished trials (pareto objective): params, accuracy, MACs (or latency_ms
        under a latency budget)."""
        if not self.pareto:
            return []
        key = "latency_ms" if self.latency else "macs"
        return [{"params": t.params, "accuracy": t.values[0], key: t.values[1]}
                for t in self.study.best_trials]


class NSGA2Controller(TPEController):
    """NSGA-II (Deb et al. 2002) via Optuna: crossover and mutation over a population."""
    name = "nsga2"

    def _make_sampler(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.optuna.samplers.NSGAIISampler(
                seed=self.seed, population_size=self.population_size, constraints_func=self._constraints)
