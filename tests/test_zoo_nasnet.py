"""NASNet-A (nasnet.nasty): nasnetalarge equals timm's; nasnet_mobile matches the paper's figures.

Also the language feature the family needs: `prev=` on a two-input cell call says where its
h_{i-2} comes from, a state offset on a body line (timm's NASNet feeds the cell after a
reduction cell the state from before the reduction cell's input: `prev=-3`), or a node inside
another cell (`out = nasnet_a_normal(F, prev=h) <- x`: the five-block cell proper, called on
inputs its wrapper has fitted).
"""
import pytest
import torch

import nasty
from nasty.genotype import GenotypeError, elaborate, format, parse
from nasty.genotype.jsonform import from_json, to_json
from zoo_check import check_against_reference, check_self_consistent, check_logits, count_macs, count_params, randomize_norms
from zoo_notes import printed

CELL = ("cell nas(F) inputs 2:\n"
        "  p   = relu conv1x1 c=F bn <- prev\n"
        "  i   = relu conv1x1 c=F bn <- in\n"
        "  out = add(i, p)\n")


def _net(body, cells=CELL):
    return parse(f"net t input 3x16x16 classes 10\n{cells}\n{body}\nhead gap flatten fc c=classes\n")


def _prev_conv_inputs(g):
    """Input channels of every cell's `p` conv, i.e. which state each cell read as prev."""
    return [l.params // 5 - 1 for l in nasty.cost(g).layers if l.name.endswith(".p.conv")]


def test_prev_offset_on_a_body_line_picks_the_state():
    # states: input(3), stem(8), stage1(12), stage2(16); the cell's in is always stage2 (16)
    base = "stem conv3x3 c=8\nstage conv3x3 c=12\nstage conv3x3 c=16\n"
    assert _prev_conv_inputs(_net(base + "stage nas(5)")) == [12]            # default: -2
    assert _prev_conv_inputs(_net(base + "stage nas(5, prev=-3)")) == [8]
    assert _prev_conv_inputs(_net(base + "stage nas(5, prev=-1)")) == [16]   # the line's own input
    assert _prev_conv_inputs(_net(base + "stage nas(5, prev=-4)")) == [3]    # the network input
    # with repeats, rest() may reset it: repeat 1 reads the stem (-3), then the usual -2
    g = _net(base + "stage nas(5, prev=-3) x3 rest(prev=-2)")
    assert _prev_conv_inputs(g) == [8, 16, 5]
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    c = nasty.cost(g)
    m = nasty.build(g)
    assert c.params == count_params(m) and c.macs == count_macs(m, g.input)


def test_prev_offset_errors():
    base = "stem conv3x3 c=8\n"
    with pytest.raises(GenotypeError, match=r"prev=-3 of cell nas: 2 state\(s\) so far"):
        nasty.cost(_net(base + "stage nas(5, prev=-3)"))
    with pytest.raises(GenotypeError, match=r"prev=0 of cell nas"):
        nasty.cost(_net(base + "stage nas(5, prev=0)"))
    with pytest.raises(GenotypeError, match="has no parameter 'prev'"):   # one-input cells have no prev
        _net(base + "stage one(prev=-2)", cells="cell one:\n  out = relu <- in\n")
    with pytest.raises(GenotypeError, match="input name"):
        _net(base + "stage one(3)", cells="cell one(prev):\n  out = relu <- in\n")


BLOCKS = ("cell blocks(F) inputs 2:\n"
          "  b0  = add(sep3x3 c=F <- in, prev)\n"
          "  out = cat(prev, b0)\n")
WRAPPED = (CELL.replace("nas(F)", "fit(F)").replace("out = add(i, p)", "out = blocks(F, prev=p) <- i")
           + BLOCKS)
INLINED = ("cell fit(F) inputs 2:\n"
           "  p   = relu conv1x1 c=F bn <- prev\n"
           "  i   = relu conv1x1 c=F bn <- in\n"
           "  b0  = add(sep3x3 c=F <- i, p)\n"
           "  out = cat(p, b0)\n")


def test_two_input_cell_inside_a_cell_reads_prev_from_a_node():
    body = "stem conv3x3 c=8\nstage conv3x3 c=12\nstage fit(6) x2"
    wrapped, inlined = _net(body, WRAPPED), _net(body, INLINED)
    assert parse(format(wrapped)) == wrapped and from_json(to_json(wrapped)) == wrapped
    cw, ci = nasty.cost(wrapped), nasty.cost(inlined)
    assert (cw.params, cw.macs, cw.flops) == (ci.params, ci.macs, ci.flops)
    # the same network: the inlined build takes the wrapped build's weights and agrees exactly
    torch.manual_seed(0)
    mw, mi = randomize_norms(nasty.build(wrapped)).eval(), nasty.build(inlined).eval()
    nasty.port_weights(mw, mi)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(mw(x), mi(x))


def test_two_input_cell_inside_a_cell_errors():
    body = "stem conv3x3 c=8\nstage fit(6)"
    with pytest.raises(GenotypeError, match=r"two-input cell blocks used inside a cell needs prev=NODE"):
        _net(body, WRAPPED.replace("blocks(F, prev=p)", "blocks(F)"))
    with pytest.raises(GenotypeError, match="undefined input 'q'"):
        _net(body, WRAPPED.replace("prev=p)", "prev=q)"))
    with pytest.raises(GenotypeError, match="names an input or a node"):
        _net(body, WRAPPED.replace("prev=p)", "prev=-2)"))
    # a node read only through prev= counts as used; one read by nothing is still an error
    unused = WRAPPED.replace("  i   =", "  u   = relu <- in\n  i   =")
    with pytest.raises(GenotypeError, match="node 'u' is never used"):
        _net(body, unused)


# ---------------------------------------------------------------- the zoo entries
SMALL = (3, 43, 43)   # feature maps 21, 11, 6, 3, 2: odd, odd, even, odd as at 331 (165, 83, 42, 21)


def check_logits_at(name, input_shape, atol=1e-4):
    """Eval logits of the zoo build equal the reference's (norms randomised) at `input_shape`.

    The references run at any size, and the sizes above keep 331's parity pattern, so the
    TF-'SAME' padding takes both its symmetric and its asymmetric (extra pixel bottom/right)
    form and the factorized reduction shifts an odd-sized map, as at the native resolution.
    """
    return check_logits(name, atol=atol, input=input_shape)


@pytest.mark.slow
def test_nasnetalarge_params_and_macs_equal_timm():
    c, _ = check_against_reference("nasnetalarge", logits=False)
    assert (c.params, c.macs) == (88_753_150, 23_783_414_658)
    # the course notes' EfficientNet table: NASNet-A 89M params, 24B FLOPs (mult-adds)
    assert printed(c.params / 1e6, "89") and printed(c.macs / 1e9, "24")


@pytest.mark.slow
def test_nasnetalarge_logits_equal_timm():
    check_logits_at("nasnetalarge", SMALL)


def _reads(name, step):
    """The step whose output the named step of zoo entry `name` reads."""
    prog = elaborate(nasty.zoo.get(name))
    st = next(s for s in prog.steps if s.name == step)
    return prog.steps[st.inputs[0]].name


def test_nasnet_wiring_after_a_reduction_cell():
    """The cell after a reduction cell fits h_{i-2} by a factorized reduction. timm's Large reads
    it from before the reduction cell's input (TF skip_reduction_layer_input=1: prev=-3): the
    first cell of stage 3 (timm's cell_6) reads cell_4; the Mobile reads the reduction cell's
    input (skip_reduction_layer_input=0: prev=-2)."""
    assert _reads("nasnetalarge", "stage3.0.fr.a.relu") == "stage1.4.out.out.cat"    # cell_4
    assert _reads("nasnetalarge", "stage5.0.fr.a.relu") == "stage3.4.out.out.cat"    # cell_10
    assert _reads("nasnetalarge", "stage3.1.hp.out.relu") == "stage2.out.out.cat"        # reduction 0
    assert _reads("nasnet_mobile", "stage3.0.fr.a.relu") == "stage1.3.out.out.cat"   # its input
    layers = {l.name: l for l in nasty.cost("nasnetalarge").layers}
    F = 168
    assert layers["stage3.0.fr.p1.conv"].params == 6 * F * F                         # 1008 -> 168
    assert layers["stage3.0.fr.p1.conv"].output == (F, 21, 21)


def test_nasnet_mobile_paper_figures():
    """Zoph et al. 2018, mobile setting (and the course notes' MobileNetV2 table): NASNet-A (4 @ 1056)
    at 224x224 has 5.3M parameters and 564M mult-adds."""
    g = nasty.zoo.get("nasnet_mobile")
    c = nasty.cost(g)
    assert (c.params, c.macs) == (5_289_978, 563_638_816)
    assert printed(c.params / 1e6, "5.3") and printed(c.macs / 1e6, "564")
    assert c.layers[-1].output == (1000,)
    assert [l.output for l in c.layers if l.op == "cat"][-1] == (1056, 7, 7)     # 4 @ 1056
    with torch.device("meta"):
        check_self_consistent(g)


def test_nasnet_cells_round_trip_and_are_reusable():
    g = nasty.zoo.get("nasnetalarge")
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    for name in ("nasnet_a_normal", "nasnet_a_reduction"):
        cell = g.cell(name)
        assert cell.inputs == 2 and [p.name for p in cell.params] == ["F"]
        assert [n.name for n in cell.nodes] == ["b0", "b1", "b2", "b3", "b4", "out"]
