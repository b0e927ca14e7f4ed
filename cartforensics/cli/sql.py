"""``cartforensics sql SRC "select ..."``: an analyst's question in SQL over a converted dataset
(read where it lies) or over logs (replayed on the way in), on the views of
:func:`cartforensics.analysis.sql.sql` (``events``, ``outcomes``, ``carts``, ``files``).

    cartforensics sql carts.parquet "select mode, outcome, count(*) from outcomes group by all"
    cartforensics sql sample_data "select * from carts" --format parquet --out carts.parquet
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import duckdb

from cartforensics.analysis.sql import FORMATS, sql, write_query
from cartforensics.cli.args import add_go_version_option, fail, one_line_errors, path_arg
from cartforensics.io.dataset import DatasetError
from cartforensics.io.logs import NoLogsError
from cartforensics.present.escaping import visible

__all__ = ["add_subcommand", "result_table"]


def result_table(rel: duckdb.DuckDBPyRelation) -> str:
    """A query's result as a text table for a terminal: every value shown as text with its
    non-printing characters escaped (log content never reaches the terminal raw), NULL for a
    missing value, bytes as Python writes them.

    >>> print(result_table(duckdb.sql("select 'a' || chr(27) || '[31m' as s, null as n")))
            s    n
    a\\x1b[31m NULL
    """
    import pandas as pd

    table = rel.to_arrow_table()
    names = [visible(name) for name in table.column_names]
    if not table.num_rows:
        return "  ".join(names) + "\n(no rows)"
    frame = pd.DataFrame({k: [_cell(v) for v in table.column(k).to_pylist()]
                          for k in range(len(names))}, dtype=object)
    frame.columns = names  # (a query may name two columns alike)
    return frame.to_string(index=False)


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return visible(repr(v))
    return visible(str(v))


def _one_line(e: BaseException) -> str:
    """An error as one line: DuckDB's messages span several (the query, a caret)."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _fail(text: str) -> int:
    """A bad argument, query or path: one line on stderr (escaped), exit status 2."""
    return fail(f"sql: {text}")


def _cmd_sql(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt == "parquet" and args.out is None:
        return _fail("--format parquet writes a file: give --out FILE")
    try:
        con = sql(args.path, go_version=args.go_version)
    except (NoLogsError, DatasetError, ValueError) as e:
        return _fail(_one_line(e))
    except OSError as e:
        return _fail(f"{e.filename or args.path}: {e.strerror or e}")
    try:
        if fmt == "table":
            rel = con.sql(args.query)
            if rel is None:
                return _fail("the statement returns no rows: give a query (select ...)")
            sys.stdout.write(result_table(rel) + "\n")
        elif args.out is not None:
            write_query(con, args.query, args.out, fmt)
        else:  # text to a terminal: control characters escaped (--out keeps them exact)
            import io

            buf = io.BytesIO()
            write_query(con, args.query, buf, fmt)
            text = buf.getvalue().decode("utf-8", "surrogateescape")
            sys.stdout.write(visible(text, keep_newlines=True))
    except duckdb.Error as e:
        return _fail(_one_line(e))
    except OSError as e:
        return _fail(f"--out {args.out}: {e.strerror or e}")
    finally:
        con.close()
    return 0


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``cartforensics sql SRC QUERY [--format table|csv|json|parquet] [--out FILE]``."""
    p = subparsers.add_parser(
        "sql", help="answer a question in SQL (DuckDB) over a dataset or logs",
        description=(
            "Run one SQL query (DuckDB) over SRC: a converted dataset (read where it lies) or "
            "log files (read and replayed in both modes first). Views: events (one row per "
            "line, both modes' outcome and error), outcomes (one row per line and mode), "
            "carts (one row per cart and mode: final state, money columns), files (one row "
            "per input file). Prints a table, or writes csv/json/parquet."),
    )
    p.add_argument("path", metavar="SRC", type=path_arg,
                   help="a converted dataset, or a log directory/file")
    p.add_argument("query", metavar="QUERY", help='one query, e.g. "select * from carts"')
    p.add_argument("--format", "-f", choices=["table", *FORMATS], default="table",
                   help="table (default: printed), csv, json (one object per line), parquet "
                        "(needs --out)")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="write the result to FILE (replaced in one step) instead of stdout")
    add_go_version_option(p)
    p.set_defaults(func=_cmd_sql, go_version=None)  # a dataset: the toolchain it was converted as
    one_line_errors(p, "sql")
    return p
