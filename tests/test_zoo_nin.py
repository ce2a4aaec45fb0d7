"""Network in Network (nin.nasty): no reference implementation; checked against the course
notes' figures and the layer table of the authors' Caffe ImageNet model."""
import pytest

import nasty
from nasty.genotype import format, parse
from zoo_check import check_self_consistent
from zoo_notes import check_round_trips, printed, table


def test_nin_matches_the_notes_and_the_caffe_model():
    g = nasty.zoo.get("nin")
    c = check_self_consistent(g)
    convs = table(c, ("conv",))
    # Twelve convs: four mlpconv layers of a KxK conv and two 1x1 "cccp" convs each.
    assert [(l.output[0], l.output[1]) for l in convs] == (
        [(96, 54)] * 3 + [(256, 27)] * 3 + [(384, 13)] * 3 + [(1024, 6), (1024, 6), (1000, 6)])
    assert [l.output[1] for l in table(c, ("maxpool",))] == [27, 13, 6]     # Caffe ceil-mode pools
    assert c.layers[-1].output == (1000,)
    # By hand: 96*(11*11*3+1) + 2*96*97 + 256*(25*96+1) + 2*256*257 + 384*(9*256+1) + 2*384*385
    #          + 1024*(9*384+1) + 1024*1025 + 1000*1025
    assert c.params == 7_595_176
    # The notes: "7.5 Million (29 Megabytes)". 7.595M is 7.6M rounded, so the notes truncate;
    # 29 MB is the fp32 size in MiB (28.97 MiB; 30.4 MB in powers of ten).
    assert printed(c.params / 1e6, "7.5") and round(c.params / 1e6, 1) == 7.6
    assert round(4 * c.params / 2**20) == 29
    assert nasty.zoo.entry("nin").top1 == 60.8                      # 100 - 39.2% top-1 error
    assert parse(format(g)) == g


@pytest.mark.parametrize("name", ["nin"])
def test_round_trips(name):
    check_round_trips(name)
