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
