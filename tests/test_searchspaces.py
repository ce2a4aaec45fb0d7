"""The built-in spaces: each contains its canonical member at exactly the zoo's cost, and every
sample builds a target (costed analytically) and a proxy that compiles and runs."""
import random

import pytest
import torch

import nasty
from nasty.space import FixedTrial, RandomTrial, load_space

# space, canonical member, zoo network whose target cost it must equal to the unit
CANONICAL = [
    ("nasnet", "nasnet_a", "nasnet_mobile"),          # NASNet-A Mobile 4 @ 1056: 564M mult-adds
    ("darts", "darts_v2", "darts_v2"),
    ("mbconv", "efficientnet_b0", "efficientnet_b0"),
    ("resnet", "resnet50", "resnet50"),
    ("resnet", "resnext50_32x4d", "resnext50_32x4d"),
]


@pytest.mark.parametrize("space_name, member, zoo_name", CANONICAL)
def test_canonical_member_costs_exactly_the_zoo_network(space_name, member, zoo_name):
    s = load_space(space_name)
    g = s.genotype(s.canonical[member])
    mine, zoo = nasty.cost(g), nasty.cost(zoo_name)
    assert (mine.macs, mine.params) == (zoo.macs, zoo.params)
    assert g.input == (3, 224, 224) and g.classes == 1000


def test_nasnet_a_mobile_is_the_papers_564M_mult_adds():
    s = load_space("nasnet")
    v = s.canonical["nasnet_a"]
    assert (v["N"], v["F"]) == (4, 44)
    c = nasty.cost(s.genotype(v))
    assert round(c.macs / 1e6) == 564 and round(c.params / 1e5) == 53      # 564M, 5.3M in the paper


def test_nasnet_space_shape():
    s = load_space("nasnet")
    ds = s.decisions(s.canonical["nasnet_a"])
    assert len(ds) == 2 + 2 * 5 * 4                                    # N, F; 2 cells x 5 blocks x 4
    ops = next(d for d in ds if d.name == "normal_b0_op1").options()
    assert len(ops) == 13 and {"identity", "sep7x7", "dil3x3", "conv1x7_7x1", "max5x5"} <= set(ops)
    # block j reads h_i, h_{i-1} or an earlier block
    assert next(d for d in ds if d.name == "reduce_b3_in1").options() == ("in", "prev", "b0", "b1", "b2")


def test_nasnet_unused_states_are_concatenated():
    s = load_space("nasnet")
    v = dict(s.canonical["nasnet_a"])
    # a reduction cell that never reads h_{i-1}: it joins the concat by a factorized reduction
    for j in range(5):
        for i in (1, 2):
            if v[f"reduce_b{j}_in{i}"] == "prev":
                v[f"reduce_b{j}_in{i}"] = "in"
    text = nasty.format(s.genotype(v))
    red = text.split("cell reduction_cell(F) inputs 2:")[1].split("\n\n")[0]
    assert "out = cat(freduce(F) <- prev, b1, b2, b3, b4)" in red
    # a normal cell whose blocks feed each other concatenates only the unused ones (and h_{i-1})
    w = dict(s.canonical["nasnet_a"], normal_b4_in1="b0", normal_b4_op1="sep3x3")
    normal = nasty.format(s.genotype(w)).split("cell normal_cell(F) inputs 2:")[1].split("\n\n")[0]
    assert "out = cat(prev, b1, b2, b3, b4)" in normal
    # the target cost follows the cell (one branch now reads b0 instead of h_i, one state fewer)
    assert nasty.cost(s.genotype(w)).macs != nasty.cost(s.genotype(s.canonical["nasnet_a"])).macs


def test_darts_nodes_take_two_distinct_inputs_among_seven_ops():
    s = load_space("darts")
    ds = {d.name: d for d in s.decisions(s.canonical["darts_v2"])}
    assert ds["normal_n0_inputs"].options() == ("prev,in",)
    assert len(ds["normal_n3_inputs"].options()) == 10                 # C(5, 2)
    assert "none" not in ds["normal_n0_op1"].options() and len(ds["normal_n0_op1"].options()) == 7


@pytest.mark.parametrize("space_name", ["nasnet", "darts", "mbconv", "resnet", "hybrid"])
def test_random_samples_build_target_and_a_trainable_proxy(space_name):
    s = load_space(space_name)
    rng = random.Random(11)
    for i in range(12):
        t = RandomTrial(rng)
        values, g = s.sample(t)
        c = nasty.cost(g)
        assert g.input == s.target.input and c.macs > 0 and c.params > 0
        p = s.genotype(values, proxy=True)
        assert p.input == (1, 28, 28) and p.classes == 10
        assert nasty.format(s.genotype(FixedTrial(values))) == nasty.format(g)     # replayable
        if i < 2:                            # compiling is the slow part: check a couple exactly
            model = nasty.build(p)
            assert sum(q.numel() for q in model.parameters()) == nasty.cost(p).params
            model.eval()
            with torch.no_grad():
                assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        # the proxy also builds for other data (CIFAR-sized), from the same decisions
        cifar = s.genotype(values, proxy=True, input=(3, 32, 32), classes=100)
        assert nasty.cost(cifar).params > 0


def test_fit_decisions_scale_cost_monotonically():
    for name in ("nasnet", "darts", "mbconv", "resnet"):
        s = load_space(name)
        v = next(iter(s.canonical.values()))
        d = next(d for d in s.decisions(v) if d.name == s.width_decision)
        opts = sorted(d.options())
        macs = [nasty.cost(s.genotype({**v, s.width_decision: o})).macs
                for o in (opts[0], opts[len(opts) // 2], opts[-1])]
        assert macs == sorted(macs) and macs[0] < macs[-1], name


def test_hybrid_samples_cost_exactly_and_reach_the_attention_stages():
    """The hybrid space's targets: analytic params and MACs equal the compiled module's (meta
    device), attention runs over 14x14 then 7x7 positions, and the budget keeps part of the space."""
    from zoo_check import count_macs, count_params
    s = load_space("hybrid")
    rng = random.Random(3)
    macs = []
    for i in range(40):
        values, g = s.sample(RandomTrial(rng))
        c = nasty.cost(g)
        macs.append(c.macs)
        if i < 3:
            with torch.device("meta"):
                m = nasty.build(g)
            assert (c.params, c.macs) == (count_params(m), count_macs(m, g.input))
            windows = [st.in_shapes[0] for st in nasty.genotype.elaborate(g).steps if st.kind == "qkv_proj"]
            assert {w[1:] for w in windows} == {(1, 14 * 14), (1, 7 * 7)}
    assert min(macs) < 600e6 < max(macs)
    # the heads divide every embedding width, whatever the width multiplier
    for width in load_space("hybrid").decisions()[0].options():
        v = dict(values, width=width, a1_heads=8, a2_heads=8)
        nasty.cost(s.genotype(v)), nasty.cost(s.genotype(v, proxy=True))
