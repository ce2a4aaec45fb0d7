"""--device: what this machine cannot train on is a one-line error before any work starts."""
import pytest
import torch

from nasty.errors import NastyError, TrainingError
from nasty.train import resolve_device


def test_cpu_and_auto_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("device, match", [
    ("tpu", "unknown device 'tpu'"),
    ("banana", "unknown device 'banana'"),
    ("cuda:x", "unknown device 'cuda:x'"),
    ("", "unknown device ''"),
    (None, "unknown device None"),
    ("meta", "cannot train on 'meta' devices"),
])
def test_devices_nasty_cannot_train_on_are_one_line_errors(device, match):
    with pytest.raises(TrainingError, match=match) as e:
        resolve_device(device)
    assert "\n" not in str(e.value) and "use --device auto, cpu or cuda[:N]" in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error():
    for device in ("cuda", "cuda:1"):
        with pytest.raises(TrainingError, match=f"device '{device}' is not available") as e:
            resolve_device(device)
        assert isinstance(e.value, NastyError) and "\n" not in str(e.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_index_beyond_the_gpus_is_a_one_line_error():
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    n = torch.cuda.device_count()
    with pytest.raises(TrainingError, match=f"device 'cuda:{n}' does not exist: this machine has {n} CUDA"):
        resolve_device(f"cuda:{n}")


def test_train_command_refuses_an_unknown_device(capsys):
    from nasty.cli import main
    assert main(["train", "lenet5", "--epochs", "1", "--subset", "256", "--device", "tpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nasty: error: unknown device 'tpu'") and "\n" not in err
