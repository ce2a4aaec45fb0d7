"""DARTS (Liu, Simonyan and Yang, ICLR 2019): the continuous relaxation of a cell space.

Every edge of the cell computes the softmax-weighted sum of all its candidate ops,
o(x) = sum_k softmax(alpha_e)_k * op_k(x) (the zero op `none` contributes nothing but keeps
its weight in the softmax); the network weights w and the architecture weights alpha are
trained in alternation, alpha on validation batches and w on training batches (first-order:
alpha's gradient is taken at the current w). At the end the cell is discretised: the op of
largest weight on each edge (for the `darts` space, each node keeps its two strongest
non-zero edges, as cnn/model_search.py `genotype()` does).

This module is the relaxation, which is where DARTS needs to know its space: `Relaxation`
subclasses for `nb201mini` (one op per edge: none/skip/conv3x3) and `darts` (two of the
preceding states per node, 7 ops + none per edge) build the mixed cell as genotype text, with
every candidate op of an edge ending in a `scale v=1` marker (which computes the identity,
so it does not change the op's identity in the weight pool); `attach` replaces the markers of the compiled mixed network by modules that multiply by the
op's softmax weight. Everything else is shared with the other one-shot searches: the mixed network is
compiled by the one compiler and its layers are bound to the same weight pool as the
children (search/supernet.py), and the search itself runs in search/oneshot.py.

Budgets: DARTS knows nothing of them, so the discretisation does. Decisions that are not
edges (the darts space's C and L, which only the target uses) cannot be relaxed: `ask()` draws
them at random, so the budget check picks among those that fit (or --fit scales C). Where the
cell alone decides the cost (nb201mini), a pick rejected as over budget is not proposed again:
`ask()` proposes the most probable guarded cell under alpha that has not been rejected.

The known failure: on NAS-Bench-201-like spaces DARTS collapses to parameter-free ops (skip
connections, and `none`), Dong & Yang 2020 report 54.3% on CIFAR-10. The guard used for the
pick: the zero op is never kept (DARTS's own derivation rule; NAS-Bench-201's DARTS takes the
argmax over all ops, `none` included), and at most `max_skip` (default 2, as P-DARTS) skip
edges per cell, the weakest extra skips taking their next best op. `diagnostics()` reports
the unguarded pick (NAS-Bench-201's rule) and the guarded one with their skip/none counts,
which the one-shot run writes to oneshot.json.
"""
from __future__ import annotations

import re

from ..errors import NastyError
from ..space import FixedTrial, Trial
from .base import Controller, Result, check_objective

MARKER = "scale v={v}"           # ends each mixed op; v=1 (the identity), or v=2 in a probe (`marker_cells`)


class Relaxation:
    """How one cell space is relaxed: its edges and its mixed cells."""
    cells: tuple[str, ...] = ()          # cell definitions (names in the genotype) replaced by mixed ones
    skip = "skip"                         # the op that collapses
    zero = "none"

    def __init__(self, space):
        self.space = space
        self.edges: list[tuple[str, str, tuple]] = []     # (cell kind, edge name, options with none)
        self.markers: dict[tuple, tuple[int, int]] = {}    # (cell def, node, operand path) -> (edge, option)

    def mixed_cells(self, probe: str | None = None) -> dict[str, str]:
        """{cell definition name: its mixed text}; the markers of cell `probe` get v=2."""
        raise NotImplementedError

    def mixed_edge(self, cell: str, node: str, terms: list[tuple[int, int, str]], probe=None) -> str:
        """An expression summing `terms` (edge, option, the op's expression), each under a marker, and note where each marker lands. One term per option; a node with several
        edges adds their sums."""
        marker = MARKER.format(v=2 if cell == probe else 1)
        groups: dict[int, list] = {}
        for e, o, expr in terms:
            groups.setdefault(e, []).append((o, expr))
        parts = []
        for gi, (e, opts) in enumerate(groups.items()):
            inner = []
            for oi, (o, expr) in enumerate(opts):
                # `marker <- (op <- src)`: the op's layers keep the names they have in a child
                inner.append(f"{marker} <- {expr}")
                path = (gi, oi) if len(groups) > 1 else (oi,)
                if len(opts) == 1:
                    path = path[:-1]
                self.markers[(cell, node, path)] = (e, o)
            parts.append(inner[0] if len(inner) == 1 else f"add({', '.join(inner)})")
        return parts[0] if len(parts) == 1 else f"add({', '.join(parts)})"

    def genotype(self, values: dict, spec, probe: str | None = None):
        """The space's proxy genotype (`values` any member) with its cells replaced by mixed ones
        (with `probe`, that cell's markers are v=2: see `marker_cells`)."""
        import nasty

        from ..genotype import format as fmt
        g = self.space.genotype(values, proxy=True, input=spec.input, classes=spec.classes)
        text = fmt(g)
        for name, mixed in self.mixed_cells(probe).items():
            pattern = re.compile(rf"^cell {re.escape(name)}\(.*?(?=^\S|\Z)", re.M | re.S)
            if not pattern.search(text):
                raise NastyError(f"darts: the {self.space.name} space's proxy has no cell {name!r} to relax")
            text = pattern.sub(lambda m: mixed.rstrip("\n") + "\n\n", text, count=1)
        return nasty.parse(text, f"{self.space.name} (DARTS relaxation)")

    def marker(self, path: str, cell: str) -> tuple[int, int] | None:
        """(edge, option) of the marker at module `path` of the compiled mixed network, in `cell`."""
        parts = path.split(".")
        for cut in range(len(parts) - 2, 0, -1):
            rest = parts[cut + 1:-1]
            if all(p.isdigit() for p in rest):
                hit = self.markers.get((cell, parts[cut], tuple(int(p) for p in rest)))
                if hit is not None:
                    return hit
        return None


class NB201Relaxation(Relaxation):
    """nb201mini: 6 edges i->j, each none/skip/conv3x3 (NAS-Bench-201's cell, 3 ops)."""
    cells = ("cell",)

    def __init__(self, space):
        super().__init__(space)
        from ..searchspaces.nb201mini import EDGE_NAMES, EDGES, OPS
        self.ops, self.edge_pairs = OPS, EDGES
        self.edges = [("cell", n, OPS) for n in EDGE_NAMES]

    def mixed_cells(self, probe=None):
        names = {0: "in", 1: "n1", 2: "n2", 3: "out"}
        lines = []
        for j in (1, 2, 3):
            terms = []
            for e, (a, b) in enumerate(self.edge_pairs):
                if b != j:
                    continue
                for o, op in enumerate(self.ops):
                    if op == "none":
                        continue
                    expr = names[a] if op == "skip" else f"relu conv3x3 c=c bn <- {names[a]}"
                    terms.append((e, o, expr))
            lines.append(f"  {names[j]} = {self.mixed_edge('cell', names[j], terms, probe)}")
        return {"cell": "cell cell(c):\n" + "\n".join(lines) + "\n"}



class DartsRelaxation(Relaxation):
    """The darts space: per cell type, node i may read any of the i+2 states before it; each such
    edge is relaxed over DARTS's 8 primitives; a node keeps its two strongest edges."""
    cells = ("normal_cell", "reduction_cell")
    skip = "skip_connect"

    def __init__(self, space):
        super().__init__(space)
        from ..searchspaces import darts as d
        self.d = d
        self.ops = d.PRIMITIVES
        for kind in ("normal", "reduce"):
            for i in range(d.NODES):
                for src in d.state_names(i):
                    self.edges.append((kind, f"{kind}_n{i}<-{src}", self.ops))

    def mixed_cells(self, probe=None):
        d = self.d
        out = {}
        e = 0
        for kind, cell in (("normal", "normal_cell"), ("reduce", "reduction_cell")):
            lines = []
            for i in range(d.NODES):
                terms = []
                for src in d.state_names(i):
                    stride = 2 if kind == "reduce" and src in ("prev", "in") else 1
                    for o, op in enumerate(self.ops):
                        if op == "none":
                            continue
                        expr = d.op_expr(op, src, stride)
                        terms.append((e, o, expr))
                    e += 1
                lines.append(f"  n{i} = {self.mixed_edge(cell, f'n{i}', terms, probe)}")
            lines.append("  out = cat(" + ", ".join(f"n{i}" for i in range(d.NODES)) + ")")
            out[cell] = f"cell {cell}(C) inputs 2:\n" + "\n".join(lines) + "\n"
        return out


RELAXATIONS = {"nb201mini": NB201Relaxation, "darts": DartsRelaxation}


class _FirstOptions(FixedTrial):
    """Every finite decision at its first option (a continuous one at random)."""

    def __init__(self, rng):
        super().__init__({}, rng=rng)

    def decide(self, d):
        return d.options()[0] if d.size() is not None else super().decide(d)


def arch_weight_module(controller, edge: int, option: int):
    """A module multiplying its input by softmax(alpha_edge)[option] (DARTS's mixed-op weight).
    The alphas are not registered as the module's parameters (the weight pool must not take them)."""
    import torch

    class _ArchWeight(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.edge, self.option = edge, option
            self.__dict__["controller"] = controller

        def forward(self, x):
            return x * torch.softmax(self.controller.alpha[self.edge], 0)[self.option]

        def extra_repr(self):
            return f"edge={self.edge}, option={self.option}"

    return _ArchWeight()


class DartsController(Controller):
    """DARTS's architecture weights and discretisation (the bi-level training runs in
    search/oneshot.py, which calls `relaxed`, `attach`, `arch_step` and `ask`)."""
    name = "darts"
    # the options' ranges (checked before a search starts; controllers.check_option_types)
    OPTION_RANGES = {"max_skip": "[-1, 1000]", "arch_lr": "(0, 10]", "arch_weight_decay": "[0, 10]"}

    def __init__(self, space, seed: int = 0, objective=None, max_skip: int = 2, arch_lr: float = 3e-4,
                 arch_weight_decay: float = 1e-3, budget=None, **options):
        super().__init__(space, seed)
        check_objective(self.name, objective, error=NastyError)
        cls = RELAXATIONS.get(getattr(space, "name", None))
        if cls is None:
            raise NastyError(f"--controller darts relaxes cell spaces whose decisions pick one op per edge: "
                             f"{', '.join(sorted(RELAXATIONS))}; space {getattr(space, 'name', space)!r} is not "
                             "one of them (use --evaluator supernet with random, reinforce or evolution)")
        if int(max_skip) < -1:
            raise NastyError(f"darts: max_skip must be -1 (no limit) or more, got {max_skip}")
        import torch
        self.torch = torch
        self.relax = cls(space)
        self.max_skip, self.arch_lr, self.arch_wd = int(max_skip), float(arch_lr), float(arch_weight_decay)
        n = max(len(opts) for _, _, opts in self.relax.edges)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # DARTS initialises alpha as 1e-3 * N(0, 1)
            self.alpha = torch.nn.Parameter(1e-3 * torch.randn(len(self.relax.edges), n))
        self.opt = torch.optim.Adam([self.alpha], lr=self.arch_lr, betas=(0.5, 0.999),
                                    weight_decay=self.arch_wd)
        self.steps = 0
        self.rejected: set[str] = set()           # picks rejected over budget (nb201mini)

    # ------------------------------------------------------------ the relaxed network
    def relaxed(self, spec):
        """The mixed proxy genotype at `spec` (a NetSpec: input and classes)."""
        import random

        from ..genotype import elaborate
        # DARTS searches cells on one fixed network (the paper's 8-cell search network): every
        # decision it does not relax (darts's L and C) takes its first option, here and in ask(),
        # so each discretised child is a sub-network of the mixed one (the proxy's depth follows L)
        t = _FirstOptions(rng=random.Random(0))
        self.space.genotype(t)
        self.fixed = {k: v for k, v in t.values.items() if k not in self.decisions(self.pick(guard=False))}
        g = self.relax.genotype(t.values, spec)
        # which cell definition each marker is in: the markers of a probe genotype where only that
        # cell's markers are v=2 (the compiled paths do not name cell definitions)
        self.marker_cells = {}
        for cell in self.relax.cells:
            probe = elaborate(self.relax.genotype(t.values, spec, probe=cell), spec.input, spec.classes)
            self.marker_cells.update({st.name: cell for st in probe.steps
                                      if st.kind == "scale" and float(st.attrs["v"]) == 2.0})
        return g

    def attach(self, model):
        """Replace the markers of the compiled mixed network by architecture-weight modules."""
        found = set()
        for path, cell in self.marker_cells.items():
            hit = self.relax.marker(path, cell)
            if hit is None:
                raise NastyError(f"darts: a mixed-op marker at {path} matches no edge of cell {cell!r}")
            parent, _, leaf = path.rpartition(".")
            model.get_submodule(parent).add_module(leaf, arch_weight_module(self, *hit))
            found.add(hit)
        if len(found) < len(self.relax.markers):
            raise NastyError(f"darts: the compiled mixed network has {len(found)} of the relaxation's "
                             f"{len(self.relax.markers)} mixed-op weights")
        return model

    def arch_step(self, loss):
        """One first-order step on alpha from a validation loss (w is left to its own optimizer)."""
        self.opt.zero_grad(set_to_none=True)
        (g,) = self.torch.autograd.grad(loss, [self.alpha])
        self.alpha.grad = g
        self.opt.step()
        self.steps += 1

    # ------------------------------------------------------------ discretisation
    def weights(self) -> list[list[float]]:
        with self.torch.no_grad():
            w = self.torch.softmax(self.alpha, 1)
        return [[round(float(v), 6) for v in row[:len(opts)]] for row, (_, _, opts) in zip(w, self.relax.edges)]

    def pick(self, guard: bool = True) -> dict:
        """{edge name: op} of the current discretisation (the darts space: chosen edges only)."""
        w = self.weights()
        r = self.relax
        choice = {}
        if isinstance(r, NB201Relaxation):
            for (_, name, opts), row in zip(r.edges, w):
                # NAS-Bench-201's DARTS takes the argmax over every op; the guard takes DARTS's own rule
                # (the zero op is never kept), which alone keeps a cell from vanishing
                keep = [k for k in range(len(opts)) if not guard or opts[k] != r.zero]
                choice[name] = opts[max(keep, key=lambda k: row[k])]
            if guard:
                choice = self._limit_skips(choice, w)
            return choice
        # darts: per node, the two edges with the strongest non-zero op
        by_node: dict[str, list] = {}
        for e, ((kind, name, opts), row) in enumerate(zip(r.edges, w)):
            node = name.split("<-")[0]
            best = max((k for k in range(len(opts)) if opts[k] != r.zero), key=lambda k: row[k])
            by_node.setdefault(node, []).append((row[best], name, opts[best], e))
        for node, cands in by_node.items():
            for strength, name, op, e in sorted(cands, reverse=True)[:2]:
                choice[name] = op
        if guard:
            choice = self._limit_skips(choice, w, kinds=("normal",))
        return choice

    def _limit_skips(self, choice: dict, w, kinds=None) -> dict:
        """Keep at most max_skip skip edges per cell kind: the weakest extra ones take their next op."""
        if self.max_skip < 0:
            return choice
        r = self.relax
        index = {name: (e, kind, opts) for e, (kind, name, opts) in enumerate(r.edges)}
        out = dict(choice)
        for kind in {index[n][1] for n in choice}:
            if kinds is not None and kind not in kinds:
                continue
            skips = sorted((w[index[n][0]][index[n][2].index(r.skip)], n) for n, op in choice.items()
                           if op == r.skip and index[n][1] == kind)
            for _, n in skips[:max(0, len(skips) - self.max_skip)]:
                e, _, opts = index[n]
                others = [k for k in range(len(opts)) if opts[k] not in (r.skip, r.zero)]
                out[n] = opts[max(others, key=lambda k: w[e][k])]
        return out

    def decisions(self, choice: dict) -> dict:
        """The space's decisions of a pick ({edge: op})."""
        r = self.relax
        if isinstance(r, NB201Relaxation):
            return dict(choice)
        out = {}
        for kind in ("normal", "reduce"):
            for i in range(r.d.NODES):
                names = r.d.state_names(i)
                chosen = sorted((names.index(n.split("<-")[1]), n.split("<-")[1], op)
                                for n, op in choice.items() if n.startswith(f"{kind}_n{i}<-"))
                (_, a, o1), (_, b, o2) = chosen
                out[f"{kind}_n{i}_inputs"] = f"{a},{b}"
                out[f"{kind}_n{i}_op1"], out[f"{kind}_n{i}_op2"] = o1, o2
        return out

    def diagnostics(self) -> dict:
        """The pick with and without the skip guard, and its skip/none counts per cell kind."""
        raw, guarded = self.pick(guard=False), self.pick(guard=True)
        r = self.relax
        kinds = sorted({k for k, _, _ in r.edges})

        def counts(choice):
            kind_of = {name: k for k, name, _ in r.edges}
            return {k: {"skip": sum(1 for n, op in choice.items() if op == r.skip and kind_of[n] == k),
                        "none": sum(1 for n, op in choice.items() if op == r.zero and kind_of[n] == k)}
                    for k in kinds}
        return {"steps": self.steps, "raw": raw, "raw_counts": counts(raw), "pick": guarded,
                "pick_counts": counts(guarded), "weights": self.weights(),
                "edges": [name for _, name, _ in r.edges], "ops": list(r.edges[0][2])}

    # ------------------------------------------------------------ protocol
    def ask(self) -> Trial:
        """The current discretisation; decisions DARTS does not relax are drawn at random."""
        return FixedTrial({**getattr(self, "fixed", {}), **self.decisions(self._allowed_pick())}, rng=self.rng)

    def _allowed_pick(self) -> dict:
        """The guarded pick, or (nb201mini) the most probable guarded cell not rejected over budget."""
        pick = self.pick()
        if not isinstance(self.relax, NB201Relaxation) or self._key(pick) not in self.rejected:
            return pick
        import itertools
        import math
        r, w = self.relax, self.weights()
        names = [name for _, name, _ in r.edges]
        options = [[o for o in opts if o != r.zero] for _, _, opts in r.edges]
        ranked = sorted(itertools.product(*options), key=lambda ops: -sum(
            math.log(max(w[e][r.edges[e][2].index(op)], 1e-12)) for e, op in enumerate(ops)))
        for ops in ranked:
            choice = dict(zip(names, ops))
            if (self.max_skip < 0 or list(ops).count(r.skip) <= self.max_skip) and \
                    self._key(choice) not in self.rejected:
                return choice
        return pick

    @staticmethod
    def _key(values: dict) -> str:
        return repr(sorted(values.items()))

    def tell(self, trial: Trial, result: Result) -> None:
        """A scored discretisation teaches nothing (alpha learns from gradients); one rejected over
        budget is not proposed again (nb201mini, where the cell alone decides the cost)."""
        from ..search.record import Status
        if result.status is Status.REJECTED and isinstance(self.relax, NB201Relaxation):
            self.rejected.add(self._key(dict(trial.values)))

    def state_dict(self) -> dict:
        osd = self.opt.state_dict()
        st = osd["state"].get(0, {})
        return {**super().state_dict(), "steps": self.steps, "alpha": self.alpha.detach().tolist(),
                "rejected": sorted(self.rejected),
                "adam": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in st.items()}}

    def load_state_dict(self, state: dict) -> None:
        torch = self.torch
        super().load_state_dict(state)
        self.steps = int(state["steps"])
        self.rejected = set(state.get("rejected", []))
        with torch.no_grad():
            self.alpha.copy_(torch.tensor(state["alpha"]))
        self.opt = torch.optim.Adam([self.alpha], lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_wd)
        if state.get("adam"):
            osd = self.opt.state_dict()
            osd["state"] = {0: {k: torch.tensor(v) for k, v in state["adam"].items()}}
            self.opt.load_state_dict(osd)
