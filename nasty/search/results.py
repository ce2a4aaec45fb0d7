"""What a run's records say: the ranking, the Pareto front, the leaderboard, the plots, the
end-of-run summary, and `report` (what `nasty report runs/NAME` prints and rewrites).
Everything here is computed from trials.jsonl; nothing here trains or runs Ray."""
from __future__ import annotations

import json
from pathlib import Path

from ..display import human, text_table
from ..errors import RunError
from .folder import RunFolder, atomic_write
from .record import Status, TrialRecord

KEEP_WEIGHTS = 3                   # proxy weights kept for the best trials (the winner's test accuracy)


def ranked(records, confirmations=()) -> list[TrialRecord]:
    """Trials with a validation accuracy, best first: those the confirmation stage trained again
    first, by their mean confirmed accuracy; then the others by the search's score (complete ones
    before stopped ones)."""
    from .confirm import confirmed
    conf = confirmed(confirmations)
    rs = [r for r in records if r.status.scored and r.val_acc is not None]
    return sorted(rs, key=lambda r: (r.trial not in conf, -conf[r.trial].mean if r.trial in conf else 0.0,
                                     r.status is not Status.OK, -r.val_acc, r.target.macs, r.trial))


def best_of(records, confirmations=()) -> TrialRecord | None:
    """The winner: the best confirmed trial when there are confirmations, else the search's best."""
    r = ranked(records, confirmations)
    return r[0] if r else None


def counts(records) -> dict[str, int]:
    """{status: number of records}, every status present (rejected samples included)."""
    out = {s.value: 0 for s in Status}
    for r in records:
        out[r.status.value] += 1
    return out


def pareto(records) -> list[TrialRecord]:
    """Trials no other beats on both validation accuracy and target MACs, by MACs."""
    pts = sorted(ranked(records), key=lambda r: (r.target.macs, -r.val_acc))
    front, best_acc = [], -1.0
    for r in pts:
        if r.val_acc > best_acc:
            front.append(r)
            best_acc = r.val_acc
    return front


def leaderboard_text(records, top: int | None = 20, confirmations=()) -> str:
    """The ranked trials as a table, then the counts by status and the first failures."""
    from .confirm import confirmed
    conf = confirmed(confirmations)
    rk = ranked(records, confirmations)

    def shown(r):
        c = conf.get(r.trial)
        return "" if c is None else f"{c.mean:.4f}" + (f" ±{c.spread:.4f}" if len(c.accs) > 1 else "")

    rows = [(i, f"#{r.trial}", f"{r.val_acc:.4f}", shown(r), human(r.target.macs), human(r.target.params),
             human(r.proxy.macs if r.proxy else 0), len(r.epochs), r.status.value, f"{r.train_s or 0:.1f}")
            for i, r in enumerate(rk[:top] if top else rk, 1)]
    lines = [text_table(("rank", "trial", "val acc", "confirmed", "target MACs", "params", "proxy MACs", "epochs",
                         "status", "train s"), rows, align=["right"] * 8 + ["left", "right"]), ""]
    n = counts(records)
    lines.append("trials: " + ", ".join(f"{v} {k}" for k, v in sorted(n.items()) if v))
    for r in [r for r in records if r.status is Status.FAILED][:10]:
        lines.append(f"  failed #{r.trial}: {r.reason}")
    return "\n".join(lines)


def leaderboard_rows(records, confirmations=()) -> list[dict]:
    from .confirm import confirmed
    conf = confirmed(confirmations)
    return [{"trial": r.trial, "val_acc": r.val_acc, "best_val_acc": r.best_val_acc, "status": r.status.value,
             **({"confirmed_val_acc": conf[r.trial].mean, "confirmed_accs": list(conf[r.trial].accs)}
                if r.trial in conf else {}),
             **{k: v for k, v in r.to_dict().items() if k in ("target", "proxy", "decisions")}}
            for r in ranked(records, confirmations)]


# ------------------------------------------------------------------ plots
def write_plots(folder: RunFolder, records, budget_macs=None) -> list[Path]:
    """plots/accuracy_vs_macs.png (with the Pareto front) and plots/best_so_far.png."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir = folder.path / "plots"
    rk = ranked(records)
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ok = [r for r in rk if r.status is Status.OK]
    other = [r for r in rk if r.status is not Status.OK]
    if ok:
        ax.scatter([r.target.macs / 1e6 for r in ok], [r.val_acc for r in ok],
                   s=22, color="tab:blue", label="trained trials")
    if other:
        ax.scatter([r.target.macs / 1e6 for r in other], [r.val_acc for r in other],
                   s=18, color="tab:gray", marker="x", label="stopped early")
    front = pareto(records)
    if front:
        ax.step([r.target.macs / 1e6 for r in front], [r.val_acc for r in front],
                where="post", color="tab:red", lw=1.5, label="Pareto front")
        b = rk[0]
        ax.scatter([b.target.macs / 1e6], [b.val_acc], s=140, marker="*",
                   color="gold", edgecolor="black", zorder=5, label=f"best (#{b.trial})")
    if budget_macs:
        ax.axvline(budget_macs / 1e6, color="black", ls="--", lw=1, label="budget")
    ax.set_xlabel("target multiply-adds (M) — one MAC = one FLOP")
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("validation accuracy vs target cost")
    ax.grid(alpha=0.3)
    if ok or other:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(_save_fig(fig, out_dir / "accuracy_vs_macs.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
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
        failed = [r.trial for r in trained if r.status is Status.FAILED]
        if failed:
            lo = min((a for a in accs if a == a), default=0.0)
            ax.scatter(failed, [lo] * len(failed), marker="x", color="black", s=20, label="failed")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("trial")
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("best so far")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save_fig(fig, out_dir / "best_so_far.png"))
    plt.close(fig)
    return paths


def _save_fig(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:]))
    return path


# ------------------------------------------------------------------ the run's result files
def write_results(folder: RunFolder, records, budget_macs=None, plots=True):
    """Leaderboard, best genotype and (optionally) plots from the records."""
    records = [r for r in records if r.status.counted]
    confirmations = folder.confirmations()
    folder.write_json("leaderboard.json", leaderboard_rows(records, confirmations))
    folder.write_text("leaderboard.txt", leaderboard_text(records, None, confirmations) + "\n")
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
        if isinstance(prev, dict) and prev.get("trial") == b.trial and "test_acc" in prev \
                and prev.get("confirmed") == info.get("confirmed"):
            info["test_acc"] = prev["test_acc"]
        folder.write_json("best.json", info)
    if plots:
        write_plots(folder, records, budget_macs)


def confirmation_info(trial: int, confirmations) -> dict:
    """best.json's part about the confirmation of the winner (empty when it was not confirmed)."""
    from .confirm import confirmed
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
        lines.append(f"no trial finished training; see {folder.path / 'trials.jsonl'}")
    else:
        t = best.target
        c = confirmation_info(best.trial, confirmations).get("confirmed")
        lines.append(f"best architecture: trial #{best.trial} — proxy val acc {best.val_acc:.4f} in the search"
                     + (f", {c['val_acc']:.4f} confirmed ({len(c['accs'])} seed(s), {c['fidelity'].get('val_images')} "
                        f"validation images)" if c else "")
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
    lines.append(f"trials: {n[Status.OK]} trained, {n[Status.FAILED]} failed, "
                 f"{n[Status.STOPPED] + n[Status.TIMEOUT]} stopped early, {n[Status.REJECTED]} over budget (never trained)"
                 + (f" — stopped because {stop_reason}" if stop_reason else "")
                 + (f"; {wall:.0f} s" if wall else ""))
    if best is not None:
        lines.append(f"files: {folder}/best.nasty (target genotype), best_proxy.nasty, best.json, leaderboard.txt, "
                     f"trials.jsonl, study.db (Optuna), plots/")
        lines.append(f"next: `nasty train {folder} --epochs 10` trains the winner and reports test accuracy")
    else:
        lines.append(f"files: {folder}/trials.jsonl, leaderboard.txt, study.db (Optuna)")
    return lines


def sync_study(folder: RunFolder, cfg: dict, records) -> str:
    """Bring runs/<name>/study.db up to date with trials.jsonl (the run's Optuna view); a note
    when it cannot be (the view is optional, the records are the truth)."""
    from ..space import load_space
    from .budget import Budget
    from .study import STUDY_FILE, StudyLog
    try:
        space = load_space(cfg["space"]) if cfg.get("space") else None
    except Exception:  # noqa: BLE001 - a moved space file: the trials go in without their params
        space = None
    try:
        log = StudyLog(folder.path / STUDY_FILE, folder.path.name, cfg.get("objective") == "pareto",
                       Budget(cfg.get("budget_macs"), cfg.get("budget_params")))
        log.sync(records, space)
    except Exception as e:  # noqa: BLE001
        return f"\n(the Optuna study {folder.path / STUDY_FILE} could not be updated: {type(e).__name__}: {e})"
    return ""


def report_json(run_dir, top: int | None = None) -> dict:
    """The run as data: its settings, counts, winner (best.json) and leaderboard rows."""
    from .record import jsonable
    folder = RunFolder(run_dir)
    cfg = folder.config()
    records = folder.records()
    rows = leaderboard_rows(records)
    return jsonable({"run": str(folder), "config": cfg, "counts": counts(records),
                     "best": folder.read_json("best.json"), "leaderboard": rows[:top] if top else rows})


def report(run_dir, console=None, top: int = 20) -> str:
    """`nasty report`: the leaderboard of a run; rewrites its plots and result files. A damaged
    trials.jsonl is refused (RunError) before anything is written."""
    folder = RunFolder(run_dir)
    cfg = folder.config()
    records = folder.records()
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
        except RunError as e:
            if "in use" not in str(e):
                raise
            note = f"\n(not rewriting the run's files: {e})"
    text = leaderboard_text(records, top=top)
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
    out = (head + "\n\n" + text + tail + f"\nplots: {folder.path / 'plots'}/accuracy_vs_macs.png, best_so_far.png"
           + note)
    if console is not None:
        console.print(out, soft_wrap=True, highlight=False, markup=False)
    return out
