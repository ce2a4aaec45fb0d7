"""The JSON form of a genotype, for tools. Values are JSON numbers or, where they
are expressions, strings in the text form's value syntax; chains and node
expressions are strings in the text form's syntax. Parsed without eval, within the limits of
limits.py (a document's size; numbers finite, integers within 64 bits)."""
from __future__ import annotations

import json
import re

from .errors import ParseError
from .expr import format_value, is_literal, parse_value
from .ir import Cell, Genotype, Layer, Node, Param, sorted_attrs
from .lexer import Cursor, tokenize_line
from .limits import MAX_INT, MAX_TEXT, MAX_TOKEN, README, classes_problem, input_problem


def _val(v):
    return v if is_literal(v) else format_value(v)


def to_dict(g: Genotype) -> dict:
    from .text import format_chain, format_node
    return {
        "format": "nasty-genotype/1",
        "name": g.name, "input": list(g.input), "classes": g.classes,
        "defaults": {k: _val(v) for k, v in g.defaults},
        "scale": {k: _val(v) for k, v in g.scale},
        "let": [[k, _val(v)] for k, v in g.lets],
        "cells": [{"name": c.name,
                   "params": [[p.name, None if p.default is None else _val(p.default)] for p in c.params],
                   "inputs": c.inputs,
                   "nodes": [[n.name, format_node(n)] for n in c.nodes]} for c in g.cells],
        "layers": [{"section": l.section, "chain": format_chain(l.chain), "repeat": _val(l.repeat),
                    "rest": {k: _val(v) for k, v in l.rest}} for l in g.layers],
    }


def to_json(g: Genotype, indent: int = 2) -> str:
    return json.dumps(to_dict(g), indent=indent)


def json_value(x, where):
    """A value of the JSON form: a number as it is, a string as a value expression."""
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise ParseError(f"{where}: expected a number or an expression string, got {x!r}")
    if isinstance(x, int):
        if abs(x) > MAX_INT:
            raise ParseError(f"{where}: integer {x} is beyond 64-bit integers ({README})")
        return x
    if isinstance(x, float):
        if x != x or abs(x) == float("inf"):
            raise ParseError(f"{where}: {x} is not a finite number")
        return x
    cur = Cursor(tokenize_line(x, 1, where), where)
    v = parse_value(cur)
    if not cur.done():
        raise cur.error("end of value")
    return v


def _ident(s, where):
    """Names must be what the text form can write back, or the two forms would disagree."""
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) or len(s) > MAX_TOKEN:
        shown = repr(s) if len(repr(s)) < 80 else repr(s)[:60] + "..."
        raise ParseError(f"{where}: expected an identifier (letters, digits, _; at most {MAX_TOKEN} characters), "
                         f"got {shown}")
    return s


def _need(d, key, typ, where):
    if not isinstance(d, dict) or key not in d:
        raise ParseError(f"{where}: missing key {key!r}")
    v = d[key]
    if not isinstance(v, typ) or isinstance(v, bool):
        raise ParseError(f"{where}: {key!r} must be {typ.__name__ if isinstance(typ, type) else 'a list'}")
    return v


def from_dict(d: dict, source: str = "json", legacy: bool = False) -> Genotype:
    """The genotype of a JSON document (`legacy`: let `if` without `else` through, for legacy.py)."""
    from .check import check
    from .text import Parser
    if not isinstance(d, dict):
        raise ParseError(f"{source}: a genotype JSON document is an object")
    name = _need(d, "name", str, source)
    _ident(name, f"{source} name")
    for key in ("cells", "let", "layers"):
        if key in d and not isinstance(d[key], list):
            raise ParseError(f"{source}: {key!r} must be a list")
    for key in ("cells", "layers"):
        for i, item in enumerate(d.get(key) or []):
            if not isinstance(item, dict):
                raise ParseError(f"{source} {key}[{i}]: expected an object")
    shape = _need(d, "input", list, source)
    problem = input_problem(shape)
    if problem:
        raise ParseError(f"{source}: 'input': {problem.replace('CxHxW', '[C, H, W]')}")
    classes = d.get("classes")
    problem = classes_problem(classes)
    if problem:
        raise ParseError(f"{source}: 'classes': {problem} (or null)")

    def line_parser(text, where):
        if not isinstance(text, str):
            raise ParseError(f"{where}: expected a string, got {text!r}")
        p = Parser(text, where)
        if len(p.lines) != 1:
            raise ParseError(f"{where}: expected one line of genotype text")
        return p, p.lines[0][1]

    cells = []
    for i, c in enumerate(d.get("cells", [])):
        where = f"{source} cells[{i}]"
        cname = _ident(_need(c, "name", str, where), where)
        params = []
        for p in _need(c, "params", list, where) if "params" in c else []:
            if not (isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)):
                raise ParseError(f"{where}: each param is [name, default-or-null]")
            params.append(Param(_ident(p[0], where), None if p[1] is None else json_value(p[1], where)))
        nodes = []
        for n in _need(c, "nodes", list, where):
            if not (isinstance(n, list) and len(n) == 2 and isinstance(n[0], str)):
                raise ParseError(f"{where}: each node is [name, expression]")
            _ident(n[0], where)
            p, cur = line_parser(n[1], f"{where} node {n[0]}")
            e, when, otherwise = p._node_body(cur)
            nodes.append(Node(n[0], e, when, otherwise))
        inputs = c.get("inputs", 1)
        if type(inputs) is not int or inputs not in (1, 2):        # true is not 1 here
            raise ParseError(f"{where}: 'inputs' must be 1 or 2")
        cells.append(Cell(cname, tuple(params), inputs, tuple(nodes)))
    layers = []
    for i, l in enumerate(_need(d, "layers", list, source)):
        where = f"{source} layers[{i}]"
        section = _need(l, "section", str, where)
        if section not in ("stem", "stage", "head"):
            raise ParseError(f"{where}: section must be stem, stage or head")
        p, cur = line_parser(l.get("chain"), where)
        chain = p._chain(cur, stop=())
        if not chain or not cur.done():
            raise cur.error("a chain of ops or cells")
        rest = l.get("rest", {})
        if not isinstance(rest, dict):
            raise ParseError(f"{where}: 'rest' must be an object")
        layers.append(Layer(section, chain, json_value(l.get("repeat", 1), where),
                            sorted_attrs((_ident(k, where), json_value(v, where)) for k, v in rest.items())))
    kv = lambda key: sorted_attrs((k, json_value(v, f"{source} {key}")) for k, v in (d.get(key) or {}).items())
    lets = []
    for item in d.get("let", []):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ParseError(f"{source}: each 'let' is [name, value]")
        lets.append((_ident(item[0], f"{source} let"), json_value(item[1], f"{source} let")))
    for key in ("defaults", "scale"):
        if not isinstance(d.get(key) or {}, dict):
            raise ParseError(f"{source}: {key!r} must be an object")
    g = Genotype(name, tuple(shape), classes, kv("defaults"), kv("scale"), tuple(lets),
                 tuple(cells), tuple(layers))
    return check(g, legacy=legacy)


def _no_constant(name):
    raise ParseError(f"{name} is not a number a genotype can hold (numbers are finite)")


def from_json(text: str, source: str = "json", legacy: bool = False) -> Genotype:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(f"{source}: not UTF-8 text (byte 0x{text[e.start]:02x} at offset {e.start})") from None
    if not isinstance(text, str):
        raise ParseError(f"{source}: a genotype JSON document is text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ParseError(f"{source}: a JSON document of {len(text):,} characters is over the limit of "
                         f"{MAX_TEXT:,} characters ({README})")
    try:
        d = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ParseError(f"invalid JSON: {e.msg}", e.lineno, e.colno, source) from None
    except ParseError as e:
        raise ParseError(f"{source}: {e}") from None
    except RecursionError:      # json's own guard against deep nesting; a genotype is 4 levels deep
        raise ParseError(f"{source}: JSON nested too deeply to be a genotype") from None
    except ValueError as e:     # e.g. an integer of more digits than Python converts
        raise ParseError(f"{source}: invalid JSON: {e}") from None
    return from_dict(d, source, legacy)
