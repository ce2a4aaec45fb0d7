"""ShuffleNet V2 (shufflenet_v2.nasty): torchvision's x0.5 / x1.0 / x1.5 / x2.0 from one genotype
(the `let` table of stage widths), and the two ops it needs: `slice` (channels start..end-1,
ShuffleNet's channel split) and `shuffle g=` (channel shuffle)."""
import pytest
import torch

import nasty
from nasty.genotype import GenotypeError, elaborate, format, parse
from nasty.genotype.jsonform import from_json, to_json
from zoo_check import check_against_reference, check_self_consistent, check_logits
from zoo_settings import check_settings

NAMES = ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"]


@pytest.mark.parametrize("name", NAMES)
def test_equals_torchvision(name):
    check_against_reference(name, logits=False)
    assert check_settings(name) == [(1e-5, 0.1)]
    if name in ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0"):
        assert check_logits(name) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])
def test_wide_logits_equal_torchvision(name):
    assert check_logits(name) <= 1e-4


NET = """\
net t input 4x6x6 classes 3
cell unit:
  l   = slice end=cin // 2 <- in
  r   = slice start=cin // 2 conv1x1 c=cin // 2 relu <- in
  out = shuffle g=2 <- cat(l, r)
stem  conv3x3 c=8
stage unit x2
head  gap flatten fc c=classes
"""


def test_slice_and_shuffle_ops():
    g = parse(NET)
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    prog = elaborate(g)
    sl = [s for s in prog.steps if s.kind == "slice"]
    assert [(s.attrs["start"], s.attrs["end"], s.out) for s in sl[:2]] == [(0, 4, (4, 6, 6)), (4, 8, (4, 6, 6))]
    c = check_self_consistent(g)
    assert all(l.params == l.macs == l.flops == 0 for l in c.layers if l.op in ("slice", "shuffle"))
    # the compiled shuffle is torchvision's channel_shuffle; the slices are the chunk halves
    from torchvision.models.shufflenetv2 import channel_shuffle
    m = nasty.build(g).eval()
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(m.get_submodule("stage1.0.out.shuffle")(x), channel_shuffle(x, 2))
    assert torch.equal(m.get_submodule("stage1.0.l.slice")(x), x.chunk(2, dim=1)[0])


def test_slice_and_shuffle_errors():
    with pytest.raises(GenotypeError, match="non-empty range of the input's 8 channels"):
        elaborate(parse(NET.replace("slice end=cin // 2", "slice end=cin + 1")))
    with pytest.raises(GenotypeError, match="shuffle g=3 must divide the input's 8 channels"):
        elaborate(parse(NET.replace("shuffle g=2", "shuffle g=3")))
    with pytest.raises(GenotypeError, match="shuffle needs g="):
        parse(NET.replace("shuffle g=2", "shuffle"))
