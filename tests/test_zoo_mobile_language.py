"""Language features the mobile families (MobileNet v1-v3, MnasNet, EfficientNet) rely on.

- a node guard `name = expr if COND else NAME`: with COND 0 the node is skipped and is NAME
  (optional 1x1 expansion, optional SE, the residual that exists only where a block keeps its
  shape);
- `eq(a, b)` / `ne(a, b)`: 1 or 0, for guards;
- `act fn=NAME`: an activation named by a value, so a cell parameter or a `let` picks it;
- `block` on body lines: how many stage repeats came before (per-block drop-path rates).
"""
import pytest
import torch
from torch import nn

import nasty
from nasty.genotype import GenotypeError, ParseError, elaborate, format, parse
from nasty.genotype.jsonform import from_json, to_json

IR = """\
net t input 3x16x16 classes 10
defaults conv.bias=0 dwconv.bias=0
let nl=relu6

cell ir(t, c, stride=1, se=0):
  e   = conv1x1 c=cin * t bn act fn=nl <- in  if ne(t, 1) else in
  d   = dwconv3x3/stride bn act fn=nl <- e
  g   = gap conv1x1 c=8 bias=1 relu conv1x1 c=cin * t bias=1 hsigmoid <- d  if se else none
  q   = mul(d, g)
  p   = conv1x1 c=c bn <- q
  out = add(p, in)                            if eq(stride, 1) * eq(c, cin) else p

stem  conv3x3/2 c=16 bn relu
stage ir(1, 16)
stage ir(6, 24, 2) x2 rest(stride=1)
stage ir(4, 24, se=1)
head  gap flatten fc c=classes
"""


def _kinds(prog, prefix):
    return [s.kind for s in prog.steps if s.name.startswith(prefix)]


def test_guard_round_trips_in_text_and_json():
    g = parse(IR)
    assert parse(format(g)) == g
    assert from_json(to_json(g)) == g
    assert " if eq(stride, 1) * eq(c, cin) else p" in format(g) and " if se else none" in format(g)
    node = g.cell("ir").nodes[0]
    assert node.name == "e" and node.when is not None and node.otherwise == "in"
    assert g.cell("ir").nodes[2].otherwise == "none" and g.cell("ir").nodes[4].when is None


def test_skipped_nodes_are_their_else():
    prog = elaborate(parse(IR))
    # stage1: t=1 -> no expansion conv; 16 -> 16 at stride 1 -> residual
    assert _kinds(prog, "stage1.") == ["conv", "bn", "relu6", "conv", "bn", "add"]
    # stage2.0: expansion, stride 2 -> no residual; stage2.1: residual
    assert "add" not in _kinds(prog, "stage2.0.")
    assert _kinds(prog, "stage2.1.")[-1] == "add"
    # stage3: SE present (gap, two convs, hsigmoid, mul) and residual
    k3 = _kinds(prog, "stage3.")
    assert k3.count("mul") == 1 and "gap" in k3 and "hsigmoid" in k3 and k3[-1] == "add"
    assert "mul" not in _kinds(prog, "stage2.")


def test_guarded_net_compiles_and_costs_agree():
    g = parse(IR)
    m = nasty.build(g)
    c = nasty.cost(g)
    assert c.params == sum(p.numel() for p in m.parameters())
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    acts = {type(x) for x in m.modules()}
    assert nn.ReLU6 in acts and nn.Hardsigmoid in acts


def test_act_takes_its_activation_from_a_let_or_parameter():
    g = parse(IR)
    relu = g.with_header(lets={"nl": parse_value_text("relu")})
    kinds = {s.kind for s in elaborate(relu).steps}
    assert "relu6" not in kinds and "relu" in kinds
    assert nasty.cost(relu).params == nasty.cost(g).params
    text = IR.replace("let nl=relu6", "let nl=hswish")
    assert "hswish" in {s.kind for s in elaborate(parse(text)).steps}
    # swish is silu; identity is no activation at all
    assert "silu" in {s.kind for s in elaborate(parse(IR.replace("nl=relu6", "nl=swish"))).steps}
    n_ident = len(elaborate(parse(IR.replace("nl=relu6", "nl=identity"))).steps)
    assert n_ident < len(elaborate(g).steps)


def parse_value_text(s):
    from nasty.genotype.jsonform import json_value
    return json_value(s, "test")


def test_act_rejects_what_is_not_an_activation():
    with pytest.raises(GenotypeError, match="act fn= must name an activation"):
        elaborate(parse(IR.replace("let nl=relu6", "let nl=3")))
    with pytest.raises(GenotypeError, match="needs fn="):
        parse("net t input 3x8x8\nstem conv3x3 c=4 act\n")


def test_guard_errors_and_reserved_word():
    with pytest.raises(GenotypeError, match="unknown name 'nope'"):
        parse(IR.replace("if se else", "if nope else", 1))
    with pytest.raises(GenotypeError, match="if needs a number"):
        elaborate(parse(IR.replace("if se else", "if nl else", 1)))
    with pytest.raises(GenotypeError, match="op or keyword"):      # `if` starts a guard
        parse("net t input 3x8x8\ncell c:\n  if = relu <- in\n  out = relu <- in\nstem c\n")
    with pytest.raises(ParseError, match="expected 'else NAME' after the condition, got 'se'"):
        parse(IR.replace("if se else", "if se se else", 1))
    with pytest.raises(ParseError, match="expected end of line, got 'd'"):
        parse(IR.replace("if se else none", "if se else none d", 1))
    with pytest.raises(GenotypeError, match="op or keyword"):      # `else none` means absent
        parse("net t input 3x8x8\ncell c:\n  none = relu <- in\n  out = relu <- none\nstem c\n")


def test_eq_ne():
    from nasty.genotype.expr import FUNCTIONS
    assert FUNCTIONS["eq"][1]({}, 3, 3) == 1 and FUNCTIONS["eq"][1]({}, 3, 4) == 0
    assert FUNCTIONS["ne"][1]({}, 3, 3) == 0 and FUNCTIONS["ne"][1]({}, 2, 3) == 1


BLOCKS = """\
net t input 3x8x8 classes 2
let n=5
cell b(rate):
  out = conv3x3 c=4 droppath p=rate <- in
stem  conv3x3 c=4
stage b(0.5 * block / n) x2
stage b(0.5 * block / n) x3
head  gap flatten fc c=classes
"""


def test_block_counts_stage_repeats():
    prog = elaborate(parse(BLOCKS))
    rates = [s.attrs["p"] for s in prog.steps if s.kind == "droppath"]
    assert rates == [0.5 * i / 5 for i in range(5)]
    with pytest.raises(GenotypeError, match="reserved"):
        parse(BLOCKS.replace("let n=5", "let n=5 block=1"))
    with pytest.raises(GenotypeError, match="unknown name 'block'"):
        parse(BLOCKS.replace("let n=5", "let n=block"))
