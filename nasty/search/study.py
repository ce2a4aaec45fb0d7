"""The run as an Optuna study: runs/<name>/study.db (SQLite), one Optuna trial per trial of the
search, so Optuna's own tools open any run:

    study = optuna.load_study(study_name=None, storage="sqlite:///runs/NAME/study.db")
    study.trials_dataframe().value.mean()           # the mean accuracy of the trained trials
    optuna.visualization.plot_optimization_history(study)
    # optuna-dashboard sqlite:///runs/NAME/study.db

- numbers: Optuna trial N is nasty's trial #N (trials are added in their order; a number no record
  will ever have, a trial cut before its first epoch by an interrupt, is a FAIL placeholder);
- params: the sample's decisions, with their distributions (a choice of non-JSON values,
  e.g. tuples, is its option index; a conditional decision whose options change between
  samples gets its own parameter `name@<hash>`, as Optuna refuses changing distributions);
- value: the validation accuracy (two values, accuracy and target MACs, for --objective pareto)
  of a trial that trained every epoch (COMPLETE); a trial a scheduler or the time budget stopped
  is PRUNED, a failed one FAIL: neither has a value, so `trials_dataframe().value.mean()` is the
  mean of the complete trials;
- intermediate values: every trained trial's per-epoch validation accuracies (the curves);
- times: the trial's real dispatch and end (datetime_start, datetime_complete), so the
  dashboard's timeline and durations are the run's;
- user attributes: the nasty trial number, the record's line in trials.jsonl, the status, the
  target and proxy costs, the failure reason, the screen's scores and rank (`score_naswot`,
  `screen_rank`, ...); the winner's trial has `winner` True (and `confirmed_val_acc` when
  confirmed) and the study's own user attribute `winner` names it;
- constraints (Optuna's feasibility, <= 0 feasible): target MACs / budget - 1 (and params).

Over-budget samples are costed and never trained: they are not trials (nasty numbers only what
trains), so they are not in the study (a search may reject thousands: they stay in trials.jsonl
and the plots; the study's user attribute `over_budget_samples` counts them). The TPE and
NSGA-II controllers, which must learn where the budget ends, keep their own sampler study in
runs/<name>/sampler.db (SAMPLER_FILE), over-budget samples included (infeasible by constraint).
Runs made before this layout, whose study.db is the TPE controller's own study, keep it as it is.

The candidates the screen scored and did not train (status screened, screen.py) are not trials
either: each screen round is a study user attribute, `screen_round_0003` = [{record line, sample,
rank, scores}] (an Optuna trial apiece would cost ~50 ms in SQLite, more than scoring it). TPE and
NSGA-II asked for them, so they are FAIL trials of sampler.db, which their samplers ignore.

trials.jsonl stays the truth: the study is a view, written as trials end, and rebuilt from
trials.jsonl at the end of a search (the winner marked), on resume and by `nasty report`.
Both files are checked against the records first (`inspect`, read-only): a file that is missing,
damaged, foreign (another study in it, or another run's) or stale (trials the records do not hold)
is rebuilt from the records, never the reverse. Each file holds one study, named by the run's
identity (`run_identity`: the name it was created with, kept in config.json), not by its folder,
so a copied or renamed run still opens with `study_name=None`. A study.db that is a folder or
locked by another process is left alone and the search goes on without its view (a note says
so); the sampler's study, which TPE cannot do without, is then refused before the search starts.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from ..space import Decision
from .record import Status, TrialRecord

STUDY_FILE = "study.db"
SAMPLER_FILE = "sampler.db"          # the TPE/NSGA-II controller's own study (see the module docstring)
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
    """The Optuna values of a record: those of a trial that trained every epoch; None for a trial
    a scheduler or the time budget stopped (PRUNED) or a failed one (FAIL)."""
    if rec.status is not Status.OK or rec.val_acc is None:
        return None
    return [float(rec.val_acc), float(rec.target.macs)] if pareto else [float(rec.val_acc)]


def _when(t: float | None):
    import datetime
    return datetime.datetime.fromtimestamp(t) if t else None


def run_identity(folder: Path, config: dict | None = None) -> str:
    """The name of a run's Optuna studies: the name the run was created with (config.json's
    `name`), which a copy or a renamed folder keeps; the folder's name for a run without one."""
    name = (config or {}).get("name")
    return name if isinstance(name, str) and name else Path(folder).name


# ------------------------------------------------------------------ the files, as they are
class Inspected:
    """What an Optuna SQLite file holds, read without changing a byte (see `inspect`)."""

    def __init__(self, kind: str, why: str = "", studies: dict | None = None):
        self.kind = kind              # readable, missing, folder, locked, damaged
        self.why = why
        self.studies = studies or {}  # study name -> [(number, state, {user attr: value})] by number

    @property
    def usable(self) -> bool:
        """Can it be written (or removed and rebuilt)? Not a folder, not locked by another process."""
        return self.kind not in ("folder", "locked")


def inspect(path: Path, write_lock: bool = False) -> Inspected:
    """Read an Optuna SQLite file with sqlite3 in read-only mode (no byte changes, nothing created):
    its studies and their trials' states and nasty user attributes. `write_lock`: also check that
    another process does not hold it locked (a write lock taken and released, writing nothing)."""
    import json
    import sqlite3
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return Inspected("missing", "it is missing")
    if path.is_dir():
        return Inspected("folder", "it is a folder, not an SQLite file")
    if not path.is_file():
        return Inspected("folder", "it is not a regular file")
    uri = path.resolve().as_uri()
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=1.0)
        try:
            rows = con.execute(
                "SELECT s.study_name, t.number, t.state, a.key, a.value_json FROM studies s "
                "LEFT JOIN trials t ON t.study_id = s.study_id LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key IN ('nasty_trial', 'record', 'status')").fetchall()
        finally:
            con.close()
        if write_lock:
            con = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=1.0, isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute("ROLLBACK")
            finally:
                con.close()
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return Inspected("locked", "another process holds it locked")
        return Inspected("damaged", f"it is not an Optuna study ({e})")
    except sqlite3.DatabaseError as e:
        return Inspected("damaged", f"it is not an SQLite file ({e})")
    studies: dict[str, dict] = {}
    for name, number, state, key, value in rows:
        trials = studies.setdefault(name, {})
        if number is None:
            continue
        attrs = trials.setdefault(number, (str(state), {}))[1]
        if key is not None:
            try:
                attrs[key] = json.loads(value)
            except ValueError:
                attrs[key] = None
    return Inspected("readable", "", {n: [(k, *t[k]) for k in sorted(t)] for n, t in studies.items()})


def _foreign(found: Inspected, name: str) -> str | None:
    names = sorted(found.studies)
    if names == [name]:
        return None
    if not names:
        return "it holds no study"
    return f"it holds {'study' if len(names) == 1 else 'studies'} {', '.join(map(repr, names[:3]))}, not {name!r}"


def view_problem(found: Inspected, name: str, records, waiting=()) -> str | None:
    """Why study.db (as `inspect` found it) is not the view of `records` that StudyLog keeps, or None:
    one study named `name` whose trial N is nasty's trial #N, with the record line and status of
    that trial's record (trials the records do not have yet are added, not a problem), and no
    placeholder where a trial `waiting` to run again will be."""
    if found.kind != "readable":
        return found.why
    why = _foreign(found, name)
    if why:
        return why
    by_number = {}
    for line, rec in enumerate(records):
        if rec.trial is not None and rec.status is not Status.REJECTED:
            by_number[rec.trial] = (rec, line)
    for number, state, attrs in found.studies[name]:
        if attrs.get("nasty_trial") != number:
            return f"its trial {number} is not nasty's trial #{number}"
        if number not in by_number:
            if attrs.get("status") == "abandoned" and number not in waiting:
                continue
            return f"it holds trial #{number}, which trials.jsonl lacks"
        rec, line = by_number[number]
        if attrs.get("record") != line or attrs.get("status") != rec.status.value:
            return f"its trial #{number} is not line {line} of trials.jsonl ({rec.status.value})"
    return None


def sampler_problem(found: Inspected, name: str, records, told: int, legacy: bool = False) -> str | None:
    """Why the TPE/NSGA-II controller's own study (as `inspect` found it) is not what the controller
    was told, or None: one study named `name` holding, as finished trials, exactly the first `told`
    records (by their record line and status); asks never told may be there too. A study of a run
    made before the records were filed in it (`legacy`: study.db of the old layout) only has to
    be there, by its name."""
    if found.kind != "readable":
        return found.why
    why = _foreign(found, name)
    if why or legacy:
        return why
    seen = set()
    for number, state, attrs in found.studies[name]:
        line = attrs.get("record")
        if line is None:
            continue
        if type(line) is not int or not 0 <= line < told or line in seen:
            return f"its trial {number} files record {line!r}, which the controller was not told"
        rec = records[line]
        if attrs.get("status") != rec.status.value or attrs.get("nasty_trial") != rec.trial:
            return f"its trial {number} is not line {line} of trials.jsonl"
        seen.add(line)
    if len(seen) != told:
        return f"it holds {len(seen)} of the {told} records the controller was told"
    return None


def remove_file(path: Path):
    """Remove an SQLite file nasty rebuilds (and what SQLite keeps beside it); regular files only."""
    path = Path(path)
    for p in (path, *(path.with_name(path.name + x) for x in ("-journal", "-wal", "-shm"))):
        if p.is_file() or p.is_symlink():            # a link is removed, never what it points to
            p.unlink()


def old_layout(folder: Path, controller: str | None) -> bool:
    """Is study.db of this run the TPE/NSGA-II controller's own study (runs made before
    sampler.db)? It is then left as it is: the controller reopens it on resume. What says so is
    where the controller's saved state keeps its study (controller.json), not which files are
    there: a deleted sampler.db must not make study.db, the view, the controller's study."""
    if controller not in ("tpe", "nsga2"):
        return False
    import json
    try:
        storage = json.loads((Path(folder) / "controller.json").read_text())["state"]["storage"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(storage, str) and Path(storage.split("sqlite:///")[-1]).name == STUDY_FILE


class StudyLog:
    """Writes a run's trials into its Optuna study (see the module docstring)."""

    def __init__(self, path: Path, name: str, pareto: bool, budget, names: ParamNames | None = None):
        self.path, self.name, self.pareto, self.budget = Path(path), name, pareto, budget
        self.names = names or ParamNames()
        self.error: str | None = None                    # the study is behind trials.jsonl (see sync)
        self.off: str | None = None                      # why the file is not written at all (a folder, locked)
        self.pending: dict[int, tuple] = {}              # trials that ended before a lower-numbered one
        self.over_budget = 0
        self._study = None

    @property
    def study(self):
        if self._study is None:
            self._study = self._open()
        return self._study

    def _open(self):
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.create_study(storage=storage_url(self.path), study_name=self.name, load_if_exists=True,
                                       directions=["maximize", "minimize"] if self.pareto else ["maximize"])

    def _frozen(self, rec: TrialRecord, line: int | None, asked=None, extra_attrs=None):
        """The Optuna trial of a record (numbered by the storage: trials are added in nasty's order)."""
        import optuna
        values = values_of(rec, self.pareto)
        params, dists = self.names.params(asked or [], rec.decisions)
        trained = rec.status.scored and bool(rec.epochs)
        state = (optuna.trial.TrialState.COMPLETE if values is not None else
                 optuna.trial.TrialState.PRUNED if trained else optuna.trial.TrialState.FAIL)
        system = {}
        cons = constraints(rec.target, self.budget)
        if cons and state is not optuna.trial.TrialState.FAIL:
            system[CONSTRAINTS_KEY] = cons
        tm = rec.timings
        start = _when(tm and (tm.dispatched or tm.started))
        end = _when(tm and tm.completed)
        import datetime
        now = datetime.datetime.now()
        attrs = {**(record_attrs(rec, line) if line is not None else {}), **(extra_attrs or {})}
        return optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=state, value=None, values=values,
            datetime_start=start or end or now, datetime_complete=end or start or now,
            params=params, distributions=dists, user_attrs=attrs, system_attrs=system,
            intermediate_values={e.epoch: float(e.val_acc) for e in rec.epochs} if trained else {})

    def _add(self, frozen):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.add_trial(frozen)

    def _placeholder(self, number: int):
        """A trial number no record will have (cut by an interrupt before its first epoch)."""
        rec = TrialRecord(Status.FAILED, number, reason="cut before its first epoch (an interrupt); no record")
        self._add(self._frozen(rec, None, extra_attrs={"nasty_trial": number, "status": "abandoned",
                                                       "reason": rec.reason}))

    def record(self, rec: TrialRecord, line: int, asked=None):
        """A record was just appended: a trial joins the study once every lower-numbered one has
        (a failure to write the study never stops a search: it is rebuilt from trials.jsonl)."""
        if self.off:
            return
        try:
            if rec.status is Status.SCREENED:
                return                              # one study attribute per screen round (screened)
            if rec.status is Status.REJECTED or rec.trial is None:
                self.over_budget += 1
                return
            self.pending[rec.trial] = (rec, line, asked)
            n = len(self.study.get_trials(deepcopy=False))
            while n in self.pending:
                self._add(self._frozen(*self.pending.pop(n)))
                n += 1
        except Exception as e:  # noqa: BLE001 - a view; the truth is on disk already
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"

    def _empty(self, found: Inspected):
        """Empty the file before it is rebuilt: its studies deleted in place when Optuna can open it (a
        dashboard reading the file sees the new study), else the file removed (damaged, another
        Optuna's schema: nasty wrote it, the records hold everything in it)."""
        if found.kind == "readable":
            import optuna
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for name in found.studies:
                        optuna.delete_study(study_name=name, storage=storage_url(self.path))
                return
            except Exception:  # noqa: BLE001 - not a study this Optuna can change: removed instead
                pass
        remove_file(self.path)

    def _asked(self, rec: TrialRecord, space):
        if space is None:
            return None
        from ..controllers.values import ReplayTrial
        try:
            t = ReplayTrial(rec.decisions)
            space.sample(t)
            return t.asked
        except Exception:  # noqa: BLE001 - the decisions stay out; the trial is still there
            return None

    def sync(self, records: list[TrialRecord], space=None, winner: dict | None = None, rebuild: bool = False,
             waiting=()) -> str:
        """Bring the study up to date with trials.jsonl (every record in order; numbers no record
        will have get placeholders, except those `waiting` to run again: the trials after them join
        when they have). Rebuilt from scratch when the file is missing, damaged, foreign or stale
        (`view_problem`), when `rebuild`, or to mark `winner` ({"trial": N, "confirmed_val_acc": x
        or None}). Never raises: returns a note when the view could not be brought up to date
        (the records are the truth; `nasty report` rebuilds it), else ''."""
        try:
            return self._sync(records, space, winner, rebuild, set(waiting))
        except Exception as e:  # noqa: BLE001 - a view
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
            self._study = None
            return f"(the Optuna study {self.path} could not be updated: {self.error}; trials.jsonl holds every result)"

    def _sync(self, records, space, winner, rebuild, waiting) -> str:
        found = inspect(self.path)
        if not found.usable:
            self.off = found.why
            return (f"(the Optuna study {self.path} is left as it is and not written: {found.why}; trials.jsonl "
                    "holds every result: move it away and `nasty report` writes the study)")
        self.off = None
        problem = None if found.kind == "missing" else view_problem(found, self.name, records, waiting)
        note = ""
        if problem or rebuild or winner is not None:
            if problem and not rebuild and winner is None:
                note = f"(the Optuna study {self.path} was rebuilt from trials.jsonl: {problem})"
            self._study = None
            self._empty(found)
        by_number = {}
        for line, rec in enumerate(records):
            if rec.status is Status.REJECTED or rec.trial is None:
                continue
            by_number[rec.trial] = (rec, line)           # a later record of the same number wins
        have = len(self.study.get_trials(deepcopy=False))
        self.pending.clear()
        for n in range(have, max(by_number, default=-1) + 1):
            if n in waiting:                             # runs again: it and the trials after it join later
                self.pending.update({m: (*by_number[m], self._asked(by_number[m][0], space))
                                     for m in by_number if m > n})
                break
            if n not in by_number:
                self._placeholder(n)
                continue
            rec, line = by_number[n]
            extra = None
            if winner is not None and winner.get("trial") == n:
                extra = {"winner": True, **({"confirmed_val_acc": winner["confirmed_val_acc"]}
                                            if winner.get("confirmed_val_acc") is not None else {})}
            self._add(self._frozen(rec, line, self._asked(rec, space), extra))
        rejected = sum(1 for r in records if r.status is Status.REJECTED)
        self.study.set_user_attr("over_budget_samples", rejected)
        screened = [(line, rec) for line, rec in enumerate(records) if rec.status is Status.SCREENED]
        if screened:
            self.screened(screened, strict=True)
        if winner is not None:
            self.study.set_user_attr("winner", winner)
        self.error = None
        return note


    def screened(self, lines_and_records, strict: bool = False):
        """The candidates the screen scored and did not train, as study user attributes, one per
        screen round: `screen_round_0003` = [{record, sample, rank, of, scores}, ...] (they are not
        trials: nasty numbers only what trains). A failure is kept in `error` (raised when `strict`),
        never stops a search."""
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


def mark_winner(folder, s, info: dict, space=None) -> str:
    """`folder` a RunFolder, `s` its Settings. Rebuild the run's Optuna study from trials.jsonl with the winner (best.json) marked; a note
    when it cannot be (the study is a view)."""
    from ..errors import RunError
    from .budget import Budget
    if old_layout(folder.path, s.controller):
        return ""
    winner = ({"trial": info["trial"], "confirmed_val_acc": (info.get("confirmed") or {}).get("val_acc"),
               "test_acc": info.get("test_acc")} if info.get("trial") is not None else None)
    try:
        if space is None:
            from ..space import load_space
            space = load_space(s.space) if s.space and not str(s.space).startswith("python:") else None
    except Exception:  # noqa: BLE001 - the trials go in without their params
        space = None
    try:
        cfg = folder.config()
        records = folder.records()
    except RunError as e:
        return f"(the Optuna study {folder.path / STUDY_FILE} could not be updated: {e})"
    return StudyLog(folder.path / STUDY_FILE, run_identity(folder.path, cfg), s.objective == "pareto",
                    Budget(cfg.get("budget_macs"), cfg.get("budget_params"))
                    ).sync(records, space, winner=winner, rebuild=True)
