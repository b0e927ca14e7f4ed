"""How long ``cartforensics.jobs.repair`` takes against the replays it is built on.

    python benchmarks/bench_repair.py                       # 100,000 events (~20,000 carts)
    python benchmarks/bench_repair.py --events 20000 --repeat 3
    python benchmarks/bench_repair.py --visits 20           # long-lived carts: fewer files

A corpus with every incident planted (``cartforensics.jobs.sample.write_sample``, not timed) is
written to a temporary directory. Each measurement is a fresh child process
(``_common.run_child``: the call alone is timed, imports not):

- anchor: ``read_events`` of the corpus, then ``replay`` in go and in lenient mode (what finding
  the damage costs, measured in the same run);
- ``repair(src, out)``: rewrite, write OUT, read it back, replay it in go mode and compare every
  cart's final state with lenient mode on the source.

The ratio repair / anchor is printed; no target is set (repair does the anchor's work, plus a
second read and replay and the state comparison).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import machine_info, measure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--visits", type=int, default=1)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    args = p.parse_args(argv)
    for line in machine_info():
        print(line)
    from cartforensics.jobs.sample import write_sample

    base = Path(tempfile.mkdtemp(prefix="bench-repair-", dir=args.dir))
    try:
        src = base / "src"
        m = write_sample(src, events=args.events, seed=args.seed, visits=args.visits)
        print(f"corpus: {m.carts:,} carts, {m.lines:,} lines, {m.bytes_written / 1e6:,.1f} MB")
        anchor = measure(
            "anchor: read + replay go + lenient",
            "import cartforensics as cf",
            f"ev = cf.read_events({str(src)!r}, progress=False)\n"
            "go = cf.replay(ev, mode='go')\nresult = cf.replay(ev, mode='lenient').outcomes",
            args.repeat)
        out = base / "out"
        rep = measure(
            "repair",
            "import cartforensics as cf, shutil",
            f"shutil.rmtree({str(out)!r}, ignore_errors=True)\n"
            f"result = cf.repair({str(src)!r}, {str(out)!r}, progress=False).carts",
            args.repeat)
        print()
        head = f"{'what':<38} {'seconds':>9} {'CPU s':>8} {'peak RSS MB':>12}"
        print(head)
        print("-" * len(head))
        for x in (anchor, rep):
            if not x.ok:
                print(f"{x.label:<38}  FAILED: {x.error}")
                continue
            print(f"{x.label:<38} {x.seconds:>9.2f} {x.cpu_seconds:>8.2f} {x.peak_rss_mb:>12,.0f}")
        if anchor.ok and rep.ok:
            print(f"\nrepair / anchor: {rep.seconds / anchor.seconds:.2f} (wall), "
                  f"{rep.cpu_seconds / anchor.cpu_seconds:.2f} (CPU)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
