"""Property tests over random genotypes (hypothesis).

1. Every random valid genotype satisfies the exactness invariants: analytic params ==
   numel of the compiled module, analytic MACs == FlopCounterMode/2 of its forward, and
   the text and JSON forms round-trip.
2. Every random malformed or mutated text either works (and is then exact) or fails
   with the clean one-line NastyError: never another exception, never a torch error.

NASTY_FUZZ_EXAMPLES raises the example counts for a nightly-style run (e.g. 10000).
"""
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasty
from nasty.errors import NastyError
from nasty.genotype import format, parse
from nasty.genotype.jsonform import from_json, to_dict, to_json
from genotype_strategies import genotype_texts, mutated_texts
from zoo_check import count_macs, count_params

N = int(os.environ.get("NASTY_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=N or 60, deadline=None, suppress_health_check=list(HealthCheck))
FUZZ = settings(max_examples=N or 300, deadline=None, suppress_health_check=list(HealthCheck))


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
