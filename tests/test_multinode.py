"""Multi-node: `nasty search --address` pointed at a Ray cluster of 2 simulated nodes
(ray.cluster_utils.Cluster), each declaring 1 CPU and 1 GPU. With --gpus-per-trial 0.5
trials spread across both nodes, two share a GPU, and each trial sees only the GPU id Ray
assigned to it (ray.get_gpu_ids(), reported from inside the trial and recorded per trial).
No real GPU is needed: the GPUs are declared resources, and the trials train on the CPU."""
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from nasty.run import Settings, search

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


@pytest.fixture
def cluster():
    from nasty.run import _quiet_ray
    _quiet_ray()
    import ray
    from ray.cluster_utils import Cluster
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, object_store_memory=100 * 2**20,
                                                          include_dashboard=False))
    nodes = [c.add_node(num_cpus=1, num_gpus=1, object_store_memory=100 * 2**20) for _ in range(2)]
    c.wait_for_nodes()
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def test_trials_spread_over_nodes_and_pack_two_per_gpu(cluster, tmp_path):
    c, nodes = cluster
    s = Settings(space=TINY, budget="20MFLOPs", trials=8, epochs=1, subset=800, val_subset=200, batch_size=64,
                 lr=0.05, time_budget=300, seed=4, runs_dir=str(tmp_path), name="multi", address=c.address,
                 cpus_per_trial=0.5, gpus_per_trial=0.5)
    search(s, console=Console(file=io.StringIO(), width=200), live=False)
    folder = tmp_path / "multi"
    recs = [json.loads(l) for l in (folder / "trials.jsonl").read_text().splitlines()]
    trained = [r for r in recs if r["status"] == "ok"]
    assert len([r for r in recs if r["status"] in ("ok", "failed")]) == 8 and len(trained) >= 2
    worker_nodes = {n.node_id for n in nodes}
    placed = [r["placement"] for r in trained]
    # every trial ran on a worker node (the head has no CPU), and both nodes got trials
    assert {p["node"] for p in placed} <= worker_nodes
    assert {p["node"] for p in placed} == worker_nodes, placed
    # fractional packing: each trial was given exactly one GPU id, that of its node's only GPU
    assert all(p["gpu_ids"] == ["0"] for p in placed), placed
    # no node ever ran more trials at once than its GPU (2 x 0.5) and CPU (2 x 0.5) allow
    for node in worker_nodes:
        spans = sorted((r["timings"]["started"], r["timings"]["completed"]) for r in trained
                       if r["placement"]["node"] == node)
        for start, _ in spans:
            assert sum(1 for a, b in spans if a <= start < b) <= 2
