"""Benchmark the scale-out paths: convert locally and on a Dask LocalCluster (1 and 2 workers),
then answer the fleet's questions from the dataset (``report DATASET``, ``fleet_summary``)
against DuckDB answering the same counts over the same Parquet files.

Run by hand from the repository root (never collected by pytest):

    python benchmarks/bench_scale.py [--events 100000] [--skip-cluster] [--clean]

The corpus is bench_convert's (the seed's Go writer bytes, 100 events per cart file; cached
under ``benchmarks/data/``). Every measurement runs in a fresh child process; memory is
sampled every 0.1 s over the child and all its descendants (the Dask scheduler's nannies and
worker processes, a pool's workers): the peak of the summed PSS (shared pages split between
the processes) and of the summed RSS (an upper bound). Times exclude starting the cluster
(printed apart). Target (issue 13): ``report DATASET`` peak RSS < 1 GB for 10M events.

- DuckDB anchor: over ``events/*/*.parquet``, lines per go outcome, lines lost (applied in
  lenient mode, not by the service), per-cart line counts, appends and bytes written (lines
  with a newline), the largest ts: what ``fleet_summary`` counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA_DIR, DEFAULT_SEED, machine_info  # noqa: E402
from bench_convert import _MARK, Run, ensure_corpus, run_child  # noqa: E402

TARGET_REPORT_RSS_MB = 1000.0
TARGET_EVENTS = 10_000_000


def _emit(seconds: str, rows: str, output: str = "0.0") -> str:
    return (f"print({_MARK!r} + json.dumps({{'seconds': {seconds}, 'rows': {rows}, "
            f"'output_mb': {output}}}), flush=True)")


def convert_local(logs: Path, out: Path, workers: int) -> str:
    return f"""
    import json, time
    from cartforensics.jobs.convert import convert
    t0 = time.perf_counter()
    s = convert({str(logs)!r}, {str(out)!r}, workers={workers}, progress=False)
    {_emit("time.perf_counter() - t0", "s.lines")}
    """


def convert_cluster(logs: Path, out: Path, workers: int, tmp: Path) -> str:
    return f"""
    import json, sys, time
    if __name__ == "__main__":
        import dask
        from distributed import Client, LocalCluster
        from cartforensics.jobs.convert import convert
        dask.config.set({{"temporary-directory": {str(tmp)!r}}})
        t = time.perf_counter()
        cluster = LocalCluster(n_workers={workers}, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        print(f"cluster of {workers} started in {{time.perf_counter() - t:.1f}} s",
              file=sys.stderr)
        t0 = time.perf_counter()
        s = convert({str(logs)!r}, {str(out)!r}, executor=client.get_executor(),
                    progress=False)
        seconds = time.perf_counter() - t0
        {_emit("seconds", "s.lines")}
        client.close()
        cluster.close()
    """


def report_dataset(ds: Path, out: Path) -> str:
    return f"""
    import json, time
    from cartforensics.present.report import write_report
    t0 = time.perf_counter()
    r = write_report({str(ds)!r}, {str(out)!r}, progress=False)
    {_emit("time.perf_counter() - t0", "r.lines")}
    """


def baseline() -> str:
    return f"""
    import json, time
    t0 = time.perf_counter()
    # what report imports
    import cartforensics.present.report, cartforensics.analysis.fleet, matplotlib.pyplot
    {_emit("time.perf_counter() - t0", "None")}
    """


def fleet(ds: Path) -> str:
    return f"""
    import json, time
    from cartforensics.analysis.fleet import fleet_summary
    t0 = time.perf_counter()
    s = fleet_summary({str(ds)!r}, freq="1h")
    {_emit("time.perf_counter() - t0", "s.lines")}
    """


def duckdb_counts(ds: Path) -> str:
    files = str(ds / "events" / "*" / "*.parquet")
    return f"""
    import json, time, duckdb
    con = duckdb.connect()
    t0 = time.perf_counter()
    src = "read_parquet('{files}', hive_partitioning=true)"
    by_outcome = con.execute(f"select outcome_go, count(*) from {{src}} group by 1").fetchall()
    lost = con.execute(f"select count(*) from {{src}} where outcome_lenient = 'applied' and "
                       "outcome_go <> 'applied'").fetchone()
    carts = con.execute(f"select cart_id, count(*), sum(newline::int), "
                        "sum(case when newline then length + 1 else 0 end), max(ts_ns) "
                        f"from {{src}} group by 1").fetchall()
    seconds = time.perf_counter() - t0
    rows = sum(n for _, n in by_outcome)
    {_emit("seconds", "rows")}
    """


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--skip-cluster", action="store_true", help="no LocalCluster runs")
    ap.add_argument("--clean", action="store_true", help="delete the generated corpus after")
    args = ap.parse_args(argv)
    try:
        import duckdb  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as e:
        ap.error(f"{e.name} is needed: pip install -e '.[bench]'")
    print("\n".join(machine_info()))
    logs, files, lines, size = ensure_corpus(args.events, args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=DATA_DIR))
    runs: list[Run] = []

    def step(label: str, code: str) -> Run:
        print(f"{label} ...", file=sys.stderr, flush=True)
        r = run_child(label, code)
        runs.append(r)
        return r

    try:
        ds = work / "local-2.parquet"
        step("convert, 1 process", convert_local(logs, work / "local-1.parquet", 1))
        step("convert, 2 processes", convert_local(logs, ds, 2))
        if not args.skip_cluster:
            for n in (1, 2):
                step(f"convert, LocalCluster {n} worker{'s' if n > 1 else ''}",
                     convert_cluster(logs, work / f"cluster-{n}.parquet", n, work / "dask"))
        step("baseline: the report's imports", baseline())
        step("report DATASET", report_dataset(ds, work / "report"))
        step("fleet_summary(DATASET)", fleet(ds))
        step("DuckDB: the same counts", duckdb_counts(ds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.clean:
            shutil.rmtree(logs.parent, ignore_errors=True)

    print()
    print(f"== scale-out: {lines:,} events in {files:,} files, {size / 1e6:,.1f} MB ({logs})")
    head = (f"{'':<34} {'seconds':>8} {'lines/s':>10} {'peak RSS MB':>11} "
            f"{'peak PSS MB':>11} {'procs':>5}")
    print(head)
    print("-" * len(head))
    for r in runs:
        if r.error:
            print(f"{r.label:<34} FAILED: {r.error}")
            continue
        print(f"{r.label:<34} {r.seconds:>8.2f} {lines / r.seconds:>10,.0f} "
              f"{r.peak_rss_mb:>11,.0f} {r.peak_pss_mb:>11,.0f} {r.max_procs:>5}")
        if r.rows and r.rows != lines:
            print(f"{'':<34} !! {r.rows:,} rows, expected {lines:,}")
    if hasattr(os, "getloadavg"):
        print("load avg after: {:.2f} {:.2f} {:.2f} (other work on the machine skews the "
              "times)".format(*os.getloadavg()))
    by = {r.label: r for r in runs if not r.error}
    duck = by.get("DuckDB: the same counts")
    for label in ("report DATASET", "fleet_summary(DATASET)"):
        r = by.get(label)
        if r is not None and duck is not None:
            print(f"  {label} time / DuckDB time  {r.seconds / duck.seconds:7.1f}")
    rep, base = by.get("report DATASET"), by.get("baseline: the report's imports")
    if rep is not None and base is not None:
        # the report reads a dataset in chunks of whole carts (~50,000 lines): its memory is
        # a chunk's, not the fleet's, so a small corpus says nothing of 10M events; that is
        # measured, not projected, by bench_report.py --dataset-events 10000000
        verdict = "PASS" if rep.peak_rss_mb < TARGET_REPORT_RSS_MB else "MISS"
        print(f"  report DATASET peak RSS {rep.peak_rss_mb:,.0f} MB (imports alone "
              f"{base.peak_rss_mb:,.0f} MB) at {lines:,} events (target < "
              f"{TARGET_REPORT_RSS_MB:g} MB at {TARGET_EVENTS:,}: {verdict} here; measure "
              f"10M with bench_report.py --dataset-events {TARGET_EVENTS})")
    one, two = by.get("convert, LocalCluster 1 worker"), by.get("convert, LocalCluster 2 workers")
    if one and two:
        print(f"  LocalCluster 2 workers / 1 worker speed-up  {one.seconds / two.seconds:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
