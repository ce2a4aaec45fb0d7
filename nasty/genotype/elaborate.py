"""Elaboration: a Genotype at an input shape -> a flat program of primitive steps.

This is nasty's shape inference. It evaluates every attribute expression,
expands cells and repeats, infers every tensor shape and checks every join, so
that a bad genotype fails here with a GenotypeError naming the node, never as a
torch shape error later. What each op does to a shape (and which attribute values
it accepts) is its entry in the op registry (`ops.py`); this module runs those rules
over the cells, repeats and joins. The cost model and the compiler both walk the
same `Program`, which is why their numbers agree by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ops as V
from .errors import GenotypeError
from .expr import Sym, evaluate
from .ir import NONE, Apply, CellCall, Combine, Genotype, Op, Ref
from .limits import MAX_CELL_DEPTH, MAX_CHANNELS, MAX_LAYERS, MAX_REPEAT, MAX_SIZE, README, input_problem, over
from .paths import reserved, segment

INPUT = -1   # handle of the network input


@dataclass
class Step:
    name: str                      # dotted path, also the module path in the compiled net (a node
                                   # named `class` or `forward` is the segment `class_`: paths.py)
    kind: str                      # primitive kind (conv, bn, relu, ...) or add/cat/mul
    inputs: tuple[int, ...]        # handles of the inputs (INPUT or an earlier step index)
    attrs: dict                    # concrete attributes
    in_shapes: tuple[tuple, ...]
    out: tuple                     # (C, H, W) or (F,)
    written: str = ""              # the op as the genotype wrote it, where it lowers to `kind` (dwconv,
                                   # sep, linear, shortcut, act, swish); "" where it is `kind` itself


@dataclass
class Program:
    genotype: Genotype
    input: tuple[int, int, int]
    steps: list[Step] = field(default_factory=list)
    output: int = INPUT

    def shape(self, h: int) -> tuple:
        return tuple(self.input) if h == INPUT else self.steps[h].out


_fmt = V.fmt_shape
conv_out, pool_out, same_pads = V.conv_out, V.pool_out, V.same_pads    # shape helpers, kept importable here


def _int(v, what, lo=None):
    try:
        return (V.INT if lo is None else V._integer(lo)).convert(v)
    except V.BadValue:
        raise GenotypeError(f"{what} must be {'an integer' if lo is None else f'an integer >= {lo}'}, "
                            f"got {v!r}") from None


# Ops made of other ops whose steps take those ops' defaults, not attributes of their own: the
# conv and bn of `shortcut` follow `defaults conv.bias=` and `bn.eps=`, so `nasty show` names them
# conv and bn. Every other such op (dwconv, sep, linear, act, swish) has its own attributes and
# defaults (`dwconv.bias=`), and its steps are shown under its own name.
_TAKES_THEIR_DEFAULTS = frozenset({"shortcut"})


def _labels(chain) -> set:
    """The layer labels a chain's elements take under one name (op kinds, cell names)."""
    return {el.kind if isinstance(el, Op) else el.name for el in chain}


class _Elaborator:
    def __init__(self, g: Genotype, input_shape, classes):
        self.g = g
        self.prog = Program(g, tuple(input_shape))
        self.defaults = dict(g.defaults)
        scale = {k: evaluate(v, {}) for k, v in g.scale}
        self.env = {"width": 1.0, "depth": 1.0, "divisor": 8, **scale,
                    "classes": classes if classes is not None else g.classes}
        if self.env["classes"] is None:
            del self.env["classes"]
        for k, v in g.lets:
            try:
                self.env[k] = evaluate(v, self.env)
            except GenotypeError as e:        # e.g. division by zero: say which let
                raise GenotypeError(f"{g.name}: let {k}: {e}") from None
        self.where = ""
        self._calls: dict = {}   # (cell, args, input shapes) -> where its steps were emitted
        self._raw: dict = {}     # id(Op) -> resolved raw attributes; the genotype keeps its Ops alive
        self._operands = ()      # the expressions joined by the current add/cat/...: for error hints
        self._default: dict = {}  # (op, attr) -> its value where a genotype op does not give it
        self.size = 0            # layers so far (ops applied, cell nodes and arguments, replayed steps)
        self.nesting = 0         # cells being expanded inside each other: MAX_CELL_DEPTH
        self.guards = 0          # guarded nodes evaluated so far: a cell without one has no dead branch
        self.written = ""        # the op being lowered, as written (its steps are of other kinds)

    # ---------------------------------------------------------------- helpers
    def fail(self, msg):
        where = self.where
        if isinstance(where, tuple):   # built lazily: formatting it for every node costs time
            where = f"{where[0]} (cell {where[1]})" + (f" node {where[2]!r}" if len(where) > 2 else "")
        raise GenotypeError(f"{self.g.name}: {where}: {msg}" if where else f"{self.g.name}: {msg}")

    def shape(self, h):
        return self.prog.shape(h)

    def grow(self, n):
        """Count `n` more layers; refuse a network that expands past MAX_LAYERS (nothing hangs)."""
        self.size += n
        if self.size > MAX_LAYERS:
            self.fail(f"the network expands past the limit of {MAX_LAYERS:,} layers (counting every op, "
                      f"cell node and cell argument after repeats; {README}); use fewer repeats or smaller cells")

    def emit(self, name, kind, inputs, attrs, out):
        for d in out:
            if d < 1:
                self.fail(f"{kind} gives output {_fmt(out)}: the spatial size shrank below 1 "
                          f"(input {_fmt(self.shape(inputs[0]))}); use a larger input or fewer downsamplings")
        if out[0] > MAX_CHANNELS and kind != "flatten":
            self.fail(over(f"{kind} channels", out[0], MAX_CHANNELS))
        # padding and upsampling can grow a map past any input: the same limit as the input's
        for side in out[1:] if len(out) == 3 else ():
            if side > MAX_SIZE:
                self.fail(over(f"{kind} output {_fmt(out)}: side", side, MAX_SIZE))
        self.prog.steps.append(Step(name, kind, tuple(inputs),
                                    attrs, tuple(self.shape(i) for i in inputs), tuple(out), self.written))
        return len(self.prog.steps) - 1

    def attrs(self, op: Op, env):
        """Explicit attrs, then genotype defaults, then the registry's defaults; all evaluated
        and checked against the attribute's domain (`bn eps=-1` fails here, by name)."""
        raw = self._raw.get(id(op))
        if raw is None:       # resolve the sources once per op of the genotype, not once per use
            raw = self._raw[id(op)] = self._resolve(op)
        out = {}
        for key, val, convert in raw:
            if convert is None:          # a plain value, checked when resolved
                out[key] = val
                continue
            try:
                v = evaluate(val, env)
                out[key] = v if v is None else convert(v)
            except GenotypeError as e:
                self.fail(f"{op.kind} {key}=: {e}")
            except V.BadValue:
                self.checked(op.kind, key, v)    # fails with the message naming op and attribute
        return out

    def _resolve(self, op: Op):
        """[(key, value, None)] for every attribute of `op` with a plain value (a number, a word,
        None), checked once here; [(key, expression, its domain's check)] for the others, which
        are evaluated and checked at each use."""
        raw = []
        given = dict(op.attrs)
        for key, attr in V.SPECS[op.kind].attrs.items():
            if key in given:
                val = given[key]
            elif f"{op.kind}.{key}" in self.defaults:
                val = self.defaults[f"{op.kind}.{key}"]
            else:
                val = attr.default
                if val is V.REQUIRED:
                    self.fail(f"{op.kind} needs {key}=")
            if val is None or type(val) in (int, float, str):
                raw.append((key, self.checked(op.kind, key, val), None))
            else:
                raw.append((key, val, attr.domain.convert))
        return raw

    def checked(self, kind, key, val):
        try:
            return V.check_value(kind, key, val)
        except V.BadValue as e:
            self.fail(str(e))

    # ---------------------------------------------------------------- ops (rules in ops.py)
    def op(self, op: Op, h: int, name: str, env) -> int:
        spec = V.SPECS[op.kind]
        if spec.lower is None or op.kind in _TAKES_THEIR_DEFAULTS:
            return self.run_op(spec, self.attrs(op, env), h, name)
        self.written = op.kind          # `nasty show` names its steps as written: dwconv, not conv
        try:
            return self.run_op(spec, self.attrs(op, env), h, name)
        finally:
            self.written = ""

    def apply(self, kind: str, attrs: dict, h: int, name: str) -> int:
        """Apply op `kind` with concrete attrs; the missing ones come from the genotype's
        defaults, then the registry's (how `shortcut` builds its conv and bn)."""
        spec = V.SPECS[kind]
        if len(attrs) != len(spec.attrs):
            attrs = {key: attrs[key] if key in attrs else self.default(kind, key) for key in spec.attrs}
        return self.run_op(spec, attrs, h, name)

    def default(self, kind: str, key: str):
        """Attribute `key` of op `kind` where the genotype does not give it: its `defaults` line,
        else the registry's default."""
        v = self._default.get((kind, key), self)
        if v is self:
            v = self._default[kind, key] = self._find_default(kind, key)
        return v

    def _find_default(self, kind: str, key: str):
        v = self.defaults.get(f"{kind}.{key}")
        if v is None:
            v = V.default(kind, key)
        elif type(v) not in (int, float, str):
            try:
                v = evaluate(v, self.env)
            except GenotypeError as e:
                self.fail(f"defaults {kind}.{key}=: {e}")
        return self.checked(kind, key, v)

    def run_op(self, spec: V.OpSpec, a: dict, h: int, name: str) -> int:
        shape = self.shape(h)
        if spec.takes == "map" and len(shape) != 3:
            self.fail(f"{spec.name} needs a CxHxW input, got the flat {_fmt(shape)}; remove the flatten before it")
        if spec.takes == "flat" and len(shape) != 1:
            self.fail(f"{spec.name} needs a flat input, got {_fmt(shape)}; add flatten (or gap flatten) "
                      f"before it, or use linear c= for a linear layer at every position")
        if spec.lower is not None:
            return spec.lower(self, a, h, name)
        rule = spec.shape(self, a, shape)
        if rule is None:                # these attributes make it a no-op (slice of all channels)
            return h
        return self.emit(name, spec.name, [h], rule[0], rule[1])

    def conv_bias_default(self):
        return self.default("conv", "bias")

    # ---------------------------------------------------------------- structure
    def chain(self, chain, h, name, env, states=None, overrides=None, values=None):
        self.size += len(chain)             # grow(), inline: this is the most frequent count
        if self.size > MAX_LAYERS:
            self.grow(0)
        counts: dict[str, int] = {}
        for el in chain:
            label = el.kind if isinstance(el, Op) else el.name
            n = counts.get(label, 0)
            counts[label] = n + 1
            seg = segment(label, _labels(chain)) if reserved(label) else label     # a cell named `global`
            sub = f"{name}.{seg}" + (f"_{n}" if n else "")
            if len(chain) == 1 and isinstance(el, CellCall):
                sub = name      # `stage2.0.a.conv`, not `stage2.0.block.a.conv`
            if isinstance(el, Op):
                h = self.op(el, h, sub, env)
            else:
                h = self.call(el, h, sub, env, states, overrides, values)
        return h

    def call(self, call: CellCall, h, name, env, states, overrides, values=None):
        cell = self.g.cell(call.name)
        if cell is None:
            self.fail(f"unknown cell {call.name!r}")
        self.grow(len(cell.params))         # each argument is evaluated at every call
        params = {}
        names = [p.name for p in cell.params]
        for p_name, val in zip(names, call.args):
            params[p_name] = evaluate(val, env)
        for k, val in list(call.kwargs) + list((overrides or {}).items()):
            if k in names:
                params[k] = evaluate(val, env)
        for p in cell.params:
            if p.name not in params:
                if p.default is None:
                    self.fail(f"cell {cell.name} needs argument {p.name}")
                params[p.name] = evaluate(p.default, {**self.env, **params})
        inputs = {"in": h}
        if cell.inputs == 2:
            spec = {**dict(call.kwargs), **(overrides or {})}.get("prev")
            inputs["prev"] = self.prev_input(cell, spec, env, states, values)
        p = inputs.get("prev", h)
        key = (id(cell), tuple(sorted(params.items())), self.shape(h), self.shape(p), p == h)
        done = self._calls.get(key)
        if done is not None:          # the same cell, arguments and input shapes: replay its steps
            return self.replay(done, name, h, p)
        first, guards = len(self.prog.steps), self.guards
        self.nesting += 1
        if self.nesting > MAX_CELL_DEPTH:
            self.fail(f"cells call cells deeper than the limit of {MAX_CELL_DEPTH} ({README})")
        out = self.instantiate(cell, params, inputs, name, h)
        self.nesting -= 1
        self._calls[key] = (first, len(self.prog.steps), name, h, p, out, self.guards - guards)
        return out

    def replay(self, done, name, h, p):
        """Re-emit the steps of an earlier identical cell call under a new name and new inputs."""
        first, end, old_name, old_h, old_p, old_out, guards = done
        self.grow(end - first)
        self.guards += guards       # the caller's dead-branch check sees the guards of a replayed call too
        base = len(self.prog.steps)
        cut = len(old_name)

        def remap(x):
            if first <= x < end:
                return x - first + base
            return h if x == old_h else p

        steps = self.prog.steps
        for st in steps[first:end]:
            steps.append(Step(name + st.name[cut:], st.kind, tuple(remap(x) for x in st.inputs),
                              st.attrs, st.in_shapes, st.out, st.written))
        return remap(old_out)

    def instantiate(self, cell, params, inputs, name, h):
        self.grow(len(cell.nodes))
        cell_env = {**self.env, **params, "cin": self.shape(h)[0]}
        saved = self.where
        self.where = (name, cell.name)
        values = dict(inputs)
        first, guards = len(self.prog.steps), self.guards
        built, skipped = [], {}        # (node, handle) of the nodes that emitted steps; name -> its else
        for node in cell.nodes:
            self.where = (name, cell.name, node.name)
            if node.when is not None:
                self.guards += 1
            if node.when is not None and not self.guard(node.when, cell_env):
                if node.otherwise is None:
                    self.fail("'if' without 'else': say what the node is when its guard is false "
                              "(`... if COND else NAME`: an input, an earlier node, or none)")
                # skipped: it is its else (None for `else none`, which joins leave out)
                values[node.name] = None if node.otherwise == NONE else values[node.otherwise]
                skipped[node.name] = node.otherwise
                continue
            before = len(self.prog.steps)
            seg = segment(node.name, {n.name for n in cell.nodes}) if reserved(node.name) else node.name
            v = values[node.name] = self.expr(node.expr, values, f"{name}.{seg}", cell_env)
            if v is not None and v >= before:
                built.append((node, v))
        out = values["out"]
        if out is None:
            self.where = (name, cell.name, "out")
            self.fail(f"the cell's output is none here (out is skipped by its if, else {skipped.get('out')}); "
                      f"a cell gives a tensor: give 'out' an else that names one")
        if self.guards != guards:       # a guard can leave a built node unread (its reader skipped, or
            self.unread(cell, first, built, out, skipped, name)     # an else not taken): refuse that
        self.where = saved
        return out

    def unread(self, cell, first, built, out, skipped, name):
        """Refuse a node that was built (and would be priced) but whose value reaches nothing,
        because the nodes that read it are skipped by their guards (or name it after an else not
        taken): a dead branch is an error, never built in silence."""
        steps, live, stack = self.prog.steps, set(), [out]
        while stack:
            x = stack.pop()
            if x >= first and x not in live:
                live.add(x)
                stack.extend(steps[x].inputs)
        for node, v in built:
            if v in live or node.name == "out":
                continue
            from .legacy import read_as
            why = []
            for n in cell.nodes:
                reads = any(True for _ in read_as(n.expr, node.name))
                if n.name in skipped and reads:
                    why.append(f"{n.name!r} reads it but is skipped (its if is false here, so it is {skipped[n.name]})")
                elif n.otherwise == node.name and n.name not in skipped and not reads:
                    why.append(f"{n.name!r} names it after else, but its if is true here")
                elif reads or n.otherwise == node.name:
                    why.append(f"{n.name!r} reads it but is itself unused here")
            self.where = (name, cell.name, node.name)
            self.fail(f"the node is built but its value reaches nothing here: {'; '.join(why)}; a dead branch "
                      f"would still be built and priced, so guard it by the same condition "
                      f"(`{node.name} = ... if COND else none`) or let a reader's else name it")

    def prev_input(self, cell, spec, env, states, values):
        """The h_{i-2} of a two-input cell: on a body line the state before last, or the
        state `prev=-k` names (-1: the line's own input); inside a cell, `prev=NODE`."""
        if states is None:
            if not isinstance(spec, Sym) or values is None or spec.name not in values:
                self.fail(f"two-input cell {cell.name} inside a cell needs prev=NODE")
            if values[spec.name] is None:
                self.fail(f"prev={spec.name} of cell {cell.name}: {spec.name!r} is none here (skipped by its if, "
                          f"else none); guard this node too (`... if COND else none`) or give {spec.name!r} "
                          f"an else that names a tensor")
            return values[spec.name]
        if spec is None:
            return states[-2] if len(states) >= 2 else states[-1]
        try:
            k = _int(evaluate(spec, env), f"prev= of cell {cell.name}")
        except GenotypeError as e:
            self.fail(str(e))
        if not -len(states) <= k <= -1:
            self.fail(f"prev={k} of cell {cell.name}: {len(states)} state(s) so far "
                      f"(the input, then one per body line repeat); use -1 to -{len(states)}")
        return states[k]

    def guard(self, v, env) -> bool:
        try:
            x = evaluate(v, env)
        except GenotypeError as e:
            self.fail(f"if: {e}")
        if x in ("true", "false"):
            return x == "true"
        if isinstance(x, str):
            self.fail(f"if needs a number (0 skips the node), got {x!r}")
        return x != 0

    def expr(self, e, values, name, env, taken=frozenset()):
        """The handle of expression `e`; None for a node skipped with `else none` (joins leave
        it out; anything else refuses it)."""
        if isinstance(e, Ref):
            if e.name not in values:
                self.fail(f"{e.name!r} is not defined before this node")
            return values[e.name]
        if isinstance(e, Apply):
            # `relu <- relu <- x`: an inner chain with an op of the same kind needs a name of its own,
            # or two layers share one; otherwise it keeps the node's name (`droppath <- sep <- x`
            # names its sep as `sep <- x` does, so the two share their weights' names)
            here = taken | _labels(e.chain)          # labels already used under `name` by the chains above
            clash = isinstance(e.src, Apply) and bool(here & _labels(e.src.chain))
            src = self.expr(e.src, values, name + ".src" if clash else name, env,
                            frozenset() if clash else here)
            if src is None:
                self.fail(f"{_describe(e.src)} is none here (skipped by its if, else none), so its ops have "
                          f"nothing to apply to; guard this node too (`... if COND else none`)")
            return self.chain(e.chain, src, name, env, values=values)
        if isinstance(e, Combine):
            hs, operands = [], []
            for i, a in enumerate(e.args):
                h = self.expr(a, values, f"{name}.{i}", env)
                if h is not None:        # `else none`: left out of the join
                    hs.append(h)
                    operands.append(a)
            if len(hs) < len(e.args):
                absent = ", ".join(_describe(a) for a in e.args if a not in operands)
                if V.SPECS[e.kind].arity is not None:
                    self.fail(f"{e.kind}(...) needs its {V.SPECS[e.kind].arity} operands, but {absent} is none "
                              f"here (skipped by its if, else none); give it an else that names a tensor")
                if not hs:
                    self.fail(f"every operand of {e.kind}(...) is none here (skipped by its if, else none); "
                              f"give one of them an else that names a tensor")
            return self.combine(e.kind, hs, f"{name}.{e.kind}", operands)
        self.fail(f"bad expression {e!r}")

    def combine(self, kind, hs, name, operands=()):
        spec = V.SPECS[kind]
        if spec.arity is not None and len(hs) != spec.arity:
            self.fail(f"{kind}(...) takes {spec.arity} operands, got {len(hs)}")
        if len(hs) == 1:
            return hs[0]
        shapes = [self.shape(h) for h in hs]
        a = {key: self.default(kind, key) for key in spec.attrs} if spec.attrs else {}
        self._operands = operands
        attrs, out = spec.join(self, a, shapes)
        return self.emit(name, kind, hs, attrs, out)

    def fail_join(self, kind, shapes):
        """A join whose operand shapes do not fit, with a hint that fits the construct."""
        desc = ", ".join(_fmt(s) for s in shapes)
        if kind == "mul":
            self.fail(f"mul needs equal shapes or a Cx1x1 gate, got {desc}; a gate has the channels of "
                      f"the map it scales (e.g. gap conv1x1 c=... sigmoid <- x)")
        if len({len(s) for s in shapes}) > 1:
            self.fail(f"{kind} needs {'equal spatial sizes' if kind == 'cat' else 'equal shapes'}, got "
                      f"{desc}; one operand is flat (after flatten or fc): join before flattening")
        if kind == "cat":
            self.fail(f"cat needs equal spatial sizes, got {desc}; cat stacks channels, so every operand "
                      f"needs the same HxW: give the paths the same stride (e.g. a strided conv or "
                      f"maxpool3x3/2 p=1 on the larger ones)")
        labels = [_describe(o) for o in self._operands] or [f"operand {i + 1}" for i in range(len(shapes))]
        residual = [i for i, o in enumerate(self._operands) if kind == "add" and _is_residual(o)]
        branch = [i for i in range(len(shapes)) if i not in residual] or [0]
        want = shapes[branch[0]]
        msg = f"{kind} needs equal shapes, got {desc}"
        odd = next(i for i, s in enumerate(shapes) if s != want)
        if shapes[odd][1:] != want[1:]:
            msg += (f"; {labels[odd]} is {_fmt(shapes[odd][1:])} but {labels[branch[0]]} is "
                    f"{_fmt(want[1:])}: one path downsamples and the other does not")
        else:
            msg += f"; {labels[odd]} has {shapes[odd][0]} channels but {labels[branch[0]]} has {want[0]}"
        if residual and len(shapes[residual[0]]) == 3 and len(want) == 3:
            r = shapes[residual[0]]
            stride = r[1] // want[1] if want[1] and r[1] % want[1] == 0 else None
            fix = f"c={want[0]}" + (f" s={stride}" if stride and stride > 1 else "")
            op = self._operands[residual[0]]
            if isinstance(op, Ref):
                msg += f"; project the residual input to match: shortcut {fix} <- {op.name}"
            else:
                msg += f"; give the shortcut on {labels[residual[0]]} {fix}"
        elif shapes[odd][1:] != want[1:]:
            msg += "; give every path the same stride"
        else:
            msg += "; make the paths equally wide (e.g. conv1x1 c=... on one) or stack them with cat(...)"
        self.fail(msg)

    def run(self):
        states = [INPUT]
        counters: dict[str, int] = {}
        blocks = 0      # stage repeats so far: the value of `block` on body lines
        for layer in self.g.layers:
            n = counters.get(layer.section, 0) + 1
            counters[layer.section] = n
            base = layer.section if layer.section != "stage" else f"stage{n}"
            if layer.section != "stage" and n > 1:
                base = f"{layer.section}{n}"
            self.where = base
            reps = _int(evaluate(layer.repeat, self.env), f"{base} repeat count", 1)
            if reps > MAX_REPEAT:
                self.fail(over("repeat count", reps, MAX_REPEAT))
            for r in range(reps):
                self.where = base
                name = f"{base}.{r}" if reps > 1 else base
                # `cin`: channels entering this body line (inside a cell: entering the cell)
                env = {**self.env, "block": blocks, "cin": self.shape(states[-1])[0]}
                h = self.chain(layer.chain, states[-1], name, env, states,
                               dict(layer.rest) if r > 0 else None)
                states.append(h)
                blocks += layer.section == "stage"
        self.prog.output = states[-1]
        return self.prog


def _describe(e) -> str:
    """How an error names an operand of a join: its node or input name, else its source."""
    if isinstance(e, Ref):
        return repr(e.name)
    if isinstance(e, Apply):
        return f"the path from {_describe(e.src)}"
    return f"{e.kind}(...)"


def _is_residual(e) -> bool:
    """An operand that is a cell input, directly or through a shortcut: a residual connection."""
    if isinstance(e, Ref):
        return e.name in ("in", "prev")
    if isinstance(e, Apply):
        return any(isinstance(el, Op) and el.kind == "shortcut" for el in e.chain) and _is_residual(e.src)
    return False


def elaborate(g: Genotype, input=None, classes=None) -> Program:
    """Shape-infer `g` at `input` (C,H,W; default: the genotype's own)."""
    shape = tuple(input) if input is not None else tuple(g.input)
    problem = input_problem(shape)
    if problem:
        raise GenotypeError(f"{g.name}: {problem}")
    return _Elaborator(g, shape, classes).run()
