"""The Prometheus record readers: the three shapes into one frame, malformed records refused
with one clear error, hostile label values kept exactly (and escaped where shown)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from cartforensics.io.prometheus import (
    RECORD_COLUMNS,
    PrometheusRecordError,
    label_string,
    parse_label_string,
    read_api_json,
    read_record,
    read_scrapes,
    read_tsdb_dump,
)

HOSTILE = 'ev"il\\\n\u202e$x<script>'
T0 = 1765101234


def _matrix(series: list[tuple[dict[str, str], list[tuple[float, str]]]]) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": m, "values": [[t, v] for t, v in pts]} for m, pts in series]}}


def _write(p: Path, obj: object) -> Path:
    p.write_text(json.dumps(obj))
    return p


def test_the_three_shapes_read_the_same_samples_into_one_frame(tmp_path: Path) -> None:
    labels = {"__name__": "cart_event_log_appends_total", "job": "cart", "instance": HOSTILE}
    pts = [(T0, "1"), (T0 + 1, "5"), (T0 + 2.5, "7")]
    api = read_record(_write(tmp_path / "a.json", _matrix([(labels, pts)])))

    scrapes = tmp_path / "scrapes" / HOSTILE.replace("/", "_").replace("\n", "_")
    scrapes.mkdir(parents=True)
    for t, v in pts:
        (scrapes / f"{t}.prom").write_text(
            "# HELP cart_event_log_appends_total x\n# TYPE cart_event_log_appends_total counter\n"
            f'cart_event_log_appends_total{{job="cart"}} {v}\n')
    sc = read_record(tmp_path / "scrapes")

    esc = HOSTILE.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    dump = tmp_path / "dump.txt"
    dump.write_text("".join(
        f'{{__name__="cart_event_log_appends_total", instance="{esc}", job="cart"}} {v} '
        f"{int(t * 1000)}\n" for t, v in pts))
    du = read_record(dump)

    assert api.attrs["kind"] == "api" and sc.attrs["kind"] == "scrapes"
    assert du.attrs["kind"] == "tsdb_dump"
    for df in (api, du):
        assert list(df.columns) == list(RECORD_COLUMNS)
        assert df["value"].tolist() == [1.0, 5.0, 7.0]
        assert df["time"].iloc[2] == pd.Timestamp(T0 + 2.5, unit="s", tz="UTC")
        assert parse_label_string(df["labels"].iloc[0])["instance"] == HOSTILE
    pd.testing.assert_frame_equal(api, du, check_like=False)
    assert sc["value"].tolist() == [1.0, 5.0, 7.0]
    assert sc["metric"].unique().tolist() == ["cart_event_log_appends_total"]
    assert parse_label_string(sc["labels"].iloc[0])["instance"] == scrapes.name


def test_a_vector_answer_and_a_list_of_answers(tmp_path: Path) -> None:
    vec = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "job": "cart"}, "value": [T0, "1"]}]}}
    both = read_api_json(_write(tmp_path / "b.json", [vec, _matrix(
        [({"__name__": "up", "job": "cart"}, [(T0 - 1, "0")])])]))
    assert both["value"].tolist() == [0.0, 1.0]  # sorted by time within the series


def test_stale_markers_are_dropped_and_counted(tmp_path: Path) -> None:
    dump = tmp_path / "d.txt"
    dump.write_text('{__name__="up", job="cart"} 1 1000\n{__name__="up", job="cart"} NaN 2000\n')
    df = read_tsdb_dump(dump)
    assert len(df) == 1 and df.attrs["stale"] == 1


def test_a_scrape_keeps_its_own_timestamp(tmp_path: Path) -> None:
    (tmp_path / f"{T0}.prom").write_text("up 1 1765101200000\nother 2\n")
    df = read_scrapes(tmp_path)
    when = dict(zip(df["metric"], df["time"], strict=True))
    assert when["up"] == pd.Timestamp(1765101200, unit="s", tz="UTC")
    assert when["other"] == pd.Timestamp(T0, unit="s", tz="UTC")


@pytest.mark.parametrize("content, message", [
    ("{", "not JSON"),
    ('{"status": "error", "error": "bad query"}', "is an error"),
    ('{"data": {"resultType": "scalar", "result": [1, "2"]}}', "only matrix and vector"),
    ('{"data": {"resultType": "matrix", "result": [{"values": []}]}}', "'metric' labels"),
    ('{"data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1]]}]}}',
     "not [time"),
    ('{"data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "x"]]}]}}',
     "not a number"),
    ('{"foo": 1}', "not a Prometheus API answer"),
    ('[1]', "not a Prometheus API answer"),
    ("up 1 2 3\n", "not a promtool tsdb dump line"),
    ('{__name__="up", job=cart} 1 1000\n', "not a label set"),
    ('{__name__="up"} one 1000\n', "not a number"),
    ("", "no samples"),
])
def test_a_malformed_record_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "record.txt"
    p.write_text(content)
    with pytest.raises(PrometheusRecordError, match=re.escape(message)) as e:
        read_record(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_malformed_scrapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PrometheusRecordError, match="no scrapes"):
        read_scrapes(tmp_path)
    (tmp_path / "yesterday.prom").write_text("up 1\n")
    with pytest.raises(PrometheusRecordError, match="named by its time"):
        read_scrapes(tmp_path)
    (tmp_path / "yesterday.prom").unlink()
    (tmp_path / f"{T0}.prom").write_text('up{job="x} 1\n')
    with pytest.raises(PrometheusRecordError, match="not text exposition format"):
        read_scrapes(tmp_path)
    with pytest.raises(PrometheusRecordError, match="no such record"):
        read_record(tmp_path / "missing.json")


def test_label_strings_round_trip_hostile_values() -> None:
    labels = {"instance": HOSTILE, "job": "a,b=\"c\"", "__name__": "x"}
    s = label_string(labels)
    assert "\n" not in s
    assert parse_label_string(s) == {k: v for k, v in labels.items() if k != "__name__"}
