"""Tokens of the genotype text form, one line at a time.

The grammar is line-oriented (a cell body is indented under its header), so the
lexer works per line and every token knows its line and column for errors.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from .errors import ParseError
from .limits import MAX_TOKEN, README

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+)
  | (?P<comment>\#.*)
  | (?P<shape>\d+(?:x\d+){1,2}(?![\w.]))          # 3x224x224 (input shape)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
  | (?P<arrow><-)                                  # before `<`: `a<-1` is an arrow, write `a < -1`
  | (?P<op>//|==|!=|<=|>=|[-+*/=(),:<>])
""", re.VERBOSE)


class Token(NamedTuple):       # a tuple: made by the hundred thousand for a long text
    kind: str      # shape, number, name, arrow, op, end
    text: str
    line: int
    col: int


def tokenize_line(text: str, line: int, source: str = "") -> list[Token]:
    toks, pos = [], 0
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        if start != pos:                        # finditer skipped what no token matches
            break
        kind = m.lastgroup
        if kind != "ws" and kind != "comment":
            if end - start > MAX_TOKEN:         # also keeps int() away from Python's digit limit
                raise ParseError(f"a {kind} of {end - start:,} characters is over the limit of "
                                 f"{MAX_TOKEN} characters ({README})", line, start + 1, source)
            toks.append(Token(kind, m.group(), line, start + 1))
        pos = end
    if pos < len(text):
        raise ParseError(f"unexpected character {text[pos]!r}", line, pos + 1, source)
    toks.append(Token("end", "", line, len(text) + 1))
    return toks


class Cursor:
    """A cursor over one line's tokens with the expect/accept helpers a parser needs."""

    def __init__(self, toks: list[Token], source: str = ""):
        self.toks, self.i, self.source = toks, 0, source

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def at(self, text: str) -> bool:
        return self.tok.text == text and self.tok.kind in ("op", "arrow", "name")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def next(self) -> Token:
        t = self.tok
        if t.kind != "end":
            self.i += 1
        return t

    def error(self, expected: str) -> ParseError:
        t = self.tok
        got = "end of line" if t.kind == "end" else repr(t.text)
        return ParseError(f"expected {expected}, got {got}", t.line, t.col, self.source)

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(repr(text))
        return self.next()

    def expect_kind(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(what)
        return self.next()

    def done(self) -> bool:
        return self.tok.kind == "end"
