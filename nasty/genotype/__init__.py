"""The genotype language: IR, text and JSON forms, checks and shape inference."""
from .elaborate import Program, Step, elaborate
from .errors import GenotypeError, ParseError
from .ir import Apply, Cell, CellCall, Combine, Genotype, Layer, Node, Op, Param, Ref
from .text import format, parse


def validate(g: Genotype, input=None) -> Genotype:
    """Full check: static structure and every shape at `input` (default: the genotype's)."""
    from .check import check
    check(g)
    elaborate(g, input)
    return g


__all__ = ["Apply", "Cell", "CellCall", "Combine", "Genotype", "GenotypeError", "Layer", "Node",
           "Op", "Param", "ParseError", "Program", "Ref", "Step", "elaborate", "format", "parse",
           "validate"]
