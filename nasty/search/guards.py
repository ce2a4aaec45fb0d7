"""What a search's accuracies can and cannot say, told wherever the run is shown (the start-up
lines, the end-of-run summary, best.json, report.html, `nasty report`).

- The images each stage really used (`image_counts`, kept in config.json as "images"): --subset
  and --val-subset are upper bounds, and on a small data set of one's own a trial may train on
  129 images and be scored on 15, which the settings alone would show as 6,000 and 2,000.
- Chance: when every trained trial scores no better than always guessing the largest class
  (1/K on balanced data), within the noise of the validation split, the search learnt nothing
  it could rank, and its "winner" is a coin toss (`warnings`).
- A validation split too small to rank: an accuracy measured on n images has a standard error
  of sqrt(p(1-p)/n); under SMALL_VAL images it is several points, more than the spread among
  the trials of a search.
"""
from __future__ import annotations

import math

SMALL_VAL = 300          # validation images below which a warning shows the standard error
SIGNIFICANCE = 0.01      # an accuracy is "above chance" when a guess would reach it this rarely


def image_counts(train_idx, val_idx, more_train, more_val, data) -> dict:
    """config.json's "images": what a search trial and a confirmation train and validate on, the
    test images, and the chance level of the validation split (the share of its largest class:
    what a network that always guesses that class scores)."""
    import numpy as np
    labels = np.asarray(data.train_y)[np.asarray(val_idx, dtype=np.int64)]
    chance = float(np.bincount(labels, minlength=data.num_classes).max() / len(labels)) if len(labels) else None
    search = {"train": len(train_idx), "val": len(val_idx)}
    confirm = {"train": len(train_idx) + len(more_train), "val": len(val_idx) + len(more_val)}
    return {"search": search, "confirm": confirm, "test": len(data.test_x), "classes": data.num_classes,
            "chance": chance}


def standard_error(p: float, n: int) -> float:
    """The standard error of an accuracy p measured on n images (binomial)."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("inf")


def above_chance(acc: float, chance: float, n: int) -> bool:
    """Is accuracy `acc` on `n` images better than guessing (which scores `chance` on average),
    beyond the noise? One-sided exact binomial test at SIGNIFICANCE."""
    k = round(acc * n)
    if n <= 0 or k <= chance * n:
        return False
    if not 0 < chance < 1:
        return k > chance * n
    lp, lq = math.log(chance), math.log1p(-chance)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
               for i in range(k, n + 1))
    return tail < SIGNIFICANCE


def describe_counts(images: dict | None) -> str | None:
    """'129 training and 15 validation images per trial (confirmations: 258 and 15), 36 test images'."""
    if not isinstance(images, dict) or not isinstance(images.get("search"), dict):
        return None
    s, c = images["search"], images.get("confirm") or {}
    text = f"{s['train']:,} training and {s['val']:,} validation images per trial"
    if c and (c.get("train"), c.get("val")) != (s["train"], s["val"]):
        text += f" (confirmations: {c['train']:,} and {c['val']:,})"
    return text + f", {images.get('test', 0):,} test images"


def small_validation(images: dict | None) -> str | None:
    """The warning for a validation split too small to rank trials, or None."""
    if not isinstance(images, dict) or not isinstance(images.get("search"), dict):
        return None
    n = images["search"]["val"]
    if n >= SMALL_VAL:
        return None
    return (f"warning: the validation split has only {n} images: an accuracy measured on them has a standard "
            f"error of up to ±{100 * standard_error(0.5, n):.1f} pp (±{100 * standard_error(0.9, n):.1f} pp at "
            f"90 %), so trials closer than about twice that cannot be told apart; give more images (a few hundred "
            f"or more), or a larger --val-fraction")


def at_chance(images: dict | None, records) -> str | None:
    """The warning for a search where every trained trial scored at chance, or None."""
    from .record import Status
    if not isinstance(images, dict) or images.get("chance") is None or not isinstance(images.get("search"), dict):
        return None
    chance, n = images["chance"], images["search"]["val"]
    scored = [r.val_acc for r in records if r.status is Status.OK and r.val_acc is not None]
    if not scored or any(above_chance(a, chance, n) for a in scored):
        return None
    k = images.get("classes")
    guess = f"1/{k}" if k and abs(chance - 1 / k) < 1e-9 else "the largest class's share"
    return (f"warning: every trained trial ({len(scored)}) scored at chance level ({chance:.4f} = {guess}, what "
            f"always guessing one class scores; the best, {max(scored):.4f}, is within the noise of {n} "
            f"validation images): the search learnt nothing it could rank, and its winner is a coin toss. Check "
            f"the labels (one folder per class), give more images, or train longer (--epochs)")


def warnings(cfg: dict, records) -> list[str]:
    """Every warning about a run's accuracies, from its config.json and records."""
    images = cfg.get("images") if isinstance(cfg, dict) else None
    return [w for w in (at_chance(images, records), small_validation(images)) if w]
