"""The text form of a genotype: `parse(text) -> Genotype` and `format(g) -> text`.

    net resnet18 input 3x224x224 classes 1000
    defaults conv.bias=0
    cell basic(c, stride):
      a   = conv3x3/stride c=c bn relu <- in
      b   = conv3x3 c=c bn <- a
      out = relu <- add(b, shortcut c=c s=stride <- in)
    stem  conv7x7/2 c=64 bn relu maxpool3x3/2 p=1
    stage basic(64, 1) x2
    stage basic(128, 2) x2 rest(stride=1)
    head  gap flatten fc c=classes

Header lines: `net`, `defaults` (op.attr=value), `scale` (width, depth,
divisor for W() and D()), `let` (named constants, e.g. a family's depths). Cells: `cell NAME(params) [inputs 2]:` then indented
`node = expr` lines; `out` is the output. An expr is `ops... <- src`, a
reference, or `add(...)`, `cat(...)`, `mul(...)` of exprs; a trailing
`if COND else NAME` skips the node when COND is 0, and the node is then NAME (an input,
an earlier node, or `none`, which joins leave out): optional expand convs, SE, residuals,
branches. The `else` is required (a text written before it was is refused with the
line's explicit form; `legacy.py` reads such texts stored in run folders and rewrites such files:
`nasty upgrade FILE`). Body lines:
`stem|stage|head CHAIN [x N] [rest(k=v, ...)]`. A two-input cell reads `in` and `prev`
(h_{i-1}, h_{i-2}): by default `prev` is the state before last; a call may say
`prev=-3` on a body line (a state offset, -1 being the line's own input), and inside
another cell `prev=NODE` (`out = blocks(F, prev=h) <- x`).

`format` is canonical and `parse(format(g)) == g`. Nothing here uses eval.
"""
from __future__ import annotations

from .errors import ParseError
from .limits import MAX_EXPR_DEPTH, MAX_TEXT, README, classes_problem, input_problem
from .expr import Sym, format_value, parse_unary, parse_value
from .ir import (Apply, CellCall, Combine, Cell, Genotype, Layer, Node, Op, Param, Ref,
                 SECTIONS, sorted_attrs)
from .lexer import Cursor, tokenize_line
from . import ops as V


# ================================================================ parsing
def parse(text: str, source: str = "") -> Genotype:
    """Parse and statically check a genotype text (shapes are checked by `validate`)."""
    from .check import check
    if not isinstance(text, str):
        raise ParseError(f"a genotype text is a str, got {type(text).__name__}", None, None, source)
    if len(text) > MAX_TEXT:
        raise ParseError(f"a genotype text of {len(text):,} characters is over the limit of {MAX_TEXT:,} "
                         f"characters ({README})", None, None, source)
    g = Parser(text, source).parse()
    check(g)
    return g


class Parser:
    def __init__(self, text: str, source: str, legacy: bool = False):
        self.source = source
        self.legacy = legacy        # accept `if` without `else` (legacy.py makes it explicit)
        self.lines = []
        self.raw = {}               # line number -> text, for messages that show the line rewritten
        self.node_lines = []        # per cell, in order: the line number of each node (legacy.rewrite edits them)
        for i, raw in enumerate(text.splitlines(), start=1):
            toks = tokenize_line(raw, i, source)
            if toks[0].kind != "end":
                indented = raw[:1] in (" ", "\t")
                self.lines.append((indented, Cursor(toks, source)))
                self.raw[i] = raw
        self.pos = 0

    def err(self, msg, cur=None):
        t = cur.tok if cur else None
        return ParseError(msg, t.line if t else None, t.col if t else None, self.source)

    def parse(self) -> Genotype:
        if not self.lines:
            raise ParseError("empty genotype: expected 'net NAME input CxHxW'", 1, 1, self.source)
        header = self._net(self.lines[0][1])
        defaults, scale, lets, cells, layers = [], [], [], [], []
        self.pos = 1
        while self.pos < len(self.lines):
            indented, cur = self.lines[self.pos]
            if indented:
                raise self.err("unexpected indented line (cell bodies follow a 'cell NAME:' line)", cur)
            word = cur.tok.text
            self.pos += 1
            if word == "defaults":
                cur.next()
                defaults += self._kvs(cur, dotted=True)
            elif word == "scale":
                cur.next()
                scale += self._kvs(cur, dotted=False)
            elif word == "let":
                cur.next()
                lets += self._kvs(cur, dotted=False)
            elif word == "cell":
                cells.append(self._cell(cur))
            elif word in SECTIONS:
                layers.append(self._layer(cur))
            elif word == "net":
                raise self.err("a genotype has one 'net' line", cur)
            else:
                raise cur.error("'cell', 'stem', 'stage', 'head', 'let', 'defaults' or 'scale'")
        for what, pairs in (("defaults", defaults), ("scale", scale), ("let", lets)):
            seen = set()
            for k, _ in pairs:
                if k in seen:
                    raise ParseError(f"{what}: {k} is given twice; keep one", None, None, self.source)
                seen.add(k)
        return Genotype(header[0], header[1], header[2], sorted_attrs(defaults), sorted_attrs(scale),
                        tuple(lets), tuple(cells), tuple(layers))

    def _net(self, cur):
        if not cur.accept("net"):
            raise cur.error("'net NAME input CxHxW' as the first line")
        name = cur.expect_kind("name", "the network's name").text
        cur.expect("input")
        t = cur.tok
        if t.kind != "shape" or t.text.count("x") != 2:
            raise cur.error("an input shape CxHxW such as 3x224x224")
        cur.next()
        shape = tuple(int(x) for x in t.text.split("x"))
        problem = input_problem(shape)
        if problem:
            raise ParseError(problem, t.line, t.col, self.source)
        classes = None
        if cur.accept("classes"):
            t = cur.expect_kind("number", "the number of classes")
            classes = int(t.text) if t.text.isdigit() else t.text
            problem = classes_problem(classes)
            if problem:
                raise ParseError(problem, t.line, t.col, self.source)
        if not cur.done():
            raise cur.error("'classes N' or end of line")
        return name, shape, classes

    def _kvs(self, cur, dotted):
        out = []
        while not cur.done():
            t = cur.expect_kind("name", "key=value")
            if ("." in t.text) != dotted:
                what = "op.attr (e.g. bn.eps=1e-3)" if dotted else "a plain name"
                raise ParseError(f"expected {what}, got {t.text!r}", t.line, t.col, self.source)
            cur.expect("=")
            out.append((t.text, parse_value(cur)))
        if not out:
            raise cur.error("key=value")
        return out

    def _cell(self, cur):
        cur.expect("cell")
        name = cur.expect_kind("name", "the cell's name").text
        params = []
        if cur.accept("("):
            if not cur.accept(")"):
                while True:
                    p = cur.expect_kind("name", "a parameter name").text
                    default = parse_value(cur) if cur.accept("=") else None
                    params.append(Param(p, default))
                    if cur.accept(")"):
                        break
                    cur.expect(",")
        inputs = 1
        if cur.accept("inputs"):
            t = cur.expect_kind("number", "1 or 2")
            if t.text not in ("1", "2"):
                raise ParseError("a cell has 1 or 2 inputs", t.line, t.col, self.source)
            inputs = int(t.text)
        cur.expect(":")
        if not cur.done():
            raise cur.error("end of line after ':'")
        nodes, lines = [], []
        while self.pos < len(self.lines) and self.lines[self.pos][0]:
            ncur = self.lines[self.pos][1]
            self.pos += 1
            nt = ncur.expect_kind("name", "a node name")
            ncur.expect("=")
            expr, when, otherwise = self._node_body(ncur)
            nodes.append(Node(nt.text, expr, when, otherwise))
            lines.append(nt.line)
        if not nodes:
            raise self.err(f"expected indented node lines 'NAME = expr' under 'cell {name}:'", cur)
        cell = Cell(name, tuple(params), inputs, tuple(nodes))
        self.node_lines.append(lines)
        if not self.legacy:
            from .legacy import missing_else
            found = missing_else(cell)
            if found:       # shown as the user wrote the line, with the else it needs
                i, hint = found
                raw = " ".join(self.raw[lines[i]].split("#")[0].split())
                raise ParseError(hint(raw, self.source), lines[i], None, self.source)
        return cell

    def _node_body(self, cur):
        """`expr [if COND else NAME]` up to the end of the line (a node's right-hand side)."""
        expr = self._expr(cur, stop=("if", "else"))
        when = otherwise = None
        if cur.accept("if"):
            when = parse_value(cur)
            if cur.accept("else"):
                otherwise = cur.expect_kind("name", "what the node is when its guard is false: an input, "
                                                    "an earlier node, or none").text
        elif cur.at("else"):
            raise cur.error("'if CONDITION else NAME' ('else' comes after an if)")
        if not cur.done():
            raise cur.error("'if CONDITION else NAME' or end of line" if when is None else
                            "end of line" if otherwise is not None else "'else NAME' after the condition")
        return expr, when, otherwise

    def _layer(self, cur):
        section = cur.next().text
        chain = self._chain(cur, stop=("x", "rest"))
        if not chain:
            raise cur.error(f"ops or a cell after '{section}'")
        repeat = 1
        t = cur.tok
        if t.kind == "name" and V._REPEAT.match(t.text):
            cur.next()
            repeat = int(t.text[1:])
        elif cur.accept("x"):
            repeat = parse_value(cur)
        rest = ()
        if cur.accept("rest"):
            cur.expect("(")
            rest = self._kwargs(cur)
        if not cur.done():
            raise cur.error("'xN', 'rest(...)' or end of line")
        return Layer(section, chain, repeat, sorted_attrs(rest))

    def _kwargs(self, cur):
        """k=v, ... ')' (the '(' already read)."""
        out = []
        if cur.accept(")"):
            return out
        while True:
            k = cur.expect_kind("name", "name=value").text
            cur.expect("=")
            out.append((k, parse_value(cur)))
            if cur.accept(")"):
                return out
            cur.expect(",")

    def _expr(self, cur, stop, depth=0):
        """A node expression; `depth` counts the `<-` and add/cat/mul levels above it."""
        t = cur.tok
        if t.kind == "name" and t.text in V.COMBINERS and cur.peek().text == "(":
            self._nest(t, depth)
            cur.next()
            cur.next()
            args = [self._expr(cur, stop=(",", ")"), depth=depth + 1)]
            while cur.accept(","):
                args.append(self._expr(cur, stop=(",", ")"), depth=depth + 1))
            cur.expect(")")
            return Combine(t.text, tuple(args))
        start = cur.i
        chain = self._chain(cur, stop=stop)
        if cur.tok.kind == "arrow":
            cur.next()
            if not chain:
                raise cur.error("ops before '<-'")
            self._nest(t, depth)
            return Apply(chain, self._expr(cur, stop, depth + 1))
        # No arrow: this must be a plain reference to an input or a node.
        if len(chain) == 1 and cur.i == start + 1:
            return Ref(t.text)
        raise ParseError("expected 'ops <- source', a node name, or add/cat/mul(...)",
                         t.line, t.col, self.source)

    def _nest(self, t, depth):
        if depth >= MAX_EXPR_DEPTH:
            raise ParseError(f"a node expression nested deeper than the limit of {MAX_EXPR_DEPTH} levels "
                             f"(each '<-' and add/cat/mul is a level; {README}); split it into more nodes",
                             t.line, t.col, self.source)

    def _chain(self, cur, stop):
        chain = []
        while cur.tok.kind == "name" and cur.tok.text not in stop and not (
                "x" in stop and V._REPEAT.match(cur.tok.text)):
            t = cur.next()
            if cur.at("(") and cur.tok.kind == "op":      # cell call with arguments
                cur.next()
                args, kwargs = [], []
                if not cur.accept(")"):
                    while True:
                        if cur.tok.kind == "name" and cur.peek().text == "=":
                            k = cur.next().text
                            cur.next()
                            kwargs.append((k, parse_value(cur)))
                        else:
                            if kwargs:
                                raise cur.error("keyword argument (positional ones come first)")
                            args.append(parse_value(cur))
                        if cur.accept(")"):
                            break
                        cur.expect(",")
                chain.append(CellCall(t.text, tuple(args), sorted_attrs(kwargs)))
                continue
            split = V.split_op_name(t.text)
            if split is None:
                if cur.tok.kind == "name" and cur.peek().text == "=" or cur.at("/"):
                    raise ParseError(f"unknown op {t.text!r}{V.suggest_op(t.text)}; expected an op such as conv3x3, "
                                     f"or a cell call NAME(args)", t.line, t.col, self.source)
                chain.append(CellCall(t.text))
                continue
            kind, kh, kw = split
            attrs = {}
            if kh is not None:
                attrs["kh"], attrs["kw"] = kh, kw
            if cur.tok.kind == "op" and cur.tok.text == "/":
                cur.next()
                attrs["s"] = parse_unary(cur)
            while cur.tok.kind == "name" and cur.peek().text == "=" and cur.peek().kind == "op":
                kt = cur.next()
                cur.next()
                key = kt.text
                val = parse_value(cur)
                if key == "k" and V.SPECS[kind].kernel:
                    if "kh" in attrs:      # conv3x3 k=5: the kernel is given twice
                        raise ParseError(f"k= given twice: the kernel is already {format_value(attrs['kh'])}"
                                         f"x{format_value(attrs['kw'])}", kt.line, kt.col, self.source)
                    attrs["kh"] = attrs["kw"] = val
                    continue
                if key in attrs:
                    raise ParseError(f"{key}= given twice", kt.line, kt.col, self.source)
                attrs[key] = val
            chain.append(Op(kind, sorted_attrs(attrs.items())))
        return tuple(chain)


# ================================================================ formatting
def format(g: Genotype) -> str:  # noqa: A001 - mirrors parse()
    lines = [f"net {g.name} input {'x'.join(map(str, g.input))}"
             + (f" classes {g.classes}" if g.classes is not None else "")]
    if g.defaults:
        lines.append("defaults " + " ".join(f"{k}={format_value(v)}" for k, v in g.defaults))
    if g.scale:
        lines.append("scale " + " ".join(f"{k}={format_value(v)}" for k, v in g.scale))
    if g.lets:
        lines.append("let " + " ".join(f"{k}={format_value(v)}" for k, v in g.lets))
    for cell in g.cells:
        lines.append("")
        lines += format_cell(cell)
    if g.cells:
        lines.append("")
    width = max((len(l.section) for l in g.layers), default=4)
    for layer in g.layers:
        s = f"{layer.section:<{width}} {format_chain(layer.chain)}"
        if layer.repeat != 1:
            s += f" x{layer.repeat}" if isinstance(layer.repeat, int) else f" x {format_value(layer.repeat)}"
        if layer.rest:
            s += " rest(" + ", ".join(f"{k}={format_value(v)}" for k, v in layer.rest) + ")"
        lines.append(s)
    return "\n".join(lines) + "\n"


def format_cell(cell: Cell) -> list[str]:
    head = f"cell {cell.name}"
    if cell.params:
        head += "(" + ", ".join(p.name + (f"={format_value(p.default)}" if p.default is not None else "")
                                for p in cell.params) + ")"
    if cell.inputs != 1:
        head += f" inputs {cell.inputs}"
    width = max(len(n.name) for n in cell.nodes)
    return [head + ":"] + [f"  {n.name:<{width}} = {format_node(n)}" for n in cell.nodes]


def format_node(n: Node) -> str:
    """A node's right-hand side: `expr [if COND else NAME]`."""
    if n.when is None:
        return format_expr(n.expr)
    return format_expr(n.expr) + f" if {format_value(n.when)}" + (f" else {n.otherwise}" if n.otherwise else "")


def format_expr(e) -> str:
    if isinstance(e, Ref):
        return e.name
    if isinstance(e, Apply):
        return f"{format_chain(e.chain)} <- {format_expr(e.src)}"
    return f"{e.kind}(" + ", ".join(format_expr(a) for a in e.args) + ")"


def format_chain(chain) -> str:
    return " ".join(format_op(el) if isinstance(el, Op) else format_call(el) for el in chain)


def format_call(c: CellCall) -> str:
    if not c.args and not c.kwargs:
        return c.name
    parts = [format_value(a) for a in c.args] + [f"{k}={format_value(v)}" for k, v in c.kwargs]
    return f"{c.name}(" + ", ".join(parts) + ")"


def format_op(op: Op) -> str:
    attrs = dict(op.attrs)
    s = op.kind
    kh, kw = attrs.get("kh"), attrs.get("kw")
    if op.kind in V.KERNEL_OPS and isinstance(kh, int) and isinstance(kw, int) and kh >= 0 and kw >= 0:
        s += f"{kh}x{kw}"
        del attrs["kh"], attrs["kw"]
    elif kh is not None and kh == kw:
        attrs["k"] = kh
        del attrs["kh"], attrs["kw"]
    stride = attrs.get("s")
    if (isinstance(stride, int) and not isinstance(stride, bool) and stride >= 0) \
            or isinstance(stride, Sym):
        s += f"/{format_value(stride)}"
        del attrs["s"]
    for k in sorted(attrs):
        s += f" {k}={format_value(attrs[k])}"
    return s
