"""Benchmark ``cartforensics.model.replay`` (issue 3), run by hand, never by pytest.

    python benchmarks/bench_replay.py [--events 1000000] [--state-at-events 10000]
                                      [--engines compiled,reference]

1. Full replay of N events over N/100 carts whose ts are RFC 3339 strings (so that go mode
   applies them), both modes, each core (``engine=``), from an already loaded DataFrame,
   against the anchor: a bare ``orjson.loads`` loop over the same lines, timed in the same
   run. Target: <= 3x the anchor. Second anchor: the Go service's own replay of the same files
   (``cfdiff replay --quiet``: the seed's reader loop and the handlers, built by the ``go`` on
   PATH, output suppressed), best of 3. Target: <= 1.0x Go.
2. Bytes the replay keeps per line (tracemalloc: what a live Replay holds beyond its events
   frame) on the first ``--memory-events`` lines. Target: <= 200 B/line.
3. ``state_at`` on a cart of 10,000 events after the first replay: by line and by time.
   Target: <= 5 ms.
4. Skip a line on that cart, both modes, each core: ``Replay.without`` (what the scrubber's
   skip now calls: only the lines from the skipped one on are replayed, from the kept state
   before it) with the outcomes and changed flags the scrubber reads, at random positions,
   near the start (first 1%) and near the end (last 1%), median and p95; next to it, in the
   same run, what the scrubber did before (the events without the line replayed whole, then
   its history), and the scrubber's own ``toggle_skip`` (both modes) end to end.
   Target: <= 50 ms. ``--only skip`` runs this part alone.
5. Threads: the corpus split in two halves by cart, replayed one after the other and then in
   two threads at once (the compiled core releases the GIL over a cart's lines): the
   speed-up says how much of the replay runs without the GIL (2 cores: at most 2x).
6. ``--profile``: where the compiled replay's time goes (CPU seconds per section: the
   Arrow buffers, row kinds, the scanner alone, the C loop, the outcomes frame).

The data is the writer's own sessions from ``_common.generate_carts`` with each numeric ts
rewritten as Go's time.Time JSON (RFC 3339, UTC), i.e. the logs after the fix deploy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common  # noqa: E402

_TS = re.compile(rb'^\{"ts":(\d+),', re.M)


def _rfc3339(match: re.Match[bytes]) -> bytes:
    sec = int(match.group(1))
    text = dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return b'{"ts":"' + text.encode() + b'",'


def ensure_rfc3339(n_events: int, seed: int) -> Path:
    """One file per cart, ts as RFC 3339 strings; cached under benchmarks/data/."""
    root = _common.DATA_DIR / f"replay-n{n_events}-seed{seed}-v{_common.GENERATOR_VERSION}"
    done = root / ".complete"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    for cid, data in _common.generate_carts(n_events, seed):
        (root / f"{cid}.events.log").write_bytes(_TS.sub(_rfc3339, data))
    done.write_text("ok")
    return root


def one_long_cart(n_events: int, seed: int) -> Path:
    """One cart of ``n_events`` lines (the sessions of several carts joined, ts rewritten so
    they keep increasing), for state_at."""
    root = _common.DATA_DIR / f"longcart-n{n_events}-seed{seed}"
    path = root / "long.events.log"
    if path.exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    chunks = [data for _cid, data in _common.generate_carts(n_events, seed)]
    path.write_bytes(_TS.sub(_rfc3339, b"".join(chunks)))
    return path


def go_replay_seconds(root: Path, mode: str, repeat: int = 3) -> float | None:
    """The Go anchor: cfdiff's replay of every file in ``root`` with no output, best of
    ``repeat`` runs (its own timer: process start and argument parsing left out); None
    without a Go toolchain."""
    import json
    import os
    import shutil
    import subprocess

    go = shutil.which("go")
    if go is None:
        return None
    binary = _common.DATA_DIR / "cfdiff-bench"
    src = Path(__file__).resolve().parents[1] / "tests" / "go" / "cfdiff"
    env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local")
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=src, check=True, env=env)
    files = sorted(str(p) for p in root.glob("*.events.log"))
    times = []
    for _ in range(repeat):
        out = subprocess.run([str(binary), "replay", "--quiet", "--mode", mode, *files],
                             check=True, capture_output=True, text=True).stdout
        times.append(json.loads(out)["seconds"])
    return min(times)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _halves(events):
    """The events split in two by cart (each with its own files list), for the threads run."""
    ids = events["cart_id"].astype(str)
    carts = sorted(set(ids))
    first = set(carts[: len(carts) // 2])
    mask = ids.isin(first).to_numpy()
    out = []
    for m, want in ((mask, True), (~mask, False)):
        part = events[m].reset_index(drop=True)
        part.attrs = {**events.attrs, "files": [f for f in events.attrs.get("files", [])
                                                if (f["cart_id"] in first) == want]}
        out.append(part)
    return out


def threads_speedup(events, repeat: int = 3) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import cartforensics as cf

    parts = _halves(events)

    def sequential() -> None:
        for p in parts:
            cf.replay(p, engine="compiled")

    def threaded() -> None:
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda p: cf.replay(p, engine="compiled"), parts))

    t_seq = best(sequential, repeat)
    t_thr = best(threaded, repeat)
    print(f"\nthreads: two halves of the corpus (compiled, go): one after the other "
          f"{t_seq:.2f} s, in two threads {t_thr:.2f} s: speed-up {t_seq / t_thr:.2f}x "
          "(2 cores: at most 2x)")


def profile(events) -> None:
    """CPU seconds of each part of a compiled replay, measured part by part."""
    import importlib

    import numpy as np
    import pandas as pd

    import cartforensics as cf
    from cartforensics.model.engine import core

    rp = importlib.import_module("cartforensics.model.replay")
    eng = importlib.import_module("cartforensics.model.engine")
    clock = time.process_time

    def cpu(fn, repeat: int = 3):
        times, out = [], None
        for _ in range(repeat):
            t0 = clock()
            out = fn()
            times.append(clock() - t0)
        return min(times), out

    plain = rp._without_attrs(events)
    n = len(plain)
    rows = []
    t, bufs = cpu(lambda: eng._utf8_buffers(plain["payload"]))
    rows.append(("payload Arrow buffers", t))
    t, kinds = cpu(lambda: eng._row_kinds(plain["type"], cf.default_registry()))
    rows.append(("row kinds (per distinct type)", t))
    t, has_error = cpu(lambda: eng._is_text(plain["envelope_error"]))
    rows.append(("envelope error flags (per category)", t))
    t, _ = cpu(lambda: rp._ts_ns(plain["ts"]))
    rows.append(("ts as ns", t))

    def order():
        codes, uniques = pd.factorize(plain["cart_id"])
        o = np.ascontiguousarray(np.argsort(codes, kind="stable"), dtype=np.int64)
        return o, np.r_[0, np.cumsum(np.bincount(codes))].tolist(), uniques

    t, (o, bounds, uniques) = cpu(order)
    rows.append(("carts: factorize, order", t))
    t_scan, _ = cpu(lambda: core.scan_only(bufs, kinds))
    lines = np.ascontiguousarray(plain["line"].to_numpy(), dtype=np.int64)

    def loop():
        pool = core.Pool(None)
        rp_ = core.Replayer(bufs, kinds, has_error, np.zeros(n, np.uint8), lines,
                            cf.default_registry(), pool, np.zeros(n, np.int8),
                            np.zeros(n, np.int64), np.full(n, -1, np.int64),
                            np.zeros(n, np.uint8), rp.CHECKPOINT_EVERY)
        for i in range(len(uniques)):
            rp_.run(uniques[i], o[bounds[i] : bounds[i + 1]])
        return rp_.slow_decodes

    t, slow = cpu(loop)
    rows.append(("the C loop, GIL released (scan + handlers + checkpoints)", t))
    rows.append(("  of which the scanner alone over every payload", -t_scan))
    r = cf.replay(events, engine="compiled")
    t, _ = cpu(lambda: r._outcomes_frame())  # the frame as r.outcomes builds it on first use
    rows.append(("outcomes frame (cart_id, error from codes)", t))
    t_all, _ = cpu(lambda: cf.replay(events, engine="compiled"))
    print(f"\nprofile (CPU s, best of 3, go mode; {slow:,} of {n:,} payloads needed the "
          "reference decoder):")
    for label, t in rows:
        print(f"  {label:58} {abs(t):7.3f}")
    print(f"  {'sum of the parts':58} {sum(t for _, t in rows if t > 0):7.3f}")
    print(f"  {'replay() as a whole':58} {t_all:7.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--state-at-events", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each replay (best reported)")
    ap.add_argument("--seed", type=int, default=_common.DEFAULT_SEED)
    ap.add_argument("--engines", default="compiled,reference",
                    help="comma-separated cores to time (compiled, reference)")
    ap.add_argument("--memory-events", type=int, default=100_000)
    ap.add_argument("--profile", action="store_true",
                    help="also print where the compiled replay's time goes")
    ap.add_argument("--only", choices=["all", "skip"], default="all",
                    help="skip: only the skip-a-line measurement (no full replays)")
    ap.add_argument("--skip-samples", type=int, default=30,
                    help="positions timed per kind of skip (random, near start, near end)")
    args = ap.parse_args()

    import orjson

    import cartforensics as cf

    for line in _common.machine_info():
        print(line)
    print(cf.engine_info())
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.only == "skip":
        path = one_long_cart(args.state_at_events, args.seed)
        for engine in engines:
            r = cf.replay(path, engine=engine)
            skip_a_line(r, r.cart_ids[0], [engine], args.skip_samples)
        return 0
    root = ensure_rfc3339(args.events, args.seed)
    t0 = time.perf_counter()
    events = cf.read_events(root, progress=False)
    print(f"data: {len(events):,} lines in {events['cart_id'].nunique():,} carts "
          f"(read_events {time.perf_counter() - t0:.1f} s, not part of the timings)")
    lines = [bytes(x) for x in events["raw"]]

    def anchor() -> None:
        loads = orjson.loads
        for line in lines:
            loads(line)

    t_anchor = best(anchor, 3)
    rows = [("orjson.loads loop (anchor)", t_anchor)]
    for engine in engines:
        for mode in ("go", "lenient"):
            t = best(lambda mode=mode, engine=engine: cf.replay(events, mode=mode,
                                                                engine=engine), args.repeat)
            rows.append((f"replay {engine} mode={mode}", t))
    print(f"\n{'what':32} {'seconds':>9} {'lines/s':>12} {'x anchor':>9}")
    for label, t in rows:
        print(f"{label:32} {t:9.2f} {len(lines) / t:12,.0f} {t / t_anchor:9.1f}")
    for label, t in rows[1:]:
        ratio = t / t_anchor
        verdict = "PASS" if ratio <= 3 else "MISS"
        print(f"  {label} / anchor = {ratio:.1f}   target <= 3   {verdict}")
    t_go = {mode: go_replay_seconds(root, mode) for mode in ("go", "lenient")}
    if t_go["go"] is None:
        print("  (no go on PATH: the Go anchor is not measured)")
    else:
        for mode in ("go", "lenient"):
            print(f"Go service's replay (cfdiff --quiet) mode={mode:8} {t_go[mode]:9.2f} s "
                  f"{len(lines) / t_go[mode]:12,.0f} lines/s")
        for label, t in rows[1:]:
            mode = label.rsplit("=", 1)[1]
            ratio = t / t_go[mode]  # type: ignore[operator]
            verdict = "PASS" if ratio <= 1.0 else "MISS"
            print(f"  {label} / Go = {ratio:.2f}   target <= 1.0   {verdict}")

    if "compiled" in engines:
        threads_speedup(events)
        if args.profile:
            profile(events)

    import gc
    import tracemalloc

    sub = events.iloc[: args.memory_events].reset_index(drop=True)
    sub.attrs = events.attrs
    print(f"\nbytes kept per line (tracemalloc, first {len(sub):,} lines, mode=go):")
    for engine in engines:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = cf.replay(sub, mode="go", engine=engine)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per_line = (after - before) / len(sub)
        verdict = "PASS" if per_line <= 200 else "MISS"
        print(f"  {engine:10} {per_line:8.0f} B/line   target <= 200  {verdict}")
        del kept

    path = one_long_cart(args.state_at_events, args.seed)
    r = cf.replay(path)
    cid = r.cart_ids[0]
    n = len(r.history(cid))
    import random

    rng = random.Random(1)
    ts = r.outcomes["ts"].dropna()
    by_line, by_time = [], []
    for _ in range(200):
        k = rng.randint(1, n)
        t0 = time.perf_counter()
        r.state_at(cid, line=k)
        by_line.append(time.perf_counter() - t0)
        when = ts.iloc[rng.randrange(len(ts))]
        t0 = time.perf_counter()
        r.state_at(cid, ts=when)
        by_time.append(time.perf_counter() - t0)
    print(f"\nstate_at on one cart of {n:,} lines (200 random points each):")
    for label, xs in (("line=", by_line), ("ts=", by_time)):
        med = statistics.median(xs) * 1000
        p95 = sorted(xs)[int(len(xs) * 0.95)] * 1000
        verdict = "PASS" if p95 <= 5 else "MISS"
        print(f"  state_at({label}) median {med:.2f} ms, p95 {p95:.2f} ms   target <= 5 ms  "
              f"{verdict}")

    skip_a_line(r, cid, engines, args.skip_samples)
    return 0


def _ms(xs: list[float]) -> str:
    med = statistics.median(xs) * 1000
    p95 = sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.95))] * 1000
    verdict = "PASS" if p95 <= 50 else ("MISS (median PASS)" if med <= 50 else "MISS")
    return f"median {med:7.1f} ms, p95 {p95:7.1f} ms   target <= 50 ms  {verdict}"


def skip_a_line(r, cid: str, engines: list[str], samples: int) -> None:
    """Skip-a-line latency on one long cart (see the module docstring, item 4)."""
    import random

    import numpy as np

    import cartforensics as cf
    from cartforensics.present.widgets import TimelineScrubber

    n = len(r.rows_of(cid))
    rng = random.Random(2)
    edge = max(1, n // 100)
    where = {
        "random": [rng.randint(1, n) for _ in range(samples)],
        "near start": [rng.randint(1, edge) for _ in range(samples)],
        "near end": [rng.randint(n - edge + 1, n) for _ in range(samples)],
    }
    print(f"\nskip a line on one cart of {n:,} lines ({samples} positions each; near = the "
          f"first/last {edge:,} lines):")
    for engine in engines:
        for mode in ("go", "lenient"):
            rp = r if (r.mode == mode and r.engine == engine) else cf.replay(
                r.events, mode=mode, engine=engine)
            for label, positions in where.items():
                times = []
                for k in positions:
                    t0 = time.perf_counter()
                    w = rp.without(cid, [k])
                    w.outcome_codes(cid)
                    w.errors(cid)
                    w.changed(cid)
                    times.append(time.perf_counter() - t0)
                print(f"  {engine:10} mode={mode:8} without() {label:10} {_ms(times)}")
            rows = np.asarray(rp.rows_of(cid))
            times = []
            for k in where["random"][: max(3, samples // 10)]:
                kept = np.delete(rows, k - 1)
                t0 = time.perf_counter()
                cf.replay(rp.events.iloc[kept], mode=mode, engine=engine).history(cid)
                times.append(time.perf_counter() - t0)
            print(f"  {engine:10} mode={mode:8} before: replay without + history (random) "
                  f"{_ms(times)}")
    if "compiled" in engines:
        go = r if r.engine == "compiled" and r.mode == "go" else cf.replay(r.events)
        s = TimelineScrubber(go, cid)
        for label, positions in where.items():
            times = []
            for k in positions[: max(3, samples // 3)]:
                t0 = time.perf_counter()
                s.toggle_skip(k)
                times.append(time.perf_counter() - t0)
                s.reset_skips()
            print(f"  scrubber.toggle_skip (go + lenient, rendered) {label:10} {_ms(times)}")


if __name__ == "__main__":
    raise SystemExit(main())
