"""``repair``: OUT replayed by Go's reader (tests/go/cfdiff, go mode) rebuilds every repaired cart
exactly as Go's lenient replay of SRC does; sources are never modified; refusals exit 2."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import GoRef, run_cfdiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_envelope_go import ADVERSARIAL, _mutate

import cartforensics as cf
from cartforensics.cli.app import main
from cartforensics.go.bufio import MAX_TOKEN_SIZE
from cartforensics.go.json import unquote
from cartforensics.io.logs import gunzip_prefix
from cartforensics.jobs.repair import (
    REJECTED_DIR,
    RepairError,
    numeric_ts_spans,
    repair,
    rewrite_ts,
    shorter_encoding,
    ts_text,
)
from cartforensics.jobs.sample import write_sample

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
TS = 1761557651


def line(ts: object, type_: str, payload: dict) -> bytes:
    """A line as the seed's writer marshals it (compact, Go's escaping of <, >, &)."""
    text = json.dumps({"ts": ts, "type": type_, "payload": payload}, separators=(",", ":"),
                      ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .encode())


def add(sku: str, qty: int = 1, ts: object = TS, **extra: object) -> bytes:
    return line(ts, "AddItem", {"quantity": qty, "price": 1000, "sku": sku, "name": sku, **extra})


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def go_states(cfdiff: Path | GoRef, mode: str, files: list[Path]) -> dict[str, dict]:
    if not files:
        return {}
    recs = run_cfdiff(cfdiff, "replay", "--mode", mode, *map(str, files))
    return {r["cart_id"]: r["state"] for r in recs if "state" in r}


def plain_sources(src: Path, tmp: Path) -> dict[str, Path]:
    """cart id -> a file cfdiff can read (it reads no gzip: .gz decompressed to ``tmp``)."""
    out: dict[str, Path] = {}
    for log in cf.find_logs(src):
        if log.path.name.endswith(".gz"):
            tmp.mkdir(exist_ok=True)
            p = tmp / f"{log.cart_id}.events.log"
            p.write_bytes(gunzip_prefix(log.path.read_bytes())[0])
            out[log.cart_id] = p
        else:
            out[log.cart_id] = log.path
    return out


def check_with_go(cfdiff: Path | GoRef, src: Path, out: Path, tmp: Path) -> dict[str, int]:
    """Go's verdict on every cart against repair's: a repaired or unchanged cart must rebuild
    in Go's go mode from OUT exactly as in Go's lenient mode from SRC; repair's ``verified``
    must be Go's equality, cart by cart. Returns the counts by status."""
    report = orjson.loads((out / "repair.json").read_bytes())
    carts = report["carts"]
    src_files = plain_sources(src, tmp / "plain")
    want = go_states(cfdiff, "lenient", list(src_files.values()))
    written = [c for c, rec in carts.items() if rec["out_sha256"] is not None]
    got = go_states(cfdiff, "go", [out / f"{c}.events.log" for c in written])
    assert set(carts) == set(src_files)
    counts = {"repaired": 0, "unchanged": 0, "unrepairable": 0}
    for cid, rec in carts.items():
        counts[rec["status"]] += 1
        if rec["status"] in ("repaired", "unchanged"):
            assert rec["verified"] is True, cid
            assert got[cid] == want[cid], (cid, got[cid], want[cid])
        else:
            assert rec["reason"], cid
        if cid in got:
            assert rec["verified"] == (got[cid] == want[cid]), cid
            assert hashlib.sha256((out / f"{cid}.events.log").read_bytes()).hexdigest() \
                == rec["out_sha256"]
    assert report["verified"] == counts["repaired"] + counts["unchanged"]
    return counts


# -- the sample corpus ----------------------------------------------------------------------
def test_sample_corpus_repairs_all_but_the_long_lines_and_go_agrees(cfdiff: Path,
                                                                     tmp_path: Path) -> None:
    before = digests(SAMPLE)
    out = tmp_path / "repaired"
    result = cf.repair(SAMPLE, out, progress=False)
    assert digests(SAMPLE) == before
    counts = check_with_go(cfdiff, SAMPLE, out, tmp_path)
    assert counts == result.counts
    bad = result.carts.loc[result.carts["status"] == "unrepairable", "cart_id"].tolist()
    assert bad == ["cart-1105", "cart-1190"]  # the two planted long lines (base64, no slack)
    assert counts["repaired"] + counts["unchanged"] == 298
    rep = result.report
    assert rep["actions"]["ts_rfc3339"] == 784  # every numeric ts of the corpus
    assert rep["actions"]["dropped"] == 8  # the lines lenient rejects too
    assert rep["actions"]["newline_added"] == 1  # cart-1090's crash line
    for cid in bad:
        rec = rep["carts"][cid]
        assert "maxLine >= " in rec["reason"] and "(checked)" in rec["reason"]
        assert rec["max_line_needed"] > MAX_TOKEN_SIZE
    # a numeric line became exactly the string Go's MarshalJSON writes, nothing else changed
    src = (SAMPLE / "cart-1001.events.log").read_bytes().splitlines()
    dst = (out / "cart-1001.events.log").read_bytes().splitlines()
    assert len(src) == len(dst)
    for a, b in zip(src, dst, strict=True):
        n = a[6 : a.index(b",")]
        assert b == a.replace(b'"ts":' + n, b'"ts":"' + ts_text(n)[0].encode() + b'"', 1)
    # the dropped lines are verbatim, with their numbers
    rej = (out / REJECTED_DIR / "cart-1103.events.log.rejected").read_bytes().split(b"\n")
    lines = (SAMPLE / "cart-1103.events.log").read_bytes().split(b"\n")
    assert rej[0] == b"3\t" + lines[2] and rej[1] == b"4\t" + lines[3]
    changes = rep["carts"]["cart-1103"]["changes"]
    dropped = [c for c in changes if c["action"] == "dropped"]
    assert [c["line"] for c in dropped] == [3, 4]
    assert dropped[0]["before_sha256"] == hashlib.sha256(lines[2]).hexdigest()
    assert rep["source_files"][0]["sha256"] == before["cart-1001.events.log"]
    md = (out / "REPAIR.md").read_text()
    assert "verified: 298 of 300 carts rebuild as the writer meant" in md
    assert "verified: 298 of 300 carts rebuild as the writer meant" in result.summary()


def test_cli_repairs_sample_data_and_prints_the_verdict(tmp_path: Path, capsys) -> None:
    before = digests(SAMPLE)
    out = tmp_path / "repaired"
    assert main(["repair", str(SAMPLE), str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "verified: 298 of 300 carts rebuild as the writer meant" in text
    assert "cart-1105" in text and "maxLine" in text
    assert digests(SAMPLE) == before
    # a second run refuses without --force, replaces with it
    assert main(["repair", str(SAMPLE), str(out), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    old = digests(out)
    assert main(["repair", str(SAMPLE), str(out), "--quiet", "--force"]) == 0
    new = digests(out)
    assert set(old) == set(new) and not list(tmp_path.glob(".repaired*"))  # no temp left
    assert digests(SAMPLE) == before


# -- a generated corpus with every incident ---------------------------------------------------
def test_generated_corpus_with_every_incident_agrees_with_go(cfdiff: Path,
                                                            tmp_path: Path) -> None:
    src = tmp_path / "gen"
    write_sample(src, carts=400, seed=11, visits=2)
    before = digests(src)
    out = tmp_path / "out"
    cf.repair(src, out, progress=False)
    assert digests(src) == before
    counts = check_with_go(cfdiff, src, out, tmp_path)
    assert counts["repaired"] > 100 and counts["unrepairable"] <= 4


# -- hostile input ----------------------------------------------------------------------------
def hostile_corpus(d: Path) -> None:
    d.mkdir()
    w = add("a")
    s = add("b", ts="2024-01-02T03:04:05Z")
    cases: dict[str, bytes] = {
        "blank": b"\n\n" + w + b"\n\n" + s + b"\n\n",
        "crlf": w + b"\r\n" + add("a", 2, TS + 1) + b"\r\n" + s + b"\r\n",
        "crlf-final": w + b"\r\n" + add("c", ts=TS + 5) + b"\r",
        "bom": b"\xef\xbb\xbf" + w + b"\n" + add("b", ts=TS + 9) + b"\n",
        "utf8": add("\u00e5\u2028") + b"\n"
                + line(TS, "AddItem", {"sku": "x", "quantity": 1}).replace(b'"x"', b'"\xff\xfe"')
                + b"\n",
        "dupkeys": b'{"ts":1761557651,"ts":null,"type":"AddItem","payload":{"sku":"d",'
                   b'"quantity":1}}\n{"TS":1761557652.25,"type":"AddItem","payload":'
                   b'{"sku":"e","quantity":1}}\n{"ts":"2024-01-01T00:00:00Z","ts":1761557653,'
                   b'"Type":"AddItem","payload":{"sku":"f","quantity":1},"payload":{"quantity":'
                   b'3}}\n{"t\xc5\xbf":-1.5e2,"type":"AddItem","payload":{"sku":"g","quantity"'
                   b':1}}\n{ "ts" : 17615576e2 , "type" : "AddItem" , "payload" : {"sku":"h",'
                   b'"quantity":1} }\n',
        "glued": w + add("z", ts=TS + 1) + b"\n" + add("y", ts=TS + 2)[:30] + b"\n" + s + b"\n",
        "torn-final": w + b"\n" + s[:40],
        "final-no-nl": w + b"\n" + s,
        "unknown": line(TS, "AddVoucher", {"code": "K\\u00d6P"}) + b"\n" + w + b"\n",
        "outofrange": b'{"ts":1e300,"type":"AddItem","payload":{"sku":"a","quantity":1}}\n' + s
                      + b"\n",
        "adversarial": b"\n".join(x for x in ADVERSARIAL if len(x) < 50_000) + b"\n",
        "empty": b"",
        "only-newlines": b"\n\n\n",
        # lenient reads any int64 seconds; Go's MarshalJSON writes only years 0-9999
        "year-10000": w + b"\n" + add("far", ts=10**12) + b"\n" + s + b"\n",
        "year-10000-unknown": line(10**12, "AddVoucher", {}) + b"\n" + w + b"\n",
        "year-and-long": add("far", ts=10**12) + b"\n" + add("B", image="y" * MAX_TOKEN_SIZE)
                         + b"\n",
    }
    # lines at and over the scanner limit
    # one byte too long after the ts rewrite (+12 bytes): fits once its escape is shortened
    n = MAX_TOKEN_SIZE - 12 - len(add("L", image="<"))
    near = add("L", image="<" + "x" * n)
    assert b"\\u003c" in near and len(near) + 12 == MAX_TOKEN_SIZE
    cases["limit-escape"] = w + b"\n" + near + b"\n" + add("after", ts=TS + 3) + b"\n"
    # over the limit by whitespace only (valid JSON with spaces): compaction makes it fit
    spaced = b'{"ts":1761557651, "type":"AddItem","payload":{"sku":"W","quantity":1' \
             + b" " * (MAX_TOKEN_SIZE + 10) + b"}}"
    cases["limit-spaces"] = spaced + b"\n" + add("after", ts=TS + 3) + b"\n"
    # just under the limit as a string-ts line, and as CRLF, where the \r is one byte too many
    k = MAX_TOKEN_SIZE - 1 - len(add("U", ts="2024-01-02T03:04:05Z", image=""))
    under = add("U", ts="2024-01-02T03:04:05Z", image="x" * k)
    assert len(under) == MAX_TOKEN_SIZE - 1
    cases["limit-under"] = under + b"\n" + s + b"\n"
    cases["limit-cr"] = under + b"\r\n" + add("after") + b"\n"
    # far over the limit in escapes only (\u00e9, a surrogate pair, \u003c, \/): fits when each
    # escape takes its shortest form; Go must decode the same name
    name = ("\u00e9\U0001f600<&/\u2028" * 20_000)
    esc = json.dumps({"ts": TS, "type": "AddItem", "payload": {"sku": "E", "quantity": 1,
                                                               "name": name}},
                     separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    assert len(esc) > MAX_TOKEN_SIZE * 2
    cases["long-escapes"] = esc + b"\n" + add("after", ts=TS + 3) + b"\n"
    # a SetCartRequest spread out with spaces: compaction inside nested arrays and objects
    items = [{"sku": f"s{k}", "quantity": k % 3 + 1} for k in range(400)]
    spread = json.dumps({"ts": TS, "type": "SetCartRequest", "payload": {"items": items}},
                        separators=("\t" * 300 + ", ", " :  " + " " * 300)).encode()
    assert len(spread) > MAX_TOKEN_SIZE
    cases["long-spread"] = spread + b"\n" + add("after", ts=TS + 3) + b"\n"
    # really too long: applied (unrepairable), unknown type (moved aside), malformed (dropped)
    big = "y" * (MAX_TOKEN_SIZE + 100)
    cases["long-applied"] = add("B", image=big) + b"\n" + add("after", ts=TS + 3) + b"\n"
    cases["long-unknown"] = line(TS, "AddVoucher", {"blob": big}) + b"\n" + w + b"\n"
    cases["long-malformed"] = add("B", image=big)[:-1] + b"\n" + w + b"\n"
    for name, blob in cases.items():
        (d / f"{name}.events.log").write_bytes(blob)
    (d / "gz.events.log.gz").write_bytes(gzip.compress(w + b"\n" + s + b"\n" + s[:10]))
    broken = gzip.compress(w + b"\n" + (add("q", ts=TS + 1) + b"\n") * 400)
    (d / "gz-broken.events.log.gz").write_bytes(broken[: len(broken) // 2])
    (d / "README.md").write_text("not a log")


def test_hostile_input_never_verifies_wrong(go_ref: GoRef, tmp_path: Path) -> None:
    src = tmp_path / "hostile"
    hostile_corpus(src)
    before = digests(src)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="broken gzip stream"):
        result = cf.repair(src, out, go_version=go_ref.go_version, progress=False)
    assert digests(src) == before
    counts = check_with_go(go_ref, src, out, tmp_path)
    carts = result.report["carts"]
    status = {c: r["status"] for c, r in carts.items()}
    assert status["long-applied"] == "unrepairable"
    assert "maxLine >= " in carts["long-applied"]["reason"]
    for name in ("blank", "crlf", "crlf-final", "bom", "utf8", "dupkeys", "glued", "torn-final",
                 "final-no-nl", "unknown", "outofrange", "limit-escape", "limit-spaces",
                 "limit-cr", "long-unknown", "long-malformed", "gz", "long-escapes",
                 "long-spread"):
        assert status[name] == "repaired", (name, carts[name])
    assert status["limit-under"] == "unchanged" and status["empty"] == "unchanged"
    assert status["gz-broken"] == "unrepairable"
    assert status["year-10000"] == "unrepairable"
    assert "years 0 to 9999" in carts["year-10000"]["reason"]
    assert status["year-10000-unknown"] == "repaired"  # skipped either way: kept as it was
    assert status["year-and-long"] == "unrepairable"
    assert "years 0 to 9999" in carts["year-and-long"]["reason"]
    assert not (out / "unverified").exists()  # nothing failed verification
    assert carts["gz-broken"]["reason"].startswith("broken gzip stream after ")
    acts = {c: [x["action"] for x in r["changes"]] for c, r in carts.items()}
    assert "shortened" in acts["limit-escape"] and "shortened" in acts["limit-spaces"]
    assert "shortened" in acts["limit-cr"]
    assert "shortened" in acts["long-escapes"] and "shortened" in acts["long-spread"]
    assert "dropped_too_long" in acts["long-unknown"]
    assert acts["unknown"] == ["ts_rfc3339", "ts_rfc3339"]  # the unknown type stays
    assert b"AddVoucher" in (out / "unknown.events.log").read_bytes()
    assert acts["final-no-nl"] == ["ts_rfc3339", "newline_added"]
    assert not (out / "README.md").exists() and (out / "gz.events.log").exists()
    assert max(len(x) for x in (out / "limit-escape.events.log").read_bytes().split(b"\n")) \
        < MAX_TOKEN_SIZE
    # every line of OUT the reader reaches is shorter than the limit, except the kept long one
    for p in out.glob("*.events.log"):
        longest = max((len(x) for x in p.read_bytes().split(b"\n")), default=0)
        assert longest < MAX_TOKEN_SIZE or p.name in ("long-applied.events.log",
                                                      "year-and-long.events.log")
    assert counts["unrepairable"] == 4


def test_a_cart_in_two_files_becomes_one_log(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "c.events.log").write_bytes(add("a") + b"\n" + add("b", ts=TS + 1))
    (src / "c.events.log.gz").write_bytes(gzip.compress(b"\n" + add("c", ts=TS + 2) + b"\n"))
    before = digests(src)
    with pytest.warns(UserWarning, match="has 2 files"):
        r = cf.repair(src, tmp_path / "out", progress=False)
    rec = r.report["carts"]["c"]
    assert rec["status"] == "repaired" and rec["verified"] is True
    assert rec["files"] == ["c.events.log", "c.events.log.gz"]
    assert {ch.get("file") for ch in rec["changes"]} == {"c.events.log", "c.events.log.gz"}
    got = cf.replay(str(tmp_path / "out"), mode="go").final_state("c")
    assert [i["sku"] for i in got["items"]] == ["a", "b", "c"]
    assert digests(src) == before


def test_mutation_fuzz_never_verifies_wrong(go_ref: GoRef, tmp_path: Path) -> None:
    rng = random.Random(14)
    src = tmp_path / "fuzz"
    src.mkdir()
    base = [add("a"), add("b", 2, TS + 1), add("a", ts="2024-01-02T03:04:05.5+02:00"),
            line(TS + 2, "ChangeQuantity", {"Id": 1, "quantity": 5}),
            line(TS + 3, "SetDelivery", {"provider": "postnord"}),
            line(TS + 4, "OrderCreated", {"orderId": "o<1>", "status": "ok"}),
            b'{"TS":1761557651.5,"type":"AddItem","payload":{"sku":"q","quantity":1}}',
            b'{ "ts" : 17615576e2 , "type":"RemoveItem","payload":{"Id":1}}',
            b'{"ts":1,"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"\\u00e9",'
            b'"quantity":3}}',
            # an escaped ts: Go >= 1.27 applies it in go mode, lenient mode drops it
            b'{"ts":"2024\\u002d01-02T03:04:05Z","type":"AddItem","payload":{"sku":"e",'
            b'"quantity":1}}'] + [x for x in ADVERSARIAL if len(x) < 3000]
    for k in range(80):
        lines = [rng.choice(base) if rng.random() < 0.5 else _mutate(rng, rng.choice(base))
                 for _ in range(rng.randint(1, 10))]
        sep = rng.choice([b"\n", b"\r\n"])
        blob = sep.join(lines) + (sep if rng.random() < 0.7 else b"")
        (src / f"f{k:03d}.events.log").write_bytes(blob)
    before = digests(src)
    out = tmp_path / "out"
    cf.repair(src, out, go_version=go_ref.go_version, progress=False)
    assert digests(src) == before
    counts = check_with_go(go_ref, src, out, tmp_path)
    assert counts["unrepairable"] == 0 and counts["repaired"] > 60


# -- property: arbitrary bytes ----------------------------------------------------------------
_PIECES = [add("a"), add("b", ts="2024-01-02T03:04:05Z"), b"\n", b"\r\n", b"\r", b"{", b"}",
           b'"ts":', b"1.5", b"\xff", b"\xef\xbb\xbf", b" ", b"null", b'"type":"AddItem"']


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(carts=st.lists(
    st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=12)), max_size=12),
    min_size=1, max_size=4))
def test_any_bytes_are_repaired_unchanged_or_unrepairable(tmp_path_factory, carts) -> None:
    d = tmp_path_factory.mktemp("prop")
    src = d / "src"
    src.mkdir()
    for k, pieces in enumerate(carts):
        (src / f"c{k}.events.log").write_bytes(b"".join(pieces))
    before = digests(src)
    result = cf.repair(src, d / "out", progress=False)
    assert digests(src) == before
    assert len(result.carts) == len(carts)
    for rec in result.report["carts"].values():
        assert rec["status"] in ("repaired", "unchanged", "unrepairable")
        if rec["status"] == "unrepairable":
            assert rec["reason"]
        else:
            assert rec["verified"] is True
    # the Python replay confirms OUT the same way repair did
    go = cf.replay(str(d / "out"), mode="go")
    lenient = cf.replay(str(src), mode="lenient")
    for cid, rec in result.report["carts"].items():
        if rec["status"] != "unrepairable":
            assert go.final_state(cid) == lenient.final_state(cid)


# -- line-level pieces ------------------------------------------------------------------------
def test_numeric_ts_spans_follow_gos_key_rules() -> None:
    tok = b'{"ts":1,"TS":2,"t\xc5\xbf":3,"t\\u0073":4,"tss":5,"payload":{"ts":6},"ts":"x"}'
    assert [tok[a:b] for a, b in numeric_ts_spans(tok)] == [b"1", b"2", b"3", b"4"]
    # the writer's shape takes a short cut; a second top-level ts after the payload does not
    glued = b'{"ts":1,"type":"A","payload":{"a":1},"ts":2,"b":{"c":3}}'
    assert [glued[a:b] for a, b in numeric_ts_spans(glued)] == [b"1", b"2"]
    assert numeric_ts_spans(b'{"ts":1,"type":"A","payload":{"ts":9}}') == [(6, 7)]
    assert numeric_ts_spans(b"null") == [] and numeric_ts_spans(b'{"ts" :\t-0.5e1}') == [(8, 14)]


def test_rewrite_ts_writes_gos_marshal_text() -> None:
    new, edits, err = rewrite_ts(b'{"ts":1700000000.123456789,"type":"A"}')
    assert err is None and new == b'{"ts":"2023-11-14T22:13:20.123456789Z","type":"A"}'
    assert edits == ['ts 1700000000.123456789 -> "2023-11-14T22:13:20.123456789Z"']
    assert ts_text(b"0")[0] == "1970-01-01T00:00:00Z"
    assert ts_text(b"-1e-9")[0] == "1969-12-31T23:59:59.999999999Z"
    assert ts_text(b"1e300")[0] is None
    assert ts_text(b"253402300799")[0] == "9999-12-31T23:59:59Z"
    assert ts_text(b"253402300800")[0] is None  # year 10000
    assert ts_text(b"-62167219200")[0] == "0000-01-01T00:00:00Z"
    assert ts_text(b"-62167219201")[0] is None  # year -1


@given(st.text(max_size=30))
def test_shorter_encoding_decodes_to_the_same_string(text: str) -> None:
    quoted = json.dumps(text).encode()  # \\uXXXX for every non-ASCII rune
    short, _ = shorter_encoding(quoted)
    assert len(short) <= len(quoted)
    assert unquote(short) == unquote(quoted)


def test_shorter_encoding_keeps_gos_surrogate_rules() -> None:
    for s in (b'"\\ud83d\\ude00"', b'"\\ud800"', b'"\\ud800\\u0041"', b'"\\udc00\\ud800"',
              b'"\\u0022\\u005c\\u000a\\u0001\\/"', b'"\xff\\u00e9\xc3"'):
        short, _ = shorter_encoding(s)
        assert unquote(short) == unquote(s), s


# -- safety: refusals -------------------------------------------------------------------------
def small_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "c1.events.log").write_bytes(add("a") + b"\n")
    return src


def test_refusals_raise_and_exit_2(tmp_path: Path, capsys) -> None:
    src = small_src(tmp_path)
    before = digests(src)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    one = src / "c1.events.log"
    bad = {
        "inside": (src, src / "out", "inside SRC"),
        "same": (src, src, "SRC itself"),
        "foreign": (src, foreign, "not a previous repair output"),
        "a file in SRC": (src, one, "inside SRC"),
        "the file itself": (one, one, "SRC itself"),
    }
    for what, (s, out, msg) in bad.items():
        with pytest.raises(RepairError, match=msg):
            cf.repair(s, out, progress=False)
        assert main(["repair", str(s), str(out), "--quiet"]) == 2, what
        err = capsys.readouterr().err
        assert err.startswith("cartforensics: ") and err.count("\n") == 1, err
    # SRC inside OUT: --force would remove it
    outer = tmp_path / "outer"
    cf.repair(src, outer, progress=False)
    inner = outer / "nested"
    shutil.copytree(src, inner)
    with pytest.raises(RepairError, match="inside OUT"):
        cf.repair(inner, outer, force=True, progress=False)
    assert (inner / "c1.events.log").exists()
    # a previous output that has gained a foreign file is not replaced, even with force
    (outer / "notes.txt").write_text("analyst notes")
    shutil.rmtree(inner)
    with pytest.raises(RepairError, match="did not write"):
        cf.repair(src, outer, force=True, progress=False)
    assert (outer / "notes.txt").read_text() == "analyst notes"
    link = tmp_path / "link"
    link.symlink_to(outer)
    with pytest.raises(RepairError, match="symbolic link"):
        cf.repair(src, link, force=True, progress=False)
    for v in ("1.2x", "2.0.0", 125):
        with pytest.raises(RepairError, match="go_version"):
            cf.repair(src, tmp_path / "v", go_version=v, progress=False)  # type: ignore[arg-type]
    assert main(["repair", str(src), str(tmp_path / "v"), "--go-version", "banana"]) == 2
    assert main(["repair", str(tmp_path / "nope"), str(tmp_path / "v")]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["repair", str(src)])  # OUT missing: argparse, one line
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cartforensics: repair: ") and err.count("\n") == 1
    assert not (tmp_path / "v").exists()
    assert digests(src) == before


def test_empty_out_is_used_and_force_replaces_a_previous_output(tmp_path: Path) -> None:
    src = small_src(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    r = cf.repair(src, out, progress=False)
    assert r.counts["repaired"] == 1 and (out / "c1.events.log").exists()
    (src / "c2.events.log").write_bytes(add("b") + b"\n")
    r2 = cf.repair(src, out, force=True, progress=False)
    assert r2.report["carts_total"] == 2 and (out / "c2.events.log").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temp dirs left


def test_single_file_source_and_subprocess_cli(tmp_path: Path) -> None:
    src = small_src(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cartforensics", "repair",
                           str(src / "c1.events.log"), str(tmp_path / "o"), "--quiet"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "verified: 1 of 1 carts rebuild as the writer meant" in proc.stdout
    assert (tmp_path / "o" / "c1.events.log").read_bytes().startswith(b'{"ts":"2025-10-27T')


def test_a_cart_that_does_not_verify_is_marked_not_repaired(tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    """A wrong rewrite (here: the ts off by one second, as a bug would make it) is caught by
    the replay: the cart is unrepairable, its attempt is set aside, OUT keeps the source."""
    rp = importlib.import_module("cartforensics.jobs.repair")  # cf.repair is the function
    src = small_src(tmp_path)
    (src / "c2.events.log").write_bytes(add("b", ts="2024-01-02T03:04:05Z") + b"\n")
    real = rp.ts_text
    before = digests(src)
    monkeypatch.setattr(rp, "ts_text", lambda n: real(str(int(n) + 1).encode()))
    r = cf.repair(src, tmp_path / "out", progress=False)
    rec = r.report["carts"]["c1"]
    assert rec["status"] == "unrepairable" and rec["verified"] is False
    assert rec["reason"].startswith("verification failed") and "lastChange" in rec["reason"]
    assert (tmp_path / "out" / "c1.events.log").read_bytes() == (src / "c1.events.log").read_bytes()
    assert b'"ts":"' in (tmp_path / "out" / "unverified" / "c1.events.log").read_bytes()
    assert r.report["carts"]["c2"]["status"] == "unchanged"
    assert "verified: 1 of 2 carts" in r.summary()
    assert main(["repair", str(src), str(tmp_path / "out2"), "--quiet"]) == 1
    assert "verification failed" in capsys.readouterr().out
    assert digests(src) == before


def test_untrusted_names_and_reasons_are_escaped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = "x|*[y] <b>\n\x1b[31m"
    (src / f"{name}.events.log").write_bytes(add("a") + b"\n" + add("b", ts=10**12) + b"\n")
    r = cf.repair(src, tmp_path / "out", progress=False)
    assert r.report["carts"][name]["status"] == "unrepairable"
    text = r.summary()
    assert "\x1b" not in text and "x|*[y] <b>\\n\\x1b[31m:" in text
    md = (tmp_path / "out" / "REPAIR.md").read_text()
    assert "<b>" not in md and "\x1b" not in md and "&lt;b&gt;" in md


def test_output_directory_has_the_umasks_mode_and_the_umask_is_never_changed(
        tmp_path: Path, monkeypatch) -> None:
    # the umask is per process: setting it, even for a moment to read it, changes it for
    # every thread of a notebook kernel
    old = os.umask(0o027)
    calls: list[int] = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    try:
        repair(SAMPLE / "cart-1002.events.log", tmp_path / "out", progress=False)
    finally:
        real(old)
    assert calls == []
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == "0o750"
