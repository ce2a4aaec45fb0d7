"""What a search with a latency budget (`--budget 15ms`) adds to the search, kept here so the
search's own modules only call in:

- `attach`: the predictor behind the budget (this machine's lookup table; the space calibrated
  first when the table lacks it), so that every candidate is priced before training;
- `finalists`: the top trials' TARGET networks measured for real (batch 1, one CPU thread) before
  the confirmation stage; a finalist over the budget is refused (a `rejected` line in
  confirm.jsonl, which `results.ranked` leaves out), so the winner satisfies the *measured*
  budget. Every measurement is kept in runs/<name>/latency.json, and this machine's table is
  copied to runs/<name>/latency_table.json for the record;
- the leaderboard's latency columns, the summary's latency line and the accuracy-vs-latency figure.
"""
from __future__ import annotations

import shutil
import time

MEASURED = "latency.json"
TABLE_COPY = "latency_table.json"
BATCH, THREADS, DEVICE = 1, 1, "cpu"        # what a latency budget means: see budget.LATENCY_CONDITIONS
MAX_MEASURED = 10                             # finalists measured at most beyond the K wanted (3K in all)
PLOT = "accuracy_vs_latency"                 # plots/<PLOT>.png and .svg (its caption: results.PLOTS)


# ------------------------------------------------------------------ before the search
def attach(budget, space, say=print, networks: int = 8, clock: str = "wall", evaluator: str | None = None):
    """The budget with this machine's predictor attached (unchanged without a latency limit). The
    space's target is calibrated first when the table has not seen it (a few minutes, once per
    machine; `nasty latency calibrate --space NAME` does it ahead)."""
    if budget.latency_ms is None:
        return budget
    if evaluator == "supernet":
        from ..errors import RunError
        raise RunError("a latency budget works with the standalone evaluator only (the one-shot trial prices its "
                       "children by MACs and params); drop --evaluator supernet (and --controller darts), or budget "
                       "in MACs: --budget 600MFLOPs")
    from .calibrate import Bar, calibrate_space, space_key
    from .predict import Predictor
    from .table import LookupTable, describe_fingerprint
    table = LookupTable.for_machine(DEVICE, THREADS, clock)
    if space_key(space) not in table.spaces:
        bar = Bar()                              # minutes of work: shown on stderr, terminal or log
        bar.say(f"nasty search: calibrating per-op latency of space {space.name!r} at its target on "
                f"{describe_fingerprint(table.fingerprint)} (once per machine; resumable; `nasty latency calibrate "
                f"--space {space.name}` does it ahead) into {table.path}")
        calibrate_space(table, space, BATCH, DEVICE, THREADS, networks=networks, bar=bar)
    p = Predictor(table, batch=BATCH, device=DEVICE, threads=THREADS, space=space.name)
    say(f"nasty search: latency predicted per op ({len(table):,} configurations): {p.correction.describe()}")
    return budget.with_predictor(p)


def config_facts(budget) -> dict:
    """What config.json records of a latency budget."""
    if budget.latency_ms is None:
        return {}
    from .table import describe_fingerprint
    p = budget.predictor
    facts = {"batch": BATCH, "threads": THREADS, "device": DEVICE,
             "clock": p.table.clock if p is not None else "wall"}
    if p is not None:
        facts.update(machine=describe_fingerprint(p.table.fingerprint), table=str(p.table.path),
                     correction=p.correction.as_dict())
    return {"budget_latency_ms": budget.latency_ms, "latency": facts}


def keep_table(folder, budget):
    """Copy the table the search used into the run folder (for the record)."""
    p = getattr(budget, "predictor", None)
    if p is None:
        return
    p.save()
    if p.table.path and p.table.path.exists():
        shutil.copyfile(p.table.path, folder.path / TABLE_COPY)


# ------------------------------------------------------------------ the finalists
def measured(folder) -> dict[int, dict]:
    """{trial: measurement} of runs/<name>/latency.json ({} when there is none or it is damaged)."""
    try:
        doc = folder.read_json(MEASURED, {}) or {}
    except Exception:  # noqa: BLE001 - a damaged file: the columns go without it
        return {}
    trials = doc.get("trials") if isinstance(doc, dict) else None
    if not isinstance(trials, dict):
        return {}
    out = {}
    for k, v in trials.items():
        if isinstance(v, dict) and isinstance(v.get("measured_ms"), (int, float)) and str(k).isdigit():
            out[int(k)] = v
    return out


def measure_trial(record, budget) -> dict:
    """The record's TARGET network measured here (batch 1, one thread)."""
    from .. import parse
    from .measure import measure_genotype, relative_error
    g = parse(record.genotype)
    clock = budget.predictor.table.clock if budget.predictor is not None else "wall"
    m = measure_genotype(g, batch=BATCH, device=DEVICE, threads=THREADS, clock=clock)
    pred = record.target.latency_ms if record.target else None
    out = {"measured_ms": m.median_ms, "clock": clock, "q1_ms": m.q1_ms, "q3_ms": m.q3_ms, "iqr_ms": m.iqr_ms,
           "repeatability": m.repeatability, "runs": m.runs, "load": m.load, "predicted_ms": pred,
           "prediction_error": relative_error(pred, m.median_ms) if pred else None,
           "within_budget": m.median_ms <= budget.latency_ms, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    p = budget.predictor
    if p is not None:                           # the measurement sharpens the predictor's correction
        from ..cost import cost
        c = cost(g)
        raw, layers = p.raw(c)
        p.table.add_network({"name": f"run:{record.trial}", "space": p.space, "batch": BATCH, "layers": layers,
                             "macs": c.macs, "sum_ms": raw, "measured_ms": m.median_ms, "iqr_ms": m.iqr_ms,
                             "repeatability": m.repeatability, "load": m.load, "genotype": record.genotype})
    return out


def finalists(folder, ranked_records, budget, k: int, progress=None) -> list:
    """The top `k` trained trials whose target, measured here, is within the latency budget. Trials
    are measured best first (at most max(3k, MAX_MEASURED)); one over the budget gets a `rejected`
    line in confirm.jsonl and is out of the ranking. Measurements are kept in latency.json (a
    resumed run does not measure a trial twice)."""
    from ..search.folder import CONFIRMS
    from ..search.record import ConfirmRecord, Status
    doc = folder.read_json(MEASURED, {}) or {}
    trials = doc.get("trials") if isinstance(doc, dict) and isinstance(doc.get("trials"), dict) else {}
    refused = {c.trial for c in folder.confirmations() if c.status is Status.REJECTED}
    chosen, looked = [], 0
    for r in ranked_records:
        if r.status is not Status.OK or not r.genotype:
            continue
        if len(chosen) >= max(1, k) or looked >= max(3 * k, MAX_MEASURED):
            break
        looked += 1
        m = trials.get(str(r.trial))
        if not isinstance(m, dict) or "measured_ms" not in m:
            if progress:
                progress.note(f"measuring the target of #{r.trial} (batch {BATCH}, {THREADS} thread, "
                              f"predicted {r.target.latency_ms:.3g} ms)" if r.target.latency_ms else
                              f"measuring the target of #{r.trial}")
            m = trials[str(r.trial)] = measure_trial(r, budget)
            folder.write_json(MEASURED, {"budget_ms": budget.latency_ms, "batch": BATCH, "threads": THREADS,
                                         "device": DEVICE, "machine": _machine(budget), "trials": trials})
        if m["measured_ms"] <= budget.latency_ms:
            chosen.append(r)
        elif r.trial not in refused:
            folder.append(ConfirmRecord(r.trial, 0, Status.REJECTED, None, (),
                                        {"measured_latency_ms": m["measured_ms"]},
                                        f"measured {m['measured_ms']:.3g} ms > latency budget {budget.latency_ms:g} ms "
                                        f"(predicted {m.get('predicted_ms') or 0:.3g} ms)"), CONFIRMS)
            refused.add(r.trial)
    keep_table(folder, budget)
    if progress:
        within = ", ".join(f"#{r.trial}" for r in chosen) or "none"
        progress.note(f"finalists measured for real: {looked}; within {budget.latency_ms:g} ms: {within}")
    return chosen


def _machine(budget) -> str | None:
    p = budget.predictor
    if p is None:
        return None
    from .table import describe_fingerprint
    return describe_fingerprint(p.table.fingerprint)


# ------------------------------------------------------------------ showing it
def columns(records, measured_ms: dict | None):
    """(headers, row function) of the latency columns of a leaderboard; () when the run has no latency."""
    if not any(r.target is not None and r.target.latency_ms is not None for r in records) and not measured_ms:
        return (), lambda r: ()
    measured_ms = measured_ms or {}

    def row(r):
        pred = r.target.latency_ms if r.target is not None else None
        m = measured_ms.get(r.trial)
        return (f"{pred:.3g}" if pred is not None else "",
                f"{m['measured_ms']:.3g}" if m else "")
    return ("pred. ms", "measured ms"), row


def summary_lines(folder, best) -> list[str]:
    """The summary's line about the winner's measured latency ([] when the run has no latency budget)."""
    try:
        cfg = folder.config()
    except Exception:  # noqa: BLE001
        return []
    budget = cfg.get("budget_latency_ms")
    if not budget or best is None:
        return []
    m = measured(folder).get(best.trial)
    if m is None:
        pred = best.target.latency_ms if best.target else None
        return [f"  latency: predicted {pred:.3g} ms; not measured (no finalist stage ran); budget {budget:g} ms"
                if pred is not None else f"  latency: not measured; budget {budget:g} ms"]
    ok = "within" if m["measured_ms"] <= budget else "OVER"
    err = m.get("prediction_error")
    clock = "" if m.get("clock", "wall") == "wall" else f", {m['clock']} clock"
    return [f"  latency: measured {m['measured_ms']:.3g} ms (IQR {m['q1_ms']:.3g}-{m['q3_ms']:.3g}, batch {BATCH}, "
            f"{THREADS} CPU thread{clock}, load {m.get('load') or 0:.1f}), {ok} the budget of {budget:g} ms; predicted "
            f"{m.get('predicted_ms') or 0:.3g} ms" + (f" ({100 * err:+.1f} %)" if err is not None else "")
            + f" -> {folder.path / MEASURED}"]


def no_winner_line(folder) -> str | None:
    """What the summary says when every trained finalist was measured over the latency budget."""
    m = measured(folder)
    if not m or any(v.get("within_budget") for v in m.values()):
        return None
    fastest = min(m.items(), key=lambda kv: kv[1]["measured_ms"])
    try:
        budget = folder.config().get("budget_latency_ms")
    except Exception:  # noqa: BLE001
        budget = None
    return (f"no winner: all {len(m)} finalists measured here are over the latency budget"
            + (f" of {budget:g} ms" if budget else "") + f"; the fastest, #{fastest[0]}, measured "
            f"{fastest[1]['measured_ms']:.3g} ms (predicted {fastest[1].get('predicted_ms') or 0:.3g} ms, load "
            f"{fastest[1].get('load') or 0:.1f}). A loaded machine slows the wall clock: try again when it is "
            f"quiet, or with --latency-clock cpu; see {folder.path / MEASURED}")


def best_info(folder, trial: int) -> dict:
    """best.json's latency part for the winner ({} when it was not measured)."""
    m = measured(folder).get(trial)
    return {"latency": m} if m else {}


def latency_figure(folder, records, cfg: dict):
    """The figure of plots/accuracy_vs_latency (None for a run without latency): accuracy against the
    predicted target latency of every trained trial, the accuracy-latency front, the budget, and the
    finalists as measured."""
    budget = cfg.get("budget_latency_ms")
    from ..search.record import Status
    from ..search.results import pareto, ranked
    rk = [r for r in ranked(records, folder.confirmations()) if r.target and r.target.latency_ms is not None]
    rk_all = [r for r in ranked(records) if r.target and r.target.latency_ms is not None]
    rejected = [r for r in records if r.status is Status.REJECTED and r.target and r.target.latency_ms is not None]
    if not budget and not rk_all:
        return None
    from matplotlib.figure import Figure
    meas = measured(folder)
    fig = Figure(figsize=(7.5, 4.6), dpi=110)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.12)
    if rk_all:
        ax.scatter([r.target.latency_ms for r in rk_all], [r.val_acc for r in rk_all], s=22, color="tab:blue",
                   label="trained trials (predicted latency)")
        front = pareto(rk_all, cost=lambda r: r.target.latency_ms)
        ax.step([r.target.latency_ms for r in front], [r.val_acc for r in front], where="post", color="tab:red",
                lw=1.5, label="accuracy-latency front")
    fin = [r for r in rk_all if r.trial in meas]
    if fin:
        ax.scatter([meas[r.trial]["measured_ms"] for r in fin], [r.val_acc for r in fin], s=60, marker="o",
                   facecolor="none", edgecolor="black", label="finalists, measured")
        for r in fin:
            ax.annotate("", (meas[r.trial]["measured_ms"], r.val_acc), (r.target.latency_ms, r.val_acc),
                        arrowprops=dict(arrowstyle="->", color="#777777", lw=0.8))
    if rk:
        b = rk[0]
        x = meas[b.trial]["measured_ms"] if b.trial in meas else b.target.latency_ms
        ax.scatter([x], [b.val_acc], s=140, marker="*", color="gold", edgecolor="black", zorder=5,
                   label=f"winner (#{b.trial})")
    if rejected:
        lo = min([r.val_acc for r in rk_all] or [0.0])
        ax.scatter([r.target.latency_ms for r in rejected], [lo] * len(rejected), s=40, marker="|",
                   color="tab:orange", label="over budget (never trained)")
    if budget:
        ax.axvline(budget, color="black", ls="--", lw=1, label=f"budget {budget:g} ms")
    clock = (cfg.get("latency") or {}).get("clock", "wall")
    ax.set_xlabel(f"target latency, ms (batch {BATCH}, {THREADS} CPU thread, this machine"
                  + (", cpu clock)" if clock == "cpu" else ")"))
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("validation accuracy vs latency", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig
