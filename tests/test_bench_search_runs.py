"""benchmarks/bench_search_runs.py (issue 21, section 2): the paired statistics, the table it
writes from runs.jsonl (partial, runs without a winner), resuming, and the commands it runs."""
import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_search_runs as bsr  # noqa: E402

from nasty.nasbench.simulate import open_table  # noqa: E402


def _args(**kw):
    return bsr.argparse.Namespace(**{"seeds": 3, "search_seconds": 60.0, "confirm": 1, "confirm_seeds": 1, "audit": 0,
                                     "budget": "3M", "extra": "", "keep_runs": False, **kw})


def _rec(method, seed, regret, test=0.8, settings=None):
    return {"method": method, "seed": seed, "settings": settings or bsr.settings(_args()), "regret_pp": regret,
            "winner_live": "|conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "table_test": test if regret is not None else None, "counts": {"ok": 5}, "wall_s": 100.0,
            "load_start": [1.0, 1.0, 1.0], "date": f"2026-12-07T22:0{seed}:00+00:00"}


def test_paired_bootstrap_is_the_mean_difference_with_an_interval_around_it():
    xs, ys = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 2.5, 4.0, 4.5, 6.5]
    d, lo, hi = bsr.paired_bootstrap(xs, ys)
    assert d == pytest.approx(statistics.fmean(x - y for x, y in zip(xs, ys)))    # -0.9
    assert -1.5 <= lo <= d <= hi <= -0.5                  # the differences lie in [-1.5, -0.5]
    same = bsr.paired_bootstrap([1.0, 2.0], [1.0, 2.0])
    assert same == (0.0, 0.0, 0.0)
    r, rlo, rhi = bsr.ratio_bootstrap([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert (r, rlo, rhi) == (0.5, 0.5, 0.5)


def test_summary_pairs_by_seed_and_leaves_out_runs_without_a_winner():
    table = open_table(None)
    recs = [_rec("random", 0, 2.0), _rec("random", 1, 4.0), _rec("random", 2, None),
            _rec("screened", 0, 0.5), _rec("screened", 1, 1.5), _rec("screened", 2, 0.1),
            _rec("evolution", 0, 3.0)]
    res = bsr.summarize(recs, _args(), table)
    assert res["methods"]["random"]["n"] == 2 and res["methods"]["random"]["no_winner_seeds"] == [2]
    p = res["pairs"]["screened - random"]
    assert p["seeds"] == 2 and p["regret_diff"] == pytest.approx(-2.0)     # (0.5-2 + 1.5-4) / 2
    assert p["regret_ratio"] == pytest.approx(1.0 / 3.0)
    assert res["pairs"]["evolution - random"]["seeds"] == 1
    text = bsr.markdown(res, recs, target=20)
    assert "PARTIAL" in text and "random 3, evolution 1, screened 3 of 20 seeds" in text and "random seeds 2" in text
    assert "| screened | 3 | 0.70 ± 0.72 |" in text


def test_a_rerun_skips_finished_runs_and_redoes_a_cut_line(tmp_path, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    want = bsr.settings(_args(seeds=2, search_seconds=5.0))
    lines = [json.dumps(_rec(m, s, 1.0, settings=want)) for s in range(2) for m in ("random", "evolution")]
    (out / "runs.jsonl").write_text("\n".join(lines) + "\n" + json.dumps(_rec("screened", 0, 1.0, settings=want))[:40])
    ran = []

    def fake(method, seed, args, runs_dir, table):
        ran.append((method, seed))
        return _rec(method, seed, 0.5, settings=bsr.settings(args))
    monkeypatch.setattr(bsr, "one_run", fake)
    with open(out / "runs.jsonl", "a") as f:                # the cut line ends; what follows is whole
        f.write("\n")
    assert bsr.main(["--seeds", "2", "--search-seconds", "5", "--confirm", "1", "--confirm-seeds", "1",
                     "--out", str(out), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert ran == [("screened", 0), ("screened", 1)]
    res = json.loads((out / "results.json").read_text())
    assert res["methods"]["screened"]["n"] == 2 and res["pairs"]["screened - random"]["seeds"] == 2


def test_each_method_is_a_real_search_command_differing_only_in_its_flags(tmp_path):
    args = _args(audit=2, extra="--epochs 1")
    cmds = {m: bsr.command(m, 7, args, tmp_path) for m in bsr.METHODS}
    for m, c in cmds.items():
        assert c[1:4] == ["-m", "nasty.cli", "search"] and "--seed" in c and c[c.index("--seed") + 1] == "7"
        assert c[-2:] == ["--epochs", "1"] and c[c.index("--time-budget") + 1] == "60.0"
    assert cmds["random"][cmds["random"].index("--screen") + 1] == "0"
    assert "--screen" not in cmds["screened"]                       # the default screen
    assert cmds["screened"][cmds["screened"].index("--audit") + 1] == "2"
    assert cmds["evolution"][cmds["evolution"].index("--audit") + 1] == "0"
