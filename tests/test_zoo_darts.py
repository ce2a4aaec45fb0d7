"""DARTS-V2 (darts.nasty): the ImageNet mobile and CIFAR-10 networks of the DARTS code.

No reference implementation is installed, so the paper's figures are checked within their
rounding (Liu et al., ICLR 2019: its CIFAR-10 and ImageNet tables), and the skeleton against the authors'
cnn/model.py as read: NetworkImageNet (stem0 conv3x3/2 C/2 bn relu conv3x3/2 C bn, stem1 relu
conv3x3/2 C bn, 14 cells from C=48, a FactorizedReduce on the first cell's h_{i-2}) and
NetworkCIFAR (stem conv3x3 3C bn read as both inputs of the first cell, 20 cells from C=36);
reductions at cells L//3 and 2L//3; auxiliary heads (training only) left out, as the code's
count_parameters_in_MB leaves them out.
"""
import torch

import nasty
from nasty.genotype import elaborate, format, parse
from nasty.genotype.jsonform import from_json, to_json
from zoo_check import check_self_consistent
from zoo_notes import printed


def test_darts_v2_imagenet_paper_figures():
    g = nasty.zoo.get("darts_v2")
    c = nasty.cost(g)
    assert (c.params, c.macs) == (4_718_752, 529_911_552)
    assert printed(c.params / 1e6, "4.7")
    # The paper prints 574M mult-adds; the layer sizes of the authors' code give 530M (conv and
    # fc multiply-adds, the count FlopCounterMode makes). The gap is known: quark0/darts issue
    # #46 reports 523M-545M with three different counters. Counting BN, ReLU, adds and pooling
    # as well gives 546M, still short of 574M.
    assert not printed(c.macs / 1e6, "574") and printed(c.macs / 1e6, "530")
    assert printed(c.flops / 1e6, "546")
    assert c.macs < 600e6                       # the paper's mobile setting: under 600M
    with torch.device("meta"):
        check_self_consistent(g)


def test_darts_v2_cifar10_paper_figures():
    g = nasty.zoo.get("darts_v2_cifar10")
    c = nasty.cost(g)
    assert c.params == 3_349_342
    assert printed(c.params / 1e6, "3.3")       # DARTS (second order): 3.3M
    with torch.device("meta"):
        check_self_consistent(g)


def _step(prog, name):
    return next(s for s in prog.steps if s.name == name)


def test_darts_skeletons():
    imagenet = elaborate(nasty.zoo.get("darts_v2"))
    out = {s.name: s.out for s in imagenet.steps}
    assert out["stem.out.conv"] == (48, 56, 56) and out["stem2.out.bn"] == (48, 28, 28)
    # the first cell fits h_{i-2} (stem0, 56x56) by a factorized reduction to 28x28
    assert out["stage1.0.fr.out.bn"] == (48, 28, 28)
    cats = [s.out for s in imagenet.steps if s.name.endswith(".out.out.cat")]
    assert len(cats) == 14 and cats[-1] == (4 * 192, 7, 7)
    assert [i for i, s in enumerate(cats) if s[1] < cats[max(i - 1, 0)][1]] == [4, 9]
    cifar = elaborate(nasty.zoo.get("darts_v2_cifar10"))
    # the first CIFAR cell reads the stem as both h_{i-1} and h_{i-2}
    assert _step(cifar, "stage1.0.hp.out.relu").inputs == _step(cifar, "stage1.0.cur.out.relu").inputs
    cats = [s.out for s in cifar.steps if s.name.endswith(".out.out.cat")]
    assert len(cats) == 20 and cats[-1] == (4 * 144, 8, 8)
    assert [i for i, s in enumerate(cats) if s[1] < cats[max(i - 1, 0)][1]] == [6, 13]
    for name in ("darts_v2", "darts_v2_cifar10"):
        g = nasty.zoo.get(name)
        assert parse(format(g)) == g and from_json(to_json(g)) == g
