"""Process pools: RecycledPool replaces its workers by fresh pools, never runs more tasks at
once than it has workers, and finishes every task (ProcessPoolExecutor's max_tasks_per_child,
which hangs on CPython gh-115634, is refused)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cartforensics._runtime.pools import RecycledPool, process_pool


def _drain(pool: RecycledPool, tasks: int) -> list[tuple[int, int]]:
    """Submit ``tasks`` os.getpid calls as room allows; (generation, worker pid) of each."""
    from concurrent.futures import FIRST_COMPLETED, wait

    out: list[tuple[int, int]] = []
    pending: dict = {}
    left = tasks
    while left or pending:
        while left and pool.room() > 0:
            fut = pool.submit(os.getpid)
            pending[fut] = pool.generations
            left -= 1
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for fut in finished:
            out.append((pending.pop(fut), fut.result()))
    return out


def test_item1_recycled_pool_finishes_16k_plus_1_tasks_with_fresh_workers() -> None:
    # 17 tasks on 2 workers of 8: the count that hung max_tasks_per_child (gh-115634)
    with RecycledPool(2, "json", tasks_per_worker=8, in_flight=4) as pool:
        done = _drain(pool, 17)
        assert pool.generations == 2
    assert len(done) == 17
    by_generation: dict[int, set[int]] = {}
    for gen, pid in done:
        by_generation.setdefault(gen, set()).add(pid)
    assert sorted(by_generation) == [1, 2]
    assert all(1 <= len(pids) <= 2 for pids in by_generation.values())
    assert not by_generation[1] & by_generation[2]  # the second generation's workers are new


def test_item1_no_more_tasks_run_than_workers_while_an_old_generation_drains(
        tmp_path: Path) -> None:
    gate = tmp_path / "open"
    wait_for_gate = ["sh", "-c", f"until [ -e '{gate}' ]; do sleep 0.01; done"]
    with RecycledPool(1, "json", tasks_per_worker=1, in_flight=3) as pool:
        assert pool.room() == 3
        first = pool.submit(subprocess.run, wait_for_gate)  # generation 1's one task
        assert pool.room() == 2
        second = pool.submit(subprocess.run, wait_for_gate)  # generation 2
        assert pool.generations == 2
        assert pool.room() == 0  # generation 1 still runs a task: one worker's worth in all
        gate.touch()
        assert first.result(timeout=60).returncode == 0
        assert second.result(timeout=60).returncode == 0
        assert pool.room() == 3  # generation 1 is gone: the queue's room is back


def test_item1_process_pool_refuses_max_tasks_per_child() -> None:
    with pytest.raises(TypeError, match="gh-115634"):
        process_pool(2, "json", max_tasks_per_child=8)


def gone(pid: int) -> bool:
    """The process has ended (a zombie no init reaps counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


DRIVER = """
import os, time
from cartforensics._runtime.pools import process_pool
pool = process_pool(2, "json")
pids = {pool.submit(os.getpid).result() for _ in range(20)}
print(*pids, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_item4_workers_end_when_the_process_that_made_the_pool_is_killed() -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                         env=env)
    workers = [int(w) for w in p.stdout.readline().split()]
    assert workers and not any(gone(w) for w in workers)
    p.send_signal(signal.SIGKILL)  # its pool cannot stop its workers now
    p.wait()
    p.stdout.close()
    deadline = time.monotonic() + 60
    while not all(gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(w) for w in workers)  # (before: they waited for work forever)
