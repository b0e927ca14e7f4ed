"""Process pools: RecycledPool replaces its workers by fresh pools, never runs more tasks at
once than it has workers, and finishes every task (ProcessPoolExecutor's max_tasks_per_child,
which hangs on CPython gh-115634, is refused)."""

from __future__ import annotations

import os
import subprocess
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
