"""``cartforensics reconcile``: the outputs it writes, one-line errors with exit 2, hostile
content escaped where it is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cartforensics.cli.app import main

T0 = 1765101000


def _setup(tmp: Path, cart: str = "c1") -> tuple[Path, Path]:
    logs = tmp / "logs"
    logs.mkdir()
    line = json.dumps({"ts": T0 + 1, "type": "AddItem", "payload": {"sku": "a", "quantity": 1}},
                      separators=(",", ":")) + "\n"
    torn = '{"ts":' + str(T0 + 1) + ',"type":"Add'
    (logs / f"{cart}.events.log").write_text(torn + line)
    labels = {"job": "cart", "instance": "i\u202e<b>"}
    values = {"cart_event_log_appends_total": 1, "cart_event_log_bytes_written_total": len(line),
              "cart_event_log_replay_total": 1, "cart_event_log_replay_failures_total": 1,
              "cart_event_log_mutation_errors_total": 0, "cart_event_log_unknown_types_total": 0,
              "process_start_time_seconds": T0}
    record = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": m, **labels}, "values": [[T0 + 5, str(v)]]}
        for m, v in values.items()]}}
    rec = tmp / "record.json"
    rec.write_text(json.dumps(record))
    return logs, rec


def test_reconcile_writes_its_outputs_and_prints_the_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, rec = _setup(tmp_path, cart="c\u202e<i>")
    out = tmp_path / "out"
    assert main(["reconcile", str(logs), str(rec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 window(s); difference explained: ")
    assert "unexplained: 0" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "findings.md", "reconcile.csv", "reconcile.png", "windows.csv"]
    md = (out / "findings.md").read_text()
    assert "a torn write in cart c\\u202e&lt;i&gt;" in md  # escaped where shown
    assert "\u202e" not in printed and "c\\u202e<i>" in printed
    assert (out / "reconcile.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("content", ['{"data":', "garbage line\n", '{"status":"error"}'])
def test_a_malformed_record_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    logs, rec = _setup(tmp_path)
    rec.write_text(content)
    out = tmp_path / "out"
    assert main(["reconcile", str(logs), str(rec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cartforensics: ") and err.count("\n") == 1
    assert not out.exists()  # nothing written


def test_a_missing_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["reconcile", "logs"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cartforensics: reconcile: ") and err.count("\n") == 1


def test_report_with_a_prometheus_record_has_the_section(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, rec = _setup(tmp_path, cart="c\u202e<i>")
    out = tmp_path / "report"
    assert main(["report", str(logs), "--prometheus", str(rec), "--out", str(out), "-q",
                 "--workers", "1"]) == 0
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "What Prometheus recorded, reconciled with the logs" in page
    assert "difference explained: " in md and "![reconciled](reconcile.png)" in md
    assert (out / "reconcile.png").read_bytes()[:4] == b"\x89PNG"
    ours = page[page.index('<section id="reconciled">'):page.index('<h2 id="reproduce">')]
    assert "a torn write in cart c\\u202e&lt;i&gt;" in ours  # escaped where shown
    assert "\u202e" not in ours


def test_report_refuses_a_bad_record_before_writing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs, rec = _setup(tmp_path)
    rec.write_text("not a record\n")
    out = tmp_path / "report"
    assert main(["report", str(logs), "--prometheus", str(rec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cartforensics: ") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("value", ["+Inf", "NaN", "-1e300", "1e300"])
def test_a_hostile_record_is_reconciled_or_refused_never_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    logs, rec = _setup(tmp_path)
    doc = json.loads(rec.read_text())
    for r in doc["data"]["result"]:
        r["values"].append([T0 + 6, value])
    rec.write_text(json.dumps(doc))
    code = main(["reconcile", str(logs), str(rec), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 0:
        assert "unexplained" in captured.out
    else:
        assert code == 2 and captured.err.startswith("cartforensics: ")
