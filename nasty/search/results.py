"""What a run's records say: the ranking, the Pareto front, the leaderboard, the plots, the
winner's cell pictures, report.html (laid out by html_report.py), the end-of-run summary, and
`report` (what `nasty report runs/NAME` prints and rewrites).
Everything here is computed from trials.jsonl; nothing here trains or runs Ray."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..display import human, text_table
from ..errors import RunError
from .folder import RunFolder, atomic_write
from .ranking import best_of, confirmed, counts, pareto, ranked  # noqa: F401  (results' names before ranking.py)
from .record import Status, TrialRecord, jsonable

KEEP_WEIGHTS = 3                   # proxy weights kept for the best trials (the winner's test accuracy)


def leaderboard_text(records, top: int | None = 20, confirmations=(), latency=None) -> str:
    """The ranked trials as a table, then the counts by status and the first failures. `latency`:
    the finalists' measurements ({trial: ...}, nasty/latency/search.py) for the latency columns."""
    from ..latency.search import columns
    conf = confirmed(confirmations)
    rk = ranked(records, confirmations)
    lat_head, lat_row = columns(records, latency)

    def shown(r):
        c = conf.get(r.trial)
        return "" if c is None else f"{c.mean:.4f}" + (f" ±{c.spread:.4f}" if len(c.accs) > 1 else "")

    rows = [(i, f"#{r.trial}", f"{r.val_acc:.4f}", shown(r), human(r.target.macs), human(r.target.params),
             human(r.proxy.macs if r.proxy else 0), len(r.epochs), r.status.value, f"{r.train_s or 0:.1f}")
            + lat_row(r) for i, r in enumerate(rk[:top] if top else rk, 1)]
    lines = [text_table(("rank", "trial", "val acc", "confirmed", "target MACs", "params", "proxy MACs", "epochs",
                         "status", "train s") + lat_head, rows,
                        align=["right"] * 8 + ["left", "right"] + ["right"] * len(lat_head)), ""]
    n = counts(records)
    lines.append("trials: " + ", ".join(f"{v} {k}" for k, v in sorted(n.items()) if v))
    for r in [r for r in records if r.status is Status.FAILED][:10]:
        lines.append(f"  failed #{r.trial}: {r.reason}")
    return "\n".join(lines)


def leaderboard_rows(records, confirmations=()) -> list[dict]:
    conf = confirmed(confirmations)
    return [{"trial": r.trial, "val_acc": r.val_acc, "best_val_acc": r.best_val_acc, "status": r.status.value,
             **({"confirmed_val_acc": conf[r.trial].mean, "confirmed_accs": list(conf[r.trial].accs)}
                if r.trial in conf else {}),
             **{k: v for k, v in r.to_dict().items() if k in ("target", "proxy", "decisions")}}
            for r in ranked(records, confirmations)]


# ------------------------------------------------------------------ plots
PLOTS = {                      # plots/<name>.png and .svg, rewritten from the records, and their captions
    "accuracy_vs_macs": "validation accuracy vs target MACs and params, with the over-budget samples' costs",
    "best_so_far": "validation accuracy of each trial, and the best so far",
    "screen": "the screen: each score against the trained accuracy of the candidates it let through, and "
              "the scores of those it screened out (runs that screened)",
    "accuracy_vs_latency": "validation accuracy vs predicted target latency (runs with a latency budget), with "
                           "the front, the budget and the finalists as measured",
}


def canonical_name(record: TrialRecord, canonical: dict | None) -> str | None:
    """The name of the space's canonical member (e.g. nasnet_a) whose decisions the record's are."""
    if not canonical or not record.decisions:
        return None
    mine = jsonable(record.decisions)
    return next((name for name, d in canonical.items() if jsonable(d) == mine), None)


def write_plots(folder: RunFolder, records, budget_macs=None, budget_params=None, canonical=None,
                confirmations=(), chance: float | None = None) -> list[Path]:
    """plots/accuracy_vs_macs and plots/best_so_far, each as PNG and SVG.

    accuracy_vs_macs: validation accuracy against the target's MACs and, in a second panel, its
    params, with the Pareto fronts, the winner (the best confirmed trial when there are
    confirmations, as everywhere), the budgets, the chance level, the space's canonical members
    that were evaluated (labelled), and below each panel a strip with the over-budget samples'
    costs (they were never trained, so they have no accuracy); the strip shares the panel's axis,
    which the trained trials and the budget set: samples beyond it are drawn at its edge with a
    count. Legends sit outside the axes, so that none hides a point. `records`: every record,
    rejected ones included; `canonical`: the space's {name: decisions}; `chance`: the validation
    split's chance level (guards.image_counts)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out_dir = folder.path / "plots"
    rk = ranked(records, confirmations)
    rejected = [r for r in records if r.status is Status.REJECTED and r.target]
    paths = []

    fig = Figure(figsize=(11, 5.9), dpi=110)        # fixed margins: a layout engine would draw it once more
    grid = fig.add_gridspec(2, 2, height_ratios=(6, 1), hspace=0.06, wspace=0.06,
                            left=0.065, right=0.975, top=0.8, bottom=0.1)
    left = fig.add_subplot(grid[0, 0])
    right = fig.add_subplot(grid[0, 1], sharey=left)
    panels = ((left, fig.add_subplot(grid[1, 0], sharex=left), "macs", budget_macs,
               "target multiply-adds (one MAC = one FLOP)"),
              (right, fig.add_subplot(grid[1, 1], sharex=right), "params", budget_params,
               "target parameters"))
    names = {id(r): canonical_name(r, canonical) for r in rk + rejected}     # canonical members, by record
    for ax, strip, what, budget, xlabel in panels:
        _cost_panel(ax, strip, what, records, rk, rejected, budget, names, xlabel, confirmations, chance)
    right.tick_params(labelleft=False)
    left.set_ylabel("proxy validation accuracy")
    panels[0][1].set_ylabel("over\nbudget", rotation=0, ha="right", va="center", fontsize=8)
    handles, labels = left.get_legend_handles_labels()
    if handles:                                      # above the panels: it never hides a point
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.52, 0.925), ncol=min(len(handles), 6),
                   fontsize=8, frameon=False)
    fig.suptitle(f"validation accuracy vs target cost: {len(rk)} trained, {len(rejected)} over budget "
                 "(never trained)", fontsize=11, y=0.975)
    paths += _save_fig(fig, out_dir / "accuracy_vs_macs")

    fig = Figure(figsize=(8, 4), dpi=110)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.09, right=0.78, top=0.92, bottom=0.12)
    trained = sorted((r for r in records if r.status.counted), key=lambda r: r.trial)
    xs, accs, best, run = [], [], [], -1.0
    for r in trained:
        xs.append(r.trial)
        accs.append(r.val_acc if r.val_acc is not None else float("nan"))
        if r.val_acc is not None and r.status is Status.OK:
            run = max(run, r.val_acc)
        best.append(run if run >= 0 else float("nan"))
    if xs:
        ax.scatter(xs, accs, s=14, color="tab:blue", alpha=0.6, label="trial")
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
        failed = [r.trial for r in trained if r.status is Status.FAILED or r.val_acc is None]
        if failed:                                  # no accuracy: on the bottom edge, at no height of the scale
            ax.scatter(failed, [0.02] * len(failed), marker="x", color="black", s=20, label="failed / no score",
                       transform=ax.get_xaxis_transform(), clip_on=False)
        if chance is not None:
            ax.axhline(chance, color="gray", ls=":", lw=1.2, label=f"chance ({chance:.3g})")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if xs:                                      # every trial in view (those without a score too)
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        if all(a != a for a in accs):           # no accuracy at all (all NaN): a plain 0..1 scale
            ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))          # trials are whole numbers
    ax.set_xlabel("trial")
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("best so far")
    ax.grid(alpha=0.3)
    paths += _save_fig(fig, out_dir / "best_so_far")
    return paths


def _cost_panel(ax, strip, what, records, rk, rejected, budget, canonical: dict, xlabel, confirmations=(),
                chance=None):
    """One panel of accuracy_vs_macs: accuracy against the target's `what` ("macs" or "params"),
    and under it the strip of over-budget samples at their cost. `canonical`: {id(record): name}."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    def x(r):
        return getattr(r.target, what)

    ok = [r for r in rk if r.status is Status.OK]
    other = [r for r in rk if r.status is not Status.OK]
    if ok:
        ax.scatter([x(r) for r in ok], [r.val_acc for r in ok], s=22, color="tab:blue", label="trained trials")
    if other:
        ax.scatter([x(r) for r in other], [r.val_acc for r in other], s=18, color="tab:gray", marker="x",
                   label="stopped early")
    front = pareto(records, cost=lambda r: getattr(r.target, what))
    if front:
        ax.step([x(r) for r in front], [r.val_acc for r in front], where="post", color="tab:red", lw=1.5,
                label="Pareto front")
        b = rk[0]
        ax.scatter([x(b)], [b.val_acc], s=140, marker="*", color="gold", edgecolor="black", zorder=5, clip_on=False,
                   label=f"winner (#{b.trial}{', confirmed' if any(c.trial == b.trial for c in confirmations) else ''})")
    if chance is not None and rk:
        ax.axhline(chance, color="gray", ls=":", lw=1.2, label=f"chance ({chance:.3g})")
    members = [(r, canonical[id(r)]) for r in rk if canonical.get(id(r))]
    if members:
        ax.scatter([x(r) for r, _ in members], [r.val_acc for r, _ in members], s=80, marker="D",
                   facecolor="none", edgecolor="tab:green", lw=1.6, zorder=6, label="canonical member")
        for r, name in members:
            ax.annotate(name, (x(r), r.val_acc), xytext=(6, 6), textcoords="offset points", fontsize=8,
                        color="tab:green", zorder=7)
    if budget:
        for a in (ax, strip):
            a.axvline(budget, color="black", ls="--", lw=1, label="budget" if a is ax else None)
    # the axis: the trained trials' costs and the budget (the over-budget samples do not stretch it)
    shown = [x(r) for r in rk] + ([budget] if budget else [])
    if not shown:
        shown = [x(r) for r in rejected]
    log = bool(shown) and min(shown) > 0 and max(shown) / min(shown) > 30
    if shown:
        lo, hi = min(shown), max(shown)
        if log:
            lo, hi = lo / 1.25, hi * 1.25
        else:
            pad = 0.08 * (hi - lo) or 0.1 * hi or 1.0
            lo, hi = lo - pad, hi + pad
        lo = max(lo, 0) if not log else lo
    # the over-budget samples: their cost only, at heights spread by sample number so marks stay apart;
    # those beyond the axis sit at its right edge, counted
    ys = [(0.15 + 0.7 * ((r.sample or 0) * 0.618034 % 1)) for r in rejected]
    inside = [(x(r), y) for r, y in zip(rejected, ys) if not shown or x(r) <= hi]
    beyond = [x(r) for r in rejected if shown and x(r) > hi]
    if inside:
        strip.scatter([a for a, _ in inside], [b for _, b in inside], s=50, marker="|", color="tab:orange",
                      alpha=0.8, label="over budget")
    if beyond:
        named = [canonical[id(r)] for r in rejected if canonical.get(id(r)) and x(r) > hi]
        strip.scatter([hi] * len(beyond), [0.5] * len(beyond), s=60, marker=">", color="tab:orange", clip_on=False)
        strip.annotate(f"{len(beyond)} more, up to {human(max(beyond))}" + (f" ({', '.join(named)})" if named else ""),
                       (hi, 0.5), xytext=(-8, 0), textcoords="offset points", ha="right", va="center", fontsize=7,
                       color="tab:orange")
    if not rejected:
        strip.text(0.5, 0.5, "no sample was over budget", transform=strip.transAxes, ha="center",
                   va="center", fontsize=8, color="#666666")
    for r, y in zip(rejected, ys):
        if canonical.get(id(r)) and (not shown or x(r) <= hi):
            strip.annotate(canonical[id(r)], (x(r), y), xytext=(4, 0), textcoords="offset points", fontsize=7,
                           color="tab:green", va="center")
    if log:                                                          # costs over decades: a log axis
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_minor_locator(NullLocator())
    if shown:
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: human(v)))    # 300M, 2.5M: no 10^x
    else:                                       # nothing to place on this axis
        strip.set_xticks([])
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_xlabel(xlabel)
    ax.tick_params(labelbottom=False)
    ax.grid(alpha=0.3)
    strip.grid(alpha=0.3, axis="x")


def _save_fig(fig, stem: Path) -> list[Path]:
    """The figure as stem.png and stem.svg, each replaced atomically. The SVG keeps its text as
    text and has fixed ids and no date, so the same records give the same bytes."""
    from matplotlib import rc_context
    paths = []
    for fmt in ("png", "svg"):
        path = stem.with_suffix(f".{fmt}")
        meta = {"Date": None} if fmt == "svg" else {}
        with rc_context({"svg.hashsalt": "nasty", "svg.fonttype": "none"}):
            atomic_write(path, lambda tmp, fmt=fmt, meta=meta: fig.savefig(tmp, format=fmt, metadata=meta))
        paths.append(path)
    return paths


# ------------------------------------------------------------------ the run's result files
def write_results(folder: RunFolder, records, budget_macs=None, plots=True, canonical=None):
    """Leaderboard, best genotype and (optionally) plots from the records. `canonical`: the space's
    known members (name -> decisions) to label in the plots (default: reloaded from config.json)."""
    records = [r for r in records if r.status.counted]
    folder.never_fewer(records)
    confirmations = folder.confirmations()
    from ..latency.search import best_info, measured
    latency = measured(folder)
    folder.write_json("leaderboard.json", leaderboard_rows(records, confirmations))
    folder.write_text("leaderboard.txt", leaderboard_text(records, None, confirmations, latency) + "\n")
    b = best_of(records, confirmations)
    if b is not None:
        head = (f"# best of run {folder.path.name}: trial #{b.trial}, proxy val acc {b.val_acc:.4f}, "
                f"target {b.target.macs:,} MACs (one multiply-add = one FLOP), "
                f"{b.target.params:,} params\n")
        folder.write_text("best.nasty", head + b.genotype)
        folder.write_text("best_proxy.nasty", f"# proxy network of trial #{b.trial} (trained in the search)\n"
                          + b.proxy_genotype)
        prev = folder.read_json("best.json", {}) or {}
        d = b.to_dict()
        info = {k: d.get(k) for k in ("trial", "val_acc", "best_val_acc", "status", "target", "proxy",
                                      "decisions", "epochs")}
        info.update(confirmation_info(b.trial, confirmations))
        from .guards import warnings
        cfg = _config(folder)
        info.update(images=cfg.get("images"), warnings=warnings(cfg, records))
        info.update(best_info(folder, b.trial))
        from .audit import audit_info
        info.update(audit_info(folder, b.trial))
        if isinstance(prev, dict) and prev.get("trial") == b.trial and "test_acc" in prev \
                and prev.get("confirmed") == info.get("confirmed"):
            info["test_acc"] = prev["test_acc"]
        elif isinstance(prev, dict) and prev.get("trial") == b.trial and isinstance(prev.get("test_acc_error"), str):
            info["test_acc_error"] = prev["test_acc_error"]       # why it has none: kept until it has one
        if isinstance(prev, dict) and prev.get("trial") == b.trial and isinstance(prev.get("train_estimate"), dict):
            info["train_estimate"] = prev["train_estimate"]
        folder.write_json("best.json", info)
    if plots:
        write_run_plots(folder, records, budget_macs, canonical)


def write_run_plots(folder: RunFolder, trials, budget_macs=None, canonical=None) -> list[Path]:
    """The plots of a run: its `trials`, and what config.json and trials.jsonl add to them: the
    params budget, the over-budget samples (a caller such as the search loop keeps only trials)
    and the canonical members of its space (or `canonical`: a space given from Python is not
    in config.json)."""
    cfg = _config(folder)
    trials = [r for r in trials if r.status.counted]
    try:
        every = folder.records()
    except RunError:            # a damaged line: the plots go without the over-budget and screened samples
        every = trials
    rejected = [r for r in every if r.status is Status.REJECTED]
    try:
        confirmations = folder.confirmations()
    except RunError:
        confirmations = []
    chance = (cfg.get("images") or {}).get("chance") if isinstance(cfg.get("images"), dict) else None
    paths = write_plots(folder, trials + rejected, budget_macs, cfg.get("budget_params"),
                       space_canonical(cfg) if canonical is None else canonical, confirmations, chance)
    from ..latency.search import PLOT, latency_figure
    fig = latency_figure(folder, trials + rejected, cfg)                # None for a run without latency
    paths += _save_fig(fig, folder.path / "plots" / PLOT) if fig is not None else []
    from .screen import PLOT as SCREEN_PLOT, screen_figure
    fig = screen_figure(every)                                          # None for a run that did not screen
    return paths + (_save_fig(fig, folder.path / "plots" / SCREEN_PLOT) if fig is not None else [])


def _config(folder: RunFolder) -> dict:
    try:
        cfg = folder.read_json("config.json", {})
    except RunError:            # a damaged config: the plots go without what it would add
        return {}
    return cfg if isinstance(cfg, dict) else {}


_CANONICAL: dict = {}           # (space, its file's mtime) -> Space.canonical: the loop replots every 20 s


def space_canonical(cfg: dict) -> dict:
    """The canonical members ({name: decisions}) of the run's space; {} when it has none or
    cannot be loaded (a moved space file: the plots go without the labels)."""
    name = cfg.get("space")
    if not isinstance(name, str) or not name or name.startswith("python:"):   # python: a Space object
        return {}
    try:
        key = (name, Path(name).stat().st_mtime_ns if name.endswith(".py") else None)
    except OSError:
        return {}
    if key not in _CANONICAL:
        from ..space import load_space
        try:
            _CANONICAL[key] = dict(load_space(name).canonical)
        except Exception:  # noqa: BLE001 - a broken space file must not stop the plots
            _CANONICAL[key] = {}
    return _CANONICAL[key]


# ------------------------------------------------------------------ the winner's cells, report.html
def draw_winner_cells(folder: RunFolder, records) -> tuple[list[str], list[str]]:
    """plots/cell_<name>.png and .svg for each cell of the winner's target genotype (what
    `nasty draw runs/NAME/best.nasty` draws); cell pictures of an earlier winner are removed.
    Returns (the cells drawn, notes): drawing never fails a search, an error is a note."""
    import shutil
    import tempfile

    plots = folder.path / "plots"
    old = {p for p in plots.glob("cell_*") if p.suffix in (".png", ".svg")} if plots.is_dir() else set()
    best = best_of(records, folder.confirmations())
    names, new, notes = [], set(), []
    if best is not None and best.genotype:
        try:
            from .. import parse
            from ..draw import cells_to_draw, draw_cells
            g = parse(best.genotype)
            names = cells_to_draw(g)
            if names:
                plots.mkdir(parents=True, exist_ok=True)
                tmp = tempfile.mkdtemp(dir=plots, prefix=".cells.")   # each file then replaced at once
                try:
                    for f in draw_cells(g, tmp, cells=names):
                        os.replace(f, plots / f.name)
                        new.add(plots / f.name)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        except Exception as e:  # noqa: BLE001 - the search's results stand without the pictures
            names = []
            notes.append(f"(the winner's cells could not be drawn: {_one_line(e)})")
    for p in old - new:
        p.unlink(missing_ok=True)
    return names, notes


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def write_report_html(folder: RunFolder, records, summary: list[str], cells: list[str]) -> str:
    """runs/<name>/report.html from the records, the end-of-run `summary` and the winner's
    `cells` (drawn in plots/). Returns a note when it could not be written ("" when it was)."""
    import time

    from . import html_report as page
    try:
        cfg = _config(folder)
        canonical = space_canonical(cfg)
        best_info = folder.read_json("best.json", {}) or {}
        best_info = best_info if isinstance(best_info, dict) else {}
        test_acc = best_info.get("test_acc")
        counted = [r for r in records if r.status.counted]
        confirmations = folder.confirmations()
        conf = confirmed(confirmations)
        rk = ranked(counted, confirmations)
        from ..latency.search import columns, measured
        lat_head, lat_row = columns(counted, measured(folder))
        rows = []
        for i, r in enumerate(rk, 1):
            name = canonical_name(r, canonical)        # the space's canonical member it is (nasnet_a), if any
            winner = i == 1 and best_info.get("trial") == r.trial
            c = conf.get(r.trial)
            rows.append((i, f"#{r.trial}" + (f" = {name}" if name else ""), f"{r.val_acc:.4f}",
                         "" if c is None else f"{c.mean:.4f}" + (f" ±{c.spread:.4f}" if len(c.accs) > 1 else ""),
                         human(r.target.macs), human(r.target.params), human(r.proxy.macs if r.proxy else 0),
                         len(r.epochs), r.status.value, f"{r.train_s or 0:.1f}",
                         f"{test_acc:.4f}" if winner and isinstance(test_acc, float) else "") + lat_row(r))
        board = page.Table(("rank", "trial", "val acc", "confirmed", "target MACs", "target params", "proxy MACs",
                            "epochs", "status", "train s", "test acc") + lat_head, rows, text_columns=frozenset({1, 8}),
                           highlight_first=True)
        failed = page.Table(("trial", "reason"), [(f"#{r.trial}", r.reason or "") for r in counted
                                                   if r.status is Status.FAILED],
                            text_columns=frozenset({1}), preformatted=frozenset({1}))
        shown = [page.Picture(caption, *_picture_files(folder, stem)) for stem, caption in PLOTS.items()]
        plots = [p for p in shown if p.svg or p.png]
        pictures = [page.Picture(f"cell {c}", *_picture_files(folder, f"cell_{c}")) for c in cells]
        best = best_of(counted, confirmations)
        no_cells = ("No trial finished training." if best is None else
                    "The winner has no cells to draw: its layers are plain ops." if not cells else "")
        from .guards import warnings
        headline = next((line for line in summary if line.startswith(("best architecture:", "no trial"))), "")
        genotype = ((f"best.nasty: the winner's target genotype (trial #{best.trial}, {len(best.genotype.splitlines())} "
                     "lines): show", best.genotype) if best is not None and best.genotype else None)
        text = page.page(f"nasty run {folder.path.name}", _run_facts(folder, cfg, records),
                         [line for line in summary if line != headline], board, plots, pictures, no_cells, failed,
                         time.strftime(CLOCK), root=folder.path, headline=headline,
                         warnings=warnings(cfg, records), genotype=genotype)
        folder.write_text("report.html", text)
    except Exception as e:  # noqa: BLE001 - the search's results stand without the page
        return f"(report.html could not be written: {_one_line(e)})"
    return ""


@dataclass(frozen=True)
class Pictures:
    """What `write_pictures` made: the winner's cells drawn, report.html (None if it could not be
    written) and notes for what could not be made."""
    cells: list
    page: Path | None
    notes: list

    def lines(self) -> list[str]:
        """What a person reads after the summary."""
        where = [f"page: {self.page} (the run on one page: leaderboard, plots, the winner's cells)"]
        return (where if self.page else []) + self.notes


def write_pictures(folder: RunFolder, records, cfg: dict, stop_reason=None, wall=None) -> Pictures:
    """The winner's cells and report.html, at the end of a search and by `nasty report`.
    report.html's summary is the end-of-run summary as the records, best.json and config.json
    tell it (`stop_reason` and `wall` are only known to the search that ends). Never raises for
    a picture: the search's results stand without them."""
    from .budget import Budget
    cells, notes = draw_winner_cells(folder, records)
    try:
        info = folder.read_json("best.json", {}) or {}
    except RunError:            # damaged: the summary goes without the test accuracy
        info = {}
    test_acc = info.get("test_acc") if isinstance(info, dict) else None
    test_acc = test_acc if isinstance(test_acc, float) else None
    budget = Budget(cfg.get("budget_macs"), cfg.get("budget_params"))
    summary = summary_lines(folder, records, test_acc, budget.describe() if budget else None, stop_reason,
                            wall) + notes
    if test_acc is None and isinstance(info, dict) and isinstance(info.get("test_acc_error"), str):
        summary.append(f"test accuracy not measured: {info['test_acc_error']}")
    note = write_report_html(folder, records, summary, cells)
    return Pictures(cells, None if note else folder.path / "report.html", notes + ([note] if note else []))


CLOCK = "%Y-%m-%d %H:%M:%S"


def _run_facts(folder: RunFolder, cfg: dict, records) -> list[tuple[str, str]]:
    """report.html's header: the run's settings (config.json) and dates."""
    import time

    from .guards import describe_counts
    done = [r.timings.completed for r in records if r.timings and r.timings.completed]
    facts = [("run", folder.path.name),
             ("space", cfg.get("space_name") or cfg.get("space") or cfg.get("baseline")),
             ("budget", " and ".join(x for x in (f"{cfg['budget']} (multiply-adds)" if cfg.get("budget") else "",
                                                 f"{cfg['params']} params" if cfg.get("params") else "") if x)
              or "none"),
             ("controller", cfg.get("controller")),
             ("objective", cfg.get("objective") or "accuracy"),
             ("dataset", cfg.get("dataset")),
             ("trials", f"{cfg['trials']} asked, {cfg.get('epochs')} epochs each"
              if cfg.get("trials") is not None else None),
             ("images", describe_counts(cfg.get("images"))
              or f"at most {cfg.get('subset')} training and {cfg.get('val_subset')} validation images per trial"),
             ("target network", _net(cfg.get("target"))),
             ("proxy network (trained)", _net(cfg.get("proxy"))),
             ("started", cfg.get("created")),
             ("last trial finished", time.strftime(CLOCK, time.localtime(max(done))) if done else "-")]
    return [(k, "-" if v in (None, "") else v) for k, v in facts]


def _picture_files(folder: RunFolder, stem: str) -> list[str | None]:
    """plots/<stem>.svg and .png relative to the run folder, None for one that is not there."""
    return [f"plots/{stem}.{ext}" if (folder.path / "plots" / f"{stem}.{ext}").is_file() else None
            for ext in ("svg", "png")]


def _net(spec) -> str:
    if not isinstance(spec, dict):
        return "-"
    return f"{'x'.join(map(str, spec.get('input') or ()))}, {spec.get('classes')} classes"


def confirmation_info(trial: int, confirmations) -> dict:
    """best.json's part about the confirmation of the winner (empty when it was not confirmed)."""
    c = confirmed(confirmations).get(trial)
    if c is None:
        return {}
    fid = next((x.fidelity for x in confirmations if x.trial == trial), {})
    return {"confirmed": {"val_acc": c.mean, "accs": list(c.accs), "fidelity": fid}}


def summary_lines(folder: RunFolder, records, test_acc, budget_describe: str | None, stop_reason=None,
                  wall=None) -> list[str]:
    """The end-of-run summary a person reads: the winner, its cost, the counts, the files."""
    confirmations = folder.confirmations()
    best = best_of(records, confirmations)
    n = counts(records)
    lines = [""]
    if best is None:
        from ..latency.search import no_winner_line
        lines.append(no_winner_line(folder) or ("no trial finished training" + (f": stopped because {stop_reason}" if stop_reason else "")
                     + f"; see {folder.path / 'trials.jsonl'}"))
    else:
        t = best.target
        c = confirmation_info(best.trial, confirmations).get("confirmed")
        asked = _config(folder).get("confirm_seeds") if _config(folder).get("confirm") else None
        seeds = "" if not c else (f"{len(c['accs'])} seed(s)" if not asked or len(c["accs"]) >= asked else
                                  f"{len(c['accs'])} of {asked} seeds: the time budget cut the others")
        cut = asked and not c and any(x.trial == best.trial for x in confirmations)
        lines.append(f"best architecture: trial #{best.trial} — proxy val acc {best.val_acc:.4f} in the search"
                     + (f", {c['val_acc']:.4f} confirmed ({seeds}, {c['fidelity'].get('val_images')} "
                        f"validation images)" if c else "")
                     + (", not confirmed (its confirmation did not finish)" if cut else "")
                     + (f", test acc {test_acc:.4f}" if test_acc is not None else ""))
        lines.append(f"  target {'x'.join(map(str, t.input or ()))}, {t.classes} classes: "
                     f"{t.macs:,} MACs ({human(t.macs)}FLOPs, one multiply-add = one FLOP), "
                     f"{t.params:,} params" + (f"; budget {budget_describe}" if budget_describe else ""))
        d = json.dumps(best.to_dict()["decisions"])
        if len(d) > 160:
            short = {k: v for k, v in best.decisions.items() if len(str(k)) <= 3}   # N, F, C, L...
            d = (", ".join(f"{k}={v}" for k, v in short.items()) + ", " if short else "") + \
                f"{len(best.decisions)} decisions in best.json"
        lines.append(f"  decisions: {d}")
        from ..latency.search import summary_lines as latency_lines
        lines += latency_lines(folder, best)
    from .audit import audit_info, audit_line
    from .screen import screened_summary
    for extra in (audit_line(audit_info(folder, best.trial if best else None)), screened_summary(records)):
        if extra:
            lines.append(extra)
    cfg = _config(folder)
    oneshot = cfg.get("evaluator") == "supernet"
    lines.append(f"trials: {n[Status.OK]} {'scored on shared weights' if oneshot else 'trained'}, "
                 f"{n[Status.FAILED]} failed, "
                 f"{n[Status.STOPPED] + n[Status.TIMEOUT]} stopped early, {n[Status.REJECTED]} over budget (never trained)"
                 + (f", {n[Status.SCREENED]} screened out (scored, never trained)" if n[Status.SCREENED] else "")
                 + (f" — stopped because {stop_reason}" if stop_reason else "")
                 + (f"; {wall:.0f} s" if wall else ""))
    from .guards import describe_counts, warnings
    if describe_counts(cfg.get("images")):
        lines.append(f"data: {describe_counts(cfg.get('images'))}")
    lines += warnings(cfg, records)
    if best is not None:
        lines.append(f"files: {folder}/report.html, best.nasty (target genotype), best_proxy.nasty, best.json, "
                     f"leaderboard.txt, trials.jsonl, study.db (Optuna), plots/")
        lines.append(f"next: `nasty train {folder} --epochs 10` trains the winner and reports test accuracy"
                     + train_estimate_text(folder))
    else:
        lines.append(f"files: {folder}/trials.jsonl, leaderboard.txt, study.db (Optuna)")
    return lines


def train_estimate_text(folder: RunFolder) -> str:
    """' (about 1:40:00 ...: how it is estimated)' from best.json's train_estimate, or ''."""
    try:
        est = (folder.read_json("best.json", {}) or {}).get("train_estimate")
    except (RunError, AttributeError):
        return ""
    if not isinstance(est, dict) or not isinstance(est.get("seconds"), (int, float)):
        return ""
    sec = float(est["seconds"])
    took = (f"{sec / 3600:.1f} h" if sec >= 5400 else f"{sec / 60:.0f} min" if sec >= 90 else f"{sec:.0f} s")
    return (f" (about {took} here with one thread: the search's trials measured "
            f"{est['ns_per_mac_image']:.2g} ns per MAC and image, and the final network has {human(est['macs'])} MACs "
            f"per image, {est['epochs']} epochs over {est['images']:,} images; more threads or a GPU take less, "
            f"a larger network often less per MAC)")


def sync_study(folder: RunFolder, cfg: dict, records) -> str:
    """Bring runs/<name>/study.db up to date with trials.jsonl and best.json (the run's Optuna view,
    the winner marked); a note when it cannot be (the view is optional, the records are the truth)."""
    import dataclasses

    from .study import mark_winner
    from .settings import Settings
    known = {f.name for f in dataclasses.fields(Settings)}
    s = Settings(**{k: v for k, v in cfg.items() if k in known})
    try:
        info = folder.read_json("best.json", {}) or {}
    except RunError:
        info = {}
    note = mark_winner(folder, s, info if isinstance(info, dict) else {})
    return f"\n{note}" if note else ""


def report_json(run_dir, top: int | None = None) -> dict:
    """The run as data: its settings, counts, winner (best.json) and leaderboard rows."""
    from .record import jsonable
    folder = RunFolder(run_dir)
    cfg = folder.config()
    checked = folder.verify()
    records = checked.records
    rows = leaderboard_rows(records, checked.confirmations)       # ranked as leaderboard.txt: confirmed first
    return jsonable({"run": str(folder), "config": cfg, "counts": counts(records),
                     "best": folder.read_json("best.json"), "leaderboard": rows[:top] if top else rows})


def report(run_dir, console=None, top: int = 20) -> str:
    """`nasty report`: the leaderboard of a run; rewrites its plots and result files. A damaged
    trials.jsonl, or records that disagree with the files derived from them (RunFolder.verify), is
    refused (RunError) before anything is written."""
    folder = RunFolder(run_dir)
    cfg = folder.config()
    records = folder.verify().records
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise RunError(f"--top must be a whole number of at least 1, got {top!r}")
    note = ""
    if not folder.writable():
        note = "\n(the run folder is read-only: its leaderboard and plots were not rewritten)"
    else:
        try:
            with folder.lock("report"):
                write_results(folder, records, cfg.get("budget_macs"), plots=True)
                note += sync_study(folder, cfg, records)
                note += "".join(f"\n{n}" for n in write_pictures(folder, records, cfg).notes)
        except RunError as e:
            if "in use" not in str(e):
                raise
            note = f"\n(not rewriting the run's files: {e})"
    from ..latency.search import measured
    text = leaderboard_text(records, top=top, latency=measured(folder), confirmations=folder.confirmations())
    head = (f"run {folder.path}: space {cfg.get('space_name', cfg.get('space'))}, budget "
            f"{cfg.get('budget') or '-'}{' / ' + str(cfg['params']) + ' params' if cfg.get('params') else ''}, "
            f"controller {cfg.get('controller')}, dataset {cfg.get('dataset')}")
    b = folder.read_json("best.json")
    tail = ""
    if isinstance(b, dict) and b.get("trial") is not None:
        tail = (f"\nbest: trial #{b['trial']} val acc {b['val_acc']:.4f}"
                + (f", test acc {b['test_acc']:.4f}" if b.get("test_acc") is not None else "")
                + f", target {human(b['target']['macs'])}MACs {human(b['target']['params'])} params"
                + f" -> {folder.path / 'best.nasty'}")
        tail += "".join(f"\n{w}" for w in b.get("warnings") or [] if isinstance(w, str))
    page = folder.path / "report.html"
    out = (head + "\n\n" + text + tail + (f"\npage: {page}" if page.is_file() else "")
           + f"\nplots and the winner's cells (PNG and SVG): {folder.path / 'plots'}/" + note)
    if console is not None:
        console.print(out, soft_wrap=True, highlight=False, markup=False)
    return out
