"""Helpers for the zoo tests that check printed figures (course notes, papers) and round trips.

`printed(value, text)`: does a computed value agree with a figure printed as `text` at the
precision it is printed with? The notes round most figures but truncate some (VGG-16's
conv FLOPs 1,849.7M are printed "1,849"), so either reading is accepted.

`check_round_trips(name)`: the genotype survives its text and JSON forms. (The logits check,
with the reference's norm statistics randomised, is `zoo_check.check_logits`.)
"""
from __future__ import annotations

import math

import nasty


def printed(value: float, text: str) -> bool:
    """`value` rounds or truncates to the figure printed as `text` (e.g. '1,849', '0.08')."""
    text = text.replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    q = 10 ** decimals
    target = round(float(text) * q)
    return round(value * q) == target or math.floor(value * q + 1e-9) == target


def table(cost, ops=("conv", "maxpool", "avgpool", "fc", "flatten")):
    """The rows of a per-layer cost table the notes tabulate (ReLU, LRN, dropout left out)."""
    return [l for l in cost.layers if l.op in ops]


def check_round_trips(name: str):
    """The zoo genotype survives text and JSON round trips unchanged."""
    from nasty.genotype import format, parse
    from nasty.genotype.jsonform import from_json, to_json
    g = nasty.zoo.get(name)
    assert parse(format(g)) == g, name
    assert from_json(to_json(g)) == g, name
