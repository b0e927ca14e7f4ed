"""SQL for analysts: a DuckDB connection whose views are a source's lines, outcomes, carts and
files, over a converted dataset's Parquet where it lies (nothing loaded), or over logs read
and replayed in both modes on the way in.

Views (the same columns from either source):

- ``events``: one row per physical line: read_events' columns (``cart_id``, ``line``,
  ``offset``, ``length``, ``newline``, ``ts``, ``ts_kind``, ``type``, ``payload``,
  ``envelope_error``, ``lenient_error``, ``too_long``, ``raw``) and each line's outcome and
  error in both modes (``outcome_go``, ``error_go``, ``outcome_lenient``, ``error_lenient``);
- ``outcomes``: one row per line and mode (``mode``, ``cart_id``, ``line``, ``ts``, ``type``,
  ``outcome``, ``error``): the rows of the report's ``outcomes.parquet``;
- ``carts``: one row per cart and mode: ``lines``, ``applied`` and the final state, its money
  flattened (``items``, ``quantity``, ``deliveries``, ``total_price``, ``total_tax``,
  ``total_discount``, in the state's integer units), ``order_reference``,
  ``payment_status``, ``payment_in_progress``, ``last_change``, and ``state`` (its JSON);
- ``files``: one row per input file: ``path``, ``cart_id``, ``bytes``, ``lines``,
  ``problems`` (one per line; null when none).

>>> con = sql("sample_data")
>>> con.sql("select mode, count(*) from outcomes where outcome = 'applied' "
...         "group by mode order by mode").fetchall()
[('go', 713), ('lenient', 1506)]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import pandas as pd
import pyarrow as pa

from cartforensics._runtime.publish import write_atomic
from cartforensics.go.version import GoSemantics
from cartforensics.io.dataset import (
    CARTS_DIR,
    CARTS_SCHEMA,
    EVENTS_DIR,
    EVENTS_SCHEMA,
    fragment_files,
)
from cartforensics.io.logs import COLUMNS as READ_EVENTS_COLUMNS
from cartforensics.io.logs import Source, name_text, several_files
from cartforensics.io.sources import DatasetSource, Resolved, read_events, resolve_source
from cartforensics.model.protocol import ReplayOfEvents
from cartforensics.model.replay import replay
from cartforensics.vocab import MODES

if TYPE_CHECKING:  # imported when a connection is made (55 ms): `import cartforensics` stays lean
    import duckdb

__all__ = ["FORMATS", "VIEWS", "parquet_view", "process_connection", "sql", "write_query"]

VIEWS = ("events", "outcomes", "carts", "files")
OUTCOME_COLUMNS = [f"{c}_{m}" for m in MODES for c in ("outcome", "error")]


def sql(src: Source | Resolved, go_version: str | GoSemantics | None = None
        ) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with the views ``events``, ``outcomes``, ``carts`` and
    ``files`` (see the module) over ``src``: a converted dataset (read where it lies, in
    DuckDB's threads) or log files (what read_events takes; read and replayed in both modes
    now, as ``go_version``'s service does).

    >>> con = sql("sample_data")
    >>> con.sql("select count(*) from carts where mode = 'go'").fetchall()
    [(300,)]
    """
    import duckdb

    source = resolve_source(src)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")  # times shown in UTC, as everywhere in the package
    if isinstance(source, DatasetSource):
        if go_version is not None:
            from cartforensics.go.version import semantics

            if semantics(go_version) != semantics(source.go_version):
                raise ValueError(
                    f"{source} was converted as {semantics(source.go_version).label}: query "
                    f"the logs, or convert them again with go_version="
                    f"{semantics(go_version).spec!r}")
        _dataset_views(con, source)
    else:
        _log_views(con, source, go_version)
    _shared_views(con)
    return con


# -- a dataset: views over its Parquet -----------------------------------------------------
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_GLOB = set("*?[{")  # read_parquet expands these in a path


def parquet_view(con: Any, name: str, files: Sequence[str | os.PathLike[str]],
                 schema: pa.Schema, temporary: bool = False) -> None:
    """A view ``name`` on DuckDB connection ``con`` over the Parquet ``files`` (of ``schema``;
    no files: an empty view of it), read by DuckDB where they lie; a path DuckDB would
    expand as a glob is read through pyarrow instead. ``temporary``: seen by ``con`` only
    (not by the other connections to its database).

    >>> import duckdb; con = duckdb.connect()
    >>> parquet_view(con, "t", [], pa.schema([("n", pa.int64())]))
    >>> con.sql("select count(*) from t").fetchall()
    [(0,)]
    """
    paths = [os.fspath(f) for f in files]
    if paths and not any(ch in _GLOB for f in paths for ch in f):
        listed = ", ".join(_literal(f) for f in paths)
        kind = "temp view" if temporary else "view"
        con.execute(f"create {kind} {name} as select * from read_parquet([{listed}])")
        return
    import pyarrow.dataset as ds

    con.register(name, ds.dataset(paths, schema=schema, format="parquet") if paths else
                 schema.empty_table())


_DATABASE: dict[int, Any] = {}  # process id -> this process's in-memory DuckDB (scans' own)


def process_connection() -> Any:
    """A new DuckDB connection to this process's in-memory database, for a scan's temporary
    views (a cursor costs microseconds, a new database 20-50 ms; a forked worker makes its
    own database)."""
    import duckdb

    pid = os.getpid()
    if pid not in _DATABASE:
        _DATABASE.clear()
        _DATABASE[pid] = duckdb.connect()
    return _DATABASE[pid].cursor()



def _dataset_views(con: duckdb.DuckDBPyConnection, source: DatasetSource) -> None:
    # the fragments, checked (regular files inside the dataset, of the schema)
    events = [str(p) for p in fragment_files(source.root, EVENTS_DIR)]
    carts = [str(p) for p in fragment_files(source.root, CARTS_DIR)]
    parquet_view(con, "_cf_stored_events", events, EVENTS_SCHEMA)
    parquet_view(con, "_cf_stored_carts", carts, CARTS_SCHEMA)
    # ts to the nanosecond, as read_events has it (the stored ts is in microseconds)
    cols = ", ".join("make_timestamp_ns(ts_ns)::timestamptz_ns as ts" if c == "ts" else
                     f'"{c}"' for c in [*READ_EVENTS_COLUMNS, *OUTCOME_COLUMNS])
    con.execute(f"create view events as select {cols} from _cf_stored_events")
    # a cart's final state: its last file's (in read_events' order); lines and applied: all.
    # The numbers are grouped and the states joined to the last file's row (aggregating the
    # states themselves held every cart's state texts in the hash table: GBs for a fleet)
    sums = ", ".join(f"sum({m}_applied)::bigint as applied_{m}" for m in MODES)
    states = ", ".join(f"c.state_{m}" for m in MODES)
    con.execute(f"""
        create view _cf_states as
        select t.cart_id, t.lines, {", ".join(f"t.applied_{m}" for m in MODES)}, {states}
        from (select cart_id, max(source) as source, sum(lines)::bigint as lines, {sums}
              from _cf_stored_carts group by cart_id) t
        join _cf_stored_carts c on c.cart_id = t.cart_id and c.source = t.source
    """)
    files = source.files()
    problems = [{"path": f["path"], "error": p} for f in files for p in f.get("problems", [])]
    problems += [p.__dict__ for p in several_files([(f["path"], f["cart_id"]) for f in files])]
    con.register("files", _files_table(files, problems))


def _files_table(files: list[dict[str, Any]], problems: list[dict[str, Any]]) -> pa.Table:
    """``files``: one row per input file (read_events' ``files``, or a manifest's entries),
    with its ``problems`` (read_events' list: path, error) one per line."""
    by_path: dict[str, list[str]] = {}
    for p in problems:  # (names the file system gave that are not UTF-8: \xNN, as ids are)
        by_path.setdefault(str(p["path"]), []).append(name_text(str(p["error"])))

    def problems_of(f: dict[str, Any]) -> str | None:
        found = by_path.get(str(f["path"]))
        return "\n".join(found) if found else None

    return pa.table({
        "path": pa.array([name_text(str(f["path"])) for f in files], pa.string()),
        "cart_id": pa.array([f["cart_id"] for f in files], pa.string()),
        "bytes": pa.array([f.get("content_size", f.get("bytes")) for f in files], pa.int64()),
        "lines": pa.array([f.get("lines") for f in files], pa.int64()),
        "problems": pa.array([problems_of(f) for f in files], pa.string()),
    })


# -- logs: read and replayed, then registered as Arrow tables ------------------------------
def _text(values: Any) -> pa.Array:
    """A pandas text column (categorical, Arrow-backed or object) as an Arrow string array."""
    arr = pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return arr.cast(pa.string())


def _log_views(con: duckdb.DuckDBPyConnection, source: Resolved,
               go_version: str | GoSemantics | None) -> None:
    ev = read_events(source, progress=False, go_version=go_version)
    go, lenient = replay(ev, mode="go"), replay(ev, mode="lenient")
    columns: dict[str, pa.Array] = {}
    for name in READ_EVENTS_COLUMNS:
        s = ev[name]
        if name == "ts":
            columns[name] = pa.array(pd.to_datetime(s, utc=True).dt.as_unit("ns").array,
                                     pa.timestamp("ns", tz="UTC"))
        elif EVENTS_SCHEMA.field(name).type == pa.string():
            columns[name] = _text(s.array)
        else:
            columns[name] = pa.array(s.array, from_pandas=True)
    for r in (go, lenient):
        columns[f"outcome_{r.mode}"] = _text(r.outcomes["outcome"].array)
        columns[f"error_{r.mode}"] = _text(r.outcomes["error"].array)
    con.register("_cf_events", pa.table(columns))
    con.execute("create view events as select * from _cf_events")
    con.register("_cf_states", _states_table(go, lenient))
    con.register("files", _files_table(list(ev.attrs.get("files", [])),
                                       list(ev.attrs.get("problems", []))))


def _states_table(go: ReplayOfEvents, lenient: ReplayOfEvents) -> pa.Table:
    """One row per cart (replay order): lines, applied and the final state JSON per mode."""
    from cartforensics.go.json import marshal

    ids = go.cart_ids
    cols: dict[str, Any] = {"cart_id": pa.array(ids, pa.string())}
    for r in (go, lenient):
        summary = r.summary().reindex(ids, fill_value=0)
        if r is go:
            cols["lines"] = pa.array(summary["lines"].to_numpy(), pa.int64())
        cols[f"applied_{r.mode}"] = pa.array(summary["applied"].to_numpy(), pa.int64())
        cols[f"state_{r.mode}"] = pa.array([marshal(r.final_state(c)) for c in ids],
                                           pa.string())
    return pa.table(cols)


# -- what both share -----------------------------------------------------------------------
def _shared_views(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(" union all ".join(
        f"select '{m}' as mode, cart_id, line, ts, type, outcome_{m} as outcome, "
        f"error_{m} as error from events" for m in MODES).join(
        ["create view outcomes as ", ""]))
    money = """
        try_cast(json_extract_string(state, '$.totalPrice') as bigint) as total_price,
        try_cast(json_extract_string(state, '$.totalTax') as bigint) as total_tax,
        try_cast(json_extract_string(state, '$.totalDiscount') as bigint) as total_discount,
    """
    per_mode = " union all ".join(
        f"select cart_id, '{m}' as mode, lines, applied_{m} as applied, state_{m} as state "
        f"from _cf_states" for m in MODES)
    con.execute(f"""
        create view carts as
        select cart_id, mode, lines, applied,
            coalesce(json_array_length(state, '$.items'), 0)::bigint as items,
            coalesce(list_sum(try_cast(json_extract(state, '$.items[*].qty') as bigint[])), 0)
                ::bigint as quantity,
            coalesce(json_array_length(state, '$.deliveries'), 0)::bigint as deliveries,
            {money}
            json_extract_string(state, '$.orderReference') as order_reference,
            json_extract_string(state, '$.paymentStatus') as payment_status,
            try_cast(json_extract_string(state, '$.paymentInProgress') as boolean)
                as payment_in_progress,
            json_extract_string(state, '$.lastChange') as last_change,
            state
        from ({per_mode})
    """)



# -- a query's result, written -------------------------------------------------------------
FORMATS = ("csv", "json", "parquet")
_COPY_OPTIONS = {"csv": "format csv, header true", "json": "format json",
                 "parquet": "format parquet"}


def write_query(con: duckdb.DuckDBPyConnection, query: str,
                out: str | os.PathLike[str] | BinaryIO, fmt: str) -> None:
    """Write what ``query`` returns on ``con`` as ``fmt`` (csv with a header, json: one object
    per line, parquet) to ``out``: a path (replaced in one step: never half written) or a
    binary file. Values are written as they are (a query's text is data).

    >>> import duckdb, io; buf = io.BytesIO()
    >>> write_query(duckdb.connect(), "select 1 as n, 'a,b' as s", buf, "csv")
    >>> buf.getvalue()
    b'n,s\\n1,"a,b"\\n'
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    query = query.strip().rstrip(";").rstrip()  # copy (...) takes one query, unterminated
    with tempfile.TemporaryDirectory(prefix=".cartforensics-sql-") as tmp:
        part = os.path.join(tmp, f"result.{fmt}")
        con.execute(f"copy ({query}) to {_literal(part)} ({_COPY_OPTIONS[fmt]})")

        def copy(fh: BinaryIO) -> None:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, fh)

        if isinstance(out, (str, os.PathLike)):
            write_atomic(out, copy)
        else:
            copy(out)
