"""GoogLeNet: `googlenet` equals torchvision's; `googlenet_paper` is the paper's network, checked
module by module against the paper's Table 1 as the course notes reproduce it."""
import pytest
import torch

import nasty
from nasty.genotype import format, parse
from zoo_check import check_against_reference, check_self_consistent, check_logits
from zoo_notes import printed

K, M = 1024, 1e6      # the table's params are in units of 1024 weights (see below), its ops in 10^6 MACs

# Table 1 of Szegedy et al. 2014 as the notes print it (001_*.txt line 3142, 004_*.txt line 367):
# module -> (output HxWxC, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, params, ops).
TABLE1 = {
    "3a": ((28, 28, 256), 64, 96, 128, 16, 32, 32, "159", "128"),
    "3b": ((28, 28, 480), 128, 128, 192, 32, 96, 64, "380", "304"),
    "4a": ((14, 14, 512), 192, 96, 208, 16, 48, 64, "364", "73"),
    "4b": ((14, 14, 512), 160, 112, 224, 24, 64, 64, "437", "88"),
    "4c": ((14, 14, 512), 128, 128, 256, 24, 64, 64, "463", "100"),
    "4d": ((14, 14, 528), 112, 144, 288, 32, 64, 64, "580", "119"),
    "4e": ((14, 14, 832), 256, 160, 320, 32, 128, 128, "840", "170"),
    "5a": ((7, 7, 832), 256, 160, 320, 32, 128, 128, "1072", "54"),
    "5b": ((7, 7, 1024), 384, 192, 384, 48, 128, 128, "1388", "71"),
}

# How the table counts, read off the rows it gets right: "params" are weights without biases in
# units of 1024 (the linear layer's 1024x1000 weights are "1000K", the 3x3 stage's 114,688 weights
# "112K", 3a's 163,328 weights "159K"), and "ops" are multiply-adds in millions (3a: 128.05M).
# With those units every ops figure agrees with the layer sizes the same table gives, except 5a's;
# the params figures of 3b-5b do not. The layer sizes win; the slips, printed minus computed:
PARAM_SLIPS_K = {"3b": 1.0, "4a": -2.75, "4b": -1.0, "4c": -34.5, "4d": -10.5, "4e": -7.0,
                 "5a": 54.0, "5b": -21.0}
# 5a: 51.08M computed, 54M printed. The printed 54M is the printed (wrong) 1072K times 7x7 (53.8M),
# so the row is consistent with its own params slip. (4a's 73.6M is printed truncated, "73".)
OPS_SLIPS_M = {"5a": 2.92}


def modules(name):
    """Per-Inception-module (params, weights without biases, MACs, output shape), in network order."""
    g = nasty.zoo.get(name)
    no_bias = g.with_header(defaults={**dict(g.defaults), "conv.bias": 0, "fc.bias": 0})
    out = {}
    for with_bias, without in zip(nasty.cost(g).layers, nasty.cost(no_bias).layers):
        assert with_bias.name == without.name
        parts = with_bias.name.split(".")
        if not parts[1].startswith("inception"):
            continue
        p, w, m, _ = out.get(parts[0] + "." + parts[1], (0, 0, 0, None))
        out[parts[0] + "." + parts[1]] = (p + with_bias.params, w + without.params,
                                          m + with_bias.macs, with_bias.output)   # last step: the cat
    assert len(out) == 9
    return dict(zip(TABLE1, out.values()))


def test_googlenet_counts_equal_torchvision():
    check_against_reference("googlenet", logits=False)
    # torchvision turns transform_input on only when it loads pretrained weights.
    with torch.device("meta"):
        assert nasty.zoo.reference("googlenet").transform_input is False
    g = nasty.zoo.get("googlenet")
    assert parse(format(g)) == g


@pytest.mark.slow
def test_googlenet_logits_equal_torchvision():
    check_logits("googlenet")


def test_googlenet_paper_is_exact_and_round_trips():
    g = nasty.zoo.get("googlenet_paper")
    check_self_consistent(g)
    assert parse(format(g)) == g


def test_googlenet_paper_modules_match_table1():
    computed = modules("googlenet_paper")
    for mod, (hwc, *_filters, params_k, ops_m) in TABLE1.items():
        p, w, macs, shape = computed[mod]
        assert shape == (hwc[2], hwc[0], hwc[1]), mod
        assert p > w       # the paper's network has biases; the table leaves them out
        if mod in PARAM_SLIPS_K:
            assert not printed(w / K, params_k), (mod, w / K, params_k)
            assert int(params_k) - w / K == pytest.approx(PARAM_SLIPS_K[mod]), (mod, w / K)
        else:
            assert printed(w / K, params_k), (mod, w / K, params_k)
        if mod in OPS_SLIPS_M:
            assert not printed(macs / M, ops_m), (mod, macs / M, ops_m)
            assert int(ops_m) - macs / M == pytest.approx(OPS_SLIPS_M[mod], abs=0.005), (mod, macs / M)
        else:
            assert printed(macs / M, ops_m), (mod, macs / M, ops_m)
    # 5a's printed ops are its printed params over the 7x7 grid (in the table's own units).
    assert printed(int(TABLE1["5a"][-2]) * K * 7 * 7 / M, TABLE1["5a"][-1])
    # Each module's weights, by hand from its filter counts (3x3 and 5x5 kernels, as the paper has).
    c_in = 192                                   # the stem's output, 28x28x192
    for mod, (hwc, c1, c3r, c3, c5r, c5, pp, *_) in TABLE1.items():
        weights = c_in * (c1 + c3r + c5r + pp) + 9 * c3r * c3 + 25 * c5r * c5
        assert computed[mod][1] == weights, mod
        assert computed[mod][2] == weights * hwc[0] * hwc[1], mod
        c_in = hwc[2]


def test_googlenet_paper_other_rows_and_totals():
    g = nasty.zoo.get("googlenet_paper")
    no_bias = nasty.cost(g.with_header(defaults={**dict(g.defaults), "conv.bias": 0, "fc.bias": 0}))
    convs = [l for l in no_bias.layers if l.op == "conv" and l.name.startswith("stem")]
    fc = [l for l in no_bias.layers if l.op == "fc"]
    assert [l.output for l in convs] == [(64, 112, 112), (64, 56, 56), (192, 56, 56)]
    # conv 7x7/2 row: printed 2.7K params and 34M ops, self-consistent (2.7K * 112*112 = 34.7M) but
    # not with the layer: 7*7*3*64 = 9,408 weights (9.19K) and 118.0M mult-adds. The layer sizes win.
    assert convs[0].params == 9408 and not printed(convs[0].params / K, "2.7")
    assert convs[0].macs == 118_013_952 and not printed(convs[0].macs / M, "34")
    # conv 3x3/1 row, depth 2 (the 1x1 reduce to 64 and the 3x3 to 192): 112K, 360M.
    stage = convs[1].params + convs[2].params
    assert stage == 114_688 and printed(stage / K, "112")
    assert printed((convs[1].macs + convs[2].macs) / M, "360")
    # linear: 1000K params (1,024,000 weights), 1M ops.
    assert fc[0].params == 1_024_000 and printed(fc[0].params / K, "1000") and printed(fc[0].macs / M, "1")
    # Totals. The printed columns sum to 6,797.7K params and 1,502M ops: the notes' comparison
    # table's "GoogleNet 6.8 [M params] 1.5 [GFLOPs]" (001_*.txt line 3686) and the paper's
    # "1.5 billion multiply-adds". The layer sizes give 6,990,272 weights (6,998,552 params with
    # biases) and 1,582.7M mult-adds: the difference is the slips above, mostly conv1's 34M vs 118M.
    printed_params = 2.7 + 112 + sum(int(r[-2]) for r in TABLE1.values()) + 1000
    printed_ops = 34 + 360 + sum(int(r[-1]) for r in TABLE1.values()) + 1
    assert printed_params == pytest.approx(6797.7) and printed(printed_params / 1000, "6.8")
    assert printed_ops == 1502 and printed(printed_ops / 1000, "1.5")
    full = nasty.cost(g)
    assert no_bias.params == 6_990_272 and full.params == 6_998_552
    assert full.macs == 1_582_671_872 and printed(full.macs / 1e9, "1.58")


def test_googlenet_is_the_paper_net_with_torchvisions_changes():
    """torchvision's only structural changes: BN for biases, 3x3 for the 5x5s, a 2x2 pool before 5a."""
    tv, paper = nasty.cost("googlenet"), nasty.cost("googlenet_paper")
    bn = sum(l.params for l in tv.layers if l.op == "bn")
    conv_bias = sum(l.output[0] for l in paper.layers if l.op == "conv")
    five = sum(c5r * c5 for _, _, _, _, c5r, c5, *_ in TABLE1.values())
    assert paper.params - conv_bias + bn - (25 - 9) * five == tv.params
