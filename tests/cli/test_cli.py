"""The ``cartforensics`` command, in a subprocess (``python -m cartforensics``) and in-process
(``cartforensics.cli.app.main``)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cartforensics import replay
from cartforensics.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
LINE_KEYS = ["cart_id", "line", "outcome", "type", "error"]
CART_KEYS = ["cart_id", "state", "metrics"]
METRICS = ["cart_event_log_replay_total", "cart_event_log_replay_failures_total",
           "cart_event_log_mutation_errors_total", "cart_event_log_unknown_types_total"]
STATE_KEYS = ["id", "items", "deliveries", "totalPrice", "totalTax", "totalDiscount",
              "processing", "paymentInProgress", "orderReference", "paymentStatus", "lastChange"]
HEADLINE_TAIL = ("are dropped by the service's reader: ts is a JSON number, the reader expects "
                 "an RFC 3339 string")


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "cartforensics", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Three carts: a (writer format, numeric ts), b (mixed, no final newline), c (gz, strings).

    Physical lines: a 3, b 4, c 2; numeric-ts lines: a 3, b 2 → 5 of 9 lines, 2 carts."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.events.log").write_bytes(b"".join(
        rec(1700000000 + i, "AddItem", {"sku": f"s{i}", "quantity": 1, "price": 100}) + b"\n"
        for i in range(3)))
    (d / "b.events.log").write_bytes(b"\n".join([
        rec("2024-01-01T00:00:00Z", "AddItem", {"sku": "x", "quantity": 2, "price": 50}),
        rec(1704067201, "AddItem", {"sku": "y", "quantity": 1}),
        rec("2024-01-01T00:00:02Z", "AddVoucher", {"code": "Q"}),
        rec(1704067203, "RemoveItem", {"Id": 1}),
    ]))
    (d / "c.events.log.gz").write_bytes(gzip.compress(
        rec("2024-02-01T00:00:00Z", "AddItem", {"sku": "z", "quantity": 1, "price": 10}) + b"\n"
        + rec("2024-02-01T00:00:05Z", "ChangeQuantity", {"Id": 1, "quantity": 4}) + b"\n"))
    (d / "notes.txt").write_text("not a log\n")
    return d


EXPECTED_GO = {
    "a": ["malformed", "malformed", "malformed"],
    "b": ["applied", "malformed", "unknown_type", "malformed"],
    "c": ["applied", "applied"],
}


# ------------------------------------------------------------------------------- subprocess


def test_help_mentions_both_commands() -> None:
    p = run("--help")
    assert p.returncode == 0
    assert "replay" in p.stdout and "state" in p.stdout
    assert p.stderr == ""


def test_subprocess_jsonl_one_object_per_line_then_one_per_cart(logs: Path) -> None:
    p = run("replay", str(logs), "--format", "jsonl")
    assert p.returncode == 0, p.stderr
    objs = [json.loads(x) for x in p.stdout.splitlines()]
    _check_jsonl(objs, EXPECTED_GO)


def test_subprocess_missing_path_exits_2_with_one_line(tmp_path: Path) -> None:
    ghost = tmp_path / "ghost"
    p = run("replay", str(ghost))
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("cartforensics:")
    assert str(ghost) in err[0]
    assert "Traceback" not in p.stderr
    assert p.stdout == ""


def test_subprocess_state_prints_the_librarys_json(logs: Path) -> None:
    p = run("state", str(logs), "--cart", "c", "--line", "1")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == replay(logs).state_at("c", line=1)


def test_subprocess_unknown_cart(logs: Path) -> None:
    p = run("state", str(logs), "--cart", "nope")
    assert p.returncode != 0
    assert "nope" in p.stderr
    assert "Traceback" not in p.stderr


# ------------------------------------------------------------------------------- in-process


def _check_jsonl(objs: list[dict], expected: dict[str, list[str]]) -> None:
    per_cart_lines = {cid: len(o) for cid, o in expected.items()}
    assert len(objs) == sum(per_cart_lines.values()) + len(expected)
    i = 0
    for cid in sorted(expected):  # carts in cart-id order, each followed by its own object
        for n, outcome in enumerate(expected[cid], start=1):
            o = objs[i]
            assert list(o) == LINE_KEYS
            assert (o["cart_id"], o["line"], o["outcome"]) == (cid, n, outcome)
            if outcome == "applied":
                assert o["error"] is None and isinstance(o["type"], str)
            else:
                assert isinstance(o["error"], str) and o["error"]
            if outcome == "malformed":
                assert o["type"] is None
            i += 1
        c = objs[i]
        assert list(c) == CART_KEYS
        assert c["cart_id"] == cid
        assert list(c["state"]) == STATE_KEYS
        assert list(c["metrics"]) == METRICS
        outs = expected[cid]
        assert c["metrics"]["cart_event_log_replay_failures_total"] == sum(
            o in ("malformed", "unknown_type", "too_long") for o in outs)
        assert c["metrics"]["cart_event_log_mutation_errors_total"] == sum(
            o in ("payload_error", "apply_error") for o in outs)
        assert c["metrics"]["cart_event_log_replay_total"] == int("too_long" not in outs)
        assert c["metrics"]["cart_event_log_unknown_types_total"] == 0
        i += 1


def test_jsonl_in_process(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs), "--format", "jsonl"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    _check_jsonl(objs, EXPECTED_GO)
    by_cart = {o["cart_id"]: o for o in objs if "state" in o}
    assert [(i["sku"], i["qty"]) for i in by_cart["c"]["state"]["items"]] == [("z", 4)]
    assert [(i["sku"], i["qty"]) for i in by_cart["b"]["state"]["items"]] == [("x", 2)]
    assert by_cart["a"]["state"]["items"] == []
    unknown = [o for o in objs if o.get("outcome") == "unknown_type"]
    assert unknown == [{"cart_id": "b", "line": 3, "outcome": "unknown_type",
                        "type": "AddVoucher", "error": 'unknown mutation type: "AddVoucher"'}]


def test_jsonl_lenient_in_process(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs), "--format", "jsonl", "--mode", "lenient"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    _check_jsonl(objs, {
        "a": ["applied"] * 3,
        "b": ["applied", "applied", "unknown_type", "applied"],
        "c": ["applied", "applied"],
    })


def test_jsonl_with_several_paths_and_a_glob(logs: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs / "c.events.log.gz"), str(logs / "a*.events.log"),
                 "--format", "jsonl"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    _check_jsonl(objs, {"a": EXPECTED_GO["a"], "c": EXPECTED_GO["c"]})


def test_table_starts_with_the_headline(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first == f"5 of 9 lines (2 carts) {HEADLINE_TAIL}"
    for cid in ("a", "b", "c"):
        assert cid in out


def test_table_without_numeric_ts_has_no_headline(logs: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs / "c.events.log.gz")]) == 0
    out = capsys.readouterr().out
    assert HEADLINE_TAIL not in out
    assert out.strip()


def test_state_line_and_at_print_the_librarys_json(logs: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    r = replay(logs)
    for args, expected in [
        (["--line", "1"], r.state_at("b", line=1)),
        (["--line", "0"], r.state_at("b", line=0)),
        (["--at", "2024-01-01T00:00:01Z"], r.state_at("b", ts="2024-01-01T00:00:01Z")),
        (["--at", "2023-12-31T23:00:00Z"], r.state_at("b", ts="2023-12-31T23:00:00Z")),
        ([], r.final_state("b")),
    ]:
        assert main(["state", str(logs), "--cart", "b", *args]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got == expected, args
    # and the expectations are not all the same state
    assert r.state_at("b", line=0)["items"] == []
    assert [i["sku"] for i in r.state_at("b", line=1)["items"]] == ["x"]


def test_state_lenient_mode(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", str(logs), "--cart", "a", "--mode", "lenient"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [i["sku"] for i in got["items"]] == ["s0", "s1", "s2"]
    assert got == replay(logs, mode="lenient").final_state("a")


def test_missing_path_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ghost = tmp_path / "nothing-here"
    assert main(["replay", str(ghost)]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cartforensics:") and str(ghost) in err[0]
    assert cap.out == ""
    assert main(["state", str(ghost), "--cart", "x"]) == 2


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    try:
        code: Any = main(argv)
        extra = ""
    except SystemExit as e:
        code = e.code
        extra = e.code if isinstance(e.code, str) else ""
    return code, capsys.readouterr().err + extra


def test_unknown_cart_in_process(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(["state", str(logs), "--cart", "zz-missing"], capsys)
    assert code not in (0, None)
    assert "zz-missing" in err and err.startswith("cartforensics:")


def test_state_line_past_the_end_is_a_clean_error(logs: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(["state", str(logs), "--cart", "c", "--line", "3"], capsys)
    assert code not in (0, None)
    assert err.startswith("cartforensics:") and "Traceback" not in err


def test_bad_time_is_a_clean_error(logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(["state", str(logs), "--cart", "c", "--at", "not a time"], capsys)
    assert code not in (0, None)
    assert err.startswith("cartforensics:")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["replay", "x", "--mode", "strict"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["state", "x", "--cart", "c", "--line", "1", "--at", "2024-01-01"])
    assert e.value.code == 2
    capsys.readouterr()


def test_go_version_changes_an_escaped_ts_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """--go-version 1.27 reads an escaped ts as Go 1.27 does (applied); the default, 1.25,
    drops it; the table says which toolchain it replayed as."""
    f = tmp_path / "e.events.log"
    f.write_bytes(b'{"ts":"2024-01-01T00:00:00\\u005a","type":"AddItem","payload":'
                  b'{"sku":"x","quantity":1,"price":7}}\n')
    outcomes = {}
    for version in ("1.25", "1.27", "1.27+nojsonv2"):
        assert main(["replay", str(f), "--format", "jsonl", "--go-version", version]) == 0
        outcomes[version] = json.loads(capsys.readouterr().out.splitlines()[0])["outcome"]
    assert outcomes == {"1.25": "malformed", "1.27": "applied", "1.27+nojsonv2": "malformed"}
    assert main(["state", str(f), "--cart", "e", "--go-version", "go1.27.3"]) == 0
    assert json.loads(capsys.readouterr().out)["totalPrice"] == 7
    assert main(["replay", str(f), "--go-version", "1.27"]) == 0
    assert "replayed as Go 1.27 (encoding/json on json v2)" in capsys.readouterr().out


def test_bad_go_version_is_one_line_exit_2(tmp_path: Path) -> None:
    p = run("replay", str(tmp_path), "--go-version", "1.30")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cartforensics: replay: argument --go-version")
    assert "'1.25', '1.26', '1.27'" in lines[0]


# -------------------------------------------------------------------------- --cart, progress

def test_replay_cart_keeps_only_those_carts_rows(logs: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(logs), "--format", "jsonl", "--cart", "c", "--cart", "a",
                 "--cart", "a"]) == 0
    objs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    _check_jsonl(objs, {"a": EXPECTED_GO["a"], "c": EXPECTED_GO["c"]})  # replay order
    assert main(["replay", str(logs), "--cart", "b"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"5 of 9 lines (2 carts) {HEADLINE_TAIL}"  # still over the whole source
    assert "carts shown: 1 of 3 (--cart); the headline and the metrics are over all 3" in out
    table = out[out.index(next(x for x in out if x.startswith("mode:"))) + 1:
                out.index("metrics the service would export for this replay:") - 1]
    assert [row.split()[0] for row in table[2:]] == ["b"]  # the headers, then cart b only
    metrics = out[out.index("metrics the service would export for this replay:"):]
    assert main(["replay", str(logs)]) == 0
    whole = capsys.readouterr().out.splitlines()
    assert metrics == whole[whole.index(metrics[0]):]  # the metrics of the whole source
    assert any(len(row.split()) > 1 and row.split()[0] == "a" for row in whole)


def test_replay_unknown_cart_exits_2_naming_the_closest(logs: Path, tmp_path: Path) -> None:
    (logs / "cart-1164.events.log").write_bytes(rec("2024-01-01T00:00:00Z", "AddItem",
                                                    {"sku": "x", "quantity": 1}) + b"\n")
    p = run("replay", str(logs), "--cart", "cart-1146", "--cart", "b")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("cartforensics: replay: ")
    assert "no cart 'cart-1146'" in p.stderr and "closest: cart-1164" in p.stderr


def _many_logs(d: Path, n: int = 240) -> Path:
    """More than 200 logs: the size at which read_events draws a bar on a terminal."""
    d.mkdir()
    for k in range(n):
        (d / f"c{k}.events.log").write_bytes(
            rec(1700000000 + k, "AddItem", {"sku": "s", "quantity": 1}) + b"\n")
    return d


def _run_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``cartforensics`` with stdout and stderr piped (capture_output), read as bytes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "cartforensics", *args], capture_output=True,
                          env=env, timeout=120, cwd=ROOT)


def test_piped_output_has_no_progress_bar(tmp_path: Path) -> None:
    logs = _many_logs(tmp_path / "logs")
    for args in ((), ("--format", "jsonl")):
        p = _run_bytes("replay", str(logs), *args)
        assert p.returncode == 0, p.stderr
        assert p.stderr == b""
        assert b"\r" not in p.stdout and b"\x1b[" not in p.stdout
        assert "█".encode() not in p.stdout and b"file/s" not in p.stdout
        first = p.stdout.splitlines()[0].decode()
        assert first.startswith(("240 of 240 lines (240 carts)", '{"cart_id":"c0"'))
    forced = _run_bytes("replay", str(logs), "--format", "jsonl", "--progress")
    assert b"reading logs" in forced.stderr and b"\r" in forced.stderr  # drawn when asked
    assert b"reading logs" not in forced.stdout and b"\r" not in forced.stdout
    for flags in (("--progress", "--quiet"), ("--no-progress",)):
        assert _run_bytes("replay", str(logs), *flags).stderr == b""
