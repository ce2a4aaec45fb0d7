"""`nasty train runs/NAME`: the winner's FINAL network (sized by --set / --budget at the data's
input), the NASNet/DARTS recipe (drop-path on cell branches, auxiliary head, cutout, precise BN),
checkpoints with the genotype, resume after a real SIGKILL, ONNX export, one-line errors."""
import dataclasses
import json
import os
import signal
import sys
import time

import pytest
import torch

import nasty
from nasty.cli import main
from nasty.compile import DropPath, compile_genotype
from nasty.final import (
    FinalError,
    apply_overrides,
    aux_tap,
    final_genotype,
    load_checkpoint,
    load_final,
    open_run,
    split_sets,
    with_aux_head,
    with_cell_drop_path,
)
from nasty.search.budget import Budget
from nasty.search.settings import Settings
from nasty.searchspaces.nasnet import NASNET_A, decisions_of
from nasty.space import load_space
from nasty.train import Recipe, TrainConfig, _cutout, recalibrate_bn, train

FMNIST = ((1, 28, 28), 10)
# The CLI runs train on one thread: on a shared 2-core machine whose other core is busy, two
# OpenMP threads make each op wait for a descheduled thread (measured 30x slower).
ONE = ("--threads", "1")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def make_run(folder, space="nasnet", decisions=None, trial=3):
    """A run folder as a search leaves it, from records: config.json, best.json, best_proxy.nasty."""
    folder.mkdir(parents=True, exist_ok=True)
    sp = load_space(space)
    decisions = decisions or decisions_of(NASNET_A, 3, 24)
    cfg = dataclasses.asdict(Settings(space=space, budget="600MFLOPs").resolved(gpu=False))
    cfg.update(space_name=space, name=folder.name, runs_dir=str(folder.parent))
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "best.json").write_text(json.dumps({"trial": trial, "val_acc": 0.8, "decisions": decisions}))
    (folder / "best_proxy.nasty").write_text(nasty.format(sp.genotype(decisions, proxy=True)))
    return folder


@pytest.fixture
def run_folder(tmp_path):
    return make_run(tmp_path / "run")


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err):
    assert rc == 2 and err.startswith("nasty: error: ") and err.count("\n") == 1, err
    return err


# ------------------------------------------------------------------ sizing
def test_default_size_is_the_winners_decisions_at_the_datas_input(run_folder):
    run = open_run(run_folder)
    assert run.trial == 3 and run.values == decisions_of(NASNET_A, 3, 24)
    g, values = final_genotype(run, dict(run.values), *FMNIST)
    assert g == run.space.genotype(run.values, input=(1, 28, 28), classes=10)
    assert g.input == (1, 28, 28) and g.classes == 10 and values == run.values
    c, proxy = nasty.cost(g), nasty.cost(run.proxy)
    assert c.params > 5 * proxy.params and c.macs > 5 * proxy.macs          # F=24 vs the proxy's 8
    model = compile_genotype(g)
    assert sum(p.numel() for p in model.parameters()) == c.params


def test_set_overrides_decisions_with_their_own_types(run_folder):
    run = open_run(run_folder)
    values = apply_overrides(run, ["N=2,F=16", "normal_b0_op1=sep7x7"])
    assert values["N"] == 2 and values["F"] == 16 and type(values["F"]) is int
    assert values["normal_b0_op1"] == "sep7x7"
    g, _ = final_genotype(run, values, *FMNIST)
    assert nasty.cost(g).macs == nasty.cost(run.space.genotype(values, input=(1, 28, 28), classes=10)).macs
    # a value holding commas (DARTS's node inputs) stays one value
    assert split_sets(["C=16,normal_n0_inputs=prev,in,L=8"]) == [("C", "16"), ("normal_n0_inputs", "prev,in"),
                                                                 ("L", "8")]


@pytest.mark.parametrize("setting,message", [
    ("X=1", "--set X=1: space 'nasnet' has no decision 'X'; its decisions: N, F, normal_b0_in1"),
    ("F=33", "--set F=33: not an option of decision 'F'; options: 16, 20, 24, 28, 32"),
    ("N=two", "not an option of decision 'N'; options: 2, 3, 4, 5, 6"),
    ("F", "each setting is NAME=VALUE, e.g. --set N=6,F=32"),
])
def test_bad_set_is_a_one_line_error_before_the_data_loads(capsys, run_folder, setting, message):
    t = time.time()
    rc, out, err = cli(capsys, "train", run_folder, "--set", setting)
    assert message in one_line_error(rc, err) and "training" not in out and time.time() - t < 30


def test_sizing_flags_need_a_run_folder(capsys):
    err = one_line_error(*cli(capsys, "train", "lenet5", "--set", "N=2")[::2])
    assert "give a run folder" in err


def test_budget_fits_the_width_at_the_datas_input(run_folder):
    run = open_run(run_folder)
    budget = Budget.parse("50MFLOPs")
    g, values = final_genotype(run, dict(run.values), *FMNIST, budget=budget)
    macs = nasty.cost(g).macs
    assert macs <= 50_000_000 and g.input == (1, 28, 28)
    wider = next(f for f in (16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 96) if f > values["F"])
    over = run.space.genotype({**values, "F": wider}, input=(1, 28, 28), classes=10)
    assert nasty.cost(over).macs > 50_000_000          # the largest F that fits
    with pytest.raises(FinalError, match="no width fits 1KFLOPs"):
        final_genotype(run, dict(run.values), *FMNIST, budget=Budget.parse("1KFLOPs"))
    with pytest.raises(FinalError, match="--budget fits decision 'F', which --set also sets"):
        final_genotype(run, dict(run.values), *FMNIST, budget=budget, fixed={"F"})


# ------------------------------------------------------------------ recipe pieces
def test_recipes_scale_to_the_image_and_the_dataset():
    short = Recipe.of("short", "fashion-mnist", (1, 28, 28))
    assert (short.crop, short.flip, short.cutout, short.drop_path, short.aux_weight) == (4, True, 0, 0.0, 0.0)
    paper = Recipe.of("paper", "cifar10", (3, 32, 32))
    assert (paper.epochs, paper.batch_size, paper.lr, paper.momentum, paper.weight_decay) == (600, 96, 0.025, 0.9, 3e-4)
    assert (paper.crop, paper.cutout, paper.drop_path, paper.aux_weight, paper.grad_clip) == (4, 16, 0.2, 0.4, 5.0)
    assert Recipe.of("paper", "mnist", (1, 28, 28)).flip is False            # digits are not mirrored
    assert Recipe.of("short", "mnist", (1, 28, 28), flip=True).flip is True
    assert Recipe.of("short", "cifar10", (3, 64, 64), grad_clip=0).grad_clip is None
    cfg = paper.train_config(seed=3)
    assert cfg.cutout == 16 and cfg.drop_path_ramp and cfg.aux_weight == 0.4 and not cfg.nesterov and cfg.seed == 3
    with pytest.raises(nasty.NastyError, match="unknown recipe 'long'"):
        Recipe.of("long", "mnist", (1, 28, 28))
    with pytest.raises(nasty.NastyError, match="drop-path rate must be in"):
        Recipe.of("short", "mnist", (1, 28, 28), drop_path=1.5)


def test_cutout_zeroes_one_clipped_square_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(64, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    out = _cutout(x, 6, g)
    assert out.is_contiguous(memory_format=torch.channels_last)
    for img in out:
        zero = (img == 0)
        assert (zero == zero[0]).all()                    # the same square in every channel
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 6 and 1 <= len(cols) <= 6
        assert zero[0].sum() == len(rows) * len(cols)     # a rectangle (a square clipped by the border)
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
    assert (out == 0).sum() < x.numel() / 2


def test_precise_bn_averages_batch_statistics_and_draws_no_random_numbers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5))
    x = torch.randn(256, 1, 8, 8) * 3 + 1
    rng = torch.get_rng_state()
    recalibrate_bn(model, x, 64)
    assert torch.equal(rng, torch.get_rng_state()) and model.training and model[1].momentum == 0.1
    with torch.no_grad():
        h = model[0](x)
    batches = h.view(4, 64, 4, 6, 6)
    assert torch.allclose(model[1].running_mean, h.mean((0, 2, 3)), atol=1e-5)
    want_var = torch.stack([b.transpose(0, 1).reshape(4, -1).var(1) for b in batches]).mean(0)
    assert torch.allclose(model[1].running_var, want_var, rtol=1e-4)
    # a part of the images: a seeded random choice across the whole set (not its first rows,
    # which for a data set in class order would be one class), the same every time
    y = torch.cat([torch.full((128, 1, 8, 8), -5.0), torch.full((128, 1, 8, 8), 5.0)]) + torch.randn(256, 1, 8, 8)
    rng = torch.get_rng_state()
    recalibrate_bn(model, y, 64, images=128)
    first = model[1].running_mean.clone()
    with torch.no_grad():
        all_mean = model[0](y).mean((0, 2, 3))
        head_mean = model[0](y[:128]).mean((0, 2, 3))
    assert (first - all_mean).abs().max() < (head_mean - all_mean).abs().max() / 4
    recalibrate_bn(model, y, 64, images=128)
    assert torch.equal(first, model[1].running_mean) and torch.equal(rng, torch.get_rng_state())


# ------------------------------------------------------------------ drop-path and the auxiliary head
def test_cell_drop_path_wraps_each_non_identity_branch_and_keeps_the_weights(run_folder):
    run = open_run(run_folder)
    g, _ = final_genotype(run, apply_overrides(run, ["N=2,F=16"]), *FMNIST)
    dropped, n = with_cell_drop_path(g, 0.3)
    # NASNet-A: normal cell 10 operands, 2 of them identity; reduction cell 10, 1 identity
    assert n == 8 + 9
    assert nasty.parse(nasty.format(dropped)) == dropped
    clean, drop = compile_genotype(g), compile_genotype(dropped)
    assert list(clean.state_dict()) == list(drop.state_dict())    # the checkpoint is the plain genotype's
    drop.load_state_dict(clean.state_dict())
    rates = [m.p for m in drop.modules() if isinstance(m, DropPath)]
    assert rates and all(p == 0.3 for p in rates)
    x = torch.randn(4, 1, 28, 28)
    clean.eval(), drop.eval()
    assert torch.equal(clean(x), drop(x))                           # identity at evaluation
    resnet = nasty.zoo.get("resnet50")
    assert with_cell_drop_path(resnet, 0.3) == (resnet, 0)          # no two-input cells: nothing to drop


def test_drop_path_ramps_from_zero_to_each_rate_over_training():
    g = nasty.parse("""net dp input 1x28x28 classes 10
stem  conv3x3/2 c=8 bn relu
stage droppath p=0.4 conv3x3 c=8 bn relu
stage droppath p=0.2 gap flatten
head  fc c=classes
""")
    model = compile_genotype(g)
    seen = []
    mods = [m for m in model.modules() if isinstance(m, DropPath)]
    for m in mods:
        m.register_forward_pre_hook(lambda mod, args: seen.append(mod.p) if mod.training else None)
    data = _tiny_data()
    cfg = TrainConfig(epochs=2, batch_size=32, subset=128, val_subset=64, drop_path_ramp=True, threads=1)
    train(model, data, cfg, *_split(data))
    steps = 2 * 128 // 32
    first, second = seen[0::2], seen[1::2]
    assert first == pytest.approx([0.4 * s / steps for s in range(steps)])
    assert second == pytest.approx([0.2 * s / steps for s in range(steps)])
    assert [m.p for m in mods] == [0.4, 0.2]                        # restored after training


def test_aux_head_reads_the_state_at_two_thirds_and_shares_the_weights(run_folder):
    run = open_run(run_folder)
    g, _ = final_genotype(run, apply_overrides(run, ["N=2,F=16"]), *FMNIST)
    prog, handle = aux_tap(g, (1, 28, 28), 10)
    assert prog.steps[handle].name.startswith("stage4.")            # the second reduction cell
    assert prog.shape(handle) == (4 * 64, 4, 4)                    # NASNet-A reduces to 4 blocks of 4F
    gm = compile_genotype(with_cell_drop_path(g, 0.2)[0])
    model = with_aux_head(gm, (1, 28, 28), 10)
    shared = {id(p) for p in gm.parameters()}
    assert shared < {id(p) for p in model.parameters()}
    assert {id(p) for p in model.parameters()} - shared == {id(p) for p in model.aux_head.parameters()}
    captured = []
    model.aux_head.register_forward_pre_hook(lambda m, args: captured.append(args[0].clone()))
    x = torch.randn(3, 1, 28, 28)
    model.eval()
    logits = model(x)
    assert torch.equal(logits, gm.eval()(x))                        # eval: the network's own logits
    # the tapped state is the output of the network cut after that stage line, same weights
    cut = dataclasses.replace(g, layers=g.layers[:[i for i, x in enumerate(g.layers) if x.section == "stage"][3] + 1])
    head_less = compile_genotype(cut, input=(1, 28, 28))
    head_less.load_state_dict({k: v for k, v in gm.state_dict().items() if k in head_less.state_dict()})
    assert torch.allclose(captured[0], head_less.eval()(x), atol=1e-6)
    model.train()
    out, aux = model(x)
    assert out.shape == aux.shape == (3, 10)
    (out.sum() + aux.sum()).backward()                              # in-place ops downstream do not clash
    assert all(p.grad is not None for p in model.aux_head.parameters())


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_aux_head_taps_nets_without_cells(name):
    g = nasty.zoo.get(name)
    gm = compile_genotype(g, input=(3, 32, 32), classes=10)
    model = with_aux_head(gm, (3, 32, 32), 10).train()
    out, aux = model(torch.randn(2, 3, 32, 32))
    assert out.shape == aux.shape == (2, 10)


# ------------------------------------------------------------------ resume
def _tiny_data():
    from nasty.data import load_dataset
    return load_dataset("fashion-mnist")


def _split(data):
    from nasty.data import split_train_val
    return split_train_val(data, 0.1, seed=0)


def test_a_resumed_training_ends_where_an_uninterrupted_one_does():
    """Epoch 1, a saved state, then epochs 2-3 in a fresh model from that state: bit-identical on
    the CPU to 3 epochs in one go (same weights, same history), with cutout, crop, flip and drop-path."""
    data = _tiny_data()
    idx = _split(data)
    g = nasty.parse("""net r input 1x28x28 classes 10
stem  conv3x3/2 c=8 bn relu
stage droppath p=0.3 conv3x3 c=16 bn relu
head  gap flatten dropout p=0.2 fc c=classes
""")
    cfg = TrainConfig(epochs=3, batch_size=32, subset=256, val_subset=128, schedule="cosine", crop_padding=2,
                      flip=True, cutout=8, drop_path_ramp=True, grad_clip=5.0, precise_bn=64, threads=1)

    def fresh():
        torch.manual_seed(0)
        return compile_genotype(g)

    straight = fresh()
    whole = train(straight, data, cfg, *idx)
    states = []

    class Kill(Exception):
        pass

    def kill_after_first(epoch, m):
        raise Kill

    first = fresh()
    with pytest.raises(Kill):
        train(first, data, cfg, *idx, on_state=states.append, on_epoch=kill_after_first)
    saved = {k: v.clone() for k, v in first.state_dict().items()}
    torch.manual_seed(123)                                          # whatever happened in between
    resumed = fresh()
    resumed.load_state_dict(saved)
    rest = train(resumed, data, cfg, *idx, resume=states[0])
    assert [m["epoch"] for m in rest.history] == [1, 2, 3]
    assert [m["val_acc"] for m in rest.history] == [m["val_acc"] for m in whole.history]
    assert [m["train_loss"] for m in rest.history] == [m["train_loss"] for m in whole.history]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def _nasty(*args):
    return [sys.executable, "-m", "nasty.cli", *map(str, args)]


def test_nasty_train_killed_between_epochs_resumes_from_its_checkpoint(sessions, tmp_path, capsys):
    """A real `nasty train` process SIGKILLed after its first epoch's checkpoint; the same command
    again continues from there and ends with the weights a run that was never killed ends with."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["train", "lenet5", "--epochs", "2", "--subset", "4000", "--val-subset", "300", "--batch-size", "64", *ONE]
    ck = tmp_path / "ck.pt"
    p = sessions(_nasty(*args, "--save", ck), env=env)
    deadline, killed_at = time.time() + 240, None
    while time.time() < deadline and p.poll() is None:
        if ck.exists():
            epoch = load_checkpoint(ck)["epoch"]
            if epoch >= 1:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
                killed_at = epoch
                break
        time.sleep(0.05)
    assert killed_at is not None, "the training ended before it could be killed:\n" + p.stdout.read()
    assert killed_at == 1 and load_checkpoint(ck)["epoch"] == 1
    before = load_checkpoint(ck)["train"]["history"]

    again = sessions(_nasty(*args, "--save", ck), env=env)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert f"resuming {ck} (1/2 epochs done)" in out
    assert "epoch 1/2" not in out and "epoch 2/2" in out and "test accuracy" in out
    done = load_checkpoint(ck)
    assert done["epoch"] == 2 and [m["epoch"] for m in done["train"]["history"]] == [1, 2]
    assert done["train"]["history"][:1] == before
    assert 0.5 < done["test_acc"] <= 1

    whole = tmp_path / "whole.pt"
    straight = sessions(_nasty(*args, "--save", whole), env=env)
    out2, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out2
    ref = load_checkpoint(whole)
    def scores(ck):
        return [(m["epoch"], m["train_loss"], m["val_acc"]) for m in ck["train"]["history"]]
    assert scores(ref) == scores(done)
    for k, v in ref["model"].items():
        assert torch.equal(v, done["model"][k]), k                 # bit-identical on the CPU
    assert ref["test_acc"] == done["test_acc"]

    # the same command once more: already trained, nothing retrained
    rc, out3, _ = cli(capsys, *args, "--save", ck)
    assert rc == 0 and "already trained" in out3 and "epoch 1/2" not in out3
    assert f"test accuracy {done['test_acc']:.4f}" in out3


def test_another_training_never_overwrites_a_checkpoint(capsys, tmp_path):
    ck = tmp_path / "ck.pt"
    base = ["train", "lenet5", "--epochs", "1", "--subset", "256", "--val-subset", "100", "--save", ck, *ONE]
    rc, _, err = cli(capsys, *base)
    assert rc == 0, err
    first = ck.read_bytes()
    err = one_line_error(*cli(capsys, *base, "--lr", "0.01")[::2])
    assert "holds another training (its recipe.lr differs)" in err and "--restart" in err
    assert ck.read_bytes() == first
    rc, _, err = cli(capsys, *base, "--lr", "0.01", "--restart")
    assert rc == 0 and load_checkpoint(ck)["recipe"]["lr"] == 0.01
    err = one_line_error(*cli(capsys, "train", "lenet5", "--resume", "--save", tmp_path / "none.pt")[::2])
    assert "there is no checkpoint" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    err = one_line_error(*cli(capsys, "train", "lenet5", "--save", tmp_path / "junk.pt")[::2])
    assert "cannot read checkpoint" in err


# ------------------------------------------------------------------ the check
@pytest.mark.slow
def test_train_a_runs_final_network_larger_than_the_proxy(capsys, run_folder, tmp_path):
    """`nasty train runs/NAME --set N=2,F=16 --epochs 1 --subset 2000`: a network larger than the
    proxy, its test accuracy, the checkpoint beside the run, and --export to ONNX."""
    onnx_file = tmp_path / "final.onnx"
    rc, out, err = cli(capsys, "train", run_folder, "--set", "N=2,F=16", "--epochs", "1", "--subset", "2000",
                       *ONE, "--export", onnx_file)
    assert rc == 0, err
    proxy = nasty.cost(nasty.load(run_folder / "best_proxy.nasty"))
    g = nasty.load(run_folder / "final" / "final.nasty")
    c = nasty.cost(g)
    # F=16 against the proxy's 8, and at least as many cells (the proxy has ceil(N/2) per stack)
    assert c.params > 2 * proxy.params and c.macs > 2 * proxy.macs
    assert f"{c.params:,} params, {c.macs:,} MACs" in out and "N=2 F=16" in out
    assert "epoch 1/1: train loss" in out and "img/s" in out and "ETA" in out
    result = json.loads((run_folder / "final" / "result.json").read_text())
    assert f"test accuracy {result['test_acc']:.4f}" in out
    assert 0.4 < result["test_acc"] <= 1                          # chance is 0.1
    model, ck = load_final(run_folder / "final" / "checkpoint.pt")
    assert ck["epoch"] == 1 and ck["test_acc"] == result["test_acc"] and nasty.parse(ck["genotype"]) == g
    assert sum(p.numel() for p in model.parameters()) == c.params
    import onnx
    onnx.checker.check_model(onnx.load(str(onnx_file)))


@pytest.mark.parametrize("space_name", ["nasnet", "darts", "mbconv", "resnet", "nb201mini"])
def test_every_built_in_space_gives_a_trainable_final_network(tmp_path, space_name):
    """The winner of each built-in space, rebuilt at the data's input with cell drop-path and the
    auxiliary head, takes a training step; the checkpointed weights are the plain genotype's."""
    import random

    from nasty.space import RandomTrial
    torch.set_num_threads(1)
    sp = load_space(space_name)
    values, _ = sp.sample(RandomTrial(random.Random(1)))
    small = {d.name: min(d.options()) for d in sp.decisions(values) if d.name in ("N", "L", sp.width_decision)}
    values = {**values, **small}                            # the smallest depth and width: a fast test
    run = open_run(make_run(tmp_path / space_name, space_name, values))
    assert run.values == values
    g, _ = final_genotype(run, dict(values), *FMNIST)
    assert g.input == (1, 28, 28) and g.classes == 10
    dropped, _ = with_cell_drop_path(g, 0.2)
    net = compile_genotype(dropped)
    assert list(net.state_dict()) == list(compile_genotype(g).state_dict())
    model = with_aux_head(net, (1, 28, 28), 10).train()
    out, aux = model(torch.randn(2, 1, 28, 28))
    (out.sum() + 0.4 * aux.sum()).backward()
    assert out.shape == aux.shape == (2, 10)
