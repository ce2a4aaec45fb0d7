"""Attribute values: numbers, names, a little arithmetic and logic, parsed without eval.

`c=out*4`, `c=W(32)`, `c=max(1, cin//4)`, `x D(3)`, `if stride > 1 and cin != c`: these are
parsed into a tiny AST and evaluated against an environment (cell parameters, `cin`, the
net's scale settings) when the genotype is elaborated.

    value := value 'or' value | value 'and' value | 'not' value
           | sum [('==' | '!=' | '<' | '<=' | '>' | '>=') sum]
    sum   := term (('+' | '-') term)*
    term  := unary (('*' | '/' | '//') unary)*
    unary := '-' unary | NUMBER | NAME | NAME '(' value, ... ')' | '(' value ')'

Loosest first, in Python's order; comparisons do not chain. Comparisons and logic give 1 or 0
(`true`/`false` count as 1/0 in logic). Every number is finite and every integer fits in 64
bits, and a value stays within limits.py's token and nesting limits, so no value can overflow,
hang the evaluator or overflow the stack.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Union

from .errors import GenotypeError, ParseError
from .limits import MAX_INT, MAX_VALUE_DEPTH, MAX_VALUE_TOKENS, README
from .ops import WORDS


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Bin:
    op: str          # + - * / //, == != < <= > >=, and or
    a: "Value"
    b: "Value"


@dataclass(frozen=True)
class Neg:
    a: "Value"


@dataclass(frozen=True)
class Not:
    a: "Value"


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple["Value", ...]


Value = Union[int, float, str, Sym, Bin, Neg, Not, Call]

# Bare words that are values, not names to look up (`p=same`, `act fn=relu`, `mode=bilinear`).
KEYWORDS = WORDS
# Words that are operators of the value grammar (and `else`, which ends a node's condition),
# so never names of anything.
OPERATOR_WORDS = ("and", "or", "not", "else")
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_LOGIC = frozenset({"and", "or"})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "//"})
_FLOAT_MAX = sys.float_info.max


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Channel rounding of MobileNet/EfficientNet (torchvision's `_make_divisible`)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:   # never round down by more than 10%
        new_v += divisor
    return new_v


def _need_int(fn, x, lo=None):
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if not isinstance(x, int) or (lo is not None and x < lo):
        what = "an integer" if lo is None else f"an integer >= {lo}"
        raise GenotypeError(f"{fn} needs {what}, got {x!r}")
    return x


def scale_problem(key: str, x) -> str | None:
    """What is wrong with a `scale` setting's value, or None: width and depth are positive
    multipliers, divisor a positive integer (W() rounds channels to a multiple of it)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return f"scale {key}= must be a number, got {x!r}"
    if key == "divisor":
        if not (x >= 1 and float(x).is_integer()):
            return f"scale divisor= must be a positive integer, got {x!r}"
    elif not 0 < x <= _FLOAT_MAX:
        return f"scale {key}= must be a positive finite number, got {x!r}"
    return None


def _setting(env, key, default):
    x = env.get(key, default)
    if type(x) is int and x >= 1 or type(x) is float and 0.0 < x <= _FLOAT_MAX and key != "divisor":
        return x                    # the common case, without building a message
    problem = scale_problem(key, x)
    if problem:
        raise GenotypeError(problem)
    return x


def _scale_width(env, c):
    return make_divisible(c * _setting(env, "width", 1.0), int(_setting(env, "divisor", 8)))


def _scale_depth(env, n):
    return int(math.ceil(n * _setting(env, "depth", 1.0)))


FUNCTIONS = {
    # name: (arity, fn(env, *args))
    "W": (1, _scale_width),
    "D": (1, _scale_depth),
    "div": (2, lambda env, v, d: make_divisible(v, _need_int("div()", d, 1))),
    "max": (2, lambda env, a, b: max(a, b)),
    "min": (2, lambda env, a, b: min(a, b)),
    "floor": (1, lambda env, a: int(math.floor(a))),
    "ceil": (1, lambda env, a: int(math.ceil(a))),
    "round": (1, lambda env, a: int(round(a))),
    "eq": (2, lambda env, a, b: int(a == b)),      # 1 or 0, as `a == b` is
    "ne": (2, lambda env, a, b: int(a != b)),
}


# ---------------------------------------------------------------- evaluation
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
    if isinstance(v, Bin):
        op = v.op
        if op not in _ARITHMETIC:
            if op in _LOGIC:          # short-circuit, as Python does: `s > 0 and 8 / s > 2`
                a = _truth(evaluate(v.a, env))
                return int(a) if a == (op == "or") else int(_truth(evaluate(v.b, env)))
            return _compare(op, evaluate(v.a, env), evaluate(v.b, env))
        a, b = _num(evaluate(v.a, env)), _num(evaluate(v.b, env))
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif b == 0:
            raise GenotypeError(f"division by zero in {format_value(v)}")
        elif op == "/":
            r = a / b
        else:
            r = a // b
        if type(r) is int and -MAX_INT <= r <= MAX_INT:     # the common case, inline
            return r
        return _in_range(r, v)
    if isinstance(v, Neg):
        return -_num(evaluate(v.a, env))    # ranges are symmetric: -x is in range when x is
    if isinstance(v, Not):
        return int(not _truth(evaluate(v.a, env)))
    if isinstance(v, Call):
        arity, fn = FUNCTIONS[v.fn]
        try:
            r = fn(env, *(_num(evaluate(a, env)) for a in v.args))
        except (OverflowError, ValueError):      # W(8) at width=1e308 is int(inf); D(8) ceil(inf)
            raise GenotypeError(f"{format_value(v)} is not a finite number") from None
        if type(r) is int and -MAX_INT <= r <= MAX_INT:
            return r
        return _in_range(r, v)
    raise GenotypeError(f"bad value {v!r}")


def _num(x):
    if isinstance(x, str) or isinstance(x, bool):
        raise GenotypeError(f"expected a number, got {x!r}")
    return x


def _compare(op, a, b) -> int:
    if op == "==":                 # == and != also compare words: `if fn == relu`
        return int(a == b)
    if op == "!=":
        return int(a != b)
    a, b = _num(a), _num(b)
    return int(a < b if op == "<" else a <= b if op == "<=" else a > b if op == ">" else a >= b)


def _truth(x) -> bool:
    if x == "true" or x == "false":
        return x == "true"
    if isinstance(x, str):
        raise GenotypeError(f"expected a number or true/false, got {x!r}")
    return x != 0


def _in_range(r, v):
    """`r` when it is a finite number and, if an integer, fits in 64 bits."""
    if type(r) is int:
        if -MAX_INT <= r <= MAX_INT:
            return r
        raise GenotypeError(f"{format_value(v)} is beyond 64-bit integers ({README})")
    if -_FLOAT_MAX <= r <= _FLOAT_MAX:      # False for inf and nan
        return r
    raise GenotypeError(f"{format_value(v)} is not a finite number (it overflows to {r})")


# ---------------------------------------------------------------- parsing
# Binding power of each binary operator (higher binds tighter); `not` sits between and and ==.
_BINARY = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "//": 6}
_NOT, _NEG = 3, 7


def parse_value(cur) -> Value:
    """One value expression (see the module doc) from the cursor, within the limits."""
    start, first = cur.i, cur.tok
    v, _ = _binary(cur, 1, 0)
    if cur.i - start > MAX_VALUE_TOKENS:
        raise ParseError(f"a value of {cur.i - start:,} tokens is over the limit of {MAX_VALUE_TOKENS} "
                         f"tokens ({README}); split it with let", first.line, first.col, cur.source)
    return v


def parse_unary(cur) -> Value:
    """A value without binary operators at the top (a stride: `conv3x3/2`, `/s`, `/(s*2)`)."""
    return _unary(cur, 0)[0]


def _too_deep(cur, t) -> ParseError:
    return ParseError(f"a value nested deeper than the limit of {MAX_VALUE_DEPTH} levels (each operator, "
                      f"call, parenthesis and sign is a level; {README}); split it with let",
                      t.line, t.col, cur.source)


# Each parser returns (value, height): the levels below it. `depth` counts the levels above, so
# `depth + height` is checked against the limit on the way down and on the way up (a long
# `1+1+...` is deep only on the way up).
def _binary(cur, min_bp, depth):
    if depth > MAX_VALUE_DEPTH:
        raise _too_deep(cur, cur.tok)
    t = cur.tok
    if t.kind == "name" and t.text == "not" and min_bp <= _NOT:
        cur.next()
        a, h = _binary(cur, _NOT, depth + 1)
        v, h = Not(a), h + 1
    else:
        v, h = _unary(cur, depth)
    compared = False
    while True:
        t = cur.tok
        bp = _BINARY.get(t.text)
        if bp is None or bp < min_bp:
            return v, h
        if t.text in COMPARISONS:
            if compared:
                raise ParseError("comparisons do not chain: write `a < b and b < c`",
                                 t.line, t.col, cur.source)
            compared = True
        else:
            compared = False
        cur.next()
        b, bh = _binary(cur, bp + 1, depth + 1)
        v, h = Bin(t.text, v, b), max(h, bh) + 1
        if depth + h > MAX_VALUE_DEPTH:
            raise _too_deep(cur, t)


def _unary(cur, depth):
    t = cur.tok
    if t.kind == "op" and t.text == "-":
        cur.next()
        if depth + 1 > MAX_VALUE_DEPTH:
            raise _too_deep(cur, t)
        a, h = _unary(cur, depth + 1)
        if isinstance(a, (int, float)):
            return -a, 0            # -8 is the number -8
        return Neg(a), h + 1
    if t.kind == "op" and t.text == "(":
        cur.next()
        v, h = _binary(cur, 1, depth + 1)
        cur.expect(")")
        return v, h + 1
    if t.kind == "number":
        cur.next()
        return _number(cur, t), 0
    if t.kind == "name" and t.text not in OPERATOR_WORDS:
        cur.next()
        if not (cur.at("(") and cur.tok.kind == "op"):
            return Sym(t.text), 0
        if t.text not in FUNCTIONS:
            raise ParseError(f"unknown function {t.text!r} (known: {', '.join(FUNCTIONS)}; and the "
                             f"operators + - * / // == != < <= > >= and or not)", t.line, t.col, cur.source)
        cur.next()
        args, h = [], 0
        while True:
            a, ah = _binary(cur, 1, depth + 1)
            args.append(a)
            h = max(h, ah + 1)
            if not cur.accept(","):
                break
        cur.expect(")")
        arity = FUNCTIONS[t.text][0]
        if len(args) != arity:
            raise ParseError(f"{t.text}() takes {arity} argument(s), got {len(args)}",
                             t.line, t.col, cur.source)
        if depth + h > MAX_VALUE_DEPTH:
            raise _too_deep(cur, t)
        return Call(t.text, tuple(args)), h
    raise cur.error("a number, a name or '('")


def _number(cur, t):
    text = t.text
    if any(ch in text for ch in ".eE"):
        x = float(text)
        if x > _FLOAT_MAX:
            raise ParseError(f"number {text} is not finite (the largest is about 1.8e308)",
                             t.line, t.col, cur.source)
        return x
    x = int(text)           # at most MAX_TOKEN digits: the lexer saw to it
    if x > MAX_INT:
        raise ParseError(f"integer {text} is beyond 64-bit integers (the limit is {MAX_INT:,}; {README})",
                         t.line, t.col, cur.source)
    return x


# ---------------------------------------------------------------- formatting
_PREC = {**_BINARY}


def format_value(v: Value, prec: int = 0) -> str:
    """The text of a value, with the parentheses its precedence needs and no more (so text at
    the nesting limit formats back within it). A negative number binds as tightly as a sign."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v) if v >= 0 or prec <= _NEG else f"({v})"
    if isinstance(v, float):
        s = repr(v)
        if s in ("inf", "-inf", "nan"):
            raise GenotypeError(f"value {s} cannot be written in a genotype")
        return s if v >= 0 or prec <= _NEG else f"({s})"
    if isinstance(v, str):
        return v
    if isinstance(v, Sym):
        return v.name
    if isinstance(v, Neg):
        return "-" + format_value(v.a, _NEG)
    if isinstance(v, Not):
        s = "not " + format_value(v.a, _NOT)
        return f"({s})" if _NOT < prec else s
    if isinstance(v, Call):
        return f"{v.fn}(" + ", ".join(format_value(a) for a in v.args) + ")"
    if isinstance(v, Bin):
        p = _PREC[v.op]
        # Left-associative: the right operand needs parentheses at equal precedence, and so
        # does the left one of a comparison (they do not chain).
        left = format_value(v.a, p + 1 if v.op in COMPARISONS else p)
        s = f"{left} {v.op} {format_value(v.b, p + 1)}"
        return f"({s})" if p < prec else s
    raise GenotypeError(f"bad value {v!r}")


def is_literal(v: Value) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
