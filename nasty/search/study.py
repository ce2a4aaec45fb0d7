"""The run as an Optuna study: runs/<name>/study.db (SQLite), one Optuna trial per record of
trials.jsonl, so Optuna's own tools open any run:

    study = optuna.load_study(study_name=None, storage="sqlite:///runs/NAME/study.db")
    optuna.visualization.plot_optimization_history(study)
    # optuna-dashboard sqlite:///runs/NAME/study.db

- params: the sample's decisions, with their distributions (a choice of non-JSON values,
  e.g. tuples, is its option index; a conditional decision whose options change between
  samples gets its own parameter `name@<hash>`, as Optuna refuses changing distributions);
- value: the validation accuracy (two values, accuracy and target MACs, for --objective pareto);
- user attributes: the nasty trial number, the record's line in trials.jsonl, the status, the
  target and proxy costs, the failure reason, and the screen's scores and rank (`score_naswot`,
  `screen_rank`, ...: every candidate the screen scored, trained or not);
- constraints (Optuna's feasibility, <= 0 feasible): target MACs / budget - 1 (and params).
  An over-budget sample is an infeasible COMPLETE trial: its value is a placeholder 0.0 that
  Optuna's best_trial, plots and dashboard leave out as infeasible; the constraint-aware
  samplers need it to learn where the budget ends. A failed trial is FAIL; a trial a scheduler
  stopped early (ASHA, Hyperband) is PRUNED with its per-epoch accuracies as intermediate values.
  The candidates the screen scored but did not train (status screened) are study user attributes,
  one list per screen round (`screen_round_0001`: record line, sample, rank, scores); with TPE
  they are also its own FAIL trials (it asked for them; its sampler ignores FAIL trials).

trials.jsonl stays the truth: the study is a view, written as records are appended, and
brought up to date from trials.jsonl on resume and by `nasty report`.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from ..space import Decision
from .record import Status, TrialRecord

STUDY_FILE = "study.db"
CONSTRAINTS_KEY = "constraints"      # the system attribute Optuna's samplers and best_trial read


def storage_url(storage) -> str | None:
    """An Optuna storage URL from a path (`runs/x/study.db`) or a URL."""
    if storage is None:
        return None
    s = str(storage)
    if "://" in s:
        return s
    from ..errors import NastyError
    p = Path(s)
    if p.parent and not p.parent.exists():
        raise NastyError(f"folder {str(p.parent)!r} for the study database does not exist")
    return f"sqlite:///{p.resolve()}"


def _primitive(v) -> bool:
    import math
    return isinstance(v, (type(None), bool, int, float, str)) and not (isinstance(v, float) and not math.isfinite(v))


def distribution(d: Decision):
    """(Optuna distribution, by_index) of a decision; by_index: the choices are not JSON values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    if d.kind == "choice":
        if all(_primitive(c) for c in d.choices) and len(set(map(repr, d.choices))) == len(d.choices):
            return CategoricalDistribution(list(d.choices)), False
        return CategoricalDistribution(list(range(len(d.choices)))), True
    if d.kind == "int":
        return IntDistribution(int(d.low), int(d.high), step=int(d.step)), False
    return FloatDistribution(float(d.low), float(d.high), log=bool(d.log)), False


class ParamNames:
    """Optuna parameter names for decisions: the decision's name, or `name@<hash>` when it is
    asked with other options than the first time (Optuna refuses a changing distribution)."""

    def __init__(self, first: dict | None = None):
        self.first: dict[str, str] = dict(first or {})     # name -> JSON of its first distribution

    def param(self, d: Decision):
        """(parameter name, distribution, by_index) of decision `d`."""
        from optuna.distributions import distribution_to_json
        dist, by_index = distribution(d)
        js = distribution_to_json(dist)
        first = self.first.setdefault(d.name, js)
        name = d.name if first == js else f"{d.name}@{hashlib.sha1(js.encode()).hexdigest()[:8]}"
        return name, dist, by_index

    def params(self, asked, values: dict):
        """({param name: Optuna value}, {param name: distribution}) of the decisions asked."""
        params, dists = {}, {}
        for d in asked:
            if d.name not in values:
                continue
            name, dist, by_index = self.param(d)
            v = values[d.name]
            params[name] = d.index(v) if by_index else v
            dists[name] = dist
        return params, dists


def constraints(target, budget) -> list[float]:
    """Optuna constraint values (<= 0 feasible) of a target cost under `budget` (a Budget)."""
    if target is None or budget is None:
        return []
    out = []
    if budget.macs is not None:
        out.append(target.macs / budget.macs - 1.0)
    if budget.params is not None:
        out.append(target.params / budget.params - 1.0)
    return out


def record_attrs(rec: TrialRecord, line: int) -> dict:
    """The user attributes of a record's Optuna trial."""
    attrs = {"nasty_trial": rec.trial, "record": line, "status": rec.status.value}
    if rec.target:
        attrs.update(target_macs=rec.target.macs, target_params=rec.target.params)
    if rec.proxy:
        attrs.update(proxy_macs=rec.proxy.macs, proxy_params=rec.proxy.params)
    if rec.reason:
        attrs["reason"] = rec.reason[:500]
    if rec.screen:                                  # the screen's verdict and scores (screen.py)
        attrs.update({f"screen_{k}": rec.screen[k] for k in ("round", "rank", "of", "by") if k in rec.screen})
        attrs.update({f"score_{k}": v for k, v in (rec.screen.get("scores") or {}).items()})
    return attrs


def values_of(rec: TrialRecord, pareto: bool):
    """The Optuna values of a record: None for a FAIL or PRUNED trial."""
    if rec.status in (Status.STOPPED, Status.TIMEOUT) and not pareto:
        return None                                 # PRUNED: its curve is in the intermediate values
    if rec.status is Status.REJECTED:
        acc = 0.0                                   # a placeholder: the trial is infeasible
    elif rec.status.scored and rec.val_acc is not None:
        acc = float(rec.val_acc)
    else:
        return None
    return [acc, float(rec.target.macs)] if pareto else [acc]


class StudyLog:
    """Writes a run's records into its Optuna study (see the module docstring)."""

    def __init__(self, path: Path, name: str, pareto: bool, budget, controller_writes: bool = False,
                 names: ParamNames | None = None):
        self.path, self.name, self.pareto, self.budget = Path(path), name, pareto, budget
        self.controller_writes = controller_writes      # tpe/nsga2: the controller's own trials are the record
        self.names = names or ParamNames()
        self.error: str | None = None                    # the study is behind trials.jsonl (see sync)
        self._study = None

    @property
    def study(self):
        if self._study is None:
            import optuna
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._study = optuna.create_study(
                    storage=storage_url(self.path), study_name=self.name, load_if_exists=True,
                    directions=["maximize", "minimize"] if self.pareto else ["maximize"])
        return self._study

    def add(self, rec: TrialRecord, line: int, asked=None):
        """Add one record (its decisions' Decisions in `asked`, or rebuilt from the space)."""
        import optuna
        values = values_of(rec, self.pareto)
        params, dists = self.names.params(asked or [], rec.decisions)
        pruned = values is None and rec.status in (Status.STOPPED, Status.TIMEOUT) and bool(rec.epochs)
        system = {}
        cons = constraints(rec.target, self.budget)
        if cons and (values is not None or pruned):
            system[CONSTRAINTS_KEY] = cons
        state = (optuna.trial.TrialState.PRUNED if pruned else
                 optuna.trial.TrialState.COMPLETE if values is not None else optuna.trial.TrialState.FAIL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = optuna.trial.create_trial(
                params=params, distributions=dists, values=values, state=state,
                intermediate_values={e.epoch: e.val_acc for e in rec.epochs} if pruned else None,
                user_attrs=record_attrs(rec, line), system_attrs=system)
            self.study.add_trial(t)

    def record(self, rec: TrialRecord, line: int, asked=None):
        """A record was just appended: mirror it (a failure to write the study never stops a search:
        the study is rebuilt from trials.jsonl on resume and by `nasty report`)."""
        if self.controller_writes or rec.status is Status.SCREENED:
            return                                  # screened candidates: one attribute per round (screened)
        try:
            self.add(rec, line, asked)
        except Exception as e:  # noqa: BLE001 - a view; the truth is on disk already
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"

    def sync(self, records: list[TrialRecord], space=None) -> int:
        """Add the records the study lacks (by their line in trials.jsonl); returns how many."""
        from ..controllers.values import ReplayTrial
        have = {t.user_attrs.get("record") for t in self.study.get_trials(deepcopy=False)}
        added = 0
        screened = [(line, rec) for line, rec in enumerate(records) if rec.status is Status.SCREENED]
        if screened:
            self.screened(screened, strict=True)
        for line, rec in enumerate(records):
            if line in have or rec.status is Status.SCREENED:
                continue
            asked = None
            if space is not None:
                try:
                    t = ReplayTrial(rec.decisions)
                    space.sample(t)
                    asked = t.asked
                except Exception:  # noqa: BLE001 - the decisions stay out; the trial is still there
                    asked = None
            self.add(rec, line, asked)
            added += 1
        self.error = None
        return added


    def screened(self, lines_and_records, strict: bool = False):
        """The candidates the screen scored and did not train, as study user attributes, one per
        screen round: `screen_round_0003` = [{record, sample, rank, of, scores}, ...] (an Optuna trial
        each would cost ~50 ms apiece in SQLite: more than scoring them). A failure is kept in
        `error` (raised when `strict`), never stops a search."""
        rounds: dict[int, list] = {}
        for line, rec in lines_and_records:
            v = rec.screen or {}
            rounds.setdefault(int(v.get("round", 0)), []).append(
                {"record": line, "sample": rec.sample, **{k: v[k] for k in ("rank", "of", "duplicate") if k in v},
                 "scores": v.get("scores") or {}})
        try:
            for r, entries in rounds.items():
                key = f"screen_round_{r:04d}"
                old = self.study.user_attrs.get(key) or []
                have = {e.get("record") for e in old}
                new = old + [e for e in entries if e["record"] not in have]
                if len(new) != len(old):
                    self.study.set_user_attr(key, new)
        except Exception as e:  # noqa: BLE001 - a view; the truth is trials.jsonl
            if strict:
                raise
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"


def study_summary(path: Path) -> str:
    """How to open a run's study, for the end-of-run summary and the README."""
    return (f'optuna.load_study(study_name=None, storage="sqlite:///{path}") or '
            f"`optuna-dashboard sqlite:///{path}`")


