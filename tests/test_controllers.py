"""The search controllers: learning, beating chance on toy objectives, resume, bad input."""
from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest

import nasty
from nasty.controllers import REGISTRY, Result, check_resume, make_controller
from nasty.errors import NastyError, RunError
from nasty.search.record import Status
from nasty.space import space

_G = nasty.parse("net toy input 1x8x8 classes 2\nstem conv3x3 c=4 bn relu\nhead gap flatten fc c=classes\n")


@space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
def one_choice(t, net):
    t.choice("op", ["a", "b", "c", "d"])
    return _G


# A toy objective with a unique optimum and a conditional decision: 6 ops of 4 values,
# a depth 1..4 and, only when depth > 2, a bool. 4^6 * (2 + 2 * 2) = 24,576 points.
OPTIONS = ["skip", "conv3x3", "conv5x5", "pool"]
WEIGHTS = [[0.0, 0.6, 1.0, 0.2], [0.3, 1.0, 0.1, 0.0], [1.0, 0.0, 0.4, 0.5],
           [0.2, 0.1, 0.0, 1.0], [0.0, 1.0, 0.7, 0.3], [0.5, 0.2, 1.0, 0.0]]


@space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
def toy(t, net):
    for i in range(6):
        t.choice(f"op{i}", OPTIONS)
    depth = t.int("depth", 1, 4)
    if depth > 2:
        t.choice("se", [False, True])
    return _G


def toy_reward(v: dict) -> float:
    r = sum(WEIGHTS[i][OPTIONS.index(v[f"op{i}"])] for i in range(6))
    r += 0.5 * (v["depth"] == 3) + 0.5 * bool(v.get("se"))
    return r / 7.0          # optimum 1.0: ops 2,1,0,3,1,2, depth 3, se True


def run_search(name, sp, reward, n, seed, **options):
    ctrl = make_controller(name, sp, seed=seed, **options)
    best = -math.inf
    for _ in range(n):
        t = ctrl.ask()
        values, _ = sp.sample(t)
        r = reward(values)
        best = max(best, r)
        ctrl.tell(t, Result(r))
    return best


# ------------------------------------------------------------------ REINFORCE learns
def test_reinforce_probability_of_best_choice_rises():
    rewards = {"a": 0.30, "b": 0.50, "c": 0.90, "d": 0.40}
    ctrl = make_controller("reinforce", one_choice, seed=0)
    before = ctrl.probability({"op": "c"})
    for _ in range(10):
        trials = [ctrl.ask() for _ in range(4)]        # four workers in flight ...
        for t in trials:
            one_choice.sample(t)
        for t in reversed(trials):                      # ... finishing in any order
            ctrl.tell(t, Result(rewards[t.values["op"]]))
    after = ctrl.probability({"op": "c"})
    print(f"P(best) before {before:.3f}, after 40 trials {after:.3f}")
    assert abs(before - 0.25) < 0.05          # a fresh policy is near uniform (tanh-shaped logits)
    assert after > 0.6 and after > before + 0.3


def test_reinforce_penalises_over_budget_and_skips_failures():
    ctrl = make_controller("reinforce", one_choice, seed=1)
    t = ctrl.ask()
    one_choice.sample(t)
    ctrl.tell(t, Result(None, status="failed"))
    assert ctrl.skipped == 1 and ctrl.told == 0
    ctrl.tell(t, Result(None, status=Status.REJECTED))
    assert ctrl.told == 1                      # penalised with reward 0.0


def test_reinforce_soft_objective_reward():
    ctrl = make_controller("reinforce", one_choice, seed=0, objective="soft", target_macs=1000, w=-0.07)
    t = ctrl.ask()
    one_choice.sample(t)
    r = ctrl._reward(t, Result(0.8, metrics={"macs": 2000}))
    assert r == pytest.approx(0.8 * 2 ** -0.07)
    with pytest.raises(NastyError, match="target"):
        make_controller("reinforce", one_choice, objective="soft")


def test_reinforce_discretizes_floats_and_wide_ints():
    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def mixed(t, net):
        t.float("lr", 1e-4, 1e-1, log=True)
        t.int("channels", 8, 1000)
        return _G
    ctrl = make_controller("reinforce", mixed, seed=0, bins=5, max_options=16)
    for _ in range(5):
        t = ctrl.ask()
        values, _ = mixed.sample(t)
        assert 1e-4 <= values["lr"] <= 1e-1 and 8 <= values["channels"] <= 1000
        ctrl.tell(t, Result(values["lr"]))
    assert sorted(ctrl.heads) == [["channels", 16], ["lr", 5]]


# ------------------------------------------------------------------ beating chance
SEEDS = 6
N = 60


@pytest.mark.parametrize("name", ["evolution", "tpe"])
def test_finds_toy_optimum_faster_than_random(name):
    rnd = [run_search("random", toy, toy_reward, N, s) for s in range(SEEDS)]
    ctl = [run_search(name, toy, toy_reward, N, s) for s in range(SEEDS)]
    m_rnd, m_ctl = statistics.mean(rnd), statistics.mean(ctl)
    print(f"{name}: mean best after {N} trials over {SEEDS} seeds {m_ctl:.3f} vs random {m_rnd:.3f}")
    assert m_ctl > m_rnd + 0.03


def test_evolution_mutates_exactly_one_decision():
    ctrl = make_controller("evolution", toy, seed=3, population=5, sample=2)
    for _ in range(5):
        t = ctrl.ask()
        values, _ = toy.sample(t)
        ctrl.tell(t, Result(toy_reward(values)))
    parents = [m["values"] for m in ctrl.population]
    for _ in range(20):
        t = ctrl.ask()
        child, _ = toy.sample(t)
        parent = next(p for p in parents if p is t.parent)
        changed = [k for k in child if parent.get(k, "missing") != child[k]]
        gone = [k for k in parent if k not in child]
        # one decision differs; the conditional `se` may appear (random) or disappear with depth
        assert len([k for k in changed if k != "se"]) + len([k for k in gone if k != "se"]) == 1 \
            or changed == ["se"]
        ctrl.tell(t, Result(toy_reward(child)))
        parents = [m["values"] for m in ctrl.population] + parents
    assert len(ctrl.population) == 5          # aging keeps the population at P


def test_evolution_ignores_failed_trials():
    ctrl = make_controller("evolution", toy, seed=0, population=3, sample=2)
    t = ctrl.ask()
    toy.sample(t)
    ctrl.tell(t, Result(None, status="failed"))
    assert ctrl.population == []


# ------------------------------------------------------------------ resume
def _drive(ctrl, sp, n, reward, rng_for_order=None):
    """Ask/tell n trials (two in flight, told in reverse); return the proposals."""
    out = []
    for _ in range(n // 2):
        ts = [ctrl.ask(), ctrl.ask()]
        for t in ts:
            sp.sample(t)
        for t in reversed(ts):
            ctrl.tell(t, Result(reward(t.values), metrics={"macs": 100}))
        out += [dict(t.values) for t in ts]
    return out


@pytest.mark.parametrize("name,options", [
    ("random", {}), ("evolution", {"population": 6, "sample": 3}), ("reinforce", {}),
    ("tpe", {"n_startup_trials": 4}), ("nsga2", {"population_size": 4}),
    ("tpe", {"objective": "pareto", "n_startup_trials": 4})])
def test_state_survives_json_and_continues_identically(name, options):
    a = make_controller(name, toy, seed=7, **options)
    _drive(a, toy, 10, toy_reward)
    state = json.loads(json.dumps(a.state_dict()))
    check_resume(state, name)
    b = make_controller(name, toy, seed=99, **options)     # a different seed: the state must override it
    b.load_state_dict(state)
    pa = _drive(a, toy, 8, toy_reward)
    pb = _drive(b, toy, 8, toy_reward)
    assert pa == pb


def test_tpe_sqlite_study_exists_reloads_and_resumes(tmp_path):
    import optuna
    db = tmp_path / "study.db"
    a = make_controller("tpe", toy, seed=1, storage=db, n_startup_trials=3)
    _drive(a, toy, 8, toy_reward)
    assert db.exists()
    study = optuna.load_study(study_name="nasty", storage=f"sqlite:///{db}")
    assert len(study.trials) == 8 and study.best_value == pytest.approx(max(toy_reward(t.params) for t in
                                                                             study.trials))
    state = json.loads(json.dumps(a.state_dict()))
    assert state["storage"] == str(db) and state["trials"] is None
    # resume on a copy of the database, so the original can go on alongside
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    b = make_controller("tpe", toy, seed=1, storage=copy, n_startup_trials=3)
    b.load_state_dict({**state, "storage": str(copy)})
    assert len(b.study.trials) == 8
    assert _drive(a, toy, 6, toy_reward) == _drive(b, toy, 6, toy_reward)
    # a trial asked but never told before the "crash" is closed as failed on resume
    a.ask()
    c = make_controller("tpe", toy, seed=1, storage=db, n_startup_trials=3)
    c.load_state_dict(json.loads(json.dumps(a.state_dict())))
    states = {str(t.state) for t in c.study.trials}
    assert "TrialState.RUNNING" not in states


def test_tpe_budget_constraint_and_pareto_front():
    ctrl = make_controller("tpe", toy, seed=0, objective="pareto", budget=150, n_startup_trials=2)
    for i in range(6):
        t = ctrl.ask()
        values, _ = toy.sample(t)
        macs = 100 + 20 * i
        if macs > 150:
            ctrl.tell(t, Result(None, status=Status.REJECTED, metrics={"macs": macs}))
        else:
            ctrl.tell(t, Result(toy_reward(values), metrics={"macs": macs}))
    cons = [t.user_attrs["constraint"] for t in ctrl.study.trials]
    assert cons[0] == pytest.approx(100 / 150 - 1) and cons[-1] == pytest.approx(200 / 150 - 1)
    front = ctrl.pareto_front()
    assert front and all(set(f) == {"params", "accuracy", "macs"} for f in front)


def test_tpe_non_primitive_and_changing_choices():
    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def odd(t, net):
        t.choice("kernel", [(3, 3), (5, 5)])          # tuples: passed to Optuna as indices
        n = t.int("n", 1, 3)
        t.choice("width", list(range(8 * n, 8 * n + 3)))   # options depend on n
        return _G
    ctrl = make_controller("tpe", odd, seed=0, n_startup_trials=2)
    for _ in range(8):
        t = ctrl.ask()
        values, _ = odd.sample(t)
        assert values["kernel"] in [(3, 3), (5, 5)]
        ctrl.tell(t, Result(float(values["n"])))
    assert any("@" in p for t in ctrl.study.trials for p in t.params)


# ------------------------------------------------------------------ bad input
def test_unknown_controller_is_one_line():
    with pytest.raises(NastyError, match="unknown controller 'bogus'") as e:
        make_controller("bogus", toy)
    assert "\n" not in str(e.value)


def test_resume_with_another_controller_is_refused():
    state = make_controller("evolution", toy).state_dict()
    with pytest.raises(RunError, match="--controller evolution") as e:
        check_resume(state, "tpe")
    assert "\n" not in str(e.value)


def test_compound_cannot_drive_a_cell_space():
    with pytest.raises(NastyError, match="baseline") as e:
        make_controller("compound", toy)
    assert "\n" not in str(e.value)


def test_registry_has_every_controller():
    assert {"random", "reinforce", "tpe", "nsga2", "evolution", "compound"} <= set(REGISTRY)
