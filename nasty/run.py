"""Running a search: settings, Ray Tune orchestration, resume and reporting. Its parts:
the controller's side in the driver process (driver.py), one trial in its Ray worker
(trial.py), the run folder (runfolder.py), ranking and plots (results.py).

    driver process (driver.py)                        Ray Tune trial (trial.py, a worker)
    ──────────────                                    ─────────────────────────────────
    controller.ask() -> space(trial) -> TARGET genotype
    analytic cost; over budget? -> recorded, told,
      never trained (with --fit: width scaled first)
    ControllerSearcher.suggest() returns the PROXY ──▶ compile proxy, train on the data
      genotype text                                    at hand, tune.report() each epoch
    on_trial_result / on_trial_complete  ◀──────────── (ASHA may stop it early)
    -> runs/<name>/trials.jsonl, controller.json,
       leaderboard, best.nasty, plots

The controller lives in the driver and Ray Tune sees it only through the small
`ControllerSearcher` adapter (Tune's own `Searcher` protocol), so every controller
gets the budget check, the run folder and resume for free.

The run folder is the truth: records are appended as trials finish (JSON lines),
everything else is rewritten atomically, so a crash or Ctrl-C at any moment leaves
a folder that `nasty search --resume` continues and `nasty report` reads.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .budget import Budget
from .errors import BudgetError, NastyError, RunError
from .report import human
from .results import best_of, finished, leaderboard_text, write_results
from .driver import Driver, _callback_class, _searcher_class
from .runfolder import RunFolder, _jsonable
from .trial import make_payload, trainable

# ------------------------------------------------------------------ defaults
# Chosen so that `nasty search --space nasnet --budget 600MFLOPs` finishes within
# 10 minutes on a 2-core CPU machine (measured; see the README), and scaled up
# where a GPU is present.
CPU_DEFAULTS = dict(trials=48, epochs=2, subset=6000, val_subset=2000, time_budget=450.0,
                    batch_size=64, lr=0.05, cpus_per_trial=1.0, gpus_per_trial=0.0)
GPU_DEFAULTS = dict(trials=200, epochs=5, subset=20000, val_subset=5000, time_budget=450.0,
                    batch_size=256, lr=0.1, cpus_per_trial=2.0, gpus_per_trial=0.25)
PREFLIGHT_TRIES = 300              # samples tried before a budget is declared impossible
# A trial whose worker process or node dies is run again from scratch this many times before it
# is recorded as failed. Errors inside the trial (a raise, NaN, CUDA OOM) are caught in the
# trial and recorded at once: running them again would fail the same way.
TRIAL_RETRIES = 2
RUN_FILES = ("config.json", "trials.jsonl", "controller.json", "leaderboard.json", "leaderboard.txt",
             "best.nasty", "best_proxy.nasty", "best.json", "plots/")


@dataclass
class Settings:
    """Everything a search needs; stored resolved in runs/<name>/config.json."""
    space: str | None = None
    budget: str | None = None            # "600MFLOPs": multiply-adds at the target
    params: str | None = None            # "5M": parameters at the target
    fit: bool = False
    controller: str = "random"
    objective: str | None = None         # what the controller optimises (accuracy, pareto, soft)
    baseline: str | None = None          # --controller compound: the network whose scaling is searched
    trials: int | None = None
    epochs: int | None = None
    subset: int | None = None            # training images per trial (None: the whole train split)
    val_subset: int | None = None        # validation images per trial
    val_fraction: float = 0.1
    batch_size: int | None = None
    lr: float | None = None
    time_budget: float | None = None     # seconds of searching before no new trial starts
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    address: str | None = None
    scheduler: str = "fifo"              # fifo | asha
    seed: int = 0
    name: str | None = None
    runs_dir: str = "runs"

    def resolved(self, gpu: bool) -> "Settings":
        d = GPU_DEFAULTS if gpu else CPU_DEFAULTS
        out = dataclasses.replace(self)
        for k, v in d.items():
            if getattr(out, k) is None:
                setattr(out, k, v)
        return out

    def check(self):
        if self.scheduler not in ("fifo", "asha"):
            raise RunError(f"unknown --scheduler {self.scheduler!r}; use fifo or asha")
        for k in ("trials", "epochs", "batch_size"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise RunError(f"--{k.replace('_', '-')} must be at least 1, got {v}")
        for k in ("subset", "val_subset"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise RunError(f"--{k.replace('_', '-')} must be at least 1, got {v}")
        if self.cpus_per_trial is not None and self.cpus_per_trial <= 0:
            raise RunError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise RunError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")
        if self.gpus_per_trial and self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise RunError(f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise RunError(f"--time-budget must be positive, got {self.time_budget}")
        if self.lr is not None and not self.lr > 0:
            raise RunError(f"--lr must be positive, got {self.lr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise RunError(f"--seed must be a whole number from 0 to 2^31-1, got {self.seed!r}")
        if not 0 < self.val_fraction < 1:
            raise RunError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")



# ------------------------------------------------------------------ data
def load_data(s: Settings):
    """(dataset, train indices, validation indices) for a search: the validation split is
    held out of train and ranks architectures; the test set is only for the winner."""
    import numpy as np
    from .data import load_dataset, split_train_val
    data = load_dataset(s.dataset, s.data_dir)
    train_idx, val_idx = split_train_val(data, s.val_fraction, seed=s.seed)
    rng = np.random.default_rng(s.seed)
    if s.subset is not None and s.subset < len(train_idx):
        train_idx = np.sort(rng.choice(train_idx, s.subset, replace=False))
    if s.val_subset is not None and s.val_subset < len(val_idx):
        val_idx = np.sort(rng.choice(val_idx, s.val_subset, replace=False))
    return data, train_idx, val_idx


# ------------------------------------------------------------------ Ray
def _quiet_ray():
    import logging
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")   # no CSV/TensorBoard per trial
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")  # failed trials report no val_acc
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("ray", "ray.tune", "ray.train", "ray.air", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def start_ray(s: Settings, payload_bytes: int):
    """Join --address, or start a local Ray with the dashboard off. Returns (started_here, resources)."""
    _quiet_ray()
    import ray
    if ray.is_initialized():
        return False, ray.cluster_resources()
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    try:
        if s.address:
            ray.init(address=s.address, **kw)
        else:
            ray.init(address="local", num_cpus=os.cpu_count() or 1,   # local even if RAY_ADDRESS is set
                     object_store_memory=int(max(256 * 2**20, 3 * payload_bytes)), **kw)
    except Exception as e:  # noqa: BLE001 - connection problems are the user's to fix
        where = f"join the Ray cluster at {s.address}" if s.address else "start a local Ray instance"
        hint = ("; check the address with `ray status` on the head node (a cluster started with token "
                "authentication also needs RAY_AUTH_MODE=token here)") if s.address else ""
        raise RunError(f"cannot {where}: {type(e).__name__}: {' '.join(str(e).split())[:200]}{hint}") from None
    return True, ray.cluster_resources()


def _gpu_check(s: Settings, resources=None):
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


# ------------------------------------------------------------------ search
def _space_and_budget(s: Settings):
    from .budget import Budget
    from .space import load_space
    budget = Budget.parse(s.budget, s.params)
    if s.controller == "compound":
        if not s.baseline or s.space:
            raise RunError("--controller compound searches the scaling of one network: give --baseline NAME "
                           "(e.g. efficientnet_b0) instead of --space")
        from .controllers.compound import compound_space
        space = compound_space(s.baseline)
    else:
        if s.baseline:
            raise RunError("--baseline is for --controller compound")
        space = load_space(s.space)
    if s.fit and not space.width_decision:
        raise RunError(f"--fit needs a width decision, and space {space.name!r} declares none "
                       "(@space(..., width_decision='NAME'))")
    return space, budget


def preflight(space, budget: Budget, fit: bool, seed: int = 0, tries: int = PREFLIGHT_TRIES,
              seconds: float = 30.0):
    """Sample until one architecture fits the budget; a broken space or an impossible
    budget is a one-line error before any run folder or Ray process exists."""
    from .budget import fit_width, target_cost
    from .space import RandomTrial, SpaceError
    rng = random.Random(seed + 7919)
    smallest, errors, start = None, 0, time.time()
    last_error = None
    for i in range(tries):
        t = RandomTrial(rng)
        try:
            values, _ = space.sample(t)
            c = target_cost(space, values)
        except NastyError as e:
            errors += 1
            last_error = e
            if errors >= 5 and errors > i // 2:
                raise SpaceError(f"space {space.name!r} fails to build its samples: {e}") from None
            continue
        except Exception as e:  # noqa: BLE001 - a bug in the user's space file
            raise SpaceError(f"space {space.name!r} failed building a sample: {type(e).__name__}: {e}") from None
        if not budget or budget.check(c) is None:
            return c
        if fit:
            f = fit_width(space, values, budget, c)
            if f is not None:
                return f
            d = next(x for x in t.asked if x.name == space.width_decision)
            c = target_cost(space, {**values, space.width_decision:
                                    d.low if d.kind == "float" else min(d.options())})
        if smallest is None or budget.excess(c) < budget.excess(smallest):
            smallest = c
        if time.time() - start > seconds and i >= 20:
            break
    if smallest is None:
        raise SpaceError(f"space {space.name!r} fails to build its samples: {last_error}")
    raise BudgetError(f"no architecture of space {space.name!r} fits the budget {budget.describe()} "
                      f"after {i + 1} samples; the smallest seen costs {human(smallest.macs)}MACs "
                      f"({smallest.macs:,}) and {human(smallest.params)} params at the target"
                      + ("" if fit else "; raise the budget or try --fit"))


def _fresh_or_resume(s: Settings, resume: str | None):
    """(settings, folder, records, controller state) for a new run or a resumed one."""
    if resume:
        folder = RunFolder(resume)
        cfg = folder.config(Settings)        # a damaged file (wrong JSON types) is refused, untouched
        given = {k: v for k, v in dataclasses.asdict(s).items() if v != getattr(Settings(), k)}
        changeable = {"trials", "time_budget", "cpus_per_trial", "gpus_per_trial", "address", "runs_dir", "name"}
        fixed = {k: v for k, v in given.items() if k not in changeable and cfg.get(k) != v}
        if fixed:
            k = sorted(fixed)[0]
            raise RunError(f"--{k.replace('_', '-')} cannot change when resuming {folder}; "
                           f"the run was started with {cfg.get(k)!r} (only --trials, --time-budget, "
                           "--cpus-per-trial, --gpus-per-trial and --address may)")
        known = {f.name for f in dataclasses.fields(Settings)}
        merged = Settings(**{k: v for k, v in cfg.items() if k in known})
        for k in changeable & set(given):
            if k not in ("runs_dir", "name"):
                setattr(merged, k, given[k])
        if "time_budget" not in given:
            merged.time_budget = None
        ctrl_state = folder.controller_state()     # a corrupt file fails before any repair
        return merged, folder, folder.trials(repair=True), ctrl_state
    if not s.space and not (s.controller == "compound" and s.baseline):
        raise RunError("--space is required (a built-in name such as nasnet, or a .py file), "
                       "or --resume runs/NAME")
    if s.space and s.space.endswith(".py"):                 # a user's file: found again on resume from anywhere
        s = dataclasses.replace(s, space=str(Path(s.space).resolve()))
    stem = Path(s.space).stem if s.space else f"compound-{Path(s.baseline).stem}"
    name = s.name or f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = RunFolder(Path(s.runs_dir) / name)
    if folder.path.exists():
        raise RunError(f"run folder {folder.path} already exists; continue it with "
                       f"`nasty search --resume {folder.path}` or pick another --name")
    return dataclasses.replace(s, name=name), folder, [], None


def search(s: Settings, resume: str | None = None, console=None, live: bool | None = None) -> dict:
    """Run (or resume) a search; returns the summary (also in runs/<name>/best.json)."""
    t_start = time.time()
    s.check()
    s, folder, records, ctrl_state = _fresh_or_resume(s, resume)
    records = [r for r in records if r.get("status") != "rejected"]
    space, budget = _space_and_budget(s)
    from .controllers import REGISTRY
    if s.controller not in REGISTRY:
        raise RunError(f"unknown --controller {s.controller!r}; choose one of {', '.join(sorted(REGISTRY))}")
    import torch
    gpu = torch.cuda.is_available() if s.gpus_per_trial is None else bool(s.gpus_per_trial)
    s = s.resolved(gpu)
    if s.gpus_per_trial and not torch.cuda.is_available() and not s.address:
        _gpu_check(s)
    s.check()
    if not resume:
        preflight(space, budget, s.fit, s.seed)
    data, train_idx, val_idx = load_data(s)          # a missing dataset fails here, before any folder
    from .controllers import make_controller
    controller = make_controller(s.controller, space, seed=s.seed, budget=budget, objective=s.objective)
    samples = told = 0
    if ctrl_state:
        from .controllers import check_resume
        check_resume(ctrl_state["state"], s.controller)
        controller.load_state_dict(ctrl_state["state"])
        samples, told = ctrl_state.get("samples", 0), ctrl_state.get("told", 0)
    config = dataclasses.asdict(s)
    config.update(space_name=space.name, budget_macs=budget.macs, budget_params=budget.params,
                  target={"input": list(space.target.input), "classes": space.target.classes},
                  proxy={"input": list(data.shape), "classes": data.num_classes},
                  flop_convention="one multiply-add = one FLOP")
    payload = make_payload(data, train_idx, val_idx)
    payload_bytes = payload["x"].nbytes + payload["y"].nbytes
    started_ray, resources = start_ray(s, payload_bytes)    # joining a cluster can fail: before any folder
    summary = None
    try:
        _gpu_check(s, resources if s.address else None)
        if resume:
            # a record the controller was not told before a crash is told now
            all_recs = folder.trials()
            for rec in all_recs[told:]:
                _replay_tell(controller, space, rec)
                told += 1
        else:
            config["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
            folder.create(config)
        from .progress import Progress
        done_before = len(finished(records))
        title = f"nasty search · {space.name} · budget {budget.describe()} · {s.controller}"
        progress = Progress(title, s.trials, console=console, live=live)
        slots = max(1, int(resources.get("CPU", 1) // s.cpus_per_trial))
        if s.gpus_per_trial:
            slots = min(slots, max(1, int(resources.get("GPU", 0) // s.gpus_per_trial)))
        deadline = time.time() + s.time_budget if s.time_budget else None
        driver = Driver(s, folder, space, controller, budget, data.shape, data.num_classes, progress,
                        records, samples, told, deadline, slots, images=(len(train_idx), len(val_idx)))
        driver.save_controller()
        if done_before >= s.trials:
            progress.note(f"{folder}: all {s.trials} trials are done; pass --trials N to run more")
        else:
            with progress:
                progress.remaining = s.time_budget
                _tune(s, driver, payload, slots)
        driver.write(plots=True)
        summary = finalize(folder, s, driver.records, data, budget, progress.console, driver,
                           time.time() - t_start)
    except KeyboardInterrupt:
        if folder.exists:
            from rich.console import Console
            (console or Console(stderr=True)).print(
                f"interrupted: finished trials are saved in {folder}; continue with "
                f"`nasty search --resume {folder}`", soft_wrap=True, highlight=False, markup=False)
        raise
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    return summary


def _tune(s: Settings, driver: Driver, payload: dict, slots: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    searcher = _searcher_class()(driver)
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=s.epochs, grace_period=1,
                               reduction_factor=2) if s.scheduler == "asha" else FIFOScheduler())
    resources = {"cpu": s.cpus_per_trial}
    if s.gpus_per_trial:
        resources["gpu"] = s.gpus_per_trial
    fn = tune.with_resources(tune.with_parameters(trainable, data=payload), resources)
    storage = tempfile.mkdtemp(prefix="nasty-ray-")
    tuner = tune.Tuner(
        fn,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, metric="val_acc", mode="max",
                                    num_samples=-1, reuse_actors=True, max_concurrent_trials=slots,
                                    time_budget_s=(s.time_budget + 60.0) if s.time_budget else None),
        run_config=tune.RunConfig(name="tune", storage_path=storage, verbose=0,
                                  callbacks=[_callback_class()(driver)],
                                  failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES)),
    )
    try:
        tuner.fit()        # Ctrl-C: Tune's handler stops the trials and returns (a second one aborts)
    finally:
        import shutil
        shutil.rmtree(storage, ignore_errors=True)
    stopped_early = bool(driver.pending) or not (driver.exhausted or driver.stop_reason)
    # trials cut before they finished (Ctrl-C, the hard time limit) are not recorded: a resume runs new ones
    for pid in list(driver.pending):
        driver._forget(driver.pending.pop(pid))
    if stopped_early and (driver.deadline is None or time.time() < driver.deadline + 30):
        driver.write(plots=True)
        raise KeyboardInterrupt

def _replay_tell(controller, space, rec):
    from .controllers import Result
    from .space import FixedTrial
    try:
        t = FixedTrial(_restore_values(space, rec.get("decisions", {})))
        space.sample(t)
        if rec["status"] == "rejected":
            res = Result(None, "over_budget", dict(rec.get("target", {})))
        elif rec["status"] == "failed":
            res = Result(None, "failed", {})
        else:
            res = Result(rec.get("val_acc"), "ok", {"val_acc": rec.get("val_acc")})
        controller.tell(t, res)
    except Exception:  # noqa: BLE001 - best effort; the record itself is safe
        pass


def _restore_values(space, values: dict) -> dict:
    """JSON turned tuples into lists; give choices back their own types."""
    out = dict(values)
    try:
        for d in space.decisions(values):
            v = out.get(d.name)
            if isinstance(v, list):
                for c in d.choices:
                    if isinstance(c, tuple) and list(c) == v:
                        out[d.name] = c
    except Exception:  # noqa: BLE001
        pass
    return out


def finalize(folder: RunFolder, s: Settings, records, data, budget, console, driver=None, wall=None) -> dict:
    """Test accuracy of the winner (only it ever sees the test set) and the summary."""
    best = best_of(records)
    info = folder.read_json("best.json", {}) or {}
    if best is not None and "test_acc" not in info:
        w = folder.weights(best["trial"])
        if w.is_file():
            try:
                import torch
                from . import parse
                from .compile import compile_genotype
                from .train import evaluate_test_set
                model = compile_genotype(parse(best["proxy_genotype"]), input=data.shape,
                                         classes=data.num_classes)
                model.load_state_dict(torch.load(w, map_location="cpu", weights_only=True))
                info["test_acc"] = evaluate_test_set(model, data)
                folder.write_json("best.json", info)
            except Exception as e:  # noqa: BLE001
                info["test_acc_error"] = f"{type(e).__name__}: {e}"
    n = {k: sum(1 for r in records if r["status"] == k) for k in ("ok", "failed", "stopped", "timeout")}
    rejected = sum(1 for r in folder.trials() if r["status"] == "rejected")
    overheads = [r["timings"]["total_s"] - (r["timings"].get("train_s") or 0) for r in records
                 if r["status"] == "ok" and r.get("timings", {}).get("train_s")]
    summary = {"run": str(folder), "best": best and {k: best.get(k) for k in ("trial", "val_acc", "target", "proxy")},
               "test_acc": info.get("test_acc"), "counts": {**n, "rejected": rejected},
               "wall_s": wall, "stop_reason": driver.stop_reason if driver else None,
               "overhead_s_per_trial": statistics.mean(overheads) if overheads else None}
    lines = [""]
    if best is None:
        lines.append(f"no trial finished training; see {folder.path / 'trials.jsonl'}")
    else:
        t = best["target"]
        lines.append(f"best architecture: trial #{best['trial']} — proxy val acc {best['val_acc']:.4f}"
                     + (f", test acc {info['test_acc']:.4f}" if info.get("test_acc") is not None else ""))
        lines.append(f"  target {'x'.join(map(str, t['input']))}, {t['classes']} classes: "
                     f"{t['macs']:,} MACs ({human(t['macs'])}FLOPs, one multiply-add = one FLOP), "
                     f"{t['params']:,} params" + (f"; budget {budget.describe()}" if budget else ""))
        d = json.dumps(_jsonable(best["decisions"]))
        if len(d) > 160:
            short = {k: v for k, v in best["decisions"].items() if len(str(k)) <= 3}   # N, F, C, L...
            d = (", ".join(f"{k}={v}" for k, v in short.items()) + ", " if short else "") + \
                f"{len(best['decisions'])} decisions in best.json"
        lines.append(f"  decisions: {d}")
    lines.append(f"trials: {n['ok']} trained, {n['failed']} failed, {n['stopped'] + n['timeout']} stopped early, "
                 f"{rejected} over budget (never trained)"
                 + (f" — stopped because {driver.stop_reason}" if driver and driver.stop_reason else "")
                 + (f"; {wall:.0f} s" if wall else ""))
    lines.append(f"files: {folder}/best.nasty (target genotype), best_proxy.nasty, best.json, leaderboard.txt, "
                 f"trials.jsonl, plots/*.png")
    lines.append(f"next: `nasty train {folder} --epochs 10` trains the winner and reports test accuracy")
    for l in lines:
        console.print(l, soft_wrap=True, highlight=False, markup=False)
    return summary


# ------------------------------------------------------------------ report
def report(run_dir, console=None, top: int = 20) -> str:
    """Print the leaderboard of a run and rewrite its plots and results."""
    folder = RunFolder(run_dir)
    cfg = folder.config()
    records = [r for r in folder.trials() if r["status"] != "rejected"]
    write_results(folder, records, cfg.get("budget_macs"), plots=True)
    text = leaderboard_text(folder.trials(), top=top)
    head = (f"run {folder.path}: space {cfg.get('space_name', cfg.get('space'))}, budget "
            f"{cfg.get('budget') or '-'}{' / ' + cfg['params'] + ' params' if cfg.get('params') else ''}, "
            f"controller {cfg.get('controller')}, dataset {cfg.get('dataset')}")
    b = folder.read_json("best.json")
    tail = ""
    if b:
        tail = (f"\nbest: trial #{b['trial']} val acc {b['val_acc']:.4f}"
                + (f", test acc {b['test_acc']:.4f}" if b.get("test_acc") is not None else "")
                + f", target {human(b['target']['macs'])}MACs {human(b['target']['params'])} params"
                + f" -> {folder.path / 'best.nasty'}")
    out = head + "\n\n" + text + tail + f"\nplots: {folder.path / 'plots'}/accuracy_vs_macs.png, best_so_far.png"
    if console is not None:
        console.print(out, soft_wrap=True, highlight=False, markup=False)
    return out
