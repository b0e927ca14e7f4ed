"""Process pools for the package's batch work, and what a caller needs around them.

:func:`process_pool` makes a pool whose workers fork from a server that imported one module
once; :func:`main_module_hidden` keeps the workers from running the calling script again
while they start; :func:`executor_width` says how many tasks any executor runs at once (for
an in-flight window). Imports nothing of the package's stages: the module a worker runs is
named by its caller.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

__all__ = ["executor_width", "main_module_hidden", "process_pool"]


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
    none); ``kwargs`` go to ProcessPoolExecutor."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])
    else:
        ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, **kwargs)


def executor_width(executor: Executor) -> int:
    """How many tasks an executor runs at once, as far as it says (for the in-flight window)."""
    client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a scheduler we cannot ask: assume a small one
            return os.cpu_count() or 1
    return int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)
