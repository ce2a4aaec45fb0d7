"""Attribute values: numbers, names and a little arithmetic, parsed without eval.

`c=out*4`, `c=W(32)`, `c=max(1, cin//4)`, `x D(3)`: these are parsed into a
tiny AST and evaluated against an environment (cell parameters, `cin`, the
net's scale settings) when the genotype is elaborated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from .errors import GenotypeError
from .ops import WORDS


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Bin:
    op: str          # + - * / //
    a: "Value"
    b: "Value"


@dataclass(frozen=True)
class Neg:
    a: "Value"


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple["Value", ...]


Value = Union[int, float, str, Sym, Bin, Neg, Call]

# Bare words that are values, not names to look up (`p=same`, `act fn=relu`, `mode=bilinear`).
KEYWORDS = WORDS


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Channel rounding of MobileNet/EfficientNet (torchvision's `_make_divisible`)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:   # never round down by more than 10%
        new_v += divisor
    return new_v


def _need_int(fn, x):
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if not isinstance(x, int):
        raise GenotypeError(f"{fn}() needs an integer, got {x!r}")
    return x


def _scale_width(env, c):
    return make_divisible(c * env.get("width", 1.0), int(env.get("divisor", 8)))


def _scale_depth(env, n):
    return int(math.ceil(n * env.get("depth", 1.0)))


FUNCTIONS = {
    # name: (arity, fn(env, *args))
    "W": (1, _scale_width),
    "D": (1, _scale_depth),
    "div": (2, lambda env, v, d: make_divisible(v, _need_int("div", d))),
    "max": (2, lambda env, a, b: max(a, b)),
    "min": (2, lambda env, a, b: min(a, b)),
    "floor": (1, lambda env, a: int(math.floor(a))),
    "ceil": (1, lambda env, a: int(math.ceil(a))),
    "round": (1, lambda env, a: int(round(a))),
    "eq": (2, lambda env, a, b: int(a == b)),      # 1 or 0, for node guards: `if eq(s, 1)`
    "ne": (2, lambda env, a, b: int(a != b)),
}


def evaluate(v: Value, env: dict) -> int | float | str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v
    if isinstance(v, Sym):
        if v.name in env:
            return env[v.name]
        if v.name in KEYWORDS:
            return v.name
        known = ", ".join(sorted(k for k in env if not k.startswith("_"))) or "none"
        raise GenotypeError(f"unknown name {v.name!r} (known here: {known})")
    if isinstance(v, Neg):
        return -_num(evaluate(v.a, env))
    if isinstance(v, Bin):
        a, b = _num(evaluate(v.a, env)), _num(evaluate(v.b, env))
        if v.op == "+":
            return a + b
        if v.op == "-":
            return a - b
        if v.op == "*":
            return a * b
        if b == 0:
            raise GenotypeError(f"division by zero in {format_value(v)}")
        if v.op == "/":
            return a / b
        return a // b
    if isinstance(v, Call):
        arity, fn = FUNCTIONS[v.fn]
        return fn(env, *(_num(evaluate(a, env)) for a in v.args))
    raise GenotypeError(f"bad value {v!r}")


def _num(x):
    if isinstance(x, str) or isinstance(x, bool):
        raise GenotypeError(f"expected a number, got {x!r}")
    return x


# ---------------------------------------------------------------- parsing
def parse_value(cur) -> Value:
    """value := term (('+'|'-') term)*"""
    v = _term(cur)
    while cur.tok.kind == "op" and cur.tok.text in "+-" and cur.tok.text:
        op = cur.next().text
        v = Bin(op, v, _term(cur))
    return v


def _term(cur) -> Value:
    v = _factor(cur)
    while cur.tok.kind == "op" and cur.tok.text in ("*", "/", "//"):
        op = cur.next().text
        v = Bin(op, v, _factor(cur))
    return v


def _factor(cur) -> Value:
    t = cur.tok
    if t.kind == "op" and t.text == "-":
        cur.next()
        inner = _factor(cur)
        if isinstance(inner, (int, float)):
            return -inner
        return Neg(inner)
    if t.kind == "op" and t.text == "(":
        cur.next()
        v = parse_value(cur)
        cur.expect(")")
        return v
    if t.kind == "number":
        cur.next()
        text = t.text
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    if t.kind == "name":
        cur.next()
        if cur.at("(") and cur.tok.kind == "op":
            if t.text not in FUNCTIONS:
                from .errors import ParseError
                raise ParseError(f"unknown function {t.text!r} (known: {', '.join(FUNCTIONS)})",
                                 t.line, t.col, cur.source)
            cur.next()
            args = [parse_value(cur)]
            while cur.accept(","):
                args.append(parse_value(cur))
            cur.expect(")")
            arity = FUNCTIONS[t.text][0]
            if len(args) != arity:
                from .errors import ParseError
                raise ParseError(f"{t.text}() takes {arity} argument(s), got {len(args)}",
                                 t.line, t.col, cur.source)
            return Call(t.text, tuple(args))
        return Sym(t.text)
    raise cur.error("a number, a name or '('")


# ---------------------------------------------------------------- formatting
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2}


def format_value(v: Value, prec: int = 0) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v) if v >= 0 or prec == 0 else f"({v})"
    if isinstance(v, float):
        s = repr(v)
        if s in ("inf", "-inf", "nan"):
            raise GenotypeError(f"value {s} cannot be written in a genotype")
        return s if v >= 0 or prec == 0 else f"({s})"
    if isinstance(v, str):
        return v
    if isinstance(v, Sym):
        return v.name
    if isinstance(v, Neg):
        return "-" + format_value(v.a, 3)
    if isinstance(v, Call):
        return f"{v.fn}(" + ", ".join(format_value(a) for a in v.args) + ")"
    if isinstance(v, Bin):
        p = _PREC[v.op]
        # Left-associative: the right operand needs parentheses at equal precedence.
        s = f"{format_value(v.a, p)} {v.op} {format_value(v.b, p + 1)}"
        return f"({s})" if p < prec else s
    raise GenotypeError(f"bad value {v!r}")


def is_literal(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
