"""A fast proxy trainer for any image classifier taking (B, C, H, W).

A search trains hundreds of short-lived candidates, so per-step overhead matters
more than anything a general training loop offers. The whole (sub)set lives on the
device as one normalized tensor; an epoch is a random permutation sliced into
batches, and augmentation is done in batch on the device. There is no DataLoader,
no worker process and no per-sample Python.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from nasty.data import Dataset, to_device_tensors
from nasty.errors import TrainingError

SCHEDULES = ("onecycle", "cosine")


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 256
    lr: float = 0.1  # peak (onecycle) or starting (cosine) rate; suits BN nets with a pooled head
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    subset: int | None = None  # at most this many training images; None = all
    val_subset: int | None = None  # at most this many validation images; None = all
    seed: int = 0
    device: str = "auto"  # "auto" = cuda when available, else cpu
    # Augmentation is off by default: proxy runs last a few epochs, too short to
    # overfit, so it mostly slows convergence. Flip suits CIFAR, not digits.
    crop_padding: int = 0  # random crop after zero-padding by this many pixels
    flip: bool = False  # random horizontal flip
    channels_last: bool = True  # NHWC is markedly faster for convs on CPU and on tensor cores
    threads: int | None = None  # torch.set_num_threads, when given
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise TrainingError(f"learning rate must be positive, got {self.lr}")


@dataclass
class TrainResult:
    best_val_acc: float
    final_val_acc: float
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch
    images_per_s: float = 0.0  # training throughput, evaluation excluded
    seconds: float = 0.0  # wall time of the whole call, data upload included


EpochCallback = Callable[[int, dict], None]


def train(model: nn.Module, data: Dataset, cfg: TrainConfig, train_idx: np.ndarray,
          val_idx: np.ndarray, on_epoch: EpochCallback | None = None) -> TrainResult:
    """Train ``model`` in place on ``data.train_x[train_idx]``, validating on ``val_idx``.

    ``on_epoch(epoch, metrics)`` runs after every epoch (epochs count from 1) with
    keys epoch, train_loss, val_acc, images_per_s, elapsed_s. It is how Ray Tune
    hears about progress, so an exception from it (a trial being stopped) propagates.
    """
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Model-internal randomness (dropout, drop-path) repeats with the seed too.
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_idx = _take(train_idx, cfg.subset, rng)
    val_idx = _take(val_idx, cfg.val_subset, rng)
    x_train, y_train = _upload(data, train_idx, device, cfg)
    x_val, y_val = _upload(data, val_idx, device, cfg)

    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    # The ragged last batch is dropped: the permutation changes every epoch, so no image
    # is left out for long, and a batch of one would break BatchNorm.
    steps = max(1, len(x_train) // cfg.batch_size)
    optimizer = _optimizer(model, cfg)
    scheduler = _scheduler(optimizer, cfg, cfg.epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    # A CPU generator for order and augmentation gives the same draws on every device.
    generator = torch.Generator().manual_seed(cfg.seed)

    history, train_seconds, images_seen = [], 0.0, 0
    for epoch in range(1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss = _train_epoch(model, x_train, y_train, optimizer, scheduler, loss_fn,
                                  cfg, generator, epoch, steps)
        epoch_seconds = time.perf_counter() - epoch_start  # train_loss was synced, so this is true time
        images = min(len(x_train), steps * cfg.batch_size)
        train_seconds, images_seen = train_seconds + epoch_seconds, images_seen + images
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_acc": evaluate(model, x_val, y_val, cfg.eval_batch_size),
            "images_per_s": images / epoch_seconds,
            "elapsed_s": time.perf_counter() - start,
        }
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)

    return TrainResult(
        best_val_acc=max(m["val_acc"] for m in history),
        final_val_acc=history[-1]["val_acc"],
        history=history,
        images_per_s=images_seen / train_seconds,
        seconds=time.perf_counter() - start,
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N", "mps" or "xpu" as a
    torch.device this machine has; anything else is a one-line TrainingError, before any
    data is uploaded (torch would fail later, deep inside a trial, with a long traceback)."""
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use = "use --device auto, cpu or cuda[:N]"
    try:
        d = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise TrainingError(f"unknown device {device!r}; {use}") from None
    if d.type == "cpu":
        return d
    backends = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None), "xpu": getattr(torch, "xpu", None)}
    if d.type not in backends:
        raise TrainingError(f"nasty cannot train on {d.type!r} devices; {use}")
    backend = backends[d.type]
    if backend is None or not backend.is_available():
        why = ("this torch is a CPU-only build" if d.type == "cuda" and torch.version.cuda is None
               else f"no {d.type.upper()} device is visible on this machine")
        raise TrainingError(f"device {str(device)!r} is not available: {why}; {use}")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if d.index is not None and d.index >= count:
        raise TrainingError(f"device {str(device)!r} does not exist: this machine has {count} "
                            f"{d.type.upper()} device{'s' if count != 1 else ''} "
                            f"({d.type}:0{f'..{d.type}:{count - 1}' if count > 1 else ''})")
    return d


def _take(idx: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """A seeded random subset of at most ``limit`` indices (all of them when None)."""
    idx = np.asarray(idx)
    if limit is None or limit >= len(idx):
        return idx
    return np.sort(rng.choice(idx, size=limit, replace=False))


def _upload(data: Dataset, idx: np.ndarray, device: torch.device, cfg: TrainConfig):
    if len(idx) == 0:
        raise TrainingError("an empty image set was given to train or validate on; "
                            "check the split and subset sizes")
    return to_device_tensors(data.train_x[idx], data.train_y[idx], device,
                             data.mean, data.std, channels_last=cfg.channels_last)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # 1-D parameters are biases and norm scales/shifts: decaying them only shrinks
    # the normalization, which costs accuracy and regularizes nothing.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _one_cycle(total_steps))


def _one_cycle(total_steps: int, warmup_fraction: float = 0.25) -> Callable[[int], float]:
    """Linear ramp to the peak, then linear decay: Smith's one-cycle, as an lr factor.

    Not torch's OneCycleLR: proxy runs can be a handful of steps, where OneCycleLR
    divides by zero (4 steps at pct_start=0.25), or spends its only step at lr 0.
    Here every step has a positive rate. Momentum stays at the fixed 0.9.
    """
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return (total_steps - step) / (total_steps - warmup + 1)

    return factor


def _train_epoch(model, x, y, optimizer, scheduler, loss_fn, cfg, generator, epoch, steps) -> float:
    """One pass over a fresh permutation; returns the mean training loss."""
    model.train()
    device = x.device
    order = torch.randperm(len(x), generator=generator).to(device)
    losses = torch.empty(steps, device=device)
    # Checking for divergence needs a host sync: free on CPU, costly per step on a GPU.
    check_every, checked = (1 if device.type == "cpu" else 50), 0
    for step in range(steps):
        batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        images = _augment(x[batch], cfg, generator)
        with _autocast(device):
            loss = loss_fn(model(images), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses[step] = loss.detach()
        if (step + 1) % check_every == 0 or step + 1 == steps:
            _raise_if_diverged(losses[checked:step + 1], epoch, first_step=checked + 1)
            checked = step + 1
    return losses.mean().item()


def _raise_if_diverged(losses: torch.Tensor, epoch: int, first_step: int) -> None:
    """Raise on the first non-finite loss; ``losses[0]`` is step ``first_step`` (from 1)."""
    bad = ~torch.isfinite(losses)
    if bad.any():
        i = int(bad.nonzero()[0])
        kind = "NaN" if torch.isnan(losses[i]) else "inf"
        raise TrainingError(f"loss became {kind} at epoch {epoch} step {first_step + i}; lower the "
                            "learning rate (--lr) or check the model for unstable operations")


def _augment(images: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    if cfg.crop_padding:
        images = _random_crop(images, cfg.crop_padding, generator)
    if cfg.flip:
        flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
    return images


def _random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and cut each image back to size at its own random offset."""
    b, c, h, w = images.shape
    padded = nn.functional.pad(images, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, b), generator=generator)
              .to(images.device).unbind(0))
    # One gather for the whole batch: rows and columns are offset per image.
    rows = (dy.view(b, 1) + torch.arange(h, device=images.device)).view(b, 1, h, 1)
    cols = (dx.view(b, 1) + torch.arange(w, device=images.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    channel = torch.arange(c, device=images.device).view(1, c, 1, 1)
    cropped = padded[batch, channel, rows, cols]
    if images.is_contiguous(memory_format=torch.channels_last):
        cropped = cropped.contiguous(memory_format=torch.channels_last)
    return cropped


def _autocast(device: torch.device):
    # bfloat16 needs no loss scaling; on CPU autocast is slower than float32, so it is off.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on device tensors ``x``, ``y``."""
    if len(x) == 0:
        raise TrainingError("cannot evaluate on an empty image set; check the split sizes")
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(x), batch_size):
        with _autocast(x.device):
            logits = model(x[i:i + batch_size])
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
    model.train(was_training)
    return correct.item() / len(x)


def evaluate_test_set(model: nn.Module, data: Dataset, device: str = "auto",
                      batch_size: int = 1024, channels_last: bool = True) -> float:
    """Accuracy on the held-out test set: for the final winner only, never for selection."""
    device = resolve_device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    x, y = to_device_tensors(data.test_x, data.test_y, device, data.mean, data.std,
                             channels_last=channels_last)
    return evaluate(model, x, y, batch_size)
