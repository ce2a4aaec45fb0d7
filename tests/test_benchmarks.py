"""The benchmark scripts run, and their built-in checks hold: bench_cost asserts that the
analytic counts equal FlopCounterMode's on the CPU and on the meta device for every genotype
it times (a zoo net, and random members of a search space). Timings are printed, never
asserted: speed is measured in benchmarks/, not in tests."""
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_cost  # noqa: E402
import run_all as bench_run  # noqa: E402


def test_bench_cost_on_a_zoo_net_and_space_samples(capsys):
    bench_cost.main(["--net", "lenet5", "--reps", "1", "--no-fvcore"])
    out = capsys.readouterr().out
    assert "params 61,706" in out and "identical from every method" in out
    bench_cost.main(["--space", str(Path(__file__).parent / "spaces" / "tiny.py"), "--samples", "3", "--reps", "1",
                     "--no-fvcore"])
    out = capsys.readouterr().out
    assert "3 random members of space" in out and "analytic is" in out


def test_benchmarks_run_refuses_an_unknown_benchmark(capsys):
    with pytest.raises(SystemExit):
        bench_run.main(["--only", "costs", "--no-record"])
    assert "unknown benchmark 'costs'" in capsys.readouterr().err


def test_bench_proxy_intervals_tell_a_better_proxy_from_noise():
    """bench_proxy's statistics: Spearman's rho with ties, and paired bootstrap intervals over the
    architectures that exclude 0 for a proxy that is really better and hold it for an equal one."""
    import random

    import bench_proxy
    from bench_quality import spearman
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert abs(spearman([1, 1, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12   # average ranks for ties
    rng = random.Random(1)
    truth = [rng.random() for _ in range(40)]
    scores = {"default": [t + rng.gauss(0, 0.5) for t in truth],
              "same noise": [t + rng.gauss(0, 0.5) for t in truth],
              "sharp": [t + rng.gauss(0, 0.02) for t in truth]}
    b = bench_proxy.bootstrap(truth, scores, draws=500)
    assert b["default"]["diff_lo"] == b["default"]["diff_hi"] == 0.0
    assert b["sharp"]["diff_lo"] > 0 and b["sharp"]["lo"] > 0.9
    assert b["same noise"]["diff_lo"] < 0 < b["same noise"]["diff_hi"]
