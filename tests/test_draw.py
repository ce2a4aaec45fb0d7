"""Cell pictures: which cells a genotype's pictures show, what each picture says (its boxes,
labels and edges, read back from the graph it is drawn from), that the layout keeps boxes
apart, and that the files written are valid PNG and SVG, from Python and from `nasty draw`."""
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from PIL import Image

import nasty
from nasty.draw import DrawError, cells_to_draw, draw_cells
from nasty.draw.graph import CellGraph as _CellGraph
from nasty.draw.layout import layout_cell as _layout
from nasty.draw.render import measure_shapes as _sizes


@pytest.mark.parametrize("name, cells", [
    ("nasnet_mobile", ["nasnet_a_normal", "nasnet_a_reduction"]),   # through the wrappers
    ("darts_v2_cifar10", ["darts_v2_normal", "darts_v2_reduce"]),   # stems left out
    ("resnet50", ["bottleneck"]),
    ("mobilenet_v2", ["ir"]),
    ("inception_v3", ["inc_a", "inc_b", "inc_c", "inc_d", "inc_e"]),
    ("vgg16", ["conv3"]),
    ("lenet5", []),
])
def test_cells_to_draw(name, cells):
    assert cells_to_draw(nasty.zoo.get(name)) == cells


def _graph(name, cell):
    return _CellGraph(nasty.zoo.get(name), nasty.zoo.get(name).cell(cell))


def _ops(graph):
    return Counter(v.label for v in graph.vertices if v.kind == "op")


def _combines(graph):
    return Counter(v.label for v in graph.vertices if v.kind == "combine")


def test_nasnet_a_normal_cell_reads_like_the_paper():
    # Zoph et al. 2018, Fig. 4 left: five blocks of op(x) + op(y), concatenated with h[i-1]
    g = _graph("nasnet_mobile", "nasnet_a_normal")
    assert _ops(g) == {"sep 5x5": 2, "sep 3x3": 3, "avg 3x3": 3, "identity": 2}
    assert _combines(g) == {"+": 5, "concat": 1}
    labels = {v.label for v in g.vertices if v.kind in ("input", "output")}
    assert labels == {"h$_{i-1}$", "h$_{i-2}$", "h$_{i}$"}
    concat = next(i for i, v in enumerate(g.vertices) if v.label == "concat")
    feeding = sorted(g.vertices[a].tag for a, b in g.edges if b == concat)
    assert feeding == ["b0", "b1", "b2", "b3", "b4", "prev"]


def test_nasnet_a_reduction_cell_reads_like_the_paper():
    g = _graph("nasnet_mobile", "nasnet_a_reduction")
    assert _ops(g) == {"sep 7x7 /2": 2, "sep 5x5 /2": 2, "max 3x3 /2": 2, "avg 3x3 /2": 1,
                       "avg 3x3": 1, "sep 3x3": 1, "identity": 1}
    assert _combines(g) == {"+": 5, "concat": 1}


def test_ops_labels_and_guards():
    bottleneck = _graph("resnet50", "bottleneck")
    assert _ops(bottleneck) == {"conv 1x1": 2, "conv 3x3 /stride": 1, "shortcut /stride": 1, "relu": 1}
    # a residual skip is an arrow, not an identity box (that is for NAS cells' identity op)
    assert "identity" not in _ops(_graph("mobilenet_v2", "ir"))
    ir = _graph("mobilenet_v2", "ir")
    assert {v.note for v in ir.vertices if v.note} == {"if ne(t, 1) else in", "if eq(stride, 1) * eq(c, cin) else p"}
    assert any(v.dashed for v in ir.vertices)
    assert _ops(_graph("resnext50_32x4d", "bottleneck"))["conv 3x3 g32 /stride"] == 1  # let constants
    assert _ops(_graph("darts_v2", "darts_v2_normal"))["dil sep 3x3"] == 1
    inc = _graph("inception_v3", "inc_c")  # a branch of several convs is a box per conv
    assert _ops(inc) == {"conv 1x1": 4, "conv 1x7": 3, "conv 7x1": 3, "avg 3x3": 1}


def test_layout_keeps_shapes_apart_and_edges_flowing_right():
    for name in ("nasnet_mobile", "inception_v4", "pnasnet5large", "fractalnet", "darts_v2"):
        g = nasty.zoo.get(name)
        for cell in cells_to_draw(g):
            graph = _CellGraph(g, g.cell(cell))
            _sizes(graph.vertices)
            V, routes = _layout(graph)
            for route in routes:
                layers = [V[i].layer for i in route]
                assert layers == list(range(layers[0], layers[0] + len(layers))), (name, cell)
            for layer in {v.layer for v in V}:
                column = sorted((v for v in V if v.layer == layer), key=lambda v: v.y)
                for a, b in zip(column, column[1:]):
                    assert b.y - a.y >= (a.h + b.h) / 2 + 0.15, (name, cell)


_LAYOUT_WITHOUT_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None                  # any import of matplotlib now fails
import nasty
from nasty.draw import cells_to_draw
from nasty.draw.graph import CellGraph
from nasty.draw.layout import CIRCLE, GAP_X, edge_points, is_circle, layout_cell, place_columns, size_shapes

def rule_of_thumb(text, points):                  # inches: 0.55 em per character
    return 0.55 * points / 72 * len(text)

placed = 0
for name in ("nasnet_mobile", "inception_v4", "darts_v2", "mobilenet_v2"):
    g = nasty.zoo.get(name)
    for cell in cells_to_draw(g):
        graph = CellGraph(g, g.cell(cell))
        size_shapes(graph.vertices, rule_of_thumb)
        V, routes = layout_cell(graph)
        xs, widths, right = place_columns(V)
        assert abs(right - (xs[-1] + widths[-1] / 2)) < 1e-9      # the right edge of the last column
        for a, b in zip(range(len(xs)), range(1, len(xs))):      # columns in order, a gap apart
            assert abs(xs[b] - xs[a] - (widths[a] + widths[b]) / 2 - GAP_X) < 1e-9
        for v in V:
            assert v.x == xs[v.layer] and v.w <= widths[v.layer] + 1e-9
        for route, points in zip(routes, edge_points(V, routes, xs, widths)):
            a, b = V[route[0]], V[route[-1]]
            assert points[0] == (a.x + (CIRCLE / 2 if is_circle(a) else a.w / 2), a.cy), (name, cell)
            end = points[-1]
            if is_circle(b):                      # on the left rim of the circle
                assert abs((end[0] - b.x) ** 2 + (end[1] - b.cy) ** 2 - (CIRCLE / 2) ** 2) < 1e-9
                assert end[0] < b.x
            else:                                 # on the left side of the box, within its height
                assert end[0] == b.x - b.w / 2 and abs(end[1] - b.cy) <= b.h / 2
            assert [x for x, _ in points] == sorted(x for x, _ in points), (name, cell)   # flows right
        placed += 1
assert "matplotlib" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print(placed)
"""


def test_layout_places_cells_without_matplotlib():
    """nasty/draw/layout.py is pure geometry: with text measured by a rule of thumb, in a Python where
    matplotlib cannot be imported, it places every shape in its column and routes every edge from
    its source's right side to its target's left, flowing right."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _LAYOUT_WITHOUT_MATPLOTLIB], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout) >= 9                   # every picture of the four networks was placed

def _check_png(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 100
        im.verify()


def _check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return ET.tostring(root, encoding="unicode")


def test_draw_cells_writes_valid_png_and_svg_per_distinct_cell(tmp_path):
    files = draw_cells("nasnet_mobile", tmp_path)
    assert sorted(f.name for f in files) == ["cell_nasnet_a_normal.png", "cell_nasnet_a_normal.svg",
                                             "cell_nasnet_a_reduction.png", "cell_nasnet_a_reduction.svg"]
    for f in files:
        assert f.stat().st_size > 1000
        if f.suffix == ".png":
            _check_png(f)
        else:
            svg = _check_svg(f)
            assert "sep 5x5" in svg and "concat" in svg
    assert "sep 7x7 /2" in (tmp_path / "cell_nasnet_a_reduction.svg").read_text()
    # the same genotype gives the same bytes (fit to commit into docs/ or compare in a run)
    again = draw_cells("nasnet_mobile", tmp_path / "again")
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in again]


@pytest.mark.parametrize("name", ["darts_v2_cifar10", "resnet50", "mobilenet_v2", "inception_v3"])
def test_draw_cells_for_zoo_nets(tmp_path, name):
    files = draw_cells(name, tmp_path, formats=["png"])
    assert [f.name for f in files] == [f"cell_{c}.png" for c in cells_to_draw(nasty.zoo.get(name))]
    for f in files:
        _check_png(f)


def test_a_searched_genotype_is_drawn(tmp_path):
    import random

    from nasty.space import RandomTrial, load_space
    _, g = load_space("nasnet").sample(RandomTrial(random.Random(3)))
    files = draw_cells(g, tmp_path, cells=["normal_cell", "reduction_cell"], formats=["svg"])
    for f in files:
        assert _check_svg(f).count(">+<") == 5  # five blocks, each an add


def test_unknown_cell_and_format_are_one_line_errors(tmp_path):
    with pytest.raises(DrawError, match="nasnet_mobile has no cell 'nope'; its cells: branch, rcb") as e:
        draw_cells("nasnet_mobile", tmp_path, cells=["nope"])
    assert "\n" not in str(e.value)
    with pytest.raises(DrawError, match="unknown picture format 'jpg'; use any of png, svg, pdf"):
        draw_cells("resnet50", tmp_path, formats=["png", "jpg"])
    assert not list(tmp_path.iterdir())


def test_nasty_draw_command(tmp_path, capsys):
    from nasty.cli import main
    assert main(["draw", "nasnet_mobile", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in tmp_path.iterdir()) and len(printed) == 4
    assert main(["draw", "resnet50", "--cell", "bottleneck", "--format", "pdf", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "cell_bottleneck.pdf").read_bytes()[:5] == b"%PDF-"
    for argv, message in ((["draw", "nasnet_mobile", "--cell", "nope"], "has no cell 'nope'; its cells:"),
                          (["draw", "lenet5"], "lenet5 has no cells to draw"),
                          (["draw", "no_such_net"], "unknown zoo network")):
        capsys.readouterr()
        assert main(argv + ["--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nasty: error: ") and message in err and err.count("\n") == 1


def test_the_package_keeps_its_names_and_no_submodule_shadows_one():
    import importlib
    import pkgutil

    import nasty.draw as draw
    assert set(draw.__all__) == {"FORMATS", "DrawError", "cells_to_draw", "draw_cell", "draw_cells"}
    before = {n: getattr(draw, n) for n in draw.__all__}
    submodules = [m.name for m in pkgutil.iter_modules(draw.__path__)]
    assert set(submodules) == {"graph", "layout", "render"}
    for m in submodules:
        importlib.import_module(f"nasty.draw.{m}")
    assert {n: getattr(draw, n) for n in draw.__all__} == before and not set(draw.__all__) & set(submodules)
