"""`nasty scale BASE --phi K`: EfficientNet compound scaling with given coefficients, no search."""
from __future__ import annotations

import json
from pathlib import Path

MAX_PHI = 16    # 2^16 = 65,536 times the baseline's MACs: far past any network anyone trains (B7 is phi ~ 6)


def add_parser(sub):
    p = sub.add_parser(
        "scale", help="compound-scale a baseline (depth alpha^phi, width beta^phi, resolution gamma^phi)",
        description="Apply EfficientNet's compound scaling (Tan & Le 2019) to a baseline genotype written "
                    "with W() and D(), for phi = 1..K, and print each member's cost. The coefficients must "
                    "satisfy alpha*beta^2*gamma^2 = 2 +- tol with each >= 1, so MACs grow about 2^phi "
                    "(MACs: one multiply-add = one FLOP). Defaults: EfficientNet's 1.2, 1.1, 1.15.")
    p.add_argument("base", metavar="BASE", help="zoo name (e.g. efficientnet_b0), genotype file, or run folder")
    p.add_argument("--phi", type=int, default=3, help=f"largest compound coefficient K (default 3, at most {MAX_PHI})")
    p.add_argument("--alpha", type=float, default=None, help="depth coefficient (default 1.2)")
    p.add_argument("--beta", type=float, default=None, help="width coefficient (default 1.1)")
    p.add_argument("--gamma", type=float, default=None, help="resolution coefficient (default 1.15)")
    p.add_argument("--tol", type=float, default=0.1,
                   help="allowed distance of alpha*beta^2*gamma^2 from 2, below 1 (default 0.1)")
    p.add_argument("--budget", default=None, help="MACs budget each member is checked against, e.g. 2GFLOPs")
    p.add_argument("--params", default=None, help="parameter budget, e.g. 20M")
    p.add_argument("--save", metavar="DIR", default=None, help="write each member as DIR/NAME_phiK.nasty")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import cost, format
    from ..controllers.compound import EFFICIENTNET, check_coefficients, check_scalable, family, resolve_baseline
    from ..errors import NastyError
    from ..display import human
    if not 1 <= args.phi <= MAX_PHI:
        raise NastyError(f"--phi must be from 1 to {MAX_PHI}, got {args.phi}")
    if not 0 <= args.tol < 1:       # at 1 or more, alpha = beta = gamma = 1 would "scale" forever
        raise NastyError(f"--tol must be at least 0 and below 1, got {args.tol:g}")
    a = EFFICIENTNET[0] if args.alpha is None else args.alpha
    b = EFFICIENTNET[1] if args.beta is None else args.beta
    g = EFFICIENTNET[2] if args.gamma is None else args.gamma
    top = 2 + args.tol          # no coefficient can exceed it: the others are >= 1
    for name, v in (("alpha", a), ("beta", b), ("gamma", g)):
        if v > top:             # 1e308 gets a short message, not alpha*beta^2*gamma^2 in 309 digits
            raise NastyError(f"--{name} must be at most {top:g} (each coefficient is at least 1 and "
                             f"alpha*beta^2*gamma^2 = 2 +- tol), got {v:g}")
    check_coefficients(a, b, g, tol=args.tol)
    budget = None
    if args.budget is not None or args.params is not None:
        from ..search.budget import Budget
        budget = Budget.parse(macs=args.budget, params=args.params)
    base = resolve_baseline(args.base)
    check_scalable(base)
    members = []
    for phi in range(1, args.phi + 1):      # one at a time, so an error names the member
        try:
            members += family(base, a, b, g, [phi], budget)
        except NastyError as e:
            raise NastyError(f"phi={phi}: {e}") from None
    c0 = cost(base)
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        for m in members:
            path = out / f"{base.name}_phi{m['phi']}.nasty"
            path.write_text(format(m["genotype"].with_header(name=f"{base.name}_phi{m['phi']}")))
            m["file"] = str(path)
    if args.json:
        print(json.dumps({"base": base.name, "alpha": a, "beta": b, "gamma": g, "product": a * b * b * g * g,
                          "base_params": c0.params, "base_macs": c0.macs,
                          "members": [{k: v for k, v in m.items() if k != "genotype"} for m in members]},
                         indent=1))
        return 0
    prod = a * b * b * g * g
    print(f"{base.name}: alpha={a:g} (depth) beta={b:g} (width) gamma={g:g} (resolution); "
          f"alpha*beta^2*gamma^2 = {prod:.3f}")
    head = f"{'phi':>3}  {'depth':>7}  {'width':>7}  {'input':>11}  {'params':>8}  {'MACs':>8}  " \
           f"{'x base':>7}  {'2^phi':>6}  {'ideal':>6}"
    if budget is not None:
        head += "  budget"
    print(head)
    rows = [{"phi": 0, "depth": dict(base.scale).get("depth", 1.0), "width": dict(base.scale).get("width", 1.0),
             "input": list(base.input), "params": c0.params, "macs": c0.macs, "macs_ratio": 1.0,
             "ideal_ratio": 1.0, "within_budget": None if budget is None else budget.check(c0) is None,
             "over_budget": None if budget is None else budget.check(c0)}] + members
    for m in rows:
        line = (f"{m['phi']:>3}  {float(m['depth']):>7.4g}  {float(m['width']):>7.4g}  "
                f"{'x'.join(map(str, m['input'])):>11}  {human(m['params']):>8}  {human(m['macs']):>8}  "
                f"{m['macs_ratio']:>7.3f}  {2 ** m['phi']:>6}  {m['ideal_ratio']:>6.3f}")
        if budget is not None:
            line += "  " + ("ok" if m["within_budget"] else f"OVER ({m['over_budget']})")
        print(line)
    print("x base: measured MACs ratio; ideal: (alpha*beta^2*gamma^2)^phi. They differ because channels "
          "round to multiples of 8, repeats round up (ceil), and stride-2 feature maps round up.")
    if args.save:
        print(f"wrote {len(members)} genotypes to {args.save}")
    return 0
