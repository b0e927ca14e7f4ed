"""Benchmark the main job end to end, ``cartforensics report``, run by hand, never by pytest.

    python benchmarks/bench_report.py [--events 1000000] [--rev REV] [--repeat N]
                                      [--dataset-events 10000000] [--skip-logs]
                                      [--timelines N]

From logs: ``write_report`` on N writer-format events (one cart per file, the writer's numeric
ts) in a fresh child process: wall time of the call and the peak of the summed RSS and PSS of
the child's whole process tree (the report's worker processes too), sampled every 0.1 s, and
the CPU seconds of that tree (robust to a loaded machine, which the wall time is not).
Targets (issue 11): 1M events in <= 10 s and <= 2 GB. ``--rev REV`` measures the package as
of a git revision too (``git archive``), in the same run, for a before/after table;
``--repeat N`` runs each N times, interleaved, and shows the best (and every run);
``--timelines N`` passes write_report's ``timelines`` (0: none drawn). The
anchor: DuckDB counting the same lines per cart and type (``read_json`` over the files).

From a dataset (``--dataset-events``, issue 13: ``report DATASET`` under 1 GB for 10M
events): converting 10M events takes most of an hour here, so the dataset is BUILT, not
converted: the first 100,000 events of the corpus (1,000 files) are converted once with
``cartforensics convert``, and that dataset's fragments are copied R times with the carts
renamed (``rNNN-<cart>``, sources ``rNNN/<file>``) into one dataset of R x 100,000 events
with a manifest listing every copy. Every line, outcome and state is a real converted one;
the fleet is 100 copies of the same 1,000 carts. The anchor: DuckDB answering the same counts
(lines per outcome, lines lost, per cart lines, appends, bytes, last ts) over its Parquet.
``--rev REV`` reports from the dataset with the package as of REV too, back to back. Beside
the report: ``fleet_counts`` (the report's counts, rates and metrics, aggregated by DuckDB),
and the anchor's counts computed with pyarrow's compute instead of DuckDB (Dataset scan,
``Table.group_by``): which engine aggregates faster where the data lies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import bench_convert  # noqa: E402
from bench_convert import Run, run_child  # noqa: E402
from bench_scale import _emit  # noqa: E402
from bench_scale import duckdb_counts as duckdb_dataset_code  # noqa: E402 (the same counts)

TARGET_SECONDS_1M = 10.0
TARGET_RSS_1M_MB = 2000.0
TARGET_DATASET_RSS_MB = 1000.0
BASE_EVENTS = 100_000  # converted once, then copied


def report_code(src: Path, out: Path, workers: int | None = None,
                cpu_file: Path | None = None, timelines: int | None = None) -> str:
    """The child's code; with ``cpu_file``, it also writes there the CPU seconds the call
    used in the whole process tree (this process, the workers' server and every worker it
    forked and reaped): on a loaded machine, the figure the wall time cannot give.
    ``timelines``: write_report's (None: its default)."""
    extra = "" if workers is None else f", workers={workers!r}"  # older revisions: no workers=
    extra += "" if timelines is None else f", timelines={timelines!r}"
    return f"""
    import json, time
    import cartforensics as cf
    import psutil

    def tree_cpu():
        total = 0.0
        procs = [psutil.Process()]
        procs += procs[0].children(recursive=True)
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
        return total

    c0 = tree_cpu()
    t0 = time.perf_counter()
    r = cf.write_report({str(src)!r}, {str(out)!r}, progress=False{extra})
    seconds = time.perf_counter() - t0
    if {str(cpu_file) if cpu_file else None!r}:
        time.sleep(0.3)  # the server reaps its last workers
        open({str(cpu_file)!r}, "w").write(json.dumps(tree_cpu() - c0))
    {_emit("seconds", "r.lines")}
    """


def fleet_counts_code(dset: Path) -> str:
    """``fleet_counts`` over the dataset (DuckDB, where the Parquet lies)."""
    return f"""
    import json, time
    from cartforensics.analysis.fleet import fleet_counts
    t0 = time.perf_counter()
    c = fleet_counts({str(dset)!r})
    {_emit("time.perf_counter() - t0", "c.lines")}
    """


def pyarrow_dataset_code(dset: Path) -> str:
    """The anchor's counts (bench_scale.duckdb_counts) with pyarrow's compute: a Dataset
    scan of the columns, then ``Table.group_by``."""
    return f"""
    import glob, json, time
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    t0 = time.perf_counter()
    files = sorted(glob.glob({str(dset / "events" / "*" / "*.parquet")!r}))
    t = ds.dataset(files, format="parquet").to_table(
        columns=["cart_id", "outcome_go", "outcome_lenient", "newline", "length", "ts_ns"])
    by_outcome = t.group_by("outcome_go").aggregate([("outcome_go", "count")])
    lost = pc.sum(pc.and_(pc.equal(t["outcome_lenient"], "applied"),
                          pc.not_equal(t["outcome_go"], "applied"))).as_py()
    t = t.append_column("appends", t["newline"].cast("int64")).append_column(
        "written", pc.if_else(t["newline"], pc.add(t["length"], 1), 0))
    carts = t.group_by("cart_id").aggregate([("cart_id", "count"), ("appends", "sum"),
                                             ("written", "sum"), ("ts_ns", "max")])
    seconds = time.perf_counter() - t0
    rows = sum(by_outcome["outcome_go_count"].to_pylist())
    {_emit("seconds", "rows")}
    """


def duckdb_logs_code(glob: str) -> str:
    return f"""
    import json, time, duckdb
    con = duckdb.connect()
    t0 = time.perf_counter()
    rows = con.sql("select cart, type, count(*) from (select filename as cart, type from "
                   "read_json({glob!r}, format='newline_delimited', filename=true, "
                   "columns={{'ts': 'BIGINT', 'type': 'VARCHAR', 'payload': 'JSON'}}, "
                   "ignore_errors=true)) group by all").fetchall()
    {_emit("time.perf_counter() - t0", "sum(r[2] for r in rows)")}
    """


def build_dataset(logs: Path, n_events: int, work: Path) -> tuple[Path, int]:
    """A dataset of about ``n_events`` lines: BASE_EVENTS converted, then copied (see the
    module's docstring). Cached under benchmarks/data."""
    import importlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    copies = max(1, n_events // BASE_EVENTS)
    dst = _common.DATA_DIR / f"report-dataset-x{copies}-of-{BASE_EVENTS}-v1"
    done = dst / "complete.json"
    if done.exists():
        return dst, json.loads(done.read_text())["lines"]
    base = _common.DATA_DIR / f"report-dataset-base-{BASE_EVENTS}-v1"
    if not (base / "manifest.json").exists():
        files = sorted(logs.glob("*.events.log"))[: BASE_EVENTS // _common.EVENTS_PER_CART]
        src = work / "base-logs"
        src.mkdir(parents=True)
        for f in files:
            (src / f.name).symlink_to(f)
        conv = importlib.import_module("cartforensics.jobs.convert")
        print(f"converting {len(files):,} files into {base} ...", file=sys.stderr, flush=True)
        conv.convert(src, base, workers=2, progress=False)
    manifest = json.loads((base / "manifest.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=_common.DATA_DIR))
    print(f"copying it {copies} times into {dst} ...", file=sys.stderr, flush=True)

    def renamed(t: pa.Table, r: int) -> pa.Table:
        for name, fmt in (("cart_id", f"r{r:03d}-{{}}"), ("source", f"r{r:03d}/{{}}")):
            if name in t.column_names:
                col = pa.array([fmt.format(v) for v in t[name].to_pylist()], pa.string())
                t = t.set_column(t.column_names.index(name), name, col.cast(t[name].type))
        return t

    out_files = []
    for r in range(copies):
        for frag in sorted(base.glob("events/*/*.parquet")):
            t = renamed(pq.read_table(frag), r)
            stem = frag.stem.split("-")  # part-RRRR-BBBBB
            name = f"part-{stem[1]}-{r * 1000 + int(stem[2]):05d}.parquet"
            (tmp / "events" / frag.parent.name).mkdir(parents=True, exist_ok=True)
            pq.write_table(t, tmp / "events" / frag.parent.name / name)
        for frag in sorted(base.glob("carts/*.parquet")):
            t = renamed(pq.read_table(frag), r)
            stem = frag.stem.split("-")
            (tmp / "carts").mkdir(exist_ok=True)
            pq.write_table(t, tmp / "carts" / f"part-{stem[1]}-{r * 1000 + int(stem[2]):05d}"
                           ".parquet")
        for f in manifest["files"]:
            g = dict(f, path=f"r{r:03d}/{f['path']}", cart_id=f"r{r:03d}-{f['cart_id']}")
            g.pop("fragments", None)
            out_files.append(g)
    lines = manifest["lines"] * copies
    (tmp / "manifest.json").write_text(json.dumps(dict(
        manifest, files=out_files, lines=lines,
        source=f"{copies} renamed copies of {base}")))
    (tmp / "complete.json").write_text(json.dumps({"lines": lines, "copies": copies}))
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst, lines


def _row(r: Run, anchor: Run | None) -> str:
    if r.error:
        return f"{r.label:40} FAILED: {r.error}"
    ratio = f"{r.seconds / anchor.seconds:9.1f}" if anchor and not anchor.error else ""
    return (f"{r.label:40} {r.seconds:9.2f} {r.peak_rss_mb:12,.0f} {r.peak_pss_mb:12,.0f} "
            f"{r.max_procs:6} {ratio}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rev", default=None, help="also measure the package as of this revision")
    ap.add_argument("--dataset-events", type=int, default=0,
                    help="also report from a built dataset of this many events (10000000)")
    ap.add_argument("--skip-logs", action="store_true", help="only the dataset measurement")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each report from logs, interleaved with --rev's; the best "
                         "is shown (a loaded machine: 3)")
    ap.add_argument("--dataset-workers", default="default,1",
                    help="worker settings for report DATASET, comma-separated (default,1)")
    ap.add_argument("--timelines", type=int, default=None,
                    help="write_report's timelines= for every report (0: none drawn; "
                         "default: its own)")
    args = ap.parse_args()
    for line in _common.machine_info():
        print(line)
    ds = _common.ensure_events(args.events, "many")
    print(f"data: {ds.lines:,} lines in {ds.files:,} files, {ds.bytes / 1e6:,.0f} MB")
    out = Path(tempfile.mkdtemp(prefix="bench-report-"))
    code = None
    if args.rev:
        code = _common.use_revision(args.rev)  # with its own compiled cores
        _common.CODE_ROOT = _common.REPO_ROOT
    head = (f"\n{'what':40} {'seconds':>9} {'peak RSS MB':>12} {'peak PSS MB':>12} "
            f"{'procs':>6} {'x DuckDB':>9}")
    try:
        if not args.skip_logs:
            variants = [("report LOGS (this tree)", None)] + (
                [(f"report LOGS ({args.rev})", code)] if code else [])
            runs: dict[str, list[tuple[Run, float]]] = {label: [] for label, _ in variants}
            for k in range(args.repeat):  # interleaved: a load that comes and goes hits both
                for label, root in variants:
                    cpu_file = out / f"cpu-{k}.json"
                    # (run_child's root, passed: its default is this tree's, bound once)
                    r = run_child(label, report_code(ds.path, out / f"run-{k}",
                                                     cpu_file=cpu_file,
                                                     timelines=args.timelines),
                                  root or bench_convert.REPO_ROOT)
                    cpu = json.loads(cpu_file.read_text()) if cpu_file.exists() else \
                        float("nan")
                    cpu_file.unlink(missing_ok=True)
                    shutil.rmtree(out / f"run-{k}", ignore_errors=True)
                    runs[label].append((r, cpu))
            anchor = run_child("DuckDB counts (anchor)",
                               duckdb_logs_code(str(ds.path / "*.events.log")))
            print(f"\n== from logs: {ds.lines:,} events in {ds.files:,} files"
                  + (f", best of {args.repeat} runs (interleaved)" if args.repeat > 1 else "")
                  + head + f" {'CPU s':>7}")
            rows = []
            for label, _ in variants:
                ok = [rc for rc in runs[label] if not rc[0].error] or runs[label]
                best, cpu = min(ok, key=lambda rc: rc[0].seconds)
                rows.append(best)
                print(_row(best, anchor) + f" {cpu:7.1f}")
                if args.repeat > 1:
                    print(f"{'':40} all runs: " + ", ".join(
                        f"{r.seconds:.1f} s ({c:.1f} CPU s)" for r, c in runs[label]))
            print(_row(anchor, anchor))
            now = rows[0]
            if not now.error:
                per_m = now.seconds * 1e6 / ds.lines
                print(f"report: {per_m:.1f} s per 1M events (target <= {TARGET_SECONDS_1M:g} s:"
                      f" {'PASS' if per_m <= TARGET_SECONDS_1M else 'MISS'}), peak RSS "
                      f"{now.peak_rss_mb:,.0f} MB summed over {now.max_procs} processes "
                      f"(target <= {TARGET_RSS_1M_MB:,.0f} MB: "
                      f"{'PASS' if now.peak_rss_mb <= TARGET_RSS_1M_MB else 'MISS'})")
        if args.dataset_events:
            work = Path(tempfile.mkdtemp(prefix="bench-report-ds-"))
            try:
                dset, lines = build_dataset(ds.path, args.dataset_events, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            reps = []
            cpus: dict[str, float] = {}
            trees = [("this tree", None)] + ([(args.rev, code)] if code else [])
            for w in args.dataset_workers.split(","):
                n = None if w == "default" else int(w)
                for tree, root in trees:  # back to back: a load that comes and goes hits both
                    label = f"report DATASET ({tree})" + ("" if n is None else f", workers={n}")
                    cpu_file = out / f"cpu-ds-{w}.json"
                    reps.append(run_child(label, report_code(
                        dset, out / f"ds-{w}", n, cpu_file, args.timelines),
                        root or bench_convert.REPO_ROOT))
                    cpus[label] = json.loads(cpu_file.read_text()) if cpu_file.exists() \
                        else float("nan")
                    cpu_file.unlink(missing_ok=True)
                    shutil.rmtree(out / f"ds-{w}", ignore_errors=True)
            reps.append(run_child("fleet_counts (DuckDB, this tree)", fleet_counts_code(dset)))
            reps.append(run_child("the anchor's counts in pyarrow", pyarrow_dataset_code(dset)))
            duck = run_child("DuckDB counts over its Parquet", duckdb_dataset_code(dset))
            print(f"\n== from a dataset: {lines:,} events ({dset.name}: built by copying a "
                  f"converted {BASE_EVENTS:,}-event dataset)"
                  + ("" if args.timelines is None else f", timelines={args.timelines}")
                  + head + f" {'CPU s':>7}")
            for r in (*reps, duck):
                print(_row(r, duck) + (f" {cpus[r.label]:7.1f}" if r.label in cpus else ""))
            for rep in reps:
                if not rep.error and rep.label.startswith("report"):
                    print(f"{rep.label}: peak RSS {rep.peak_rss_mb:,.0f} MB summed over "
                          f"{rep.max_procs} processes, PSS {rep.peak_pss_mb:,.0f} MB (target < "
                          f"{TARGET_DATASET_RSS_MB:,.0f} MB: "
                          f"{'PASS' if rep.peak_rss_mb < TARGET_DATASET_RSS_MB else 'MISS'})")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if code is not None:
            shutil.rmtree(code, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
