"""The genotype language: every construct the foundation issue lists, each shown by a test.

Each test states a fact that is computed independently of nasty (by hand from
the layer sizes, or by the compiled torch module) and checks nasty against it.
"""
import math
import re

import pytest
import torch

import nasty
from nasty.errors import NastyError
from nasty.genotype import GenotypeError, ParseError, elaborate, format, parse
from nasty.genotype.jsonform import from_json, to_json
from zoo_check import count_macs, count_params


def net(body, cells="", header="net t input 3x32x32 classes 10"):
    return parse(f"{header}\n{cells}\n{body}\n")


def exact(g):
    """The two exactness invariants, plus the text and JSON round trips."""
    c = nasty.cost(g)
    m = nasty.build(g)
    assert c.params == count_params(m)
    assert c.macs == count_macs(m, g.input)
    assert parse(format(g)) == g
    assert from_json(to_json(g)) == g
    out = m.eval()(torch.randn((2,) + tuple(g.input)))
    assert tuple(out.shape[1:]) == tuple(elaborate(g).shape(elaborate(g).output))
    return c


def test_convolutions_square_asymmetric_strided_dilated_grouped_depthwise_separable():
    g = net("stem conv3x3/2 c=16 bn relu\n"
            "stage conv1x7 c=16 conv7x1 c=24\n"             # factorized 7x7 (Inception)
            "stage conv3x3 c=24 d=2\n"                      # dilated, padding keeps the size
            "stage conv3x3 c=32 g=4 bias=0\n"               # grouped (ResNeXt)
            "stage dwconv3x3 relu6 conv1x1 c=64\n"          # depthwise then 1x1 expand (MobileNet)
            "stage sep5x5/2 c=48\n"                         # depthwise-separable (Xception)
            "stage conv3x3 c=8 p=same\n"
            "head gap flatten fc c=classes")
    c = exact(g)
    rows = {l.name: l for l in c.layers}
    # by hand: 3x3/2 conv on 32x32 with padding 1 -> 16x16; 16*3*9 weights + 16 bias
    assert rows["stem.conv"].output == (16, 16, 16) and rows["stem.conv"].params == 16 * 3 * 9 + 16
    assert rows["stage1.conv"].output == (16, 16, 16) and rows["stage1.conv"].macs == 16 * 16 * 16 * 16 * 7
    assert rows["stage2.conv"].output == (24, 16, 16)            # dilation 2, padding 2
    assert rows["stage3.conv"].params == 32 * (24 // 4) * 9      # groups divide the input channels
    assert rows["stage4.dwconv"].params == 32 * 9 + 32
    assert rows["stage5.sep.dw"].output == (64, 8, 8) and rows["stage5.sep.pw"].params == 48 * 64 + 48


def test_pooling_kinds_ceil_mode_and_padding():
    g = net("stem maxpool3x3/2 ceil=1\n"                    # 32 -> ceil(29/2)+1 = 16
            "stage avgpool3x3/2 p=1 cip=0\n"                # 16 -> 8
            "stage maxpool2x2\n"                            # stride defaults to the kernel
            "stage apool o=3\n"
            "head gap flatten dropout p=0.5 fc c=classes", header="net t input 3x33x33 classes 10")
    c = exact(g)
    outs = [l.output for l in c.layers]
    assert outs[:4] == [(3, 16, 16), (3, 8, 8), (3, 4, 4), (3, 3, 3)]
    assert c.layers[0].flops == 3 * 16 * 16 * 9                  # f*f per output, as the notes count


def test_lrn_and_every_activation():
    acts = ["relu", "relu6", "tanh", "sigmoid", "silu", "swish", "hswish", "hsigmoid", "gelu", "lrelu"]
    g = net("stem conv3x3 c=8 lrn size=5 alpha=0.0001 beta=0.75 k=2 " + " ".join(acts) + "\n"
            "head gap flatten fc c=classes")
    exact(g)


def test_residual_with_projection_only_when_shapes_differ():
    cells = ("cell block(c, stride=1):\n"
             "  a   = conv3x3/stride c=c bn relu <- in\n"
             "  b   = conv3x3 c=c bn <- a\n"
             "  out = relu <- add(b, shortcut c=c s=stride <- in)\n")
    g = net("stem conv3x3 c=16\nstage block(16) x2\nstage block(32, 2) x2 rest(stride=1)\n"
            "head gap flatten fc c=classes", cells=cells)
    c = exact(g)
    names = [l.name for l in c.layers]
    assert not any(n.startswith("stage1") and "shortcut" in n for n in names)   # identity: same shape
    assert "stage2.0.out.1.shortcut.conv" in names                             # projection: 16->32, /2
    assert "stage2.1.out.1.shortcut.conv" not in names                         # rest(stride=1): identity


def test_dense_connectivity_concatenates_all_earlier_outputs():
    cells = "cell dense(k):\n  new = bn relu conv3x3 c=k <- in\n  out = cat(in, new)\n"
    g = net("stem conv3x3 c=16\nstage dense(12) x4\nhead gap flatten fc c=classes", cells=cells)
    c = exact(g)
    # layer i sees 16 + 12*i channels: the concatenation of everything before it
    convs = [l for l in c.layers if l.op == "conv"][1:]
    assert [l.params // (12 * 9) for l in convs] == [16, 28, 40, 52]


def test_squeeze_excitation_gate_with_rounding():
    cells = ("cell se(sq):\n"
             "  s   = gap conv1x1 c=sq relu conv1x1 c=cin hsigmoid <- in\n"
             "  out = mul(in, s)\n")
    g = net("stem conv3x3 c=40\nstage se(div(40 // 4, 8))\nhead gap flatten fc c=classes", cells=cells)
    c = exact(g)
    sq = [l for l in c.layers if l.name.endswith("s.conv")][0]
    assert sq.output == (16, 1, 1)      # make_divisible(10, 8) = 16 (never round down > 10%)


def test_droppath_is_identity_at_eval_and_scale_multiplies():
    cells = "cell r:\n  b = conv3x3 c=cin droppath p=0.2 scale v=0.17 <- in\n  out = add(in, b)\n"
    g = net("stem conv3x3 c=8\nstage r\nhead gap flatten fc c=classes", cells=cells)
    exact(g)
    m = nasty.build(g).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(m(x), m(x))


def test_two_input_cells_read_the_two_previous_states():
    cells = ("cell nas(F) inputs 2:\n"
             "  p   = relu conv1x1 c=F bn <- prev\n"
             "  i   = relu conv1x1 c=F bn <- in\n"
             "  c0  = add(sep3x3 c=F <- i, identity <- p)\n"
             "  out = cat(c0, i)\n")
    g = net("stem conv3x3 c=8\nstage conv3x3 c=12\nstage nas(10) x3\nhead gap flatten fc c=classes",
            cells=cells)
    c = exact(g)
    p_convs = [l for l in c.layers if l.name.endswith(".p.conv")]
    # repeat 1: in = the 12-channel stage, prev = the 8-channel stem; repeat 2: prev = the
    # 12-channel stage; repeat 3: prev = the first cell's 20-channel output (conv bias on)
    assert [l.params for l in p_convs] == [8 * 10 + 10, 12 * 10 + 10, 20 * 10 + 10]


def test_width_depth_and_resolution_scaling_rules():
    base = ("net s input 3x224x224 classes 1000\nscale width=1.0 depth=1.0\n"
            "stem conv3x3/2 c=W(32)\nstage conv3x3 c=W(24) x D(3)\nhead gap flatten fc c=classes\n")
    g = parse(base)
    g2 = g.with_header(scale={"width": 1.1, "depth": 1.2}, input=(3, 240, 240))
    c, c2 = exact(g), exact(g2)
    stem2 = c2.layers[0]
    assert stem2.output == (32, 120, 120)               # make_divisible(35.2, 8) = 32
    assert sum(1 for l in c2.layers if l.op == "conv") == 1 + math.ceil(3 * 1.2)
    assert c2.macs > c.macs


def test_norm_defaults_and_bias_defaults_apply_everywhere():
    g = parse("net d input 3x16x16 classes 2\ndefaults bn.eps=0.001 bn.momentum=0.01 conv.bias=0\n"
              "stem conv3x3 c=4 bn relu\nhead gap flatten fc c=classes\n")
    m = nasty.build(g)
    bn = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)][0]
    conv = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)][0]
    assert (bn.eps, bn.momentum, conv.bias) == (0.001, 0.01, None)


def test_format_is_canonical_and_round_trips():
    text = ("net   t input 3x32x32 classes 10   # comment\n"
            "cell b(c, s=1):\n   a = conv3x3 s=s c=c <- in\n   out = add(a, shortcut c=c s=s <- in)\n"
            "stem conv3x3 c=8\nstage b(16, 2) x2 rest(s=1)\nhead gap flatten fc c=classes\n")
    g = parse(text)
    once = format(g)
    assert format(parse(once)) == once
    assert parse(once) == g
    assert "conv3x3/s c=c" in once


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("text, where", [
    ("net x input 3x32\nstem conv3x3 c=4\n", "line 1, col 13"),
    ("net x input 3x32x32\nstem conv3x3 c=\n", "line 2, col 16"),
    ("net x input 3x32x32\nstem conv3x3 c=4 $\n", "line 2, col 18"),
    ("net x input 3x32x32\ncell a:\nstem conv3x3 c=4\n", "line 2"),
    ("net x input 3x32x32\nstage b(1 x2\n", "line 2"),
    ("stem conv3x3 c=4\n", "line 1"),
    ("net x input 3x32x32\nstem cnv3x3 c=4\n", "line 2, col 6"),
])
def test_malformed_text_gives_line_and_column(text, where):
    with pytest.raises(ParseError) as e:
        parse(text)
    msg = str(e.value)
    assert where in msg and "expected" in msg and "\n" not in msg


@pytest.mark.parametrize("body, cells, words", [
    ("stem conv3x3 c=4\nstage add_two\n", "cell add_two:\n  a = conv3x3 c=8 <- in\n  out = add(a, in)\n",
     ["node 'out'", "add needs equal shapes", "8x32x32", "4x32x32"]),
    ("stem conv3x3 c=4\nstage j\n", "cell j:\n  a = conv3x3/2 c=4 <- in\n  out = cat(a, in)\n",
     ["node 'out'", "cat needs equal spatial"]),
    ("stem conv3x3/2 c=4 p=0 conv3x3/2 c=4 p=0 conv3x3/2 c=4 p=0 conv3x3/2 c=4 p=0 conv3x3/2 c=4 p=0\n", "",
     ["shrank below 1"]),
    ("stem conv3x3 c=4 maxpool7x7/8 p=0 conv5x5 c=2 p=0\n", "", ["shrank below 1"]),
    ("stem cnv3x3\n", "", ["unknown op or cell 'cnv3x3'", "did you mean"]),
    ("stem conv3x3 c=4\nstage cyc\n", "cell cyc:\n  a = relu <- b\n  b = relu <- a\n  out = add(a, b)\n",
     ["node 'a'", "cycle: a -> b -> a"]),
    ("stem conv3x3 c=4\nstage u\n", "cell u:\n  a = relu <- in\n  b = relu <- in\n  out = a\n",
     ["node 'b'", "never used"]),
    ("stem conv3x3 c=4\nstage u\n", "cell u:\n  a = relu <- inn\n  out = a\n",
     ["node 'a'", "undefined input 'inn'", "did you mean 'in'"]),
    ("stem conv3x3 c=4 bn eps=x\n", "", ["unknown name 'x'"]),
    ("stem conv3x3 c=4 g=3\n", "", ["groups=3 must divide"]),
    ("stem conv3x3\n", "", ["conv needs c="]),
    ("stem fc c=4\n", "", ["fc needs a flat input"]),
    ("stem conv3x3 c=4 bogus=1\n", "", ["conv has no attribute 'bogus'"]),
])
def test_structural_errors_name_the_node(body, cells, words):
    with pytest.raises(GenotypeError) as e:
        g = net(body + "head gap flatten fc c=classes", cells=cells)
        elaborate(g)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_json_errors_are_clean():
    with pytest.raises(ParseError, match="invalid JSON"):
        from_json("{not json")
    with pytest.raises(ParseError, match="missing key 'layers'"):
        from_json('{"name": "x", "input": [3, 8, 8]}')


@pytest.mark.parametrize("value, expected", [
    ("s > 1", 1), ("s >= 2", 1), ("s < 2", 0), ("s <= 1", 0), ("s == 2", 1), ("s != 2", 0),
    ("s > 1 and c == 8", 1), ("s > 1 and c != 8", 0), ("s == 1 or c == 8", 1), ("s == 1 or c == 9", 0),
    ("not s > 1", 0), ("not s == 1", 1), ("not not 3", 1), ("not 0 and 0", 0), ("not (0 and 0)", 1),
    ("1 + s * 2 > c - 4", 1), ("(s > 1) + (c > 1)", 2), ("(-s < 0) == 1", 1), ("fn == relu", 1), ("fn != relu", 0),
    ("0 and 1 // 0", 0), ("1 or 1 // 0", 1),               # short-circuit, as in Python
    ("true and s", 1), ("false or 0", 0), ("max(s, 3) >= 3 and min(s, 3) < 3", 1),
])
def test_comparison_and_logic_operators_in_values(value, expected):
    from nasty.genotype.expr import evaluate, parse_value
    from nasty.genotype.lexer import Cursor, tokenize_line
    cur = Cursor(tokenize_line(value, 1))
    v = parse_value(cur)
    assert cur.done()
    assert evaluate(v, {"s": 2, "c": 8, "fn": "relu"}) == expected
    assert type(evaluate(v, {"s": 2, "c": 8, "fn": "relu"})) is int     # 1/0, never True/False
    g = net("stage blk(2, 8)\nhead gap flatten fc c=classes",
            cells=f"cell blk(s, c, fn=relu):\n  a = conv1x1 c=c * ({value}) + 1 <- in\n  out = a\n")
    assert parse(format(g)) == g and from_json(to_json(g)) == g
    assert nasty.cost(g).layers[0].output[0] == 8 * expected + 1


def test_comparisons_guard_optional_nodes():
    cells = ("cell blk(c, stride=1):\n"
             "  a   = conv3x3/stride c=c bn relu <- in\n"
             "  sc  = shortcut c=c s=stride <- in if (stride > 1 or cin != c) and not (stride > 1 and c >= 32) else in\n"
             "  out = relu <- add(a, sc) if not (stride > 1 and c >= 32) else a\n")
    body = "stem conv3x3 c=8\nstage blk(8)\nstage blk(16, 2)\nstage blk(32, 2)\nhead gap flatten fc c=classes"
    g = net(body, cells=cells)
    names = [l.name for l in exact(g).layers]
    assert not any(n.startswith("stage1.sc") for n in names)                  # same shape: no projection
    assert "stage2.sc.shortcut.conv" in names and "stage2.out.add" in names   # projected residual
    assert "stage3.out.add" not in names and not any(n.startswith("stage3.sc") for n in names)  # none at all
    # a projection guarded only by the shape would be built in stage3 and read by nothing: refused
    dead = net(body, cells=cells.replace("(stride > 1 or cin != c) and not (stride > 1 and c >= 32)",
                                         "stride > 1 or cin != c"))
    with pytest.raises(GenotypeError, match="stage3 .cell blk. node 'sc': the node is built but its value reaches "
                                            "nothing here: 'out' reads it but is skipped"):
        nasty.cost(dead)


@pytest.mark.parametrize("value, says", [
    ("a < b < c", "comparisons do not chain"), ("a == b != c", "comparisons do not chain"),
    ("x<-1", "expected"), ("a + not b", "expected a number, a name or '('"), ("and", "expected"),
    ("foo(1)", "unknown function 'foo' (known: W, D, div"), ("a ! b", "unexpected character"),
])
def test_malformed_comparisons_are_parse_errors(value, says):
    with pytest.raises(ParseError, match=re.escape(says)):
        net(f"stem conv3x3 c={value}\nhead gap flatten fc c=classes")


@pytest.mark.parametrize("cells", [
    "cell and:\n  out = relu <- in\n", "cell a(not):\n  out = relu <- in\n", "cell a:\n  or = relu <- in\n  out = or\n",
])
def test_operator_words_are_not_names(cells):
    with pytest.raises(NastyError):
        net("stage a\nhead gap flatten fc c=classes", cells=cells)


def test_no_eval_in_values():
    # a value is arithmetic over known names only; anything else is a parse error, never executed
    with pytest.raises((ParseError, GenotypeError)):
        net("stem conv3x3 c=__import__('os').getpid()")


# ------------------------------------------------------------------ compiled forms
def _small():
    return net("stem conv3x3/2 c=8 bn relu\nstage sep3x3 c=16 bn relu6\nhead gap flatten fc c=classes",
               cells="")


def test_compiled_forward_is_straight_line_code():
    m = nasty.build(_small())
    code = m.code
    assert "for " not in code and "if " not in code          # no interpreter loop in forward


def test_torch_compile_export_and_onnx(tmp_path):
    m = nasty.build(_small()).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = m(x)
    ep = torch.export.export(m, (x,))
    assert torch.allclose(ep.module()(x), ref, atol=1e-5)
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    torch.onnx.export(m, (x,), str(path), dynamo=True)
    onnx.checker.check_model(onnx.load(str(path)))


@pytest.mark.slow
def test_torch_compile_matches_eager():
    m = nasty.build(_small()).eval()
    x = torch.randn(2, 3, 32, 32)
    cm = torch.compile(m)
    assert torch.allclose(cm(x), m(x), atol=1e-5)
