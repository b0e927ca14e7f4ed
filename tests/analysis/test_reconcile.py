"""reconcile on small hand-made logs and records: each kind of difference, found and counted,
and what is left said to be unexplained. The real service and Prometheus:
test_reconcile_live.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import cartforensics as cf
from cartforensics.analysis.reconcile import (
    APPENDS,
    BYTES,
    FAILURES,
    REPLAYS,
    START,
    UNKNOWN,
    ReconcileError,
    reconcile,
)
from cartforensics.io.prometheus import RECORD_COLUMNS, label_string

T0 = 1765101000
TARGET = {"job": "cart", "instance": "127.0.0.1:9100"}


def _line(ts: int, typ: str = "AddItem", n: int = 0) -> bytes:
    payload = {"sku": f"s{n}", "quantity": 1} if typ != "AddVoucher" else {"code": "V"}
    return json.dumps({"ts": ts, "type": typ, "payload": payload},
                      separators=(",", ":")).encode() + b"\n"


def _logs(tmp: Path, carts: dict[str, list[bytes]]) -> tuple[cf.Replay, cf.Replay]:
    d = tmp / "logs"
    d.mkdir(exist_ok=True)
    for cart, lines in carts.items():
        (d / f"{cart}.events.log").write_bytes(b"".join(lines))
    ev = cf.read_events(d)
    return cf.replay(ev), cf.replay(ev, mode="lenient")


def _record(samples: list[tuple[float, dict[str, float]]],
            labels: dict[str, str] = TARGET) -> pd.DataFrame:
    """Scrapes at times (Unix seconds), each a dict metric -> value."""
    rows = [(m, label_string(labels), pd.Timestamp(t, unit="s", tz="UTC"), float(v))
            for t, values in samples for m, v in values.items()]
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def _scrape(start: float, appends: int, nbytes: int, replays: int = 0, failures: int = 0,
            **extra: float) -> dict[str, float]:
    return {START: start, APPENDS: appends, BYTES: nbytes, REPLAYS: replays,
            FAILURES: failures, "cart_event_log_mutation_errors_total": 0, UNKNOWN: 0,
            "up": 1, **extra}


def _count(res: cf.Reconciliation, kind: str, metric: str, window: int | None = None) -> int:
    e = res.explanations
    sel = e[(e["kind"] == kind) & (e["metric"] == metric)]
    if window is not None:
        sel = sel[sel["window"] == window]
    return int(sel["count"].sum())


def test_a_record_that_agrees_with_the_logs_has_nothing_to_explain(tmp_path: Path) -> None:
    a = [_line(T0 + 1, n=1), _line(T0 + 2, "AddVoucher")]
    b = [_line(T0 + 3, n=2)]
    go, lenient = _logs(tmp_path, {"a": a, "b": b})
    nbytes = sum(map(len, a + b))
    rec = _record([(T0 + 5, _scrape(T0, 3, nbytes, replays=2, failures=3))])
    res = reconcile(go, lenient, rec)
    assert res.unexplained == 0
    assert set(res.explanations["kind"]) == {"matched", "unknown_type"}
    assert _count(res, "unknown_type", UNKNOWN) == 1  # exported 0, one AddVoucher replayed
    assert any("1 lines of type AddVoucher" in f for f in res.findings)
    assert "every cart" in res.windows["replays"].iloc[0]


def test_appends_after_the_last_scrape_are_not_scraped(tmp_path: Path) -> None:
    a = [_line(T0 + 1, n=1), _line(T0 + 2, n=2), _line(T0 + 9, n=3), _line(T0 + 9, n=4)]
    go, lenient = _logs(tmp_path, {"a": a})
    rec = _record([(T0 + 3, _scrape(T0, 2, len(a[0]) + len(a[1]))),
                   (T0 + 4, _scrape(T0, 2, len(a[0]) + len(a[1])))])
    res = reconcile(go, lenient, rec)
    assert _count(res, "not_scraped", APPENDS) == 2
    assert _count(res, "not_scraped", BYTES) == len(a[2]) + len(a[3])
    e = res.explanations
    assert e.loc[(e["metric"] == APPENDS) & (e["kind"] != "unexplained"), "count"].sum() == 2
    assert _count(res, "unexplained", APPENDS) == 0


def test_counts_the_logs_do_not_hold_are_unexplained(tmp_path: Path) -> None:
    a = [_line(T0 + 1, n=1)]
    go, lenient = _logs(tmp_path, {"a": a})
    rec = _record([(T0 + 3, _scrape(T0, 4, 4 * len(a[0])))])
    res = reconcile(go, lenient, rec)
    assert _count(res, "unexplained", APPENDS) == 1 - 4
    assert _count(res, "unexplained", BYTES) == -3 * len(a[0])
    assert res.unexplained == 3 + 3 * len(a[0])


def test_a_drop_splits_windows_without_a_start_time(tmp_path: Path) -> None:
    a = [_line(T0 + 1, n=1), _line(T0 + 2, n=2), _line(T0 + 20, n=3)]
    go, lenient = _logs(tmp_path, {"a": a})
    s1 = _scrape(0, 2, len(a[0]) + len(a[1]))
    s2 = _scrape(0, 1, len(a[2]))
    for s in (s1, s2):
        del s[START]
    rec = _record([(T0 + 3, s1), (T0 + 19, s2), (T0 + 21, s2)])
    res = reconcile(go, lenient, rec)
    assert list(res.windows["window"]) == [1, 2]
    assert _count(res, "unexplained", APPENDS) == 0
    assert res.explanations.query("window == 2 and metric == @APPENDS")["rebuilt"].iloc[0] == 1


def test_which_carts_a_process_replayed_is_given_as_bounds(tmp_path: Path) -> None:
    carts = {c: [_line(T0 + 1, n=i), _line(T0 + 2, n=i)] for i, c in enumerate("abc")}
    go, lenient = _logs(tmp_path, carts)
    nbytes = sum(len(x) for v in carts.values() for x in v)
    rec = _record([(T0 + 5, _scrape(T0, 6, nbytes, replays=1, failures=2))])
    res = reconcile(go, lenient, rec)
    assert res.unexplained == 0
    assert _count(res, "not_replayed", REPLAYS) == 2
    assert _count(res, "not_replayed", FAILURES) == 4
    assert "which ones the logs cannot tell (3 sets of carts fit the counts)" in \
        res.windows["replays"].iloc[0]


def test_replays_no_set_of_carts_fits_are_unexplained(tmp_path: Path) -> None:
    carts = {"a": [_line(T0 + 1, n=1), _line(T0 + 2, n=2)]}
    go, lenient = _logs(tmp_path, carts)
    nbytes = sum(map(len, carts["a"]))
    rec = _record([(T0 + 5, _scrape(T0, 2, nbytes, replays=1, failures=5))])
    res = reconcile(go, lenient, rec)
    assert _count(res, "unexplained", FAILURES) == 2 - 5
    assert "no set of carts" in res.windows["replays"].iloc[0]


def test_a_long_line_failure_and_a_torn_write(tmp_path: Path) -> None:
    long_line = json.dumps({"ts": T0 + 1, "type": "AddItem",
                            "payload": {"sku": "x" * 300_000, "quantity": 1}}).encode() + b"\n"
    completed = _line(T0 + 2, n=7)
    torn = b'{"ts":' + str(T0 + 1).encode() + b',"type":"AddI' + completed
    go, lenient = _logs(tmp_path, {"a": [long_line, _line(T0 + 1, n=2)], "b": [torn]})
    # the writer counted the long line and the completing append, not the fragment
    exported_bytes = len(long_line) + len(_line(T0 + 1, n=2)) + len(completed)
    rec = _record([(T0 + 5, _scrape(T0, 3, exported_bytes, replays=1, failures=2))])
    res = reconcile(go, lenient, rec)
    assert res.unexplained == 0, res.explanations.to_string()
    assert _count(res, "torn", BYTES) == len(torn) - len(completed)
    assert _count(res, "long_line", REPLAYS) == 1
    assert any("a torn write in cart b" in f for f in res.findings)


def test_lines_older_than_the_record(tmp_path: Path) -> None:
    a = [_line(T0 - 100, n=1), _line(T0 + 1, n=2)]
    go, lenient = _logs(tmp_path, {"a": a})
    rec = _record([(T0 + 3, _scrape(T0, 1, len(a[1]), replays=1, failures=2))])
    res = reconcile(go, lenient, rec)
    assert res.unexplained == 0
    assert _count(res, "before_record", APPENDS) == 1


def test_several_targets_must_be_chosen(tmp_path: Path) -> None:
    a = [_line(T0 + 1, n=1)]
    go, lenient = _logs(tmp_path, {"a": a})
    one = _record([(T0 + 3, _scrape(T0, 1, len(a[0]), replays=1, failures=1))])
    two = _record([(T0 + 3, _scrape(T0, 0, 0))], {"job": "cart", "instance": "other:1"})
    rec = pd.concat([one, two], ignore_index=True)
    with pytest.raises(ReconcileError, match="choose one with target="):
        reconcile(go, lenient, rec)
    assert reconcile(go, lenient, rec, target="9100").unexplained == 0
    with pytest.raises(ReconcileError, match="none of the seed's"):
        reconcile(go, lenient, rec[rec["metric"] == "up"])
    with pytest.raises(ReconcileError, match="go-mode replay and a lenient one"):
        reconcile(lenient, go, rec, target="9100")


def test_the_chart_shows_each_counter_and_the_counts(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from cartforensics.present.plots import plot_reconcile

    a = [_line(T0 + 1, n=1), _line(T0 + 2, "AddVoucher"), _line(T0 + 9, n=3)]
    go, lenient = _logs(tmp_path, {"a$b": a})
    rec = _record([(T0 + 5, _scrape(T0, 1, len(a[0]), replays=1, failures=3))])
    res = reconcile(go, lenient, rec)
    fig = plot_reconcile(res)
    assert isinstance(fig, Figure)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()]
    assert titles == ["appends_total", "bytes_written_total", "replay_total",
                      "replay_failures_total", "mutation_errors_total", "unknown_types_total"]
    assert f"{res.explained:,} explained, {res.unexplained:,} unexplained" in \
        fig._suptitle.get_text()
    assert res.unexplained > 0  # a line appended before the last scrape the record lacks
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "rebuilt: unexplained" in legend


@pytest.mark.parametrize("name", ["record.json", "tsdb_dump.txt"])
def test_the_shipped_record_is_explained_to_the_line(name: str) -> None:
    root = Path(__file__).parents[2] / "sample_data" / "prometheus"
    go = cf.replay(root / "logs")
    lenient = cf.replay(root / "logs", mode="lenient")
    res = reconcile(go, lenient, cf.read_record(root / name))
    assert res.unexplained == 0
    assert _count(res, "torn", BYTES) == 31
    assert _count(res, "unknown_type", UNKNOWN, window=2) == 20
    assert _count(res, "long_line", REPLAYS, window=2) == 1


def test_a_query_range_answer_whose_last_point_outlives_the_last_scrape():
    """query_range evaluates at steps: the last point repeats the final value up to a step
    after the last scrape. Appends made after that scrape, in the second before the last
    point, are late ones, not unexplained; a record of real scrape times gets no such
    latitude."""
    import pandas as pd

    from cartforensics.analysis.reconcile import APPENDS, BYTES, _writer_rows

    t0 = pd.Timestamp("2025-11-03 10:00:00", tz="UTC")
    secs = [int(t0.timestamp()) + s for s in (0, 1, 2, 2, 2)]  # the last three after 2.3 s
    inside = pd.DataFrame({"newline": True, "sec": secs, "bytes": [100] * 5, "torn": 0,
                           "cart_id": "c1"})
    w = {"window": 1, "last_scrape": t0 + pd.Timedelta(seconds=3.2),  # a step's repeat
         "settled": t0 + pd.Timedelta(seconds=2.5), "step": pd.Timedelta(seconds=1)}
    exp = {APPENDS: 2, BYTES: 200}  # the scrape at 2.3 s saw two appends
    stepped = pd.DataFrame(_writer_rows(w, inside, exp, "A", [], stepped=True))
    assert "unexplained" not in set(stepped["kind"])
    assert stepped.loc[stepped["metric"] == APPENDS, "count"].sum() == 3
    scraped = pd.DataFrame(_writer_rows(w, inside, exp, "A", [], stepped=False))
    assert set(scraped["kind"]) == {"unexplained"}  # true scrape times: no latitude
