"""Property tests over random user input that is not a genotype (hypothesis).

Whatever a user types or leaves on disk, nasty either works or fails with the clean one-line
NastyError (what is wrong and what to do): never another exception, never a hang, and a
refused run folder is left byte for byte as it was.

1. Budget strings: random text, and valid budgets ("600MFLOPs", "5M", "1.5GMACs", ...) with
   characters inserted, deleted or replaced, through parse_quantity, Budget.parse and
   `nasty search --budget/--params`: a Budget with positive integer limits, or a one-line error
   (exit code 2 on the command line).
2. Space files with errors: tests/spaces/tiny.py with lines deleted, duplicated or garbled,
   identifiers swapped, the text cut short, or its decisions and specs given bad values
   (empty choices, low > high, zero-sized inputs), loaded and preflighted the way
   `nasty search` does: a costed sample, or a one-line error.
3. A corrupted run folder on --resume: a real finished run with one of config.json,
   controller.json, trials.jsonl or best.json cut short, bit-flipped, replaced by random bytes
   or by JSON of the wrong shape, resumed up to the point where Ray would start: it proceeds,
   or it is a one-line error, and either way every byte of the folder is as it was (nothing is
   repaired before every check has passed). The one repair a resume then makes is the
   documented one, checked by calling it: a torn final line of trials.jsonl is cut, and a whole
   final record without its newline gets it.
4. Genotype files and flags on the command line: binary files, genotypes with absurd sizes,
   overflowing numbers, deep nesting or random damage given to `nasty show` (every output
   form), and random numbers (nan, inf, 1e308, ...) for `nasty scale`'s coefficients and
   `nasty show --input`: exit code 0, or 2 with one line on stderr, never a traceback.

NASTY_FUZZ_EXAMPLES raises the example counts for a nightly-style run (e.g. 10000).
"""
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from genotype_strategies import binary_files, mutated_texts, nested_value_genotypes, non_finite_texts, sized_genotypes
from nasty.search.budget import Budget, parse_quantity
from nasty.errors import NastyError

N = int(os.environ.get("NASTY_FUZZ_EXAMPLES", "0"))


def examples(ci: int):
    return settings(max_examples=N or ci, deadline=None, suppress_health_check=list(HealthCheck))


TINY = Path(__file__).parent / "spaces" / "tiny.py"


def assert_clean(e: NastyError):
    msg = str(e)
    assert msg and len(msg.splitlines()) == 1 and "Traceback" not in msg, repr(msg)


def works_or_clean_error(fn, *args, **kw):
    """(result, None) or (None, the NastyError); any other exception fails the test."""
    try:
        return fn(*args, **kw), None
    except NastyError as e:
        assert_clean(e)
        return None, e


# ------------------------------------------------------------------ 1. budget strings
VALID_BUDGETS = ["600MFLOPs", "5M", "1.5GMACs", "300 MFLOPs", "2e6", "600M MAdds", "600MMAdds", "1.2gmacs",
                 "3.5Mparams", "600mult-adds", ".5G", "1K", "7", "1e3 flops", "12T"]
BUDGET_BITS = list("0123456789.eE+-KMGTkmgtFLOPSflopsMACmacAddpPrs _,\t\n/") + [
    "inf", "nan", "1e999", "1e-999", "FLOP", "MMACs", "params", "\x00", "\u00a0", "\u2028", "\u0663", "\uff15",
    "µ", "ß", "İ", "1_000", "0x10", "--", "=", "'", '"', "\\"]


@st.composite
def mutated_budgets(draw):
    s = draw(st.sampled_from(VALID_BUDGETS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(s)))
        bit = draw(st.sampled_from(BUDGET_BITS))
        op = draw(st.sampled_from(["insert", "replace", "delete"]))
        if op == "insert":
            s = s[:i] + bit + s[i:]
        elif op == "replace":
            s = s[:i] + bit + s[i + 1:]
        else:
            s = s[:i] + s[i + 1:]
    return s


budget_strings = st.one_of(mutated_budgets(), st.text(max_size=30),
                           st.lists(st.sampled_from(BUDGET_BITS), max_size=6).map("".join),
                           st.sampled_from(VALID_BUDGETS))


@examples(400)
@given(budget_strings)
def test_budget_strings_parse_or_fail_cleanly(s):
    for what in ("budget", "params"):
        n, err = works_or_clean_error(parse_quantity, s, what)
        if err is None:
            assert type(n) is int and n >= 1, (s, n)
        else:
            assert ("--params" if what == "params" else "--budget") in str(err)
    for kw in ({"macs": s}, {"params": s}, {"macs": s, "params": s}):
        b, err = works_or_clean_error(Budget.parse, **kw)
        if err is None:
            # --budget takes MACs, a latency (a time unit: 15ms) or both (600M,15ms); --params a count
            counts = [v for v in (b.macs, b.params) if v is not None]
            assert all(type(v) is int and v >= 1 for v in counts), (kw, b)
            assert b.latency_ms is None or (math.isfinite(b.latency_ms) and b.latency_ms > 0), (kw, b)
            assert (b.params is not None) == ("params" in kw), (kw, b)
            assert ("macs" in kw) == (b.macs is not None or b.latency_ms is not None), (kw, b)
            assert b and b.describe()


class _SearchStarted(Exception):
    """Raised where a real search would begin: an invalid budget must be refused before."""


@examples(100)
@given(budget_strings)
def test_a_bad_budget_on_the_command_line_is_a_one_line_error(s):
    from nasty.cli import main
    for flag, kw in (("--budget", {"macs": s}), ("--params", {"params": s})):
        try:
            Budget.parse(**kw)
            continue                        # valid: never start a search from here
        except NastyError:
            pass
        stderr = io.StringIO()
        runs = tempfile.mkdtemp(prefix="nasty-fuzz-")
        try:
            with mock.patch("nasty.search.runner.preflight", side_effect=_SearchStarted), \
                    mock.patch("nasty.search.ray_backend.start_ray", side_effect=_SearchStarted), \
                    mock.patch.object(sys, "stderr", stderr):
                # `--flag=VALUE`: a value such as "-x" would otherwise be taken for an option by argparse
                rc = main(["search", "--space", "nasnet", f"{flag}={s}", "--runs-dir", runs, "--name", "x"])
            err = stderr.getvalue().strip()
            assert rc == 2 and err.startswith("nasty: error:") and len(err.splitlines()) == 1, (rc, err)
            assert flag in err and os.listdir(runs) == []
        finally:
            shutil.rmtree(runs, ignore_errors=True)


# ------------------------------------------------------------------ 2. space files with errors
TINY_SOURCE = TINY.read_text()
GARBAGE_LINES = ["(", "]", "def", "import os", "import nonexistent_module_xyz", "x = undefined_name",
                 "return 5", "raise ValueError('boom')", "1 / 0", "    pass", "\tpass", "@space", "lambda:",
                 "@space(target=dict(input=(3, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))",
                 "def other(t, net):\n    return None", "tiny = 3", "del tiny", "assert False, 'no'",
                 "width = t.choice('width', ())", "k = t.int('k', 5, 1)", "print('hello')", "'''", "#", ""]
IDENTIFIERS = ["t", "net", "nasty", "space", "tiny", "width", "depth", "k", "blowup", "c", "h", "w", "i", "body",
               "head", "None", "True", "undefined", "0", "range", "choice", "int", "float", "parse", "input",
               "classes", "proxy", "target", "width_decision", "dict", "join"]
# decision arguments and network specs in tiny.py, and bad values for them
BAD_VALUES = {
    "(8, 16, 24, 32)": ["()", "[]", "(0,)", "(-8,)", "(8.5,)", "('8',)", "(None,)", "(8, None)", "(10**6,)", "8",
                        "(8, 8)", "{8: 1}", "'abc'", "(8, 16, 'a')", "(8, 16.5)", "(True, 8)", "(8, 0)",
                        "(8, -16)", "(8, 10**400)", "(8, float('nan'))", "(8, float('inf'))"],
    '"depth", 1, 2': ['"depth", 2, 1', '"depth", 0, 0', '"depth", 1, 8', '"depth", -1, 1', '"depth", 1, 2, 0',
                      '"depth", 1, 2, -1', '"depth", 1.5, 2', '"depth", "1", "2"', '"depth"', '"depth", 1, None'],
    "(3, 5)": ["()", "(0,)", "(4,)", "(-3,)", "(99,)", "(3.5,)", "('3',)", "(3, 3)"],
    "(False, True)": ["()", "(None,)", "(True,)", "(0, 1)", "'yes'"],
    "input=(3, 64, 64)": ["input=(3, 64)", "input=(0, 64, 64)", "input=(3, 0, 0)", "input=(3, 1, 1)",
                          "input=(-3, 64, 64)", "input='abc'", "input=(3.5, 64, 64)", "input=None", "input=3"],
    "classes=100": ["classes=0", "classes=-1", "classes='x'", "classes=None", "classes=1.5", "classes=10**9"],
    "input=(1, 28, 28)": ["input=(1, 2, 2)", "input=(0, 28, 28)", "input=()", "input=(1, 28, 28, 28)"],
    "classes=10)": ["classes=0)", "classes='ten')", ")"],
    'width_decision="width"': ['width_decision="nope"', 'width_decision="depth"', 'width_decision="blowup"',
                               'width_decision="kernel"', "width_decision=3", "width_decision=None"],
    '"width", (': ['"depth", (', '3, (', 'None, ('],
    "c={width * 2 ** i}": ["c={width * 2 ** (i * 40)}", "c={-width}", "c=0", "c={width / 2}", "c=x"],
    "maxpool2x2": ["maxpool9x9", "maxpool0x0", "conv3x3/64", "avgpool2x2"],
    "fc c=classes": ["fc c=0", "fc c=-classes", "fc", "fc c=classes*0"],
}
for _old in BAD_VALUES:
    assert _old in TINY_SOURCE, _old      # keep this table in step with tests/spaces/tiny.py


@st.composite
def mutated_spaces(draw):
    src = TINY_SOURCE
    for _ in range(draw(st.integers(1, 3))):
        lines = src.split("\n")
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "identifier", "identifier", "truncate",
                                   "bad value", "bad value", "bad value", "bad value"]))
        if op == "delete":
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif op == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
        elif op == "insert":
            indent = draw(st.sampled_from(["", "    ", "\t", " "]))
            lines.insert(draw(st.integers(0, len(lines))), indent + draw(st.sampled_from(GARBAGE_LINES)))
        elif op == "identifier":
            names = list(re.finditer(r"\b[A-Za-z_]\w*\b", src))
            if not names:
                continue
            m = draw(st.sampled_from(names))
            new = draw(st.sampled_from(IDENTIFIERS))
            src = src[:m.start()] + new + src[m.end():]
            continue
        elif op == "truncate":
            src = src[:draw(st.integers(0, len(src)))]
            continue
        else:
            olds = [o for o in BAD_VALUES if o in src]
            if not olds:
                continue
            old = draw(st.sampled_from(olds))
            src = src.replace(old, draw(st.sampled_from(BAD_VALUES[old])), 1)
            continue
        src = "\n".join(lines)
    assert "while" not in src                            # no mutation can make an endless loop
    return src


@examples(200)
@pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")
@given(mutated_spaces(), st.sampled_from(["20MFLOPs", "1K", "1G"]), st.sampled_from([None, "50K"]),
       st.booleans(), st.integers(0, 9))
def test_mutated_space_files_load_and_sample_or_fail_cleanly(source, macs, params, fit, seed):
    from nasty.search.budget import preflight
    from nasty.search.runner import open_space
    from nasty.search.settings import Settings
    d = Path(tempfile.mkdtemp(prefix="nasty-fuzz-"))
    path = d / f"space_{uuid.uuid4().hex}.py"           # a new module name for every example
    path.write_text(source)
    try:
        got, err = works_or_clean_error(
            open_space, Settings(space=str(path), budget=macs, params=params, fit=fit))
        if err is None:
            space, budget = got
            costed, err = works_or_clean_error(preflight, space, budget, fit, seed=seed, tries=12, seconds=5.0)
            if err is None:
                assert budget.check(costed) is None
                assert type(costed.macs) is int and type(costed.params) is int
    finally:
        sys.modules.pop(f"nasty_space_{path.stem}", None)
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 3. a corrupted run folder on --resume
CORRUPTIBLE = ["config.json", "controller.json", "trials.jsonl", "best.json"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small real finished search (tiny space, 3 trials of 1 epoch), made once per module."""
    from nasty.search.runner import search
    from nasty.search.settings import Settings
    runs = tmp_path_factory.mktemp("runs")
    search(Settings(space=str(TINY), budget="20MFLOPs", trials=3, epochs=1, subset=300, val_subset=100,
                    batch_size=64, time_budget=600, seed=0, runs_dir=str(runs), name="base", confirm=0),
           console=Console(file=io.StringIO()), live=False)
    folder = runs / "base"
    for name in CORRUPTIBLE:
        assert (folder / name).is_file(), name
    return folder


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
JUNK = [None, True, False, -1, 0, 1, 2.5, 10**30, "", "x", "random", "nasnet", "/nonexistent.py", [], {}, [1, 2],
        {"a": 1}, [[1]], "20MFLOPs"]


def _edit_json(draw, doc):
    """Replace, drop or add a value somewhere in a parsed JSON document (in place where possible)."""
    if isinstance(doc, dict) and doc:
        key = draw(st.sampled_from(sorted(doc)))
        op = draw(st.sampled_from(["replace", "drop", "recurse", "recurse"]))
        if op == "drop":
            doc.pop(key)
        elif op == "recurse" and isinstance(doc[key], (dict, list)) and doc[key]:
            doc[key] = _edit_json(draw, doc[key])
        else:
            doc[key] = draw(st.sampled_from(JUNK) | json_values)
        return doc
    if isinstance(doc, list) and doc:
        i = draw(st.integers(0, len(doc) - 1))
        if draw(st.booleans()) and isinstance(doc[i], (dict, list)) and doc[i]:
            doc[i] = _edit_json(draw, doc[i])
        elif draw(st.booleans()):
            del doc[i]
        else:
            doc[i] = draw(st.sampled_from(JUNK) | json_values)
        return doc
    return draw(st.sampled_from(JUNK) | json_values)


@st.composite
def corruptions(draw, original: dict):
    """(file name, its corrupted bytes), from the files of the original run."""
    name = draw(st.sampled_from(CORRUPTIBLE))
    b = original[name]
    how = draw(st.sampled_from(["truncate", "flip", "random bytes", "wrong json", "edit json", "edit json"]))
    if how == "truncate":
        return name, b[:draw(st.integers(0, len(b) - 1))]
    if how == "flip":
        b = bytearray(b)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return name, bytes(b)
    if how == "random bytes":
        return name, draw(st.binary(max_size=200))
    if how == "wrong json":
        if name == "trials.jsonl":
            return name, b"".join(json.dumps(v).encode() + b"\n" for v in draw(st.lists(json_values, max_size=3)))
        return name, json.dumps(draw(json_values)).encode()
    if name == "trials.jsonl":                        # one record edited, the others as they were
        lines = b.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = json.dumps(_edit_json(draw, json.loads(lines[i]))).encode() + b"\n"
        return name, b"".join(lines)
    return name, json.dumps(_edit_json(draw, json.loads(b)), indent=1).encode() + b"\n"


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _RayWouldStart(Exception):
    """Raised by the patched start_ray: the resume got past every check made before Ray starts."""


_LOADED: dict = {}


@contextmanager
def _up_to_ray():
    """search(..., resume=...) runs its checks, then stops where it would start Ray. The dataset
    is loaded for real, but a request seen before is answered from memory (fast examples)."""
    import nasty.search.runner
    real = nasty.search.runner.load_data

    def load_data(s, data=None):
        key = repr((s.dataset, s.data_dir, s.val_fraction, s.seed, s.subset, s.val_subset))
        if key not in _LOADED:
            if len(_LOADED) >= 3:                  # a few datasets in memory at most
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = real(s, data)
        return _LOADED[key]

    with mock.patch("nasty.search.ray_backend.start_ray", side_effect=_RayWouldStart), \
            mock.patch("nasty.search.runner.load_data", side_effect=load_data):
        yield


def _resume_up_to_ray(folder: Path) -> NastyError | None:
    """None when the resume got as far as starting Ray, else the (one-line) NastyError."""
    from nasty.search.runner import search
    from nasty.search.settings import Settings
    with _up_to_ray():
        try:
            search(Settings(), resume=str(folder), console=Console(file=io.StringIO()), live=False)
        except _RayWouldStart:
            return None
        except NastyError as e:
            assert_clean(e)
            return e
    raise AssertionError("the resume went past the point where Ray starts")


def test_an_intact_run_folder_resumes_and_a_torn_last_line_is_cut(finished_run, tmp_path):
    """The two good outcomes the fuzz test below allows do happen (the harness refuses nothing)."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    before = _snapshot(folder)
    assert _resume_up_to_ray(folder) is None and _snapshot(folder) == before
    trials = folder / "trials.jsonl"
    with open(trials, "ab") as f:
        f.write(b'{"trial": 9, "status": "o')                 # a crash mid-append
    torn = _snapshot(folder)
    # every check passes, and nothing is repaired until all of them have (Ray's start included)
    assert _resume_up_to_ray(folder) is None and _snapshot(folder) == torn
    from nasty.search.folder import RunFolder
    assert RunFolder(folder).repair() == "cut" and _snapshot(folder) == before


@examples(200)
@given(st.data())
def test_a_corrupted_run_folder_resumes_or_is_refused_untouched(finished_run, data):
    original = _snapshot(finished_run)
    name, corrupted = data.draw(corruptions(original), label="corruption")
    assume(corrupted != original[name])
    d = Path(tempfile.mkdtemp(prefix="nasty-fuzz-"))
    try:
        folder = d / "run"
        shutil.copytree(finished_run, folder)
        (folder / name).write_bytes(corrupted)
        before = _snapshot(folder)
        refused = _resume_up_to_ray(folder)
        # nothing is changed before every check has passed (the last is starting Ray)
        assert _snapshot(folder) == before, f"{refused}: the run folder was changed"
        if refused is not None or name != "trials.jsonl":
            return
        # the one repair a resume then makes mends what a crash mid-append leaves: a torn final
        # line (no newline, not a record) is cut; a whole final record without its newline gets it
        from nasty.search.folder import RunFolder
        RunFolder(folder).repair()
        after = _snapshot(folder)
        assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
        if after[name] != corrupted:
            assert corrupted and not corrupted.endswith(b"\n"), "only a final line without newline is mended"
            assert after[name] in (corrupted[:corrupted.rfind(b"\n") + 1], corrupted + b"\n")
        *lines, tail = after[name].split(b"\n")   # what the resumed search goes on from: whole records
        assert tail == b"" and all(isinstance(json.loads(line), dict) for line in lines)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 4. genotype files and flags on the command line
def _cli(argv):
    """(exit code, stderr) of `nasty ARGV` run in this process."""
    from nasty.cli import main
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "stdout", out), mock.patch.object(sys, "stderr", err):
        rc = main(argv)
    return rc, err.getvalue()


def _ok_or_one_line(rc, err):
    assert rc in (0, 2), (rc, err)
    assert (rc == 0) == (err == ""), (rc, err)
    if rc:
        assert err.startswith("nasty: error: ") and len(err.splitlines()) == 1, err


genotype_file_bytes = st.one_of(binary_files(), sized_genotypes().map(str.encode), non_finite_texts().map(str.encode),
                                nested_value_genotypes().map(str.encode), mutated_texts().map(str.encode))


@examples(150)
@given(genotype_file_bytes, st.sampled_from([".nasty", ".json", ""]),
       st.sampled_from([[], ["--format", "genotype"], ["--json"], ["--input", "3x40x40"], ["--classes", "7"]]))
def test_genotype_files_on_the_command_line_work_or_fail_in_one_line(data, suffix, flags):
    with tempfile.TemporaryDirectory(prefix="nasty-fuzz-") as d:
        path = Path(d) / f"g{suffix}"
        path.write_bytes(data)
        _ok_or_one_line(*_cli(["show", str(path), *flags]))


coefficients = st.one_of(st.floats(), st.sampled_from([1.0, 1.1, 1.15, 1.2, 2.0, 1e308, -1e308, 5e-324]))


@examples(100)
@given(coefficients, coefficients, coefficients, st.one_of(st.none(), st.floats()),
       st.sampled_from([1, 2, 0, -1, 17, 10 ** 6]), st.booleans())
def test_scale_flags_work_or_fail_in_one_line(alpha, beta, gamma, tol, phi, efficientnet):
    if efficientnet:                               # the coefficients that work, so both outcomes are seen
        alpha, beta, gamma = 1.2, 1.1, 1.15
    argv = ["scale", "efficientnet_b0", f"--alpha={alpha!r}", f"--beta={beta!r}", f"--gamma={gamma!r}",
            f"--phi={phi}"] + ([] if tol is None else [f"--tol={tol!r}"])
    _ok_or_one_line(*_cli(argv))


@examples(100)
@given(st.one_of(st.text(max_size=12), st.sampled_from(["3x224x224", "3x0x1", "3x70000x8", "2000000x1x1", "3x" + "9" * 5000
                                                        + "x1", "\uff13x8x8", "3x8", "3x8x8x8", "-3x8x8", "3x1e3x8"])))
def test_show_input_flag_works_or_fails_in_one_line(shape):
    _ok_or_one_line(*_cli(["show", "resnet18", f"--input={shape}"]))


@pytest.mark.parametrize("rng", ['""', "null", None])
def test_a_controller_state_with_a_damaged_rng_is_refused_in_one_line(finished_run, tmp_path, rng):
    """Cases hypothesis found: controller.json whose state's rng is empty, null or missing."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    saved = json.loads((folder / "controller.json").read_text())
    state = {"controller": saved["state"]["controller"]}
    if rng is not None:
        state["rng"] = json.loads(rng)
    (folder / "controller.json").write_text(json.dumps({**saved, "state": state}))
    before = _snapshot(folder)
    refused = _resume_up_to_ray(folder)
    assert refused is not None and "controller.json is damaged" in str(refused) and "\n" not in str(refused)
    assert _snapshot(folder) == before
