"""Latency (nasty/latency/): the lookup table's keys and its refusal of a foreign table, the
predicted sum over a tiny network's layers against a hand count, latency budgets (parsing, the
rejection before training, the preflight's fastest candidate, finalists measured for real), the
measurement harness and the one-line errors. No assertion here depends on how fast this machine is:
times are either set by hand in a table or compared against limits no network can miss."""
import json
from pathlib import Path

import pytest
import torch

import nasty
from nasty.cli import main
from nasty.errors import BudgetError
from nasty.genotype import elaborate
from nasty.latency.measure import LatencyError
from nasty.latency.predict import Correction, Predictor, fit_correction
from nasty.latency.table import LookupTable, config_of, fingerprint
from nasty.search.budget import Budget, preflight

TINY_SPACE = str(Path(__file__).parent / "spaces" / "tiny.py")
TINY_NET = """net handcount input 1x8x8 classes 2
stem conv3x3 c=4 bn relu
head gap flatten dropout p=0.3 fc c=2
"""
# the elaborated layers of TINY_NET, written out by hand: (layer name, op, time given to its configuration)
HAND = [("stem.conv", "conv", 1.0), ("stem.bn", "bn", 0.25), ("stem.relu", "relu", 0.125),
        ("head.gap", "gap", 0.5), ("head.flatten", "flatten", 0.0625), ("head.dropout", "dropout", 0.03125),
        ("head.fc", "fc", 2.0)]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder: no test reads or writes the user's tables."""
    monkeypatch.setenv("NASTY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


def hand_table():
    """A table whose entries for TINY_NET's layers are the HAND times (nothing timed)."""
    t = LookupTable(fingerprint())
    steps = elaborate(nasty.parse(TINY_NET)).steps
    assert [(st.name, st.kind) for st in steps] == [(n, k) for n, k, _ in HAND]
    for st, (_, _, ms) in zip(steps, HAND):
        t.put(config_of(st), ms, 0.0, 1, st)
    return t


# ------------------------------------------------------------------ the table's keys
def _step(text, name):
    return next(st for st in elaborate(nasty.parse(text)).steps if st.name == name)


def test_a_configuration_key_is_what_changes_the_time_and_nothing_else():
    base = "net k input 3x32x32 classes 10\nstem conv3x3 c=16 bn relu\nhead gap flatten dropout p={p} fc c=10\n"
    a, b = base.format(p=0.1), base.format(p=0.5)
    # a different drop probability (identity at inference) or BN eps: the same configuration
    assert config_of(_step(a, "head.dropout")) == config_of(_step(b, "head.dropout"))
    eps = "net k input 3x32x32 classes 10\nstem conv3x3 c=16 bn eps=0.001 relu\nhead gap flatten fc c=10\n"
    assert config_of(_step(a, "stem.bn")) == config_of(_step(eps, "stem.bn"))
    conv = config_of(_step(a, "stem.conv"))
    # kernel, stride, channels, groups, input size and batch each make another configuration
    for other in ("stem conv5x5 c=16", "stem conv3x3/2 c=16", "stem conv3x3 c=32", "stem dwconv3x3 c=3"):
        text = a.replace("stem conv3x3 c=16", other)
        assert config_of(elaborate(nasty.parse(text)).steps[0]) != conv, other
    assert config_of(_step(a.replace("3x32x32", "3x64x64"), "stem.conv")) != conv
    assert config_of(_step(a, "stem.conv"), batch=8) != conv
    # and the same op in two networks, at the same shapes, is one configuration
    other_net = "net other input 3x32x32 classes 100\nstem conv3x3 c=16 bn relu conv1x1 c=8\nhead gap flatten fc c=100\n"
    assert config_of(_step(other_net, "stem.conv")) == conv


def test_a_table_from_another_machine_or_other_versions_is_refused(tmp_path):
    here = fingerprint()
    for key, value in (("torch", "1.0.0"), ("cpu", "another CPU"), ("threads", 4), ("clock", "cpu")):
        t = hand_table()
        t.fingerprint = {**here, key: value}
        f = tmp_path / f"{key}.json"
        t.save(f)
        with pytest.raises(LatencyError, match="calibrated on another machine or software") as e:
            LookupTable.load(f, expect=here)
        msg = str(e.value)
        assert key in msg and "\n" not in msg and "--recalibrate" in msg
    # the same fingerprint loads, with its entries and their steps
    t = hand_table()
    t.save(tmp_path / "mine.json")
    back = LookupTable.load(tmp_path / "mine.json", expect=here)
    assert back.entries == t.entries and len(back.steps()) == len(HAND)


def test_this_machines_table_is_filed_by_its_fingerprint(cache):
    t = LookupTable.for_machine()
    assert t.path.parent == cache / "latency" and len(t) == 0
    other = LookupTable.for_machine(clock="cpu")
    assert other.path != t.path                      # another clock, another table


def test_the_cli_refuses_a_foreign_or_damaged_table_in_one_line(capsys, tmp_path):
    t = hand_table()
    t.fingerprint = {**fingerprint(), "torch": "0.1"}
    f = tmp_path / "foreign.json"
    t.save(f)
    rc, _, err = run_cli(capsys, "latency", "lenet5", "--predict", "--table", str(f))
    assert rc == 2 and err.startswith("nasty: error: latency table") and "torch" in err and "\n" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, _, err = run_cli(capsys, "latency", "lenet5", "--predict", "--table", str(bad))
    assert rc == 2 and "cannot read latency table" in err and "\n" not in err


def test_recalibrate_times_a_foreign_tables_configurations_here(capsys, tmp_path, cache):
    t = hand_table()
    t.fingerprint = {**fingerprint(), "cpu": "some other CPU"}
    f = tmp_path / "foreign.json"
    t.save(f)
    rc, _, err = run_cli(capsys, "latency", "calibrate", "--recalibrate", "--table", str(f), "--networks", "0")
    assert rc == 0, err
    mine = LookupTable.for_machine()
    assert set(t.entries) <= set(mine.entries)       # every configuration timed again, on this machine
    assert all(mine.ms(k) >= 0 for k in t.entries)
    assert LookupTable.load(f, refuse_foreign=False).entries == t.entries      # the foreign file untouched


# ------------------------------------------------------------------ the prediction
def test_the_prediction_is_the_sum_over_the_layers_hand_counted():
    t = hand_table()
    g = nasty.parse(TINY_NET)
    hand_sum = sum(ms for _, _, ms in HAND)                   # 3.96875 ms, counted above
    p = Predictor(t, on_missing="error", correction=False)
    assert p.predict(g) == pytest.approx(hand_sum, abs=1e-9)
    e = p.explain(g)
    assert [(x.name, x.op, x.ms) for x in e.layers] == [(n, k, pytest.approx(ms)) for n, k, ms in HAND]
    # with a correction: scale x sum + per-layer time x layers, and per layer the same rule
    c = Correction(scale=2.0, per_layer_ms=0.1, networks=5)
    p = Predictor(t, on_missing="error", correction=c)
    assert p.predict(g) == pytest.approx(2.0 * hand_sum + 0.1 * len(HAND))
    assert sum(x.ms for x in p.explain(g).layers) == pytest.approx(p.predict(g))
    # a replayed step (the same configuration twice) counts twice
    twice = nasty.parse(TINY_NET.replace("stem conv3x3 c=4 bn relu", "stem conv3x3 c=4 bn relu relu"))
    assert Predictor(t, on_missing="error", correction=False).predict(twice) == pytest.approx(hand_sum + 0.125)


def test_a_configuration_the_table_lacks_is_an_error_or_timed_now():
    t = hand_table()
    wider = nasty.parse(TINY_NET.replace("fc c=2", "fc c=3"))    # one configuration more: fc to 3 outputs
    with pytest.raises(LatencyError, match=r"no timing for 1 layer configuration\(s\) .*e\.g\. fc 4"):
        Predictor(t, on_missing="error").predict(wider)
    p = Predictor(t, correction=False)                         # on_missing="time"
    assert p.predict(wider) > 0 and p.timed_now == 1 and len(t) == len(HAND) + 1


def test_the_correction_is_fitted_to_networks_measured_whole():
    nets = [{"sum_ms": s, "layers": n, "measured_ms": 1.25 * s + 0.02 * n} for s, n in
            ((10, 50), (20, 300), (5, 120), (40, 80), (8, 200))]
    c = fit_correction(nets)
    assert c.scale == pytest.approx(1.25, rel=1e-6) and c.per_layer_ms == pytest.approx(0.02, rel=1e-6)
    assert c.networks == 5 and c.median_abs_error == pytest.approx(0, abs=1e-9)
    assert fit_correction(nets[:2]) == Correction(networks=2)             # too few: the identity, and says so
    assert "needs 3" in fit_correction(nets[:2]).describe()


def test_nasty_latency_in_python_measures_and_predicts():
    m = nasty.latency("lenet5")
    assert m.q1_ms <= m.median_ms <= m.q3_ms and len(m.block_medians_ms) == 3 and m.threads == 1
    assert m.runs == 3 * m.runs_per_block and 0 <= m.repeatability
    p = nasty.latency("lenet5", predict=True)
    assert p.total_ms > 0 and len(p.layers) == len(nasty.cost("lenet5").layers)
    c = nasty.latency("lenet5", clock="cpu")
    assert c.clock == "cpu" and c.median_ms > 0


# ------------------------------------------------------------------ budgets
@pytest.mark.parametrize("text, macs, ms", [
    ("15ms", None, 15.0), ("0.02s", None, 20.0), ("900us", None, 0.9), ("600MFLOPs,15ms", 600_000_000, 15.0),
    ("15ms, 1.2GMACs", 1_200_000_000, 15.0), ("600M", 600_000_000, None)])
def test_a_time_unit_makes_a_latency_budget(text, macs, ms):
    b = Budget.parse(text)
    assert (b.macs, b.latency_ms) == (macs, ms) and bool(b)
    assert ("ms latency" in b.describe()) == (ms is not None)


@pytest.mark.parametrize("text, needle", [("15ms,20ms", "two latencies"), ("600M,700M", "two MAC budgets"),
                                          ("0ms", "positive time"), ("15 parsecs", "malformed --budget")])
def test_a_bad_latency_budget_is_a_one_line_error(text, needle):
    with pytest.raises(BudgetError, match=needle) as e:
        Budget.parse(text)
    assert "\n" not in str(e.value)


class ByMacs:
    """A stand-in predictor: 1 ms per million target MACs (the tests need no timing)."""
    space = "tiny"

    def predict(self, cost):
        return cost.macs / 1e6


def test_a_latency_budget_rejects_before_training(tmp_path):
    from nasty.controllers import make_controller
    from nasty.search.folder import RunFolder
    from nasty.search.loop import SearchLoop
    from nasty.search.settings import Settings
    from nasty.space import load_space
    space = load_space(TINY_SPACE)
    s = Settings(space=TINY_SPACE, budget="4ms", trials=100, epochs=1, subset=100, val_subset=50, batch_size=16,
                 lr=0.05, time_budget=600, seed=0, runs_dir=str(tmp_path), name="r", confirm=0,
                 fit=False).resolved(gpu=False)
    folder = RunFolder(tmp_path / "r")
    folder.create({})
    budget = Budget.parse("4ms").with_predictor(ByMacs())
    loop = SearchLoop(s, folder, space, make_controller("random", space, seed=0), budget, (1, 28, 28), 10)
    dispatched = []
    for _ in range(8):
        p = loop.propose()
        loop.dispatch(f"k{p.trial}", p)
        dispatched.append(p.record)
    assert all(r.target.latency_ms <= 4.0 and r.target.latency_ms == r.target.macs / 1e6 for r in dispatched)
    lines = [json.loads(x) for x in (folder.path / "trials.jsonl").read_text().splitlines()]
    rejected = [x for x in lines if x["status"] == "rejected"]
    assert rejected, "the tiny space has members over 4 ms at 1 ms per MMAC"
    for x in rejected:                                # priced, never dispatched
        assert x["trial"] is None and x["target"]["latency_ms"] > 4.0 and "ms predicted > 4 ms" in x["reason"]


def test_a_latency_budget_no_candidate_meets_names_the_fastest_found():
    from nasty.space import load_space
    space = load_space(TINY_SPACE)
    b = Budget.parse("0.001ms").with_predictor(ByMacs())
    with pytest.raises(BudgetError, match=r"the fastest seen is predicted at [0-9.]+ ms") as e:
        preflight(space, b, fit=False, tries=30)
    assert "width=" in str(e.value) and "\n" not in str(e.value)
    # with the real predictor of this machine too (its configurations timed on demand)
    from nasty.latency import predictor
    b = Budget.parse("0.0001ms").with_predictor(predictor(on_missing="time"))
    with pytest.raises(BudgetError, match="fastest seen is predicted at"):
        preflight(space, b, fit=False, tries=5, seconds=1)


def test_finalists_are_measured_and_one_over_the_budget_is_out_of_the_ranking(tmp_path):
    """Limits no network misses either way: 1e-6 ms (every finalist over) and 1e6 ms (every one within)."""
    from nasty.latency.search import finalists, measured
    from nasty.search.folder import RunFolder
    from nasty.search.record import NetCost, Status, TrialRecord
    from nasty.search.results import best_of, ranked
    g = nasty.format(nasty.parse(TINY_NET))
    recs = [TrialRecord(Status.OK, i, genotype=g, proxy_genotype=g, val_acc=0.5 + i / 10,
                        target=NetCost(100, 10, (1, 8, 8), 2, 0.05)) for i in range(3)]
    folder = RunFolder(tmp_path / "run")
    folder.create({"budget_latency_ms": 1e-6})
    chosen = finalists(folder, ranked(recs), Budget(latency_ms=1e-6), k=2)
    assert chosen == [] and set(measured(folder)) == {0, 1, 2}
    refused = [c for c in folder.confirmations() if c.status is Status.REJECTED]
    assert {c.trial for c in refused} == {0, 1, 2} and "latency budget" in refused[0].reason
    assert best_of(recs, folder.confirmations()) is None
    from nasty.latency.search import no_winner_line
    assert "no winner" in no_winner_line(folder)
    folder2 = RunFolder(tmp_path / "run2")
    folder2.create({"budget_latency_ms": 1e6})
    chosen = finalists(folder2, ranked(recs), Budget(latency_ms=1e6), k=2)
    assert [r.trial for r in chosen] == [2, 1] and set(measured(folder2)) == {1, 2}   # best first, k of them
    assert best_of(recs, folder2.confirmations()).trial == 2


# ------------------------------------------------------------------ the commands
def test_nasty_latency_measures_and_predicts(capsys):
    rc, out, err = run_cli(capsys, "latency", "lenet5", "--predict", "--json")
    assert rc == 0, err
    row = json.loads(out)[0]
    assert row["network"] == "lenet5" and row["q1_ms"] <= row["median_ms"] <= row["q3_ms"]
    assert row["predicted_ms"] > 0 and row["threads"] == 1 and row["batch"] == 1 and row["clock"] == "wall"
    rc, out, err = run_cli(capsys, "latency", "lenet5", "--input", "1x28x28", "--batch", "2")
    assert rc == 0 and "lenet5:" in out and "IQR" in out and "1x28x28, batch 2" in out


def test_nasty_show_latency_adds_a_column_per_layer(capsys):
    rc, out, err = run_cli(capsys, "show", "lenet5", "--latency")
    assert rc == 0, err
    assert "pred. ms" in out.splitlines()[0] and "ms predicted" in out
    rc, out, _ = run_cli(capsys, "show", "lenet5", "--latency", "--json")
    d = json.loads(out)
    assert d["latency_ms"] == pytest.approx(sum(x["latency_ms"] for x in d["layers"]))


def test_calibrate_a_network_is_resumable(capsys, cache):
    rc, _, err = run_cli(capsys, "latency", "calibrate", "lenet5", "--networks", "0")
    assert rc == 0 and "timed" in err
    n = len(LookupTable.for_machine())
    rc, _, err = run_cli(capsys, "latency", "calibrate", "lenet5", "--networks", "0")
    assert rc == 0 and "timed 0 configurations" in err and len(LookupTable.for_machine()) == n


@pytest.mark.parametrize("argv, needle", [
    (["latency", "lenet5", "--device", "tpu"], "unknown device 'tpu'"),
    (["latency", "lenet5", "--clock", "cpu", "--threads", "2"], "needs --threads 1"),
    (["latency", "lenet5", "--batch", "0"], "--batch must be at least 1"),
    (["latency", "calibrate"], "say what to calibrate"),
    (["latency", "no_such_net"], "unknown zoo network"),
    (["latency", "calibrate", "--space", "no_such_space"], "unknown search space"),
])
def test_bad_latency_input_is_a_one_line_error(capsys, argv, needle):
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2 and needle in err and len(err.splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(capsys):
    rc, _, err = run_cli(capsys, "latency", "lenet5", "--device", "cuda")
    assert rc == 2 and "--device cuda is not available" in err and len(err.splitlines()) == 1


def test_a_run_with_a_latency_budget_shows_it(tmp_path):
    """The leaderboard's latency columns, the summary line and the plot, from a run folder's files."""
    from nasty.latency.search import MEASURED
    from nasty.search.folder import RunFolder
    from nasty.search.record import NetCost, Status, TrialRecord
    from nasty.search.results import leaderboard_text, summary_lines, write_results
    g = nasty.format(nasty.parse(TINY_NET))
    recs = [TrialRecord(Status.OK, i, genotype=g, proxy_genotype=g, val_acc=0.5 + i / 10,
                        target=NetCost(100, 10, (1, 8, 8), 2, 1.0 + i)) for i in range(2)]
    folder = RunFolder(tmp_path / "run")
    folder.create({"budget_latency_ms": 5.0, "latency": {"clock": "wall"}})
    folder.write_json(MEASURED, {"trials": {"1": {"measured_ms": 2.5, "q1_ms": 2.4, "q3_ms": 2.6,
                                                  "predicted_ms": 2.0, "prediction_error": -0.2, "load": 0.5,
                                                  "within_budget": True}}})
    text = leaderboard_text(recs, latency={1: {"measured_ms": 2.5}})
    assert "pred. ms" in text and "measured ms" in text and "2.5" in text
    write_results(folder, recs)
    assert (folder.path / "plots" / "accuracy_vs_latency.svg").is_file()
    assert json.loads((folder.path / "best.json").read_text())["latency"]["measured_ms"] == 2.5
    lines = "\n".join(summary_lines(folder, recs, None, "5 ms latency"))
    assert "latency: measured 2.5 ms" in lines and "within the budget of 5 ms" in lines


def test_a_latency_budget_with_a_one_shot_search_is_refused_in_one_line(capsys, tmp_path):
    rc, _, err = run_cli(capsys, "search", "--space", TINY_SPACE, "--budget", "5ms", "--evaluator", "supernet",
                         "--runs-dir", str(tmp_path), "--trials", "2")
    assert rc == 2 and "standalone evaluator only" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())                     # no run folder was made


# ------------------------------------------------------------------ the objectives
def test_the_soft_objective_and_the_pareto_front_use_latency_under_a_latency_budget():
    from nasty.controllers import Result, make_controller
    from nasty.search.record import Status
    from nasty.space import space

    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def choice(t, net):
        t.choice("op", ["a", "b", "c"])
        return nasty.parse(TINY_NET)

    b = Budget.parse("600M,20ms")
    ctrl = make_controller("reinforce", choice, seed=0, objective="soft", budget=b)
    t = ctrl.ask()
    choice.sample(t)
    assert ctrl._reward(t, Result(0.8, metrics={"macs": 9e9, "latency_ms": 40.0})) == pytest.approx(0.8 * 2 ** -0.07)
    assert ctrl._reward(t, Result(0.8, metrics={"macs": 9e9})) is None        # no latency: not told
    tpe = make_controller("tpe", choice, seed=0, objective="pareto", budget=b, n_startup_trials=2)
    for i, lat in enumerate((10.0, 30.0, 5.0)):
        t = tpe.ask()
        choice.sample(t)
        status = Status.REJECTED if lat > 20 else Status.OK
        tpe.tell(t, Result(None if lat > 20 else 0.5 + i / 10, status=status,
                           metrics={"macs": 1000, "params": 10, "latency_ms": lat}))
    cons = [t.user_attrs["constraint"] for t in tpe.study.trials]
    assert cons == pytest.approx([10 / 20 - 1, 30 / 20 - 1, 5 / 20 - 1])
    assert [t.values[1] for t in tpe.study.trials] == [10.0, 30.0, 5.0]        # the second objective: latency
    assert all("latency_ms" in f for f in tpe.pareto_front())


def test_nasty_zoo_latency_adds_a_measured_column(capsys):
    rc, out, err = run_cli(capsys, "zoo", "--latency", "--no-check", "lenet5")
    assert rc == 0, err
    assert "latency ms" in out and "IQR ms" in out and "measured here at batch 1" in out
    rc, out, _ = run_cli(capsys, "zoo", "--latency", "--no-check", "--json", "lenet5")
    lat = json.loads(out)[0]["latency"]
    assert lat["q1_ms"] <= lat["median_ms"] <= lat["q3_ms"] and lat["runs"] >= 9


@pytest.mark.slow
def test_bench_latency_runs_and_summarises(tmp_path, capsys):
    """benchmarks/bench_latency.py end to end on four small zoo networks (no space), then again from its data."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import bench_latency
    rows = bench_latency.main(["--spaces", "", "--zoo", "lenet5,shufflenet_v2_x0_5,mobilenet_v1_025,mobilenet_v3_small",
                               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert len(rows) == 4 and all(r["predicted_ms"] > 0 and r["again_ms"] > 0 for r in rows)
    assert "| zoo | 4 |" in out and "Spearman" in out and "nearly equal" in out
    saved = next(tmp_path.glob("latency-wall-*.json"))
    again = bench_latency.main(["--from", str(saved)])
    assert again == rows and "| zoo | 4 |" in capsys.readouterr().out


def test_an_interrupted_calibration_keeps_what_it_timed(cache):
    from nasty.latency.calibrate import genotype_configs, time_configs
    configs = genotype_configs([nasty.zoo.get("lenet5")])
    t = LookupTable.for_machine()

    def stop_after_three(done, total, key):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        time_configs(t, configs, progress=stop_after_three)
    kept = LookupTable.for_machine()
    assert len(kept) == 3 and set(kept.entries) <= set(configs)
    n, _ = time_configs(kept, configs)                      # resumed: only the rest is timed
    assert n == len(configs) - 3 and len(LookupTable.for_machine()) == len(configs)
