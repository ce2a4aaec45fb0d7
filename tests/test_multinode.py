"""Multi-node: `nasty search --address` pointed at a Ray cluster of 2 simulated nodes
(ray.cluster_utils.Cluster), each declaring 1 CPU and 1 GPU. With --gpus-per-trial 0.5
trials spread across both nodes, two share a GPU, and each trial sees only the GPU id Ray
assigned to it (ray.get_gpu_ids(), reported from inside the trial and recorded per trial).
No real GPU is needed: the GPUs are declared resources, and the trials train on the CPU.
A node removed mid-search costs a retry of its trial on the other node, not the trial."""
import io
import time
import json
from pathlib import Path

import pytest
from rich.console import Console

from nasty.search.runner import search
from nasty.search.settings import Settings

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


@pytest.fixture
def cluster():
    from nasty.search.ray_backend import quiet_ray
    quiet_ray()
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
                 lr=0.05, time_budget=600, seed=4, runs_dir=str(tmp_path), name="multi", address=c.address, confirm=0,
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
    # the trials' final weights came back with their results (a worker node need not see the run
    # folder), so the driver could score the winner on the test set
    assert 0 < json.loads((folder / "best.json").read_text())["test_acc"] <= 1


def test_a_node_removed_mid_search_means_a_retry_not_a_loss(cluster, tmp_path, monkeypatch):
    """The second node is removed while one of its trials is between epochs. Ray Tune runs
    that trial again on the surviving node (FailureConfig retries): the run loses nothing,
    every trial ends ok, and the record says it was retried and why."""
    import threading

    from nasty.search.loop import SearchLoop
    c, nodes = cluster
    doomed = nodes[1]
    hit = threading.Event()
    original = SearchLoop.epoch

    def watch(self, pid, result):
        original(self, pid, result)
        if result.get("node") == doomed.node_id and result.get("epoch") == 1:
            hit.set()

    monkeypatch.setattr(SearchLoop, "epoch", watch)
    removed = []

    def remove_when_hit():
        if hit.wait(240):
            c.remove_node(doomed)
            removed.append(time.time())

    killer = threading.Thread(target=remove_when_hit, daemon=True)
    killer.start()
    s = Settings(space=TINY, budget="20MFLOPs", trials=4, epochs=3, subset=1500, val_subset=200, batch_size=64,
                 lr=0.02, time_budget=600, seed=5, runs_dir=str(tmp_path), name="lose-a-node", address=c.address,
                 confirm=0,
                 cpus_per_trial=1)
    search(s, console=Console(file=io.StringIO(), width=200), live=False)
    killer.join(5)
    assert removed, "no trial reached its first epoch on the second node"
    recs = [json.loads(l) for l in (tmp_path / "lose-a-node" / "trials.jsonl").read_text().splitlines()]
    trials = [r for r in recs if r["trial"] is not None]          # not over budget, not screened out
    assert sorted(r["trial"] for r in trials) == [0, 1, 2, 3]
    for r in trials:     # the tiny space's blowup=True nets fail on purpose (NaN); nothing else may fail
        if r["decisions"]["blowup"]:
            assert r["status"] == "failed" and "NaN" in r["reason"] and not r.get("retries"), r
        else:
            assert r["status"] == "ok" and len(r["epochs"]) == 3, r
    retried = [r for r in trials if r.get("retries")]
    assert len(retried) >= 1
    # the retried trial finished on the surviving node, and its epochs are those of the new run only
    for r in retried:
        assert "node" in r["retries"][0] and r["placement"]["node"] == nodes[0].node_id
        assert [e["epoch"] for e in r["epochs"]] == [1, 2, 3]
