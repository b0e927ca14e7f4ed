"""Run cartforensics' batch work on a Dask cluster (the optional ``dask`` extra).

``--scheduler tcp://HOST:PORT`` connects to a running Dask scheduler; ``--scheduler local:N``
starts a ``LocalCluster`` of N worker processes for the duration of the command. Either way
the library gets a plain ``concurrent.futures.Executor`` (``client.get_executor()``), so the
same pure per-batch function runs on the workers as in a local pool.

>>> with dask_executor("local:2") as ex:                      # doctest: +SKIP
...     convert("logs/", "carts.parquet", executor=ex)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

__all__ = ["SchedulerError", "dask_executor", "parse_scheduler"]

_LOCAL = re.compile(r"^local:([1-9][0-9]{0,3})$")
_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc|ws|wss)://\S+$")


class SchedulerError(ValueError):
    """A ``--scheduler`` value that is neither ``tcp://HOST:PORT`` nor ``local:N``, or Dask is
    not installed."""


def parse_scheduler(spec: str) -> tuple[str, Any]:
    """``("local", N)`` for ``local:N``, ``("address", spec)`` for a scheduler address."""
    text = str(spec).strip()
    m = _LOCAL.match(text)
    if m:
        return "local", int(m.group(1))
    if _ADDRESS.match(text):
        return "address", text
    raise SchedulerError(
        f"--scheduler {spec!r}: give a Dask scheduler address (tcp://HOST:PORT) or local:N "
        "to start N local worker processes"
    )


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SchedulerError(
            "--scheduler needs Dask: pip install 'cartforensics[dask]' (or 'dask[distributed]')"
        ) from None
    return distributed


@contextmanager
def dask_executor(spec: str, **cluster_options: Any) -> Iterator[Executor]:
    """A ``concurrent.futures.Executor`` on the Dask scheduler ``spec`` (``tcp://HOST:PORT``,
    or ``local:N``: a LocalCluster of N single-threaded worker processes, dashboard on a free
    port, started here and closed on exit). ``cluster_options`` go to ``LocalCluster``."""
    kind, value = parse_scheduler(spec)
    distributed = _distributed()
    cluster = None
    if kind == "local":
        opts = {"n_workers": value, "threads_per_worker": 1, "processes": True,
                "dashboard_address": ":0"}
        opts.update(cluster_options)
        cluster = distributed.LocalCluster(**opts)
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(value, timeout="20s")
        except OSError as e:
            raise SchedulerError(f"--scheduler {value}: cannot connect: {e}") from None
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
