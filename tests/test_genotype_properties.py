"""Property tests over random genotypes (hypothesis).

1. Every random valid genotype satisfies the exactness invariants: analytic params ==
   numel of the compiled module, analytic MACs == FlopCounterMode/2 of its forward, and
   the text and JSON forms round-trip.
2. Every random malformed or mutated text either works (and is then exact) or fails
   with the clean one-line NastyError: never another exception, never a torch error.
3. The classes of bad input issue 15 found, each with its own generator (genotype_strategies.py):
   values, node expressions and cells nested around and far past their limits, sizes near and
   far past every size limit, numbers that overflow or are not numbers, JSON with such numbers
   or nested thousands deep, and binary files. Each works (and then holds to every limit and
   round-trips) or is a one-line NastyError, never a RecursionError or a hang; the nesting
   ones run in a stack of 400 frames, which the limits keep them inside.

NASTY_FUZZ_EXAMPLES raises the example counts for a nightly-style run (e.g. 10000).
"""
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasty
from nasty.errors import NastyError
from nasty.genotype import format, parse
from nasty.genotype.jsonform import from_json, to_dict, to_json
from genotype_strategies import (binary_files, deeply_nested_json, genotype_texts, json_with_bad_numbers,
                                 mutated_texts, nested_cell_genotypes, nested_expr_genotypes, nested_value_genotypes,
                                 non_finite_texts, sized_genotypes)
from nasty.genotype import limits as L
from zoo_check import count_macs, count_params

N = int(os.environ.get("NASTY_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=N or 60, deadline=None, suppress_health_check=list(HealthCheck))
FUZZ = settings(max_examples=N or 300, deadline=None, suppress_health_check=list(HealthCheck))
BAD = settings(max_examples=N or 100, deadline=None, suppress_health_check=list(HealthCheck))


def check_exact(g):
    c = nasty.cost(g)
    with torch.device("meta"):
        m = nasty.build(g)
    assert c.params == count_params(m)
    assert c.macs == count_macs(m, g.input)
    assert parse(format(g)) == g
    assert from_json(to_json(g)) == g


def exact_or_clean_error(load, text, must_say=None):
    """`load(text)` then validate: either the genotype is exact, or a one-line NastyError
    (containing `must_say`, when given) is raised. Nothing else may happen."""
    try:
        g = load(text)
        nasty.validate(g)
    except NastyError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "Traceback" not in msg, msg
        assert must_say is None or must_say in msg, msg
        return
    check_exact(g)


@FAST
@given(genotype_texts())
def test_random_valid_genotypes_are_exact(text):
    # The generator builds valid structure by construction; the one thing it does not
    # control is downsampling a small input below 1 pixel. Any other error is a bug.
    exact_or_clean_error(parse, text, must_say="shrank below 1")


@FUZZ
@given(mutated_texts())
def test_mutated_texts_work_or_fail_cleanly(text):
    exact_or_clean_error(parse, text)


@st.composite
def mutated_json(draw):
    """A valid genotype's JSON form, then broken: edited text, or keys and values swapped out."""
    import json as _json
    text = draw(genotype_texts())
    try:
        doc = to_dict(parse(text))
    except NastyError:
        return text
    if draw(st.booleans()):
        s = _json.dumps(doc)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(s) - 1))
            s = s[:i] + draw(st.sampled_from(list('{}[]",:0123456789-.aex ') + ["null", "true"])) + s[i + 1:]
        return s
    junk = st.sampled_from([None, True, -1, 0, 1.5, "x", "conv3x3 c=", [], {}, [1, 2], {"a": 1}, "3x3x3"])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["name", "input", "classes", "defaults", "scale", "let", "cells", "layers"]))
        if draw(st.booleans()):
            doc.pop(key, None)
        elif (key in ("cells", "layers") and isinstance(doc.get(key), list) and doc[key]
              and all(isinstance(x, dict) for x in doc[key]) and draw(st.booleans())):
            item = draw(st.sampled_from(doc[key]))
            sub = draw(st.sampled_from(sorted(item)))
            item[sub] = draw(junk)
        else:
            doc[key] = draw(junk)
    return _json.dumps(doc)


@FUZZ
@given(mutated_json())
def test_mutated_json_works_or_fails_cleanly(text):
    exact_or_clean_error(from_json, text)


# ------------------------------------------------------------------ 3. the classes of bad input of issue 15
def clean(e: NastyError):
    msg = str(e)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


def within_limits_or_clean_error(load, text):
    """`load(text)`, then its cost: a genotype that holds to every limit and round-trips, or a
    one-line NastyError. Anything else (RecursionError, OverflowError, ...) fails the test."""
    try:
        g = load(text)
        c = nasty.cost(g)
    except NastyError as e:
        return clean(e)
    assert len(c.layers) <= L.MAX_LAYERS and type(c.params) is int and type(c.macs) is int
    assert all(layer.output[0] <= L.MAX_CHANNELS for layer in c.layers if layer.op != "flatten")
    assert max(g.input[1:]) <= L.MAX_SIZE and g.input[0] <= L.MAX_CHANNELS
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    return None


@contextmanager
def small_stack(frames=400):
    """Python's stack limited to `frames` more than the caller's: the limits must keep every
    genotype inside it, however deep the input tried to go."""
    f, depth = sys._getframe(), 0
    while f is not None:
        f, depth = f.f_back, depth + 1
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@BAD
@given(nested_value_genotypes())
def test_nested_values_work_or_fail_cleanly_in_a_small_stack(text):
    with small_stack():
        within_limits_or_clean_error(parse, text)


@BAD
@given(nested_expr_genotypes())
def test_nested_node_expressions_work_or_fail_cleanly_in_a_small_stack(text_depth):
    text, depth = text_depth
    with small_stack():
        msg = within_limits_or_clean_error(parse, text)
    assert (depth > L.MAX_EXPR_DEPTH) == (msg is not None and "node expression nested deeper" in msg), msg


@BAD
@given(nested_cell_genotypes())
def test_cells_calling_cells_work_or_fail_cleanly_in_a_small_stack(text_n):
    text, n = text_n
    with small_stack():
        msg = within_limits_or_clean_error(parse, text)
    assert (n > L.MAX_CELL_DEPTH) == (msg is not None and f"limit of {L.MAX_CELL_DEPTH}" in msg), msg


@BAD
@given(sized_genotypes())
def test_absurd_sizes_work_or_fail_cleanly(text):
    msg = within_limits_or_clean_error(parse, text)
    assert msg is None or "Exceeds the limit" not in msg


@BAD
@given(non_finite_texts())
def test_numbers_that_overflow_work_or_fail_cleanly(text):
    within_limits_or_clean_error(parse, text)


@BAD
@given(json_with_bad_numbers())
def test_json_with_bad_numbers_works_or_fails_cleanly(text):
    msg = within_limits_or_clean_error(from_json, text)
    if any(bad in text for bad in ("NaN", "Infinity", "1e999")):
        assert msg is not None


@BAD
@given(deeply_nested_json())
def test_deeply_nested_json_fails_cleanly_in_a_small_stack(text):
    with small_stack():
        within_limits_or_clean_error(from_json, text)


@BAD
@given(binary_files(), st.sampled_from([".nasty", ".json", ".txt"]))
def test_binary_files_are_refused_as_such(data, suffix):
    with tempfile.TemporaryDirectory(prefix="nasty-fuzz-") as d:
        path = Path(d) / f"g{suffix}"
        path.write_bytes(data)
        msg = within_limits_or_clean_error(nasty.load, path)
    try:
        text_ok = "\0" not in data.decode("utf-8")
    except UnicodeDecodeError:
        text_ok = False
    if not text_ok:
        assert msg is not None and "not UTF-8 text" in msg
