"""Process pools for the package's batch work, and what a caller needs around them.

:func:`process_pool` makes a pool whose workers fork from a server that imported one module
once; :class:`RecycledPool` is such a pool whose workers are replaced by fresh ones every few
tasks; :func:`main_module_hidden` keeps the workers from running the calling script again
while they start; :func:`executor_width` says how many tasks any executor runs at once (for
an in-flight window). Imports nothing of the package's stages: the module a worker runs is
named by its caller.

No pool here uses ProcessPoolExecutor's ``max_tasks_per_child``: on CPython 3.11 and 3.12
(and 3.13, 3.14 before their fixes of gh-115634) a worker that exits at its limit is
sometimes not replaced, and once none is left the pool never finishes. :class:`RecycledPool`
replaces workers by whole pools instead.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

__all__ = ["RecycledPool", "executor_width", "exit_with", "main_module_hidden",
           "process_pool"]


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """While worker processes start: hide the main module's file and spec from
    multiprocessing, so that a worker does not run the calling script again.

    A 'spawn' or 'forkserver' child re-runs ``__main__`` (as ``__mp_main__``) before it takes
    work; a plain script that calls the library at top level, with no
    ``if __name__ == "__main__":``, would call it again in every worker, which fails
    (``RuntimeError`` while bootstrapping) and breaks the pool. The workers run only functions
    of the package's modules on the package's own objects: they never need ``__main__``."""
    main = sys.modules.get("__main__")
    saved: dict[str, Any] = {}
    if main is not None:
        for attr in ("__file__", "__spec__"):
            if attr in vars(main):
                saved[attr] = vars(main)[attr]
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            for attr, value in saved.items():
                setattr(main, attr, value)


def process_pool(workers: int, preload: str, **kwargs: Any) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes forked from a server that imported the module named
    ``preload`` once (forkserver: safe with threads, cheap per worker; spawn where there is
    none); ``kwargs`` go to ProcessPoolExecutor, except ``max_tasks_per_child``, which can
    hang the pool (gh-115634): use :class:`RecycledPool`. Each worker ends when this process
    does, however it ends (:func:`exit_with`).

    >>> with process_pool(1, "json") as pool:
    ...     pool.submit(abs, -3).result()
    3
    """
    if "max_tasks_per_child" in kwargs:
        raise TypeError("max_tasks_per_child can hang the pool (CPython gh-115634): "
                        "use RecycledPool to replace workers")
    # every worker first watches this process: killed, it can no longer stop its workers
    kwargs["initargs"] = (os.getpid(), kwargs.pop("initializer", None),
                          tuple(kwargs.pop("initargs", ())))
    kwargs["initializer"] = _worker_started
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])
    else:
        ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, **kwargs)


def _worker_started(driver: int, initializer: Callable[..., Any] | None,
                    initargs: tuple[Any, ...]) -> None:
    """In a pool worker, first: exit when ``driver`` (the process that made the pool) is gone,
    then the caller's initializer."""
    exit_with(driver)
    if initializer is not None:
        initializer(*initargs)


def exit_with(driver: int) -> None:
    """End this process as soon as the process ``driver`` is gone. A pool's workers wait for
    work on pipes they hold both ends of (and a forkserver waits for them): when the process
    that made the pool is killed (kill -9, the OOM killer) nothing else would ever end them.
    A daemon thread waits on a pidfd of ``driver`` (Linux), else looks every second."""
    try:
        watched: int | None = os.pidfd_open(driver)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd here: look every second
        watched = None

    def watch() -> None:
        if watched is not None:
            select.select([watched], [], [])  # readable once the process has ended
        else:
            while True:
                try:
                    os.kill(driver, 0)
                except ProcessLookupError:
                    break
                except OSError:  # (another user's: it still runs)
                    pass
                time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="cartforensics-exit-with-driver", daemon=True).start()


def executor_width(executor: Executor) -> int:
    """How many tasks an executor runs at once, as far as it says (for the in-flight window)."""
    client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a scheduler we cannot ask: assume a small one
            return os.cpu_count() or 1
    return int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)


class RecycledPool(Executor):
    """A pool of ``workers`` processes (as :func:`process_pool` makes them) whose workers are
    replaced by fresh ones after about ``tasks_per_worker`` tasks each, so that what a
    worker's allocators keep after a task never piles up.

    Every ``workers * tasks_per_worker`` tasks a new generation, a fresh
    ``ProcessPoolExecutor``, takes the next tasks; the old one runs what it was given and
    its processes exit. The caller submits while :meth:`room` says there is room: up to
    ``in_flight`` unfinished tasks (the workers' queue), and while an old generation still
    has tasks, no more than ``workers`` in all, so that never more than ``workers`` tasks
    run at once.

    >>> with RecycledPool(1, "json", tasks_per_worker=2, in_flight=2) as pool:
    ...     [pool.submit(abs, -k).result() for k in range(5)]
    [0, 1, 2, 3, 4]
    """

    def __init__(self, workers: int, preload: str, tasks_per_worker: int, in_flight: int,
                 initializer: Callable[[], Any] | None = None) -> None:
        if workers < 1 or tasks_per_worker < 1:
            raise ValueError("workers and tasks_per_worker must be at least 1")
        self._workers = workers
        self._max_workers = workers  # what executor_width reads
        self._preload = preload
        self._initializer = initializer
        self._per_pool = workers * tasks_per_worker
        self._in_flight = max(in_flight, workers)
        self._current: ProcessPoolExecutor | None = None
        self._current_futures: list[Future] = []
        self._submitted = 0  # to the current generation
        self._retired: list[tuple[ProcessPoolExecutor, list[Future]]] = []
        self.generations = 0  # pools started so far

    def room(self) -> int:
        """How many more tasks to submit now (see the class)."""
        self._reap()
        busy_old = sum(not f.done() for _, fs in self._retired for f in fs)
        self._current_futures = [f for f in self._current_futures if not f.done()]
        limit = self._workers if busy_old else self._in_flight
        return max(0, limit - busy_old - len(self._current_futures))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` on the current generation (a new one when the current
        has had its share of tasks)."""
        if self._current is not None and self._submitted >= self._per_pool:
            self._current.shutdown(wait=False)  # runs what it holds, then its workers exit
            self._retired.append((self._current, self._current_futures))
            self._current, self._current_futures = None, []
        if self._current is None:
            self._current = process_pool(self._workers, self._preload,
                                         initializer=self._initializer)
            self._submitted = 0
            self.generations += 1
        fut = self._current.submit(fn, *args, **kwargs)
        self._submitted += 1
        self._current_futures.append(fut)
        return fut

    def _reap(self) -> None:
        """Join the retired generations that have finished (their workers have exited)."""
        keep = []
        for pool, fs in self._retired:
            if all(f.done() for f in fs):
                pool.shutdown(wait=True)
            else:
                keep.append((pool, fs))
        self._retired = keep

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut every generation down (see ``Executor.shutdown``)."""
        pools = [p for p, _ in self._retired]
        if self._current is not None:
            pools.append(self._current)
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            self._retired = []
