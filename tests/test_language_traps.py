"""The traps a new user fell into (issue 11, section 3), each closed and proven here."""
import pickle

import pytest
import torch

import nasty
from nasty.cli import main
from nasty.genotype import GenotypeError, ParseError, elaborate, parse
from nasty.genotype.jsonform import from_json, to_json


def error_of(text) -> str:
    with pytest.raises((GenotypeError, ParseError)) as e:
        elaborate(parse(text))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ a kernel given twice
@pytest.mark.parametrize("chain", ["conv3x3 c=8 k=5", "conv3x3 c=8 kh=5", "conv c=8 k=3 k=5",
                                   "conv c=8 k=3 kw=5", "maxpool3x3 k=2", "sep5x5 c=4 k=3"])
def test_a_kernel_given_twice_is_refused(chain):
    with pytest.raises(ParseError, match="given twice"):
        parse(f"net t input 3x16x16\nstem {chain}\n")


def test_a_kernel_given_twice_is_refused_in_json_too():
    g = parse("net t input 3x16x16\nstem conv3x3 c=8\n")
    doc = to_json(g).replace('"conv3x3 c=8"', '"conv3x3 c=8 k=5"')
    with pytest.raises(ParseError, match="k= given twice: the kernel is already 3x3"):
        from_json(doc)


def test_k_alone_still_sets_both_sides():
    g = parse("net t input 3x16x16\nstem conv c=8 k=5\n")
    assert nasty.cost(g).params == 8 * 3 * 25 + 8


# ------------------------------------------------------------------ if guards inside cat(...)
CAT = """net t input 8x8x8
let wide={wide}
cell inception:
  a   = conv1x1 c=4 <- in
  b   = conv3x3 c=6 <- in  if wide
  c   = maxpool3x3 s=1 p=1 conv1x1 c=2 <- in
  out = cat(a, b, c)
stage inception
"""


def test_a_member_of_cat_skipped_by_its_guard_is_left_out():
    on, off = parse(CAT.format(wide=1)), parse(CAT.format(wide=0))
    assert nasty.cost(on).layers[-1].output == (12, 8, 8)
    assert nasty.cost(off).layers[-1].output == (6, 8, 8)      # not 6 + 8: `in` is not stacked in
    m = nasty.build(off)
    assert m(torch.randn(1, 8, 8, 8)).shape == (1, 6, 8, 8)


def test_a_cat_whose_members_are_all_skipped_is_refused():
    text = ("net t input 8x8x8\ncell c:\n  a = conv1x1 c=4 <- in if 0\n  b = conv1x1 c=4 <- in if 0\n"
            "  out = cat(a, b)\nstage c\n")
    assert "every operand of cat(...) was skipped by its if guard" in error_of(text)


def test_a_skipped_node_still_stands_for_its_input_in_add():
    # the identity residual of SENet/PNASNet: the projection is skipped, `in` is added
    text = ("net t input 8x8x8\nlet down=0\ncell r:\n  a   = conv3x3 c=8 <- in\n"
            "  sc  = conv1x1 c=8 <- in if down\n  out = add(a, sc)\nstage r\n")
    c = nasty.cost(parse(text))
    assert [l.op for l in c.layers] == ["conv", "add"]


# ------------------------------------------------------------------ nasty show prints CxHxW
def test_show_prints_shapes_as_c_x_h_x_w(capsys):
    assert main(["show", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "output CxHxW" in out
    assert " 64x112x112 " in out and " 2048x7x7 " in out and " 1000 " in out
    assert "(112,112,64)" not in out


# ------------------------------------------------------------------ port_weights, first divergence
TWO_PATHS = """net t input 4x16x16
cell two:
  {first}
  {second}
  out = cat(upsample <- a2, upsample <- b2)
stage two
"""
PATH_A = "a2  = conv3x3/2 c=4 conv1x1 c=8 <- in"
PATH_B = "b2  = conv3x3 c=4 maxpool2x2 conv1x1 c=6 <- in"


def test_port_weights_reports_the_first_divergence_and_why():
    ref = nasty.build(parse(TWO_PATHS.format(first=PATH_A, second=PATH_B)))
    swapped = nasty.build(parse(TWO_PATHS.format(first=PATH_B, second=PATH_A)))
    with pytest.raises(nasty.NastyError) as e:
        nasty.port_weights(ref, swapped)
    msg = str(e.value)
    # the 3x3 convs have the same weights' shapes; the first of them already runs at another
    # stride, so the divergence is layer 0 (the weight shapes alone differ only at layer 1)
    assert "diverge at layer 0" in msg, msg
    assert "stage1.a2.conv" in msg and "stage1.b2.conv" in msg
    assert "in the order a forward pass runs them" in msg and "reorder the genotype's nodes" in msg
    # in the same order, they port
    again = nasty.build(parse(TWO_PATHS.format(first=PATH_A, second=PATH_B)))
    assert nasty.port_weights(ref, again) == 8


# ------------------------------------------------------------------ hints that fit the construct
JOIN = "net t input 8x16x16\ncell b:\n{}\nstage b\n"


def test_add_with_a_residual_input_suggests_its_projection():
    msg = error_of(JOIN.format("  a = conv3x3/2 c=16 <- in\n  out = add(a, in)"))
    assert "add needs equal shapes, got 16x8x8, 8x16x16" in msg
    assert "shortcut c=16 s=2 <- in" in msg
    msg = error_of(JOIN.format("  a = conv3x3/2 c=16 <- in\n  out = add(a, shortcut c=16 <- in)"))
    assert "give the shortcut on the path from 'in' c=16 s=2" in msg


def test_add_of_two_branches_does_not_mention_shortcuts():
    msg = error_of(JOIN.format("  a = conv3x3/2 c=8 <- in\n  p = maxpool3x3 s=1 p=1 <- in\n  out = add(a, p)"))
    assert "shortcut" not in msg and "one path downsamples" in msg and "same stride" in msg
    msg = error_of(JOIN.format("  a = conv3x3 c=16 <- in\n  p = maxpool3x3 s=1 p=1 <- in\n  out = add(a, p)"))
    assert "shortcut" not in msg and "'p' has 8 channels but 'a' has 16" in msg and "cat(...)" in msg


def test_cat_pools_and_gates_get_their_own_hints():
    msg = error_of(JOIN.format("  a = conv3x3/2 c=8 <- in\n  out = cat(a, in)"))
    assert "shortcut" not in msg and "cat stacks channels" in msg and "same stride" in msg
    msg = error_of(JOIN.format("  g = gap conv1x1 c=4 sigmoid <- in\n  out = mul(in, g)"))
    assert "shortcut" not in msg and "a gate has the channels of the map it scales" in msg
    msg = error_of(JOIN.format("  g = gap flatten <- in\n  out = add(in, g)"))
    assert "one operand is flat" in msg


# ------------------------------------------------------------------ did you mean
@pytest.mark.parametrize("node, words", [
    ("  aa = relu <- in\n  out = add(ab, in)", "undefined input 'ab' (did you mean 'aa'?)"),
    ("  a = relu <- inn\n  out = a", "undefined input 'inn' (did you mean 'in'?)"),
    ("  a = relu <- prev\n  out = a", "'prev' is the second input of a cell declared"),
    ("  a = relu <- in\n  out = add(a, zz)", "undefined input 'zz' (defined so far: a, in)"),
])
def test_undefined_inputs_name_their_neighbour(node, words):
    assert words in error_of(JOIN.format(node))


def test_undefined_prev_node_names_its_neighbour():
    text = ("net t input 3x8x8\ncell d inputs 2:\n  out = add(in, prev)\ncell c:\n  hp = relu <- in\n"
            "  out = d(prev=hq) <- in\nstage c\n")
    assert "undefined input 'hq' (did you mean 'hp'?)" in error_of(text)


def test_unknown_ops_suggest_the_layer_norm_and_list_activations():
    assert "did you mean 'ln'?" in error_of("net t input 3x8x8\nstem conv3x3 c=4 layernorm\n")
    assert "did you mean 'ln'?" in error_of("net t input 3x8x8\nstem conv3x3 c=4 layer_norm eps=1e-6\n")
    msg = error_of("net t input 3x8x8\nstem conv3x3 c=4 elu\n")
    assert "the activations are gelu, gelu_tanh, hsigmoid, hswish, lrelu, relu, relu6, sigmoid, silu, swish, tanh" in msg
    msg = error_of("net t input 3x8x8\nlet nl=mish\nstem conv3x3 c=4\n")
    assert "unknown name 'mish'" in msg
    msg = error_of("net t input 3x8x8\ncell c(nl):\n  out = act fn=nl <- in\nstage c(3)\n")
    assert "act fn= must name an activation (gelu, gelu_tanh, hsigmoid" in msg and "identity), got 3" in msg


# ------------------------------------------------------------------ nasty build
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_says_onnx_weights_go_to_a_data_file(capsys, tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    code, out, err = run(capsys, "build", "lenet5", "--export", str(path))
    assert code == 0, err
    data = tmp_path / "m.onnx.data"
    assert data.exists() and f"with the weights in {data} beside it" in out


@pytest.mark.parametrize("flag, name", [("--save", "m.pt"), ("--export", "m.onnx"), ("--export", "m.pt2")])
def test_build_into_a_missing_folder_fails_before_any_work(capsys, tmp_path, flag, name):
    target = tmp_path / "no" / "such" / name
    code, out, err = run(capsys, "build", "resnet50", flag, str(target))
    assert code == 2 and out == ""                  # not even "built resnet50"
    assert err.count("\n") == 1 and "does not exist" in err and "mkdir -p" in err


def test_build_refuses_ref_weights_that_are_not_a_state_dict(capsys, tmp_path):
    f = tmp_path / "list.pth"
    torch.save([torch.zeros(3), torch.ones(2)], f)            # loads under weights_only, but a list
    code, out, err = run(capsys, "build", "resnet18", "--ref-weights", str(f))
    assert code == 2 and err.count("\n") == 1
    assert "holds list, not a state dict" in err and "state_dict()" in err
    f2 = tmp_path / "pickled.pth"
    f2.write_bytes(pickle.dumps([1, 2, 3]))
    code, out, err = run(capsys, "build", "resnet18", "--ref-weights", str(f2))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    code, out, err = run(capsys, "build", "resnet18", "--ref-weights", str(tmp_path / "missing.pth"))
    assert code == 2 and "no such file" in err and out == ""


@pytest.mark.parametrize("let, says", [
    ("let a=1//0", "t: let a: division by zero in 1 // 0"),
    ("let a=2 b=c+1", "t: let b: unknown name 'c'"),
    ("let a=2 width=3", "t: let width: 'width' is a reserved name"),
])
def test_an_error_in_a_let_names_the_let(let, says):
    text = f"net t input 1x8x8 classes 2\n{let}\nstem conv3x3 c=4\nhead gap flatten fc c=classes\n"
    with pytest.raises(nasty.NastyError) as e:
        nasty.cost(nasty.parse(text))
    assert says in str(e.value) and "\n" not in str(e.value)
