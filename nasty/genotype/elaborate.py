"""Elaboration: a Genotype at an input shape -> a flat program of primitive steps.

This is nasty's shape inference. It evaluates every attribute expression,
expands cells and repeats, infers every tensor shape and checks every join, so
that a bad genotype fails here with a GenotypeError naming the node, never as a
torch shape error later. The cost model and the compiler both walk the same
`Program`, which is why their numbers agree by construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import ops as V
from .errors import GenotypeError
from .expr import Sym, evaluate
from .ir import Apply, CellCall, Combine, Genotype, Op, Ref
from .limits import MAX_CELL_DEPTH, MAX_CHANNELS, MAX_LAYERS, MAX_REPEAT, README, input_problem, over

INPUT = -1   # handle of the network input


@dataclass
class Step:
    name: str                      # dotted path, also the module path in the compiled net
    kind: str                      # primitive kind (conv, bn, relu, ...) or add/cat/mul
    inputs: tuple[int, ...]        # handles of the inputs (INPUT or an earlier step index)
    attrs: dict                    # concrete attributes
    in_shapes: tuple[tuple, ...]
    out: tuple                     # (C, H, W) or (F,)


@dataclass
class Program:
    genotype: Genotype
    input: tuple[int, int, int]
    steps: list[Step] = field(default_factory=list)
    output: int = INPUT

    def shape(self, h: int) -> tuple:
        return tuple(self.input) if h == INPUT else self.steps[h].out


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)


def _bool(v, what):
    if v in (0, 1, True, False):
        return bool(v)
    if v in ("true", "false"):
        return v == "true"
    raise GenotypeError(f"{what} must be 0/1 or true/false, got {v!r}")


def _int(v, what, lo=None):
    if type(v) is int and (lo is None or v >= lo):    # the common case, first
        return v
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise GenotypeError(f"{what} must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise GenotypeError(f"{what} must be at least {lo}, got {v}")
    return v


def conv_out(length, k, s, pad_total, d=1):
    return (length + pad_total - d * (k - 1) - 1) // s + 1


def pool_out(length, k, s, p, ceil):
    num = length + 2 * p - k
    if ceil:
        o = -(-num // s) + 1
        if (o - 1) * s >= length + p:   # torch: the last window must start inside the input
            o -= 1
        return o
    return num // s + 1


def same_pads(length, k, s, d=1):
    """TensorFlow 'SAME': output ceil(L/s); the odd extra pixel goes bottom/right."""
    out = -(-length // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - length, 0)
    return total // 2, total - total // 2


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
            self.env[k] = evaluate(v, self.env)
        self.where = ""
        self._calls: dict = {}   # (cell, args, input shapes) -> where its steps were emitted
        self._raw: dict = {}     # id(Op) -> resolved raw attributes; the genotype keeps its Ops alive
        self.size = 0            # layers so far (ops applied, cell nodes and arguments, replayed steps)
        self.nesting = 0         # cells being expanded inside each other: MAX_CELL_DEPTH

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
        self.prog.steps.append(Step(name, kind, tuple(inputs),
                                    attrs, tuple(self.shape(i) for i in inputs), tuple(out)))
        return len(self.prog.steps) - 1

    def attrs(self, op: Op, env):
        """Explicit attrs, then genotype defaults, then the vocabulary's defaults; all evaluated."""
        raw = self._raw.get(id(op))
        if raw is None:       # resolve the sources once per op of the genotype, not once per use
            raw = self._raw[id(op)] = self._resolve(op)
        out = {}
        for key, val, literal in raw:
            if literal:
                out[key] = val
                continue
            try:
                out[key] = evaluate(val, env)
            except GenotypeError as e:
                self.fail(f"{op.kind} {key}=: {e}")
        return out

    def _resolve(self, op: Op):
        """[(key, raw value, is it a plain number or None)] for every attribute of `op`."""
        raw = []
        given = dict(op.attrs)
        for key in V.OPS[op.kind]:
            if key in given:
                val = given[key]
            elif f"{op.kind}.{key}" in self.defaults:
                val = self.defaults[f"{op.kind}.{key}"]
            else:
                val = V.default(op.kind, key)
                if val is None and V.required(op.kind, key):
                    self.fail(f"{op.kind} needs {key}=")
            literal = val is None or (type(val) in (int, float))
            raw.append((key, val, literal))
        return raw

    # ---------------------------------------------------------------- ops
    def op(self, op: Op, h: int, name: str, env) -> int:
        a = self.attrs(op, env)
        shape = self.shape(h)
        kind = op.kind
        if kind == "act":           # activation named by a value (a cell parameter, a let)
            kind = a["fn"]
            if kind != "identity" and kind not in V.ACTIVATIONS:
                self.fail(f"act fn= must name an activation ({', '.join(sorted(V.ACTIVATIONS))}, "
                          f"identity), got {kind!r}")
        if kind == "identity":
            return h
        spatial = len(shape) == 3
        if kind in ("conv", "dwconv", "sep", "maxpool", "avgpool", "gap", "gmp", "apool", "pad", "lrn") \
                and not spatial:
            self.fail(f"{kind} needs a CxHxW input, got the flat {_fmt(shape)}; remove the flatten before it")
        if kind == "fc" and spatial:
            self.fail(f"fc needs a flat input, got {_fmt(shape)}; add flatten (or gap flatten) before it")
        if kind in ("conv", "dwconv"):
            return self.conv(a, h, name, dw=(kind == "dwconv"))
        if kind == "sep":
            cin = shape[0]
            dw = dict(a, c=cin, g=cin)
            h = self.conv(dw, h, name + ".dw", dw=False)
            pw = dict(a, kh=1, kw=1, s=1, p=0, ph=None, pw=None, d=1, g=1)
            return self.conv(pw, h, name + ".pw", dw=False)
        if kind in ("maxpool", "avgpool"):
            return self.pool(kind, a, h, name)
        if kind in ("gap", "gmp"):
            return self.emit(name, kind, [h], {}, (shape[0], 1, 1))
        if kind == "apool":
            o = a["o"]
            oh = a["oh"] if a["oh"] is not None else o
            ow = a["ow"] if a["ow"] is not None else o
            if oh is None or ow is None:
                self.fail("apool needs o= (or oh= and ow=)")
            oh, ow = _int(oh, "apool oh", 1), _int(ow, "apool ow", 1)
            return self.emit(name, kind, [h], {"oh": oh, "ow": ow}, (shape[0], oh, ow))
        if kind == "flatten":
            return self.emit(name, kind, [h], {}, (math.prod(shape),))
        if kind == "fc":
            c = _int(a["c"], "fc c", 1)
            return self.emit(name, kind, [h], {"cin": shape[0], "c": c, "bias": _bool(a["bias"], "fc bias")}, (c,))
        if kind == "bn":
            return self.emit(name, kind, [h], {"c": shape[0], "eps": float(a["eps"]),
                                               "momentum": float(a["momentum"]),
                                               "affine": _bool(a["affine"], "bn affine")}, shape)
        if kind == "lrn":
            return self.emit(name, kind, [h], {k: a[k] for k in ("size", "alpha", "beta", "k")}, shape)
        if kind in V.ACTIVATIONS:
            kind = "silu" if kind == "swish" else kind
            return self.emit(name, kind, [h], {"slope": a["slope"]} if kind == "lrelu" else {}, shape)
        if kind in ("dropout", "droppath"):
            p = float(a["p"])
            if not 0.0 <= p < 1.0:
                self.fail(f"{kind} p must be in [0, 1), got {p}")
            return self.emit(name, kind, [h], {"p": p}, shape)
        if kind == "pad":
            l, r, t, b = (_int(a[k], f"pad {k}") for k in "lrtb")
            return self.emit(name, kind, [h], {"l": l, "r": r, "t": t, "b": b},
                             (shape[0], shape[1] + t + b, shape[2] + l + r))
        if kind == "scale":
            return self.emit(name, kind, [h], {"v": float(a["v"])}, shape)
        if kind == "slice":         # channels [start, end): ShuffleNet's channel split
            C = shape[0]
            start = _int(a["start"], "slice start", 0)
            end = C if a["end"] is None else _int(a["end"], "slice end", 1)
            if not start < end <= C:
                self.fail(f"slice start={start} end={end} must be a non-empty range of the input's {C} channels")
            if (start, end) == (0, C):
                return h
            return self.emit(name, kind, [h], {"start": start, "end": end}, (end - start,) + tuple(shape[1:]))
        if kind == "shuffle":
            g = _int(a["g"], "shuffle g", 1)
            if shape[0] % g:
                self.fail(f"shuffle g={g} must divide the input's {shape[0]} channels")
            return self.emit(name, kind, [h], {"g": g}, shape) if g > 1 else h
        if kind == "shortcut":
            c, s = _int(a["c"], "shortcut c", 1), _int(a["s"], "shortcut s", 1)
            if not spatial:
                self.fail("shortcut needs a CxHxW input")
            if c == shape[0] and s == 1:
                return h
            h = self.conv({"c": c, "kh": 1, "kw": 1, "s": s, "p": 0, "ph": None, "pw": None,
                           "d": 1, "g": 1, "bias": self.conv_bias_default()}, h, name + ".conv", dw=False)
            if _bool(a["bn"], "shortcut bn"):
                h = self.op(Op("bn"), h, name + ".bn", env)
            return h
        self.fail(f"unknown op {kind!r}")

    def conv_bias_default(self):
        v = self.defaults.get("conv.bias", 1)
        return evaluate(v, self.env)

    def conv(self, a, h, name, dw):
        cin, H, W = self.shape(h)
        kh, kw = _int(a["kh"], "kernel height", 1), _int(a["kw"], "kernel width", 1)
        s, d = _int(a["s"], "stride", 1), _int(a["d"], "dilation", 1)
        g = cin if dw else _int(a["g"], "groups", 1)
        c = a["c"] if a["c"] is not None else cin
        c = _int(c, "channels c", 1)
        if cin % g or c % g:
            self.fail(f"groups={g} must divide both input channels {cin} and output channels {c}")
        p = a["p"]
        if p == "same":
            pt, pb = same_pads(H, kh, s, d)
            pl, pr = same_pads(W, kw, s, d)
            same = True
        else:
            same = False
            ph = a["ph"] if a["ph"] is not None else (p if p is not None else d * (kh - 1) // 2)
            pw = a["pw"] if a["pw"] is not None else (p if p is not None else d * (kw - 1) // 2)
            ph, pw = _int(ph, "padding", 0), _int(pw, "padding", 0)
            pt = pb = ph
            pl = pr = pw
        Ho, Wo = conv_out(H, kh, s, pt + pb, d), conv_out(W, kw, s, pl + pr, d)
        attrs = {"cin": cin, "c": c, "kh": kh, "kw": kw, "s": s, "d": d, "g": g,
                 "pads": (pt, pb, pl, pr), "same": same, "bias": _bool(a["bias"], "conv bias")}
        return self.emit(name, "conv", [h], attrs, (c, Ho, Wo))

    def pool(self, kind, a, h, name):
        C, H, W = self.shape(h)
        kh, kw = _int(a["kh"], "pool kernel", 1), _int(a["kw"], "pool kernel", 1)
        s = a["s"]
        sh, sw = (kh, kw) if s is None else (_int(s, "pool stride", 1),) * 2
        ceil = _bool(a["ceil"], f"{kind} ceil")
        attrs = {"kh": kh, "kw": kw, "sh": sh, "sw": sw, "ceil": ceil}
        if kind == "avgpool":
            attrs["cip"] = _bool(a["cip"], "avgpool cip")
        if a["p"] == "same":
            pt, pb = same_pads(H, kh, sh)
            pl, pr = same_pads(W, kw, sw)
            attrs.update(pads=(pt, pb, pl, pr), same=True, ph=0, pw=0)
            Ho, Wo = pool_out(H + pt + pb, kh, sh, 0, ceil), pool_out(W + pl + pr, kw, sw, 0, ceil)
        else:
            ph = _int(a["ph"] if a["ph"] is not None else a["p"], "pool padding", 0)
            pw = _int(a["pw"] if a["pw"] is not None else a["p"], "pool padding", 0)
            if 2 * ph > kh or 2 * pw > kw:
                self.fail(f"{kind} padding {ph}x{pw} must be at most half the kernel {kh}x{kw}")
            attrs.update(pads=(ph, ph, pw, pw), same=False, ph=ph, pw=pw)
            Ho, Wo = pool_out(H, kh, sh, ph, ceil), pool_out(W, kw, sw, pw, ceil)
        return self.emit(name, kind, [h], attrs, (C, Ho, Wo))

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
            sub = f"{name}.{label}" + (f"_{n}" if n else "")
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
        first = len(self.prog.steps)
        self.nesting += 1
        if self.nesting > MAX_CELL_DEPTH:
            self.fail(f"cells call cells deeper than the limit of {MAX_CELL_DEPTH} ({README})")
        out = self.instantiate(cell, params, inputs, name, h)
        self.nesting -= 1
        self._calls[key] = (first, len(self.prog.steps), name, h, p, out)
        return out

    def replay(self, done, name, h, p):
        """Re-emit the steps of an earlier identical cell call under a new name and new inputs."""
        first, end, old_name, old_h, old_p, old_out = done
        self.grow(end - first)
        base = len(self.prog.steps)
        cut = len(old_name)

        def remap(x):
            if first <= x < end:
                return x - first + base
            return h if x == old_h else p

        steps = self.prog.steps
        for st in steps[first:end]:
            steps.append(Step(name + st.name[cut:], st.kind, tuple(remap(x) for x in st.inputs),
                              st.attrs, st.in_shapes, st.out))
        return remap(old_out)

    def instantiate(self, cell, params, inputs, name, h):
        self.grow(len(cell.nodes))
        cell_env = {**self.env, **params, "cin": self.shape(h)[0]}
        saved = self.where
        self.where = (name, cell.name)
        values = dict(inputs)
        for node in cell.nodes:
            self.where = (name, cell.name, node.name)
            if node.when is not None and not self.guard(node.when, cell_env):
                values[node.name] = values[_first_ref(node.expr)]    # skipped node
                continue
            values[node.name] = self.expr(node.expr, values, f"{name}.{node.name}", cell_env)
        self.where = saved
        return values["out"]

    def prev_input(self, cell, spec, env, states, values):
        """The h_{i-2} of a two-input cell: on a body line the state before last, or the
        state `prev=-k` names (-1: the line's own input); inside a cell, `prev=NODE`."""
        if states is None:
            if not isinstance(spec, Sym) or values is None or spec.name not in values:
                self.fail(f"two-input cell {cell.name} inside a cell needs prev=NODE")
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

    def expr(self, e, values, name, env):
        if isinstance(e, Ref):
            if e.name not in values:
                self.fail(f"{e.name!r} is not defined before this node")
            return values[e.name]
        if isinstance(e, Apply):
            # `relu <- relu <- x`: the inner chain needs a name of its own, or two layers share one
            src = self.expr(e.src, values, name + ".src" if isinstance(e.src, Apply) else name, env)
            return self.chain(e.chain, src, name, env, values=values)
        if isinstance(e, Combine):
            hs = [self.expr(a, values, f"{name}.{i}", env) for i, a in enumerate(e.args)]
            return self.combine(e.kind, hs, f"{name}.{e.kind}")
        self.fail(f"bad expression {e!r}")

    def combine(self, kind, hs, name):
        shapes = [self.shape(h) for h in hs]
        desc = ", ".join(_fmt(s) for s in shapes)
        if len(hs) == 1:
            return hs[0]
        if kind == "add":
            if any(s != shapes[0] for s in shapes):
                self.fail(f"add needs equal shapes, got {desc}; project the shortcut "
                          f"(e.g. shortcut c=... s=...) or fix the stride/channels")
            out = shapes[0]
        elif kind == "cat":
            if any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:] for s in shapes):
                self.fail(f"cat needs equal spatial sizes, got {desc}")
            out = (sum(s[0] for s in shapes),) + tuple(shapes[0][1:])
        else:  # mul: equal shapes, or a C x 1 x 1 gate (squeeze-and-excitation)
            big = max(shapes, key=math.prod)
            for s in shapes:
                if s != big and not (len(s) == 3 and s[0] == big[0] and s[1:] == (1, 1)):
                    self.fail(f"mul needs equal shapes or a Cx1x1 gate, got {desc}")
            out = big
        return self.emit(name, kind, hs, {}, out)

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


def _first_ref(e) -> str:
    """The first node or input an expression names (what a skipped node stands for)."""
    while not isinstance(e, Ref):
        e = e.src if isinstance(e, Apply) else e.args[0]
    return e.name


def elaborate(g: Genotype, input=None, classes=None) -> Program:
    """Shape-infer `g` at `input` (C,H,W; default: the genotype's own)."""
    shape = tuple(input) if input is not None else tuple(g.input)
    problem = input_problem(shape)
    if problem:
        raise GenotypeError(f"{g.name}: {problem}")
    return _Elaborator(g, shape, classes).run()
