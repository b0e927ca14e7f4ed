"""The report in chunks (cartforensics.present.report_chunks): cutting the carts into chunks of
any size
changes nothing. Findings that could cross a chunk's edge (the "other" groups of unknown
types and payload fields, duplicates and clock steps within a cart split over .log and
.log.gz, examples one per cart, evidence in row order), the metrics, the per-cart table, the
charts' inputs and every row of outcomes.parquet must be the same with chunks of three files
as with one chunk, from logs and from a converted dataset, in this process and on a pool."""

from __future__ import annotations

import gzip
import importlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cartforensics as cf
from cartforensics.analysis.findings import EVIDENCE_KEPT, findings
from cartforensics.jobs.sample import write_sample
from cartforensics.present.report import EVIDENCE_ROWS, write_report
from cartforensics.present.report_chunks import (
    combine,
    plan_dataset,
    plan_logs,
    run_chunks,
    write_outcomes,
)

conv = importlib.import_module("cartforensics.jobs.convert")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def T(s: int) -> str:  # noqa: N802 - an RFC 3339 ts, seconds after 10:00
    return f"2025-10-28T{10 + s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"


def write_hostile(d: Path) -> None:
    """A sample corpus and, spread over it (cart ids sort between the sample's), carts whose
    problems a chunk edge could split or miscount."""
    write_sample(d, carts=60, seed=7)
    add = rec(T(0), "AddItem", {"sku": "h", "quantity": 1, "price": 5})
    # a cart over .log and .log.gz: a duplicate and a clock step across its two files
    (d / "cart-1010.events.log").write_bytes(
        rec(T(50), "AddItem", {"sku": "a", "quantity": 1, "price": 3}) + b"\n" + add + b"\n")
    (d / "cart-1010.events.log.gz").write_bytes(gzip.compress(add + b"\n" + add + b"\n"))
    # unknown types and payload fields: more keys than MAX_GROUPS, in carts far apart
    for k in range(14):
        body = [rec(T(k), f"Mystery{k % 12}", {}) + b"\n",
                rec(T(k + 1), "AddItem", {"sku": "x", "quantity": f"q{k}", "price": 1}) + b"\n",
                rec(T(k + 2), ["SetDelivery", "RemoveItem", "ChangeQuantity", "AddItem",
                               "SetCartRequest", "AddRequest", "SetPickupPoint", "CheckoutCart",
                               "ClearCart", "SetCustomer", "ApplyVoucher", "SetItems",
                               "SetAddress", "AddItem"][k],
                    {"quantity": "many", "id": "x", "items": 3, "sku": 5}) + b"\n",
                rec(k, "AddItem", {"sku": "n", "quantity": 1}) + b"\n"]  # numeric ts
        (d / f"cart-{1003 + 4 * k}x.events.log").write_bytes(b"".join(body))
    (d / "cart-1020y.events.log").write_bytes(b"".join([
        add + b"\r\n",
        b'{"ts":"' + T(1).encode() + b'","type":"AddItem","payload":{"sku":"\xff\xfe",'
        b'"quantity":1}}\n',
        b"\x00\x00nul\x00\n", b"\n", b"   \n",
        add + add + b"\n",  # glued
        add[:25] + b"\n",  # torn
        b'{"ts":"2025-10-28T10:00:0\\u0035Z","type":"AddItem","payload":{"sku":"e",'
        b'"quantity":1,"price":2}}\n',  # escaped ts: the toolchain finding
        rec(T(9), "AddItem", {"sku": "L" * (300 * 1024)}) + b"\n",  # > 256 KiB
        add + b"\n",  # not reached in go mode
        add,  # no final newline
    ]))
    (d / "cart-1030z.events.log.gz").write_bytes(gzip.compress(add + b"\n")[:-6])  # broken
    (d / "cart-1040z.events.log").write_bytes(b"")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("chunks") / "logs"
    write_hostile(d)
    return d


FILES_PER_CHUNK = {"sample": 50, "hostile": 4}  # the sample has 300 files, the hostile 80


@pytest.fixture(scope="module")
def small_chunks(hostile: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each corpus reported in small chunks: (logs, combined, results)."""
    out = {}
    for src, logs in (("sample", SAMPLE), ("hostile", hostile)):
        chunks = plan_logs(logs, chunk_files=FILES_PER_CHUNK[src], chunk_bytes=1)
        assert len(chunks) >= 6
        combined, results = run(chunks, tmp_path_factory.mktemp(f"small-{src}"))
        out[src] = (logs, chunks, combined, results)
    return out


def run(chunks: list[Any], tmp: Path, workers: int = 1) -> tuple[Any, list[Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_chunks(chunks, str(tmp), workers=workers)
    return combine(results, None, results[0].semantics and cf.go.version.semantics(
        results[0].semantics)), results


def same_combined(a: Any, b: Any) -> None:
    assert len(a.findings) == len(b.findings)
    for fa, fb in zip(a.findings, b.findings, strict=True):
        assert fa.to_dict() == fb.to_dict()
        assert fa.examples == fb.examples
        pd.testing.assert_frame_equal(fa.evidence, fb.evidence)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    for name in ("rates", "rates_by_type", "unknown", "per_cart"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    pd.testing.assert_frame_equal(a.lost_table, b.lost_table, obj="lost_table")
    for k in ("lines", "carts", "applied_go", "applied_lenient", "lost", "carts_losing", "freq"):
        assert getattr(a, k) == getattr(b, k), k


@pytest.mark.parametrize("src", ["sample", "hostile"])
def test_small_chunks_equal_one_chunk(src: str, small_chunks: dict[str, Any],
                                      tmp_path: Path) -> None:
    logs, small, a, ra = small_chunks[src]
    whole = plan_logs(logs, chunk_files=10**9, chunk_bytes=1 << 40)
    assert len(whole) == 1
    for c in small:  # a cart is never cut: its .log and .log.gz are in one chunk
        ids = {cf.io.logs.cart_id_of(log.path) for log in c.logs}
        for other in small:
            if other is not c:
                assert not ids & {cf.io.logs.cart_id_of(log.path) for log in other.logs}
    b, rb = run(whole, tmp_path / "b")
    same_combined(a, b)
    from cartforensics.present.report_chunks import write_outcomes

    write_outcomes(ra, tmp_path / "a.parquet")  # (removes the chunks' parts)
    write_outcomes(rb, tmp_path / "b.parquet")
    ta, tb = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(ta, tb)
    # every physical line has an outcome in both modes
    ev = cf.read_events(logs) if src == "sample" else None
    if ev is not None:
        assert len(ta) == 2 * len(ev)
    if src == "hostile":
        kinds = {f.kind for f in a.findings}
        assert {"numeric_ts", "too_long", "unknown_type", "glued", "torn", "no_final_newline",
                "payload_error", "other_malformed", "ts_backwards", "duplicate",
                "file_problem", "toolchain"} <= kinds
        keys = [f.key for f in a.findings if f.kind in ("unknown_type", "payload_error")]
        assert any(str(k).startswith("(") and "other" in str(k) for k in keys)
        dup = next(f for f in a.findings if f.kind == "duplicate")
        assert "cart-1010" in set(dup.evidence["cart_id"])  # across its .log and .log.gz


@pytest.mark.parametrize("src", ["sample", "hostile"])
def test_chunked_findings_equal_findings_of_the_whole_replay(
        src: str, small_chunks: dict[str, Any]) -> None:
    logs, _, a, _ = small_chunks[src]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = cf.read_events(logs)
    want = findings(cf.replay(ev, mode="go"), cf.replay(ev, mode="lenient"))
    assert len(want) == len(a.findings) >= 8
    for fw, fa in zip(want, a.findings, strict=True):
        assert fw.to_dict() == fa.to_dict()
        assert len(fa.evidence) <= max(EVIDENCE_KEPT + 5, len(fw.evidence)) or \
            fw.kind == "file_problem"
        pd.testing.assert_frame_equal(fw.evidence.head(EVIDENCE_ROWS),
                                      fa.evidence.head(EVIDENCE_ROWS), check_dtype=False)


def test_report_pages_equal_on_a_pool_and_in_one_chunk(hostile: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = write_report(hostile, tmp_path / "pool", progress=False, chunk_files=3, workers=2)
        b = write_report(hostile, tmp_path / "one", progress=False, chunk_files=10**9,
                         chunk_bytes=1 << 40, workers=1)

    def page(p: Path) -> str:
        return re.sub(r"generated [^<]* by", "", p.read_text(encoding="utf-8"))

    assert page(a.html) == page(b.html)
    assert page(a.markdown) == page(b.markdown)
    for name, path in a.charts.items():
        assert path.read_bytes() == b.charts[name].read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(a.parquet), pd.read_parquet(b.parquet))
    # ... and they are the rows of the whole replays, stacked (the parts travel as Arrow IPC
    # files, the driver runs a chunk itself: neither changes a row or a type)
    from cartforensics.present.report import outcomes_frame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = cf.read_events(hostile)
    want = outcomes_frame(cf.replay(ev, mode="go"), cf.replay(ev, mode="lenient"))
    got = pq.read_table(a.parquet)
    assert got.schema.types == pq.read_table(b.parquet).schema.types
    assert got.num_rows == len(want) == 2 * a.lines
    pd.testing.assert_frame_equal(got.to_pandas(), pa.Table.from_pandas(
        want, preserve_index=False).cast(got.schema.remove_metadata()).to_pandas())
    assert not [p for p in (tmp_path / "pool").iterdir() if p.name.startswith(".")]
    # log text stays escaped in the page however it was chunked
    assert "<code>{&quot;ts&quot;:&quot;2025-10-28T10:00:0</code>" in a.html.read_text(
        encoding="utf-8")
    # the replays are still there for a notebook, read again on demand
    assert len(a.go.outcomes) == a.lines


def test_dataset_in_small_chunks_equals_one_chunk(hostile: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv, "BATCH_FILES", 7)  # many fragments
    ds = tmp_path / "ds.parquet"
    conv.convert(hostile, ds, workers=1, progress=False)
    small = plan_dataset(ds, chunk_lines=1)
    whole = plan_dataset(ds, chunk_lines=10**9)
    assert len(whole) == 1 and len(small) >= 5
    a, _ = run(small, tmp_path / "a")
    b, _ = run(whole, tmp_path / "b")
    same_combined(a, b)


def test_dataset_plan_from_footers_equals_the_plan_from_the_ids(
        hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan_dataset bounds each fragment's carts by its footer's statistics; where a footer has
    none (written without them), it reads the ids: both plans are the same chunks."""
    import cartforensics.present.report_chunks as rc
    from cartforensics.io.dataset import fragment_cart_spans

    monkeypatch.setattr(conv, "BATCH_FILES", 7)  # many fragments
    ds = tmp_path / "ds.parquet"
    conv.convert(hostile, ds, workers=1, progress=False)
    spans = fragment_cart_spans(ds, "events")
    assert spans and all(span is not None for _, span in spans)
    plans = {"footers": [plan_dataset(ds, chunk_lines=n) for n in (1, 60, 10**9)]}
    monkeypatch.setattr(rc, "fragment_cart_spans",
                        lambda root, part: [(p, None) for p, _ in fragment_cart_spans(root, part)])
    plans["ids"] = [plan_dataset(ds, chunk_lines=n) for n in (1, 60, 10**9)]
    monkeypatch.undo()
    for frag, _ in spans[::2]:  # rewritten without statistics: read by their ids
        pq.write_table(pq.read_table(frag), frag, write_statistics=False)
    assert any(span is None for _, span in fragment_cart_spans(ds, "events"))
    plans["mixed"] = [plan_dataset(ds, chunk_lines=n) for n in (1, 60, 10**9)]

    def shape(plan: list[Any]) -> list[tuple[Any, ...]]:
        return [(c.fragments, c.carts, c.cart_fragments, c.manifest) for c in plan]

    assert len(plans["ids"][0]) >= 5
    for got in (plans["footers"], plans["mixed"]):
        assert [shape(p) for p in got] == [shape(p) for p in plans["ids"]]


def test_cli_report_on_workers_and_bad_workers(hostile: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cartforensics.cli.app import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["report", str(hostile), "--out", str(tmp_path / "r"), "-q",
                     "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith("132 of 378 lines (45 carts) are dropped")
    with pytest.raises(SystemExit) as e:
        main(["report", str(hostile), "--out", str(tmp_path / "r2"), "--workers", "0"])
    assert e.value.code == 2
    assert "cartforensics: " in capsys.readouterr().err
    with pytest.raises(cf.present.report.ReportError, match="workers must be"):
        write_report(hostile, tmp_path / "r3", workers=0)


def test_report_timelines_are_bounded_and_can_be_turned_off(tmp_path):
    """report.html embeds at most ``timelines`` carts' timelines (0: none without notes), and
    the positions they hold together stay within the shared budget."""
    import re

    from cartforensics.present.report import write_report
    from cartforensics.present.report_chunks import TIMELINE_CARTS, position_limits

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    for n in (0, 7, TIMELINE_CARTS + 10):  # more than the default: ranked that deep
        out = tmp_path / f"r{n}"
        write_report(sample, out, progress=False, workers=1, timelines=n)
        html = (out / "report.html").read_text(encoding="utf-8")
        assert len(re.findall(r'<details class="cf-cart"', html)) == n
    with pytest.raises(ValueError, match="timelines must be a number of carts"):
        write_report(sample, tmp_path / "bad", progress=False, workers=1, timelines=-1)
    sizes = {f"c{i}": (i * 37) % 120 + 1 for i in range(150)}
    limits = position_limits(sizes, budget=800, least=5)
    assert sum(v + 1 for v in limits.values()) <= 800 + 5 * len(sizes) // 10
    assert all(v == sizes[c] or v >= 4 for c, v in limits.items())
    assert all(v == sizes[c] for c, v in position_limits(sizes, budget=10**6).items())


def test_timelines_drawn_on_workers_equal_the_ones_drawn_here(hostile: Path) -> None:
    """start_timelines on two worker processes (the carts shared out in two groups) gives
    every timeline the bytes build_timelines draws in this process, and those are the bytes
    of positions shared out over the lines read again (the chunks counted the same lines)."""
    import copy

    from cartforensics.io.sources import resolve_source
    from cartforensics.present.report_chunks import (
        _known_limits,
        _timeline_groups,
        build_timelines,
        start_timelines,
    )

    sem = cf.go.version.semantics(None)
    source = resolve_source(hostile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_chunks(plan_logs(source, chunk_files=7), None, workers=1, timelines=9)
        go = cf.replay(cf.read_events(hostile))
    chosen = combine(results, None, sem, 9).timelines
    assert len(chosen) == 9
    assert [t.lines for t in chosen] == [len(go.rows_of(t.cart_id)) for t in chosen]
    budget = 40  # fewer positions than lines: the sharing out matters
    assert len(_timeline_groups(chosen, _known_limits(chosen, budget), 2)) == 2
    here, there, uncounted = (copy.deepcopy(chosen) for _ in range(3))
    for t in uncounted:
        t.lines = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert build_timelines(here, source, sem, budget=budget) is None
        assert start_timelines(there, source, sem, budget=budget, workers=2)() is None
        assert build_timelines(uncounted, source, sem, budget=budget) is None
    assert all(t.data for t in here)
    assert [t.data for t in there] == [t.data for t in here] == [t.data for t in uncounted]


def test_timelines_of_a_dead_worker_are_drawn_here(hostile: Path) -> None:
    """A worker that dies (the OOM killer) before drawing its group of timelines: the group
    is drawn in this process, with the same bytes; the report does not fail."""
    import copy
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from cartforensics.io.sources import resolve_source
    from cartforensics.present.report_chunks import build_timelines, start_timelines

    sem = cf.go.version.semantics(None)
    source = resolve_source(hostile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_chunks(plan_logs(source), None, workers=1, timelines=5)
    here = combine(results, None, sem, 5).timelines
    there = copy.deepcopy(here)
    ctx = multiprocessing.get_context("forkserver")
    # the workers wait in their initializer, so they are killed before they take a group
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=time.sleep, initargs=(60,)) as ex, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finish = start_timelines(there, source, sem, budget=30, executor=ex)
        procs = list(ex._processes.values())  # type: ignore[attr-defined]
        assert procs
        for proc in procs:
            proc.kill()
        assert finish() is None
        assert build_timelines(here, source, sem, budget=30) is None
    assert all(t.data for t in there)
    assert [t.data for t in there] == [t.data for t in here]


@pytest.mark.parametrize("src", ["sample", "hostile"])
def test_dataset_fleet_aggregates_equal_the_chunks_counts(
        src: str, hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """report DATASET: chunks that give only their findings, combined with the fleet's
    aggregates (fleet_report: DuckDB over the Parquet), equal chunks that count everything
    from the stored replays: every number, table, finding, impact row and timeline ranked."""
    from cartforensics.analysis import fleet
    from cartforensics.analysis.fleet import fleet_report

    monkeypatch.setattr(conv, "BATCH_FILES", 7)  # many fragments
    monkeypatch.setattr(fleet, "_STATES_BATCH", 1)  # the final states read one at a time
    ds = tmp_path / "ds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv.convert(SAMPLE if src == "sample" else hostile, ds, workers=1, progress=False)
    chunks = plan_dataset(ds, chunk_lines=40)
    assert len(chunks) >= 3
    noted = frozenset({"cart-1001", "cart-1299", "cart-1040z", "no-such-cart"})
    sem = cf.go.version.semantics(None)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = run_chunks(chunks, str(tmp_path / "a"), workers=1, noted=noted, timelines=3)
        lean = run_chunks(chunks, str(tmp_path / "b"), workers=1, noted=noted, timelines=3,
                          findings_only=True)
    want = combine(full, None, sem, 3)
    have = combine(lean, None, sem, 3, fleet_report(ds, None, 30), noted)
    same_combined(want, have)
    pd.testing.assert_frame_equal(want.impact, have.impact)
    assert [(t.cart_id, t.named_lines, t.value_missing, t.noted) for t in want.timelines] == \
        [(t.cart_id, t.named_lines, t.value_missing, t.noted) for t in have.timelines]
    assert len(have.timelines) > 3 and any(t.noted for t in have.timelines)
    assert len(have.per_cart) and have.impact["value_missing"].sum() > 0
    # outcomes.parquet from the stored replays' Arrow rows equals the one from their frames
    write_outcomes(full, tmp_path / "a.parquet")
    write_outcomes(lean, tmp_path / "b.parquet")
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.num_rows == 2 * want.lines and a.schema.metadata == b.schema.metadata
    assert a.equals(b)
