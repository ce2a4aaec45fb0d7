"""The shape of the search side: one home per concept, no import cycles, no private imports,
the loop without Ray, flags derived from Settings, and old run folders that still resume."""
from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import nasty
from nasty.search.folder import RunFolder
from nasty.search.loop import Executor, SearchLoop, SerialExecutor
from nasty.search.record import Status, TrialRecord
from nasty.search.settings import Settings

ROOT = Path(nasty.__file__).parent
TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


# ------------------------------------------------------------------ imports
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level_only: bool):
    """(imported module, [names]) of every import in a file; relative imports resolved."""
    tree = ast.parse(path.read_text())
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]

    def walk(body):
        for node in body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    yield a.name, []
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                yield target, [a.name for a in node.names]
            elif module_level_only:
                # module level: plain statements, `if TYPE_CHECKING:` / `if`/`try` blocks; not defs
                if isinstance(node, (ast.If, ast.Try)):
                    yield from walk(node.body)
                    yield from walk(getattr(node, "orelse", []))
                    for h in getattr(node, "handlers", []):
                        yield from walk(h.body)
            else:
                yield from walk(list(ast.iter_child_nodes(node)))

    yield from walk(tree.body)


def _nasty_files():
    return sorted(ROOT.rglob("*.py"))


def _known_modules():
    return {_module_name(p) for p in _nasty_files()}


def test_no_import_cycle_among_nasty_modules():
    """Module-level imports (type-hint-only imports under TYPE_CHECKING included) form no cycle.
    Importing a.b.c runs the package a.b first, so that is an edge too."""
    known = _known_modules()
    g = nx.DiGraph()
    for p in _nasty_files():
        mod = _module_name(p)
        g.add_node(mod)
        for target, names in _imports(p, module_level_only=True):
            if not target or not target.startswith("nasty"):
                continue
            targets = {target} | {f"{target}.{n}" for n in names if f"{target}.{n}" in known}
            for t in targets:
                parts = t.split(".")
                for i in range(2, len(parts) + 1):        # the packages on the way, then the module
                    dep = ".".join(parts[:i])
                    if dep in known and dep != mod and not mod.startswith(dep + "."):
                        g.add_edge(mod, dep)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_no_module_imports_another_modules_private_names():
    bad = []
    for p in _nasty_files():
        mod = _module_name(p)
        for target, names in _imports(p, module_level_only=False):
            if target and target.startswith("nasty") and target != mod:
                bad += [f"{mod} imports {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_the_loop_and_runner_import_without_ray():
    code = ("import sys; sys.modules['ray'] = None\n"
            "import nasty.search, nasty.search.loop, nasty.search.runner, nasty.search.standalone\n"
            "import nasty.search.results, nasty.search.folder, nasty.controllers\n"
            "try:\n    import ray\nexcept ImportError:\n    print('no ray')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no ray"


# ------------------------------------------------------------------ the loop, driven by a fake executor
class FakeExecutor(Executor):
    """Two trials in flight at a time, finished in reverse order; every third one fails; the
    accuracy is a function of the target MACs, so the ranking is known in advance."""

    def __init__(self):
        self.configs = []

    def run(self, loop) -> bool:
        n = 0
        while True:
            batch = []
            for _ in range(2):
                p = loop.propose()
                if p is None:
                    break
                key = f"fake-{n}"
                n += 1
                self.configs.append(loop.dispatch(key, p))
                batch.append((key, p))
            if not batch:
                return False
            for key, p in reversed(batch):
                acc = 0.5 + (p.record.target.macs % 1000) / 4000
                for e in range(1, loop.s.epochs + 1):
                    loop.epoch(key, {"epoch": e, "val_acc": acc - 0.01 * (loop.s.epochs - e), "train_s": 0.1 * e})
                if p.trial % 3 == 2:
                    loop.complete(key, None, error="RuntimeError: injected")
                else:
                    loop.complete(key, {"started": 0.0})


def _loop(tmp_path, **kw):
    from nasty.controllers import make_controller
    from nasty.search.budget import Budget
    from nasty.space import load_space
    s = Settings(space=TINY, budget="20MFLOPs", trials=5, epochs=2, subset=100, val_subset=50, seed=4,
                 **kw).resolved(gpu=False)
    space = load_space(TINY)
    folder = RunFolder(tmp_path / "run")
    folder.create({"space": TINY})
    told = []
    ctrl = make_controller("random", space, seed=4)
    tell = ctrl.tell
    ctrl.tell = lambda t, r: (told.append(r), tell(t, r))
    return SearchLoop(s, folder, space, ctrl, Budget.parse("20MFLOPs"), (1, 28, 28), 10), folder, told


def test_a_fake_executor_drives_a_five_trial_search_through_the_loop(tmp_path):
    loop, folder, told = _loop(tmp_path)
    ex = FakeExecutor()
    assert ex.run(loop) is False
    recs = folder.records()
    counted = [r for r in recs if r.status.counted]
    assert sorted(r.trial for r in counted) == list(range(5)) and loop.exhausted
    assert all(r.target.macs <= 20_000_000 for r in counted)
    assert [r.status for r in counted if r.trial % 3 == 2] == [Status.FAILED] * len([r for r in counted if r.trial % 3 == 2])
    ok = [r for r in counted if r.status is Status.OK]
    assert ok and all(len(r.epochs) == 2 and r.val_acc == r.epochs[-1].val_acc for r in ok)
    # every sample was told to the controller once, rejected ones as rejected
    assert len(told) == len(recs) == json.loads((folder.path / "controller.json").read_text())["told"]
    assert [t.status for t in told] == [r.status for r in recs]
    # the results are written from the records
    board = json.loads((folder.path / "leaderboard.json").read_text())
    assert [b["trial"] for b in board] == [r.trial for r in sorted(ok, key=lambda r: (-r.val_acc, r.target.macs))]
    assert (folder.path / "best.nasty").read_text().startswith(f"# best of run run: trial #{board[0]['trial']}")
    # the evaluator's config says what to train
    c = ex.configs[0]
    assert nasty.parse(c["proxy"]).input == (1, 28, 28) and c["train"]["epochs"] == 2


def test_a_record_that_cannot_be_written_stops_the_loop(tmp_path):
    loop, folder, told = _loop(tmp_path)
    trials = folder.path / "trials.jsonl"
    trials.mkdir()                                 # appending to it now fails, as a full or read-only disk does
    from nasty.errors import RunError
    with pytest.raises(RunError, match="cannot append"):
        FakeExecutor().run(loop)
    assert loop.fatal is not None and loop.propose() is None and not told


def test_the_serial_executor_runs_real_standalone_trials_without_ray(tmp_path):
    """The whole search (runner, loop, standalone evaluation, results) with no Ray at all."""
    import io

    from rich.console import Console

    from nasty.search.runner import search
    from nasty.search.standalone import evaluate

    def no_ray_evaluate(config, report):
        evaluate(config, payload, report)

    import nasty.search.runner as runner
    real = runner.load_data
    payload = {}

    def load_and_keep(s, data=None):
        from nasty.search.standalone import make_payload
        data, tr, va = real(s, data)
        payload.update(make_payload(data, tr, va))
        return data, tr, va

    runner.load_data = load_and_keep
    try:
        summary = search(Settings(space=TINY, budget="20MFLOPs", trials=3, epochs=1, subset=300, val_subset=200,
                                  time_budget=600, seed=5, runs_dir=str(tmp_path), name="serial", confirm=1,
                                  confirm_seeds=1),
                         console=Console(file=io.StringIO()), live=False, executor=SerialExecutor(no_ray_evaluate))
    finally:
        runner.load_data = real
    recs = [r for r in RunFolder(tmp_path / "serial").records() if r.status.counted]
    assert len(recs) == 3 and summary["counts"]["ok"] + summary["counts"]["failed"] == 3
    if summary["best"]:
        assert 0 < summary["test_acc"] <= 1          # the winner's weights came back; only it saw the test set


# ------------------------------------------------------------------ settings <-> flags
def _search_parser():
    from nasty.cli import make_parser
    p = make_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["search"]


def test_every_setting_has_a_flag_and_every_flag_a_setting():
    parser = _search_parser()
    cli_only = {"help", "resume", "config", "json", "quiet", "verbose"}     # how to run, not what to search
    flags = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in cli_only}
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert set(flags) == set(fields)
    from nasty.search.settings import flag_of
    for name, a in flags.items():
        assert a.option_strings[0] == flag_of(name) and a.help          # (--fit also has --no-fit)
    assert flag_of("target_kind") == "--target"
    # defaults are written once: a CPU/GPU-dependent default appears in the help from the field
    assert "default 48 on CPU, 200 with a GPU" in flags["trials"].help
    assert Settings().resolved(gpu=False).trials == 48 and Settings().resolved(gpu=True).trials == 200


def test_flags_given_reach_settings_and_others_keep_their_defaults():
    from nasty.search.settings import from_arguments
    args = _search_parser().parse_args(["--space", "nasnet", "--budget", "600M", "--fit", "--trials", "3"])
    s = from_arguments(args)
    assert (s.space, s.budget, s.fit, s.trials, s.controller, s.epochs) == ("nasnet", "600M", True, 3, "random", None)


# ------------------------------------------------------------------ statuses and records
def test_each_status_string_is_defined_once():
    """Outside record.py no nasty module spells a status as a string literal."""
    statuses = {s.value for s in Status}
    found = []
    for p in _nasty_files():
        if p.name == "record.py" and p.parent.name == "search":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Compare):
                for c in [node.left, *node.comparators]:
                    if isinstance(c, ast.Constant) and c.value in statuses:
                        found.append(f"{p.relative_to(ROOT)}:{node.lineno} compares with {c.value!r}")
    assert not found, found


def test_records_round_trip_and_keep_unknown_keys():
    d = {"trial": 3, "sample": 7, "status": "ok", "decisions": {"k": [3, 5], "se": True},
         "target": {"macs": 10, "params": 2, "input": [3, 32, 32], "classes": 10},
         "epochs": [{"epoch": 1, "val_acc": 0.5, "train_loss": None}], "val_acc": 0.5,
         "timings": {"dispatched": 1.0, "total_s": 2.0}, "from_a_newer_nasty": {"x": 1}}
    r = TrialRecord.from_dict(d)
    assert r.status is Status.OK and r.target.input == (3, 32, 32) and r.epochs[0].val_acc == 0.5
    assert TrialRecord.from_json(r.to_json()) == r and r.to_dict()["from_a_newer_nasty"] == {"x": 1}
    from nasty.search.record import RecordError
    for bad in ({"trial": 1, "status": "done"}, {"trial": 10**30, "status": "ok"}, {"trial": None, "status": "ok"},
                {"trial": 1, "status": "ok", "val_acc": "high"}, {"trial": 1, "status": "ok", "epochs": [{}]},
                {"trial": 2, "status": "rejected"}, [1, 2]):
        with pytest.raises(RecordError):
            TrialRecord.from_dict(bad)


# ------------------------------------------------------------------ old run folders
FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"


def test_a_run_folder_written_before_the_search_package_still_reads_and_resumes(tmp_path, monkeypatch):
    """tests/fixtures/run_v0_1 was written by nasty 0.1.0 before nasty/search/ existed (commit 3f59032)."""
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["space"] = TINY              # the space file's absolute path, as if the checkout had moved here
    (folder / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    before = (folder / "trials.jsonl").read_bytes()
    recs = RunFolder(folder).records()
    assert recs and any(r.status is Status.OK for r in recs)
    from nasty.search.results import report
    assert "#" in report(folder)
    # resumed for two more trials, through the serial executor (no Ray needed for the check)
    import io

    from rich.console import Console

    import nasty.search.runner as runner
    from nasty.search.standalone import evaluate, make_payload
    payload = {}
    real = runner.load_data

    def load_and_keep(s, data=None):
        data, tr, va = real(s, data)
        payload.update(make_payload(data, tr, va))
        return data, tr, va

    monkeypatch.setattr(runner, "load_data", load_and_keep)
    n_before = len([r for r in recs if r.status.counted])
    runner.search(Settings(trials=cfg["trials"] + 2), resume=str(folder), console=Console(file=io.StringIO()),
                  live=False, executor=SerialExecutor(lambda c, rep: evaluate(c, payload, rep)))
    after = (folder / "trials.jsonl").read_bytes()
    assert after.startswith(before)                       # append-only: the old lines are untouched
    counted = [r for r in RunFolder(folder).records() if r.status.counted]
    assert len(counted) == n_before + 2 and len({r.trial for r in counted}) == len(counted)
