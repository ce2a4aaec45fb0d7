"""Bad input the attack on nasty found (issue 15), each refused at its root with a one-line error.

Absurd sizes are refused before any work (no hang, no allocator failure), nesting is bounded
(no RecursionError), binary files, non-finite numbers and genotypes without a head are named
as such, and `nasty ... | head -1` ends quietly. The limits live in nasty/genotype/limits.py
and are listed in the README, which a test here keeps in step.
"""
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

import nasty
from nasty.cli import EXIT_PIPE, main
from nasty.errors import NastyError
from nasty.genotype import format, parse
from nasty.genotype import limits as L
from nasty.genotype.jsonform import from_json, to_dict, to_json

HEAD = "head gap flatten fc c=classes\n"


def net(body, header="net t input 3x32x32 classes 10", cells=""):
    return f"{header}\n{cells}{body}\n{HEAD}"


def refused(fn, *args, says=(), **kw):
    """`fn(*args)` raises a one-line NastyError containing every string in `says`."""
    with pytest.raises(NastyError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert msg and "\n" not in msg, msg
    for s in says:
        assert s in msg, (s, msg)
    return msg


def cost_of(text):
    return nasty.cost(parse(text))


def cli(*argv):
    """(exit code, stdout, stderr) of `nasty ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def cli_refuses(*argv, says=()):
    rc, out, err = cli(*argv)
    assert rc == 2 and err.startswith("nasty: error: ") and len(err.splitlines()) == 1, (rc, err)
    for s in says:
        assert s in err, (s, err)
    return err


# ------------------------------------------------------------------ 1. no silent hang: sizes
@pytest.mark.parametrize("reps", ["100000000", "100000", "10001", "99999999999999999"])
def test_absurd_repeat_counts_are_refused_before_expanding(reps, tmp_path):
    text = net(f"stage conv3x3 c=8 x {reps}")
    refused(cost_of, text, says=["repeat count", f"{int(reps):,}", f"limit of {L.MAX_REPEAT:,}"])
    f = tmp_path / "big.nasty"
    f.write_text(text)
    cli_refuses("show", str(f), says=["repeat count"])


def test_repeat_counts_up_to_the_limit_work():
    c = cost_of(net(f"stage relu x {L.MAX_REPEAT}"))
    assert sum(layer.op == "relu" for layer in c.layers) == L.MAX_REPEAT


def test_a_network_that_expands_past_the_layer_limit_is_refused():
    # each repeat of a 20-node cell with a new argument is expanded afresh: 10,000 x 20 > 100,000
    cell = "cell big(k):\n" + "".join(f"  n{i} = relu <- {'in' if i == 0 else f'n{i - 1}'}\n" for i in range(20)) \
        + "  out = n19\n"
    refused(cost_of, net(f"stage big(block) x {L.MAX_REPEAT}", cells=cell),
            says=[f"limit of {L.MAX_LAYERS:,} layers"])
    # replayed repeats (the same arguments) count the same
    refused(cost_of, net(f"stage big(1) x {L.MAX_REPEAT}", cells=cell), says=[f"limit of {L.MAX_LAYERS:,} layers"])


@pytest.mark.parametrize("what, text, says", [
    ("lets", net("stage relu", header="net t input 3x8x8 classes 10\nlet " + " ".join(f"a{i}=1" for i in range(1001))),
     "the number of lets 1,001 is over the limit of 1,000"),
    ("cells", net("stage c0", cells="".join(f"cell c{i}:\n  out = relu <- in\n" for i in range(1001))),
     "the number of cells 1,001"),
    ("nodes", net("stage a", cells="cell a:\n" + "".join(f"  n{i} = relu <- in\n" for i in range(1001))
                  + "  out = cat(" + ", ".join(f"n{i}" for i in range(1001)) + ")\n"), "the number of nodes 1,002"),
    ("parameters", net("stage a", cells="cell a(" + ", ".join(f"p{i}=1" for i in range(65)) + "):\n  out = relu <- in\n"),
     "the number of parameters 65 is over the limit of 64"),
])
def test_absurd_numbers_of_lets_cells_nodes_and_parameters_are_refused(what, text, says):
    refused(parse, text, says=[says])


def test_the_work_of_a_large_genotype_is_bounded():
    """Every repeat of a cell evaluates its arguments and walks its nodes: these count towards the
    layer limit, so the largest allowed cell repeated the most times ends with the limit's error."""
    lets = "let " + " ".join(f"a{i}=1" for i in range(L.MAX_LETS)) + "\n"
    params = ", ".join(f"p{i}=a{i}" for i in range(L.MAX_PARAMS - 1))
    guarded = "".join(f"  n{i} = relu <- {src} if k < 0 else {src}\n"
                      for i, src in enumerate(["in"] + [f"n{j}" for j in range(L.MAX_NODES - 2)]))
    text = net(f"stage a(block) x {L.MAX_REPEAT}", header="net t input 3x8x8 classes 10\n" + lets,
               cells=f"cell a(k, {params}):\n{guarded}  out = n{L.MAX_NODES - 2}\n")
    refused(cost_of, text, says=[f"limit of {L.MAX_LAYERS:,} layers"])


@pytest.mark.parametrize("body, says", [
    ("stage conv3x3 c=1000000000000", "conv channels 1,000,000,000,000"),
    ("stage conv3x3 c=1000001", "conv channels 1,000,001"),
    ("stage sep3x3 c=2000000", "conv channels 2,000,000"),
    ("stage conv1x1 c=W(1000000000)", "conv channels"),
])
def test_absurd_channel_counts_are_refused_before_building(body, says):
    text = net(body, header="net t input 3x32x32 classes 10\nlet z=1")
    refused(cost_of, text, says=[says, f"limit of {L.MAX_CHANNELS:,}"])
    with torch.device("meta"):                 # never an allocator failure in the compiler
        refused(nasty.build, parse(text), says=["limit of"])


def test_absurd_class_counts_are_refused():
    refused(parse, net("stage relu", header="net t input 3x8x8 classes 1000001"), says=["classes 1,000,001"])
    g = parse(net("stage relu", header="net t input 3x8x8 classes 10"))
    refused(nasty.cost, g, num_classes=10 ** 12, says=["fc channels 1,000,000,000,000"])
    rc, out, err = cli("show", "resnet18", "--classes", str(10 ** 12))
    assert rc == 2 and "limit of 1,000,000" in err


@pytest.mark.parametrize("shape, says", [
    ("3x70000x32", "input size 70,000"), ("2000000x8x8", "input channels 2,000,000"),
    ("0x8x8", "positive"), ("3x" + "9" * 300 + "x8", "characters"),
])
def test_absurd_input_sizes_are_refused(shape, says):
    refused(parse, net("stage relu", header=f"net t input {shape} classes 10"), says=[says])


def test_absurd_input_given_at_cost_time_is_refused():
    refused(nasty.cost, "resnet18", input=(3, 100_000, 100_000), says=["input size 100,000"])


def test_an_absurd_text_is_refused_before_parsing():
    huge = "net t input 3x8x8\nlet a=" + "+".join(["1"] * 5_000_000) + "\n"        # 10 MB
    refused(parse, huge, says=[f"over the limit of {L.MAX_TEXT:,} characters"])
    refused(from_json, '{"a": "' + "x" * (L.MAX_TEXT + 1) + '"}', says=["over the limit"])


def test_a_file_that_never_ends_is_refused(tmp_path):
    refused(nasty.load, "/dev/zero", says=["over the limit"])


# ------------------------------------------------------------------ 2. recursion: nesting
DEEP = 5000
DEEP_TEXTS = {
    "nested parentheses": net("stem conv3x3 c=" + "(" * 2000 + "8" + ")" * 2000),
    "unary minus": net("stem conv3x3 c=" + "-" * DEEP + "8"),
    "nested calls": net("stem conv3x3 c=" + "max(1, " * DEEP + "8" + ")" * DEEP),
    "a long sum (200 KB)": net("stem conv3x3 c=" + "+".join(["1"] * 100_000)),
    "nested add()": net("stage a", cells="cell a:\n  out = " + "add(" * DEEP + "in" + ", in)" * DEEP + "\n"),
    "a long <- chain": net("stage a", cells="cell a:\n  out = " + "relu <- " * DEEP + "in\n"),
    "cells calling cells": net("stage c0", cells="".join(f"cell c{i}:\n  out = c{i + 1} <- in\n" for i in range(3000))
                               + "cell c3000:\n  out = relu <- in\n"),
}


@pytest.mark.parametrize("what", sorted(DEEP_TEXTS))
def test_deep_nesting_is_a_clean_error_never_a_recursion_error(what):
    refused(parse, DEEP_TEXTS[what], says=["limit"])


def test_a_long_but_shallow_value_is_refused_by_its_length():
    v = "1"
    for _ in range(8):                      # a balanced sum of 256 ones: 8 levels, 766 tokens
        v = f"({v} + {v})"
    refused(parse, net(f"stem conv3x3 c={v}"), says=[f"over the limit of {L.MAX_VALUE_TOKENS} tokens"])


def test_deep_not_in_a_guard_is_a_clean_error():
    refused(parse, net("stage a", cells="cell a:\n  x = relu <- in if " + "not " * DEEP + "1\n  out = x\n"),
            says=[f"limit of {L.MAX_VALUE_DEPTH} levels"])


def test_deeply_nested_json_is_a_clean_error():
    for doc in ["[" * 100_000 + "]" * 100_000, '{"a": ' * 100_000 + "1" + "}" * 100_000]:
        refused(from_json, doc, says=["JSON"])
    doc = to_dict(nasty.zoo.get("resnet18"))
    doc["cells"][0]["nodes"][0][1] = "relu <- " * DEEP + "in"
    import json
    refused(from_json, json.dumps(doc), says=[f"limit of {L.MAX_EXPR_DEPTH} levels"])


def _at_every_limit(value=L.MAX_VALUE_DEPTH, expr=L.MAX_EXPR_DEPTH, cells=L.MAX_CELL_DEPTH) -> str:
    """A genotype at every nesting limit at once: values MAX_VALUE_DEPTH deep, node expressions
    MAX_EXPR_DEPTH deep, each calling the next cell at its bottom, MAX_CELL_DEPTH cells deep."""
    signs = "-" * value                                   # an even number of minus signs: the value itself
    texts = []
    for i in range(cells):
        e = f"c{i + 1} <- in" if i + 1 < cells else "relu <- in"
        for k in range(expr - 1):
            e = f"add({e}, in)" if k % 2 else f"relu <- {e}"
        texts.append(f"cell c{i}:\n  out = {e}\n")
    return net(f"stem conv3x3 c={signs}v\nstage c0", header=f"net deep input 3x8x8 classes 10\nlet one=1 v={signs}one",
               cells="".join(texts))


def test_a_genotype_at_every_nesting_limit_works_in_a_small_stack():
    """The limits keep the deepest genotype far inside Python's stack: parsing, checking, costing,
    compiling, formatting and both round trips fit in 400 frames above this test's own."""
    text = _at_every_limit()
    old = sys.getrecursionlimit()
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    sys.setrecursionlimit(depth + 400)
    try:
        g = parse(text)
        c = nasty.cost(g)
        with torch.device("meta"):
            m = nasty.build(g)
        assert parse(format(g)) == g and from_json(to_json(g)) == g
    finally:
        sys.setrecursionlimit(old)
    assert c.params == sum(p.numel() for p in m.parameters())
    assert c.layers[0].output[0] == 1                     # c = v = one, through 50 signs
    # one more level is refused
    refused(parse, _at_every_limit(value=L.MAX_VALUE_DEPTH + 2), says=["value nested deeper than the limit"])
    refused(parse, _at_every_limit(expr=L.MAX_EXPR_DEPTH + 1), says=["node expression nested deeper than the limit"])
    refused(parse, _at_every_limit(cells=L.MAX_CELL_DEPTH + 1), says=[f"over the limit of {L.MAX_CELL_DEPTH}"])


def test_cells_calling_cells_past_the_limit_are_refused_when_built_in_python():
    """A genotype built in Python skips the parser: the static check and the elaborator hold it."""
    from nasty.genotype.ir import Apply, Cell, CellCall, Genotype, Layer, Node, Op, Ref
    n = 50
    cells = tuple(Cell(f"c{i}", nodes=(Node("out", Apply((CellCall(f"c{i + 1}"),), Ref("in"))),)) for i in range(n)) \
        + (Cell(f"c{n}", nodes=(Node("out", Apply((Op("relu"),), Ref("in"))),)),)
    g = Genotype("t", (3, 8, 8), 10, cells=cells,
                 layers=(Layer("stage", (CellCall("c0"),)), Layer("head", (Op("gap"), Op("flatten"), Op("fc", (("c", 10),))))))
    refused(nasty.validate, g, says=[f"over the limit of {L.MAX_CELL_DEPTH}"])
    refused(nasty.cost, g, says=[f"deeper than the limit of {L.MAX_CELL_DEPTH}"])          # no static check on this path
    deep = Ref("in")
    for _ in range(DEEP):
        deep = Apply((Op("relu"),), deep)
    g2 = Genotype("t", (3, 8, 8), 10, cells=(Cell("a", nodes=(Node("out", deep),)),),
                  layers=(Layer("stage", (CellCall("a"),)), g.layers[1]))
    refused(nasty.validate, g2, says=[f"limit of {L.MAX_EXPR_DEPTH} levels"])


# ------------------------------------------------------------------ 3. binary files
BINARY = {
    "random bytes": bytes(range(256)) * 8,
    "a NUL in text": b"net t input 3x8x8 classes 10\x00\nstage relu\nhead gap flatten fc c=classes\n",
    "UTF-16": net("stage relu").encode("utf-16"),
    "a PNG header": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
}


@pytest.mark.parametrize("what", sorted(BINARY))
@pytest.mark.parametrize("suffix", [".nasty", ".json", ".pt"])
def test_binary_files_given_as_genotypes_are_one_line_errors(what, suffix, tmp_path):
    f = tmp_path / f"x{suffix}"
    f.write_bytes(BINARY[what])
    refused(nasty.load, f, says=["not UTF-8 text", "binary"])
    for command in (["show"], ["build"], ["scale"], ["train", "--epochs", "1"]):
        cli_refuses(*command, str(f), says=["not UTF-8 text"])


# ------------------------------------------------------------------ 4. numbers
@pytest.mark.parametrize("header, says", [
    ("net t input 3x8x8 classes 1.5", "classes must be a positive whole number"),
    ("net t input 3x8x8 classes 1e3", "classes must be a positive whole number"),
    ("net t input 3x8x8 classes 10**400", "expected"),
    ("net t input 3x8x8 classes 0", "classes must be a positive whole number"),
    ("net t input 3x8x8 classes 10\nscale divisor=0", "divisor= must be a positive integer"),
    ("net t input 3x8x8 classes 10\nscale divisor=2.5", "divisor= must be a positive integer"),
    ("net t input 3x8x8 classes 10\nscale width=-1", "width= must be a positive finite number"),
    ("net t input 3x8x8 classes 10\nscale width=1e999", "not finite"),
    ("net t input 3x8x8 classes 10\nscale depth=0", "depth= must be a positive"),
    ("net t input 3x8x8 classes 10\nlet a=1e999", "not finite"),
    ("net t input 3x8x8 classes 10\nlet a=99999999999999999999", "beyond 64-bit integers"),
])
def test_bad_header_numbers_are_refused_when_parsed(header, says):
    refused(parse, net("stage relu", header=header), says=[says])


@pytest.mark.parametrize("header, body, says", [
    ("scale width=1e308", "stage conv3x3 c=W(8)", "W(8) is not a finite number"),
    ("scale width=1e300", "stage conv3x3 c=W(8)", "beyond 64-bit integers"),
    ("scale divisor=1 - 1", "stage conv3x3 c=W(8)", "divisor= must be a positive integer"),
    ("scale depth=1e308", "stage relu x D(8)", "not a finite number"),
    ("let a=1e308 * 10", "stage relu", "not a finite number"),
    ("let a=1e308", "stage conv3x3 c=8 bn eps=a * a", "not a finite number"),
    ("let a=3037000500", "stage relu x a * a * a", "beyond 64-bit integers"),
    ("let a=1e-320", "stage conv3x3 c=1 / a", "not a finite number"),
    ("let a=1", "stage conv3x3 c=div(8, 0)", "div() needs an integer >= 1"),
    ("let a=1", "stage conv3x3 c=8 // (a - 1)", "division by zero"),
    ("let a=1", "stage conv3x3 c=floor(1e300)", "beyond 64-bit integers"),
    ("let a=1", "stage conv3x3 c=1e308 * 2", "not a finite number"),
])
def test_values_that_overflow_are_refused_when_evaluated(header, body, says):
    refused(cost_of, net(body, header=f"net t input 3x8x8 classes 10\n{header}"), says=[says])


@pytest.mark.parametrize("edit, says", [
    (lambda d: d["cells"][0].update(inputs=True), "'inputs' must be 1 or 2"),
    (lambda d: d.update(classes=True), "classes"),
    (lambda d: d.update(classes=1.5), "classes"),
    (lambda d: d.update(input=[3, 8, True]), "input"),
    (lambda d: d["layers"][1].update(repeat=10 ** 30), "beyond 64-bit integers"),
    (lambda d: d["layers"][1].update(repeat=1e999), "Infinity"),
    (lambda d: d["scale"].update(width=float("nan")), "NaN"),
    (lambda d: d["scale"].update(width=float("inf")), "Infinity"),
    (lambda d: d["let"].append(["big", 10 ** 5000]), "invalid JSON"),
])
def test_bad_numbers_in_json_are_refused(edit, says):
    import json
    doc = to_dict(nasty.zoo.get("resnet18"))
    edit(doc)
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)                 # to write the 5,000-digit integer at all
    try:
        text = json.dumps(doc)
    finally:
        sys.set_int_max_str_digits(old)
    refused(from_json, text, says=[says])


def test_a_json_number_too_large_for_a_float_is_refused():
    text = to_json(nasty.zoo.get("resnet18")).replace('"repeat": "n1"', '"repeat": 1e999', 1)
    assert "1e999" in text
    refused(from_json, text, says=["inf is not a finite number"])


@pytest.mark.parametrize("argv, says", [
    (["--alpha", "1e308"], "--alpha must be at most 2.1"),
    (["--alpha", "nan"], "alpha >= 1, got nan"),
    (["--beta", "inf"], "--beta must be at most 2.1"),
    (["--gamma", "-1e308"], "gamma >= 1"),
    (["--tol", "nan"], "--tol"),
    (["--tol", "1e308", "--alpha", "1e308"], "--tol"),
    (["--phi", "1000000"], "--phi must be from 1 to 16"),
    (["--phi", "0"], "--phi"),
])
def test_scale_refuses_absurd_coefficients(argv, says):
    err = cli_refuses("scale", "efficientnet_b0", *argv, says=[says])
    assert len(err) < 300                         # a short message, not a 300-digit number


def test_non_finite_values_built_in_python_are_refused_by_the_checks():
    g = nasty.zoo.get("resnet18")
    refused(nasty.validate, g.with_header(scale={"width": float("nan")}), says=["not a finite number"])
    refused(nasty.validate, g.with_header(lets={"n1": 10 ** 30}), says=["beyond 64-bit integers"])
    refused(nasty.cost, g.with_header(input=(3, 224.0, 224)), says=["three positive integers"])


# ------------------------------------------------------------------ 5. a genotype without its head
def test_a_genotype_without_a_head_trains_nothing_and_says_what_is_missing(tmp_path):
    """A backbone (no head) builds and costs; training it says the head is missing, in one line."""
    from nasty.genotype.check import require_head
    text = format(nasty.zoo.get("resnet50"))
    cut = text[:text.index("\nhead")] + "\n"                   # a file cut short before its head
    g = parse(cut)
    refused(require_head, g, says=["no head line", "after stage line 5", "head gap flatten fc c=classes"])
    f = tmp_path / "cut.nasty"
    f.write_text(cut)
    for command in ("show", "build"):
        assert cli(command, str(f))[0] == 0
    cli_refuses("train", str(f), says=["no head line", "cut short"])
    refused(parse, text + "stage relu\n", says=["stage line 7", "comes after the head"])
    doc = to_dict(nasty.zoo.get("resnet50"))
    doc["layers"] = doc["layers"][:-1]
    import json
    refused(require_head, from_json(json.dumps(doc)), says=["no head line"])


# ------------------------------------------------------------------ 6. pipes
def test_a_closed_stdout_pipe_ends_the_command_quietly(monkeypatch):
    read, write = os.pipe()
    os.close(read)                                  # the reader (`head -1`) has gone
    out = io.TextIOWrapper(io.FileIO(write, "w"), write_through=True)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["show", "resnet50"]) == EXIT_PIPE
    assert err.getvalue() == ""
    out.close()


def test_a_broken_pipe_that_is_not_stdout_is_still_an_internal_error(monkeypatch, capsys):
    import nasty.commands.show as show

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(show, "run", broken)
    assert main(["show", "resnet50"]) == 1
    assert "internal error: BrokenPipeError" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["show", "nasnetalarge"], ["zoo", "--no-check"]])
def test_piping_into_head_prints_no_error(argv):
    """The real thing: `nasty ... | head -1` (with outputs larger than a pipe's buffer)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    cmd = f"{sys.executable} -m nasty.cli {' '.join(argv)} | head -1"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=300)
    assert p.stderr == "" and len(p.stdout.splitlines()) == 1, p.stderr
    assert p.returncode in (0, EXIT_PIPE)


# ------------------------------------------------------------------ the README lists these limits
def test_the_readme_lists_every_limit():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("### Limits"):]
    section = section[:section.index("\n#")]
    names = [n for n in dir(L) if n.startswith("MAX_")]
    assert len(names) == 15
    for name in names:
        assert f"{getattr(L, name):,}" in section, name
    assert re.search(r"\bfinite\b", section)


@pytest.mark.parametrize("body, says", [
    ("stem pad l=100000000000 r=0 t=0 b=0", "pad output 1x8x100000000008: side 100,000,000,008"),
    ("stem upsample f=100000", "upsample output 1x800000x800000"),
])
def test_feature_maps_grown_past_the_size_limit_are_refused(body, says):
    """pad and upsample can grow a map past any input: refused like an input that large, before
    any memory is asked for (the cost model used to price 2.9 TiB of activations)."""
    text = net(body, header="net t input 1x8x8 classes 2\nlet z=1")
    refused(cost_of, text, says=[says, f"limit of {L.MAX_SIZE:,}"])


def test_weights_larger_than_the_machines_memory_are_refused_before_allocating(monkeypatch):
    """Two 1,000,000-channel convs are within every limit but need 33 TiB of weights: building
    them is a one-line error naming the need and the memory available, not torch's allocator
    failure; on the meta device (nothing allocated) it still builds."""
    import nasty.compile as C
    text = net("stage conv3x3 c=1000000\nstage conv3x3 c=1000000", header="net t input 3x8x8 classes 2\nlet z=1")
    refused(nasty.build, parse(text), says=["its weights alone need 32.7TiB", "9,000,031,000,002 float32 parameters",
                                            "of memory available"])
    with torch.device("meta"):
        assert sum(p.numel() for p in nasty.build(parse(text)).parameters()) == 9_000_031_000_002
    monkeypatch.setattr(C, "available_bytes", lambda: 1000)     # a small net on a machine with 1 kB free
    refused(nasty.build, parse(net("stage conv3x3 c=64", header="net t input 3x8x8 classes 2\nlet z=1")),
            says=["more than the 1000B of memory available"])
    monkeypatch.setattr(C, "available_bytes", lambda: None)     # unknown: no check
    nasty.build(parse(net("stage conv3x3 c=64", header="net t input 3x8x8 classes 2\nlet z=1")))
