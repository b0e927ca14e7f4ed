"""``cartforensics sql``: a table on the terminal with log text escaped, csv/json/parquet
written exactly, and one line with exit status 2 for a bad query or path."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import cartforensics as cf
from cartforensics.cli.app import main

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
ESC_TYPE = "Evil\x1b[31m\u202e<b>"


@pytest.fixture(scope="module")
def hostile_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sqlcli") / "logs"
    d.mkdir()
    line = json.dumps({"ts": "2025-10-28T10:00:00Z", "type": ESC_TYPE, "payload": {}})
    (d / "cart-1.events.log").write_text(line + "\n", encoding="utf-8")
    return d


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_table_escapes_log_text(hostile_logs: Path, capsys) -> None:
    code, out, err = run(["sql", str(hostile_logs), "select type, outcome_lenient from events"],
                         capsys)
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert "Evil\\x1b[31m\\u202e<b>" in out and "unknown_type" in out


def test_an_empty_answer(hostile_logs: Path, capsys) -> None:
    code, out, _ = run(["sql", str(hostile_logs), "select cart_id, line from events where "
                        "false"], capsys)
    assert code == 0 and out == "cart_id  line\n(no rows)\n"
    code, out, _ = run(["sql", str(hostile_logs), "select 1 as n, 2 as n"], capsys)
    assert code == 0 and out.split() == ["n", "n", "1", "2"]


def test_files_are_written_exactly(hostile_logs: Path, tmp_path: Path, capsys) -> None:
    q = "select cart_id, type from events"
    assert run(["sql", str(hostile_logs), q, "--format", "parquet", "--out",
                str(tmp_path / "r.parquet")], capsys)[0] == 0
    assert pq.read_table(tmp_path / "r.parquet")["type"].to_pylist() == [ESC_TYPE]
    assert run(["sql", str(hostile_logs), q, "-f", "csv", "-o", str(tmp_path / "r.csv")],
               capsys)[0] == 0
    assert ESC_TYPE in (tmp_path / "r.csv").read_text(encoding="utf-8")
    # to the terminal: escaped there too, still JSON of the same value
    code, out, _ = run(["sql", str(hostile_logs), q, "-f", "json"], capsys)
    assert code == 0 and "\x1b" not in out and "\u202e" not in out
    assert json.loads(out.splitlines()[0].replace("\\x1b", "\\u001b"))["type"] == ESC_TYPE


def test_a_dataset_answers_as_its_logs(tmp_path: Path, capsys) -> None:
    cf.convert(SAMPLE, tmp_path / "ds", workers=1, progress=False)
    q = "select mode, outcome, count(*) as n from outcomes group by all order by all"
    a = run(["sql", str(SAMPLE), q, "-f", "csv"], capsys)
    b = run(["sql", str(tmp_path / "ds"), q, "-f", "csv"], capsys)
    assert a[0] == b[0] == 0 and a[1] == b[1] and "lenient,applied," in a[1]


@pytest.mark.parametrize("argv,needle", [
    (["sql", str(SAMPLE), "selec nothing"], "syntax error"),
    (["sql", str(SAMPLE), "select nope from carts"], "nope"),
    (["sql", "/no/such/logs", "select 1"], "/no/such/logs"),
    (["sql", str(SAMPLE), "select 1", "--format", "parquet"], "--out"),
    (["sql", str(SAMPLE), "select 1", "--format", "xlsx"], "invalid choice"),
])
def test_bad_query_or_path_is_one_line_and_exit_2(argv: list[str], needle: str,
                                                  capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own checks (a choice), one line too
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("cartforensics: sql: ") and err.count("\n") == 1, err
    assert needle in err and out == ""


def test_unwritable_out_is_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(["sql", str(SAMPLE), "select 1", "-f", "csv", "-o",
                        str(tmp_path / "missing" / "r.csv")], capsys)
    assert code == 2 and err.startswith("cartforensics: sql: --out") and err.count("\n") == 1

