"""What a run's records say: ranking, the Pareto front, the leaderboard and the plots."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .report import human
from .runfolder import RunFolder, _umask


def finished(records):
    """Records of trials that ran to a result (trained, or failed)."""
    return [r for r in records if r.get("status") in ("ok", "failed", "stopped")]


def ranked(records) -> list[dict]:
    """Trials with a validation accuracy, best first (complete ones before stopped ones)."""
    rs = [r for r in records if r.get("status") in ("ok", "stopped", "timeout") and r.get("val_acc") is not None]
    return sorted(rs, key=lambda r: (r["status"] != "ok", -r["val_acc"], r["target"]["macs"], r["trial"]))


def best_of(records) -> dict | None:
    r = ranked(records)
    return r[0] if r else None


def pareto(records) -> list[dict]:
    """Trials no other beats on both validation accuracy and target MACs, by MACs."""
    pts = sorted(ranked(records), key=lambda r: (r["target"]["macs"], -r["val_acc"]))
    front, best_acc = [], -1.0
    for r in pts:
        if r["val_acc"] > best_acc:
            front.append(r)
            best_acc = r["val_acc"]
    return front


def leaderboard_text(records, top: int | None = 20) -> str:
    rows = [("rank", "trial", "val acc", "target MACs", "params", "proxy MACs", "epochs", "status", "train s")]
    rk = ranked(records)
    for i, r in enumerate(rk[:top] if top else rk, 1):
        rows.append((str(i), f"#{r['trial']}", f"{r['val_acc']:.4f}", human(r["target"]["macs"]),
                     human(r["target"]["params"]), human(r.get("proxy", {}).get("macs", 0)),
                     str(len(r.get("epochs", []))), r["status"],
                     f"{r.get('timings', {}).get('train_s', 0):.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(f"{v:>{w}}" if j not in (7,) else f"{v:<{w}}" for j, (v, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines.append("")
    lines.append("trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    fails = [r for r in records if r["status"] == "failed"]
    for r in fails[:10]:
        lines.append(f"  failed #{r['trial']}: {r.get('reason')}")
    return "\n".join(lines)


def write_plots(folder: RunFolder, records, budget_macs=None) -> list[Path]:
    """plots/accuracy_vs_macs.png (with the Pareto front) and plots/best_so_far.png."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir = folder.path / "plots"
    out_dir.mkdir(exist_ok=True)
    rk = ranked(records)
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ok = [r for r in rk if r["status"] == "ok"]
    other = [r for r in rk if r["status"] != "ok"]
    if ok:
        ax.scatter([r["target"]["macs"] / 1e6 for r in ok], [r["val_acc"] for r in ok],
                   s=22, color="tab:blue", label="trained trials")
    if other:
        ax.scatter([r["target"]["macs"] / 1e6 for r in other], [r["val_acc"] for r in other],
                   s=18, color="tab:gray", marker="x", label="stopped early")
    front = pareto(records)
    if front:
        ax.step([r["target"]["macs"] / 1e6 for r in front], [r["val_acc"] for r in front],
                where="post", color="tab:red", lw=1.5, label="Pareto front")
        b = rk[0]
        ax.scatter([b["target"]["macs"] / 1e6], [b["val_acc"]], s=140, marker="*",
                   color="gold", edgecolor="black", zorder=5, label=f"best (#{b['trial']})")
    if budget_macs:
        ax.axvline(budget_macs / 1e6, color="black", ls="--", lw=1, label="budget")
    ax.set_xlabel("target multiply-adds (M) — one MAC = one FLOP")
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("validation accuracy vs target cost")
    ax.grid(alpha=0.3)
    if ok or other:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    p = out_dir / "accuracy_vs_macs.png"
    _save_fig(fig, p)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    trained = sorted((r for r in records if r["status"] in ("ok", "stopped", "timeout", "failed")),
                     key=lambda r: r["trial"])
    xs, accs, best, run = [], [], [], -1.0
    for r in trained:
        a = r.get("val_acc")
        xs.append(r["trial"])
        accs.append(a if a is not None else float("nan"))
        if a is not None and r["status"] == "ok":
            run = max(run, a)
        best.append(run if run >= 0 else float("nan"))
    if xs:
        ax.scatter(xs, accs, s=14, color="tab:blue", alpha=0.6, label="trial")
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
        failed = [r["trial"] for r in trained if r["status"] == "failed"]
        if failed:
            lo = min((a for a in accs if a == a), default=0.0)
            ax.scatter(failed, [lo] * len(failed), marker="x", color="black", s=20, label="failed")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("trial")
    ax.set_ylabel("proxy validation accuracy")
    ax.set_title("best so far")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out_dir / "best_so_far.png"
    _save_fig(fig, p)
    plt.close(fig)
    paths.append(p)
    return paths


def _save_fig(fig, path: Path):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        fig.savefig(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(folder: RunFolder, records, budget_macs=None, plots=True):
    """Leaderboard, best genotype and (optionally) plots from the records."""
    folder.write_json("leaderboard.json", [
        {k: r.get(k) for k in ("trial", "val_acc", "best_val_acc", "status", "target", "proxy", "decisions")}
        for r in ranked(records)])
    folder.write_text("leaderboard.txt", leaderboard_text(records, top=None) + "\n")
    b = best_of(records)
    if b is not None:
        head = (f"# best of run {folder.path.name}: trial #{b['trial']}, proxy val acc {b['val_acc']:.4f}, "
                f"target {b['target']['macs']:,} MACs (one multiply-add = one FLOP), "
                f"{b['target']['params']:,} params\n")
        folder.write_text("best.nasty", head + b["genotype"])
        folder.write_text("best_proxy.nasty", f"# proxy network of trial #{b['trial']} (trained in the search)\n"
                          + b["proxy_genotype"])
        prev = folder.read_json("best.json", {}) or {}
        info = {k: b.get(k) for k in ("trial", "val_acc", "best_val_acc", "status", "target", "proxy",
                                      "decisions", "epochs")}
        if prev.get("trial") == b["trial"] and "test_acc" in prev:
            info["test_acc"] = prev["test_acc"]
        folder.write_json("best.json", info)
    if plots:
        write_plots(folder, records, budget_macs)
