"""Hypothesis strategies: random valid genotype texts and mutations of them."""
from __future__ import annotations

from hypothesis import strategies as st

SHAPE_KEEPING = ["relu", "bn", "relu6", "hswish", "identity", "maxpool3x3/1 p=1", "avgpool3x3/1 p=1 cip=0",
                 "conv3x3 c=cin", "conv1x1 c=cin bias=0", "sep3x3 c=cin", "dwconv5x5", "conv1x3 c=cin conv3x1 c=cin",
                 "conv3x3 c=cin d=2", "droppath p=0.1", "scale v=0.5"]


@st.composite
def chains(draw, min_size=1, max_size=3):
    return " ".join(draw(st.lists(st.sampled_from(SHAPE_KEEPING), min_size=min_size, max_size=max_size)))


# Names a genotype may give its nodes, cells and net beside n0, c0...: Python keywords and the
# attributes of torch's nn.Module, which the compiled module must still name (genotype/paths.py).
ODD_NAMES = ["class", "lambda", "global", "None", "True", "def", "return", "forward", "training", "to", "type",
             "eval", "_modules", "__init__", "match"]


@st.composite
def names(draw, plain, n):
    """`n` distinct names: mostly f"{plain}{i}", sometimes one of ODD_NAMES."""
    out = []
    for i in range(n):
        name = draw(st.sampled_from([f"{plain}{i}"] * 3 + ODD_NAMES))
        out.append(name if name not in out else f"{plain}{i}")
    return out


@st.composite
def cells(draw, name):
    """A random DAG whose nodes keep the shape, joined by add/mul/cat; every node is used."""
    n = draw(st.integers(1, 4))
    node = draw(names("n", n))
    nodes, unused = [], set()
    for i in range(n):
        avail = ["in"] + node[:i]
        kind = draw(st.sampled_from(["chain", "add", "chain", "mul_se"]))
        a = draw(st.sampled_from(avail))
        if kind == "chain":
            expr = f"{draw(chains())} <- {a}"
            used = {a}
        elif kind == "add":
            b = draw(st.sampled_from(avail))
            expr = f"add({draw(chains())} <- {a}, {b})"
            used = {a, b}
        else:
            expr = f"mul({a}, gap conv1x1 c=max(1, cin // 4) relu conv1x1 c=cin hsigmoid <- {a})"
            used = {a}
        nodes.append(f"  {node[i]} = {expr}")
        unused -= used
        unused.add(node[i])
    join = draw(st.sampled_from(["cat", "add"]))
    outs = sorted(unused)
    out = outs[0] if len(outs) == 1 else f"{join}({', '.join(outs)})"
    text = f"cell {name}:\n" + "\n".join(nodes) + f"\n  out = {out}\n"
    # a cell must use its input: fall back to a trivially valid cell when the draw did not
    if "in" not in text.replace("cin", "").split("<- ")[1:] and "(in" not in text and " in," not in text \
            and "<- in" not in text and "(in," not in text:
        text = f"cell {name}:\n  n0 = relu <- in\n  out = n0\n"
    return text


@st.composite
def genotype_texts(draw):
    c = draw(st.sampled_from([1, 3]))
    hw = draw(st.integers(8, 40))
    classes = draw(st.integers(2, 12))
    lines = [f"net {draw(st.sampled_from(['rnd', 'rnd', 'class', 'lambda']))} input {c}x{hw}x{hw} classes {classes}"]
    if draw(st.booleans()):
        lines.append("defaults conv.bias=0 bn.eps=0.001")
    n_cells = draw(st.integers(0, 2))
    cell_names = draw(names("c", n_cells))
    for name in cell_names:
        lines.append(draw(cells(name)))
    k = draw(st.sampled_from([1, 3, 5, 7]))
    s = draw(st.sampled_from([1, 2]))
    width = draw(st.integers(2, 16))
    lines.append(f"stem conv{k}x{k}/{s} c={width} bn relu")
    for _ in range(draw(st.integers(0, 3))):
        choice = draw(st.sampled_from(["down", "cell", "chain", "pool", "grouped"]))
        if choice == "down":
            width = draw(st.integers(2, 24))
            lines.append(f"stage conv3x3/2 c={width} relu")
        elif choice == "cell" and n_cells:
            reps = draw(st.integers(1, 3))
            call = draw(st.sampled_from(cell_names))
            lines.append(f"stage {call} relu" if draw(st.booleans()) else f"stage {call} x{reps}")  # a cell in a chain
        elif choice == "pool":
            lines.append(draw(st.sampled_from(["stage maxpool2x2", "stage avgpool3x3/2 p=1",
                                               "stage maxpool3x3/2 ceil=1"])))
        elif choice == "grouped":
            g = draw(st.sampled_from([1, 2])) if width % 2 == 0 else 1
            lines.append(f"stage conv3x3 c={width * g} g={g} bn")
            width *= g
        else:
            lines.append(f"stage {draw(chains())}")
    head = draw(st.sampled_from(["head gap flatten fc c=classes", "head flatten fc c=classes",
                                 "head gap flatten dropout p=0.2 fc c=16 relu fc c=classes",
                                 "head apool o=2 flatten fc c=classes"]))
    lines.append(head)
    return "\n".join(lines) + "\n"


NOISE = list("=<-(),:/x#* \n\t0123456789abcdefghijklmnopqrstuvwxyz_.") + ["<-", "conv3x3", "cell", "  ", "add(",
                                                                          "c=", "x3", "stage", "in", "out"] + [
    " < ", " > ", " == ", " != ", " <= ", " >= ", " and ", " or ", " not ", " if ", "1e999", "99999999999999999999",
    "1e308 * 10", " // 0", "((((", "-----", "head", "\x00", "\u00e9"]


@st.composite
def mutated_texts(draw):
    text = draw(genotype_texts())
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete", "insert", "replace", "swap_lines", "truncate", "dup_line"]))
        if op == "delete":
            j = min(len(text), i + draw(st.integers(1, 6)))
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(NOISE)) + text[i:]
        elif op == "replace":
            text = text[:i] + draw(st.sampled_from(NOISE)) + text[i + 1:]
        elif op == "truncate":
            text = text[:i]
        else:
            lines = text.split("\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "swap_lines":
                lines[a], lines[b] = lines[b], lines[a]
            else:
                lines.insert(b, lines[a])
            text = "\n".join(lines)
    return text


# ================================================================ the classes of bad input issue 15 found
# Each strategy aims at one class: nesting depth, sizes, binary input, non-finite numbers. Depths
# and sizes are drawn near each limit (one below, at, one above), far below and far above it.
import json
import re

from nasty.genotype import limits as L

HEAD = "head gap flatten fc c=classes\n"


def around(limit, far=3):
    """Integers near `limit`, well below it and up to `far` times past it."""
    return st.one_of(st.integers(0, 6), st.sampled_from([limit - 1, limit, limit + 1]),
                     st.integers(0, far * limit))


VALUE_LEVELS = {
    "paren": "({})", "neg": "-{}", "not": "not {}", "call": "max(1, {})", "sum": "{} + 1", "mul": "2 * {}",
    "cmp": "({}) > 0", "and": "{} and 1", "or": "0 or {}", "div": "{} // 1", "W": "W({})", "floor": "floor({})",
}


@st.composite
def nested_values(draw, max_depth=2000):
    """A value text nested `depth` levels by a drawn cycle of parentheses, signs, not, calls,
    comparisons and arithmetic (some of them invalid where they land: that is fine)."""
    depth = draw(around(L.MAX_VALUE_DEPTH).filter(lambda d: d <= max_depth))
    pattern = draw(st.lists(st.sampled_from(sorted(VALUE_LEVELS)), min_size=1, max_size=4))
    v = draw(st.sampled_from(["1", "2", "8", "cin", "k"]))
    for i in range(depth):
        v = VALUE_LEVELS[pattern[i % len(pattern)]].format(v)
    return v


@st.composite
def nested_value_genotypes(draw):
    """A genotype with a deeply nested value in an attribute, a guard, a let, a repeat or an argument."""
    v = draw(nested_values())
    where = draw(st.sampled_from(["attr", "guard", "let", "repeat", "arg", "scale"]))
    cell = "cell a(k=1):\n  x = conv1x1 c=cin bn <- in{guard}\n  out = x\n"
    head = "net t input 3x16x16 classes 10\n"
    if where == "let":
        return f"{head}let z={v}\n{cell.format(guard='')}stem conv3x3 c=8\nstage a x z\n{HEAD}"
    if where == "scale":
        return f"{head}scale width={v}\n{cell.format(guard='')}stem conv3x3 c=W(8)\nstage a\n{HEAD}"
    if where == "guard":
        return f"{head}{cell.format(guard=f' if {v}')}stem conv3x3 c=8\nstage a(2)\n{HEAD}"
    if where == "repeat":
        return f"{head}{cell.format(guard='')}stem conv3x3 c=8\nstage a x {v}\n{HEAD}"
    if where == "arg":
        return f"{head}{cell.format(guard='')}stem conv3x3 c=8\nstage a({v})\n{HEAD}"
    return f"{head}stem conv3x3 c={v}\n{HEAD}"


EXPR_LEVELS = {
    "arrow": "relu <- {}", "ops": "bn relu <- {}", "add": "add({}, in)", "add2": "add(in, {})", "cat": "cat({}, in)",
    "mul": "mul({}, in)", "conv": "conv1x1 c=cin <- {}", "call": "b <- {}",
}


@st.composite
def nested_expr_genotypes(draw):
    """(text, depth): a cell whose output expression nests `<-` and add/cat/mul `depth` levels deep."""
    depth = draw(around(L.MAX_EXPR_DEPTH, far=100).filter(lambda d: d <= 2000))
    pattern = draw(st.lists(st.sampled_from(sorted(EXPR_LEVELS)), min_size=1, max_size=4))
    e = "in"
    for i in range(depth):
        e = EXPR_LEVELS[pattern[i % len(pattern)]].format(e)
    return (f"net t input 3x8x8 classes 10\ncell b:\n  out = relu <- in\ncell a:\n  out = {e}\n"
            f"stem conv3x3 c=8\nstage a\n{HEAD}"), depth


@st.composite
def nested_cell_genotypes(draw):
    """(text, n): `n` cells, each calling the next once or twice (with distinct arguments: no replay)."""
    n = draw(around(L.MAX_CELL_DEPTH, far=40))
    twice = draw(st.booleans())
    cells = []
    for i in range(n):
        nxt = f"c{i + 1}" if i + 1 < n else None
        if nxt is None:
            body = "conv1x1 c=cin + k - k bn relu <- in"
        elif twice:
            body = f"add({nxt}(k) <- in, {nxt}(k + 1) <- in)"
        else:
            body = f"{nxt}(k) <- in"
        cells.append(f"cell c{i}(k=1):\n  out = {body}\n")
    body = "stage c0\n" if n else "stage relu\n"
    return f"net t input 3x8x8 classes 10\n{''.join(cells)}stem conv3x3 c=8\n{body}{HEAD}", n


def boundaries(*limits):
    return sorted({x for lim in limits for x in (lim - 1, lim, lim + 1)})


SIZE_WORDS = ["1.5", "1e3", "1e999", "-1", "0", "9" * 300, "10**12", "1e308 * 10", "2 * 99999999999", "nan"]


def sizes():
    """What a user or a space might put where a size goes."""
    return st.one_of(
        st.integers(1, 64).map(str), st.integers(-5, 10 ** 30).map(str),
        st.sampled_from(boundaries(L.MAX_REPEAT, L.MAX_CHANNELS, L.MAX_SIZE, L.MAX_INT, L.MAX_LAYERS)).map(str),
        st.sampled_from(SIZE_WORDS))


@st.composite
def sized_genotypes(draw):
    """A small valid genotype with one or two of its sizes (input, classes, channels, strides,
    repeats, a let) replaced by drawn sizes."""
    knobs = {"C": "3", "H": "16", "W": "16", "K": "10", "N": "2", "S": "1", "C1": "8", "C2": "16", "R": "2",
             "F": "32"}
    for _ in range(draw(st.integers(1, 2))):
        knobs[draw(st.sampled_from(sorted(knobs)))] = draw(sizes())
    return ("net s input {C}x{H}x{W} classes {K}\nlet n={N}\ncell b(c):\n  out = conv1x1 c=c relu <- in\n"
            "stem conv3x3/{S} c={C1}\nstage b({C2}) x {R}\nstage relu x n\nhead gap flatten fc c={F} fc c=classes\n"
            ).format(**knobs)


NON_FINITE = ["1e999", "-1e999", "1e308 * 10", "1e308 + 1e308", "-1e308 * 1e308", "1 / 1e-320", "99999999999999999999",
              "9223372036854775807 + 1", "-9223372036854775807 - 2", "3037000500 * 3037000500", "floor(1e300)",
              "ceil(-1e300)", "W(1e300)", "D(1e308)", "0 / 0", "1 // 0", "div(8, 0)", "round(1e308 * 1e308)",
              "nan", "inf", "1e308", "-1e308", "1e-320", "4.9e-324", "1e-400", "0.0"]


@st.composite
def non_finite_texts(draw):
    """A random valid genotype with numbers replaced by ones that overflow, divide by zero or are
    not numbers at all; or with such a value added as a scale setting or a let."""
    text = draw(genotype_texts())
    spots = [m for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)]    # not kernels or shapes
    for _ in range(draw(st.integers(0, 2))):
        if not spots:
            break
        m = draw(st.sampled_from(spots))
        text = text[:m.start()] + draw(st.sampled_from(NON_FINITE)) + text[m.end():]
        spots = [s for s in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)]
    extra = draw(st.sampled_from(["", "scale width={}", "scale depth={}", "scale divisor={}", "let z={}"]))
    if extra:
        lines = text.split("\n")
        lines.insert(1, extra.format(draw(st.sampled_from(NON_FINITE))))
        text = "\n".join(lines)
    return text


JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e308", str(10 ** 30), str(-10 ** 19), "true",
                "false", "null", "-1", "0", "1.5", '"1e999"', '"nan"', '"1e308 * 10"', str(10 ** 300)]


@st.composite
def json_with_bad_numbers(draw):
    """A random valid genotype's JSON form with numbers (input, classes, inputs, repeats, values)
    replaced by NaN, infinities, overflowing or huge numbers, booleans or null."""
    text = json.dumps(_valid_dict(draw))
    spots = list(re.finditer(r"(?<=[:\[,] )-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,\]}])", text))
    for _ in range(draw(st.integers(1, 3))):
        if not spots:
            break
        m = draw(st.sampled_from(spots))
        text = text[:m.start()] + draw(st.sampled_from(JSON_NUMBERS)) + text[m.end():]
        spots = list(re.finditer(r"(?<=[:\[,] )-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,\]}])", text))
    return text


def _valid_dict(draw):
    from nasty.errors import NastyError
    from nasty.genotype import parse
    from nasty.genotype.jsonform import to_dict
    text = draw(genotype_texts())
    try:
        return to_dict(parse(text))
    except NastyError:          # a random genotype whose input shrank below 1 pixel: a fixed one
        return to_dict(parse("net f input 3x8x8 classes 4\nstem conv3x3 c=4 relu\nhead gap flatten fc c=classes\n"))


@st.composite
def deeply_nested_json(draw):
    """A valid genotype's JSON form with one value wrapped in `depth` levels of lists or objects."""
    doc = _valid_dict(draw)
    depth = draw(st.one_of(st.integers(0, 40), st.sampled_from([999, 1000, 1001]), st.integers(0, 200_000)))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a": ', "}")]))
    key = draw(st.sampled_from(sorted(doc)))
    marker = '"__deep__"'
    doc[key] = "__deep__"
    return json.dumps(doc).replace(marker, opener * depth + json.dumps(doc.get("classes", 1)) + closer * depth)


@st.composite
def binary_files(draw):
    """Bytes a user might hand nasty as a genotype file: random bytes, a genotype with bytes that
    are not UTF-8 (or a NUL) put in, a genotype in another encoding, or a valid one."""
    text = draw(genotype_texts())
    how = draw(st.sampled_from(["random", "corrupted", "nul", "utf-16", "utf-32", "latin-1", "valid"]))
    if how == "random":
        return draw(st.binary(max_size=3000))
    if how in ("utf-16", "utf-32"):
        return text.encode(how)
    if how == "latin-1":
        i = draw(st.integers(0, len(text)))
        return (text[:i] + "# caf\u00e9" + text[i:]).encode("latin-1")
    data = text.encode()
    if how == "valid":
        return data
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        junk = b"\x00" if how == "nul" else draw(st.binary(min_size=1, max_size=4))
        data = data[:i] + junk + data[i:]
    return data
