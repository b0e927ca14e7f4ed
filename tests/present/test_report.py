"""``write_report`` and ``cartforensics report``: the files it writes, the HTML's safety with
hostile log content, and clear one-line errors for bad arguments."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cartforensics import read_events
from cartforensics.analysis.findings import headline
from cartforensics.cli.app import main
from cartforensics.present.report import CHARTS, ReportError, write_report

ROOT = Path(__file__).resolve().parents[2]
T0 = 1740823200
HOSTILE_SKU = "<img src=x onerror=alert(1)>"
HOSTILE_TYPE = "</script><script>alert(1)</script>"
HOSTILE_CART = "c&<>\"'x"
PNG = b"\x89PNG\r\n\x1a\n"


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    # ensure_ascii and no HTML escaping: the markup reaches the log as raw bytes, as a writer
    # other than Go's json.Marshal could leave it
    return json.dumps({"ts": ts, "type": type_, "payload": payload}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def iso(unix: int) -> str:
    return pd.Timestamp(unix, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def write_logs(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "plain.events.log").write_bytes(b"".join(
        rec(T0 + 60 * i, "AddItem", {"sku": f"s{i}", "quantity": 1, "price": 100}) + b"\n"
        for i in range(4)))
    (d / f"{HOSTILE_CART}.events.log").write_bytes(b"\n".join([
        rec(T0 + 10, "AddItem", {"sku": HOSTILE_SKU, "quantity": 1}),  # numeric ts
        rec(iso(T0 + 20), "AddItem", {"sku": HOSTILE_SKU, "quantity": 1, "price": 5}),
        rec(iso(T0 + 30), HOSTILE_TYPE, {"sku": HOSTILE_SKU}),
        rec(iso(T0 + 40), "AddItem", {"sku": HOSTILE_SKU, "quantity": HOSTILE_SKU}),
        rec(iso(T0 + 40), "AddItem", {"sku": HOSTILE_SKU, "quantity": HOSTILE_SKU}),
        rec(iso(T0 + 50), "ChangeQuantity", {"Id": 1, "quantity": 3}) + b"{" + HOSTILE_SKU.encode(),
        rec(iso(T0 + 60), "RemoveItem", {"Id": 1}),  # final line, no newline
    ]))
    return d


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("report")
    logs = write_logs(base / "logs")
    out = base / "out"
    res = write_report(logs, out, progress=False)
    return {"logs": logs, "out": out, "res": res,
            "html": (out / "report.html").read_text(encoding="utf-8")}


def test_writes_every_file(report: dict[str, Any]) -> None:
    out = report["out"]
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "outcomes.parquet"} <= names
    for name, _ in CHARTS:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG)
    assert report["res"].charts == {name: out / f"{name}.png" for name, _ in CHARTS}


def test_html_parses_and_holds_its_images(report: dict[str, Any]) -> None:
    p = Collect()
    p.feed(report["html"])
    p.close()
    imgs = [a for t, a in p.tags if t == "img"]
    assert len(imgs) == len(CHARTS)
    for a in imgs:
        src = a["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG)
    # self-contained: nothing fetched from elsewhere
    for _, a in p.tags:
        for k in ("src", "href"):
            assert not a.get(k) or (a[k] or "").startswith(("data:", "#"))


def test_no_markup_from_log_content(report: dict[str, Any]) -> None:
    html = report["html"]
    p = Collect()
    p.feed(html)
    tags = {t for t, _ in p.tags}
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p",
                    "div", "b", "table", "thead", "tbody", "tr", "th", "td", "code", "pre",
                    "details", "summary", "figure", "img", "figcaption", "span", "a", "nav",
                    "ol", "li", "section", "script", "wbr"}
    # one script: the timelines' module, allowed by its hash and nothing else
    scripts = [a for t, a in p.tags if t == "script"]
    assert scripts == [{"type": "module"}]
    body = html[html.index('<script type="module">') + len('<script type="module">'):]
    body = body[:body.index("</script>")]
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    csp = next(a["content"] for t, a in p.tags if t == "meta" and
               a.get("http-equiv") == "Content-Security-Policy")
    assert csp == ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                   f"script-src 'sha256-{digest}'")
    for _, attrs in p.tags:
        assert not any(k.startswith("on") for k in attrs)
    for raw in (HOSTILE_SKU, HOSTILE_TYPE, HOSTILE_CART, "<img src=x", "<script>"):
        assert raw not in html
    # the content is there, escaped: a reader sees it as text
    text = "".join(p.text)
    assert HOSTILE_TYPE in text and HOSTILE_CART in text and HOSTILE_SKU in text
    assert "c&amp;&lt;&gt;&quot;&#x27;x" in html


def test_markdown_escapes_log_content(report: dict[str, Any]) -> None:
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    for raw in (HOSTILE_SKU, HOSTILE_TYPE, "<script>", "<img"):
        assert raw not in md
    assert md.startswith("# cartforensics report")
    head = headline(read_events(report["logs"]))
    assert head and head.replace("'", "&#x27;") not in md  # quotes stay readable in Markdown
    assert head in md
    for name, _ in CHARTS:
        assert f"({name}.png)" in md


def test_headline_first_in_html_and_summary(report: dict[str, Any]) -> None:
    res = report["res"]
    head = headline(read_events(report["logs"]))
    assert head == "5 of 11 lines (2 carts) are dropped by the service's reader: ts is a JSON " \
        "number, the reader expects an RFC 3339 string"
    assert res.headline == head
    assert res.summary().splitlines()[0] == head
    assert "Top findings:" in res.summary()
    escaped = head.replace("'", "&#x27;")
    assert f'<div class="headline">{escaped}</div>' in report["html"]


def test_parquet_holds_both_modes_in_plain_types(report: dict[str, Any]) -> None:
    t = pq.read_table(report["out"] / "outcomes.parquet")
    assert t.column_names == ["mode", "cart_id", "line", "ts", "type", "outcome", "error"]
    for f in t.schema:
        assert "dictionary" not in str(f.type)
    df = t.to_pandas()
    assert df["mode"].value_counts().to_dict() == {"go": 11, "lenient": 11}
    go = df[df["mode"] == "go"]
    assert set(go["cart_id"]) == {"plain", HOSTILE_CART}
    assert (go["outcome"] == "malformed").sum() == 5 + 1  # numeric ts + the glued line
    assert df["ts"].dt.tz is not None


def test_result_numbers(report: dict[str, Any]) -> None:
    res = report["res"]
    assert (res.lines, res.carts) == (11, 2)
    go = res.go.outcomes["outcome"].astype(str)
    le = res.lenient.outcomes["outcome"].astype(str)
    assert res.applied_go == int((go == "applied").sum())
    assert res.applied_lenient == int((le == "applied").sum())
    assert res.lost == int(((le == "applied") & (go != "applied")).sum())
    kinds = {f.kind for f in res.findings}
    assert {"numeric_ts", "unknown_type", "glued", "payload_error", "duplicate",
            "no_final_newline"} <= kinds


# -- command line --------------------------------------------------------------------------
def test_cli_report(report: dict[str, Any], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["report", str(report["logs"]), "--out", str(out), "--quiet"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0] == report["res"].headline
    assert lines[2] == "Top findings:"
    assert (out / "report.html").exists()
    assert cap.err == ""


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cartforensics:"), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_missing_src(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "nope" in line
    assert not (tmp_path / "o").exists()  # nothing created for a run that cannot start


def test_cli_out_is_a_file(report: dict[str, Any], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["report", str(report["logs"]), "--out", str(f)]) == 2
    assert "not a directory" in one_error_line(capsys.readouterr().err)
    assert f.read_text() == "x"


def test_cli_out_cannot_be_created(report: dict[str, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["report", str(report["logs"]), "--out", str(f / "sub")]) == 2
    assert "cannot create" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc file system")
def test_cli_out_not_writable(report: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A directory that exists but takes no new file, for root too (CI runs as root, whom
    a read-only mode does not stop): /proc/self."""
    assert main(["report", str(report["logs"]), "--out", "/proc/self"]) == 2
    assert "cannot write" in one_error_line(capsys.readouterr().err)


def test_cli_src_omitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["report", "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "SRC" in one_error_line(capsys.readouterr().err)


def test_library_errors(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    logs = write_logs(tmp_path / "logs")
    with pytest.raises(ReportError, match="not a directory"):
        write_report(logs, f)
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing", tmp_path / "o")


def test_cli_subprocess_bad_out_has_no_traceback(report: dict[str, Any], tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "cartforensics", "report", str(report["logs"]),
                        "--out", str(f)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2
    one_error_line(p.stderr)
    assert p.stdout == ""


@pytest.mark.parametrize("go_version", ["1.25", "1.27"])
def test_report_names_its_toolchain_and_the_lines_that_depend_on_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], go_version: str) -> None:
    """The header says which Go the report replayed as, and a finding lists the lines whose
    outcome the other side of the json v1/v2 line would change, with carts and money."""
    logs = write_logs(tmp_path / "logs")
    (logs / "esc.events.log").write_bytes(b"\n".join([
        rec(iso(T0), "AddItem", {"sku": "a", "quantity": 1, "price": 100}),
        rec(iso(T0 + 5), "AddItem", {"sku": "b", "quantity": 2, "price": 700}).replace(
            b'Z",', b'\\u005a",'),  # Go >= 1.27 applies it, Go <= 1.26 drops it
        rec(iso(T0 + 9), "ChangeQuantity", {"Id": 2, "quantity": 3}),  # item 2 only under 1.27
    ]) + b"\n")
    out = tmp_path / "out"
    assert main(["report", str(logs), "--out", str(out), "--quiet",
                 "--go-version", go_version]) == 0
    printed = capsys.readouterr().out
    label = {"1.25": "Go 1.25 (encoding/json v1)",
             "1.27": "Go 1.27 (encoding/json on json v2)"}[go_version]
    assert f"Replayed as {label}." in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"replayed as {label}" in html and f"Replayed as {label}." in md
    res = write_report(logs, tmp_path / "lib", progress=False, go_version=go_version)
    (tc,) = [f for f in res.findings if f.kind == "toolchain"]
    assert tc.message.startswith(
        "1 line in 1 cart has an escaped ts: Go ≥ 1.27 applies it, Go ≤ 1.26 drops it; 1 more "
        "line of that cart changes outcome with them")
    assert "At stake: 1 cart whose total differs, 2,100 in all." in tc.message
    assert tc.evidence["line"].tolist() == [2, 3]
    assert tc.evidence["escaped_ts"].tolist() == [True, False]
    other = "1.27" if go_version == "1.25" else "1.25"
    assert tc.details["other"] == other
    totals = {"1.25": 100, "1.27": 100 + 3 * 700}
    assert tc.details["per_cart"] == [{"cart_id": "esc", "lines": 2, "total": totals[go_version],
                                       "total_other": totals[other]}]
    assert res.go.final_state("esc")["totalPrice"] == totals[go_version]
    assert tc.title in html
# -- analyst notes -------------------------------------------------------------------------
HOSTILE_NOTE = "<script>alert('note')</script> | `x` *y* \u202e[z](javascript:1)"


def test_cli_report_carries_hostile_notes_escaped(report: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from cartforensics import Notes

    notes_path = tmp_path / "notes.json"
    notes = Notes(notes_path)
    notes.add("plain", 2, HOSTILE_NOTE, tags=["root cause", "<b>tag</b>"])
    notes.add(HOSTILE_CART, 3, "unknown type here", tags=["evidence"])
    notes.add("plain", 99, "a line the logs no longer hold")
    notes.add("gone-cart", 1, "a cart rotated away")
    out = tmp_path / "rep"
    assert main(["report", str(report["logs"]), "--out", str(out), "--quiet",
                 "--notes", str(notes_path)]) == 0
    assert capsys.readouterr().err == ""
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index("<h2>Analyst notes</h2>"):html.index('<h2 id="charts">Charts</h2>')]
    for raw in ("<script>", "<b>tag</b>", "\u202e", HOSTILE_SKU):
        assert raw not in section
    p = Collect()
    p.feed(section)
    text = "".join(p.text)
    assert {t for t, _ in p.tags} <= {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th",
                                      "td", "code", "wbr"}
    visible_note = HOSTILE_NOTE.replace("\u202e", "\\u202e")
    assert visible_note in text and "<b>tag</b>" in text
    rows = [r for r in section.split("<tr>")[1:]]
    hostile_row = next(r for r in rows if "alert(&#x27;note&#x27;)" in r)
    cells = Collect()
    cells.feed(hostile_row)
    texts = [t for t in cells.text]
    assert texts[:2] == ["plain", "2"]  # cart and line
    assert "malformed" in texts and "applied" in texts  # numeric ts: go drops, lenient applies
    assert any(t.startswith("#") and "numeric ts" in t for t in texts)  # its finding
    assert any('"sku":"s1"' in t for t in texts)  # the raw line
    unknown_row = next(r for r in rows if "unknown type here" in r)
    assert "unknown_type" in unknown_row and "unknown event type" in unknown_row
    assert "Notes on lines these logs do not hold (2)" in section
    assert "plain has 4 lines: line 99 is not in these logs" in section
    assert "no cart gone-cart in these logs" in section

    md = (out / "report.md").read_text(encoding="utf-8")
    md_section = md[md.index("## Analyst notes"):md.index("## Charts")]
    for raw in ("<script>", "<b>", "`x`", "*y*", "[z]", "\u202e"):
        assert raw not in md_section
    assert "&lt;script&gt;alert(&#x27;note&#x27;)&lt;/script&gt;" in md_section or \
        "&lt;script&gt;alert('note')&lt;/script&gt;" in md_section
    row = next(ln for ln in md_section.splitlines() if "note&#x27;)" in ln or "note')" in ln)
    cells_md = [c.strip() for c in row.strip("|").split("|")]
    assert cells_md[:2] == ["plain", "2"] and len(cells_md) == 8  # no pipe broke the row
    assert "a cart rotated away" in md_section


def test_report_notes_errors(report: dict[str, Any], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["report", str(report["logs"]), "--out", str(tmp_path / "o"),
                 "--notes", str(missing)]) == 2
    assert "no such notes file" in one_error_line(capsys.readouterr().err)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["report", str(report["logs"]), "--out", str(tmp_path / "o"),
                 "--notes", str(bad)]) == 2
    assert "not JSON" in one_error_line(capsys.readouterr().err)
    with pytest.raises(ReportError):
        write_report(report["logs"], tmp_path / "o2", notes=42)  # type: ignore[arg-type]


# -- impact, navigation ---------------------------------------------------------------------
def test_impact_in_both_pages_equals_the_replays(report: dict[str, Any]) -> None:
    import cartforensics as cf
    from cartforensics.analysis.impact import cart_impact, impact_totals
    from cartforensics.present.report import impact_sentence

    ev = read_events(report["logs"], progress=False)
    go, lenient = cf.replay(ev, mode="go"), cf.replay(ev, mode="lenient")
    want = impact_totals(cart_impact(go, lenient, lenient.cart_ids))
    assert want.carts_differing > 0
    sentence = impact_sentence(want)
    html = report["html"]
    assert html.index('id="impact"') < html.index('id="findings"')
    assert sentence.replace("'", "&#x27;") in html
    md = (report["out"] / "report.md").read_text(encoding="utf-8")
    assert md.index("## What was lost") < md.index("## Findings")
    assert sentence.replace("\u202f", " ") in md
    for section in ("## The lines behind each finding", "## Carts that lost lines",
                    "Per finding:"):
        assert section in md


def test_unix_gauges_show_as_dates(report: dict[str, Any]) -> None:
    html = report["html"]
    row = html[html.index("cart_event_log_last_append_unix"):]
    row = row[:row.index("</tr>")]
    assert " UTC (" in row and "e+09" not in row


def test_cart_anchors_are_attribute_safe_and_distinct() -> None:
    from cartforensics.present.report import _Anchors, cart_anchor

    ids = ["cart-1164", "1164", HOSTILE_CART, "a b", "a_20_b", "é"]
    anchors = _Anchors(ids).of
    assert anchors["cart-1164"] == "cart-1164"
    assert len(set(anchors.values())) == len(ids)
    for a in anchors.values():
        assert all(ch.isascii() and (ch.isalnum() or ch in "-._") for ch in a)
    assert cart_anchor("a b") != cart_anchor("a_20_b")
    link = _Anchors([HOSTILE_CART]).link(HOSTILE_CART)
    assert HOSTILE_CART not in link and link.startswith('<a href="#cart-')


def test_a_list_of_find_logs_entries_or_a_resolved_source_is_a_source(tmp_path: Path) -> None:
    """write_report takes what read_events takes: find_logs' entries and what resolve_source
    made are named by their paths (a few listed, many counted), and the page's Python to
    reproduce reads the same files."""
    from cartforensics.io.logs import find_logs
    from cartforensics.io.sources import resolve_source

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    few = find_logs(sample)[:2]
    r = write_report(few, tmp_path / "few", progress=False, timelines=0)
    page = r.html.read_text(encoding="utf-8")
    assert f"{few[0].path}, {few[1].path}: 2 carts" in page
    assert f"cf.read_events([&#x27;{few[0].path}&#x27;, &#x27;{few[1].path}&#x27;]" in page
    call = json.loads((tmp_path / "few" / "provenance.json").read_text())["call"]
    assert call["arguments"]["src"] == repr([str(few[0].path), str(few[1].path)])
    everything = resolve_source(sample)
    r = write_report(everything, tmp_path / "all", progress=False, timelines=0)
    page = r.html.read_text(encoding="utf-8")
    assert f"{len(everything.logs):,} logs in {sample}: {r.carts:,} carts" in page
    assert r.lines == len(read_events(sample, progress=False))
