"""Shared test fixtures: processes started in their own session (a real `nasty search`
subprocess and every Ray process it starts), killed with everything they left when a test ends."""
import os
import signal
import subprocess

import pytest

from procs import kill_session


@pytest.fixture
def sessions():
    """Start processes in their own session; everything left of them is killed afterwards."""
    started = []

    def popen(argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, **kw)
        started.append(p)
        return p

    yield popen
    for p in started:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_session(p.pid)        # Ray daemons that changed their process group stay in the session
        p.wait(timeout=30)




@pytest.fixture(scope="module")
def ray_local():
    """One local Ray (loopback only) for a test module: searches in it reuse it instead of starting their own."""
    from nasty.search.ray_backend import local_only, quiet_ray
    quiet_ray()
    local_only()
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             object_store_memory=200 * 2**20)
    yield
    ray.shutdown()
