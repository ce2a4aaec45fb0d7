"""The define-by-run search-space API: decisions, conditionals, replay, target/proxy, loading."""
import random
import textwrap

import pytest

import nasty
from nasty.space import (Decision, FixedTrial, RandomTrial, SpaceError, builtin_names, load_space,
                         space)


@space(target=dict(input=(3, 224, 224), classes=1000), proxy=dict(input=(1, 28, 28), classes=10),
       canonical={"small": {"depth": 1, "kernel": 3, "width": 16}}, width_decision="width")
def toy(t, net):
    depth = t.int("depth", 1, 3)
    k = t.choice("kernel", [3, 5, 7])
    se = t.choice("se", [False, True]) if k > 3 else False        # conditional decision
    width = t.choice("width", (16, 32, 64))
    lr = t.float("drop", 0.0, 0.5) if depth == 3 else 0.0
    c, h, w = net.input
    stages = "\n".join(f"stage conv{k}x{k}/2 c={width * 2 ** i} bn relu" for i in range(depth))
    head = ("dropout p=%g " % lr if lr else "") + "gap flatten fc c=classes"
    if se:
        head = "gap flatten fc c=classes"
    return nasty.parse(f"net toy input {c}x{h}x{w} classes {net.classes}\nstem conv3x3 c={width}\n{stages}\n"
                       f"head {head}\n")


def test_decorator_declares_target_proxy_and_known_members():
    assert toy.name == "toy"
    assert toy.target.input == (3, 224, 224) and toy.target.classes == 1000 and toy.target.target
    assert toy.proxy.input == (1, 28, 28) and toy.proxy.classes == 10 and toy.proxy.proxy
    assert toy.width_decision == "width" and "small" in toy.canonical


def test_the_same_decisions_build_target_and_proxy():
    values = {"depth": 2, "kernel": 3, "width": 32}
    g, p = toy.genotype(values), toy.genotype(values, proxy=True)
    assert g.input == (3, 224, 224) and g.classes == 1000
    assert p.input == (1, 28, 28) and p.classes == 10
    assert nasty.cost(g).macs > nasty.cost(p).macs
    other = toy.genotype(values, proxy=True, input=(3, 32, 32), classes=100)
    assert other.input == (3, 32, 32) and other.classes == 100


def test_random_sample_replays_exactly():
    rng = random.Random(3)
    for _ in range(20):
        t = RandomTrial(rng)
        values, g = toy.sample(t)
        assert set(values) == {d.name for d in t.asked}
        assert nasty.format(toy.genotype(FixedTrial(values))) == nasty.format(g)


def test_conditional_decisions_exist_only_when_their_condition_holds():
    names = lambda v: {d.name for d in toy.decisions(v)}
    assert "se" not in names({"depth": 1, "kernel": 3, "width": 16})
    assert "se" in names({"depth": 1, "kernel": 5, "width": 16, "se": True})
    assert "drop" in names({"depth": 3, "kernel": 3, "width": 16, "drop": 0.1})
    assert "drop" not in names({"depth": 2, "kernel": 3, "width": 16})
    seen_se = set()
    rng = random.Random(0)
    for _ in range(60):
        v, _ = toy.sample(RandomTrial(rng))
        assert ("se" in v) == (v["kernel"] > 3)
        seen_se.add(v.get("se"))
    assert seen_se == {None, False, True}


def test_decisions_enumerate_for_controllers():
    ds = {d.name: d for d in toy.decisions({"depth": 3, "kernel": 7, "width": 64, "se": False, "drop": 0.2})}
    assert ds["depth"].kind == "int" and ds["depth"].options() == (1, 2, 3)
    assert ds["kernel"].options() == (3, 5, 7) and ds["width"].options() == (16, 32, 64)
    assert ds["drop"].kind == "float" and (ds["drop"].low, ds["drop"].high) == (0.0, 0.5)
    with pytest.raises(SpaceError):
        ds["drop"].options()
    assert Decision("n", "int", low=2, high=10, step=4).options() == (2, 6, 10)
    assert Decision("n", "int", low=2, high=10, step=4).contains(6)
    assert not Decision("n", "int", low=2, high=10, step=4).contains(4)


def test_misuse_is_a_space_error():
    with pytest.raises(SpaceError, match="not an option"):
        toy.genotype({"depth": 9, "kernel": 3, "width": 16})
    with pytest.raises(SpaceError, match="no value for decision 'width'"):
        toy.genotype({"depth": 1, "kernel": 3})

    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def twice(t, net):
        t.choice("a", [1, 2])
        t.choice("a", [1, 2, 3])

    with pytest.raises(SpaceError, match="asked twice"):
        twice.sample(RandomTrial(random.Random(0)))

    @space(target=dict(input=(1, 8, 8), classes=2), proxy=dict(input=(1, 8, 8), classes=2))
    def not_a_genotype(t, net):
        return "net x input 1x8x8"

    with pytest.raises(SpaceError, match="not a Genotype"):
        not_a_genotype.sample(RandomTrial(random.Random(0)))
    with pytest.raises(SpaceError):
        RandomTrial(random.Random(0)).choice("empty", [])
    with pytest.raises(SpaceError):
        RandomTrial(random.Random(0)).int("bad", 3, 1)


def test_builtin_spaces_are_listed_and_loaded():
    assert {"nasnet", "mbconv", "resnet", "darts"} <= set(builtin_names())
    for name in ("nasnet", "mbconv", "resnet", "darts"):
        s = load_space(name)
        assert s.name == name and s.width_decision and s.canonical


def test_unknown_space_is_a_one_line_error():
    with pytest.raises(SpaceError) as e:
        load_space("nasnett")
    assert "\n" not in str(e.value) and "nasnet" in str(e.value) and ".py" in str(e.value)


def test_user_space_file(tmp_path):
    f = tmp_path / "myspace.py"
    f.write_text(textwrap.dedent("""
        import nasty
        from nasty.space import space

        @space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10))
        def mine(t, net):
            c = t.choice("c", [8, 16])
            return nasty.parse(f"net mine input {'x'.join(map(str, net.input))} classes {net.classes}\\n"
                               f"stem conv3x3 c={c} bn relu\\nhead gap flatten fc c=classes\\n")
    """))
    s = load_space(str(f))
    values, g = s.sample(RandomTrial(random.Random(0)))
    assert s.name == "mine" and values["c"] in (8, 16) and g.input == (3, 32, 32)


@pytest.mark.parametrize("body, match", [
    ("def broken(:\n", r"failed to load.*SyntaxError"),
    ("import nasty\nx = 1 / 0\n", r"failed to load \(line 2\): ZeroDivisionError"),
    ("import nasty\n", "exactly one @space function, found 0"),
])
def test_broken_space_files_are_one_line_errors(tmp_path, body, match):
    f = tmp_path / "bad.py"
    f.write_text(body)
    with pytest.raises(SpaceError, match=match) as e:
        load_space(str(f))
    assert "\n" not in str(e.value)
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(str(tmp_path / "missing.py"))
