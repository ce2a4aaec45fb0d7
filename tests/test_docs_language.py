"""docs/language.md, the language reference, cannot drift from the code: every `nasty` block on
it parses, prices, builds and runs, with params and MACs equal to the compiled module's; every
`nasty-refused` block is refused with a one-line error; its op reference is the registry's."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import nasty
from nasty.errors import NastyError
from nasty.genotype import ops as V
from nasty.genotype import opref
from zoo_check import count_macs, count_params

DOC = (Path(__file__).parent.parent / "docs" / "language.md").read_text()
BUILDS = re.findall(r"```nasty\n(.*?)```", DOC, re.S)
REFUSED = re.findall(r"```nasty-refused\n(.*?)```", DOC, re.S)
SLOW_MACS = 100_000_000         # a block above this many MACs builds and runs in more than a few seconds


def _name(text):
    return text.split()[1]


def _example(text):
    """pytest.param of a block, marked slow where its network is large (priced, not built, here)."""
    macs = nasty.cost(nasty.parse(text)).macs
    return pytest.param(text, id=_name(text), marks=[pytest.mark.slow] if macs > SLOW_MACS else [])


def test_the_page_has_its_examples():
    assert len(BUILDS) >= 12 and len(REFUSED) >= 1
    assert len({_name(t) for t in BUILDS}) == len(BUILDS)             # each example its own name


@pytest.mark.parametrize("text", [_example(t) for t in BUILDS])
def test_every_example_builds_exactly_and_runs(text):
    g = nasty.parse(text)
    c = nasty.cost(g)
    m = nasty.build(g).eval()
    assert c.params == count_params(m) and c.macs == count_macs(m, g.input)
    with torch.no_grad():
        y = m(torch.randn((1,) + tuple(g.input)))
    assert y.shape == (1, g.classes) and torch.isfinite(y).all()


@pytest.mark.parametrize("text", REFUSED, ids=_name)
def test_every_refused_example_is_refused_in_one_line(text):
    with pytest.raises(NastyError) as e:
        nasty.cost(nasty.parse(text))
    assert "\n" not in str(e.value)


def test_the_refused_dead_branch_says_what_the_page_says():
    dead = next(t for t in REFUSED if _name(t) == "dead")
    with pytest.raises(NastyError) as e:
        nasty.cost(nasty.parse(dead))
    shown = re.search(r"refused: `(dead: .*?); \.\.\.`", DOC, re.S).group(1)
    assert str(e.value).startswith(" ".join(shown.split()))
    fixed = dead.replace("bn relu <- in\n", "bn relu <- in if res else none\n")
    assert nasty.cost(nasty.parse(fixed)).params == 0


def test_the_examples_use_every_op_and_join():
    # attention's ops have their own page, docs/attention.md, whose examples test_op_registry.py builds
    attention = (Path(__file__).parent.parent / "docs" / "attention.md").read_text()
    used = " ".join(BUILDS + re.findall(r"```nasty\n(.*?)```", attention, re.S))
    for name, spec in V.SPECS.items():
        spelled = rf"\b{name}(\d+x\d+)?\b" if spec.kernel else rf"\b{name}\b"
        assert re.search(spelled, used) or name in ("tanh", "sigmoid", "silu", "swish", "gelu", "lrelu",
                                                    "relu6", "hsigmoid", "gmp", "apool", "lrn"), name


def test_the_op_reference_is_the_registrys():
    i, j = DOC.index(opref.BEGIN) + len(opref.BEGIN), DOC.index(opref.END)
    assert DOC[i:j].strip() == opref.reference_markdown().strip(), \
        "docs/language.md op reference is stale: run python -m nasty.genotype.opref --readme docs/language.md"


def test_the_defaults_example_reaches_what_the_page_says():
    g = nasty.parse(next(t for t in BUILDS if _name(t) == "defaults_reach"))
    layers = {l.name: l for l in nasty.cost(g).layers}
    assert layers["stem.conv"].params == 16 * 27 + 16                      # bias=1 on the op wins
    assert layers["stage1.e.conv"].params == 64 * 16                       # conv.bias=0
    assert layers["stage1.d.dwconv"].params == 64 * 9                      # dwconv.bias=0
    assert layers["stage1.p.sep.pw"].params == 24 * 64 + 24                # sep keeps bias=1
    assert layers["stage1.out.1.shortcut.conv"].params == 24 * 16            # shortcut takes conv.bias
    bn = [s for s in nasty.genotype.elaborate(g).steps if s.name == "stage1.out.1.shortcut.bn"][0]
    assert bn.attrs["eps"] == 1e-3 and layers["stage1.d.dwconv"].as_written == "dwconv"


def test_the_depth_example_builds_one_to_four_blocks():
    text = next(t for t in BUILDS if _name(t) == "depth")
    names = [l.name for l in nasty.cost(nasty.parse(text)).layers]
    assert any(n.startswith("stage1.l2.") for n in names) and not any(n.startswith("stage1.l3.") for n in names)
    assert any(n.startswith("stage2.branchy.l4.") for n in names)


@pytest.mark.slow
def test_every_examples_cells_draw(tmp_path):
    from nasty.draw import cells_to_draw, draw_cells
    for text in BUILDS:
        g = nasty.parse(text)
        names = cells_to_draw(g)
        assert len(draw_cells(g, tmp_path, cells=names)) == 2 * len(names), g.name    # sub and upsample too
