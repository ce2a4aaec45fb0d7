"""Pre-activation ResNet-110/164 (He et al. 2016) and WRN-28-10 (Zagoruyko & Komodakis 2016) for
CIFAR: no reference implementation; checked against the papers' parameter counts and the
structure the papers and the authors' code describe."""
import pytest
import torch

import nasty
from nasty.genotype import elaborate, format, parse
from zoo_check import check_self_consistent
from zoo_notes import check_round_trips, printed

# (name, printed params in millions, units per stage, conv layers in the residual branches)
PAPER = [("preact_resnet110", "1.7", 18, 2), ("preact_resnet164", "1.7", 18, 3), ("wrn28_10", "36.5", 4, 2)]


@pytest.mark.parametrize("name, params, n, per_unit", PAPER)
def test_papers_parameter_counts_and_depth(name, params, n, per_unit):
    g = nasty.zoo.get(name)
    c = check_self_consistent(g)
    assert printed(c.params / 1e6, params), c.params
    assert c.layers[-1].output == (10,)
    assert parse(format(g)) == g
    prog = elaborate(g)
    projections = [s for s in prog.steps if s.kind == "conv" and ".shortcut" in s.name]
    convs = [s for s in prog.steps if s.kind == "conv"]
    assert len(convs) == 1 + 3 * n * per_unit + len(projections)
    if name == "wrn28_10":
        # WRN-d-k counts every conv: d = 6n + 4 with the three 1x1 projection shortcuts.
        assert len(projections) == 3 and len(convs) == 28
        assert [s.out[0] for s in projections] == [160, 320, 640]
    else:
        # ResNet-110 = 6n + 2 and ResNet-164 = 9n + 2: the stem conv, the branch convs and the FC.
        depth = 1 + 3 * n * per_unit + 1
        assert depth == int(name[len("preact_resnet"):])
        # The 164 projects 16 -> 64 channels already in stage 1; the 110 keeps 16 there.
        assert len(projections) == (3 if name == "preact_resnet164" else 2)


@pytest.mark.parametrize("name", ["preact_resnet110", "preact_resnet164"])
def test_identity_paths_are_clean(name):
    """Pre-activation: every add but the first of each stage takes the unit's input untouched,
    and no BN or ReLU follows an add except the final BN-ReLU of the head."""
    prog = elaborate(nasty.zoo.get(name))
    adds = [i for i, s in enumerate(prog.steps) if s.kind == "add"]
    consumers = {}
    for i, s in enumerate(prog.steps):
        for h in s.inputs:
            consumers.setdefault(h, []).append(s)
    for i in adds:
        # An add's output feeds the next unit's BN (its branch) and the next add (its identity path),
        # or the shared pre-activation of a stage's first unit, or the head.
        kinds = sorted(s.kind for s in consumers[i])
        assert kinds in (["add", "bn"], ["bn"]), (prog.steps[i].name, kinds)
    identity_adds = [i for i in adds if any(h in adds for h in prog.steps[i].inputs)]
    assert len(identity_adds) == 3 * 18 - 3


def test_forward_at_cifar_size():
    m = nasty.build(nasty.zoo.get("preact_resnet110")).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["preact_resnet110", "preact_resnet164", "wrn28_10"])
def test_round_trips(name):
    check_round_trips(name)
