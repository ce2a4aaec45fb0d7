"""The traps a new user fell into (issue 11, section 3), each closed and proven here."""
import json
import pickle
import re

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
  b   = conv3x3 c=6 <- in  if wide else none
  c   = maxpool3x3 s=1 p=1 conv1x1 c=2 <- in
  out = cat(a, b, c)
stage inception
"""


def test_a_member_of_cat_that_is_none_is_left_out():
    on, off = parse(CAT.format(wide=1)), parse(CAT.format(wide=0))
    assert nasty.cost(on).layers[-1].output == (12, 8, 8)
    assert nasty.cost(off).layers[-1].output == (6, 8, 8)      # not 6 + 8: `in` is not stacked in
    m = nasty.build(off)
    assert m(torch.randn(1, 8, 8, 8)).shape == (1, 6, 8, 8)


def test_a_cat_whose_members_are_all_none_is_refused():
    text = ("net t input 8x8x8\ncell c:\n  a = conv1x1 c=4 <- in if 0 else none\n"
            "  b = conv1x1 c=4 <- in if 0 else none\n  out = cat(a, b)\nstage c\n")
    assert "every operand of cat(...) is none here" in error_of(text)


def test_a_skipped_node_is_its_else_in_add():
    # the identity residual of SENet/PNASNet: the projection is skipped, `in` is added
    text = ("net t input 8x8x8\nlet down=0\ncell r:\n  a   = conv3x3 c=8 <- in\n"
            "  sc  = conv1x1 c=8 <- in if down else in\n  out = add(a, sc)\nstage r\n")
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
    assert "the destination runs the source's layer later, as layer 2 (stage1.a2.conv)" in msg, msg
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


# ================================================================== issue 23, trap a: what a skipped node is
# Until `else` was required, a node skipped by its `if` stood for something implicit that differed
# by context (the first name of its expression; left out inside cat since 2026-11-30), so a file
# could build another network after an upgrade, with no error. Now the else is written, one rule.
def refusal(text) -> str:
    with pytest.raises((GenotypeError, ParseError)) as e:
        parse(text)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("line, explicit", [
    ("out = add(p, in)   if res", "`out = add(p, in) if res else p`"),                  # the residual
    ("out = relu <- add(p, in) if res  # comment", "`out = relu <- add(p, in) if res else p`"),
    ("out = add(in, slice end=8 <- p) if res", "`out = add(in, slice end=8 <- p) if res else in`"),
])
def test_if_without_else_is_refused_with_the_lines_explicit_form(line, explicit):
    text = f"net t input 8x8x8\nlet res=1\ncell c:\n  p = conv3x3 c=8 <- in\n  {line}\nstage c\n"
    msg = refusal(text)
    assert msg.startswith(f"line 5: write {explicit}: node 'out' of cell c has 'if' without 'else'"), msg
    assert parse(text.replace(line, explicit.strip("`")))          # the form shown parses


DLA = """net dla input 8x16x16 classes 10
let kids=2
cell tree:
  bottom = conv3x3 c=8 bn relu <- in
  r      = conv3x3 c=8 bn relu <- bottom
  r1     = cat(r, bottom) if kids == 1{alt}
  out    = conv1x1 c=16 bn relu <- cat(r1, r, in)
stage tree
head  gap flatten fc c=classes
"""


def test_a_dla_root_written_before_else_is_refused_with_both_past_meanings():
    # Up to 2026-11-30 the skipped r1 was `r` (cat(r, r, in): 24 channels into the 1x1); since then it
    # was left out (cat(r, in): 16). The old text builds neither silently: it is refused, with both.
    msg = refusal(DLA.format(alt=""))
    assert msg.startswith("line 6: write `r1 = cat(r, bottom) if kids == 1 else none` (left out of the cat: what "
                          "nasty built since 2026-11-30) or `... else r` (what it built before then): node 'r1' of "
                          "cell tree has 'if' without 'else'"), msg
    before, since = parse(DLA.format(alt=" else r")), parse(DLA.format(alt=" else none"))
    root = [l for l in nasty.cost(before).layers if l.name == "stage1.out.conv"][0]
    assert root.params == 16 * 24 + 16 and [l for l in nasty.cost(since).layers
                                            if l.name == "stage1.out.conv"][0].params == 16 * 16 + 16
    assert nasty.cost(before).params - nasty.cost(since).params == 16 * 8


def test_a_node_read_both_by_cat_and_elsewhere_gets_the_one_else_that_rebuilds_it():
    text = ("net t input 8x8x8\nlet w=0\ncell c:\n  b = conv3x3 c=4 <- in if w\n  x = relu <- b\n"
            "  out = cat(b, x)\nstage c\n")
    msg = refusal(text)
    assert "`b = conv3x3 c=4 <- in if w else in` (as nasty built it before 2026-11-30; since then it was left " \
           "out of cat(...) and was in elsewhere: for that, give the cat a node of its own with `else none`)" in msg


def test_the_json_and_python_forms_are_held_to_the_same_rule():
    g = parse(DLA.format(alt=" else none"))
    doc = to_json(g).replace(" if kids == 1 else none", " if kids == 1")
    with pytest.raises(GenotypeError, match=re.escape("dla: cell tree node 'r1': write `r1 = ")) as e:
        from_json(doc)
    assert "`r1 = cat(r, bottom) if kids == 1 else none`" in str(e.value)
    # a genotype built in Python and never checked is refused where the node is skipped
    import dataclasses
    cell = g.cells[0]
    bare = dataclasses.replace(g, cells=(dataclasses.replace(cell, nodes=tuple(
        dataclasses.replace(n, otherwise=None) for n in cell.nodes)),))
    with pytest.raises(GenotypeError, match="'if' without 'else'"):
        elaborate(bare)


@pytest.mark.parametrize("node, says", [
    ("x = relu <- in else in", "expected 'if CONDITION else NAME' ('else' comes after an if), got 'else'"),
    ("x = relu <- in if 1 else", "expected what the node is when its guard is false: an input, an earlier node, "
                                 "or none, got end of line"),
    ("x = relu <- in if 1 else x", "'else x' names the node itself"),
    ("x = relu <- in if 1 else out", "'else out' names a later node; move 'out' above it"),
    ("x = relu <- in if 1 else ni", "'else ni': undefined input 'ni' (did you mean 'in'?)"),
    ("x = relu <- in if else none", "expected a number, a name or '(', got 'else'"),
    ("x = relu <- in\n  out = relu <- x if 1 else none", "'else none' on the cell's output"),
])
def test_else_is_checked(node, says):
    text = f"net t input 8x8x8\ncell c:\n  {node}\n  out = relu <- x\nstage c\n"
    assert says in refusal(text)


def absent(*nodes, on=0) -> str:
    """A cell whose `g` (a gate) and `b` (a branch) are none unless `on`."""
    return (f"net t input 8x8x8\nlet on={on}\ncell c:\n  a = conv3x3 c=8 <- in\n"
            "  g = gap conv1x1 c=8 sigmoid <- a if on else none\n  b = conv3x3 c=8 <- in if on else none\n"
            + "".join(f"  {n}\n" for n in nodes) + "stage c\n")


@pytest.mark.parametrize("out, kinds", [
    ("out = add(mul(a, g), b)", ["conv"]),                      # add(a, none) is a; an optional gate
    ("out = cat(mul(a, g), b, in)", ["conv", "cat"]),
    ("out = add(mul(a, g), b, in)", ["conv", "add"]),
])
def test_else_none_is_left_out_of_every_join(out, kinds):
    assert [l.op for l in nasty.cost(parse(absent(out))).layers] == kinds
    on = nasty.cost(parse(absent(out, on=1)))
    assert {"gap", "sigmoid", "mul"} <= {l.op for l in on.layers} and len(on.layers) > len(kinds) + 4


@pytest.mark.parametrize("nodes, says", [
    (["x = relu <- b", "out = add(mul(a, g), x)"],
     "node 'x': 'b' is none here (skipped by its if, else none), so its ops have nothing to apply to"),
    (["out = sub(mul(a, g), b)"], "sub(...) needs its 2 operands, but 'b' is none here"),
    (["out = add(g, b, a) if on else b"], "the cell's output is none here"),
    (["x = add(g, b)", "out = add(a, x)"], "node 'x': every operand of add(...) is none here"),
])
def test_else_none_where_a_tensor_is_needed_is_refused(nodes, says):
    assert says in error_of(absent(*nodes))


def test_a_dead_branch_is_refused_not_built_and_priced():
    # The trap: `out = add(in, slice <- p) if res` was the identity when res is 0, yet p was still
    # built and priced. With the else written, p is now refused where nothing reads it.
    text = ("net t input 8x8x8\ncell blk(res):\n  p   = conv3x3 c=16 bn relu <- in\n"
            "  out = add(in, slice end=8 <- p) if res else in\nstage blk(1)\nstage blk(0)\n")
    msg = error_of(text)
    assert msg.startswith("t: stage2 (cell blk) node 'p': the node is built but its value reaches nothing here: "
                          "'out' reads it but is skipped (its if is false here, so it is in)"), msg
    assert "guard it by the same condition (`p = ... if COND else none`)" in msg
    fixed = text.replace("bn relu <- in\n", "bn relu <- in if res else none\n")
    c = nasty.cost(parse(fixed))
    assert [l.name for l in c.layers if l.name.startswith("stage2")] == []    # the identity, priced as such
    assert nasty.build(parse(fixed))(torch.randn(1, 8, 8, 8)).shape == (1, 8, 8, 8)


def test_a_dead_branch_through_a_replayed_cell_is_refused_too():
    # the inner cell reads prev only when on; the outer node passed as prev is then dead, also at
    # the second call, which replays the first
    text = ("net t input 8x8x8\ncell inner(on) inputs 2:\n  a = add(in, prev) if on else in\n  out = relu <- a\n"
            "cell outer(on):\n  h = conv1x1 c=8 <- in\n  out = inner(on, prev=h) <- in\nstage outer(0) x2\n")
    assert "(cell outer) node 'h': the node is built but its value reaches nothing here" in error_of(text)


# ================================================================== issue 23, trap b: what `defaults` reaches
# `defaults conv.bias=0` reaches ops written `conv` (and the projection `shortcut` builds, which has no
# bias of its own); dwconv, sep and linear have their own defaults. `nasty show` names each layer's
# op as written, so a table never suggests that a conv default reached a dwconv.
FAMILY = """net t input 8x16x16 classes 10
defaults conv.bias=0{more}
stem  conv3x3 c=16 dwconv3x3 sep3x3 c=16 linear c=8 shortcut c=16 s=2
head  gap flatten fc c=classes
"""


def test_a_conv_default_reaches_ops_written_conv_and_shortcuts_projection_only():
    layers = {l.name: l for l in nasty.cost(parse(FAMILY.format(more=""))).layers}
    assert layers["stem.conv"].params == 16 * 8 * 9                       # no bias
    assert layers["stem.dwconv"].params == 16 * 9 + 16                    # dwconv keeps its bias=1
    assert layers["stem.sep.dw"].params == 16 * 9 + 16 and layers["stem.sep.pw"].params == 16 * 16 + 16
    assert layers["stem.linear"].params == 8 * 16 + 8
    assert layers["stem.shortcut.conv"].params == 16 * 8                  # shortcut's conv takes conv.bias
    own = {l.name: l for l in nasty.cost(parse(FAMILY.format(more=" dwconv.bias=0 sep.bias=0 linear.bias=0"))).layers}
    assert [own[n].params for n in ("stem.dwconv", "stem.sep.dw", "stem.sep.pw", "stem.linear")] == \
           [16 * 9, 16 * 9, 16 * 16, 8 * 16]


def test_show_names_each_layers_op_as_written(capsys, tmp_path):
    f = tmp_path / "family.nasty"
    f.write_text(FAMILY.format(more="") .replace("linear c=8", "linear c=8 act fn=relu swish"))
    assert main(["show", str(f)]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:] if line.strip()
            and line.startswith("stem.")}
    assert rows == {"stem.conv": "conv", "stem.dwconv": "dwconv", "stem.sep.dw": "sep", "stem.sep.pw": "sep",
                    "stem.linear": "linear", "stem.act": "act", "stem.swish": "swish",
                    "stem.shortcut.conv": "conv", "stem.shortcut.bn": "bn"}
    assert main(["show", str(f), "--json"]) == 0
    layers = {l["name"]: l for l in json.loads(capsys.readouterr().out)["layers"]}
    assert (layers["stem.dwconv"]["op"], layers["stem.dwconv"]["written"]) == ("conv", "dwconv")
    assert (layers["stem.act"]["op"], layers["stem.act"]["written"]) == ("relu", "act")
    assert (layers["stem.conv"]["op"], layers["stem.conv"]["written"]) == ("conv", "conv")


def test_a_replayed_cell_keeps_the_ops_as_written():
    text = "net t input 8x8x8\ncell b:\n  out = dwconv3x3 sep3x3 c=8 <- in\nstage b x3\n"
    c = nasty.cost(parse(text))
    assert [l.as_written for l in c.layers] == ["dwconv", "sep", "sep"] * 3


# ================================================================== issue 23, trap c: port_weights names the cause
def port_error(src, dst, **kw) -> str:
    with pytest.raises(nasty.NastyError) as e:
        nasty.port_weights(src, dst, **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("port_weights: ")
    return msg


def net_of(body, c=3):
    return nasty.build(parse(f"net t input {c}x8x8 classes 4\n{body}\nhead gap flatten fc c=classes\n"))


def test_a_bias_mismatch_is_named_as_such():
    msg = port_error(net_of("stem conv3x3 c=8 bn relu"), net_of("stem conv3x3 c=8 bias=0 bn relu"))
    assert "source stem.conv (conv 8x3x3x3 8;" in msg and "destination stem.conv (conv 8x3x3x3;" in msg
    assert "the source's conv has a bias and the destination's has none: give the genotype's op bias=1" in msg
    assert "reorder" not in msg
    msg = port_error(net_of("stem dwconv3x3 bn", c=8), net_of("stem dwconv3x3 bias=0 bn", c=8))
    assert "not dwconv, sep or linear, which take dwconv.bias=" in msg


def test_a_module_with_no_counterpart_is_named_as_such():
    from torch import nn
    ref = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4))
    msg = port_error(ref, net_of("stem conv3x3 c=8 bn"))
    assert "diverge at layer 1" in msg and "source 1 (GroupNorm 8 8;" in msg
    assert "the source's 1 is a GroupNorm, which no op of the genotype language pairs with" in msg
    assert "reorder" not in msg


def test_a_reference_that_folds_windows_into_the_batch_pairs():
    from torch import nn

    class Windows(nn.Module):      # a 1x1 conv run on 2x2 windows folded into the batch, as Swin runs them
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 8, 1)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

        def forward(self, x):
            b, c, h, w = x.shape
            win = x.reshape(b, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5).reshape(b * 4, c, h // 2, w // 2)
            y = self.proj(win).reshape(b, 2, 2, 8, h // 2, w // 2).permute(0, 3, 1, 4, 2, 5).reshape(b, 8, h, w)
            return self.head(y)

    ref, ours = Windows().eval(), net_of("stem conv1x1 c=8").eval()
    assert nasty.port_weights(ref, ours) == 4
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(ref(x), ours(x), atol=1e-6)


def test_another_activation_size_and_other_shapes_are_named_as_such():
    msg = port_error(net_of("stem conv3x3/2 c=8"), net_of("stem conv3x3 c=8"))
    assert "writes 128)" in msg and "writes 512)" in msg
    assert "the same weights at another activation size: a stride, padding or size differs at or before this layer" in msg
    msg = port_error(net_of("stem conv3x3 c=8"), net_of("stem conv3x3 c=16"))
    assert "convs of other shapes: the nets differ in width, kernel or groups at this layer" in msg
    msg = port_error(net_of("stem conv3x3 c=8 bn"), net_of("stem conv3x3 c=8 ln"))
    assert "a bn in the source where the destination has a ln" in msg


def test_two_foreign_modules_need_an_input_shape():
    from torch import nn
    a, b = nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 3)
    with pytest.raises(nasty.NastyError, match="port_weights needs input_shape=.C,H,W. for two modules not built "
                                               "by nasty: the input both run at"):
        nasty.port_weights(a, b)
    assert nasty.port_weights(a, b, input_shape=(3, 8, 8)) == 2
    # a nasty-built source is enough: its input is used
    assert nasty.port_weights(net_of("stem conv3x3 c=8"), nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))) == 4


def test_a_node_read_only_by_an_else_not_taken_is_refused_too():
    text = ("net t input 8x8x8\nlet c=1\ncell blk:\n  b   = conv3x3 c=8 <- in\n  x   = relu <- in if c else b\n"
            "  out = x\nstage blk\n")
    assert "(cell blk) node 'b': the node is built but its value reaches nothing here: 'x' names it after else, " \
           "but its if is true here" in error_of(text)
    assert nasty.cost(parse(text.replace("let c=1", "let c=0"))).layers[0].name == "stage1.b.conv"
