"""One search from settings to summary: `search(settings)`.

    settings ──check──▶ run folder (new, or resumed: every check before any repair)
             ──▶ space + budget ──preflight (is the budget possible?)──▶ data
             ──▶ controller (restored on resume) ──▶ SearchLoop ──▶ Executor (Ray Tune)
             ──▶ results (leaderboard, best.nasty, plots) ──▶ the winner's test accuracy ──▶ summary

The run folder is the truth: records are appended as trials finish and everything else is
rewritten atomically, so a crash or Ctrl-C at any moment leaves a folder that
`nasty search --resume` continues and `nasty report` reads. Nothing is created before the
settings, the space, the budget, the data and the cluster have been checked.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import statistics
import time
from pathlib import Path

from ..errors import RunError
from .budget import preflight
from .opening import open_space
from .folder import Checked, RunFolder, check_name
from .loop import Executor, SearchLoop
from .oneshot import OneShotSource, prepare as prepare_oneshot
from .record import Status
from .confirm import ConfirmLoop, cost_ratio, fidelity, picks, reserve_seconds
from .results import KEEP_WEIGHTS, best_of, counts, ranked, summary_lines
from .settings import Settings, with_target
from .signals import Interrupted
from .study import mark_winner, run_identity


# ------------------------------------------------------------------ data
IN_MEMORY = "in-memory"           # Settings.dataset of a search given its data from Python


def as_dataset(data):
    """A nasty Dataset from what `nasty.search(data=...)` accepts: a Dataset, (x, y) or
    (x, y, test_x, test_y) arrays, or a map-style torch Dataset."""
    from ..data import Dataset, from_arrays, from_torch_dataset
    if isinstance(data, Dataset):
        return data
    if isinstance(data, dict) or hasattr(data, "keys"):
        raise RunError(f"data must be a nasty Dataset, (x, y) or (x, y, test_x, test_y) arrays, or a torch "
                       f"Dataset; got a {type(data).__name__} (for arrays in a dict, pass (d['x'], d['y']))")
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return from_arrays(*data)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return from_torch_dataset(data)
    raise RunError(f"data must be a nasty Dataset, (x, y) or (x, y, test_x, test_y) arrays, or a torch "
                   f"Dataset; got {type(data).__name__}")


def load_data(s: Settings, data=None):
    """(dataset, train indices, validation indices) for a search: the validation split is
    held out of train and ranks architectures; the test set is only for the winner."""
    import numpy as np

    from ..data import load_dataset, split_train_val
    if data is not None:
        data = as_dataset(data)
    elif s.dataset == IN_MEMORY:
        raise RunError("this run searched on data given from Python (nasty.search(data=...)); resume it "
                       "from Python with the same data")
    else:
        data = load_dataset(s.dataset, s.data_dir, image_size=s.image_size)
    train_idx, val_idx = split_train_val(data, s.val_fraction, seed=s.seed)
    rng = np.random.default_rng(s.seed)
    if s.subset is not None and s.subset < len(train_idx):
        train_idx = np.sort(rng.choice(train_idx, s.subset, replace=False))
    if s.val_subset is not None and s.val_subset < len(val_idx):
        val_idx = np.sort(rng.choice(val_idx, s.val_subset, replace=False))
    return data, train_idx, val_idx


def confirmation_indices(s: Settings, data, train_idx, val_idx):
    """(more training rows, more validation rows) a confirmation adds to a search trial's: training
    images up to --confirm-subset (a superset of the search's), and the whole validation split."""
    import numpy as np

    from ..data import split_train_val
    if not s.confirm:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    full_train, full_val = split_train_val(data, s.val_fraction, seed=s.seed)
    rest = np.setdiff1d(full_train, train_idx)
    n = max(0, min(len(rest), (s.confirm_subset or len(full_train)) - len(train_idx)))
    more_train = np.sort(np.random.default_rng(s.seed + 1).choice(rest, n, replace=False))
    return more_train, np.setdiff1d(full_val, val_idx)


def check_gpus(s: Settings, resources=None):
    """A one-line error when --gpus-per-trial asks for GPUs that are not there."""
    if not s.gpus_per_trial:
        return
    if resources is None:
        import torch
        have = torch.cuda.device_count()
    else:
        have = resources.get("GPU", 0)
    if not have:
        where = "the Ray cluster" if resources is not None and s.address else "this machine"
        raise RunError(f"--gpus-per-trial {s.gpus_per_trial:g} asks for GPUs but {where} has none; "
                       "drop the flag (trials then run on CPUs) or join a cluster with GPUs via --address")


def check_resources(s: Settings, resources: dict):
    """A trial must fit on the cluster as it is: asking more than it has would wait forever."""
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if s.cpus_per_trial > cpus:
        raise RunError(f"--cpus-per-trial {s.cpus_per_trial:g} is more than {'the cluster' if s.address else 'this machine'} "
                       f"has ({cpus:g} CPUs{f', {gpus:g} GPUs' if gpus else ''}); ask for at most {cpus:g}")
    if s.gpus_per_trial and s.gpus_per_trial > gpus:
        raise RunError(f"--gpus-per-trial {s.gpus_per_trial:g} is more than {'the cluster' if s.address else 'this machine'} "
                       f"has ({gpus:g} GPUs); ask for at most {gpus:g}")


def resolve_fit(s: Settings, space, budget) -> Settings:
    """--fit unset: on when the proxy does not see the space's width decision (the budget sets it)
    and there is a budget to fit to."""
    if s.fit is not None:
        return s
    return dataclasses.replace(s, fit=bool(budget and space.width_decision
                                           and space.width_decision in space.proxy_ignores))


def unseen_decisions(space, fit: bool) -> list[str]:
    """Decisions neither the proxy sees nor the budget sets: noise to the controller."""
    return [d for d in space.proxy_ignores if not (fit and d == space.width_decision)]


# ------------------------------------------------------------------ a new run, or a resumed one
def _fresh_or_resume(s: Settings, resume: str | None):
    """(settings, folder, what the folder holds (folder.Checked), controller state) for a new run or
    a resumed one. A resumed folder is only read here (RunFolder.verify: its records sound and
    agreeing with the files derived from them); its one repair (a torn last record) waits for every
    other check."""
    if resume:
        folder = RunFolder(resume)
        cfg = folder.config(Settings)        # a damaged file (wrong JSON types) is refused, untouched
        default = Settings()
        given = {k: v for k, v in dataclasses.asdict(s).items() if v != getattr(default, k)}
        changeable = Settings.resumable() | {"runs_dir", "name"}
        fixed = {k: v for k, v in given.items() if k not in changeable and cfg.get(k) != v}
        if fixed:
            k = sorted(fixed)[0]
            may = ", ".join(f"--{x.replace('_', '-')}" for x in sorted(Settings.resumable()))
            raise RunError(f"--{k.replace('_', '-')} cannot change when resuming {folder}; "
                           f"the run was started with {cfg.get(k)!r} (only {may} may)")
        known = {f.name for f in dataclasses.fields(Settings)}
        cfg = {"screen": 0, "audit": 0, **cfg}     # a run from before the screen and the audit resumes without
        merged = Settings(**{k: v for k, v in cfg.items() if k in known})
        for k in Settings.resumable() & set(given):
            setattr(merged, k, given[k])
        if "time_budget" not in given:
            merged.time_budget = None
        checked = folder.verify()                  # damaged or lost records fail before any repair
        check_room(folder.path, "the run folder", probe=False)     # its writability: folder.writable(), below
        return merged, folder, checked, checked.controller
    if not s.space and not (s.controller == "compound" and s.baseline):
        raise RunError("--space is required (a built-in name such as nasnet, or a .py file), "
                       "or --resume runs/NAME")
    if s.name is not None:
        check_name(s.name)
    if Path(s.runs_dir).exists() and not Path(s.runs_dir).is_dir():
        raise RunError(f"--runs-dir {s.runs_dir} is a file, not a folder; give a folder for the run folders")
    check_room(Path(s.runs_dir), "--runs-dir")
    if s.space and str(s.space).endswith(".py"):          # a user's file: found again on resume from anywhere
        s = dataclasses.replace(s, space=str(Path(s.space).resolve()))
    stem = Path(s.space).stem if s.space else f"compound-{Path(s.baseline).stem}"
    auto = re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}").lstrip("._+-")
    name = s.name or check_name(auto.replace("..", ".")[:128] or "run")
    folder = RunFolder(Path(s.runs_dir) / name)
    if folder.path.exists():
        raise RunError(f"run folder {folder.path} already exists; continue it with "
                       f"`nasty search --resume {folder.path}` or pick another --name")
    return dataclasses.replace(s, name=name), folder, Checked([], [], None, []), None


def stopped_message(folder: RunFolder, signum: int, loop: SearchLoop | None = None) -> str:
    """What a search stopped by a signal says (signals.Stop): what was kept, and how to continue
    (from the loop's own counts when there is one: the process may be ending right now)."""
    import signal

    from .signals import signal_name
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal_name(signum)}"
    if not folder.exists:
        return f"{how} before the run folder was made; nothing was written"
    try:
        if loop is not None:
            n, cut = loop.done(), sorted(getattr(loop, "unrecorded", ()))
        else:
            recs = folder.records()
            n = sum(1 for r in recs if r.status.counted)
            cut = sorted({r.trial for r in folder.running()} - {r.trial for r in recs})
    except (RunError, RuntimeError):
        n, cut = None, []
    kept = f"{n} finished trial{'s' if n != 1 else ''}" if n is not None else "the finished trials"
    again = (f"; {'trials' if len(cut) > 1 else 'trial'} {', '.join(f'#{t}' for t in cut[:6])}"
             f"{', ...' if len(cut) > 6 else ''} cut short will run again" if cut else "")
    return f"{how}: {kept} saved in {folder}{again}; continue with `nasty search --resume {folder}`"


def check_room(path: Path, what: str, probe: bool = True) -> None:
    """Before anything starts (Ray, the run folder): `path`, or the nearest folder above it that
    exists, takes new folders, and its file system has nasty.limits.MIN_FREE_BYTES free. A probe
    folder is made and removed at once: permissions alone do not say it (root, read-only mounts, /proc)."""
    import errno
    import shutil
    import tempfile

    from ..limits import DOCS, MIN_FREE_BYTES, human_bytes
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise RunError(f"{what} {path}: {where} is a file, not a folder; give a folder for the run folders")
    if probe:
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".nasty-probe-", dir=where))
        except OSError as e:
            why = "no space left" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror or str(e)
            raise RunError(f"{what} {path}: cannot create folders in {where} ({why}); give a folder you can "
                           "write") from None
    free = shutil.disk_usage(where).free
    if free < MIN_FREE_BYTES:
        raise RunError(f"{what} {path}: only {human_bytes(free)} free on its file system, and a search needs at "
                       f"least {human_bytes(MIN_FREE_BYTES)} (trial weights, study.db, plots; {DOCS}); free some "
                       "space or give another --runs-dir")


def disk_full(e: BaseException) -> bool:
    """Is `e` a write that failed for want of space (OSError ENOSPC/EDQUOT/EFBIG, or SQLite's
    'database or disk is full' as Optuna's SQLAlchemy reports it)?"""
    import errno
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return "database or disk is full" in str(e) or "No space left on device" in str(e)


def search(s: Settings, resume: str | None = None, console=None, live: bool | None = None,
           executor: Executor | None = None, data=None, space=None, verbosity: int = 1,
           summary_console=None) -> dict:
    """Run (or resume) a search; returns the summary (also in runs/<name>/best.json).

    `executor` runs the trials (default: Ray Tune, `ray_backend.TuneExecutor`). A Ctrl-C
    stops the trials, keeps every finished record and re-raises KeyboardInterrupt. The run
    folder is locked for the whole search: a second process on it is refused. `data`: images
    given from Python instead of --dataset (see `as_dataset`)."""
    from .signals import Stop
    where: dict = {}                             # the run folder and the loop, once known (for the message)

    def describe(signum):
        if "folder" not in where:
            return "interrupted before the search began" if signum == 2 else "stopped before the search began"
        return stopped_message(where["folder"], signum, where.get("loop"))
    with Stop(describe) as stop, contextlib.ExitStack() as hold:
        try:
            from .settings import check_types
            check_types(s)
            s.check()
            if resume:
                hold.enter_context(RunFolder(resume).lock())     # before anything is read: one writer
            if data is not None:
                if s.data_dir is not None or s.dataset not in (Settings.dataset, IN_MEMORY):
                    raise RunError(f"a search was given images (data=) and also --dataset {s.dataset}"
                                   + (f" --data-dir {s.data_dir}" if s.data_dir else "")
                                   + "; give the images one way")
                s = dataclasses.replace(s, dataset=IN_MEMORY, data_dir=None)
            return _search(s, resume, console, live, executor, hold, data, space, verbosity, summary_console,
                           where)
        except KeyboardInterrupt as e:
            if isinstance(e, Interrupted):
                raise
            raise stop.interrupted() from None


def _search(s: Settings, resume, console, live, executor, hold: contextlib.ExitStack, data, given,
            verbosity, summary_console, where: dict) -> dict:
    import sys

    from rich.console import Console
    t_start = time.time()
    # progress goes to stderr when stdout is piped, the summary always to stdout (a script reads it)
    summary_console = summary_console or console or Console(highlight=False)
    console = console or Console(stderr=not sys.stdout.isatty(), highlight=False)

    held: list[str] = []

    def say(text):
        """A start-up step: at once on a terminal (or with -v); piped output holds it until every check
        has passed (a bad input stays a one-line error), then shows it before any trial ends."""
        if verbosity >= 2 or verbosity >= 1 and console.is_terminal:
            console.print(text, soft_wrap=True, highlight=False, markup=False)
        elif verbosity >= 1:
            held.append(text)

    def release():
        for text in held:
            console.print(text, soft_wrap=True, highlight=False, markup=False)
        held.clear()
    s, folder, checked, ctrl_state = _fresh_or_resume(s, resume)
    where["folder"] = folder
    records = checked.records
    s = prepare_oneshot(s, folder if resume else None)   # --evaluator supernet / --controller darts (oneshot.py)
    if resume and not folder.writable():
        raise RunError(f"run folder {folder} is read-only; a resume appends to it: make it writable, "
                       "or copy it and resume the copy")
    space, budget = open_space(s, given)
    s = resolve_fit(s, space, budget)
    from ..controllers import REGISTRY, check_resume, make_controller
    if s.controller not in REGISTRY:
        raise RunError(f"unknown --controller {s.controller!r}; choose one of {', '.join(sorted(REGISTRY))}")
    import torch
    gpu = torch.cuda.is_available() if s.gpus_per_trial is None else bool(s.gpus_per_trial)
    flags = {k for k in ("epochs", "batch_size", "confirm_epochs") if getattr(s, k) is not None}
    s = s.resolved(gpu)
    if s.gpus_per_trial and not torch.cuda.is_available() and not s.address:
        check_gpus(s)
    s.check()
    say(f"nasty search: {'resuming ' + str(resume) if resume else (s.space or s.baseline)} — loading "
        f"{s.dataset if s.dataset != IN_MEMORY else 'the data given'}…")
    data, train_idx, val_idx = load_data(s, data)    # a missing dataset fails here, before any folder
    space = with_target(space, s, data)
    from ..latency.search import attach, config_facts, finalists, keep_table
    budget = attach(budget, space, say, clock=s.latency_clock, evaluator=s.evaluator)   # latency: the per-op predictor
    if not resume:
        preflight(space, budget, s.fit, s.seed)
    controller = make_controller(s.controller, space, seed=s.seed, budget=budget, objective=s.objective,
                                 **s.controller_kwargs())
    if ctrl_state:                                   # a damaged state is refused before anything changes
        check_resume(ctrl_state["state"], s.controller)
        state = ctrl_state["state"]
        if keeps_study(controller):                  # checked without opening (and changing) its study
            state = {**state, "storage": None, "trials": [], "study_system_attrs": None}
        try:
            controller.load_state_dict(state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise RunError(f"controller.json is damaged ({type(e).__name__}: {e}); cannot resume it: start a "
                           f"new run (its trials.jsonl is intact)") from None
    identity = run_identity(folder.path, {"name": s.name})
    sampler = plan_sampler(s, folder, controller, ctrl_state, records, identity)   # read-only, before Ray
    config = dataclasses.asdict(s)
    config.update(space_name=space.name, budget_macs=budget.macs, budget_params=budget.params,
                  target={"input": list(space.target.input), "classes": space.target.classes},
                  proxy={"input": list(data.shape), "classes": data.num_classes}, data=data.describe(),
                  unseen_decisions=unseen_decisions(space, s.fit),
                  flop_convention="one multiply-add = one FLOP", **config_facts(budget))
    from .guards import describe_counts, image_counts, recipe_for_steps, small_validation, step_floor_line
    more = confirmation_indices(s, data, train_idx, val_idx)
    config["images"] = image_counts(train_idx, val_idx, *more, data)      # what the trials really see
    say(f"nasty search: {describe_counts(config['images'])}, {data.num_classes} classes")
    if small_validation(config["images"]):
        say(small_validation(config["images"]))
    if s.min_steps and "epochs" not in flags and not resume:   # --epochs given: the recipe is the user's;
        n = config["images"]["search"]["train"]                 # a resume keeps the one its config holds
        epochs, batch = recipe_for_steps(s.epochs, s.batch_size, n, s.min_steps, batch_fixed="batch_size" in flags)
        if (epochs, batch) != (s.epochs, s.batch_size):
            say(step_floor_line(n, (s.epochs, s.batch_size), (epochs, batch), s.min_steps))
            confirm = s.confirm_epochs
            if "confirm_epochs" not in flags:            # a confirmation: the search's recipe, more images
                confirm, _ = recipe_for_steps(s.confirm_epochs, batch, config["images"]["confirm"]["train"],
                                              s.min_steps, batch_fixed=True)
            s = dataclasses.replace(s, epochs=epochs, batch_size=batch, confirm_epochs=confirm)
            config.update(epochs=s.epochs, batch_size=s.batch_size, confirm_epochs=s.confirm_epochs)
    from .standalone import make_payload
    payload = make_payload(data, train_idx, val_idx, *more)
    started_ray = False
    if executor is None:
        from .ray_backend import TuneExecutor, start_ray
        say(f"nasty search: {'joining the Ray cluster at ' + s.address if s.address else 'starting Ray'} "
            "(a few seconds)…")
        started_ray, resources = start_ray(s, payload["x"].nbytes + payload["y"].nbytes)
        say(f"nasty search: Ray {'joined' if s.address else 'started'}: {resources.get('CPU', 0):g} CPUs"
            + (f", {resources.get('GPU', 0):g} GPUs" if resources.get("GPU") else ""))
    else:
        resources = {"CPU": float(os.cpu_count() or 1)}
    try:
        check_gpus(s, resources if s.address else None)
        check_resources(s, resources)
        if resume:
            folder.repair()                          # every check has passed: mend a torn last record
            records = folder.records()
            if folder.config().get("images") != config["images"]:         # a run made before they were kept
                folder.write_json("config.json", {**folder.config(), "images": config["images"]})
        else:
            config["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
            folder.create(config)
            hold.enter_context(folder.lock())
            keep_table(folder, budget)
        interrupted = checked.interrupted            # cut short by a signal or a kill: they run again first
        controller, study, notes = _controller_and_study(s, space, budget, folder, controller, ctrl_state, records,
                                                         sampler, identity, [r.trial for r in interrupted])
        release()                                    # every check has passed: the held start-up lines
        for note in notes:
            console.print(note, soft_wrap=True, highlight=False, markup=False)
        samples, told = (ctrl_state.get("samples", 0), ctrl_state.get("told", 0)) if ctrl_state else (0, 0)
        from .progress import Progress
        title = (f"nasty search · {space.name} · budget {budget.describe()} · {s.controller}"
                 + (f" ({s.controller_options})" if s.controller_options else ""))
        progress = Progress(title, s.trials, console=console, live=live, records=records, verbosity=verbosity)
        progress.best = best_of(records)
        slots = max(1, int(resources.get("CPU", 1) // s.cpus_per_trial))
        if s.gpus_per_trial:
            slots = min(slots, max(1, int(resources.get("GPU", 0) // s.gpus_per_trial)))
        deadline = time.time() + s.time_budget if s.time_budget else None
        rows = payload["rows"]
        if s.evaluator == "supernet":                # one trial trains the supernet; the controller runs in it
            loop = OneShotSource(s, folder, space, controller, budget, data.shape, data.num_classes, progress,
                                 records, samples, told, deadline, slots, images=(len(train_idx), len(val_idx)),
                                 study=study, rows=rows["search"], ctrl_state=ctrl_state, payload=payload,
                                 fidelity=fidelity(s, rows["confirm"]), time_budget=folder.config().get("time_budget"),
                                 confirm_slots=slots, given_space=given)
        else:
            loop = SearchLoop(s, folder, space, controller, budget, data.shape, data.num_classes, progress,
                              records, samples, told, deadline, slots, images=(len(train_idx), len(val_idx)),
                              study=study, rows=rows["search"], interrupted=interrupted)
            ratio = cost_ratio(s, rows["search"], rows["confirm"])
            where["loop"] = loop
            loop.reserve = lambda: reserve_seconds(s, loop.records, slots, ratio)
            loop.replay(records[told:], told)        # records the controller was not told before a crash
            loop.save_controller()
            from .screen import make_screen
            loop.screen = make_screen(s, loop, data, train_idx, slots, records)

        def run_stage(source, phase):
            """Run a TrialSource to its end; a fatal error or a Ctrl-C ends the search (results kept)."""
            with progress:
                if executor is not None:
                    interrupted = executor.run(source)
                else:
                    ps = s if phase == "tune" else dataclasses.replace(
                        s, scheduler="fifo", epochs=s.confirm_epochs,
                        time_budget=max(30.0, deadline - time.time()) if deadline else None)
                    if isinstance(source, OneShotSource):
                        from .oneshot import trainable
                        interrupted = TuneExecutor(ps, source.payload, 1, folder.path, name=phase,
                                                   function=trainable).run(source)
                    else:
                        interrupted = TuneExecutor(ps, payload, slots, folder.path, name=phase).run(source)
            if source.fatal:
                raise source.fatal
            loop.write(plots=True)
            if interrupted:
                raise KeyboardInterrupt      # search() ends it with nasty's message (signals.Interrupted)

        if loop.done() >= s.trials:
            progress.note(f"{folder}: all {s.trials} trials are done; pass --trials N to run more")
            loop.write(plots=True)
        else:
            run_stage(loop, "tune")
        if budget.latency_ms is not None:            # the finalists measured for real: the winner fits the budget
            with progress:
                fits = finalists(folder, ranked(loop.records, folder.confirmations()), budget, max(1, s.confirm),
                                 progress)
            loop.write(plots=True)
        if s.confirm:
            chosen = (loop.picks(s.confirm) if isinstance(loop, OneShotSource)      # DARTS's final pick first
                      else picks(ranked(loop.records), s.confirm))
            if budget.latency_ms is not None:
                chosen = fits
            stage = ConfirmLoop(s, folder, chosen, folder.confirmations(), rows["confirm"],
                                fidelity(s, rows["confirm"]), deadline, progress)
            from .audit import Together, audit_stage
            audit = audit_stage(s, folder, space, budget, data.shape, data.num_classes, rows["confirm"],
                                stage.fidelity, deadline, progress, seconds=stage.seconds)
            if stage.jobs or (audit and audit.jobs):
                progress.note(f"confirming the top {len(chosen)}: {s.confirm_seeds} seed(s) each, "
                              f"{stage.fidelity['train_images']} training and {stage.fidelity['val_images']} "
                              f"validation images, {s.confirm_epochs} epoch(s)"
                              + (f"; and, to audit the run, {len(audit.members)} random in-budget member(s) "
                                 "trained the same way" if audit else ""))
                run_stage(Together(stage, audit) if audit else stage, "tune-confirm")
        summary = finalize(folder, s, loop.records, data, budget, summary_console, loop.stop_reason,
                           time.time() - t_start, space=space)
    except Exception as e:
        if not disk_full(e):
            raise
        name = getattr(e, "filename", None)
        what = Path(name).name if name else "study.db" if "database or disk is full" in str(e) else "its files"
        then = (f"free some space, then `nasty search --resume {folder}` continues (finished trials are kept in "
                "trials.jsonl)" if folder.exists else f"free some space, remove {folder} and start again")
        raise RunError(f"no space left on the device of {folder} while writing {what}; {then}") from None
    finally:
        if started_ray:
            from .ray_backend import stop_ray
            from .signals import shutting_down
            shutting_down()
            stop_ray()
    return summary


def keeps_study(controller) -> bool:
    """Does this controller keep an Optuna study of its own (it takes a `storage`)?"""
    import inspect
    return "storage" in inspect.signature(type(controller).__init__).parameters


@dataclasses.dataclass
class SamplerPlan:
    """Where the TPE/NSGA-II controller keeps its own Optuna study, as checked before the search starts."""
    path: Path
    name: str
    rebuild: str | None          # why it is rebuilt from the records (None: reopened as it is)


def plan_sampler(s: Settings, folder: RunFolder, controller, ctrl_state, records, identity: str):
    """The controller's own study (sampler.db; study.db in runs made before it), checked read-only
    against the records it was told (study.sampler_problem) before anything is written or Ray
    starts: None for a controller without one; a plan to reopen it, or to rebuild it from the
    records when it is missing, damaged, foreign or stale. A folder in its place, or a file another
    process holds locked, is a RunError (nothing is removed that nasty did not write)."""
    if not keeps_study(controller):
        return None
    from .study import SAMPLER_FILE, STUDY_FILE, inspect, old_layout, sampler_problem
    legacy = old_layout(folder.path, s.controller)
    path = folder.path / (STUDY_FILE if legacy else SAMPLER_FILE)
    found = inspect(path, write_lock=True)
    if not found.usable:
        raise RunError(f"{path} (the {s.controller} controller's own Optuna study, rebuilt from trials.jsonl "
                       f"when it is damaged) cannot be rebuilt: {found.why}; move it away (or end what holds "
                       "it), then resume again; the run folder is left as it is")
    if ctrl_state is None:                   # a new run, or one whose controller was never told anything
        return SamplerPlan(folder.path / SAMPLER_FILE, identity,
                           None if found.kind == "missing" else "the controller was told nothing yet")
    name = ctrl_state["state"].get("study_name") or identity
    problem = sampler_problem(found, name, records, ctrl_state.get("told", 0), legacy)
    if problem is None:
        return SamplerPlan(path, name, None)
    return SamplerPlan(folder.path / SAMPLER_FILE, identity, problem)


def _controller_and_study(s: Settings, space, budget, folder: RunFolder, checked, ctrl_state, records,
                          sampler: SamplerPlan | None, identity: str, waiting=()):
    """(controller, the run's Optuna study, notes). The controller is restored on resume; one that
    keeps an Optuna study of its own (tpe, nsga2) keeps it where `sampler` says, rebuilt from the
    records it was told when the plan says so. The run's study (study.py's StudyLog, the view of its
    trials) is brought up to date, or rebuilt; `waiting`: trial numbers that run again. `checked`:
    the same controller, built (and its options checked) before the run folder existed."""
    from ..controllers import make_controller
    from .loop import tell_records
    from .study import STUDY_FILE, StudyLog, remove_file
    controller, notes = checked, []
    if sampler is not None:
        if sampler.rebuild:
            remove_file(sampler.path)
        controller = make_controller(s.controller, space, seed=s.seed, budget=budget, objective=s.objective,
                                     **s.controller_kwargs(), storage=sampler.path, study_name=sampler.name)
        if ctrl_state:
            state = ctrl_state["state"]
            if sampler.rebuild:
                state = {**state, "storage": str(sampler.path), "study_name": sampler.name}
            controller.load_state_dict(state)
            if sampler.rebuild:
                told = ctrl_state.get("told", 0)
                tell_records(controller, space, records[:told])
                notes.append(f"({sampler.path.name}, the {s.controller} controller's own Optuna study, was rebuilt "
                             f"from the {told} records it had been told: {sampler.rebuild})")
    if sampler is not None and sampler.path.name == STUDY_FILE:     # a run made before sampler.db: kept
        return controller, None, notes
    study = StudyLog(folder.path / STUDY_FILE, identity, s.objective == "pareto", budget)
    note = study.sync(records, space, waiting=waiting)   # records written before a crash, or by an older nasty
    if note:
        notes.append(note)
    return controller, study, notes


# ------------------------------------------------------------------ the end of a run
def score_winner(folder: RunFolder, records, data) -> dict:
    """best.json with the winner's test accuracy (only the winner ever sees the test set): the
    mean over its confirmations' weights when it was confirmed, else its search trial's weights."""
    confirmations = folder.confirmations()
    best = best_of(records, confirmations)
    info = folder.read_json("best.json", {}) or {}
    if best is None or "test_acc" in info:
        return info
    from .confirm import confirm_weights
    seeds = sorted({c.seed for c in confirmations if c.trial == best.trial and c.status is Status.OK})
    files = [confirm_weights(folder, best.trial, k) for k in seeds] or [folder.weights(best.trial)]
    files = [f for f in files if f.is_file()]
    if not files:                    # weights pruned (only the best trials' are kept): said, never silent
        info["test_acc_error"] = (f"the weights of trial #{best.trial} were not kept (a search keeps those of its "
                                  f"best {KEEP_WEIGHTS} trials and of the confirmed ones); `nasty train "
                                  f"{folder.path}` trains the winner and reports its test accuracy")
        folder.write_json("best.json", info)
        return info
    try:
        import torch

        from .. import parse
        from ..compile import compile_genotype
        from ..trainer import evaluate_test_set
        accs = []
        for f in files:
            model = compile_genotype(parse(best.proxy_genotype), input=data.shape, classes=data.num_classes)
            model.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
            accs.append(evaluate_test_set(model, data))
        info["test_acc"] = statistics.mean(accs)
        if len(accs) > 1:
            info["test_accs"] = accs
        folder.write_json("best.json", info)
    except Exception as e:  # noqa: BLE001 - the search's results stand without it
        info["test_acc_error"] = f"{type(e).__name__}: {e}"
    return info


TRAIN_HINT_EPOCHS = 10           # the closing hint's `nasty train RUN --epochs 10`


def train_estimate(folder: RunFolder, s: Settings, records, data) -> dict | None:
    """How long the closing hint's `nasty train RUN --epochs 10` should take here, on one thread:
    seconds per (MAC x image) measured by the search's complete trials (training, precise BN and
    validation over their images and epochs, as their train_s counts them), times the final
    network's MACs per image (the winner rebuilt at the data's input, as `nasty train` builds it),
    times 10 epochs over nasty train's images (the training set with its validation split).
    None when it cannot be said (no complete trial, data or a space given from Python)."""
    from ..cost import cost
    from ..data import split_train_val
    from ..final import final_genotype, open_run
    images = (folder.config().get("images") or {}).get("search")
    ok = [r for r in records if r.status is Status.OK and r.timings and r.timings.train_s and r.proxy
          and r.proxy.macs]
    if s.dataset == IN_MEMORY or not ok or not images:
        return None
    per_trial = s.epochs * (images["train"] + images["val"])
    spmi = statistics.median(r.timings.train_s / (r.proxy.macs * per_trial) for r in ok)
    try:
        run = open_run(folder.path)
        g, _ = final_genotype(run, run.values, data.shape, data.num_classes)
        macs = cost(g).macs
    except Exception:  # noqa: BLE001 - a hint; the search's results stand without it
        return None
    n = sum(len(i) for i in split_train_val(data, 0.1, seed=0))
    return {"seconds": spmi * macs * TRAIN_HINT_EPOCHS * n, "epochs": TRAIN_HINT_EPOCHS, "images": n, "macs": macs,
            "ns_per_mac_image": spmi * 1e9}


def finalize(folder: RunFolder, s: Settings, records, data, budget, console, stop_reason=None, wall=None,
             space=None) -> dict:
    """The winner's test accuracy and the end-of-run summary (printed and returned)."""
    from .guards import warnings
    info = score_winner(folder, records, data)
    mark_winner(folder, s, info, space)
    if info.get("trial") is not None and "train_estimate" not in info:
        est = train_estimate(folder, s, records, data)
        if est is not None:
            info["train_estimate"] = est
            folder.write_json("best.json", info)
    best = best_of(records, folder.confirmations())
    every = folder.records()                          # rejected samples included
    n = counts(every)
    overheads = [r.timings.total_s - r.timings.train_s for r in records
                 if r.status is Status.OK and r.timings and r.timings.train_s]
    summary = {"run": str(folder),
               "best": best and {"trial": best.trial, "val_acc": best.val_acc,
                                 "confirmed_val_acc": (info.get("confirmed") or {}).get("val_acc"),
                                 **{k: v for k, v in best.to_dict().items() if k in ("target", "proxy")}},
               "test_acc": info.get("test_acc"), "counts": n, "wall_s": wall, "stop_reason": stop_reason,
               "overhead_s_per_trial": statistics.mean(overheads) if overheads else None,
               "images": folder.config().get("images"), "warnings": warnings(folder.config(), records),
               "train_estimate": info.get("train_estimate")}
    for line in summary_lines(folder, every, info.get("test_acc"), budget.describe() if budget else None,
                              stop_reason, wall):
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    # the winner's cells and report.html; one that cannot be made is a note, never a failed search
    from .results import write_pictures
    pictures = write_pictures(folder, folder.records(), folder.config(), stop_reason, wall)
    summary.update(cells=pictures.cells, report=pictures.page and str(pictures.page), notes=pictures.notes)
    for line in pictures.lines():
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    return summary
