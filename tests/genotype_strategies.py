"""Hypothesis strategies: random valid genotype texts and mutations of them."""
from __future__ import annotations

from hypothesis import strategies as st

SHAPE_KEEPING = ["relu", "bn", "relu6", "hswish", "identity", "maxpool3x3/1 p=1", "avgpool3x3/1 p=1 cip=0",
                 "conv3x3 c=cin", "conv1x1 c=cin bias=0", "sep3x3 c=cin", "dwconv5x5", "conv1x3 c=cin conv3x1 c=cin",
                 "conv3x3 c=cin d=2", "droppath p=0.1", "scale v=0.5"]


@st.composite
def chains(draw, min_size=1, max_size=3):
    return " ".join(draw(st.lists(st.sampled_from(SHAPE_KEEPING), min_size=min_size, max_size=max_size)))


@st.composite
def cells(draw, name):
    """A random DAG whose nodes keep the shape, joined by add/mul/cat; every node is used."""
    n = draw(st.integers(1, 4))
    nodes, unused = [], set()
    for i in range(n):
        avail = ["in"] + [f"n{j}" for j in range(i)]
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
        nodes.append(f"  n{i} = {expr}")
        unused -= used
        unused.add(f"n{i}")
    if "in" not in {x for line in nodes for x in line.replace("(", " ").replace(",", " ").split()}:
        nodes[0] = nodes[0].replace("<- n", "<- in") if "<- " in nodes[0] else nodes[0]
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
    lines = [f"net rnd input {c}x{hw}x{hw} classes {classes}"]
    if draw(st.booleans()):
        lines.append("defaults conv.bias=0 bn.eps=0.001")
    n_cells = draw(st.integers(0, 2))
    for i in range(n_cells):
        lines.append(draw(cells(f"c{i}")))
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
            lines.append(f"stage c{draw(st.integers(0, n_cells - 1))} x{reps}")
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
                                                                          "c=", "x3", "stage", "in", "out"]


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
