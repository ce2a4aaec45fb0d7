"""Drawing a placed cell with matplotlib, and writing the pictures to files.

The one module of nasty/draw/ that imports matplotlib (only when it draws): it measures
the labels for nasty/draw/layout.py, paints the shapes and edges placed there, and saves
PNG, SVG or PDF files whose bytes depend only on the genotype (fit to commit, or to
compare between runs).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import NastyError
from ..genotype import Genotype
from .graph import CellGraph, Vertex, cells_to_draw
from .layout import BOX_H, CIRCLE, FONT, edge_points, is_circle, layout_cell, place_columns, size_shapes

FORMATS = ("png", "svg", "pdf")


class DrawError(NastyError):
    """A cell cannot be drawn as asked (an unknown cell or format)."""


_STYLE = {  # family: (fill, edge)
    "input": ("#cfe2f3", "#3d6e99"), "output": ("#d9ead3", "#4f7f3a"),
    "conv": ("#fce5cd", "#b45f06"), "pool": ("#e4dcf4", "#674ea7"),
    "identity": ("#eeeeee", "#666666"), "other": ("#eeeeee", "#666666"),
    "call": ("#fff2cc", "#a07800"), "add": ("#ffffff", "#333333"), "mul": ("#ffffff", "#333333"),
    "cat": ("#f4cccc", "#990000"),
}


def _text_width(s: str, size: float) -> float:
    """Width of ``s`` in inches at ``size`` points, as matplotlib will render it."""
    from matplotlib.textpath import TextPath
    if not s:
        return 0.0
    return TextPath((0, 0), s, size=size).get_extents().width / 72.0


def measure_shapes(V: list[Vertex]) -> None:
    """Size every shape to hold its label as matplotlib renders it (layout.size_shapes)."""
    size_shapes(V, _text_width)


def draw_cell(genotype: Genotype, name: str):
    """A matplotlib Figure of cell ``name`` of ``genotype``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MPath

    cell = genotype.cell(name)
    if cell is None:
        raise DrawError(f"{genotype.name} has no cell {name!r}; its cells: "
                        f"{', '.join(c.name for c in genotype.cells) or 'none'}")
    graph = CellGraph(genotype, cell)
    measure_shapes(graph.vertices)
    V, routes = layout_cell(graph)
    xs, widths, right = place_columns(V)

    top = min(v.y - v.h / 2 for v in V)
    bottom = max(v.y + v.h / 2 for v in V)
    params = ", ".join(p.name for p in cell.params)
    title = f"{genotype.name}: cell {cell.name}" + (f"({params})" if params else "")
    title_h = 0.45
    margin = 0.2
    width_in = max(right + 2 * margin, _text_width(title, FONT + 1) * 1.1 + 0.3)
    height_in = bottom - top + 2 * margin + title_h
    fig = Figure(figsize=(width_in, height_in))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-margin, width_in - margin)
    ax.set_ylim(bottom + margin, top - margin - title_h)  # y grows downwards
    ax.axis("off")
    ax.text(-margin + 0.12, top - margin - title_h + 0.12, title,
            fontsize=FONT + 1, fontweight="bold", va="top", ha="left")

    for v in V:
        if v.kind == "dummy":
            continue
        fill, edge = _STYLE.get(v.family, _STYLE["other"])
        style = dict(facecolor=fill, edgecolor=edge, linewidth=1.2, linestyle="--" if v.dashed else "-",
                     zorder=3)
        if is_circle(v):
            patch = Circle((v.x, v.cy), CIRCLE / 2, **style)
            ax.text(v.x, v.cy, v.label, ha="center", va="center_baseline", fontsize=FONT + 3, zorder=4)
        else:
            patch = FancyBboxPatch((v.x - v.w / 2, v.cy - BOX_H / 2), v.w, BOX_H,
                                   boxstyle="round,pad=0,rounding_size=0.06", **style)
            weight = "bold" if v.kind in ("input", "output") or v.family == "cat" else "normal"
            ax.text(v.x, v.cy, v.label, ha="center", va="center", fontsize=FONT,
                    fontweight=weight, zorder=4)
        ax.add_patch(patch)
        shape_h = CIRCLE if is_circle(v) else BOX_H
        if v.tag:
            ax.text(v.x, v.cy - shape_h / 2 - 0.03, v.tag, ha="center", va="bottom",
                    fontsize=FONT - 2, color="#555555", zorder=4)
        if v.note:
            ax.text(v.x, v.cy + shape_h / 2 + 0.03, v.note, ha="center", va="top",
                    fontsize=FONT - 2, color="#555555", style="italic", zorder=4)

    for route, points in zip(routes, edge_points(V, routes, xs, widths)):
        a, b = V[route[0]], V[route[-1]]
        verts, codes = [points[0]], [MPath.MOVETO]
        for k, (p0, p1) in enumerate(zip(points, points[1:])):
            if p0 == p1:
                continue
            if k % 2 == 1:  # from a column's right edge to the next one's left edge: a curve
                dx = (p1[0] - p0[0]) / 2
                verts += [(p0[0] + dx, p0[1]), (p1[0] - dx, p1[1]), p1]
                codes += [MPath.CURVE4] * 3
            else:  # along a row inside a column
                verts.append(p1)
                codes.append(MPath.LINETO)
        dashed = a.dashed or b.dashed
        ax.add_patch(FancyArrowPatch(path=MPath(verts, codes), arrowstyle="-|>", mutation_scale=9,
                                     linewidth=1.0, color="#444444", linestyle="--" if dashed else "-",
                                     shrinkA=0, shrinkB=0, zorder=2))
    return fig


# ------------------------------------------------------------------ files

def draw_cells(genotype, out_dir, cells=None, formats=("png", "svg")) -> list[Path]:
    """Draw each cell of ``genotype`` (a Genotype, zoo name or genotype file) into
    ``out_dir`` as cell_<name>.<format>; returns the files written.

    ``cells``: the cell names to draw (default: ``cells_to_draw``, which may be empty for
    a net without cells, like VGG). ``formats``: any of png, svg, pdf.
    """
    from matplotlib import rc_context

    from .. import resolve
    g = resolve(genotype)
    formats = [formats] if isinstance(formats, str) else list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise DrawError(f"unknown picture format {bad[0] if bad else ''!r}; use any of {', '.join(FORMATS)}")
    names = cells_to_draw(g) if cells is None else list(cells)
    unknown = [n for n in names if g.cell(n) is None]
    if unknown:
        raise DrawError(f"{g.name} has no cell {unknown[0]!r}; its cells: "
                        f"{', '.join(c.name for c in g.cells) or 'none'}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DrawError(f"cannot create the folder {out}: {e.strerror or e}") from None
    written = []
    for name in names:
        fig = draw_cell(g, name)
        for fmt in formats:
            path = out / f"cell_{name}.{fmt}"
            # fixed metadata: the same genotype gives the same bytes, fit to commit
            meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt, {})
            try:
                # SVG: ids from a fixed salt (same bytes each time), labels kept as text
                with rc_context({"svg.hashsalt": "nasty", "svg.fonttype": "none"}):
                    fig.savefig(path, format=fmt, dpi=150, metadata=meta)
            except OSError as e:
                raise DrawError(f"cannot write {path}: {e.strerror or e}") from None
            written.append(path)
    return written
