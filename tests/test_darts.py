"""DARTS (nasty/controllers/darts.py): the relaxation of nb201mini and darts cells, its weights in
the one weight pool, first-order architecture steps, the discretisation and its guard."""

import pytest
import torch

from nasty.compile import compile_genotype
from nasty.controllers import make_controller
from nasty.controllers.darts import DartsController
from nasty.errors import NastyError
from nasty.genotype import elaborate
from nasty.search.supernet import layer_keys
from nasty.searchspaces import darts as darts_space
from nasty.searchspaces.nb201mini import EDGE_NAMES, OPS
from nasty.space import NetSpec, load_space

SPEC = NetSpec(True, (1, 28, 28), 10)


def _mixed(space_name, seed=0):
    c = DartsController(load_space(space_name), seed=seed)
    g = c.relaxed(SPEC)
    m = compile_genotype(g, input=SPEC.input, classes=SPEC.classes)
    c.attach(m)
    return c, g, m


def test_nb201_mixed_cell_holds_every_candidate_op_of_every_edge_weighted_by_its_softmax():
    c, g, m = _mixed("nb201mini")
    # 6 edges x (skip, conv3x3): 12 weighted terms per cell; the zero op only has its softmax weight
    assert len(c.relax.markers) == 12 and tuple(c.alpha.shape) == (6, 3)
    weights = [mod for mod in m.modules() if type(mod).__name__ == "_ArchWeight"]
    assert len(weights) == 12 * 3                                # three cells of the skeleton share alphas
    assert {(w.edge, OPS[w.option]) for w in weights} == {(e, op) for e in range(6) for op in ("skip", "conv3x3")}
    # alphas are not parameters of the network (the weight pool must not take them)
    assert all(p is not c.alpha for p in m.parameters())
    # a forward pass depends on alpha: its gradient reaches every edge's row, the zero op's column too
    torch.manual_seed(0)
    loss = torch.nn.functional.cross_entropy(m(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
    before = c.alpha.detach().clone()
    c.arch_step(loss)
    assert c.steps == 1 and (c.alpha.detach() != before).all()


def test_every_layer_of_a_discretised_child_has_the_key_it_has_in_the_mixed_network():
    for name in ("nb201mini", "darts"):
        c, g, m = _mixed(name)
        mixed_keys = set(layer_keys(elaborate(g, SPEC.input, SPEC.classes), m).values())
        space = load_space(name)
        for _ in range(3):
            c.alpha.data = torch.randn_like(c.alpha)
            values, _ = space.sample(c.ask())
            child = space.genotype(values, proxy=True)
            keys = layer_keys(elaborate(child), compile_genotype(child))
            missing = [k for k in keys.values() if k not in mixed_keys and "#" not in k]
            assert not missing, (name, missing[:3])


def test_discretisation_takes_the_argmax_and_the_guard_keeps_no_zero_op_and_at_most_two_skips():
    c = DartsController(load_space("nb201mini"), seed=0)
    with torch.no_grad():
        c.alpha.zero_()
        c.alpha[:, 1] = 1.0                                 # skip wins everywhere
        c.alpha[0, 0] = 5.0                                 # none wins on e01
        c.alpha[:, 2] = torch.linspace(0.0, 0.5, 6)         # conv is second, strongest on the last edges
    raw = c.pick(guard=False)
    assert raw["e01"] == "none" and all(raw[e] == "skip" for e in EDGE_NAMES[1:])
    picked = c.pick()
    assert "none" not in picked.values()
    skips = [e for e, op in picked.items() if op == "skip"]
    assert len(skips) == 2 and all(picked[e] == "conv3x3" for e in EDGE_NAMES if e not in skips)
    d = c.diagnostics()
    assert d["raw_counts"]["cell"] == {"skip": 5, "none": 1} and d["pick_counts"]["cell"] == {"skip": 2, "none": 0}
    c.max_skip = -1
    assert list(c.pick().values()).count("skip") == 6


def test_darts_space_discretisation_keeps_the_two_strongest_edges_per_node_as_the_space_decisions():
    space = load_space("darts")
    c = DartsController(space, seed=3)
    with torch.no_grad():
        c.alpha.normal_()
    values, g = space.sample(c.ask())
    for kind in ("normal", "reduce"):
        for i in range(darts_space.NODES):
            a, b = values[f"{kind}_n{i}_inputs"].split(",")
            names = darts_space.state_names(i)
            assert names.index(a) < names.index(b)
            for src, op in ((a, values[f"{kind}_n{i}_op1"]), (b, values[f"{kind}_n{i}_op2"])):
                assert op != "none"
                e = c.relax.edges.index(next(x for x in c.relax.edges if x[1] == f"{kind}_n{i}<-{src}"))
                w = torch.softmax(c.alpha[e], 0)
                assert op == max((o for o in darts_space.PRIMITIVES if o != "none"),
                                  key=lambda o: w[darts_space.PRIMITIVES.index(o)])
    normal_skips = sum(values[f"normal_n{i}_op{k}"] == "skip_connect" for i in range(4) for k in (1, 2))
    assert normal_skips <= 2
    # the decisions DARTS does not relax (C, L) come from the controller's random generator
    assert values["C"] in darts_space.C_CHOICES and values["L"] in darts_space.L_CHOICES


def test_state_round_trips_and_other_spaces_are_refused():
    c = DartsController(load_space("nb201mini"), seed=0)
    m = compile_genotype(c.relaxed(SPEC))
    c.attach(m)
    c.arch_step(m(torch.randn(4, 1, 28, 28)).square().mean())
    d = DartsController(load_space("nb201mini"), seed=9)
    d.load_state_dict(c.state_dict())
    assert torch.equal(c.alpha, d.alpha) and d.steps == 1 and d.pick() == c.pick()
    with pytest.raises(NastyError, match="cell spaces"):
        make_controller("darts", load_space("nasnet"))


def test_a_pick_rejected_over_budget_gives_way_to_the_next_most_probable_guarded_cell():
    from nasty.controllers import Result
    space = load_space("nb201mini")
    c = DartsController(space, seed=0)
    with torch.no_grad():
        c.alpha.zero_()
        c.alpha[:, 2] = torch.linspace(1.0, 2.0, 6)             # conv everywhere, least sure on e01
    seen = []
    for _ in range(3):
        t = c.ask()
        values, _ = space.sample(t)
        seen.append(values)
        c.tell(t, Result(None, "rejected", {"macs": 1, "params": 1}))
    assert seen[0] == {e: "conv3x3" for e in EDGE_NAMES}
    assert seen[1] == {**seen[0], "e01": "skip"} and seen[2] == {**seen[0], "e02": "skip"}
    d = DartsController(space, seed=1)
    d.load_state_dict(c.state_dict())
    assert space.sample(d.ask())[0] == space.sample(c.ask())[0]
