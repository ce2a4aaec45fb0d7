"""PNASNet-5 (pnasnet.nasty): pnasnet5large equals timm's (params, MACs, logits)."""
import pytest

import nasty
from nasty.genotype import format, parse
from nasty.genotype.jsonform import from_json, to_json
from test_zoo_nasnet import SMALL, check_logits_at
from zoo_check import check_against_reference
from zoo_notes import printed


@pytest.mark.slow
def test_pnasnet5large_params_and_macs_equal_timm():
    c, _ = check_against_reference("pnasnet5large", logits=False)
    assert (c.params, c.macs) == (86_057_668, 24_937_395_792)
    # The course notes' EfficientNet table prints PNASNet at 86M params and 23B FLOPs
    # (mult-adds). The params agree; the layer sizes give 24.94G mult-adds (the count above,
    # equal to timm's FlopCounterMode count), so the printed 23B is a slip of that table.
    assert printed(c.params / 1e6, "86")
    assert not printed(c.macs / 1e9, "23") and printed(c.macs / 1e9, "25")


@pytest.mark.slow
def test_pnasnet5large_logits_equal_timm():
    check_logits_at("pnasnet5large", SMALL)


def test_pnasnet_one_cell_strided_for_reduction():
    """One cell everywhere: stride 2 in the reduction positions, where the identity of block 4
    becomes relu conv1x1/2 bn (TF's strided "none" op); elsewhere block 4 adds h_i itself."""
    g = nasty.zoo.get("pnasnet5large")
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    c = nasty.cost(g)
    convs = {l.name for l in c.layers if l.op == "conv"}
    assert "stage2.out.r4.out.conv" in convs            # timm cell_4 (reduction)
    assert not any(n.startswith("stage1.1.out.r4") for n in convs)
    out = {l.name: l.output for l in c.layers}
    assert out["stage2.out.out.cat"] == (5 * 432, 21, 21)
    assert out["stage5.2.out.out.cat"] == (4320, 11, 11)
    # the first stem cell's max pool on the 96-channel stem conv is followed by conv1x1 bn
    assert out["stem2.out.b0.1.shortcut.conv"] == (54, 83, 83)
