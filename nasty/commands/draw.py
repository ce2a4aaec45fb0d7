"""`nasty draw GENOTYPE_OR_ZOO_NAME`: pictures of a genotype's cells, as PNG and SVG."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("draw", help="draw a genotype's cells (PNG, SVG) as the NAS papers draw them",
                       description="Draw each distinct cell of a zoo network or genotype file as "
                                   "the NASNet and DARTS papers draw them: inputs on the left, "
                                   "op boxes, adds and concats, the output on the right. Writes "
                                   "cell_<NAME>.<FORMAT> files and prints their paths.")
    p.add_argument("target", metavar="GENOTYPE_OR_ZOO_NAME",
                   help="zoo name (see `nasty zoo`) or genotype file (.nasty/.json)")
    p.add_argument("--cell", action="append", metavar="NAME",
                   help="draw this cell (repeatable; default: the cells the network's stages use, "
                        "e.g. NASNet-A's normal and reduction cells)")
    p.add_argument("--out", default=".", metavar="DIR", help="folder for the pictures (default: here)")
    p.add_argument("--format", default="png,svg", metavar="png,svg",
                   help="comma-separated picture formats: png, svg, pdf (default png,svg)")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import resolve
    from ..draw import DrawError, cells_to_draw, draw_cells
    g = resolve(args.target)
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    if not formats:
        raise DrawError("--format needs at least one of png, svg, pdf")
    if args.cell is None and not cells_to_draw(g):
        if not g.cells:
            raise DrawError(f"{g.name} has no cells to draw: its layers are plain ops")
        raise DrawError(f"{g.name} has no cells that branch (only stem cells); pick one with "
                        f"--cell: {', '.join(c.name for c in g.cells)}")
    for path in draw_cells(g, args.out, cells=args.cell, formats=formats):
        print(path)
    return 0
