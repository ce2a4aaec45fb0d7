"""Standalone evaluation of one trial: compile the proxy genotype, train it on the images
it was sent, report every epoch, and send the final weights back with the last result.

It runs wherever the executor puts it: a Ray Tune worker (ray_backend.py), or this process
(loop.SerialExecutor). The search loop sends each trial its config (`SearchLoop.dispatch`)
and the payload of images (`make_payload`, once through Ray's object store); a trial
touches no file of the run folder, so it can run on any node of a cluster. Every error
inside a trial is caught and reported as the trial's failure reason; only a dead worker
or node is an error the executor sees (and Ray retries).
"""
from __future__ import annotations

import os
import time


def make_payload(data, train_idx, val_idx, more_train=(), more_val=()) -> dict:
    """The images the trials need, compact enough for Ray's object store, in one array:

        [search train | more train (confirmation) | search val | more val (confirmation)]

    and `rows`: which ranges a search trial and a confirmation train and validate on (a
    trial's config carries its own; see `evaluate`)."""
    import numpy as np
    parts = [np.asarray(train_idx), np.asarray(more_train, dtype=np.int64), np.asarray(val_idx),
             np.asarray(more_val, dtype=np.int64)]
    a, b, c, d = (len(p) for p in parts)
    idx = np.concatenate(parts)
    return {"name": data.name, "classes": list(data.classes), "mean": list(data.mean), "std": list(data.std),
            "x": np.ascontiguousarray(data.train_x[idx]), "y": np.ascontiguousarray(data.train_y[idx]),
            "n_train": a, "rows": {"search": {"train": [0, a], "val": [a + b, a + b + c]},
                                   "confirm": {"train": [0, a + b], "val": [a + b, a + b + c + d]}}}


def _dataset_from_payload(p, rows=None):
    import numpy as np
    from ..data import Dataset
    x, y = p["x"], p["y"]
    ds = Dataset(p["name"], tuple(p["classes"]), x, y, x[:0], y[:0])
    # keep the statistics of the full training set, as the test evaluation uses them
    object.__setattr__(ds, "mean", tuple(p["mean"]))
    object.__setattr__(ds, "std", tuple(p["std"]))
    rows = rows or p.get("rows", {}).get("search") or {"train": [0, p["n_train"]], "val": [p["n_train"], len(y)]}
    return ds, np.arange(*rows["train"]), np.arange(*rows["val"])


# ------------------------------------------------------------------ the trial
def evaluate(config: dict, data: dict, report) -> None:
    """One evaluation: compile the proxy genotype, train it, `report(result)` each epoch."""
    started = time.time()
    where = _placement()
    threads = max(1, int(config.get("threads", 1)))
    try:
        import torch
        torch.set_num_threads(threads)
        from .. import parse
        from ..compile import compile_genotype
        from ..train import DeadlineReached, TrainConfig, train
        ds, train_idx, val_idx = _dataset_from_payload(data, config.get("rows"))
        g = parse(config["proxy"])
        from ..genotype.check import require_head
        require_head(g)
        torch.manual_seed(config["seed"])
        model = compile_genotype(g, input=ds.shape, classes=ds.num_classes)
        inject_fault(model, g.name)
        tc = TrainConfig(**config["train"], threads=threads)

        def on_epoch(epoch, m):
            last = epoch == tc.epochs
            extra = {}
            if last and config.get("keep_weights"):
                # the weights travel back with the result: the driver writes them into the run folder,
                # which a trial on another node of a cluster cannot see
                extra["weights_b64"] = _weights_blob(model)
            report({**extra, "val_acc": m["val_acc"], "train_loss": m["train_loss"], "epoch": epoch,
                    "images_per_s": m["images_per_s"], "train_s": m["elapsed_s"], "started": started, **where,
                    **({"final": 1} if last else {})})

        try:
            # the time budget is hard: at the deadline the trial stops mid-epoch and says so
            train(model, ds, tc, train_idx, val_idx, on_epoch=on_epoch, deadline=config.get("deadline"))
        except DeadlineReached as e:
            report({"timeout": 1, "reason": f"stopped at the time budget in epoch {e.epoch} of {tc.epochs}",
                    "started": started, **where})
            return
    except Exception as e:  # noqa: BLE001 - every failure becomes a recorded reason
        msg = " ".join(str(e).split())[:300]
        report({"failed": 1, "reason": f"{type(e).__name__}: {msg}" if msg else type(e).__name__,
                "started": started, **where})


def take_weights(result: dict) -> bytes | None:
    """Pop the final weights a trial's last result carries (see `evaluate`); None if it has none."""
    import base64
    blob = result.pop("weights_b64", None)
    if not blob:
        return None
    try:
        return base64.b64decode(blob, validate=True)
    except ValueError:
        return None


def _weights_blob(model) -> str:
    """A state dict as text for a Tune result (torch.save format; read back with weights_only=True)."""
    import base64
    import io
    import torch
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _placement() -> dict:
    """Where this trial runs: its Ray node and the GPU ids Ray assigned to it (recorded per trial)."""
    try:
        import ray
        if not ray.is_initialized():           # not in a Ray worker: asking would start or join a Ray
            return {}
        return {"node": ray.get_runtime_context().get_node_id(), "gpu_ids": [str(i) for i in ray.get_gpu_ids()]}
    except Exception:  # noqa: BLE001 - outside Ray (a direct call): nothing to say
        return {}


FAULT_ENV = "NASTY_FAULT_INJECT"


def inject_fault(model, name: str):
    """Test hook (tests/test_faults.py): only when NASTY_FAULT_INJECT=1 is in the worker's
    environment, a proxy network named fault_raise, fault_oom or fault_kill fails in its
    first forward pass: it raises, raises torch.OutOfMemoryError, or SIGKILLs its worker."""
    if os.environ.get(FAULT_ENV) != "1" or not name.startswith("fault_"):
        return
    mode = name[len("fault_"):]

    def hook(module, args):
        import torch
        if mode == "raise":
            raise RuntimeError("injected fault: this trial raises")
        if mode == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected fault)")
        if mode == "kill":
            import signal
            os.kill(os.getpid(), signal.SIGKILL)

    model.register_forward_pre_hook(hook)
