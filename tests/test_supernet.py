"""Weight sharing (nasty/search/supernet.py) on tiny spaces: two children with the same op at the
same place hold the same parameter tensors (the pool's objects, not copies), children that differ
do not, and a training step of one child moves exactly the tensors the other reads."""
import numpy as np
import pytest
import torch

import nasty
from nasty.compile import compile_genotype
from nasty.genotype import elaborate
from nasty.search.supernet import Supernet, WeightPool, from_bytes, layer_keys, to_bytes
from nasty.space import space

OPS = {"conv3": "relu conv3x3 c=8 bn", "conv5": "relu conv5x5 c=8 bn", "sep5": "relu sep5x5 c=8 bn",
       "dil5": "relu sep5x5 d=2 c=8 bn", "pool": "maxpool3x3 p=1"}


@space(target=dict(input=(1, 12, 12), classes=4), proxy=dict(input=(1, 12, 12), classes=4))
def two_edges(t, net):
    """A cell of two nodes: a = op1 <- in; out = add(op2 <- in, op3 <- a) (op3 may be skip)."""
    o1 = t.choice("op1", ("conv3", "conv5"))
    o2 = t.choice("op2", ("conv3", "conv5", "sep5", "dil5", "pool", "none"))
    o3 = t.choice("op3", ("conv3", "skip"))
    terms = ([] if o2 == "none" else [f"{OPS[o2]} <- in"]) + ["a" if o3 == "skip" else f"{OPS[o3]} <- a"]
    out = terms[0] if len(terms) == 1 else f"add({', '.join(terms)})"
    if len(terms) == 1 and o3 == "skip":
        out = "identity <- a"
    return nasty.parse(f"net t input {'x'.join(map(str, net.input))} classes {net.classes}\n"
                       "defaults conv.bias=0 sep.bias=0\n"
                       f"cell c():\n  a = {OPS[o1]} <- in\n  out = {out}\n"
                       "stem conv3x3 c=8 bn\nstage c()\nhead gap flatten fc c=classes\n")


def _payload(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 1, 12, 12), dtype=np.uint8)
    y = rng.integers(0, 4, n).astype(np.int64)
    return {"name": "toy", "classes": ["a", "b", "c", "d"], "mean": [0.5], "std": [0.25], "x": x, "y": y,
            "n_train": 64, "rows": {"search": {"train": [0, 64], "val": [64, 96]}}}


def _net(**kw):
    return Supernet(_payload(), None, batch_size=16, score_images=32, seed=0, device="cpu", **kw)


def _child(net, **values):
    return net.build(two_edges.genotype(values, proxy=True))


def _params(model) -> dict:
    return dict(model.named_parameters())


def test_same_op_at_the_same_place_is_the_same_tensor_and_different_ops_are_not():
    net = _net()
    a = _child(net, op1="conv3", op2="conv5", op3="conv3")
    b = _child(net, op1="conv3", op2="conv3", op3="conv3")
    pa, pb = _params(a), _params(b)
    # stem, node a (conv3 in both), the edge a->out (conv3 in both), head: the pool's own objects
    for name in ("stem.conv.weight", "stage1.a.conv.weight", "stage1.a.bn.weight", "head.fc.weight"):
        assert pa[name] is pb[name]
    assert pa["stage1.out.1.conv.weight"] is pb["stage1.out.1.conv.weight"]
    # op2 differs (conv5 vs conv3): different tensors (different shapes here)
    assert pa["stage1.out.0.conv.weight"] is not pb["stage1.out.0.conv.weight"]
    # a third child with op1 = conv5 has its own node-a conv, but the stem and head are shared
    c = _child(net, op1="conv5", op2="conv5", op3="conv3")
    pc = _params(c)
    assert pc["stage1.a.conv.weight"] is not pa["stage1.a.conv.weight"]
    assert pc["stage1.out.0.conv.weight"] is pa["stage1.out.0.conv.weight"]
    assert pc["stem.conv.weight"] is pa["stem.conv.weight"]


def test_ops_that_differ_share_nothing_even_where_a_layer_has_the_same_name_and_shape():
    net = _net()
    sep = _params(_child(net, op1="conv3", op2="sep5", op3="conv3"))
    dil = _params(_child(net, op1="conv3", op2="dil5", op3="conv3"))
    # the pointwise conv of sep5x5 and of dilated sep5x5: same path, same shape (8, 8, 1, 1)...
    assert sep["stage1.out.0.sep.pw.weight"].shape == dil["stage1.out.0.sep.pw.weight"].shape
    # ... but another op: not shared (the op's identity includes every layer of it)
    assert sep["stage1.out.0.sep.pw.weight"] is not dil["stage1.out.0.sep.pw.weight"]
    assert sep["stage1.out.0.sep.dw.weight"] is not dil["stage1.out.0.sep.dw.weight"]


def test_the_same_op_is_shared_whatever_its_operand_position_and_terms_reading_other_states_are_not():
    net = _net()
    # op3's conv is term 1 of `out` when op2 exists, and the only term when op2 is none
    with_op2 = _params(_child(net, op1="conv3", op2="conv5", op3="conv3"))
    alone = _params(_child(net, op1="conv3", op2="none", op3="conv3"))
    assert with_op2["stage1.out.1.conv.weight"] is alone["stage1.out.conv.weight"]
    # op2 = conv3 reads `in`, op3 = conv3 reads `a`: the same op at the same node, other sources
    both = _params(_child(net, op1="conv3", op2="conv3", op3="conv3"))
    assert both["stage1.out.0.conv.weight"] is not both["stage1.out.1.conv.weight"]
    assert both["stage1.out.1.conv.weight"] is with_op2["stage1.out.1.conv.weight"]


def test_a_step_of_one_child_moves_the_tensors_the_other_reads_and_no_others():
    net = _net()
    a = _child(net, op1="conv3", op2="conv5", op3="conv3")
    b = _child(net, op1="conv3", op2="conv3", op3="conv3")
    pa, pb = _params(a), _params(b)
    before = {n: p.detach().clone() for n, p in pb.items()}
    net.train_step(a)
    moved = {n for n, p in pb.items() if not torch.equal(p.detach(), before[n])}
    shared = {n for n in pb if any(pb[n] is q for q in pa.values())}
    assert moved and moved <= shared                       # only what a shares with b moved ...
    assert "stage1.out.0.conv.weight" not in moved          # ... b's own conv3 on `in` did not
    assert "stage1.a.conv.weight" in moved and "head.fc.weight" in moved
    # and b sees the new values without any copy: its forward uses the moved tensors
    x = net.vx[:8]
    b.eval()
    y1 = b(x)
    net.train_step(b)
    assert not torch.equal(y1, b(x))


def test_keys_hold_place_source_op_and_layer():
    g = two_edges.genotype({"op1": "conv3", "op2": "dil5", "op3": "conv3"}, proxy=True)
    m = compile_genotype(g)
    keys = layer_keys(elaborate(g), m)
    assert set(keys) == {n for n, mod in m.named_modules() if any(True for _ in mod.parameters(recurse=False))}
    k = keys["stage1.out.0.sep.pw"]
    assert k.startswith("stage1.out<stem>") and k.endswith(":weight(8, 8, 1, 1)")
    assert keys["stage1.out.1.conv"].startswith("stage1.out<stage1.a>")
    assert len(set(keys.values())) == len(keys)


def test_the_same_op_twice_on_the_same_state_is_two_layers():
    g = nasty.parse("net t input 1x8x8 classes 2\ndefaults conv.bias=0\ncell c():\n"
                    "  out = add(relu conv3x3 c=4 <- in, relu conv3x3 c=4 <- in)\n"
                    "stem conv3x3 c=4\nstage c()\nhead gap flatten fc c=classes\n")
    pool = WeightPool()
    m = compile_genotype(g)
    pool.bind(m, elaborate(g))
    w = dict(m.named_parameters())
    assert w["stage1.out.0.conv.weight"] is not w["stage1.out.1.conv.weight"]
    assert len(pool) == 5            # stem conv, two convs, fc weight and bias


@pytest.mark.parametrize("bn", ["batch", "recompute"])
def test_scores_are_accuracies_and_survive_a_checkpoint(bn):
    net = _net(bn=bn)
    a = _child(net, op1="conv3", op2="sep5", op3="skip")
    for _ in range(3):
        net.train_step(a)
    s1 = net.score(a)
    assert 0.0 <= s1 <= 1.0 and s1 * 32 == round(s1 * 32)
    state = from_bytes(to_bytes(net.state_dict()))
    other = _net(bn=bn)
    other.load_state_dict(state)
    b = _child(other, op1="conv3", op2="sep5", op3="skip")
    assert other.score(b) == s1
    for (n, p), q in zip(_params(a).items(), _params(b).values()):
        assert torch.equal(p.detach(), q.detach()), n
    # the optimizer's momentum came back too: the next step is the same in both
    net.train_step(a)
    other.train_step(b)
    for (n, p), q in zip(_params(a).items(), _params(b).values()):
        assert torch.allclose(p.detach(), q.detach()), n
