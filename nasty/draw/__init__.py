"""Cell pictures (being split into layout and rendering; this commit only moves nasty/draw.py to nasty/draw/graph.py)."""
from .graph import FORMATS, DrawError, _CellGraph, _layout, _sizes, cells_to_draw, draw_cell, draw_cells  # noqa: F401
