"""No line takes down an analysis: deeply nested lines through every entry point.

Go's ``encoding/json`` accepts nesting to depth 10,000 and rejects 10,001 with
``invalid character '[' exceeded max depth``. Each entry point must classify such lines
exactly as Go does (checked against ``cfdiff``) whatever ``sys.getrecursionlimit()`` is, and
never raise.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import examples, run_cfdiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartforensics as cf
from cartforensics.cli.app import main as cli_main
from cartforensics.present.widgets import pretty_line

TS = '"2024-03-01T12:00:00Z"'
OK = '{"ts":' + TS + ',"type":"AddItem","payload":{"sku":"ok","quantity":1,"price":100}}'
DEPTH = 10_000  # Go's maxNestingDepth


def nested_payload(depth: int) -> str:
    """A line whose total nesting is ``depth``: envelope {, payload {, then arrays."""
    inner = depth - 2
    return ('{"ts":' + TS + ',"type":"AddItem","payload":{"sku":"deep","quantity":1,"z":'
            + "[" * inner + "]" * inner + "}}")


def nested_envelope(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def string_lookalike() -> str:
    """Brackets inside a string: looks deep to a bracket count, is one flat value."""
    brackets = "[" * (3 * DEPTH) + "{" * DEPTH
    return ('{"ts":' + TS + ',"type":"AddItem","payload":{"sku":"' + brackets
            + '","quantity":2,"price":5}}')


def write_corpus(d: Path) -> dict[str, list[str]]:
    """Carts of hostile lines, each followed by an ordinary line; one cart gzipped."""
    carts = {
        "payload-ok": [nested_payload(DEPTH), OK],
        "payload-deep": [nested_payload(DEPTH + 1), OK],
        "envelope-ok": [nested_envelope(DEPTH), OK],
        "envelope-deep": [nested_envelope(DEPTH + 1), OK],
        "objects-ok": [nested_objects(DEPTH), OK],
        "objects-deep": [nested_objects(DEPTH + 1), OK],
        "lookalike": [string_lookalike(), OK],
        "plain": [OK, OK],
    }
    d.mkdir(parents=True, exist_ok=True)
    for cid, lines in carts.items():
        (d / f"{cid}.events.log").write_text("".join(x + "\n" for x in lines))
    gz_lines = [nested_payload(DEPTH + 1), nested_payload(DEPTH), OK]
    with gzip.open(d / "gz-deep.events.log.gz", "wb") as fh:
        fh.write("".join(x + "\n" for x in gz_lines).encode())
    carts["gz-deep"] = gz_lines
    return carts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    d = tmp_path_factory.mktemp("hostile") / "logs"
    return d, write_corpus(d)


@contextlib.contextmanager
def recursion_limit(limit: int | None) -> Iterator[None]:
    """Run the body under ``sys.setrecursionlimit(limit)`` (None: unchanged). The limit is
    absolute: pytest's own frames count against it, which leaves the code under test less."""
    old = sys.getrecursionlimit()
    if limit is not None:
        sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


LIMITS = [None, 200]
EXPECTED = {
    # cart -> outcome per line in go mode (the ts are strings, so lenient agrees)
    "payload-ok": ["applied", "applied"],
    "payload-deep": ["malformed", "applied"],
    "envelope-ok": ["malformed", "applied"],
    "envelope-deep": ["malformed", "applied"],
    "objects-ok": ["unknown_type", "applied"],
    "objects-deep": ["malformed", "applied"],
    "lookalike": ["applied", "applied"],
    "plain": ["applied", "applied"],
    "gz-deep": ["malformed", "applied", "applied"],
}
DEPTH_ERRORS = {
    ("payload-deep", 1): "invalid character '[' exceeded max depth",
    ("envelope-deep", 1): "invalid character '[' exceeded max depth",
    ("objects-deep", 1): "invalid character '{' exceeded max depth",
    ("gz-deep", 1): "invalid character '[' exceeded max depth",
}


def check_outcomes(outcomes) -> None:
    got: dict[str, list[str]] = {}
    for rec in outcomes.itertuples():
        got.setdefault(str(rec.cart_id), []).append(str(rec.outcome))
        want = DEPTH_ERRORS.get((str(rec.cart_id), int(rec.line)))
        if want is not None:
            assert rec.error == want
    assert got == EXPECTED


@pytest.mark.parametrize("limit", LIMITS)
def test_read_events_and_replay_classify_as_go(corpus, limit) -> None:
    d, carts = corpus
    with recursion_limit(limit):
        ev = cf.read_events(d)
        go = cf.replay(ev)
        lenient = cf.replay(ev, mode="lenient")
        state = go.state_at("payload-ok", line=1)
    assert len(ev) == sum(len(v) for v in carts.values())
    check_outcomes(go.outcomes)
    check_outcomes(lenient.outcomes)
    assert [i["sku"] for i in state["items"]] == ["deep"]
    assert [i["sku"] for i in go.final_state("lookalike")["items"]][0].startswith("[[[")


@pytest.mark.parametrize("limit", LIMITS)
def test_findings_report_and_widgets_stand(corpus, tmp_path, limit) -> None:
    d, _ = corpus
    with recursion_limit(limit):
        ev = cf.read_events(d)
        go, lenient = cf.replay(ev), cf.replay(ev, mode="lenient")
        fs = cf.findings(go, lenient)
        table = cf.findings_table(fs)
        result = cf.write_report(d, tmp_path / "report", progress=False)
        scrubber = cf.TimelineScrubber(go, cart_id="payload-deep", lenient=lenient)
        scrubber.seek(line=1)
        html_one = scrubber.to_json()
        scrubber.cart_id = "envelope-ok"
        scrubber.seek(line=1)
        dash = cf.FleetDashboard(go, lenient=lenient)
        dash.refresh()
    assert len(table) == len(fs)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "exceeded max depth" in page
    assert result is not None
    assert json.loads(html_one)["cart_id"] == "payload-deep"


@pytest.mark.parametrize("limit", LIMITS)
def test_convert_and_restore_round_trip(corpus, tmp_path, limit) -> None:
    d, _ = corpus
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}
    with recursion_limit(limit):
        cf.convert(d, tmp_path / "ds", workers=1, progress=False)
        cf.restore(tmp_path / "ds", tmp_path / "back")
        again = cf.read_events(tmp_path / "ds")
    for p in d.iterdir():  # a .gz comes back under its own name, its content identical
        back = (tmp_path / "back" / p.name).read_bytes()
        if p.suffix == ".gz":
            assert gzip.decompress(back) == gzip.decompress(p.read_bytes())
        else:
            assert back == p.read_bytes()
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}
    assert len(again) == len(cf.read_events(d))


@pytest.mark.parametrize("limit", LIMITS)
def test_repair_and_dataset_answers_stand(corpus, tmp_path, limit) -> None:
    d, _ = corpus
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with recursion_limit(limit):
        result = cf.repair(d, tmp_path / "repaired", progress=False)
        cf.convert(d, tmp_path / "ds", workers=1, progress=False)
        summary = cf.fleet_summary(tmp_path / "ds")
        cf.write_report(tmp_path / "ds", tmp_path / "report", progress=False)
    assert before == {p.name: p.read_bytes() for p in d.iterdir()}
    assert set(result.carts["status"]) <= {"repaired", "unchanged", "unrepairable"}
    assert summary.lines == sum(len(v) for v in EXPECTED.values())
    assert "exceeded max depth" in (tmp_path / "report" / "report.html").read_text()


@pytest.mark.parametrize("limit", LIMITS)
def test_cli_commands_stand(corpus, tmp_path, capsys, limit) -> None:
    d, _ = corpus
    with recursion_limit(limit):
        assert cli_main(["replay", str(d), "--format", "jsonl"]) == 0
        jsonl = capsys.readouterr().out
        assert cli_main(["replay", str(d)]) == 0
        assert cli_main(["replay", str(d), "--mode", "lenient"]) == 0
        assert cli_main(["state", str(d), "--cart", "payload-ok", "--line", "1"]) == 0
        assert cli_main(["report", str(d), "--out", str(tmp_path / "r")]) == 0
        assert cli_main(["convert", str(d), str(tmp_path / "ds"), "--workers", "1"]) == 0
        assert cli_main(["restore", str(tmp_path / "ds"), str(tmp_path / "back")]) == 0
        assert cli_main(["report", str(tmp_path / "ds"), "--out", str(tmp_path / "rd")]) == 0
        assert cli_main(["repair", str(d), str(tmp_path / "fixed")]) == 0
        assert cli_main(["replay", str(d), "--go-version", "1.27", "--format", "jsonl"]) == 0
    lines = [json.loads(x) for x in jsonl.splitlines()]
    assert sum(1 for x in lines if "outcome" in x) == sum(len(v) for v in EXPECTED.values())


def test_cli_jsonl_agrees_with_go(corpus, go_ref, tmp_path, capsys) -> None:
    d, _ = corpus
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in sorted(d.iterdir()):  # cfdiff reads files as they are: give it the gz unpacked
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        (plain / p.name.removesuffix(".gz")).write_bytes(data)
    for mode in ("go", "lenient"):
        want = run_cfdiff(go_ref, "replay", "--mode", mode, *map(str, sorted(plain.iterdir())))
        assert cli_main(["replay", str(d), "--mode", mode, "--format", "jsonl",
                         "--go-version", go_ref.go_version]) == 0
        got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert got == want


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("line", [nested_payload(DEPTH), nested_envelope(DEPTH + 1),
                                  nested_objects(DEPTH), string_lookalike()])
def test_pretty_printer_never_recurses(line, limit) -> None:
    with recursion_limit(limit):
        kind, html = pretty_line(line.encode(), limit=1 << 20)
    assert kind in ("json", "raw")
    if line.startswith('{"ts"') and "z" not in line[:200] and '"a"' not in line[:10]:
        assert kind == "json"  # a flat value stays pretty-printed
    assert html


def test_state_json_escapes_line_separators_as_go(tmp_path, capsys) -> None:
    line = ('{"ts":' + TS + ',"type":"AddItem","payload":{"sku":"a\u2028b\u2029c<&>",'
            '"quantity":1}}')
    (tmp_path / "c.events.log").write_text(line + "\n", encoding="utf-8")
    assert cli_main(["replay", str(tmp_path), "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert "\u2028" not in out and "\u2029" not in out
    assert "\\u2028" in out and "\\u2029" in out
    assert len(out.splitlines()) == 2  # one line per physical line, one per cart
    assert [json.loads(x) for x in out.splitlines()][1]["state"]["items"][0]["sku"] == (
        "a\u2028b\u2029c<&>")
    assert cli_main(["state", str(tmp_path), "--cart", "c"]) == 0
    out = capsys.readouterr().out
    assert "\u2028" not in out and "\\u2028" in out
    go = cf.replay(tmp_path)
    text = cf.TimelineScrubber(go, cart_id="c").to_json()  # the widget's export
    assert "\u2028" not in text and "\u2029" not in text and "<&>" in text
    assert json.loads(text)["go"]["state"]["items"][0]["sku"] == "a\u2028b\u2029c<&>"


def test_lenient_takes_every_int64_of_seconds(tmp_path) -> None:
    lines = [
        '{"ts":99999999999,"type":"AddItem","payload":{"sku":"far","quantity":1}}',
        '{"ts":9223372036854775807,"type":"AddItem","payload":{"sku":"max","quantity":1}}',
        '{"ts":9223372036854775808,"type":"AddItem","payload":{"sku":"past","quantity":1}}',
        '{"ts":-9223372036854775808.5,"type":"AddItem","payload":{"sku":"min","quantity":1}}',
        '{"ts":1e-50,"type":"AddItem","payload":{"sku":"tiny","quantity":1}}',
    ]
    (tmp_path / "c.events.log").write_text("".join(x + "\n" for x in lines))
    ev = cf.read_events(tmp_path)
    # the last but one floors to -2**63 - 1 seconds: past int64
    assert ev["ts_kind"].astype(str).tolist() == ["number", "number", "invalid", "invalid",
                                                  "number"]
    assert ev["ts"].isna().tolist() == [True, True, True, True, False]  # beyond pandas: NaT
    r = cf.replay(ev, mode="lenient")
    assert r.outcomes["outcome"].astype(str).tolist() == [
        "applied", "applied", "malformed", "malformed", "applied"]
    assert r.outcomes["error"].tolist()[2:4] == ["ts: number out of range"] * 2
    assert r.state_at("c", line=1)["lastChange"] == "5138-11-16T09:46:39Z"
    assert r.state_at("c", line=2)["lastChange"] == "292277026596-12-04T15:30:07Z"
    assert r.final_state("c")["lastChange"] == "1970-01-01T00:00:00Z"


def _corpus_from_bytes(d: Path, blobs: list[bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for k, blob in enumerate(blobs):
        (d / f"c{k}.events.log").write_bytes(blob)


_LINEISH = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([OK.encode(), b"{", b"[" * 10_001, b"{\"ts\":1}", b"\xff\xfe", b"null",
                     b'{"ts":"2024-03-01T12:00:00Z","type":"AddItem","payload":' + b"[" * 9_999
                     + b"]" * 9_999 + b"}"]),
)
_FILE = st.lists(_LINEISH, max_size=6).map(lambda xs: b"\n".join(xs)) | st.binary(max_size=200)


@settings(max_examples=examples(60, ci=240), deadline=None, suppress_health_check=list(HealthCheck))
@given(blobs=st.lists(_FILE, min_size=1, max_size=3))
def test_any_bytes_read_and_replay_without_exception(tmp_path_factory, blobs) -> None:
    d = tmp_path_factory.mktemp("anybytes")
    _corpus_from_bytes(d, blobs)
    ev = cf.read_events(d)
    physical = sum(b.count(b"\n") + (0 if b.endswith(b"\n") or not b else 1) for b in blobs)
    assert len(ev) == physical
    for mode in ("go", "lenient"):
        r = cf.replay(ev, mode=mode)
        assert len(r.outcomes) == physical
        for cid in r.cart_ids:
            r.final_state(cid)


@settings(max_examples=examples(8, ci=16), deadline=None, suppress_health_check=list(HealthCheck))
@given(blobs=st.lists(_FILE, min_size=1, max_size=3))
def test_any_bytes_report_and_convert_round_trip(tmp_path_factory, blobs) -> None:
    root = tmp_path_factory.mktemp("anybytes")
    d = root / "logs"
    _corpus_from_bytes(d, blobs)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    cf.write_report(d, root / "report", progress=False)
    assert (root / "report" / "report.html").exists()
    cf.convert(d, root / "ds", workers=1, progress=False)
    cf.restore(root / "ds", root / "back")
    for name, data in before.items():
        assert (root / "back" / name).read_bytes() == data
    assert before == {p.name: p.read_bytes() for p in d.iterdir()}  # the source is untouched


# -- file names that are not UTF-8 ----------------------------------------------------------


def test_file_names_that_are_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log whose name's bytes are not UTF-8 is a cart like any other: its id keeps those
    bytes as \\xNN; convert/restore and repair write the exact name back."""
    import os

    src = tmp_path / "logs"
    src.mkdir()
    line = b'{"ts":"2025-01-01T00:00:00Z","type":"AddItem","payload":{"sku":"a","quantity":1}}\n'
    odd = os.fsdecode(b"caf\xe9.events.log")
    (src / odd).write_bytes(line)
    (src / "ok.events.log").write_bytes(line)
    ev = cf.read_events(src, progress=False)
    assert sorted(set(ev["cart_id"])) == ["caf\\xe9", "ok"]
    r = cf.replay(ev)
    assert r.final_state("caf\\xe9")["items"][0]["sku"] == "a"
    rep = cf.write_report(src, tmp_path / "rep", progress=False)
    assert rep.lines == 2 and rep.carts == 2 and rep.html.exists()
    s = cf.convert(src, tmp_path / "ds", progress=False)
    assert s.ok and s.lines == 2
    from cartforensics.io.dataset import read_manifest

    entry = {f["path"]: f for f in read_manifest(tmp_path / "ds")["files"]}
    assert entry["caf\\xe9.events.log"]["path_bytes"] == b"caf\xe9.events.log".hex()
    back = cf.restore(tmp_path / "ds", tmp_path / "back")
    assert back.ok and back.verified == 2
    assert sorted(os.listdir(os.fsencode(tmp_path / "back"))) == [b"caf\xe9.events.log",
                                                                  b"ok.events.log"]
    fixed = cf.repair(src, tmp_path / "fixed")
    assert (tmp_path / "fixed" / odd).read_bytes() == line
    assert fixed.report["carts"]["caf\\xe9"]["status"] == "unchanged"
    for argv in (["replay", str(src)], ["state", str(src), "--cart", "caf\\xe9"],
                 ["report", str(src), "--out", str(tmp_path / "rep2"), "-q"]):
        assert cli_main(argv) == 0, argv
    assert "caf\\\\xe9" in capsys.readouterr().out
