"""Outputs you can deploy (nasty/deploy.py): a trained network that carries its normalisation and
class names; exports that take any batch size, with metadata; `nasty predict` reading images as the
training data was read; `nasty.load_model` / `result.model()`; `nasty.train` from Python, on arrays."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import nasty
from nasty.cli import main
from nasty.data import load_dataset, to_device_tensors
from nasty.deploy import Classifier, export, load_model, read_export_metadata, read_images
from nasty.errors import NastyError

TINY = """net tiny input 1x28x28 classes 10
stem  conv3x3/2 c=8 bn relu
stage conv3x3/2 c=16 bn relu
head  gap flatten fc c=classes
"""
ONE = ("--threads", "1")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err):
    assert rc == 2 and err.startswith("nasty: error: ") and err.count("\n") == 1, err
    return err


def classifier(seed=0) -> Classifier:
    torch.manual_seed(seed)
    net = nasty.build(nasty.parse(TINY))
    with torch.no_grad():
        for m in net.modules():                      # BN statistics away from (0, 1): they must travel too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    names = [f"class {k}" for k in range(10)]
    return Classifier(net, [0.2860], [0.3530], names, {"input": [1, 28, 28], "name": "tiny"}).eval()


# ------------------------------------------------------------------ exports
def test_pt2_export_takes_any_batch_and_carries_metadata(tmp_path):
    model = classifier()
    path = tmp_path / "m.pt2"
    assert "any batch size" in export(model, (1, 28, 28), str(path))
    loaded = torch.export.load(str(path)).module()
    for batch in (1, 3, 17):
        x = torch.rand(batch, 1, 28, 28)
        with torch.no_grad():
            assert torch.allclose(loaded(x), model(x), atol=1e-5)
    meta = read_export_metadata(path)
    assert meta["classes"] == list(model.classes) and meta["input"] == [1, 28, 28]
    assert meta["mean"] == pytest.approx([0.2860]) and meta["std"] == pytest.approx([0.3530])
    assert "normalisation is inside" in meta["input_range"]


def test_onnx_export_has_a_dynamic_batch_axis_and_metadata(tmp_path):
    """The ONNX graph, run by onnx's own reference evaluator, equals the torch network at batch
    sizes 1 and 5: the normalisation is in the graph; the class names are in metadata_props."""
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator
    model = classifier(1)
    path = tmp_path / "m.onnx"
    export(model, (1, 28, 28), str(path))
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    run = ReferenceEvaluator(proto)
    for batch in (1, 5):
        x = torch.rand(batch, 1, 28, 28)
        (got,) = run.run(None, {proto.graph.input[0].name: x.numpy()})
        with torch.no_grad():
            assert np.allclose(got, model(x).numpy(), atol=1e-4)
    meta = read_export_metadata(path)
    assert meta["classes"] == list(model.classes) and meta["name"] == "tiny"


def test_without_the_onnx_extra_the_error_names_it(capsys, tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    err = one_line_error(*cli(capsys, "build", "lenet5", "--export", tmp_path / "m.onnx")[::2])
    assert "pip install 'nasty-nas[onnx]'" in err
    # before any training: nasty train refuses at once
    err = one_line_error(*cli(capsys, "train", "lenet5", "--export", tmp_path / "m.onnx")[::2])
    assert "nasty-nas[onnx]" in err


# ------------------------------------------------------------------ train, predict, load_model
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint of `nasty train GENOTYPE --save` (1 epoch, 600 images), and PNGs of test images."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "tiny.nasty").write_text(TINY)
    ck = folder / "ck.pt"
    assert main(["train", str(folder / "tiny.nasty"), "--epochs", "1", "--subset", "600", "--val-subset", "200",
                 "--save", str(ck), *ONE]) == 0
    from PIL import Image
    data = load_dataset("fashion-mnist")
    files = []
    for i in range(16):
        f = folder / f"test{i}.png"
        Image.fromarray(data.test_x[i, 0]).save(f)
        files.append(f)
    return ck, files, data


def test_load_model_knows_normalisation_and_classes(trained):
    ck, _, data = trained
    model = load_model(ck)
    assert not model.training and model.classes == data.classes and model.input_shape == (1, 28, 28)
    assert model.mean.flatten().tolist() == pytest.approx(data.mean) and model.info["test_acc"] is not None
    # the same numbers as the trainer's own pipeline (uint8 -> normalised tensor -> net)
    x, _ = to_device_tensors(data.test_x[:64], data.test_y[:64], "cpu", data.mean, data.std, channels_last=False)
    with torch.no_grad():
        assert torch.allclose(model(torch.from_numpy(data.test_x[:64]).float() / 255), model.net(x), atol=1e-4)


def test_predict_classifies_image_files_as_the_network_saw_its_data(capsys, trained):
    ck, files, data = trained
    model = load_model(ck)
    x, _ = to_device_tensors(data.test_x[:16], data.test_y[:16], "cpu", data.mean, data.std, channels_last=False)
    with torch.no_grad():
        probs = torch.softmax(model.net(x), 1)
    rc, out, err = cli(capsys, "predict", ck, *files)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 16
    for i, line in enumerate(lines):
        k = int(probs[i].argmax())
        assert line.startswith(str(files[i])) and line.endswith(f"{data.classes[k]} {float(probs[i, k]):.3f}")
    rc, out, _ = cli(capsys, "predict", ck, files[0], "--top", "3", "--json")
    top = json.loads(out)["predictions"][0]["top"]
    assert rc == 0 and len(top) == 3 and top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]


def test_predict_reads_any_size_and_colour_as_the_training_data_was_read(trained, tmp_path):
    """An RGB JPEG at 100x100 becomes one grey 28x28 image, as an ImageFolder of it would be."""
    from PIL import Image
    _, files, _ = trained
    big = tmp_path / "big.jpg"
    Image.open(files[0]).convert("RGB").resize((100, 100)).save(big)
    x = read_images([big, files[0]], (1, 28, 28))
    assert x.shape == (2, 1, 28, 28) and x.dtype == np.uint8
    assert np.abs(x[0].astype(int) - x[1].astype(int)).mean() < 12      # the same picture, twice resampled


def test_predict_one_line_errors(capsys, trained, tmp_path):
    ck, files, _ = trained
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    err = one_line_error(*cli(capsys, "predict", run, files[0])[::2])
    assert f"run {run} has no trained final network" in err and f"`nasty train {run}`" in err
    err = one_line_error(*cli(capsys, "predict", ck, tmp_path / "missing.png")[::2])
    assert "no image file" in err
    (tmp_path / "notes.txt").write_text("x")
    assert "not an image file" in one_line_error(*cli(capsys, "predict", ck, tmp_path / "notes.txt")[::2])
    # a checkpoint from before the normalisation was recorded: say how to add it
    old = torch.load(ck, weights_only=True)
    for k in ("mean", "std", "class_names"):
        del old[k]
    torch.save(old, tmp_path / "old.pt")
    err = one_line_error(*cli(capsys, "predict", tmp_path / "old.pt", files[0])[::2])
    assert "older nasty" in err and "nasty train" in err


def test_train_export_is_the_trained_classifier(capsys, trained, tmp_path):
    """`nasty train ... --export m.pt2`: the exported graph holds the normalisation (raw [0, 1]
    pixels in) and gives the checkpoint's predictions."""
    ck, files, _ = trained
    genotype = ck.parent / "tiny.nasty"
    rc, out, err = cli(capsys, "train", genotype, "--epochs", "1", "--subset", "600", "--val-subset", "200",
                       "--save", ck, "--export", tmp_path / "m.pt2", *ONE)       # already trained: no training
    assert rc == 0, err
    assert "already trained" in out and "exported to" in out
    model = load_model(ck)
    exported = torch.export.load(str(tmp_path / "m.pt2")).module()
    x = torch.from_numpy(read_images(files[:4], (1, 28, 28))).float() / 255
    with torch.no_grad():
        assert torch.allclose(exported(x), model(x), atol=1e-5)
    assert read_export_metadata(tmp_path / "m.pt2")["classes"] == list(model.classes)


# ------------------------------------------------------------------ from Python, on arrays
def _array_run(folder, decisions):
    """A run folder of a search given arrays from Python (dataset "in-memory"), as one leaves it."""
    from nasty.search.settings import Settings
    folder.mkdir(parents=True)
    cfg = dataclasses.asdict(Settings(space="nb201mini", budget="20MFLOPs").resolved(gpu=False))
    cfg.update(space_name="nb201mini", name=folder.name, runs_dir=str(folder.parent), dataset="in-memory")
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "best.json").write_text(json.dumps({"trial": 0, "val_acc": 0.5, "decisions": decisions}))
    return folder


def _shapes(n, seed):
    """n 16x16 grey images of 3 classes (a bar: horizontal, vertical, none), with noise; labels as strings."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 16, 16)).astype(np.uint8)
    for i, k in enumerate(y):
        if k == 0:
            x[i, 6:10, :] = 230
        elif k == 1:
            x[i, :, 6:10] = 230
    return x, np.array(["horizontal", "vertical", "none"])[y]


def test_nasty_train_from_python_on_arrays(capsys, tmp_path):
    from nasty.searchspaces.nb201mini import EDGE_NAMES
    run = _array_run(tmp_path / "runs" / "arrays", {e: "conv3x3" for e in EDGE_NAMES})
    # the command line cannot reload arrays: it says what to do
    err = one_line_error(*cli(capsys, "train", run, *ONE)[::2])
    assert "nasty.train(run, data=...)" in err
    x, y = _shapes(400, 0)
    tx, ty = _shapes(100, 1)
    model = nasty.train(run, data=(x, y, tx, ty), epochs=2, threads=1, batch_size=32, lr=0.05)
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "test accuracy" in out
    assert isinstance(model, Classifier) and not model.training
    assert set(model.classes) == {"horizontal", "vertical", "none"} and model.input_shape == (1, 16, 16)
    assert model.info["test_acc"] > 0.6                                   # chance is 1/3
    picks = [top[0][0] for top in model.predict(tx[:, None])]
    assert np.mean(np.array(picks) == ty) == pytest.approx(model.info["test_acc"], abs=0.011)
    again = load_model(run)                                               # what result.model() returns
    grey = torch.full((2, 1, 16, 16), 0.5)
    with torch.no_grad():
        assert torch.equal(again(grey), model(grey)) and again.classes == model.classes
    from nasty.search.api import SearchResult
    assert SearchResult(run, {}).model().classes == model.classes         # result.model()
    with pytest.raises(NastyError, match="did you mean 'epochs'"):
        nasty.train(run, data=(x, y), epoch=1)


@pytest.mark.slow
def test_a_real_search_on_arrays_then_train_and_predict(ray_local, tmp_path, capsys):
    """nasty.search(data=arrays) -> nasty.train(result, data=arrays) -> result.model().predict."""
    x, y = _shapes(600, 3)
    tx, ty = _shapes(150, 4)
    result = nasty.search("nb201mini", budget="20MFLOPs", data=(x, y, tx, ty), trials=2, epochs=1, subset=400,
                          val_subset=100, confirm=0, time_budget=600, runs_dir=str(tmp_path), name="arrays")
    with pytest.raises(NastyError, match="no trained final network"):
        result.model()
    model = nasty.train(result, data=(x, y, tx, ty), epochs=2, threads=1, batch_size=32)
    again = result.model()
    assert again.classes == model.classes and set(model.classes) == {"horizontal", "vertical", "none"}
    picks = [top[0][0] for top in again.predict(tx[:, None])]
    assert np.mean(np.array(picks) == ty) == pytest.approx(again.info["test_acc"], abs=0.011)


def test_step_progress_in_a_log(capsys, monkeypatch):
    from nasty.commands.train import StepProgress
    monkeypatch.setattr(StepProgress, "LOG_EVERY_S", 0.0)
    with StepProgress(3) as p:
        p.tty, p.bar = False, None
        for step in range(1, 5):
            p.step(2, step, 4)
    out = capsys.readouterr().out
    assert "epoch 2/3: step 1/4 (25%)" in out and "step 3/4" in out and "step 4/4" not in out


def test_the_trainer_reports_every_step():
    from nasty.train import TrainConfig, train
    from nasty.data import from_arrays
    x, y = _shapes(120, 2)
    data = from_arrays(x, y)
    seen = []
    net = nasty.build(nasty.parse(TINY.replace("1x28x28", "1x16x16")), num_classes=3)
    train(net, data, TrainConfig(epochs=2, batch_size=32, threads=1), np.arange(64), np.arange(64, 76),
          on_step=lambda e, s, n: seen.append((e, s, n)))
    assert seen == [(e, s, 2) for e in (1, 2) for s in (1, 2)]
