"""Findings on crafted logs whose every problem is planted by hand: each count is checked
against the number planted, each finding against the lines that prove it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics import read_events, replay
from cartforensics.analysis.findings import (
    KINDS,
    Finding,
    findings,
    findings_table,
    headline,
    headline_finding,
    line_shape,
    payload_field,
)
from cartforensics.analysis.findings import headline as findings_headline

T0 = 1740823200  # 2025-03-01T10:00:00Z


def iso(unix: int) -> str:
    return pd.Timestamp(unix, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def S(minutes: int) -> str:  # noqa: N802 - a string ts, T0 + minutes
    return iso(T0 + 60 * minutes)


def N(minutes: int) -> int:  # noqa: N802 - a numeric ts, T0 + minutes
    return T0 + 60 * minutes


# The "mix" cart, line by line: (bytes, go outcome, lenient outcome). Line 18 has no newline.
MIX: list[tuple[bytes, str, str]] = [
    (rec(S(0), "AddItem", {"sku": "a", "quantity": 1, "price": 100}), "applied", "applied"),
    (rec(N(1), "AddItem", {"sku": "b", "quantity": 1, "price": 200}), "malformed", "applied"),
    (rec(S(2), "AddVoucher", {"code": "X"}), "unknown_type", "unknown_type"),
    (rec(N(3), "AddVoucher", {"code": "Y"}), "malformed", "unknown_type"),
    # item 2 exists only when line 2 is read: a cascade in go mode
    (rec(S(4), "ChangeQuantity", {"Id": 2, "quantity": 3}), "apply_error", "applied"),
    (rec(S(5), "RemoveItem", {"Id": 9}), "apply_error", "apply_error"),
    (rec(S(6), "AddItem", {"sku": "c", "quantity": "x"}), "payload_error", "payload_error"),
    (rec(N(7), "AddItem", {"sku": "d", "quantity": "y"}), "malformed", "payload_error"),
    (rec(S(8), "SetCartRequest", {"items": [{"sku": "e", "quantity": 1.5}]}),
     "payload_error", "payload_error"),
    # glued: two records on one line
    (rec(S(9), "ChangeQuantity", {"Id": 1, "quantity": 2})
     + rec(S(9), "ChangeQuantity", {"Id": 1, "quantity": 4}), "malformed", "malformed"),
    # torn: cut off, then a fragment starting mid-record
    (rec(S(10), "AddItem", {"sku": "f", "quantity": 1})[:40], "malformed", "malformed"),
    (b'ype":"AddItem","payload":{"sku":"z","quantity":1}}', "malformed", "malformed"),
    (b"", "malformed", "malformed"),  # blank
    (rec("yesterday", "AddItem", {"sku": "g", "quantity": 1}), "malformed", "malformed"),
    # line 15 repeats line 1 byte for byte; line 16 repeats line 15 (consecutive)
    (rec(S(0), "AddItem", {"sku": "a", "quantity": 1, "price": 100}), "applied", "applied"),
    (rec(S(0), "AddItem", {"sku": "a", "quantity": 1, "price": 100}), "applied", "applied"),
    # an hour before the line before it
    (rec(S(-60), "OrderCreated", {"orderId": "o1", "status": "ok"}), "applied", "applied"),
    (rec(S(20), "InitializeCheckout",
         {"orderId": "o1", "status": "s", "paymentInProgress": True}), "applied", "applied"),
]
MIX_NO_TS = [10, 11, 12, 13, 14]  # glued, torn, torn, blank, "yesterday"
NUM = [rec(N(-1440 + i), "AddItem", {"sku": f"n{i}", "quantity": 1}) for i in range(5)]
LONG = [
    rec(S(30), "AddItem", {"sku": "L1", "quantity": 1, "price": 10}),
    rec(S(31), "AddItem", {"sku": "L2", "quantity": 1, "name": "x" * 300_000}),
    rec(S(32), "ChangeQuantity", {"Id": 1, "quantity": 2}),
    rec(S(33), "OrderCreated", {"orderId": "o2", "status": "ok"}),
]


def write_corpus(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "num.events.log").write_bytes(b"".join(x + b"\n" for x in NUM))
    (d / "mix.events.log").write_bytes(b"\n".join(x for x, _, _ in MIX))
    (d / "long.events.log").write_bytes(b"".join(x + b"\n" for x in LONG))
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = write_corpus(tmp_path_factory.mktemp("findings") / "logs")
    ev = read_events(d)
    go, le = replay(ev, mode="go"), replay(ev, mode="lenient")
    fs = findings(go, le)
    return {"dir": d, "events": ev, "go": go, "lenient": le, "findings": fs}


def by_kind(fs: list[Finding], kind: str) -> list[Finding]:
    return [f for f in fs if f.kind == kind]


def one(fs: list[Finding], kind: str, key: str | None = None) -> Finding:
    hits = [f for f in by_kind(fs, kind) if key is None or f.key == key]
    assert len(hits) == 1, (kind, key, [(f.kind, f.key) for f in fs])
    return hits[0]


def lines_of(f: Finding) -> set[tuple[str, int]]:
    return set(zip(f.evidence["cart_id"], f.evidence["line"].astype(int), strict=True))


def mix_lines(pred: Any) -> set[tuple[str, int]]:
    return {("mix", i + 1) for i, row in enumerate(MIX) if pred(i + 1, *row)}


# ---------------------------------------------------------------------------------------------


def test_the_fixture_replays_as_planted(corpus: dict[str, Any]) -> None:
    """The planted outcomes hold, so the counts below are counts of what was planted."""
    go, le = corpus["go"].outcomes, corpus["lenient"].outcomes
    mix = (go["cart_id"] == "mix").to_numpy()
    assert go.loc[mix, "outcome"].astype(str).tolist() == [g for _, g, _ in MIX]
    assert le.loc[mix, "outcome"].astype(str).tolist() == [v for _, _, v in MIX]
    long_ = (go["cart_id"] == "long").to_numpy()
    assert go.loc[long_, "outcome"].astype(str).tolist() == [
        "applied", "too_long", "not_reached", "not_reached"]


def test_numeric_ts_is_the_headline(corpus: dict[str, Any]) -> None:
    fs = corpus["findings"]
    f = one(fs, "numeric_ts")
    planted = {("num", i) for i in range(1, 6)} | mix_lines(
        lambda n, raw, g, v: b'"ts":1' in raw[:8])
    assert len(planted) == 8
    assert f.count == 8 and f.carts == 2
    assert lines_of(f) == planted
    n_lines = len(NUM) + len(MIX) + len(LONG)
    assert f.message == headline(corpus["events"]) == findings_headline(corpus["events"])
    assert f.message == (f"8 of {n_lines} lines (2 carts) are dropped by the service's reader: "
                         "ts is a JSON number, the reader expects an RFC 3339 string")
    assert fs[0] is f and headline_finding(fs) is f
    assert f.first_seen == pd.Timestamp(N(-1440), unit="s", tz="UTC")
    assert f.last_seen == pd.Timestamp(N(7), unit="s", tz="UTC")
    assert ("num", 1) in f.examples and ("mix", 2) in f.examples
    assert f.details["applied_in_lenient_mode"] == 6  # num 5 + mix line 2


def test_ranked_by_lines_then_kind(corpus: dict[str, Any]) -> None:
    fs = corpus["findings"]
    counts = [f.count for f in fs]
    assert counts == sorted(counts, reverse=True)
    order = {k: i for i, k in enumerate(KINDS)}
    for a, b in zip(fs, fs[1:], strict=False):
        if a.count == b.count:
            assert order[a.kind] <= order[b.kind]
    table = findings_table(fs)
    assert table["lines"].tolist() == counts
    assert table["rank"].tolist() == list(range(1, len(fs) + 1))


def test_too_long_and_lines_lost_after_it(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "too_long")
    assert f.count == 3 and f.carts == 1
    assert lines_of(f) == {("long", 2), ("long", 3), ("long", 4)}
    assert f.details["too_long"] == 1 and f.details["not_reached"] == 2
    assert dict(zip(f.evidence["line"], f.evidence["role"], strict=True)) == {
        2: "over 256 KiB", 3: "not reached", 4: "not reached"}
    assert f.details["longest"] == len(LONG[1])


def test_unknown_types_which_and_since_when(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "unknown_type")
    assert f.key == "AddVoucher"
    assert lines_of(f) == {("mix", 3), ("mix", 4)}
    assert f.details == {"seen_by_service": 1, "hidden": 1}
    assert f.first_seen == pd.Timestamp(N(2), unit="s", tz="UTC")
    assert f.last_seen == pd.Timestamp(N(3), unit="s", tz="UTC")
    assert '"AddVoucher"' in f.message and "2025-03-01 10:02:00 UTC" in f.message


def test_glued_and_torn_lines(corpus: dict[str, Any]) -> None:
    fs = corpus["findings"]
    g = one(fs, "glued")
    assert lines_of(g) == {("mix", 10)}
    assert g.details["records"] == 2
    assert g.first_seen == pd.Timestamp(N(9), unit="s", tz="UTC")  # from the first record
    t = one(fs, "torn")
    assert lines_of(t) == {("mix", 11), ("mix", 12)}
    assert t.details["shapes"] == {"cut off": 1, "starts mid-record": 1}
    assert t.evidence["snippet"].tolist()[0] == MIX[10][0].decode()


def test_other_malformed_by_error(corpus: dict[str, Any]) -> None:
    fs = corpus["findings"]
    blank = one(fs, "other_malformed", "blank line")
    assert lines_of(blank) == {("mix", 13)}
    rest = [f for f in by_kind(fs, "other_malformed") if f.key != "blank line"]
    assert [lines_of(f) for f in rest] == [{("mix", 14)}]
    assert "yesterday" in rest[0].key


def test_every_malformed_line_is_explained(corpus: dict[str, Any]) -> None:
    """Each line the reader rejects is in some finding."""
    fs = corpus["findings"]
    explained = set().union(*(lines_of(f) for f in fs if f.kind != "file_problem"))
    go = corpus["go"].outcomes
    bad = go[go["outcome"].astype(str) != "applied"]
    assert set(zip(bad["cart_id"].astype(str), bad["line"], strict=True)) <= explained


def test_final_line_without_newline(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "no_final_newline")
    assert lines_of(f) == {("mix", 18)}
    assert f.details["applied_by_service"] == 1
    assert f.message.startswith("1 cart's log ends in a line without its newline")


def test_timestamps_going_backwards(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "ts_backwards")
    # line 15 (T0) after line 9 (T0+8m; 10-14 have no ts), line 17 (T0-60m) after line 16 (T0)
    assert lines_of(f) == {("mix", 15), ("mix", 17)}
    assert f.details["max_behind_seconds"] == 3600.0
    assert "up to 60 min back" in f.message


def test_duplicated_lines(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "duplicate")
    assert lines_of(f) == {("mix", 15), ("mix", 16)}
    assert f.details == {"consecutive": 1, "applied_by_service": 2,
                         "applied_in_lenient_mode": 2}
    assert dict(zip(f.evidence["line"], f.evidence["repeats_line"], strict=True)) == {
        15: 1, 16: 1}


def test_duplicates_compare_the_bytes_of_lines_whose_hash_collides(
        corpus: dict[str, Any]) -> None:
    # a dataset's scan gives a 64-bit hash of each line (raw_digest) and keeps the bytes of
    # the lines whose hash repeats in their cart: lines of one hash that differ are no
    # duplicates (every line here collides)
    ev = corpus["events"].copy()
    ev["raw_digest"] = np.zeros(len(ev), dtype=np.uint64)
    fs = findings(replay(ev, mode="go"), replay(ev, mode="lenient"))
    a, b = one(corpus["findings"], "duplicate"), one(fs, "duplicate")
    assert b.to_dict() == a.to_dict()
    pd.testing.assert_frame_equal(b.evidence, a.evidence)



def test_duplicates_are_equal_bytes_whatever_their_length_and_ts_share(tmp_path: Path) -> None:
    """Only lines of one cart with one length and one ts can repeat each other (equal bytes
    decode alike), and only equal bytes do: a line of the same length and ts that differs is
    no duplicate; equal lines without a readable ts are, as are equal lines in another cart."""
    def line(ts: str, qty: int, sku: str = "A1") -> str:
        return ('{"ts":' + ts + ',"type":"AddItem","payload":{"item_id":1,"quantity":'
                + str(qty) + ',"price":100,"sku":"' + sku + '"}}\n')

    t = '"2025-01-01T00:00:00Z"'
    (tmp_path / "a.events.log").write_text(
        line(t, 1) + line(t, 2) + line(t, 1, "B1") + line('"late"', 3) + line('"late"', 3)
        + line(t, 1), encoding="utf-8")
    (tmp_path / "b.events.log").write_text(line(t, 2) + line(t, 2), encoding="utf-8")
    ev = read_events(tmp_path)
    f = one(findings(replay(ev, mode="go"), replay(ev, mode="lenient")), "duplicate")
    assert dict(zip(zip(f.evidence["cart_id"], f.evidence["line"].astype(int), strict=True),
                    f.evidence["repeats_line"], strict=True)) == {
        ("a", 5): 4, ("a", 6): 1, ("b", 2): 1}
    assert f.details["consecutive"] == 2

def test_handler_errors_by_text(corpus: dict[str, Any]) -> None:
    f = one(corpus["findings"], "apply_error")
    assert f.key == "item not found"
    assert lines_of(f) == {("mix", 5), ("mix", 6)}
    assert f.details["in_service_replay"] == 2
    assert f.details["cascade"] == 1  # line 5: item 2 came from a dropped line
    assert f.details["also_in_lenient_mode"] == 1
    assert f.details["types"] == {"ChangeQuantity": 1, "RemoveItem": 1}


def test_payload_errors_by_field(corpus: dict[str, Any]) -> None:
    fs = corpus["findings"]
    q = one(fs, "payload_error", "AddItem.quantity")
    assert lines_of(q) == {("mix", 7), ("mix", 8)}
    assert q.details["seen_by_service"] == 1  # line 8 hides behind its numeric ts
    assert set(q.evidence["go_type"]) == {"int32"}
    s = one(fs, "payload_error", "SetCartRequest.items.quantity")
    assert lines_of(s) == {("mix", 9)}
    assert s.evidence["value"].tolist() == ["number 1.5"]


def test_counts_match_evidence_and_examples(corpus: dict[str, Any]) -> None:
    for f in corpus["findings"]:
        assert f.count == len(f.evidence)
        assert f.carts == f.evidence["cart_id"].nunique()
        assert 1 <= len(f.examples) <= 5
        assert set(f.examples) <= lines_of(f)
        assert f.message and "\n" not in f.message
        d = f.to_dict()
        assert d["count"] == f.count and "evidence" not in d
        json.dumps(d)  # plain values


def test_clean_logs_have_no_findings(tmp_path: Path) -> None:
    (tmp_path / "ok.events.log").write_bytes(
        rec(S(0), "AddItem", {"sku": "a", "quantity": 1}) + b"\n"
        + rec(S(1), "ChangeQuantity", {"Id": 1, "quantity": 2}) + b"\n")
    ev = read_events(tmp_path)
    fs = findings(replay(ev), replay(ev, mode="lenient"))
    assert fs == [] and headline_finding(fs) is None
    assert findings_headline(ev) is None and headline(ev) is None
    assert findings_table(fs).empty


def test_many_unknown_types_are_capped(tmp_path: Path) -> None:
    lines = [rec(S(i), f"Type{i:02d}", {}) for i in range(14)]
    (tmp_path / "u.events.log").write_bytes(b"\n".join(lines) + b"\n")
    ev = read_events(tmp_path)
    fs = by_kind(findings(replay(ev), replay(ev, mode="lenient")), "unknown_type")
    assert len(fs) == 11
    assert sum(f.count for f in fs) == 14
    merged = [f for f in fs if f.key.startswith("(")]
    assert [(f.key, f.count) for f in merged] == [("(4 other types)", 4)]
    assert sorted(f.key for f in fs if f not in merged) == [f"Type{i:02d}" for i in range(10)]


def test_mode_and_pair_checks(corpus: dict[str, Any], tmp_path: Path) -> None:
    go, le = corpus["go"], corpus["lenient"]
    with pytest.raises(ValueError, match="go-mode and a lenient-mode"):
        findings(le, go)
    (tmp_path / "x.events.log").write_bytes(rec(S(0), "AddItem", {}) + b"\n")
    other = replay(tmp_path, mode="lenient")
    with pytest.raises(ValueError, match="not of the same lines"):
        findings(go, other)


@pytest.mark.parametrize(
    ("line", "shape"),
    [
        (b'{"a":1}{"b":2}', ("glued", "2 records")),
        (b'{"a":1} {"b":2}{"c":3}', ("glued", "3 records")),
        (b'{"a":1}{"b":', ("glued", "2 records, the last one torn")),
        (b'{"ts":1,"type":"Add', ("torn", "cut off")),
        (b'"type":"AddItem"}', ("torn", "starts mid-record")),
        (b'{"ts":1,"ty{"ts":2,"type":"X","payload":{}}',
         ("torn", "another record starts inside it")),
        (b"   ", ("blank", "")),
        (b'{"ts":"yesterday"}', ("other", "")),
        (b"[1,2]", ("other", "")),
    ],
)
def test_line_shape(line: bytes, shape: tuple[str, str]) -> None:
    assert line_shape(line) == shape


def test_payload_field_parses_go_error_texts() -> None:
    assert payload_field(
        "json: cannot unmarshal string into Go struct field AddItem.quantity of type int32",
        "AddItem") == ("AddItem.quantity", "string", "int32")
    assert payload_field(
        "json: cannot unmarshal number 1.5 into Go struct field AddRequest.items.quantity of "
        "type int32", "SetCartRequest") == ("SetCartRequest.items.quantity", "number 1.5",
                                            "int32")
    assert payload_field(
        "json: cannot unmarshal array into Go value of type messages.AddItem", "AddItem"
    ) == ("AddItem (whole payload)", "array", "messages.AddItem")
    assert payload_field("unexpected end of JSON input", "RemoveItem")[0] == \
        "RemoveItem (payload missing)"


def test_findings_match_the_generators_planted_incidents(tmp_path: Path) -> None:
    """Cross-check with the synthetic service (cartforensics.jobs.sample), which plants each
    incident at known (cart, line) pairs by its own logic: every finding holds exactly them."""
    sample = pytest.importorskip("cartforensics.jobs.sample")
    m = sample.write_sample(tmp_path / "gen", carts=300, seed=7)
    ev = read_events(tmp_path / "gen", progress=False)
    fs = findings(replay(ev), replay(ev, mode="lenient"))

    def lines(kind: str, col: str | None = None, vals: tuple[Any, ...] = (),
              key: str | None = None) -> set[tuple[str, int]]:
        out: set[tuple[str, int]] = set()
        for f in by_kind(fs, kind):
            if key is not None and f.key != key:
                continue
            e = f.evidence if col is None else f.evidence[f.evidence[col].isin(vals)]
            out |= set(zip(e["cart_id"], e["line"].astype(int), strict=True))
        return out

    found = {
        "numeric-ts": lines("numeric_ts"),
        "unknown-type": lines("unknown_type"),
        "two-writers": lines("glued") | lines("other_malformed", key="blank line")
        | lines("torn", "shape", ("another record starts inside it", "starts mid-record")),
        "crash": lines("no_final_newline"),
        "long-line": lines("too_long", "role", ("over 256 KiB",)),
        "clock-step": lines("ts_backwards"),
        # real divergence: the handler refuses the line in lenient mode too
        "handler-errors": lines("apply_error", "lenient_outcome", ("apply_error",)),
    }
    for incident, pairs in m.planted.items():
        assert found[incident] == {(c, int(n)) for c, n in pairs}, incident


def test_findings_refuse_replays_of_two_toolchains(tmp_path) -> None:
    f = tmp_path / "c.events.log"
    f.write_bytes(b'{"ts":"2024-01-02T03:04:05Z","type":"RemoveItem","payload":{"Id":1}}\n')
    ev = read_events(str(f))
    ev.attrs = {}
    with pytest.raises(ValueError, match="different toolchains"):
        findings(replay(ev, go_version="1.25"), replay(ev, mode="lenient", go_version="1.27"))


def test_toolchain_check_skips_only_writer_shaped_lines() -> None:
    """Only lines the fast path proves writer-shaped (their ts holds no escape) skip the
    double envelope decode of the toolchain finding; every other line with a backslash,
    an escaped ts behind a repeated key included, is decoded under both toolchains."""
    import numpy as np
    import pyarrow as pa

    from cartforensics.analysis.toolchain import _maybe_escaped_ts

    lines = [
        b'{"ts":1700000000,"type":"AddItem","payload":{"name":"Salt \\u0026 peppar"}}',
        b'{"ts":"2024-01-01T00:00:00Z","type":"AddItem","payload":{"sku":"\\u003c"}}\r',
        b'{"ts":"2024\\u002d01-01T00:00:00Z","type":"AddItem","payload":{}}',
        b'{"ts":1,"type":"AddItem","payload":{},"ts":"2024\\u002d01-01T00:00:00Z"}',
        b'{"TS":"2024-01-01T00:00:00\\u005a","type":"AddItem","payload":{}}',
    ]
    rows = np.arange(len(lines))
    assert _maybe_escaped_ts(pa.array(lines, pa.large_binary()), rows).tolist() == [2, 3, 4]


_BYTES_WITH_ESCAPES = st.lists(st.sampled_from(
    [b"a", b"\\", b"\\u003c", b"\\u003e", b"\\u0026", b"\\u00", b"\\u0", b"u003c", b"03e",
     b"3c", b"26", b"u", b'"', b"\xff", b""]), max_size=8).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(st.none(), _BYTES_WITH_ESCAPES), max_size=30),
       start=st.integers(0, 5), large=st.booleans(), chunks=st.integers(1, 3))
def test_escaped_rows_is_the_string_kernels_answer(lines: list[bytes | None], start: int,
                                                   large: bool, chunks: int) -> None:
    """The numpy scan for backslashes (toolchain finding) answers as the Arrow string kernels
    over every line do: any bytes, nulls, a sliced array, several chunks, 32/64-bit offsets."""
    import pyarrow as pa

    from cartforensics.analysis.toolchain import _escaped_rows_slow, escaped_rows

    arr = pa.array(lines, pa.large_binary() if large else pa.binary()).slice(
        min(start, len(lines)))
    want = _escaped_rows_slow(arr)
    if not lines:  # removing one escape can join another: no backslash is left here
        joined = pa.array([b"\\u0\\u003c03e", b"\\u0\\u003c03x", b"x\\u0026"])
        assert escaped_rows(joined).tolist() == _escaped_rows_slow(joined).tolist() \
            == [False, True, False]
    assert escaped_rows(arr).tolist() == want.tolist()
    cut = [0, *sorted({len(arr) * k // chunks for k in range(1, chunks)}), len(arr)]
    parts = [arr.slice(a, b - a) for a, b in zip(cut, cut[1:], strict=False)]
    chunked = pa.chunked_array(parts, arr.type)
    assert escaped_rows(chunked).tolist() == want.tolist()


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(-5, 5))),
                      max_size=40))
def test_previous_ts_is_the_groupby_answer(lines: list[tuple[int, int | None]]) -> None:
    """The ts backwards finding's numpy pass gives each line the last readable ts before it
    in its cart, as pandas' per-cart forward fill and shift do (carts interleaved, no ts)."""
    from cartforensics.analysis.findings import _NAT, _previous_ts

    cart = np.array([c for c, _ in lines], dtype=np.int64)
    ts = pd.Series(pd.to_datetime([None if t is None else t * 10**9 for _, t in lines],
                                  utc=True), dtype="datetime64[ns, UTC]")
    want = ts.groupby(cart, sort=False).ffill().groupby(cart, sort=False).shift(1)
    got = _previous_ts(cart, ts.array.asi8)
    assert got.tolist() == [_NAT if pd.isna(v) else v.value for v in want]
