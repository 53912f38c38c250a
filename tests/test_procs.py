"""Pool workers die with their parent: a kill -9 of the process that started a pool leaves no
orphaned worker behind (they would otherwise run on, holding memory, for minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

PARENT = """
import sys, time
from deploysim.sample.parallel import new_pool

def nap(seconds):
    import os, time
    time.sleep(seconds)
    return os.getpid()

if __name__ == "__main__":
    pool = new_pool(2)
    futures = [pool.submit(nap, 600) for _ in range(2)]
    time.sleep(3)
    print("ready", flush=True)
    time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_kill_9_of_the_parent_leaves_no_pool_worker(tmp_path: object) -> None:
    script = os.path.join(str(tmp_path), "parent.py")
    with open(script, "w") as fh:
        fh.write(PARENT)
    parent = subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == b"ready"
        children = psutil.Process(parent.pid).children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in children]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)
        assert not alive, f"orphaned workers: {[w.pid for w in alive]}"
        leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert not leftovers, f"orphaned helper processes: {[c.cmdline() for c in leftovers]}"
    finally:
        if parent.poll() is None:
            parent.kill()
