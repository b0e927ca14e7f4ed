"""Where events come from: log files or a dataset written by ``cartforensics convert``,
resolved in this one place above both readers (:mod:`cartforensics.io.logs` reads logs,
:mod:`cartforensics.io.dataset` reads Parquet; neither knows the other's reader).

>>> df = read_events("sample_data")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.dataset import is_dataset, open_dataset
from cartforensics.io.logs import Source, read_log_events


def read_events(
    source: Source, progress: bool | None = None, *, carts: Any = None, start: Any = None,
    end: Any = None, go_version: str | GoSemantics | None = None,
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
    ``df.attrs["problems"]`` (and warned about; what was read of them stays), and every file
    read, empty ones too, in ``df.attrs["files"]``.

    ``go_version``: the toolchain that built the service, whose encoding/json decodes the
    envelopes: ``"1.25"`` (default), ``"1.26"``, ``"1.27"``, or with a ``GOEXPERIMENT``-style
    override (``"1.27+nojsonv2"``, ``"1.26+jsonv2"``); see :mod:`cartforensics.go.version`.
    Go ≥ 1.27 unescapes an escaped ``ts`` before parsing it, and many error texts differ.
    It is kept in ``df.attrs["go_version"]`` (replay reads it from there).

    ``source`` may also be a dataset written by ``cartforensics convert``; then ``carts``,
    ``start`` and ``end`` filter it inside the Parquet scan (its envelopes were decoded with
    the go_version it was converted with).

    >>> df = read_events("sample_data")  # doctest: +SKIP
    """
    sem = semantics(go_version)
    if is_dataset(source):
        df = open_dataset(source, carts=carts, start=start, end=end)
        stored = semantics(df.attrs.get("go_version"))
        if go_version is not None and stored != sem:
            raise ValueError(
                f"{os.fspath(source)} was converted as {stored.label}; convert the logs again "
                f"with go_version={sem.spec!r} to read them as {sem.label}")
        return df
    if carts is not None or start is not None or end is not None:
        raise ValueError("carts=, start= and end= filter a converted dataset (see "
                         "cartforensics.jobs.convert); filter the DataFrame of log files instead")
    return read_log_events(source, progress, go_version=sem)
