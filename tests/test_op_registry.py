"""The op registry (nasty/genotype/ops.py): one entry per op, read by every stage.

For EVERY registered op, on a few input shapes, the analytic cost equals the compiled
module (params by numel, MACs by FlopCounterMode / 2), the compiled forward gives the
elaborated shape, and the text form round-trips. Every attribute with a restricted domain
refuses a value outside it with a one-line error naming the op and the attribute. The
README's op reference is the registry's, generated. Adding an op is one entry (its
`examples` feed these tests) plus a test of what it computes.
"""
import re
from pathlib import Path

import pytest
import torch

import nasty
from nasty.genotype import GenotypeError, ParseError, elaborate, format, parse
from nasty.genotype import ops as V
from nasty.genotype import opref as R
from nasty.genotype.jsonform import from_json, to_json
from zoo_check import count_macs, count_params

SHAPES = [(6, 12, 12), (6, 9, 7)]
JOIN_CELL = "cell j:\n  a = conv1x1 c=6 <- in\n  b = conv3x3 c=6 bias=0 <- in\n  x = {}\n  out = cat(x, a, b)\n"


def _is_join(example: str) -> bool:
    return re.match(r"^\w+\(", example) is not None and example.split("(")[0] in V.COMBINERS


def example_net(example: str, shape) -> nasty.Genotype:
    header = f"net reg input {'x'.join(map(str, shape))} classes 5\n"
    if _is_join(example):
        return parse(header + JOIN_CELL.format(example) + "stage j\n")
    return parse(header + f"stem {example}\n")


CASES = [(name, ex) for name, spec in V.SPECS.items() for ex in spec.examples]


def test_every_op_has_examples_and_a_complete_entry():
    for name, spec in V.SPECS.items():
        assert spec.examples, f"{name}: no examples, so the registration test cannot cover it"
        assert spec.doc, name
        if spec.shape is not None or spec.join is not None:
            assert spec.cost is not None and spec.torch is not None, name
        for attr in spec.attrs.values():
            assert attr.doc, name


@pytest.mark.parametrize("name, example", CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_cost_equals_the_compiled_module(name, example, shape):
    g = example_net(example, shape)
    prog = elaborate(g)
    spec = V.SPECS[name]
    if spec.shape is not None or spec.join is not None:
        emitted = {st.kind for st in prog.steps}
        no_op = name in ("slice", "shuffle") and not emitted - {"conv"}
        assert name in emitted or no_op, (example, emitted)
    c = nasty.cost(g)
    with torch.device("meta"):
        meta = nasty.build(g)
    assert c.params == count_params(meta), (example, c.params, count_params(meta))
    assert c.macs == count_macs(meta, g.input), (example, c.macs)
    m = nasty.build(g).eval()
    with torch.no_grad():
        y = m(torch.randn((2,) + tuple(shape)))
    assert tuple(y.shape[1:]) == tuple(prog.shape(prog.output)), example
    assert sum(l.flops for l in c.layers) == c.flops
    assert parse(format(g)) == g and from_json(to_json(g)) == g


# A value outside each domain, and valid values for the attributes an op needs.
BAD = {id(V.POS_INT): 0, id(V.NONNEG): -1, id(V.POSITIVE): 0, id(V.PROB): 1, id(V.UNIT): 1.5,
       id(V.FLAG): 2, id(V.PADDING): -1}
NEEDS = {"c": "c=4", "v": "v=1", "fn": "fn=relu", "g": "g=1", "s": "s=2", "heads": "heads=1", "h": "h=8",
         "w": "w=8", "p": "p=2", "shift": "shift=0"}
DOMAIN_CASES = [(name, attr) for name, spec in V.SPECS.items() if spec.shape or spec.lower
                for attr, a in spec.attrs.items() if id(a.domain) in BAD or a.domain.words]


@pytest.mark.parametrize("name, attr", DOMAIN_CASES)
def test_values_outside_the_domain_are_refused_by_name(name, attr):
    spec = V.SPECS[name]
    a = spec.attrs[attr]
    bad = BAD.get(id(a.domain), 3)           # 3: not one of a choice's words
    words = [name]
    if spec.kernel:
        words += [f"{k}=3" for k in ("kh", "kw") if k != attr]
    words += [NEEDS[k] for k, x in spec.attrs.items() if x.default is V.REQUIRED and k != attr and k in NEEDS]
    words.append(f"{attr}={bad}")
    text = f"net d input 4x8x8\nstem {' '.join(words)}\n"
    with pytest.raises(GenotypeError) as e:
        elaborate(parse(text))
    msg = str(e.value)
    assert f"{name} {attr}= must" in msg and "\n" not in msg, msg


def test_bn_eps_must_be_positive():
    with pytest.raises(GenotypeError, match=r"stem: bn eps= must be a number > 0, got -1"):
        elaborate(parse("net d input 3x8x8\nstem conv3x3 c=4 bn eps=-1\n"))
    # through a value expression and through `defaults` too
    with pytest.raises(GenotypeError, match="bn eps= must be a number > 0"):
        elaborate(parse("net d input 3x8x8\nlet e=0\nstem conv3x3 c=4 bn eps=e\n"))
    with pytest.raises(GenotypeError, match="bn eps= must be a number > 0"):
        elaborate(parse("net d input 3x8x8\ndefaults bn.eps=0\nstem conv3x3 c=4 shortcut c=8\n"))


def test_the_activation_list_is_the_registry_s():
    from nasty.genotype.expr import KEYWORDS
    acts = {n for n, s in V.SPECS.items() if s.activation}
    assert V.ACTIVATIONS == acts and acts <= KEYWORDS
    assert set(V.SPECS["act"].attrs["fn"].domain.words) == acts | {"identity"}


def test_ports_pair_each_op_with_its_torch_counterpart():
    from torch import nn
    from nasty.layers import LayerNorm2d, LayerScale
    from nasty.weights import _signature
    assert _signature(nn.Conv2d(4, 8, 1))[0] == _signature(nn.Linear(4, 8))[0] == "linear"
    assert _signature(nn.Conv2d(4, 8, 1)) == _signature(nn.Linear(4, 8))
    assert _signature(nn.Conv2d(4, 8, 1, stride=2))[0] == "conv"        # strided: not per position
    assert _signature(LayerNorm2d(8)) == _signature(nn.LayerNorm(8))
    assert _signature(LayerScale(8, 1e-6)) == _signature(LayerScale(8, 1.0, spatial=False))


# ------------------------------------------------------------------ the README's op reference
README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_op_reference_is_generated_from_the_registry():
    i, j = README.index(R.BEGIN) + len(R.BEGIN), README.index(R.END)
    assert README[i:j].strip() == R.reference_markdown().strip(), \
        "README op reference is stale: run python -m nasty.genotype.opref --readme README.md"
    for name, spec in V.SPECS.items():
        if spec.shape or spec.lower:
            assert f"`{name}" in README[i:j], name
            for attr in spec.attrs:
                if not (spec.kernel and attr in ("kh", "kw")):
                    assert f"`{attr}=" in README[i:j], (name, attr)


def test_parse_errors_for_unknown_ops_name_real_neighbours():
    for wrong, right in [("layernorm", "ln"), ("LayerNorm2d", "ln"), ("batchnorm", "bn"),
                         ("concat", "cat"), ("linaer", "linear"), ("upsampling", "upsample"),
                         ("conv2d", "conv3x3"), ("leakyrelu", "lrelu"), ("lnorm", "ln")]:
        with pytest.raises((ParseError, GenotypeError), match=f"did you mean '{right}'"):
            parse(f"net d input 3x8x8\nstem conv3x3 c=4 {wrong} x2\n")
        with pytest.raises(ParseError, match=f"did you mean '{right}'"):
            parse(f"net d input 3x8x8\nstem conv3x3 c=4 {wrong} c=3\n")
    with pytest.raises(GenotypeError, match="the activations are gelu, gelu_tanh, hsigmoid"):
        parse("net d input 3x8x8\nstem conv3x3 c=4 mish\n")


def _language_examples():
    section = README[README.index("## The genotype language"):README.index("## Python API")]
    return re.findall(r"```nasty\n(.*?)```", section, re.S)


# the language's pages in docs/ (the README is becoming a front page): their examples count too
DOCS = [Path(__file__).parent.parent / "docs" / "attention.md"]


def _docs_examples():
    return [t for p in DOCS for t in re.findall(r"```nasty\n(.*?)```", p.read_text(), re.S)]


@pytest.mark.parametrize("text", _language_examples() + _docs_examples(), ids=lambda t: t.split()[1])
def test_readme_language_examples_build_exactly(text):
    g = parse(text)
    c = nasty.cost(g)
    m = nasty.build(g).eval()
    assert c.params == count_params(m) and c.macs == count_macs(m, g.input)
    with torch.no_grad():
        assert m(torch.randn((1,) + tuple(g.input))).shape == (1, 10)


def test_readme_language_examples_cover_every_op_and_join():
    used = " ".join(_language_examples() + _docs_examples())
    for name, spec in V.SPECS.items():
        spelled = rf"\b{name}(\d+x\d+)?\b" if spec.kernel else rf"\b{name}\b"
        assert re.search(spelled, used) or name in ("tanh", "sigmoid", "silu", "swish", "gelu", "lrelu",
                                                    "relu6", "hsigmoid", "gmp", "apool", "lrn"), name
