"""Rebuilt metrics and rates against counts made independently of the library: from the bytes
of crafted files and from the outcome each line was planted with."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cartforensics import read_events, replay
from cartforensics.analysis.metrics import (
    PROMISED_UNKNOWN_METRIC,
    READER_METRICS,
    SEED_METRICS,
    WRITER_METRICS,
    go_float,
    metrics,
    prometheus_text,
    rates,
)

T0 = 1740823200  # 2025-03-01T10:00:00Z
# the seed service's source as the repository holds it (tests/go/promservice/event_log.go, the
# seed unchanged under a header comment); the shared copy beside the repository, where there is
# one, must be the same text
SEED = Path(__file__).resolve().parents[1] / "go" / "promservice" / "event_log.go"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "event_log.go"
# the seed's help texts, copied by hand from event_log.go
HELP = {
    "cart_event_log_appends_total": "Total number of cart mutation events appended to event "
    "logs.",
    "cart_event_log_replay_total": "Total number of successful event log replays (per cart).",
    "cart_event_log_replay_failures_total": "Total number of failed event log replay "
    "operations.",
    "cart_event_log_bytes_written_total": "Cumulative number of bytes written to all cart event "
    "logs.",
    "cart_event_log_files_existing": "Number of cart event log files currently existing on "
    "disk.",
    "cart_event_log_last_append_unix": "Unix timestamp of the last append to any cart event "
    "log.",
    "cart_event_log_unknown_types_total": "Total number of unknown event types encountered "
    "during replay (skipped).",
    "cart_event_log_mutation_errors_total": "Total number of errors applying mutation events "
    "during replay.",
}


def iso(unix: int) -> str:
    return pd.Timestamp(unix, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


# (cart, bytes of the line, ts it carries (unix s) or None, go outcome); per cart in file order
PLAN: list[tuple[str, bytes, int | None, str]] = [
    # writer format: numeric ts, every line dropped by the reader
    ("a", rec(T0, "AddItem", {"sku": "1", "quantity": 1}), T0, "malformed"),
    ("a", rec(T0 + 60, "AddItem", {"sku": "2", "quantity": 1}), T0 + 60, "malformed"),
    ("a", rec(T0 + 3700, "RemoveItem", {"Id": 1}), T0 + 3700, "malformed"),
    # strings: applied, unknown type, payload error, apply error, a glued line, then a final
    # line without its newline
    ("b", rec(iso(T0 + 10), "AddItem", {"sku": "x", "quantity": 2}), T0 + 10, "applied"),
    ("b", rec(iso(T0 + 20), "AddVoucher", {"code": "Q"}), T0 + 20, "unknown_type"),
    ("b", rec(iso(T0 + 3600), "AddVoucher", {"code": "R"}), T0 + 3600, "unknown_type"),
    ("b", rec(iso(T0 + 3610), "AddItem", {"quantity": "2"}), T0 + 3610, "payload_error"),
    ("b", rec(iso(T0 + 3620), "RemoveItem", {"Id": 7}), T0 + 3620, "apply_error"),
    ("b", rec(iso(T0 + 3630), "RemoveItem", {"Id": 1}) * 2, None, "malformed"),
    ("b", rec(iso(T0 + 7300), "OrderCreated", {"orderId": "o"}), T0 + 7300, "applied"),
    # a line over 256 KiB stops the scanner: the rest is not reached
    ("c", rec(iso(T0 + 30), "AddItem", {"sku": "c", "quantity": 1}), T0 + 30, "applied"),
    ("c", rec(iso(T0 + 40), "AddItem", {"sku": "d", "quantity": 1, "name": "n" * 270_000}),
     T0 + 40, "too_long"),
    ("c", rec(iso(T0 + 50), "RemoveItem", {"Id": 1}), T0 + 50, "not_reached"),
]
NO_NEWLINE = {("b", 7)}  # the last line of b


def file_bytes(cart: str) -> bytes:
    rows = [(i, line) for i, (c, line, _, _) in enumerate(PLAN) if c == cart]
    out = b""
    for n, (_, line) in enumerate(rows, 1):
        out += line + (b"" if (cart, n) in NO_NEWLINE else b"\n")
    return out


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("metrics") / "logs"
    d.mkdir()
    for cart in ("a", "b"):
        (d / f"{cart}.events.log").write_bytes(file_bytes(cart))
    (d / "c.events.log.gz").write_bytes(gzip.compress(file_bytes("c")))  # not in the glob
    (d / "empty.events.log").write_bytes(b"")  # replays successfully, counts as a file
    return d


@pytest.fixture(scope="module")
def go(logs: Path) -> Any:
    return replay(read_events(logs), mode="go")


def planted(pred: Any) -> int:
    return sum(1 for row in PLAN if pred(*row))


def test_fixture_outcomes_are_as_planted(go: Any) -> None:
    oc = go.outcomes
    for cart in ("a", "b", "c"):
        got = oc.loc[oc["cart_id"] == cart, "outcome"].astype(str).tolist()
        assert got == [o for c, _, _, o in PLAN if c == cart]


def test_reader_metrics_equal_planted_counts(go: Any) -> None:
    m = metrics(go)["value"]
    outcomes = Counter(o for *_, o in PLAN)
    # a, b and the empty file replay without a scanner error; c stops at its long line
    assert m["cart_event_log_replay_total"] == 3
    assert m["cart_event_log_replay_failures_total"] == (
        outcomes["malformed"] + outcomes["unknown_type"] + outcomes["too_long"]) == 7
    assert m["cart_event_log_mutation_errors_total"] == 2
    assert m["cart_event_log_unknown_types_total"] == 0
    assert m[PROMISED_UNKNOWN_METRIC] == outcomes["unknown_type"] == 2


def test_writer_metrics_equal_counts_from_the_bytes(go: Any) -> None:
    m = metrics(go)["value"]
    datas = [file_bytes(c) for c in ("a", "b", "c")]
    assert m["cart_event_log_appends_total"] == sum(d.count(b"\n") for d in datas) == 12
    assert m["cart_event_log_bytes_written_total"] == sum(d.rfind(b"\n") + 1 for d in datas)
    assert m["cart_event_log_files_existing"] == 3  # a, b, empty: the .gz is not *.events.log
    assert m["cart_event_log_last_append_unix"] == max(t for _, _, t, _ in PLAN if t) == \
        T0 + 7300


def test_metrics_frame_shape(go: Any) -> None:
    df = metrics(go)
    assert list(df.index) == [*READER_METRICS, PROMISED_UNKNOWN_METRIC, *WRITER_METRICS]
    assert set(df["side"]) == {"reader", "writer"}
    for name in READER_METRICS + WRITER_METRICS:
        assert (df.loc[name, "type"], df.loc[name, "help"]) == SEED_METRICS[name]
        assert df.loc[name, "help"] == HELP[name]
    by_cart = metrics(go, by_cart=True)
    assert list(by_cart.index) == ["a", "b", "c", "empty"]
    assert by_cart["cart_event_log_replay_failures_total"].tolist() == [3, 3, 1, 0]
    assert by_cart["cart_event_log_appends_total"].tolist() == [3, 6, 3, 0]
    assert by_cart["cart_event_log_files_existing"].tolist() == [1, 1, 0, 1]
    totals = metrics(go)["value"]
    for col in by_cart.columns:
        if col != "cart_event_log_last_append_unix":
            assert by_cart[col].sum() == totals[col]


def test_help_texts_are_the_seeds() -> None:
    text = SEED.read_text()
    found = dict(re.findall(r'Name:\s*"([a-z_]+)",\s*Help:\s*"([^"]*)"', text))
    assert found
    for name, (_, help_text) in SEED_METRICS.items():
        assert found[name] == help_text


@pytest.mark.skipif(not SHARED_SEED.exists(),
                    reason="the shared seed is not beside the repository")
def test_the_repositorys_seed_is_the_shared_one() -> None:
    def code(text: str) -> str:  # from the package clause on: each copy has its own header
        return text[text.index("\npackage main\n"):]

    assert code(SEED.read_text()) == code(SHARED_SEED.read_text())


def test_prometheus_text_format(go: Any) -> None:
    text = prometheus_text(go)
    lines = text.splitlines()
    samples = [ln for ln in lines if not ln.startswith("#")]
    names = [ln.split()[0] for ln in samples]
    assert names == sorted(names)  # as the Go client orders families
    for name in names:
        i = lines.index(next(ln for ln in lines if ln.startswith(f"{name} ")))
        assert lines[i - 2] == f"# HELP {name} {HELP.get(name, lines[i - 2][8 + len(name):])}"
        assert re.fullmatch(rf"# TYPE {name} (counter|gauge)", lines[i - 1])
        assert re.fullmatch(rf"{name} \S+", lines[i])
    assert "cart_event_log_last_append_unix 1.7408305e+09" in lines
    assert "cart_event_log_unknown_types_total 0" in lines
    assert f"{PROMISED_UNKNOWN_METRIC} 2" in lines
    assert PROMISED_UNKNOWN_METRIC not in prometheus_text(go, promised=False)


def test_prometheus_text_parses(go: Any) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    fams = {f.name: f for f in parser.text_string_to_metric_families(prometheus_text(go))}
    m = metrics(go)["value"]
    for name in READER_METRICS + WRITER_METRICS:
        base = name[: -len("_total")] if name.endswith("_total") else name
        fam = fams[base]
        assert fam.type == SEED_METRICS[name][0]
        assert fam.documentation == HELP[name]
        assert [s.value for s in fam.samples] == [float(m[name])]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (1, "1"), (-1, "-1"), (27, "27"), (6349, "6349"), (999999, "999999"),
     (1e6, "1e+06"), (1762161707, "1.762161707e+09"), (0.5, "0.5"), (1e-5, "1e-05"),
     (0.0001, "0.0001"), (123456.7, "123456.7"), (float("nan"), "NaN"),
     (float("inf"), "+Inf"), (-2.5e21, "-2.5e+21")],
)
def test_go_float(value: float, text: str) -> None:
    """strconv.FormatFloat(v, 'g', -1, 64), as the Go client writes sample values."""
    assert go_float(value) == text


def test_rates_per_hour_equal_planted_counts(go: Any) -> None:
    r = rates(go, freq="1h")
    planted_hours: dict[pd.Timestamp, Counter[str]] = {}
    for _, _, t, o in PLAN:
        if t is None:
            continue
        h = pd.Timestamp((t // 3600) * 3600, unit="s", tz="UTC")
        planted_hours.setdefault(h, Counter())[o] += 1
    assert r.attrs["no_ts"] == planted(lambda c, b, t, o: t is None) == 1
    assert r.attrs["no_ts_outcomes"] == {"malformed": 1}
    assert r["window"].tolist() == sorted(planted_hours)  # T0, T0+1h, T0+2h: none empty here
    for _, row in r.iterrows():
        want = planted_hours[row["window"]]
        total = sum(want.values())
        assert row["lines"] == total
        for o in ("applied", "malformed", "unknown_type", "payload_error", "apply_error",
                  "too_long", "not_reached"):
            assert row[o] == want[o]
        fail = want["malformed"] + want["unknown_type"] + want["too_long"]
        assert row["failure_rate"] == pytest.approx(fail / total)
        assert row["unknown_type_rate"] == pytest.approx(want["unknown_type"] / total)
        assert row["mutation_error_rate"] == pytest.approx(
            (want["payload_error"] + want["apply_error"]) / total)


def test_rates_keep_empty_windows_without_by(go: Any) -> None:
    r = rates(go, freq="15min")
    assert len(r) == 2 * 4 + 1  # T0 .. T0+2h in quarter hours
    empty = r[r["lines"] == 0]
    assert not empty.empty and empty["failure_rate"].isna().all()
    assert r["lines"].sum() == len(PLAN) - 1


def test_rates_by_type_and_cart(go: Any) -> None:
    by_type = rates(go, freq="1h", by="type")
    want = Counter((pd.Timestamp((t // 3600) * 3600, unit="s", tz="UTC"),
                    json.loads(b)["type"]) for _, b, t, _ in PLAN if t is not None)
    got = {(w, t): n for w, t, n in by_type[["window", "type", "lines"]].itertuples(index=False)}
    assert got == dict(want)
    av = by_type[by_type["type"] == "AddVoucher"]
    assert av["unknown_type_rate"].tolist() == [1.0, 1.0]
    by_cart = rates(go, freq="1D", by="cart")
    assert dict(zip(by_cart["cart_id"], by_cart["lines"], strict=True)) == {
        "a": 3, "b": 6, "c": 3}
    assert by_cart.loc[by_cart["cart_id"] == "a", "failure_rate"].item() == 1.0
    with pytest.raises(ValueError, match="by must be"):
        rates(go, by="sku")


def test_metrics_without_a_file_list(go: Any, logs: Path) -> None:
    ev = read_events(logs)
    ev.attrs.pop("files", None)
    r = replay(ev)
    assert metrics(r, source=logs)["value"]["cart_event_log_files_existing"] == 3
    assert metrics(r, source=logs)["value"]["cart_event_log_replay_total"] == 3  # empty too
    assert metrics(r)["value"]["cart_event_log_files_existing"] == 3  # one per cart: a guess
