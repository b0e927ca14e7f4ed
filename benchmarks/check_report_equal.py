"""Check by hand that the report of a converted dataset equals the report of its logs, on a
generated corpus too large for CI (default 2,000,000 events in 20,000 files).

Run from the repository root (never collected by pytest):

    python benchmarks/check_report_equal.py [--events 2000000] [--keep]

Generates (once; cached under benchmarks/data, git-ignored) the events in the exact bytes
of the seed's Go writer (``_common.ensure_events``, one cart per file), converts them into a
dataset beside the report outputs (a temporary directory), writes the report from the logs
and from the dataset, and compares what tests/jobs/test_scale.py compares on its small
corpus: the headline, every finding (its record and its evidence frame), the metrics, the
counters, ``outcomes.parquet``, every chart's bytes and the HTML and Markdown pages (the
source's name and the generation time aside). Prints each check and the times; exits 1 when
one differs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA_DIR, ensure_events, machine_info  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--keep", action="store_true",
                    help="keep the dataset and both reports (printed) instead of removing them")
    args = ap.parse_args(argv)
    if args.events < 1:
        ap.error("--events must be positive")
    import pandas as pd

    from cartforensics.jobs.convert import convert
    from cartforensics.present.report import write_report

    print("\n".join(machine_info()))
    logs = ensure_events(args.events, "many")
    work = Path(tempfile.mkdtemp(prefix="check-report-", dir=DATA_DIR))
    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        print(f"{name}: {times[name]:.1f} s", file=sys.stderr, flush=True)
        return out

    failures: list[str] = []

    def check(name: str, fn: Callable[[], object]) -> None:
        try:
            ok = fn()
        except AssertionError as e:
            ok, name = False, f"{name}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        print(f"  {'ok  ' if ok is not False else 'DIFF'} {name}")
        if ok is False:
            failures.append(name)

    try:
        ds = work / "dataset"
        timed("convert", lambda: convert(logs.path, ds, progress=False))
        a = timed("report from the logs",
                  lambda: write_report(logs.path, work / "from-logs", progress=False))
        b = timed("report from the dataset",
                  lambda: write_report(ds, work / "from-dataset", progress=False))
        print(f"\n== {logs.lines:,} events in {logs.files:,} files: report of the dataset "
              "vs report of the logs")
        check("headline", lambda: a.headline == b.headline)
        check("findings: same count", lambda: len(a.findings) == len(b.findings))
        for k, (fa, fb) in enumerate(zip(a.findings, b.findings, strict=False)):
            check(f"finding {k} ({fa.kind}): record", lambda fa=fa, fb=fb:
                  fa.to_dict() == fb.to_dict())
            check(f"finding {k} ({fa.kind}): evidence", lambda fa=fa, fb=fb:
                  pd.testing.assert_frame_equal(fa.evidence, fb.evidence))
        check("metrics", lambda: pd.testing.assert_frame_equal(a.metrics, b.metrics))
        for k in ("lines", "carts", "applied_go", "applied_lenient", "lost", "carts_losing"):
            check(f"counter {k}", lambda k=k: getattr(a, k) == getattr(b, k))
        check("outcomes.parquet", lambda: pd.testing.assert_frame_equal(
            pd.read_parquet(a.parquet), pd.read_parquet(b.parquet)))
        for name, path in a.charts.items():
            check(f"chart {name}", lambda name=name, path=path:
                  path.read_bytes() == b.charts[name].read_bytes())

        def page(p: Path) -> str:
            text = p.read_text(encoding="utf-8").replace(str(ds), "SRC").replace(
                str(logs.path), "SRC")
            return re.sub(r"generated [^<]* by", "", text)

        check("HTML page", lambda: page(a.html) == page(b.html))
        check("Markdown page", lambda: page(a.markdown) == page(b.markdown))
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("  times: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    if hasattr(os, "getloadavg"):
        print("  load avg after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"  {'EQUAL' if not failures else f'{len(failures)} DIFFERENCE(S)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
