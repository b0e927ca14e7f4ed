"""Where events come from: log files or a dataset written by ``cartforensics convert``,
resolved once, in this one place above both readers (:mod:`cartforensics.io.logs` reads logs,
:mod:`cartforensics.io.dataset` reads Parquet; neither knows the other's reader).

:func:`resolve_source` turns what a caller gives (a path, a glob, a list) into a small typed
value that every stage below takes: :class:`LogSource` (the log files, listed and sized once)
or :class:`DatasetSource` (a dataset's root and its manifest, read once).

>>> src = resolve_source("sample_data")  # doctest: +SKIP
>>> df = read_events(src)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cartforensics.go.version import DEFAULT_GO_VERSION, GoSemantics, semantics
from cartforensics.io.dataset import (
    CARTS_DIR,
    EVENTS_DIR,
    files_in_order,
    fragment_files,
    open_dataset,
    read_manifest,
)
from cartforensics.io.logs import (
    FileProblem,
    LogFile,
    LogList,
    Source,
    find_logs,
    read_log_events,
)


@dataclass(frozen=True)
class LogSource:
    """Log files, listed once in read_events' order (cart id, then file name), with the size
    each had on disk when listed (-1 where it could not be read), and the entries named like
    logs that are not regular files (``skipped``: never opened, problems of every read)."""

    logs: tuple[LogFile, ...]
    sizes: tuple[int, ...]
    skipped: tuple[FileProblem, ...] = ()

    def log_list(self) -> LogList:
        """The logs as :func:`find_logs` gives them (with the skipped entries)."""
        return LogList(self.logs, self.skipped)

    @property
    def total_bytes(self) -> int:
        return sum(s for s in self.sizes if s > 0)


@dataclass(frozen=True)
class DatasetSource:
    """A dataset written by ``cartforensics convert``: its root and its manifest, read once."""

    root: Path
    manifest: dict[str, Any]

    @property
    def go_version(self) -> str:
        return self.manifest.get("go_version") or DEFAULT_GO_VERSION

    @property
    def lines(self) -> int:
        return int(self.manifest.get("lines") or 0)

    def files(self) -> list[dict[str, Any]]:
        """The manifest's file entries in read_events' order."""
        return files_in_order(self.manifest)

    def __str__(self) -> str:
        return os.fspath(self.root)


Resolved = LogSource | DatasetSource


def _dataset_at(source: Any) -> DatasetSource | None:
    """The dataset at ``source`` when it is a directory holding our manifest (read and checked
    here, with its fragments' schemas: a damaged one raises DatasetError, one line)."""
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        manifest = read_manifest(source)
        if manifest is not None:
            fragment_files(source, EVENTS_DIR)
            fragment_files(source, CARTS_DIR)
            return DatasetSource(Path(source), manifest)
    return None


def resolve_source(source: Source | Resolved) -> Resolved:
    """What ``source`` is, decided once: a converted dataset (its manifest read) or log files
    (listed and sized). A resolved source is returned as it is.

    Raises :class:`~cartforensics.io.logs.NoLogsError` naming the path when ``source`` is
    neither a dataset nor holds logs, :class:`~cartforensics.io.dataset.DatasetError` (one
    line) when it is a damaged dataset.
    """
    if isinstance(source, (LogSource, DatasetSource)):
        return source
    dataset = _dataset_at(source)
    if dataset is not None:
        return dataset
    logs = find_logs(source)
    sizes = []
    for log in logs:
        try:
            sizes.append(log.path.stat().st_size)
        except OSError:
            sizes.append(-1)
    return LogSource(tuple(logs), tuple(sizes), tuple(logs.skipped))


def read_events(
    source: Source | Resolved, progress: bool | None = None, *, carts: Any = None,
    start: Any = None, end: Any = None, go_version: str | GoSemantics | None = None,
) -> pd.DataFrame:
    """Read cart event logs into one row per physical line, exactly as the service's reader
    cuts and decodes them.

    ``source``: a ``<cartId>.events.log`` (or ``.gz``) file, a directory, a glob, or a list.
    Columns: cart_id, line (1-based), offset, length (without the newline), newline, ts (UTC,
    read leniently: Unix seconds or RFC 3339), ts_kind (string, number, null, missing,
    invalid), type, payload (raw JSON text), envelope_error (Go's json.Unmarshal error, None
    when the envelope decodes), lenient_error (the same with numeric ts accepted), too_long
    (Go's scanner stops at this line), raw (the line's exact bytes). Text columns hold a
    missing value (NaN) where there is none. Files that could not be read whole are listed in
    ``df.attrs["problems"]`` (and warned about; what was read of them stays), as are entries
    named like logs that are not regular files (a FIFO, a directory, a dangling symbolic link:
    never opened), and every file read, empty ones too, in ``df.attrs["files"]``.

    ``go_version``: the toolchain that built the service, whose encoding/json decodes the
    envelopes: ``"1.25"`` (default), ``"1.26"``, ``"1.27"``, or with a ``GOEXPERIMENT``-style
    override (``"1.27+nojsonv2"``, ``"1.26+jsonv2"``); see :mod:`cartforensics.go.version`.
    Go ≥ 1.27 unescapes an escaped ``ts`` before parsing it, and many error texts differ.
    It is kept in ``df.attrs["go_version"]`` (replay reads it from there).

    ``source`` may also be a dataset written by ``cartforensics convert``, or what
    :func:`resolve_source` made of either; for a dataset, ``carts``,
    ``start`` and ``end`` filter it inside the Parquet scan (its envelopes were decoded with
    the go_version it was converted with).

    >>> df = read_events("sample_data")  # doctest: +SKIP
    """
    sem = semantics(go_version)
    logs: Any = source.log_list() if isinstance(source, LogSource) else source
    # a dataset; else read_log_events lists the logs (once: no sizes are needed here)
    source = _dataset_at(source) or source
    if isinstance(source, DatasetSource):
        df = open_dataset(source.root, carts=carts, start=start, end=end,
                          manifest=source.manifest)
        stored = semantics(df.attrs.get("go_version"))
        if go_version is not None and stored != sem:
            raise ValueError(
                f"{source} was converted as {stored.label}; convert the logs again "
                f"with go_version={sem.spec!r} to read them as {sem.label}")
        return df
    if carts is not None or start is not None or end is not None:
        raise ValueError("carts=, start= and end= filter a converted dataset (see "
                         "cartforensics.jobs.convert); filter the DataFrame of log files instead")
    return read_log_events(logs, progress, go_version=sem)
