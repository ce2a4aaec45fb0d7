"""Errors raised while reading or checking a genotype: always one line."""
from __future__ import annotations

from ..errors import NastyError


class ParseError(NastyError):
    """Malformed genotype text: says where (line, column) and what was expected."""

    def __init__(self, msg: str, line: int | None = None, col: int | None = None, source: str = ""):
        self.line, self.col, self.source = line, col, source
        where = ""
        if line is not None:
            where = f"line {line}" + (f", col {col}" if col is not None else "") + ": "
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}{msg}")


class GenotypeError(NastyError):
    """A genotype that parses but cannot be a network; names the node at fault."""
