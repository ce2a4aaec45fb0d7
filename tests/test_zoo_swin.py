"""Swin-T/S/B (swin.nasty) and Swin-V2-T/S/B (swin_v2.nasty): two genotypes with `let` tables, each
equal to torchvision 0.29's swin_*: params and MACs at the native 224x224 (meta device), eval logits
within 1e-4 after port_weights under both randomisations of zoo_check, and the stochastic-depth rate
of every block. At 224 Swin-V2's 8x8 windows need torchvision's padding (28 -> 32, 14 -> 16, 7 -> 8)
and its last stage no shift; at 64x64 (logits of the larger ones, to keep CI fast) Swin's 7x7
windows pad 16 -> 21, 8 -> 14, 4 -> 7 and 2 -> 7 and mask shifted windows only where one window
does not cover the map: padding, shifts and masks are all exercised."""
import pytest
import torch

import nasty
from nasty.layers import DropPath
from zoo_check import check_against_reference, check_logits

V1 = ["swin_t", "swin_s", "swin_b"]
V2 = ["swin_v2_t", "swin_v2_s", "swin_v2_b"]
# torchvision's own figures for its weights: num_params; GFLOPS (V1 at 224; V2's weights run at 256)
TORCHVISION = {"swin_t": (28_288_354, 4.491), "swin_s": (49_606_258, 8.741), "swin_b": (87_768_224, 15.431),
               "swin_v2_t": (28_351_570, 5.94), "swin_v2_s": (49_737_442, 11.546), "swin_v2_b": (87_930_848, 20.325)}


@pytest.mark.parametrize("name", V1 + V2)
def test_counts_equal_torchvision_at_224(name):
    c, _ = check_against_reference(name, logits=False)
    params, gflops = TORCHVISION[name]
    assert c.params == params
    if name in V1:
        assert round(c.macs / 1e9, 3) == gflops


@pytest.mark.parametrize("name", V2)
def test_v2_at_256_counts_torchvision_s_published_gflops(name):
    g = nasty.zoo.get(name).with_header(input=(3, 256, 256))
    assert round(nasty.cost(g).macs / 1e9, 3) == round(TORCHVISION[name][1], 3)


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_tiny_logits_equal_torchvision_at_224(name):
    assert check_logits(name) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swin_s", "swin_b", "swin_v2_s", "swin_v2_b"])
def test_larger_logits_equal_torchvision_at_64(name):
    assert check_logits(name, input=(3, 64, 64)) <= 1e-4


@pytest.mark.parametrize("name", V1 + V2)
def test_stochastic_depth_rates_equal_torchvision(name):
    with torch.device("meta"):
        ref, ours = nasty.zoo.reference(name), nasty.build(nasty.zoo.get(name))
    ref_rates = [b.stochastic_depth.p for b in ref.modules() if hasattr(b, "stochastic_depth")]
    ours_rates = [m.p for m in ours.modules() if isinstance(m, DropPath)]
    assert ours_rates == [p for p in ref_rates for _ in range(2)]      # one per residual branch
    assert ref_rates[0] == 0 and len(ref_rates) == sum(dict(nasty.zoo.get(name).lets)[k] for k in ("n1", "n2", "n3", "n4"))


def test_shifts_alternate_and_stop_where_one_window_covers_the_map():
    """Every second block shifts its windows by half a window and masks attention across the
    seams, except in the last stage at 224: one window covers its 7x7 map (7x7 windows; 8x8
    windows on the map padded to 8x8), so torchvision shifts nothing there."""
    from nasty.genotype import elaborate
    for name in ("swin_t", "swin_v2_t"):
        steps = elaborate(nasty.zoo.get(name)).steps
        windows = [st for st in steps if st.kind == "window"]
        half = windows[0].attrs["s"] // 2
        assert [w.attrs["shift"] for w in windows] == [0, half] * 6         # 12 blocks: 2, 2, 6, 2
        masked = [st.name.split(".attention")[0] for st in steps if st.kind == "shift_mask"]
        assert masked == ["stage1.1.a.1", "stage3.a.1", "stage5.0.a.1", "stage5.2.a.1", "stage5.4.a.1"], (name, masked)


def test_one_genotype_per_version():
    for names in (V1, V2):
        first = nasty.zoo.get(names[0])
        for name in names[1:]:
            g = nasty.zoo.get(name)
            assert g.cells == first.cells and g.layers == first.layers
