"""Finding a genotype by what a user types: a Genotype, a zoo name, or a file path.

Its own module (re-exported by the package as nasty.resolve / nasty.load / nasty.read_text) so
that the modules below the package facade can look a genotype up without importing the facade,
which imports them: every import in nasty/ points down (tests/test_imports.py).
"""
from __future__ import annotations

from pathlib import Path

from . import zoo
from .errors import NastyError
from .genotype import Genotype, ParseError, parse


def load(path) -> Genotype:
    """Read a genotype file: text (`.nasty` or anything else) or JSON (`.json`), UTF-8."""
    from .genotype.jsonform import from_json
    p = Path(path)
    text = read_text(p)
    return from_json(text, str(p)) if p.suffix == ".json" else parse(text, str(p))


def read_text(path) -> str:
    """The text of a genotype file (UTF-8; an editor's byte-order mark left out), within the limits."""
    from .genotype.limits import MAX_TEXT, README
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(4 * MAX_TEXT + 1)     # a UTF-8 character is at most 4 bytes; /dev/zero ends too
    except OSError as e:
        raise NastyError(f"cannot read genotype file {str(p)!r}: {e.strerror}") from None
    if len(data) > 4 * MAX_TEXT:
        raise ParseError(f"genotype file {str(p)!r} is over the limit of {MAX_TEXT:,} characters ({README})")
    try:
        text = data.decode("utf-8-sig")       # an editor's byte-order mark is not part of the text
        if "\0" in text:
            raise UnicodeError
    except UnicodeError as e:
        at = f" (byte 0x{data[e.start]:02x} at offset {e.start})" if isinstance(e, UnicodeDecodeError) else ""
        raise ParseError(f"genotype file {str(p)!r} is not UTF-8 text{at}: is it a binary file? "
                         "A genotype is a .nasty text file or a .json file") from None
    return text


def resolve(name_or_genotype) -> Genotype:
    """A Genotype from a Genotype, a zoo name, or a genotype file path."""
    if isinstance(name_or_genotype, Genotype):
        return name_or_genotype
    s = str(name_or_genotype)
    if s in zoo.names():
        return zoo.get(s)
    if Path(s).exists():
        return load(s)
    if "/" in s or s.endswith((".nasty", ".json", ".txt")):
        raise NastyError(f"genotype file {s!r} does not exist")
    zoo.entry(s)          # raises the "unknown zoo network ... did you mean" error
    raise AssertionError  # unreachable
