"""The proxy trainer on real Fashion-MNIST: it learns, reports, diverges loudly, repeats."""

import pytest
import torch
from torch import nn

from nasty.data import load_dataset, split_train_val
from nasty.errors import TrainingError
from nasty.train import TrainConfig, evaluate_test_set, train


@pytest.fixture(scope="module")
def fashion():
    data = load_dataset("fashion-mnist")
    return data, *split_train_val(data, val_fraction=0.1, seed=0)


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


# A flattened 1568-wide head is unstable at BN-net learning rates, hence a small lr.
FAST = dict(epochs=1, batch_size=128, lr=0.02, subset=4000, val_subset=2000, threads=2)


def test_one_epoch_learns_far_above_chance(fashion):
    data, train_idx, val_idx = fashion
    result = train(small_cnn(), data, TrainConfig(**FAST), train_idx, val_idx)
    assert result.final_val_acc > 0.6  # chance is 0.1
    assert result.best_val_acc == result.final_val_acc
    assert result.images_per_s > 0 and result.seconds > 0


def test_on_epoch_receives_metrics_each_epoch(fashion):
    data, train_idx, val_idx = fashion
    seen = []
    cfg = TrainConfig(**{**FAST, "epochs": 2, "subset": 1000, "schedule": "cosine",
                         "crop_padding": 2, "flip": True})
    result = train(small_cnn(), data, cfg, train_idx, val_idx,
                   on_epoch=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [1, 2]
    for epoch, metrics in seen:
        assert set(metrics) == {"epoch", "train_loss", "val_acc", "images_per_s", "elapsed_s"}
        assert metrics["epoch"] == epoch and 0 <= metrics["val_acc"] <= 1
    assert seen[1][1]["elapsed_s"] > seen[0][1]["elapsed_s"]
    assert result.history == [metrics for _, metrics in seen]


def test_callback_exception_stops_training(fashion):
    data, train_idx, val_idx = fashion

    class Stop(Exception):
        pass

    def stop(epoch, metrics):
        raise Stop

    calls = []
    with pytest.raises(Stop):
        train(small_cnn(), data, TrainConfig(**{**FAST, "epochs": 3, "subset": 500}),
              train_idx, val_idx, on_epoch=lambda e, m: (calls.append(e), stop(e, m)))
    assert calls == [1]


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def test_nan_loss_raises_training_error(fashion):
    data, train_idx, val_idx = fashion
    with pytest.raises(TrainingError, match="NaN at epoch 1 step 1; lower the learning rate"):
        train(NaNModel(), data, TrainConfig(**FAST), train_idx, val_idx)


def test_same_seed_same_result_on_cpu(fashion):
    data, train_idx, val_idx = fashion
    cfg = TrainConfig(**{**FAST, "subset": 2000, "crop_padding": 2, "seed": 7})
    first = train(small_cnn(), data, cfg, train_idx, val_idx)
    second = train(small_cnn(), data, cfg, train_idx, val_idx)
    assert first.final_val_acc == second.final_val_acc
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]


def test_test_set_accuracy(fashion):
    data, _, _ = fashion
    # An untrained net sits near chance; the point is the shapes and bookkeeping.
    assert 0 <= evaluate_test_set(small_cnn(), data, device="cpu") <= 1


def test_bad_config_is_a_clear_error():
    with pytest.raises(TrainingError, match="unknown schedule 'linear'"):
        TrainConfig(schedule="linear")


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_runs_shorter_than_one_batch_still_train(fashion, schedule):
    # Tiny proxies give schedules only a step or four; torch's OneCycleLR fails there.
    data, train_idx, val_idx = fashion
    for subset in (100, 4 * 128):
        cfg = TrainConfig(**{**FAST, "subset": subset, "val_subset": 200, "schedule": schedule})
        assert train(small_cnn(), data, cfg, train_idx, val_idx).history[0]["train_loss"] > 0
