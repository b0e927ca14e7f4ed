"""How fast ``cartforensics.jobs.sample`` writes a corpus, and how much memory it needs.

    python benchmarks/bench_sample.py                          # 1,000,000 events, two layouts
    python benchmarks/bench_sample.py --events 200000 --repeat 3
    python benchmarks/bench_sample.py --dir /dev/shm           # without the disk's file costs

Each run is a fresh child process (``_common.run_child``: the write alone is timed, imports not;
peak RSS is the child's own) writing ``--events`` lines into a new directory under ``--dir``
(deleted afterwards unless ``--keep``). Two shapes of the same number of events:

- ``visits=1``: realistic carts (one session each, about 5 lines): ~200,000 files per 1M events;
  on a slow disk the file creation, not the generator, sets the time.
- ``visits=20``: long-lived carts (about 58 lines each): ~17,000 files per 1M events.

"Well under a minute for 1,000,000 events" is the target (issue 4).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import Ratio, machine_info, measure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--visits", type=int, action="append",
                   help="visits per cart (repeat; default: 1 and 20)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep what was written")
    args = p.parse_args(argv)
    visits = args.visits or [1, 20]

    for line in machine_info():
        print(line)
    rows = []
    for v in visits:
        base = Path(tempfile.mkdtemp(prefix=f"bench-sample-v{v}-", dir=args.dir))
        out = base / "logs"
        setup = "from cartforensics.jobs.sample import write_sample\nimport shutil, pathlib"
        stmt = (f"shutil.rmtree({str(out)!r}, ignore_errors=True)\n"
                f"result = write_sample({str(out)!r}, events={args.events}, seed={args.seed}, "
                f"visits={v})")
        m = measure(f"write_sample visits={v}", setup, stmt, args.repeat,
                    rows="result.lines")
        files = sum(1 for _ in out.glob("*.events.log")) if out.exists() else 0
        size = sum(f.stat().st_size for f in out.glob("*.events.log")) if out.exists() else 0
        rows.append((v, m, files, size, base))
    print()
    head = (f"{'writer':<26} {'lines':>11} {'files':>9} {'MB':>8} {'seconds':>9} {'CPU s':>7} "
            f"{'lines/s':>11} {'peak RSS MB':>12} {'of it, call':>12}")
    print(head)
    print("-" * len(head))
    ratios = []
    for v, m, files, size, base in rows:
        if not m.ok:
            print(f"{m.label:<26}  FAILED: {m.error}")
            continue
        rate = (m.rows or 0) / m.seconds
        print(f"{m.label:<26} {m.rows or 0:>11,} {files:>9,} {size / 1e6:>8,.1f} "
              f"{m.seconds:>9.2f} {m.cpu_seconds:>7.2f} {rate:>11,.0f} {m.peak_rss_mb:>12,.0f} "
              f"{m.call_rss_mb:>12,.0f}")
        ratios.append(Ratio(f"seconds per 1M lines, visits={v} (target < 60)",
                            m.seconds * 1e6 / max(m.rows or 1, 1) / 60, "<= 1.0"))
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"  kept: {base}")
    print()
    for r in ratios:
        print(f"{r.name}: {r.value * 60:.1f} s  {r.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
