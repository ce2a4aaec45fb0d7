"""NAS-Bench-201 in nasty: the `nb201` space costs what NAS-Bench-201 publishes and what an
independent torch re-implementation of its network counts; the shipped table loads, maps each
row to the space's decisions and refuses bad rows; `nasty bench run --table nb201` simulates."""
from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import random

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasty
from nasty.cli import main
from nasty.compile import compile_genotype
from nasty.errors import NastyError
from nasty.nasbench import nb201 as table_mod
from nasty.nasbench.simulate import best_so_far, expected_random_regret, open_table, simulate
from nasty.searchspaces import nb201 as sp
from nasty.space import FixedTrial, load_space

# NAS-Bench-201's own cost figures for CIFAR-10 (its API's get_cost_info: 'flop' in MFLOPs, 'params'
# in millions), as stored for these three cells in NATS-Bench's repository (fake_torch_dir/
# NATS-tss-v1_0-3ffb9-simple/000000, 000011, 000284; the topology space is NAS-Bench-201's).
PUBLISHED = {
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|": (15.64737, 0.129306),
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|": (113.95137, 0.802426),
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|": (11.71521, 0.101306),
}
SHA256 = "55b97a38d9570c9ccd629f646bfcb16165dc2cb61145ee3ae009be825ea7609e"


# ------------------------------------------------------------------ an independent re-implementation
# Written from the paper's description of the network (Dong & Yang 2020, section 2.1 and figure 1):
# a 3x3 conv stem with BN, three stages of N cells at C, 2C and 4C joined by residual blocks of
# stride 2, then BN, ReLU, global average pooling and a linear classifier. Each cell node sums its
# incoming edges; an edge is zero, identity, ReLU-conv-BN 1x1 or 3x3, or 3x3 average pooling.
class Edge(nn.Module):
    def __init__(self, op: str, c: int):
        super().__init__()
        self.op = op
        if op in ("conv1x1", "conv3x3"):
            k = 1 if op == "conv1x1" else 3
            self.f = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))
        elif op == "avgpool3x3":
            self.f = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        if self.op == "none":
            return x * 0.0
        if self.op == "skip":
            return x
        return self.f(x)


class Cell(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.edges = nn.ModuleDict({f"{i}{j}": Edge(o, c) for (i, j), o in zip(sp.EDGES, ops)})

    def forward(self, x):
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[f"{i}{j}"](nodes[i]) for i in range(j)))
        return nodes[3]


class Reduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.a = nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
        self.b = nn.Sequential(nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.short(x)


class Net(nn.Module):
    def __init__(self, ops, c=16, n=5, classes=10):
        super().__init__()
        layers = [nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
        for s, width in enumerate((c, 2 * c, 4 * c)):
            if s:
                layers.append(Reduce(width // 2, width))
            layers += [Cell(ops, width) for _ in range(n)]
        layers += [nn.BatchNorm2d(4 * c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, classes)]
        self.f = nn.Sequential(*layers)

    def forward(self, x):
        return self.f(x)


def _count(model, shape=(1, 3, 32, 32)):
    """(params by numel, MACs = FlopCounterMode / 2), on the meta device (no arithmetic)."""
    model = model.to("meta")
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as fc:
        model(torch.zeros(shape, device="meta"))
    return params, fc.get_total_flops() // 2


CHECK_CELLS = [
    ("conv3x3",) * 6, ("none",) * 6, ("skip",) * 6, ("avgpool3x3",) * 6, ("conv1x1",) * 6,
    ("conv3x3", "none", "none", "none", "none", "none"),        # a conv into a node nothing reads
    ("none", "none", "conv3x3", "none", "none", "none"),        # a conv reading a zero node, read by nothing
    ("none", "skip", "conv1x1", "none", "none", "avgpool3x3"),  # node 1 zero, read by a conv
    ("conv1x1", "conv3x3", "none", "none", "none", "none"),     # nodes 1 and 2 both feed only zeros
    ("skip", "none", "none", "skip", "none", "none"),           # node 1 an identity nothing reads
    *(sp.parse_arch(a) for a in PUBLISHED),
]


def test_space_costs_equal_nas_bench_201s_published_figures():
    for arch, (mflop, mparams) in PUBLISHED.items():
        c = nasty.cost(sp.arch_genotype(sp.parse_arch(arch)))
        assert c.params == round(mparams * 1e6)
        # NAS-Bench-201 counts conv and linear multiply-adds plus the classifier's 10 bias adds
        assert c.macs + 10 == round(mflop * 1e6)
    lo, hi = nasty.cost(sp.arch_genotype(("none",) * 6)), nasty.cost(sp.arch_genotype(("conv3x3",) * 6))
    assert (lo.params, lo.macs, hi.params, hi.macs) == (73_306, 7_783_040, 1_531_546, 220_119_680)


@pytest.mark.parametrize("ops", [pytest.param(o, marks=pytest.mark.slow) if o in (("conv3x3",) * 6, ("conv1x1",) * 6)
                                 else o for o in CHECK_CELLS], ids=lambda o: "-".join(o))    # 20-30 s each, loaded
def test_space_cost_equals_an_independent_reimplementation(ops):
    g = sp.arch_genotype(ops)
    c = nasty.cost(g)
    assert _count(Net(ops)) == (c.params, c.macs)
    assert _count(compile_genotype(g)) == (c.params, c.macs)
    # the same function: the reference's weights moved into the compiled network give its outputs
    # (at C=8 and 2 cells per stage on 16x16 images, to keep the arithmetic small: same code paths)
    torch.manual_seed(0)
    ref = Net(ops, c=8, n=2)
    ours = compile_genotype(sp.arch_genotype(ops, 8, 2, (3, 16, 16), 10))
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    ref.eval()
    ours.eval()
    nasty.port_weights(ref, ours, input_shape=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ref(x), ours(x), atol=1e-4, rtol=1e-4)


def test_cost_is_the_per_op_sum_of_the_cost_model():
    rng = random.Random(0)
    cells = CHECK_CELLS + [tuple(rng.choice(sp.OPS) for _ in range(6)) for _ in range(150)]
    for ops in cells:
        c = nasty.cost(sp.arch_genotype(ops))
        assert table_mod.cell_cost(ops) == (c.params, c.macs)


def test_cost_is_the_per_op_sum_for_every_pattern_of_none_edges():
    """Which nodes are zero, read or orphaned depends only on which edges are `none`: each of the
    64 patterns, its other edges all one op (4 ways) or mixed (3 ways). (All 15,625 cells were
    checked once the same way: 11 minutes on the loaded 2-core machine, 2026-12-07.)"""
    rng = random.Random(1)
    for pattern in itertools.product((False, True), repeat=6):
        fills = [[o] * 6 for o in ("skip", "conv1x1", "conv3x3", "avgpool3x3")]
        fills += [[rng.choice(sp.OPS[1:]) for _ in range(6)] for _ in range(3)]
        for fill in fills:
            ops = tuple("none" if off else o for off, o in zip(pattern, fill))
            c = nasty.cost(sp.arch_genotype(ops))
            assert table_mod.cell_cost(ops) == (c.params, c.macs), ops


def test_params_and_macs_rank_every_cell_alike():
    t = open_table("nb201")
    a = t["arrays"]
    order = a["params"].argsort(kind="stable")
    p, m = a["params"][order], a["macs"][order]
    assert ((p[1:] > p[:-1]) == (m[1:] > m[:-1])).all() and ((p[1:] == p[:-1]) == (m[1:] == m[:-1])).all()


def test_space_builds_target_and_proxy():
    space = load_space("nb201")
    values = dict(zip(sp.EDGE_NAMES, ("conv3x3", "skip", "avgpool3x3", "none", "conv1x1", "none")))
    _, g = space.sample(FixedTrial(values))
    assert tuple(g.input) == (3, 32, 32) and g.classes == 10
    proxy = space.genotype(values, proxy=True)
    assert tuple(proxy.input) == (1, 28, 28)
    out = compile_genotype(proxy)(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)
    assert [d.name for d in space.decisions(values)] == list(sp.EDGE_NAMES)


# ------------------------------------------------------------------ the table
def test_shipped_table_is_the_source_file_and_complete():
    raw = gzip.decompress(table_mod.DATA.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SHA256
    t = open_table("nb201")
    assert len(t["rows"]) == len(t["by_ops"]) == 15_625
    best = max(t["rows"], key=lambda r: r["val_acc"])
    assert (best["index"], best["val_acc"], best["test_acc"]) == (13714, 0.84892, 0.8903)
    assert max(r["test_acc"] for r in t["rows"]) == 0.8916
    assert sorted(r["index"] for r in t["rows"]) == list(range(15_625))


def test_every_row_maps_to_the_spaces_decisions_and_back():
    t = open_table("nb201")
    space = load_space("nb201")
    arrays = t["arrays"]
    for code, row in enumerate(t["rows"]):
        assert row["code"] == code and table_mod.code(row["ops"]) == code
        assert sp.arch_str(sp.parse_arch(row["arch"])) == row["arch"]
        trial = FixedTrial(dict(zip(sp.EDGE_NAMES, row["ops"])))
        assert t["by_ops"][sp.decide(trial)] is row                     # decisions -> the row
        assert arrays["index"][code] == row["index"] and arrays["val"][code] == row["val_acc"]
    ops = t["rows"][1234]["ops"]
    assert f"# NAS-Bench-201 cell {sp.arch_str(ops)}" in sp.genotype_text(ops)
    values, _ = space.sample(FixedTrial(dict(zip(sp.EDGE_NAMES, ops))))
    assert tuple(values[e] for e in sp.EDGE_NAMES) == ops


@pytest.mark.parametrize("bad", ["", "|nor_conv_3x3~0|", "|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|none~1|+|none~0|none~1|", None])
def test_bad_cell_strings_are_refused(bad):
    with pytest.raises(NastyError, match="not a NAS-Bench-201 cell string"):
        sp.parse_arch(bad)


def _table_text():
    return gzip.decompress(table_mod.DATA.read_bytes()).decode()


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls.__setitem__(5, ls[5].rsplit(",", 1)[0] + ",nan"), r"row 5 \(line 6\).*cifar10_test_acc 'nan' is not an accuracy"),
    (lambda ls: ls.__setitem__(7, ls[7].rsplit(",", 2)[0] + ",high,80"), r"row 7 .*cifar10_valid_acc 'high' is not a number"),
    (lambda ls: ls.__setitem__(9, ls[9].rsplit(",", 2)[0] + ",101.5,80"), r"row 9 .*'101.5' is not an accuracy in percent"),
    (lambda ls: ls.__setitem__(9, ls[9].rsplit(",", 1)[0] + ",-3"), r"row 9 .*'-3' is not an accuracy"),
    (lambda ls: ls.__setitem__(3, "0," + ls[3].split(",", 1)[1]), r"row 3 .*index 0 is already row 1"),
    (lambda ls: ls.__setitem__(4, ls[4].split(",", 1)[0] + "," + ls[2].split(",", 1)[1]), r"row 4 .*is already row 2"),
    (lambda ls: ls.__setitem__(6, "x," + ls[6].split(",", 1)[1]), r"row 6 .*index 'x' is not an integer"),
    (lambda ls: ls.__setitem__(6, "5," + ls[6].split(",", 1)[1].replace("nor_conv_3x3", "conv9x9")), r"row 6 .*not a NAS-Bench-201 cell"),
    (lambda ls: ls.__setitem__(8, ls[8] + ",extra"), r"row 8 .*expected 4 comma-separated fields"),
    (lambda ls: ls.pop(100), r"15,624 cells, NAS-Bench-201 has 15,625 \(missing e.g. \|"),
    (lambda ls: ls.__setitem__(0, "index,arch,val,test"), r"the header must be index,arch,cifar10_valid_acc"),
])
def test_bad_rows_are_refused_in_one_line(tmp_path, edit, message):
    lines = _table_text().splitlines()
    edit(lines)
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(NastyError, match=message) as e:
        table_mod.load_nb201(p)
    assert "\n" not in str(e.value) and "bad.csv" in str(e.value)


def test_bad_table_files_are_refused_by_the_cli(tmp_path, capsys):
    junk = tmp_path / "junk.csv.gz"
    junk.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00" * 100)
    for path, msg in ((junk, "is unreadable"), (binary, "is unreadable"), (tmp_path / "none.csv", "no NAS-Bench-201 table")):
        assert main(["bench", "run", "--table", str(path), "--seeds", "1", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("nasty: error:") and msg in err and len(err.splitlines()) == 1
    good = tmp_path / "good.csv.gz"                                    # a table of the same form, gzipped
    good.write_bytes(table_mod.DATA.read_bytes())
    assert table_mod.load_nb201(good)["rows"][0]["arch"] == open_table("nb201")["rows"][0]["arch"]


# ------------------------------------------------------------------ the simulation
def test_best_so_far_is_vectorised_right():
    vals = [[0.1, 0.5, 0.5, 0.3, 0.7], [0.9, 0.2, 0.95, 0.95, 0.1]]
    tests = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    best, sel = best_so_far(vals, tests)
    assert best.tolist() == [[0.1, 0.5, 0.5, 0.5, 0.7], [0.9, 0.9, 0.95, 0.95, 0.95]]
    assert sel.tolist() == [[1, 2, 2, 2, 5], [6, 6, 8, 8, 8]]        # a tie keeps the first cell


@pytest.mark.parametrize("name", ["random", "evolution", "tpe", "reinforce", "nsga2"])
def test_simulate_each_controller_plain_and_screened(name):
    t = open_table("nb201")
    for screen in (None, "params"):
        r = simulate(t, name, trials=25, seed=1, screen=screen, k=4)
        assert len(r["best_val"]) == 25 and r["proposals"] == (100 if screen else 25)
        assert all(b >= a for a, b in zip(r["best_val"], r["best_val"][1:]))
        assert max(r["best_val"]) <= 0.84892


def test_the_screen_keeps_the_largest_of_k_and_evolution_warms_up_on_kept_trials():
    from nasty.controllers import EvolutionController, make_controller
    from nasty.space import RandomTrial
    t = open_table("nb201")
    asked = []
    orig = EvolutionController.ask

    def spy(self):
        trial = orig(self)
        asked.append(trial)
        return trial
    EvolutionController.ask = spy
    try:
        r = simulate(t, "evolution:population=6:sample=2", trials=12, seed=0, screen="params", k=5)
    finally:
        EvolutionController.ask = orig
    assert len(asked) == 60
    # the random start: the first 5 kept trials are each the best of 5 random cells; the 6th round
    # opens with a random cell and goes on with mutants of the 5 members (the kept candidate of the
    # round is outstanding while the rest are asked); every later proposal is a mutant
    kinds = [type(x) is RandomTrial for x in asked]
    assert all(kinds[:26]) and not any(kinds[26:])
    for i in range(12):
        cands = [t["by_ops"][sp.decide(FixedTrial(x.values))] for x in asked[5 * i:5 * i + 5]]
        assert r["archs"][i] == max(cands, key=lambda row: row["params"])["arch"]
    tpe = make_controller("tpe", load_space("nb201"), seed=0)
    simulate(t, "tpe", trials=15, seed=0, screen="macs", k=3)
    trial = tpe.ask()
    tpe.discard(trial)                      # a screened-out trial is closed, not left running
    assert str(tpe.study.get_trials()[0].state) == "TrialState.FAIL"


def test_random_search_matches_its_exact_expectation():
    t = open_table("nb201")
    runs = [simulate(t, "random", trials=100, seed=s) for s in range(150)]
    best, _ = best_so_far([r["vals"] for r in runs], [r["tests"] for r in runs])
    regret = 100 * (0.84892 - best[:, 99])
    se = regret.std(ddof=1) / len(regret) ** 0.5
    assert abs(regret.mean() - expected_random_regret(t, 100)) < 3 * se
    assert abs(expected_random_regret(t, 100) - 1.196) < 0.01


def test_bench_run_nb201_writes_table_plots_and_verdict(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", "run", "--table", "nb201", "--controllers", "random,evolution", "--trials", "100",
                 "--seeds", "4", "--screen-k", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| evolution +screen |" in printed and "regret@100 (pp)" in printed and "Goals at 100 trials" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["space"] == "nb201" and res["screen"] == {"score": "params", "K": 3} and res["at"] == [25, 50, 100]
    assert set(res["controllers"]) == {"random", "evolution", "random +screen", "evolution +screen"}
    assert "every_controller_beats_random" in res["verdict"] and "screened_evolution" in res["verdict"]
    assert (out / "regret.png").stat().st_size > 10_000 and (out / "regret.svg").stat().st_size > 10_000
    assert main(["bench", "run", "--table", "nb201", "--screen-k", "1", "--out", str(out)]) == 2
    assert main(["bench", "run", "--table", "nb201", "--controllers", "darts", "--out", str(out)]) == 2
    assert main(["bench", "run", "--table", "nb201", "--schedulers", "asha", "--out", str(out)]) == 2
