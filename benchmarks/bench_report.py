"""Benchmark the main job end to end, ``cartforensics report``, run by hand, never by pytest.

    python benchmarks/bench_report.py [--events 1000000] [--repeat 1] [--rev REV]

``write_report`` on N writer-format events (one cart per file, the writer's numeric ts) in a
fresh child process: wall time of the call and the child's peak RSS. Targets (issue 11):
1M events in <= 10 s and <= 2 GB. ``--rev REV`` measures the package as of a git revision too
(``git archive``), in the same run, for a before/after table. The anchor: DuckDB counting the
same lines per cart and type (``read_json`` over the files), timed in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

REPORT = """
import cartforensics as cf
"""
CALL = """
result = cf.write_report({src!r}, {out!r}, progress=False)
"""
DUCKDB = """
import duckdb
con = duckdb.connect()
"""
DUCKDB_CALL = """
result = con.sql("select cart, type, count(*) from (select filename as cart, type from "
                 "read_json({glob!r}, format='newline_delimited', filename=true, "
                 "columns={{'ts': 'BIGINT', 'type': 'VARCHAR', 'payload': 'JSON'}}, "
                 "ignore_errors=true)) group by all").fetchall()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rev", default=None, help="also measure the package as of this revision")
    args = ap.parse_args()
    for line in _common.machine_info():
        print(line)
    ds = _common.ensure_events(args.events, "many")
    print(f"data: {ds.lines:,} lines in {ds.files:,} files, {ds.bytes / 1e6:,.0f} MB")
    rows = []
    out = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        m = _common.measure("report (this tree)", REPORT,
                            CALL.format(src=str(ds.path), out=str(out / "now")), args.repeat,
                            rows=None)
        rows.append(m)
        if args.rev:
            code = _common.use_revision(args.rev)
            try:
                rows.append(_common.measure(
                    f"report ({args.rev})", REPORT,
                    CALL.format(src=str(ds.path), out=str(out / "rev")), args.repeat,
                    rows=None))
            finally:
                _common.CODE_ROOT = _common.REPO_ROOT
                shutil.rmtree(code, ignore_errors=True)
        anchor = _common.measure("DuckDB counts (anchor)", DUCKDB,
                                 DUCKDB_CALL.format(glob=str(ds.path / "*.events.log")),
                                 args.repeat, rows="len(result)")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"\n{'what':28} {'seconds':>9} {'CPU s':>8} {'peak RSS MB':>12} {'x DuckDB':>9}")
    for m in [*rows, anchor]:
        if not m.ok:
            print(f"{m.label:28} FAILED: {m.error}")
            continue
        print(f"{m.label:28} {m.seconds:9.1f} {m.cpu_seconds:8.1f} {m.peak_rss_mb:12,.0f} "
              f"{m.seconds / anchor.seconds:9.1f}")
    now = rows[0]
    if now.ok:
        per_m = now.seconds * 1e6 / ds.lines
        rss_1m = now.peak_rss_mb * 1e6 / ds.lines  # linear: pessimistic (imports are fixed)
        print(f"\nreport: {per_m:.1f} s per 1M events (target <= 10 s: "
              f"{'PASS' if per_m <= 10 else 'MISS'}), peak {now.peak_rss_mb:,.0f} MB, "
              f"{rss_1m:,.0f} MB scaled linearly to 1M (target <= 2,000 MB: "
              f"{'PASS' if rss_1m <= 2000 else 'MISS'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
