"""A fast trainer for any image classifier taking (B, C, H, W): the search's proxies and
the final networks of `nasty train`.

A search trains hundreds of short-lived candidates, so per-step overhead matters
more than anything a general training loop offers. The whole (sub)set lives on the
device as one normalized tensor; an epoch is a random permutation sliced into
batches, and augmentation is done in batch on the device. There is no DataLoader,
no worker process and no per-sample Python.

The final-network recipe of the NASNet/DARTS papers adds, each off in TrainConfig's
defaults (so a proxy trains exactly as before): cutout, a linear drop-path ramp, an
auxiliary head's loss, gradient clipping; and `train(..., resume=state)` continues a
killed training from the state `on_state` was handed after its last finished epoch.
RECIPES holds the two sets of final-training defaults `nasty train` offers.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from nasty.compile import DropPath
from nasty.data import Dataset, to_device_tensors
from nasty.errors import TrainingError
# The recipes' values live in a torch-free module (so `nasty train --help` needs no torch); re-exported.
from nasty.recipes import NO_FLIP, RECIPES  # noqa: F401

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
    momentum: float = 0.9
    nesterov: bool = True
    # The final-training recipe (NASNet/DARTS); the defaults leave a proxy's training as it was.
    cutout: int = 0  # zero a square of this side at a random centre of each image (DeVries & Taylor 2017)
    drop_path_ramp: bool = False  # every DropPath rate rises linearly from 0 to its own over training
    aux_weight: float = 0.0  # > 0: the model returns (logits, aux logits) in training; aux loss weight
    grad_clip: float | None = None  # clip the gradient's global norm to this (DARTS: 5)
    # Before each validation, recompute BatchNorm statistics on this many training images
    # ("precise BN", as pycls does): after a few dozen steps the running averages (momentum
    # 0.1) are still far from the weights' statistics, and a deep net evaluates at chance.
    precise_bn: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainingError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1 or (self.nesterov and self.momentum == 0):
            raise TrainingError(f"momentum must be in [0, 1) (and above 0 with nesterov), got {self.momentum}")
        for name in ("weight_decay", "aux_weight", "cutout", "crop_padding", "precise_bn"):
            if not getattr(self, name) >= 0:
                raise TrainingError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise TrainingError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise TrainingError(f"gradient clipping needs a positive norm, got {self.grad_clip}")


@dataclass(frozen=True)
class Recipe:
    """How a final network trains: TrainConfig's optimization and augmentation, plus the two
    choices that change the trained module (drop-path on cell branches, an auxiliary head)."""
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    schedule: str
    crop: int            # random-crop padding in pixels (0: off)
    flip: bool
    cutout: int          # cutout square side in pixels (0: off)
    drop_path: float     # final drop-path rate of each cell branch (0: off), ramped from 0
    aux_weight: float    # auxiliary head's loss weight (0: no auxiliary head)
    grad_clip: float | None
    precise_bn: int      # BatchNorm statistics recomputed on this many training images before each validation

    @classmethod
    def of(cls, name: str, dataset: str, shape, **given) -> Recipe:
        """Recipe `name` ("short" or "paper") for images of `shape` from `dataset`, with every
        value in `given` that is not None replacing the recipe's default."""
        if name not in RECIPES:
            raise TrainingError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TrainingError(f"unknown recipe setting {min(unknown)!r}")
        side = min(shape[1:])
        values = {**RECIPES[name], "flip": dataset not in NO_FLIP}
        values["crop"] = round(values["crop"] * side)
        values["cutout"] = round(values["cutout"] * side)
        values.update({k: v for k, v in given.items() if v is not None})
        if values["grad_clip"] == 0:
            values["grad_clip"] = None                    # 0: no clipping
        r = cls(**values)
        if not 0 <= r.drop_path < 1:
            raise TrainingError(f"drop-path rate must be in [0, 1), got {r.drop_path}")
        if r.crop >= side or r.cutout > side:
            raise TrainingError(f"crop padding {r.crop} and cutout {r.cutout} must be below the image side {side}")
        r.train_config()                   # every other value is checked there
        return r

    def train_config(self, **runtime) -> TrainConfig:
        """The TrainConfig of this recipe; `runtime`: subset, seed, device, threads..."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           nesterov=self.nesterov, weight_decay=self.weight_decay,
                           label_smoothing=self.label_smoothing, schedule=self.schedule,
                           crop_padding=self.crop, flip=self.flip, cutout=self.cutout,
                           drop_path_ramp=True, aux_weight=self.aux_weight, grad_clip=self.grad_clip,
                           precise_bn=self.precise_bn, **runtime)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        def off(v, text):
            return text if v else "off"
        return (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}, batch {self.batch_size}, SGD lr {self.lr:g} "
                f"({self.schedule}) momentum {self.momentum:g}{' nesterov' if self.nesterov else ''}, "
                f"weight decay {self.weight_decay:g}, label smoothing {self.label_smoothing:g}, "
                f"crop {off(self.crop, f'{self.crop} px')}, flip {'on' if self.flip else 'off'}, "
                f"cutout {off(self.cutout, f'{self.cutout} px')}, drop-path {off(self.drop_path, f'{self.drop_path:g}')}, "
                f"aux head {off(self.aux_weight, f'x{self.aux_weight:g}')}, "
                f"grad clip {off(self.grad_clip, f'{self.grad_clip:g}')}, "
                f"precise BN {off(self.precise_bn, f'{self.precise_bn} images')}")


@dataclass
class TrainResult:
    best_val_acc: float
    final_val_acc: float
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch
    images_per_s: float = 0.0  # training throughput, evaluation excluded
    seconds: float = 0.0  # wall time of the whole call, data upload included


EpochCallback = Callable[[int, dict], None]
StepCallback = Callable[[int, int, int], None]      # (epoch, step, steps of the epoch)
StateCallback = Callable[[dict], None]


class DeadlineReached(Exception):
    """train(..., deadline=t) reached wall-clock time t (time.time()) mid-training: the epochs
    before it were handed to on_epoch; the one it cut is lost."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"stopped at the deadline in epoch {epoch}, step {step}")
        self.epoch, self.step = epoch, step


def train(model: nn.Module, data: Dataset, cfg: TrainConfig, train_idx: np.ndarray,
          val_idx: np.ndarray, on_epoch: EpochCallback | None = None,
          on_state: StateCallback | None = None, resume: dict | None = None,
          on_step: StepCallback | None = None, deadline: float | None = None) -> TrainResult:
    """Train ``model`` in place on ``data.train_x[train_idx]``, validating on ``val_idx``.

    ``on_epoch(epoch, metrics)`` runs after every epoch (epochs count from 1) with
    keys epoch, train_loss, val_acc, images_per_s, elapsed_s. It is how Ray Tune
    hears about progress, so an exception from it (a trial being stopped) propagates.

    ``on_step(epoch, step, steps)`` runs after every optimizer step (steps count from 1): a
    progress display within an epoch (it must not sync the device; nothing is passed that would).

    ``on_state(state)`` runs after every epoch, before ``on_epoch``, with what a killed
    training needs to continue besides the model's own weights: the finished epoch, the
    optimizer's and scheduler's state, every random generator and the history (plain
    values and tensors, so ``torch.load(weights_only=True)`` reads it back). Passing that
    dict back as ``resume`` (with the model's weights loaded as they were) continues
    after that epoch; ``elapsed_s`` and images/s then count this call only.

    ``deadline`` (a time.time() value): checked before every step; once it has passed, the
    training stops with DeadlineReached (a search's time budget is hard).
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
    drop_paths = _DropPathRamp(model, cfg.epochs * steps) if cfg.drop_path_ramp else None

    history, first = [], 1
    if resume is not None:
        history, first = _restore(resume, optimizer, scheduler, generator, device, cfg)
    train_seconds, images_seen = 0.0, 0
    try:
        for epoch in range(first, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            train_loss = _train_epoch(model, x_train, y_train, optimizer, scheduler, loss_fn,
                                      cfg, generator, epoch, steps, drop_paths, on_step, deadline)
            epoch_seconds = time.perf_counter() - epoch_start  # train_loss was synced, so this is true time
            if cfg.precise_bn:
                recalibrate_bn(model, x_train, cfg.batch_size, images=cfg.precise_bn)
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
            if on_state is not None:
                on_state(_state(epoch, optimizer, scheduler, generator, history))
            if on_epoch is not None:
                on_epoch(epoch, metrics)
    finally:
        if drop_paths is not None:
            drop_paths.restore()
    if not history:
        raise TrainingError("nothing to train: the resumed state has no finished epoch")

    return TrainResult(
        best_val_acc=max(m["val_acc"] for m in history),
        final_val_acc=history[-1]["val_acc"],
        history=history,
        images_per_s=images_seen / train_seconds if train_seconds else history[-1]["images_per_s"],
        seconds=time.perf_counter() - start,
    )


STATE_FORMAT = 1       # the layout of the dict on_state hands out (and resume takes)


def _state(epoch, optimizer, scheduler, generator, history) -> dict:
    return {
        "format": STATE_FORMAT,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": [dict(m) for m in history],
    }


def _restore(state: dict, optimizer, scheduler, generator, device, cfg: TrainConfig):
    """Load a state `on_state` handed out; returns (history, first epoch to train)."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingError("cannot resume: the saved training state is from another version of nasty; "
                            "start the training again")
    epoch = int(state["epoch"])
    if not 1 <= epoch <= cfg.epochs:
        raise TrainingError(f"cannot resume at epoch {epoch} a training of {cfg.epochs} epochs")
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    cuda = state.get("cuda_rng") or []
    if device.type == "cuda" and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return [dict(m) for m in state["history"]], epoch + 1


class _DropPathRamp:
    """ScheduledDropPath (NASNet; DARTS per epoch): each DropPath module's rate rises
    linearly from 0 at the first step to the rate it was built with at the last."""

    def __init__(self, model: nn.Module, total_steps: int):
        self.modules = [(m, m.p) for m in model.modules() if isinstance(m, DropPath)]
        self.total = total_steps

    def set(self, step: int) -> None:
        f = step / self.total
        for m, p in self.modules:
            m.p = p * f

    def restore(self) -> None:
        for m, p in self.modules:
            m.p = p


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
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


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


def _train_epoch(model, x, y, optimizer, scheduler, loss_fn, cfg, generator, epoch, steps,
                 drop_paths=None, on_step=None, deadline: float | None = None) -> float:
    """One pass over a fresh permutation; returns the mean training loss (of the main head)."""
    model.train()
    device = x.device
    order = torch.randperm(len(x), generator=generator).to(device)
    losses = torch.empty(steps, device=device)
    # Checking for divergence needs a host sync: free on CPU, costly per step on a GPU.
    check_every, checked = (1 if device.type == "cpu" else 50), 0
    for step in range(steps):
        if deadline is not None and time.time() > deadline:
            raise DeadlineReached(epoch, step + 1)
        batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        images = _augment(x[batch], cfg, generator)
        if drop_paths is not None:
            drop_paths.set((epoch - 1) * steps + step)
        with _autocast(device):
            if cfg.aux_weight:
                logits, aux = model(images)
                loss = loss_fn(logits, y[batch])
                total = loss + cfg.aux_weight * loss_fn(aux, y[batch])
            else:
                loss = total = loss_fn(model(images), y[batch])
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        losses[step] = loss.detach()
        if (step + 1) % check_every == 0 or step + 1 == steps:
            _raise_if_diverged(losses[checked:step + 1], epoch, first_step=checked + 1)
            checked = step + 1
        if on_step is not None:
            on_step(epoch, step + 1, steps)
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
    if cfg.cutout:
        images = _cutout(images, cfg.cutout, generator)
    return images


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int, images: int | None = None,
                   seed: int = 0) -> None:
    """Replace every BatchNorm's running statistics by their average over `images` images of `x`
    (all of them when None; a seeded random choice otherwise, as a data set in class order would
    otherwise give the statistics of its first classes), in batches of `batch_size`.

    Every evaluation of a trained network goes through this first ("precise BN", as pycls does):
    after a short training the running averages (momentum 0.1) are far from the statistics of
    the weights, and a network scored with them can sit at chance while the same weights score
    90 % with the right statistics. The rest of the model runs as in evaluation (no dropout or
    drop-path draws) and the choice of images uses its own generator, so no global random
    number is used and a resumed training repeats it exactly."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(x) < 2:
        return
    if images is not None and images < len(x):
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max(2, images)]
        x = x[pick.sort().values.to(x.device)]
    was_training = model.training
    model.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                  # a cumulative average over the batches
        m.train()
    usable = len(x) - len(x) % batch_size if len(x) >= batch_size else len(x)
    try:
        for i in range(0, usable, batch_size):
            with _autocast(x.device):
                model(x[i:i + batch_size])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


def _cutout(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a size x size square (clipped at the borders) centred at a random pixel of each
    image, as DARTS's Cutout does. The images are normalized, so zero is the mean colour."""
    b, _, h, w = images.shape
    centre = torch.stack([torch.randint(0, h, (b,), generator=generator),
                          torch.randint(0, w, (b,), generator=generator)]).to(images.device)
    top, left = (centre - size // 2).unbind(0)
    rows = torch.arange(h, device=images.device).view(1, h)
    cols = torch.arange(w, device=images.device).view(1, w)
    in_rows = (rows >= top.view(b, 1)) & (rows < top.view(b, 1) + size)
    in_cols = (cols >= left.view(b, 1)) & (cols < left.view(b, 1) + size)
    square = in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)
    out = images.masked_fill(square, 0.0)
    if images.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


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


class _CallableModule(types.ModuleType):
    """`nasty.train(run, data=..., **options)`: the package attribute `nasty.train` is this module
    (the trainer), callable to train a run's final network from Python (nasty.final.train), as
    `nasty train` does from the command line. A function of that name in nasty/__init__.py would
    be replaced by this module the first time anything imported it."""

    def __call__(self, target, data=None, **options):
        from nasty.final import train as train_final
        return train_final(target, data, **options)


sys.modules[__name__].__class__ = _CallableModule
