"""Benchmark ``cartforensics.read_events`` against pyarrow's and pandas' JSON-lines readers.

Run by hand from the repository root (never collected by pytest):

    python benchmarks/bench_read_events.py [--events 1000000] [--layout single|many|both]
                                           [--keep] [--profile] [--check-go]

Generates a writer-format log (exactly the bytes of the seed's Go ``AppendCartEvent``; see
``_common.py``) and times, each run in a fresh child process so that its peak RSS is its own:

- ``cartforensics.read_events(path)``                       best of ``--repeat`` (3) runs
- ``pyarrow.json.read_json(path)``, the anchor               best of ``--repeat`` (3) runs
- ``pandas.read_json(path, lines=True)``                     1 run (``--skip-pandas``: none)

``--layout many`` spreads the same events over one file per cart (N/100 files) in a directory:
read_events gets the directory; pyarrow and pandas read every file and concatenate.
See benchmarks/README.md for what the columns and targets mean.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402  (this folder is not a package)
from _common import (  # noqa: E402
    DEFAULT_SEED,
    Dataset,
    Measurement,
    Ratio,
    check_with_go,
    dataset_root,
    ensure_events,
    machine_info,
    measure,
    print_table,
    run_child,
)

# Targets (from the issue): read_events at least as fast as pyarrow's C++ reader, at least 4x
# faster than pandas, and at most 1.5x pyarrow's peak RSS.
TARGET_VS_PYARROW = "<= 1.0"
TARGET_PANDAS_VS_US = ">= 4"
TARGET_RSS_VS_PYARROW = "<= 1.5"

_FILES = """
import glob, os
files = sorted(glob.glob(os.path.join({path!r}, "*.events.log")))
"""


def _snippets(ds: Dataset) -> dict[str, tuple[str, str]]:
    """label → (setup, timed statement binding ``result``) for the dataset's layout."""
    p = str(ds.path)
    re_setup = "from cartforensics import read_events"
    pa_setup = ("import pyarrow as pa, pyarrow.json as pj, _common\n"
                "OPTS = _common.anchor_parse_options()")
    pd_setup = "import pandas as pd"
    if ds.layout == "single":
        return {
            "cartforensics.read_events": (re_setup, f"result = read_events({p!r})"),
            "pyarrow.json.read_json (anchor)": (
                pa_setup, f"result = pj.read_json({p!r}, parse_options=OPTS)"),
            "pandas.read_json(lines=True)": (
                pd_setup, f"result = pd.read_json({p!r}, lines=True)"),
            # the same read on one thread: how much the scan's and copies' threads give
            "cartforensics.read_events (1 thread)": (
                re_setup + "\nimport cartforensics.go.writer_shape as F\nF.THREADS = 1",
                f"result = read_events({p!r})"),
        }
    files = _FILES.format(path=p)
    return {
        "cartforensics.read_events": (re_setup, f"result = read_events({p!r})"),
        "pyarrow.json.read_json (anchor)": (
            pa_setup,
            files + "result = pa.concat_tables("
                    "[pj.read_json(f, parse_options=OPTS) for f in files])"),
        "pandas.read_json(lines=True)": (
            pd_setup,
            files + "result = pd.concat("
                    "[pd.read_json(f, lines=True) for f in files], ignore_index=True)"),
    }


def _pyarrow_default(ds: Dataset) -> str:
    """What plain ``pyarrow.json.read_json(path)`` (inferred types) does on this log."""
    first = str(ds.path) if ds.layout == "single" else None
    stmt = (f"result = pj.read_json({first!r})" if first else
            _FILES.format(path=str(ds.path))
            + "result = pa.concat_tables([pj.read_json(f) for f in files], "
              "promote_options='permissive')")
    r = run_child("import pyarrow as pa, pyarrow.json as pj", stmt)
    if r.error is None:
        return f"reads it in {r.seconds:.3f} s"
    return f"FAILS: {r.error}"


def run_layout(ds: Dataset, repeat: int, skip_pandas: bool) -> None:
    snippets = _snippets(ds)
    print(f"\n[{ds.layout}] timing ({ds.lines:,} lines) ...", file=sys.stderr, flush=True)
    rows: list[Measurement] = []
    for label, (setup, stmt) in snippets.items():
        if label.startswith("pandas"):
            if skip_pandas:
                continue
            rows.append(measure(label, setup, stmt, 1))
        else:
            rows.append(measure(label, setup, stmt, repeat))
    by_label = {m.label: m for m in rows}
    ours, anchor = rows[0], rows[1]
    pandas = by_label.get("pandas.read_json(lines=True)")
    one_thread = by_label.get("cartforensics.read_events (1 thread)")
    nan = float("nan")
    ratios = [
        Ratio("read_events time / pyarrow time", ours.seconds / anchor.seconds,
              TARGET_VS_PYARROW),
        *([Ratio("read_events (1 thread) / pyarrow time", one_thread.seconds / anchor.seconds,
                 TARGET_VS_PYARROW)] if one_thread is not None else []),
        Ratio("pandas time / read_events time",
              pandas.seconds / ours.seconds if pandas else nan, TARGET_PANDAS_VS_US),
        Ratio("read_events RSS / pyarrow RSS",
              ours.peak_rss_mb / anchor.peak_rss_mb if ours.ok and anchor.ok else nan,
              TARGET_RSS_VS_PYARROW),
    ]
    default = _pyarrow_default(ds)
    title = f"== read_events, layout={ds.layout}: {ds.lines:,} events"
    if ds.generated_seconds is not None:
        title += f" (generated in {ds.generated_seconds:.1f} s)"
    else:
        title += " (cached data)"
    print_table(title, ds, rows, ratios)
    cpu = [f"read_events / pyarrow {ours.cpu_seconds / anchor.cpu_seconds:.2f}"]
    if pandas is not None:
        cpu.append(f"pandas / read_events {pandas.cpu_seconds / ours.cpu_seconds:.2f}")
    print(f"  CPU-time ratios (not the targets; less sensitive to load): {', '.join(cpu)}")
    print("  note: the anchor reads with an explicit schema (payload.items and payload.id "
          "ignored);")
    print(f"        plain pyarrow.json.read_json with inferred types {default}")


def run_profile(ds: Dataset, top: int) -> None:
    """read_events under cProfile in a child: top entries by cumulative and by own time; then
    one more run under the line sampler of _common (no per-call overhead)."""
    setup = "import cProfile, pstats\nfrom cartforensics import read_events"
    stmt = f"""
prof = cProfile.Profile()
prof.enable()
result = read_events({str(ds.path)!r})
prof.disable()
st = pstats.Stats(prof)
st.sort_stats("cumulative").print_stats({top})
st.sort_stats("tottime").print_stats({top})
"""
    r = run_child(setup, stmt)
    print(f"\n== cProfile of read_events, layout={ds.layout}: {ds.lines:,} events "
          f"(profiled wall {r.seconds:.3f} s; cProfile inflates per-call costs)")
    print(r.stdout if r.error is None else f"FAILED: {r.error}")
    setup = "import _common\nfrom cartforensics import read_events"
    stmt = f"""
result, samples, rss = _common.sample_lines(read_events, {str(ds.path)!r})
print(_common.format_line_samples(samples, rss, 25))
"""
    r = run_child(setup, stmt)
    print(f"\n== line samples of read_events, layout={ds.layout}: {ds.lines:,} events "
          f"(wall {r.seconds:.3f} s, peak RSS {r.peak_rss_mb:,.0f} MB; 1 ms wall-clock samples, "
          "C calls charged to their line)")
    print(r.stdout if r.error is None else f"FAILED: {r.error}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events (lines) to generate")
    ap.add_argument("--layout", choices=["single", "many", "both"], default="single",
                    help="one file (default), one file per cart of 100 events, or both")
    ap.add_argument("--keep", action="store_true",
                    help="keep the generated data under benchmarks/data/ for the next run "
                         "(default: delete what this run generated)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of read_events and pyarrow (best is reported)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--skip-pandas", action="store_true", help="do not run pandas (slow)")
    ap.add_argument("--profile", action="store_true",
                    help="also print a cProfile of one read_events run")
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--rev", metavar="REV",
                    help="measure cartforensics as of this git revision (a git-archive snapshot) "
                         "instead of the working tree")
    ap.add_argument("--check-go", action="store_true",
                    help="check the first 50,000 generated lines against Go's json.Marshal "
                         "(tests/go/bin/cfdiff marshal)")
    args = ap.parse_args(argv)
    if args.events < 1:
        ap.error("--events must be positive")

    snapshot = _common.use_revision(args.rev) if args.rev else None
    print("\n".join(machine_info(args.rev)))
    fingerprint = _common.code_fingerprint()
    layouts = ["single", "many"] if args.layout == "both" else [args.layout]
    root = dataset_root(args.events, args.seed)
    root_existed = root.exists()
    generated: list[Path] = []
    try:
        for layout in layouts:
            t0 = time.perf_counter()
            ds = ensure_events(args.events, layout, args.seed)
            if ds.generated_seconds is not None:
                generated.append(ds.path if layout == "many" else ds.path.parent)
                print(f"[{layout}] generated {ds.lines:,} lines, {ds.mb:,.1f} MB in "
                      f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            if args.check_go:
                first = ds.path if layout == "single" else next(ds.path.glob("*.events.log"))
                print(f"go check ({first.name}): {check_with_go(first)}")
            run_layout(ds, args.repeat, args.skip_pandas)
            if args.profile:
                run_profile(ds, args.profile_top)
            if _common.code_fingerprint() != fingerprint:
                print("WARNING: cartforensics/ changed during this run: the numbers above mix "
                      "versions (use --rev to pin one)")
    finally:
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
        if not args.keep:
            for path in generated:
                shutil.rmtree(path, ignore_errors=True)
            if not root_existed and root.exists() and not any(root.iterdir()):
                root.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
