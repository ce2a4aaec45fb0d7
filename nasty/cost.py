"""The analytic cost model: params, MACs, FLOPs and memory from the genotype alone.

No torch module is built. Costs are summed over the elaborated program (the
same steps the compiler turns into modules), each step priced by its op's entry
in the op registry (`genotype/ops.py`), so they agree with the compiled network
to the unit (tests/test_op_registry.py proves it for every op):
- params == sum(p.numel() for p in model.parameters())
- macs   == torch.utils.flop_counter.FlopCounterMode total / 2

The FLOP convention: one multiply-accumulate is one FLOP, as the course notes
and the mobile NAS papers ("mult-adds") count, so `flops_mac == macs`. The
detailed count `flops` adds what MACs leave out: pooling (f*f per output, as the
notes count it), global pooling, normalisation, activations and joins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .genotype import Genotype, elaborate
from .genotype.elaborate import INPUT, Program, Step
from .genotype.ops import SPECS

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str           # the primitive it compiles to (dwconv and sep steps are conv)
    output: tuple
    params: int
    macs: int
    flops: int        # macs + pooling + other non-MAC work of this layer
    written: str = ""  # the op as the genotype wrote it (dwconv, sep, linear, shortcut, act, swish)

    @property
    def as_written(self) -> str:
        """The op as the genotype wrote it: what `defaults OP.ATTR` must name to reach this layer."""
        return self.written or self.op

    def as_dict(self):
        return {"name": self.name, "op": self.op, "written": self.as_written, "output": list(self.output),
                "params": self.params, "macs": self.macs, "flops": self.flops}


@dataclass
class Cost:
    name: str
    input: tuple
    params: int
    macs: int
    flops: int                 # detailed: macs + pool_flops + other_flops
    pool_flops: int
    other_flops: int
    activations: int           # elements written by all layers, per image
    peak_activations: int      # largest set of live elements at once, per image (inference)
    batch: int = 1
    dtype: str = "float32"
    per_step: list = field(default_factory=list, repr=False)   # (step, (params, macs, pool, other))

    @property
    def layers(self) -> list[LayerCost]:
        """The per-layer table, built on first use (searches that only need totals skip it)."""
        if not hasattr(self, "_layers"):
            self._layers = [LayerCost(st.name, st.kind, st.out, c[0], c[1], c[1] + c[2] + c[3], st.written)
                            for st, c in self.per_step]
        return self._layers

    @property
    def inference_bytes(self) -> int:
        """Parameters plus the peak of live activations, at the batch size."""
        b = BYTES[self.dtype]
        return b * (self.params + self.batch * (self.peak_activations))

    @property
    def training_bytes(self) -> int:
        """Activations kept for backward, plus parameters and their gradients.

        Optimizer state (momentum) is not included: add one more `params` for SGD
        with momentum, two for Adam.
        """
        b = BYTES[self.dtype]
        return b * (2 * self.params + self.batch * (math.prod(self.input) + self.activations))

    def as_dict(self):
        return {"name": self.name, "input": list(self.input), "params": self.params,
                "macs": self.macs, "flops": self.flops, "pool_flops": self.pool_flops,
                "other_flops": self.other_flops, "activations": self.activations,
                "peak_activations": self.peak_activations, "batch": self.batch,
                "inference_bytes": self.inference_bytes, "training_bytes": self.training_bytes,
                "layers": [l.as_dict() for l in self.layers]}


def step_cost(st: Step) -> tuple[int, int, int, int]:
    """(params, macs, pool_flops, other_flops) of one step: its op's registry entry says how."""
    return SPECS[st.kind].cost(st)


def _peak_live(prog: Program, sizes: list[int]) -> int:
    """Peak of simultaneously live activation elements, freeing each after its last use.

    `sizes[i]` is the element count of step i's output; the input's is computed here.
    """
    last_use = {INPUT: -1}
    for i, st in enumerate(prog.steps):
        for h in st.inputs:
            last_use[h] = i
    last_use[prog.output] = len(prog.steps)
    size = lambda h: math.prod(prog.input) if h == INPUT else sizes[h]
    live = size(INPUT)
    peak = live
    for i, st in enumerate(prog.steps):
        live += sizes[i]
        if live > peak:
            peak = live
        for h in set(st.inputs):
            if last_use.get(h) == i:
                live -= size(h)
        if last_use.get(i, -2) < i:     # produced but never read (dead end)
            live -= sizes[i]
    return peak


def cost_of_program(prog: Program, batch: int = 1, dtype: str = "float32") -> Cost:
    params = macs = pool = other = 0
    sizes = [math.prod(st.out) for st in prog.steps]
    per_step = []
    seen: dict[int, tuple] = {}    # replayed cell steps share their attrs dict and shapes
    for st in prog.steps:
        c = seen.get(id(st.attrs))
        if c is None:
            c = seen[id(st.attrs)] = SPECS[st.kind].cost(st)
        params, macs, pool, other = params + c[0], macs + c[1], pool + c[2], other + c[3]
        per_step.append((st, c))
    return Cost(prog.genotype.name, prog.input, params, macs, macs + pool + other, pool, other,
                sum(sizes), _peak_live(prog, sizes), batch, dtype, per_step)


def cost(g: Genotype, input=None, batch: int = 1, classes=None, dtype: str = "float32") -> Cost:
    """Analytic cost of genotype `g` at `input` (C,H,W; default: its own input)."""
    if dtype not in BYTES:
        from .errors import NastyError
        raise NastyError(f"unknown dtype {dtype!r}; use one of {', '.join(BYTES)}")
    return cost_of_program(elaborate(g, input, classes), batch, dtype)
