"""Pictures of a genotype's cells, in the style of the NASNet and DARTS papers' figures
(`nasty draw`, and the winner's cells in a run's plots/).

Three steps, one module each, each depending only on the ones before it:

    graph.py    what a picture shows: which cells get one, and each cell as labelled shapes and arrows
    layout.py   where the shapes go: layers, crossing reduction, rows and columns (no matplotlib)
    render.py   matplotlib draws the placed shapes and writes PNG, SVG or PDF files

This module is the public interface: import from ``nasty.draw``.
"""
from .graph import cells_to_draw
from .render import FORMATS, DrawError, draw_cell, draw_cells

__all__ = ["FORMATS", "DrawError", "cells_to_draw", "draw_cell", "draw_cells"]
