"""One-shot search (`--evaluator supernet`, and `--controller darts`): the whole search runs in
ONE trial of the executor (a Ray Tune trial, so --gpus-per-trial and --address work as for any
trial), where children share one pool of weights (supernet.py):

    warm-up   the supernet trains on uniformly random within-budget children (SPOS's and random
              weight sharing's supernet training), for --supernet-warmup of the search time;
    search    the controller proposes children through the same loop as a multi-trial search
              (SearchLoop.propose: the analytic budget check, --fit, over-budget samples recorded
              and never trained); each child is scored on the shared weights, told to the
              controller, then trains --child-steps steps on them (ENAS's alternation of the
              controller and the shared weights; 0 with evolution: SPOS scores a frozen supernet);
    DARTS     instead of both: the mixed network of controllers/darts.py trains its weights and
              its architecture weights in alternation (first order); its discretisation is
              scored and recorded every DARTS_EVERY seconds, and at the end.

The trial sends back, every few seconds, a message (`Message`, in the result's weights field,
which never reaches Tune's loggers) with the records of the children it scored (the driver
appends them to trials.jsonl, so `nasty report`, the plots and the Optuna study see them as any
trials), and every CHECKPOINT_SECONDS the controller's state (controller.json) and the
supernet's (runs/NAME/oneshot/supernet.pt, written by the driver: the trial may run on another
node). A killed search resumes from them: the controller as any controller does (records it was
not told are replayed), the supernet from its last checkpoint, and the search with what was
left of its time budget. The winner is never crowned on a shared-weight score: the top children
go through the confirmation stage (standalone training, confirm.py) like any search's.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import statistics
import time
from pathlib import Path

from ..errors import RunError
from .loop import SearchLoop
from .record import Status, TrialRecord
from .settings import Settings

ONESHOT_DIR = "oneshot"              # runs/NAME/oneshot/: supernet.pt
CHECKPOINT = "supernet.pt"
INFO = "oneshot.json"                # runs/NAME/oneshot.json: the supernet's progress, DARTS's picks
DEFAULT_CHILDREN = 100_000           # --trials of a one-shot search: the time budget ends it first
REPORT_SECONDS = 2.0                 # the trial sends records this often
CHECKPOINT_SECONDS = 15.0            # ... and its state this often (and when the warm-up ends)
DARTS_EVERY = 30.0                   # seconds between DARTS's recorded discretisations
UNSUPPORTED = ("tpe", "nsga2", "compound")
# The papers' schedules. ENAS (Pham et al. 2018): the shared weights train on the controller's own
# children from the start, about one step per 4-6 controller samples (2000 samples per ~350-step
# epoch). SPOS (Guo et al. 2020): a supernet trained on uniform single paths, then evolution over
# frozen weights. Random search with weight sharing (Li & Talwalkar 2019): uniform supernet training,
# then random children scored (here they keep training it, one step each).
CHILD_STEPS = {"reinforce": 0.25, "random": 1.0, "evolution": 0.0, "darts": 0.0}
WARMUP = {"reinforce": 0.0, "random": 0.5, "evolution": 0.5, "darts": 0.0}


# ------------------------------------------------------------------ settings
def prepare(s: Settings, resumed=None) -> Settings:
    """The settings of a one-shot search resolved and checked (before the run folder exists):
    `--controller darts` implies the supernet evaluator; --trials counts scored children. A resumed
    one-shot search (`resumed`: its RunFolder) keeps what was left of its time budget unless
    --time-budget is given again."""
    evaluator = s.evaluator or ("supernet" if s.controller == "darts" else "standalone")
    if evaluator not in ("standalone", "supernet"):
        raise RunError(f"unknown --evaluator {evaluator!r}; use standalone or supernet")
    s = dataclasses.replace(s, evaluator=evaluator)
    if evaluator == "standalone":
        if s.controller == "darts":
            raise RunError("--controller darts trains a supernet; use it with --evaluator supernet (or leave "
                           "--evaluator out)")
        return s
    if s.controller in UNSUPPORTED:
        raise RunError(f"--evaluator supernet runs random, reinforce (ENAS), evolution (SPOS) or darts; "
                       f"--controller {s.controller} needs --evaluator standalone")
    if s.confirm < 1:
        raise RunError("a one-shot search crowns its winner only after standalone training: --confirm must be "
                       "at least 1 with --evaluator supernet")
    if s.scheduler != "fifo":
        raise RunError("--scheduler asha stops standalone trials early; a one-shot search is one trial: drop it")
    if s.trials is None:
        s = dataclasses.replace(s, trials=DEFAULT_CHILDREN)
    if resumed is not None:
        check_checkpoint(resumed.path / ONESHOT_DIR / CHECKPOINT)
    if resumed is not None and s.time_budget is None:
        total = resumed.config().get("time_budget")
        if total:
            used = float((resumed.read_json(INFO, {}) or {}).get("elapsed", 0.0))
            s = dataclasses.replace(s, time_budget=max(30.0, float(total) - used))
    if s.child_steps is None:
        s = dataclasses.replace(s, child_steps=CHILD_STEPS.get(s.controller, 1.0))
    if s.supernet_warmup is None:
        s = dataclasses.replace(s, supernet_warmup=WARMUP.get(s.controller, 0.5))
    return s


# ------------------------------------------------------------------ the supernet's checkpoint
DAMAGED = "the supernet checkpoint cannot be restored"     # a trial's failure that a resume would repeat


def _move_away(path: Path) -> str:
    return (f"move {path} away and resume: the controller and every scored child are kept, the supernet trains "
            "again from the start")


def checkpoint_problem(blob: bytes) -> str | None:
    """What keeps a supernet checkpoint (oneshot/supernet.pt) from being restored, or None: read with
    weights_only, every value the trial restores of its type, the weights finite."""
    import torch
    try:
        from .supernet import from_bytes
        st = from_bytes(blob)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file fails in torch's many ways
        return f"it cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:80]})"
    net, run, rng = (st.get("supernet"), st.get("run"), st.get("warm_rng")) if isinstance(st, dict) else (None,) * 3
    if not isinstance(net, dict) or not isinstance(run, dict) or not isinstance(rng, (list, tuple)) or len(rng) != 3:
        return "it lacks the supernet's state, the search's progress or its random state"
    kinds = {"pool": dict, "keys": list, "opt": dict, "gen": torch.Tensor, "order": torch.Tensor, "cursor": int,
             "val_gen": torch.Tensor, "val_order": torch.Tensor, "val_cursor": int, "steps": int,
             "train_seconds": (int, float), "images_trained": int, "mac_images": (int, float)}
    for k, kind in kinds.items():
        if not isinstance(net.get(k), kind) or isinstance(net.get(k), bool):
            return f"its supernet state has no valid {k!r}"
    pool = net["pool"]
    if not all(isinstance(v, torch.Tensor) for v in pool.values()) or not set(net["keys"]) <= set(pool):
        return "its weight pool is not a set of named tensors"
    for k, v in pool.items():
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            return f"its weight {k} holds NaN or infinite values"
    if run.get("phase") not in ("warmup", "search") or not isinstance(run.get("elapsed"), (int, float)):
        return "its search progress (phase, elapsed time) is damaged"
    return None


def check_checkpoint(path: Path) -> None:
    """A one-line RunError, before Ray starts, when a resumed one-shot search's checkpoint cannot be
    restored: the trial would fail on it, and so would every resume after it."""
    if not path.is_file():
        return
    problem = checkpoint_problem(path.read_bytes())
    if problem:
        raise RunError(f"{path} is damaged: {problem}; {_move_away(path)}")


# ------------------------------------------------------------------ the trial
class _NoFile:
    def unlink(self, missing_ok=False):
        pass


class _Pending:
    """The records of a ChildLoop, held until the trial sends them to the driver."""

    def __init__(self):
        self.records: list[TrialRecord] = []

    def append(self, record, name=None):
        self.records.append(record)

    def prune_weights(self, keep):
        pass

    def weights(self, trial):
        return _NoFile()


class ChildLoop(SearchLoop):
    """The search loop inside the one-shot trial: proposes (with the budget check), records and
    tells exactly as a multi-trial search does; records wait in memory for the driver."""

    def write(self, plots=True):
        pass

    def save_controller(self):
        pass

    def take(self) -> list[TrialRecord]:
        out, self.folder.records = self.folder.records, []
        return out

    def past_deadline(self, extra: float = 0.0) -> bool:
        return self.deadline is not None and time.time() + extra + self.reserve() > self.deadline


_IN_PROCESS: dict[str, dict] = {}    # payloads of one-shot trials run in this process (SerialExecutor)


def pack(message: dict, checkpoint: bytes | None = None) -> str:
    """A message of the trial to the driver (JSON) and the supernet's checkpoint, as the text a
    result's weights field carries (standalone.take_weights reads it back)."""
    import io
    import json

    import torch
    buf = io.BytesIO()
    torch.save({"message": json.dumps(message, separators=(",", ":")),
                "checkpoint": torch.frombuffer(bytearray(checkpoint), dtype=torch.uint8) if checkpoint else None},
               buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def unpack(blob: bytes) -> tuple[dict, bytes | None]:
    import io
    import json

    import torch
    d = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    ck = d.get("checkpoint")
    return json.loads(d["message"]), (ck.numpy().tobytes() if ck is not None else None)


def in_process(config: dict, report) -> None:
    """An evaluation for loop.SerialExecutor (tests, debugging): the one-shot trial, or a confirmation
    (standalone) on the images of the one-shot search run in this process."""
    if "token" in config:
        return evaluate(config, None, report)
    from .standalone import evaluate as standalone
    return standalone(config, next(reversed(_IN_PROCESS.values())), report)


def trainable(config, data=None):
    """`evaluate` as a Ray Tune function trainable."""
    from ray import tune
    evaluate(config, data, tune.report)


def evaluate(config: dict, data: dict | None, report) -> None:
    """The one-shot trial: warm-up and search (or DARTS), reporting records and checkpoints."""
    started = time.time()
    try:
        if data is None:
            data = _IN_PROCESS[config["token"]]
        _Trial(config, data, report, started).run()
    except Exception as e:  # noqa: BLE001 - every failure becomes the trial's reason
        msg = " ".join(str(e).split())[:300]
        report({"failed": 1, "reason": f"{type(e).__name__}: {msg}" if msg else type(e).__name__,
                "started": started})


class _Trial:
    def __init__(self, config: dict, data: dict, report, started: float):
        import random

        import torch

        from ..controllers import make_controller
        from ..space import NetSpec, load_space
        from .budget import Budget
        from .supernet import Supernet, from_bytes
        self.config, self.report_fn, self.started = config, report, started
        torch.set_num_threads(max(1, int(config.get("threads") or 1)))
        s = Settings(**config["settings"])
        self.s = s
        extra = data.get("oneshot") or {}
        space = extra.get("space") or load_space(config["space"])
        t = config["target"]
        self.space = dataclasses.replace(space, target=NetSpec(False, tuple(t["input"]), t["classes"]))
        self.budget = Budget(config["budget"]["macs"], config["budget"]["params"])
        self.controller = make_controller(s.controller, self.space, seed=s.seed, budget=self.budget,
                                          objective=s.objective, **s.controller_kwargs())
        if extra.get("controller"):
            self.controller.load_state_dict(extra["controller"])
        self.net = Supernet(data, data["rows"]["search"], batch_size=s.batch_size, lr=s.lr,
                            score_images=s.score_images, bn=s.supernet_bn, seed=s.seed,
                            device="cuda" if s.gpus_per_trial else "cpu")
        self.state = {"phase": "warmup" if s.controller != "darts" and s.supernet_warmup > 0 else "search",
                      "elapsed": 0.0, "credit": 0.0, "warm_samples": 0, "reports": 0}
        self.warm_rng = random.Random(s.seed + 7)
        self.resumed_from = None
        if extra.get("checkpoint"):
            try:
                st = from_bytes(extra["checkpoint"])
                self.net.load_state_dict(st["supernet"])
                self.state.update(st["run"])
                v, internal, gauss = st["warm_rng"]
                self.warm_rng.setstate((v, tuple(internal), gauss))
            except Exception as e:  # noqa: BLE001 - its own failure, so that the driver's advice is not --resume
                raise RuntimeError(f"{DAMAGED} ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
            self.resumed_from = {"steps": self.net.steps, "elapsed": self.state["elapsed"],
                                 "phase": self.state["phase"]}
        self.deadline = config.get("deadline")
        self.elapsed_base = float(self.state["elapsed"])
        self.budget_total = config.get("time_budget")
        records = [TrialRecord.from_dict(d) for d in extra.get("records", [])]
        one = dataclasses.replace(s, epochs=1)
        shape, classes = self.net.shape, self.net.classes
        self.loop = ChildLoop(one, _Pending(), self.space, self.controller, self.budget, shape, classes,
                              records=records, samples=extra.get("samples", 0), told=extra.get("told", 0),
                              deadline=self.deadline, images=(1, 0), reserve=self.reserve)
        self.loop.replay([TrialRecord.from_dict(d) for d in extra.get("untold", [])], extra.get("told", 0))
        self.last_report = self.last_checkpoint = time.time()
        self.final: int | None = None
        self.darts_info = None

    # ------------------------------------------------------------ time
    def elapsed(self) -> float:
        """Seconds this search has run, across resumes."""
        return self.elapsed_base + time.time() - self.started

    def reserve(self) -> float:
        """Seconds to leave for the confirmation stage: its standalone trainings, estimated from the
        supernet's own training speed (seconds per MAC and image), at most half the time budget."""
        s = self.s
        if not s.confirm or not self.budget_total:
            return 0.0
        cap = 0.5 * self.budget_total
        spmi = self.net.seconds_per_mac_image()
        macs = [r.proxy.macs for r in self.loop.records[-200:] if r.status.scored and r.proxy]
        if spmi is None or not macs:
            return cap
        f = self.config["fidelity"]
        per = spmi * statistics.median(macs) * f["epochs"] * (f["train_images"] + f["val_images"] / 3) + 10.0
        waves = -(-s.confirm * s.confirm_seeds // max(1, self.config.get("slots", 1)))
        return min(cap, waves * per)

    # ------------------------------------------------------------ reporting
    def send(self, force: bool = False, done: bool = False):
        now = time.time()
        if not force and now - self.last_report < REPORT_SECONDS:
            return
        self.last_report = now
        recs = self.loop.take()
        scored = [r.val_acc for r in self.loop.records if r.val_acc is not None]
        self.state["reports"] += 1
        info = {"phase": self.state["phase"], "steps": self.net.steps, "pool_tensors": len(self.net.pool),
                "pool_params": self.net.pool.numel(), "compiled": self.net.compiled, "elapsed": self.elapsed(),
                "warm_samples": self.state["warm_samples"], "train_seconds": self.net.train_seconds,
                "resumed_from": self.resumed_from}
        message = {"n": self.state["reports"], "records": [r.to_dict() for r in recs], "info": info}
        if done:
            message["final"] = self.final
        if self.darts_info is not None:
            message["darts"] = self.darts_info
        checkpoint = None
        if force or now - self.last_checkpoint >= CHECKPOINT_SECONDS:
            self.last_checkpoint = now
            # the controller's state with the counts it was told, as of the records sent so far
            message["controller"] = {"state": self.controller.state_dict(), "samples": self.loop.samples,
                                     "told": self.loop.told}
            checkpoint = self.checkpoint()
        self.report_fn({"epoch": self.state["reports"], "val_acc": max(scored) if scored else 0.0,
                        "children": len(self.loop.records), "steps": self.net.steps, "started": self.started,
                        "weights_b64": pack(message, checkpoint)})

    def checkpoint(self) -> bytes:
        """The supernet's state and where the search is."""
        from .supernet import to_bytes
        v, internal, gauss = self.warm_rng.getstate()
        return to_bytes({"supernet": self.net.state_dict(), "run": {**self.state, "elapsed": self.elapsed()},
                         "warm_rng": [v, list(internal), gauss]})

    # ------------------------------------------------------------ phases
    def run(self):
        if self.s.controller == "darts":
            self.darts()
        else:
            if self.state["phase"] == "warmup":
                self.warmup()
                self.state["phase"] = "search"
                self.send(force=True)                # a checkpoint of the trained supernet
            self.search()
        self.send(force=True, done=True)

    def warm_done(self) -> bool:
        s = self.s
        if self.deadline is None:
            return self.net.steps >= s.supernet_warmup * s.trials
        search_time = (self.budget_total or 0) - self.reserve()
        return self.elapsed() >= s.supernet_warmup * search_time or self.loop.past_deadline()

    def warmup(self):
        """Train the supernet on uniformly random children within budget (never recorded)."""
        from ..controllers import RandomController
        sampler = RandomController(self.space, seed=0)
        sampler.rng = self.warm_rng
        one = dataclasses.replace(self.s, epochs=1, trials=2**62)
        warm = ChildLoop(one, _Pending(), self.space, sampler, self.budget, self.net.shape, self.net.classes,
                         images=(1, 0))
        while not self.warm_done():
            p = warm.propose()
            warm.take()
            if p is None:
                break
            model = self.net.child(p.record.proxy_genotype)
            self.net.train_step(model, p.record.proxy.macs)
            self.state["warm_samples"] += 1
            self.send()

    def search(self):
        """The controller's children: scored on the shared weights, told, then trained."""
        from ..errors import TrainingError
        loop, net, s = self.loop, self.net, self.s
        while True:
            p = loop.propose()
            if p is None:
                break
            key = f"child-{p.trial}"
            loop.dispatch(key, p)
            t0 = time.time()
            try:
                model = net.child(p.record.proxy_genotype)
                score = net.score(model)
                self.state["credit"] += s.child_steps
                while self.state["credit"] >= 1:
                    net.train_step(model, p.record.proxy.macs)
                    self.state["credit"] -= 1
            except TrainingError:
                raise                       # the shared weights diverged: the search cannot go on
            except Exception as e:  # noqa: BLE001 - this child could not be built or run
                loop.complete(key, {}, error=f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")
                self.send()
                continue
            loop.complete(key, {"val_acc": score, "epoch": 1, "train_s": time.time() - t0, "started": t0})
            self.send()

    def darts(self):
        """DARTS, first order: alpha on a validation batch, then w on a training batch."""
        from ..cost import cost
        from ..space import NetSpec
        ctrl, net = self.controller, self.net
        g = ctrl.relaxed(NetSpec(True, net.shape, net.classes))
        mixed = net.build(g, prepare=ctrl.attach)
        macs = cost(g, input=net.shape).macs
        step_s = None
        last_pick = time.time()
        while True:
            if self.deadline is None and ctrl.steps >= self.s.trials:
                break
            if self.loop.past_deadline(2 * (step_s or 0.0)) or self.loop.stop_reason:
                break
            t0 = time.time()
            mixed.train()
            x, y = net.next_val_batch()
            ctrl.arch_step(net.loss_fn(mixed(x), y))
            net.train_step(mixed, macs)
            step_s = time.time() - t0 if step_s is None else 0.9 * step_s + 0.1 * (time.time() - t0)
            if time.time() - last_pick >= DARTS_EVERY:
                last_pick = time.time()
                self.discretise()
            self.send()
        self.discretise(final=True)

    def discretise(self, final: bool = False):
        """Record DARTS's current pick, scored with the shared weights (single path)."""
        loop = self.loop
        info = self.controller.diagnostics()
        p = loop.propose()                 # the pick, through the budget check
        if p is not None:
            key = f"child-{p.trial}"
            loop.dispatch(key, p)
            t0 = time.time()
            score = self.net.score(self.net.child(p.record.proxy_genotype))
            loop.complete(key, {"val_acc": score, "epoch": 1, "train_s": time.time() - t0, "started": t0})
            info["trial"] = p.trial
            if final:
                self.final = p.trial
        info["final"] = final
        self.darts_info = info
        self.send(force=final)


# ------------------------------------------------------------------ the driver's side
def trial_config(s: Settings, space, budget, fidelity: dict, deadline, time_budget, slots: int) -> dict:
    """What the one-shot trial is sent (the images travel separately, in the payload)."""
    return {"trial": 0, "settings": dataclasses.asdict(s), "space": s.space,
            "target": {"input": list(space.target.input), "classes": space.target.classes},
            "budget": {"macs": budget.macs, "params": budget.params}, "fidelity": fidelity,
            "deadline": deadline, "time_budget": time_budget, "slots": slots, "threads": s.cpus_per_trial}


class OneShotSource(SearchLoop):
    """The one-shot search as the driver sees it: one trial (the supernet) whose results carry the
    children it scored. Records are appended and mirrored into the study as they arrive; the
    controller's state and the supernet's are saved as the trial checkpoints."""

    def __init__(self, *args, ctrl_state=None, payload=None, fidelity=None, time_budget=None,
                 confirm_slots=1, given_space=None, **kw):
        super().__init__(*args, **kw)
        self.fidelity, self.time_budget, self.confirm_slots = fidelity, time_budget, confirm_slots
        self.key = None
        self.started_job = False
        self.last_seen = 0                   # the last result processed (its "epoch")
        self.last_write = self.last_note = 0.0
        self.final: int | None = None
        self.info = self.folder.read_json(INFO, {}) or {}
        self._asked: dict = {}
        all_records = self.folder.records()
        told = self.told
        checkpoint = self.checkpoint_path()
        extra = {"controller": (ctrl_state or {}).get("state"), "samples": self.samples, "told": told,
                 "records": [TrialRecord(r.status, r.trial, proxy=r.proxy).to_dict() for r in self.records],
                 "untold": [r.to_dict() for r in all_records[told:]],
                 "checkpoint": checkpoint.read_bytes() if checkpoint.is_file() else None}
        if given_space is not None:
            extra["space"] = given_space
        self.payload = {**payload, "oneshot": extra}
        self.token = f"{os.getpid()}-{id(self)}"

    # ------------------------------------------------------------ files
    def checkpoint_path(self) -> Path:
        return self.folder.path / ONESHOT_DIR / CHECKPOINT

    # ------------------------------------------------------------ the protocol
    def propose(self):
        if self.started_job or self.fatal or self.stop_reason:
            return None
        if self.done() >= self.s.trials:
            self.exhausted = True
            return None
        self.started_job = True
        return "supernet"

    def dispatch(self, key: str, proposal) -> dict:
        self.key = key
        if self.progress:
            self.progress.started(-1, "supernet training")
        config = trial_config(self.s, self.space, self.budget, self.fidelity, self.deadline,
                              self.time_budget or self.s.time_budget, self.confirm_slots)
        _IN_PROCESS[self.token] = self.payload          # for an executor in this process; Ray sends the payload
        config["token"] = self.token
        return config

    def epoch(self, key: str, result: dict):
        """A result of the trial: its message travels in the weights field (Tune's callback may
        have taken it out already and handed it to `save_weights`)."""
        from .standalone import take_weights
        blob = take_weights(result)
        if blob and key == self.key:
            self.message(blob)

    def save_weights(self, key: str, blob: bytes):
        if key == self.key:
            self.message(blob)

    def message(self, blob: bytes):
        """Handle one message of the trial (once: Tune may hand it over twice)."""
        msg, checkpoint = unpack(blob)
        if msg["n"] <= self.last_seen:
            return
        self.last_seen = msg["n"]
        new = [TrialRecord.from_dict(d) for d in msg["records"]]
        for rec in new:
            self._record(rec)
        if new and self.progress:
            from .results import best_of
            best = best_of(self.records)
            quiet, self.progress.verbosity = self.progress.verbosity, 0     # one line per report, not per child
            try:
                for rec in new:
                    self.progress.finished(rec, best)
            finally:
                self.progress.verbosity = quiet
        ctrl = msg.get("controller")
        if ctrl:
            self.folder.write_json("controller.json", {"name": self.s.controller, "samples": ctrl["samples"],
                                                      "told": ctrl["told"], "state": ctrl["state"]})
            self.samples, self.told = ctrl["samples"], ctrl["told"]
        if checkpoint:
            self._save_checkpoint(checkpoint)
        if msg.get("final") is not None:
            self.final = int(msg["final"])
        self.info.update(msg["info"])
        if msg.get("darts"):
            hist = self.info.setdefault("darts", [])
            if not hist or (hist[-1].get("steps"), hist[-1].get("final")) != (msg["darts"].get("steps"), msg["darts"].get("final")):
                hist.append(msg["darts"])
        now = time.time()
        if ctrl or now - self.last_write > 10 or "final" in msg:
            self.last_write = now
            self.folder.write_json(INFO, {**self.info, "final": self.final})
            self.write(plots=now - self.last_plot > 20)
        if self.progress and (now - self.last_note > 15 or "final" in msg):
            self.last_note = now
            scored = [r for r in self.records if r.status.scored]
            distinct = len({r.proxy_genotype for r in scored})
            best = max(scored, key=lambda r: r.val_acc, default=None)
            self.progress.note(
                f"supernet: {self.info.get('phase')} · {self.info.get('steps', 0)} steps · {len(scored)} children "
                f"scored ({distinct} distinct)" + (f" · best #{best.trial} {best.val_acc:.4f} (shared weights)"
                                                  if best else ""))

    def _record(self, rec: TrialRecord):
        """Append a child's record and mirror it in the study."""
        line = self.lines
        try:
            self.folder.append(rec)
        except RunError as e:
            self.fatal = e
            raise
        self.lines += 1
        if rec.status.counted:
            self.records.append(rec)
        if self.study is not None:
            self.study.record(rec, line, self._decisions_of(rec))

    def _decisions_of(self, rec: TrialRecord):
        """The Decisions a record's values answer (for the study), cached by decision names."""
        from ..controllers.values import ReplayTrial
        key = tuple(rec.decisions)
        asked = self._asked.get(key)
        if asked is not None and all(d.name in rec.decisions for d in asked):
            return asked
        try:
            t = ReplayTrial(rec.decisions)
            self.space.sample(t)
            self._asked[key] = t.asked
            return t.asked
        except Exception:  # noqa: BLE001 - the record stays in the study without its decisions
            return None

    def _save_checkpoint(self, blob: bytes):
        from .folder import atomic_write
        try:
            atomic_write(self.checkpoint_path(), blob)
        except OSError as e:
            self.fatal = RunError(f"cannot write the supernet's checkpoint {self.checkpoint_path()}: "
                                  f"{e.strerror or e}")

    def complete(self, key: str, result: dict | None, error: str | None = None):
        if key != self.key:
            return
        result = dict(result or {})
        self.epoch(key, result)
        self.exhausted = True
        if error is not None or result.get("failed"):
            reason = error or result.get("reason")
            advice = (_move_away(self.checkpoint_path()) if DAMAGED in str(reason) else
                      f"`nasty search --resume {self.folder}` continues from its last checkpoint")
            self.fatal = RunError(f"the one-shot search failed: {reason}; the children it scored are kept: {advice}")
        elif self.final is None and not any(r.status.scored for r in self.records):
            self.stop_reason = "the supernet scored no child"
        self.folder.write_json(INFO, {**self.info, "final": self.final})

    def abandon(self, key: str):
        pass

    def picks(self, k: int) -> list[TrialRecord]:
        """The children to confirm: DARTS's final pick first, then the best by shared-weight score."""
        from .confirm import picks
        from .results import ranked
        top = picks(ranked(self.records), k)
        if self.final is not None:
            final = next((r for r in self.records if r.trial == self.final and r.status is Status.OK), None)
            if final is not None:
                top = [final] + [r for r in top if r.trial != final.trial][:k - 1]
        return top

    def remaining_estimate(self):
        return None if self.deadline is None else max(0.0, self.deadline - time.time())
