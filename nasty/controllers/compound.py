"""EfficientNet's compound scaling (Tan & Le 2019), and its grid search as a controller.

Compound scaling grows a baseline network in depth, width and resolution
together, by one coefficient phi:

    depth  d = alpha ** phi        (the genotype's `scale depth=`: D(n) = ceil(n * d))
    width  w = beta  ** phi        (`scale width=`: W(c) = make_divisible(c * w, 8))
    resolution r = gamma ** phi    (input side round(r * base side))
    with alpha * beta**2 * gamma**2 ~= 2 and alpha, beta, gamma >= 1,

so that MACs grow by about 2 ** phi. The baseline must be written with W() and
D() (EfficientNet-B0 in the zoo is). EfficientNet found alpha=1.2, beta=1.1,
gamma=1.15 by a grid search at phi=1 on B0.

`compound_space(baseline)` turns that grid search into an ordinary search
space, so the runner drives it like any other: its decisions are `alpha`,
`beta` (those that still admit a gamma) and `gamma` (those meeting the
constraint), and its genotype is the baseline scaled at phi=1. On the target
(where budgets apply) all three coefficients act. On the proxy, width and depth
act but the input stays the dataset's own size, because the proxy trainer does
not resize images: gamma then changes the target cost but not the proxy's
accuracy, so the search's accuracy signal for gamma is missing on a proxy and
only cost separates gammas. `CompoundController` walks the grid in order; when it
is done (`finished`), `family(k)` gives the phi = 1..k members of the best
coefficients, each with its cost and budget verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NastyError
from ..space import FixedTrial, NetSpec, Space, Trial
from .base import Controller, Result, check_objective
from .values import budget_macs

EFFICIENTNET = (1.2, 1.1, 1.15)          # alpha (depth), beta (width), gamma (resolution)
TARGET_PRODUCT = 2.0


class CompoundError(NastyError):
    """Coefficients or a baseline that compound scaling cannot use."""


# ================================================================ scaling
def product(alpha: float, beta: float, gamma: float) -> float:
    return alpha * beta ** 2 * gamma ** 2


def check_coefficients(alpha: float, beta: float, gamma: float, tol: float = 0.1,
                       target: float = TARGET_PRODUCT) -> None:
    """Raise a one-line CompoundError unless alpha, beta, gamma >= 1 and a*b^2*g^2 is target +- tol."""
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
            raise CompoundError(f"compound scaling needs {name} >= 1, got {v!r}")
    p = product(alpha, beta, gamma)
    if abs(p - target) > tol + 1e-9:
        raise CompoundError(f"alpha*beta^2*gamma^2 = {alpha:g}*{beta:g}^2*{gamma:g}^2 = {p:.3f}, but compound "
                            f"scaling needs {target:g} +- {tol:g} (EfficientNet: 1.2, 1.1, 1.15 -> 1.920); "
                            "change the coefficients or --tol")


def grid(step: float = 0.05, tol: float = 0.1, max_coef: float = 2.0,
         target: float = TARGET_PRODUCT) -> list[tuple[float, float, float]]:
    """Every (alpha, beta, gamma) on a `step` grid from 1 to `max_coef` with a*b^2*g^2 = target +- tol."""
    if not 0 < step <= 1:
        raise CompoundError(f"grid step must be in (0, 1], got {step}")
    if tol < 0:
        raise CompoundError(f"tolerance must be >= 0, got {tol}")
    if max_coef < 1:
        raise CompoundError(f"largest coefficient must be >= 1, got {max_coef}")
    n = int(math.floor((max_coef - 1) / step + 1e-9))
    values = [round(1 + i * step, 10) for i in range(n + 1)]
    out = [(a, b, g) for a in values for b in values for g in values
           if abs(product(a, b, g) - target) <= tol + 1e-9]
    if not out:
        raise CompoundError(f"no grid point with step {step} up to {max_coef} has alpha*beta^2*gamma^2 = "
                            f"{target} +- {tol}; use a finer --step or a larger --tol")
    return out


def scale_genotype(g, alpha: float, beta: float, gamma: float, phi: float = 1, input=None,
                   resolution: bool = True):
    """`g` scaled by compound coefficient phi: depth *= alpha^phi, width *= beta^phi, side *= gamma^phi.

    Multipliers compose with the baseline's own `scale` header (so B1 as a baseline works).
    `input` replaces the baseline's input shape before the resolution scaling;
    `resolution=False` leaves the input side alone (the proxy).
    """
    from ..genotype.ir import sorted_attrs
    s = dict(g.scale)
    w0, d0 = float(s.get("width", 1.0)), float(s.get("depth", 1.0))
    s["width"] = round(w0 * beta ** phi, 6)
    s["depth"] = round(d0 * alpha ** phi, 6)
    c, h, w = tuple(input or g.input)
    if resolution:
        r = gamma ** phi
        h, w = int(round(r * h)), int(round(r * w))
    return g.with_header(scale=sorted_attrs(s.items()), input=(c, h, w))


def resolve_baseline(baseline):
    """A baseline Genotype from a Genotype, a zoo name, a genotype file, or a run folder's winner."""
    from .. import resolve
    from ..genotype import Genotype
    if isinstance(baseline, Genotype):
        return baseline
    if baseline is None or str(baseline).strip() == "":
        raise CompoundError("compound scaling needs a baseline: a zoo name (efficientnet_b0), "
                            "a genotype file, or a run folder whose winner to scale")
    p = Path(str(baseline))
    if p.is_dir():
        found = sorted([*p.glob("best*.nasty"), *p.glob("winner*.nasty"), *p.glob("best*.json"),
                        *p.glob("winner*.json")])
        found = [f for f in found if f.suffix == ".nasty" or _is_genotype_json(f)]
        if not found:
            raise CompoundError(f"run folder {str(p)!r} has no winner genotype (best*.nasty / best*.json); "
                                "finish the search first, or pass the genotype file")
        return resolve(str(found[0]))
    return resolve(str(baseline))


def _is_genotype_json(path: Path) -> bool:
    try:
        import json
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and ("net" in doc or "name" in doc) and ("layers" in doc or "body" in doc
                                                                          or "stages" in doc)


def check_scalable(g) -> None:
    """Refuse a baseline whose width and depth do not follow `scale` (written without W() and D())."""
    from ..cost import cost
    base = cost(g).macs
    wide = cost(scale_genotype(g, 1.0, 1.5, 1.0, resolution=False)).macs
    deep = cost(scale_genotype(g, 2.0, 1.0, 1.0, resolution=False)).macs
    missing = [what for what, m in (("W() for channels", wide), ("D() for repeats", deep)) if m == base]
    if missing:
        raise CompoundError(f"baseline {g.name!r} does not use {' or '.join(missing)}; compound scaling "
                            "changes a genotype through its `scale width= depth=` header, so write the "
                            "channels as W(c) and the repeats as x D(n)")


def family(g, alpha: float, beta: float, gamma: float, phis, budget=None) -> list[dict]:
    """The scaled members phi in `phis` of baseline `g`, with their cost, MACs ratio and budget verdict."""
    from ..cost import cost
    base = cost(g)
    out = []
    for phi in phis:
        m = scale_genotype(g, alpha, beta, gamma, phi)
        c = cost(m)
        verdict = None
        if budget is not None:
            if hasattr(budget, "check"):
                verdict = budget.check(c)
            else:
                limit = budget_macs(budget)
                verdict = None if limit is None or c.macs <= limit else f"{c.macs:,} MACs > {limit:,}"
        out.append({"phi": phi, "depth": dict(m.scale)["depth"], "width": dict(m.scale)["width"],
                    "input": list(m.input), "params": c.params, "macs": c.macs,
                    "macs_ratio": c.macs / base.macs, "ideal_ratio": product(alpha, beta, gamma) ** phi,
                    "within_budget": None if budget is None else verdict is None,
                    "over_budget": verdict, "genotype": m})
    return out


# ================================================================ the grid as a space
@dataclass
class CompoundSpace(Space):
    """A search space over compound-scaling coefficients of one baseline (see compound_space)."""
    baseline: object = None
    grid: list = field(default_factory=list)
    step: float = 0.05
    tol: float = 0.1


def compound_space(baseline, step: float = 0.05, tol: float = 0.1, max_coef: float = 2.0,
                   proxy: dict | None = None) -> CompoundSpace:
    """The grid search of alpha, beta, gamma at phi=1 around `baseline`, as a define-by-run Space.

    `proxy`: dict(input=(C, H, W), classes=N) of the data the candidates train on
    (default Fashion-MNIST, 1x28x28, 10 classes).
    """
    g = resolve_baseline(baseline)
    check_scalable(g)
    points = grid(step, tol, max_coef)
    proxy = proxy or {"input": (1, 28, 28), "classes": 10}

    def fn(t, net):
        alphas = sorted({a for a, _, _ in points})
        a = t.choice("alpha", alphas)
        b = t.choice("beta", sorted({b for a2, b, _ in points if a2 == a}))
        gm = t.choice("gamma", sorted({x for a2, b2, x in points if a2 == a and b2 == b}))
        if net.proxy:
            m = scale_genotype(g, a, b, gm, 1, input=net.input, resolution=False)
            return m.with_header(classes=net.classes)
        return scale_genotype(g, a, b, gm, 1, input=net.input).with_header(classes=net.classes)

    return CompoundSpace(
        name=f"compound_{g.name}", fn=fn,
        target=NetSpec(False, tuple(g.input), int(g.classes or 1000)),
        proxy=NetSpec(True, tuple(proxy["input"]), int(proxy["classes"])),
        description=f"compound scaling of {g.name}: alpha, beta, gamma >= 1, alpha*beta^2*gamma^2 = "
                    f"{TARGET_PRODUCT:g} +- {tol:g}, step {step:g} ({len(points)} grid points), at phi=1",
        baseline=g, grid=points, step=step, tol=tol)


# ================================================================ the controller
class CompoundController(Controller):
    """EfficientNet's grid search: evaluate every grid point at phi=1, keep the best, scale it."""
    name = "compound"
    # the options' ranges (checked before a search starts; controllers.check_option_types)
    OPTION_RANGES = {"phi": "[1, 16]"}

    def __init__(self, space, seed: int = 0, phi: int = 3, budget=None, objective: str | None = None,
                 **options):
        super().__init__(space, seed)
        check_objective(self.name, objective, hint="the grid search keeps the most accurate coefficients",
                        error=CompoundError)
        if not isinstance(space, CompoundSpace):
            raise CompoundError(f"controller 'compound' searches the scaling coefficients of a baseline "
                                f"network and cannot drive space {getattr(space, 'name', space)!r}; give it "
                                "a baseline instead (e.g. --controller compound --baseline efficientnet_b0)")
        if int(phi) < 1:
            raise CompoundError(f"compound: phi (the family size) must be at least 1, got {phi}")
        self.phi, self.budget = int(phi), budget
        self.plan = [tuple(p) for p in space.grid]
        self.next = 0
        self.results: dict[str, float] = {}
        self.finished = False

    @staticmethod
    def _key(a, b, g) -> str:
        return f"{a:g},{b:g},{g:g}"

    def ask(self) -> Trial:
        if self.next < len(self.plan):
            a, b, g = self.plan[self.next]
            self.next += 1
            self.finished = self.next >= len(self.plan)
            return FixedTrial({"alpha": a, "beta": b, "gamma": g})
        self.finished = True
        a, b, g = self.best() or self.plan[0]
        return FixedTrial({"alpha": a, "beta": b, "gamma": g})

    def tell(self, trial: Trial, result: Result) -> None:
        if result.reward is None:
            return
        v = trial.values
        key = self._key(v["alpha"], v["beta"], v["gamma"])
        self.results[key] = max(float(result.reward), self.results.get(key, -math.inf))

    def best(self):
        """The best evaluated (alpha, beta, gamma), ties to the earlier grid point; None before any."""
        best, best_r = None, -math.inf
        for p in self.plan:
            r = self.results.get(self._key(*p))
            if r is not None and r > best_r:
                best, best_r = p, r
        return best

    def family(self, k: int | None = None) -> list[dict]:
        """phi = 1..k members of the best coefficients, each checked against the budget."""
        best = self.best()
        if best is None:
            raise CompoundError("compound: no grid point has finished yet, so there is no best to scale")
        return family(self.space.baseline, *best, range(1, (k or self.phi) + 1), self.budget)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "next": self.next, "results": dict(self.results), "finished": self.finished,
                "grid": [list(p) for p in self.plan]}

    def load_state_dict(self, state: dict) -> None:
        if [tuple(p) for p in state["grid"]] != self.plan:
            raise CompoundError("compound: the saved grid differs from this space's grid; resume with the "
                                "same baseline, --step and --tol")
        super().load_state_dict(state)
        self.next, self.finished = int(state["next"]), bool(state["finished"])
        self.results = {k: float(v) for k, v in state["results"].items()}
