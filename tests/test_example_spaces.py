"""The example spaces in searchspaces/ (written with the public API, as a user writes a space): each
loads, samples and replays; every sample's target and proxy cost what their compiled modules count
(params by numel, MACs by FlopCounterMode/2); each decision is seen by the proxy or set by budget
fitting; the conditional decisions are asked exactly when they matter; every copy of an example in
the docs is the file itself; and one of them runs a real `nasty search` through the command line."""
import ast
import itertools
import json
import os
import random
import re
import sys
from pathlib import Path

import pytest
import torch

import nasty
from nasty.space import FixedTrial, RandomTrial, load_space
from zoo_check import count_macs, count_params

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "searchspaces"
FILES = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
SEEDS = range(5)


def _space(path):
    return load_space(str(path))


def test_the_examples_are_there_and_each_says_how_to_run_it():
    assert {p.stem for p in FILES} >= {"tiny_mbconv", "two_op_cell", "custom_proxy"}
    index = (EXAMPLES / "README.md").read_text()
    page = (ROOT / "docs" / "examples.md").read_text()
    for path in FILES:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and f"nasty search --space searchspaces/{path.name} --budget " in doc, path.name
        assert f"]({path.name})" in index, path.name
        assert f"searchspaces/{path.name}" in page, path.name
        assert _space(path).name == path.stem               # a run folder names the space as the file does


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_samples_cost_exactly_what_their_compiled_modules_count(path):
    s = _space(path)
    for seed in SEEDS:
        values, target = s.sample(RandomTrial(random.Random(seed)))
        assert nasty.format(s.genotype(FixedTrial(values))) == nasty.format(target)      # replayable
        proxy = s.genotype(values, proxy=True)
        assert target.input == s.target.input and target.classes == s.target.classes
        assert proxy.input == s.proxy.input and proxy.classes == s.proxy.classes
        for g in (target, proxy):
            c = nasty.cost(g)
            with torch.device("meta"):                       # shapes only: no weights, no arithmetic
                model = nasty.build(g)
            assert c.params == count_params(model), (path.stem, seed, g.name)
            assert c.macs == count_macs(model, g.input), (path.stem, seed, g.name)
        if seed == 0:                                        # one proxy runs for real
            model = nasty.build(proxy).eval()
            with torch.no_grad():
                out = model(torch.randn(2, *proxy.input))
            assert out.shape == (2, proxy.classes) and torch.isfinite(out).all()


def _vary(s, values, name):
    """The proxy text for each option of decision `name`, the other decisions kept (a decision
    that only the new value asks for gets a random value)."""
    options = next(d for d in s.decisions(values) if d.name == name).options()
    return {o: nasty.format(s.genotype(FixedTrial({**values, name: o}, rng=random.Random(1)), proxy=True))
            for o in options}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_decision_is_seen_by_the_proxy_or_set_by_the_budget(path):
    s = _space(path)
    for seed in SEEDS:
        values, _ = s.sample(RandomTrial(random.Random(seed)))
        for d in s.decisions(values):
            proxies = _vary(s, values, d.name)
            if d.name in s.proxy_ignores:
                # the proxy cannot see it, so --fit must be able to set it: it is the width decision,
                # and the target grows with it
                assert d.name == s.width_decision and len(set(proxies.values())) == 1, (path.stem, d.name)
                macs = [nasty.cost(s.genotype({**values, d.name: o})).macs for o in sorted(d.options())]
                assert macs == sorted(macs) and macs[0] < macs[-1], (path.stem, d.name)
            else:
                assert len(set(proxies.values())) > 1, f"{path.stem}: the proxy never sees {d.name!r}"


def _asked(s, seeds=40):
    for seed in range(seeds):
        values, _ = s.sample(RandomTrial(random.Random(seed)))
        yield values


def test_tiny_mbconv_asks_for_squeeze_excitation_only_when_a_stage_expands():
    s = _space(EXAMPLES / "tiny_mbconv.py")
    seen = set()
    for values in _asked(s):
        for i in range(3):
            assert (f"se{i}" in values) == (values[f"e{i}"] > 1), values
            seen.add(f"se{i}" in values)
    assert seen == {True, False}                             # both branches were taken


def test_custom_proxy_asks_for_expansion_and_se_only_in_mbconv_stages():
    s = _space(EXAMPLES / "custom_proxy.py")
    seen = set()
    for values in _asked(s):
        for i in range(3):
            mb = values[f"block{i}"] == "mbconv"
            assert (f"expand{i}" in values) == mb and (f"se{i}" in values) == mb, values
            seen.add(mb)
    assert seen == {True, False}


def test_custom_proxy_is_its_own_network_and_the_budget_sets_its_width():
    from nasty.search.runner import unseen_decisions
    path = EXAMPLES / "custom_proxy.py"
    s = _space(path)
    narrow = re.search(r"^PROXY_WIDTH = (\d+)", path.read_text(), re.M).group(1)
    values, target = s.sample(RandomTrial(random.Random(3)))
    proxy = nasty.format(s.genotype(values, proxy=True))
    assert f"stem  conv3x3 c={narrow} bn relu" in proxy                    # stride 1, fixed width
    assert f"stem  conv3x3/2 c={values['width']} bn relu" in nasty.format(target)
    # same blocks, kernels and depths in both: only the widths differ
    def body(text):                                                     # from the first stage on
        return re.sub(r"\d+", "N", text[text.index("\nstage"):])
    assert body(proxy) == body(nasty.format(target))
    # a search with --fit leaves nothing unseen; without it, the width would be noise to the controller
    assert unseen_decisions(s, fit=True) == [] and unseen_decisions(s, fit=False) == ["width"]


def test_two_op_cell_is_the_small_space_its_docstring_says():
    s = _space(EXAMPLES / "two_op_cell.py")
    ds = s.decisions({})
    assert [d.name for d in ds] == ["width", "op_a", "op_b", "b_input", "cells"]
    choices = [dict(zip([d.name for d in ds], combo)) for combo in itertools.product(*(d.options() for d in ds))]
    assert len(choices) == 48
    networks, costs = set(), set()
    for v in choices:
        g = s.genotype(v)
        ops = (v["op_a"], v["op_b"])
        # with both nodes reading the input, add(a, b) is the same network with the ops swapped
        networks.add((v["width"], v["cells"], v["b_input"], tuple(sorted(ops)) if v["b_input"] == "in" else ops))
        c = nasty.cost(g)
        costs.add((c.macs, c.params))
        assert g.input == s.proxy.input and nasty.format(g) == nasty.format(s.genotype(v, proxy=True))
    assert len(networks) == len(costs) == 42


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_every_copy_of_an_example_in_the_docs_is_the_file_itself():
    """A page that shows an example space's code shows the file's code, exactly (its docstring aside)."""
    code = {}
    for path in FILES:
        tree = ast.parse(path.read_text())
        end = tree.body[0].end_lineno                         # the module docstring
        code[path.stem] = "".join(path.read_text().splitlines(keepends=True)[end:]).lstrip("\n")
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        for block in _python_blocks(page.read_text()):
            for name in re.findall(r"^def (\w+)\(t, net\):", block, re.M):
                if name in code:
                    assert block == code[name], f"{page.relative_to(ROOT)}: {name} differs from searchspaces/{name}.py"


@pytest.mark.slow
def test_a_real_search_through_the_command_line(sessions, tmp_path):
    """`nasty search --space searchspaces/two_op_cell.py`: Ray Tune trains two proxies on Fashion-MNIST,
    and the run folder records what the analytic cost model said of each."""
    budget = 10_000_000
    argv = [sys.executable, "-m", "nasty.cli", "search", "--space", "searchspaces/two_op_cell.py",
            "--budget", "10MFLOPs", "--trials", "2", "--epochs", "1", "--subset", "300", "--val-subset", "200",
            "--confirm", "0", "--cpus-per-trial", "1", "--seed", "0", "--time-budget", "300",
            "--runs-dir", str(tmp_path), "--name", "example"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = sessions(argv, cwd=ROOT, env=env)
    out, _ = p.communicate(timeout=540)
    assert p.returncode == 0, out[-3000:]
    assert "best architecture: trial #" in out
    run = tmp_path / "example"
    records = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 2 and sorted(r["trial"] for r in ok) == [0, 1]
    s = _space(EXAMPLES / "two_op_cell.py")
    for r in ok:
        g = s.genotype(r["decisions"])
        assert r["genotype"] == nasty.format(g)                   # the decisions rebuild what was trained
        c = nasty.cost(g)
        assert (r["target"]["macs"], r["target"]["params"]) == (c.macs, c.params) and c.macs <= budget
        assert 0.0 <= r["val_acc"] <= 1.0 and len(r["epochs"]) == 1
    best = json.loads((run / "best.json").read_text())
    winner = next(r for r in ok if r["trial"] == best["trial"])
    assert winner["val_acc"] == max(r["val_acc"] for r in ok)
    assert nasty.format(nasty.load(run / "best.nasty")) == winner["genotype"]
