"""What Prometheus recorded, as analysts get it, read into one tidy frame.

Three shapes of record, each read by :func:`read_record` (which tells them apart) or by its own
reader:

- **HTTP API answers** (:func:`read_api_json`): the JSON of ``/api/v1/query_range`` (a matrix)
  or ``/api/v1/query`` (a vector or a matrix), as curl saves it or as Grafana's
  "Inspect -> Query" shows the response; also a JSON list of such answers (several queries
  saved in one file).
- **Scrapes** (:func:`read_scrapes`): a directory of ``/metrics`` bodies (text exposition
  format), one file per scrape named by its scrape time in Unix seconds:
  ``<unix_seconds>.prom`` (a fraction allowed: ``1765101234.250.prom``). Files directly in the
  directory have no ``instance`` label; a subdirectory's files get ``instance="<its name>"``
  (``DIR/127.0.0.1:9100/1765101234.prom``). A sample that carries its own timestamp keeps it.
  Parsed by ``prometheus_client``'s parser.
- **A TSDB dump** (:func:`read_tsdb_dump`): ``promtool tsdb dump`` output, one sample a line:
  ``{__name__="x", job="cart"} 17 1765101234567`` (value, then milliseconds).

The frame: ``metric`` (the name), ``labels`` (the other labels as one canonical string,
``{instance="…",job="…"}``, sorted, values escaped as the text format escapes them: ``\\\\``,
``\\"``, ``\\n``), ``time`` (UTC) and ``value`` (float), sorted by metric, labels and time.
Stale markers (the NaN Prometheus writes when a target goes away) are dropped and counted in
``df.attrs["stale"]``; ``df.attrs["kind"]`` says which reader read it. Label values are the
record's own and untrusted: whatever shows them escapes them
(:func:`cartforensics.present.escaping.visible`).

A record that is not one of these raises :class:`PrometheusRecordError` (a ``ValueError``),
one line saying what is wrong and where.

>>> import json, pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "q.json"
>>> _ = p.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix",
...     "result": [{"metric": {"__name__": "up", "job": "cart"},
...                 "values": [[1765101234, "1"], [1765101235.5, "0"]]}]}}))
>>> df = read_record(p)
>>> df[["metric", "labels", "value"]].values.tolist()
[['up', '{job="cart"}', 1.0], ['up', '{job="cart"}', 0.0]]
>>> str(df["time"].iloc[1])
'2025-12-07 09:53:55.500000+00:00'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "RECORD_COLUMNS", "PrometheusRecordError", "label_string", "parse_label_string",
    "read_api_json", "read_record", "read_scrapes", "read_tsdb_dump",
]

RECORD_COLUMNS = ("metric", "labels", "time", "value")
SCRAPE_SUFFIX = ".prom"
_SCRAPE_NAME = re.compile(r"^(\d{9,11}(?:\.\d{1,9})?)\.prom$")


class PrometheusRecordError(ValueError):
    """A Prometheus record that cannot be read: the message says what and where."""


# -- labels -------------------------------------------------------------------------------
def _escape_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_string(labels: Mapping[str, str]) -> str:
    """The canonical label string of a series (``__name__`` left out), sorted by name.

    >>> label_string({"job": "cart", "__name__": "up", "instance": 'a"b'})
    '{instance="a\\\\"b",job="cart"}'
    """
    items = sorted((k, v) for k, v in labels.items() if k != "__name__")
    return "{" + ",".join(f'{k}="{_escape_value(str(v))}"' for k, v in items) + "}"


_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)', re.S)
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}
_GO_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)


def _unquote(s: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU" and len(e) > 1:
            return chr(int(e[1:], 16))
        return _GO_ESCAPES.get(e, "\\" + e)

    return _GO_ESCAPE.sub(one, s)


def parse_label_string(text: str) -> dict[str, str]:
    """A label set written ``{a="x", b="y"}`` (as :func:`label_string` and promtool write it,
    values in Go's quoting) as a dict.

    >>> parse_label_string('{__name__="up", job="c\\\\"a"}')
    {'__name__': 'up', 'job': 'c"a'}
    """
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise PrometheusRecordError(f"not a label set: {_clip(s)}")
    body, out, pos = s[1:-1], {}, 0
    while pos < len(body):
        m = _LABEL_PAIR.match(body, pos)
        if m is None:
            raise PrometheusRecordError(f"not a label set: {_clip(s)}")
        out[m.group(1)] = _unquote(m.group(2))
        pos = m.end()
    return out


def _clip(s: str, n: int = 80) -> str:
    s = s if len(s) <= n else s[: n - 1] + "…"
    return s.encode("unicode_escape").decode("ascii")


# -- the frame ----------------------------------------------------------------------------
def _frame(rows: Iterable[tuple[str, str, float, float]], kind: str) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=["metric", "labels", "t", "value"])
    nan = df["value"].isna() if len(df) else pd.Series([], dtype=bool)
    stale = int(nan.sum())
    df = df[~nan]
    df["time"] = pd.to_datetime(df["t"].astype("float64") * 1e9, utc=True).dt.as_unit("ms")
    df = df[list(RECORD_COLUMNS)].astype({"metric": object, "labels": object,
                                           "value": "float64"})
    df = df.sort_values(["metric", "labels", "time"], kind="stable").reset_index(drop=True)
    df.attrs.update(kind=kind, stale=stale)
    return df


def _number(v: Any, where: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise PrometheusRecordError(f"{where}: not a number: {_clip(repr(v))}") from None
    return f


# -- HTTP API JSON ------------------------------------------------------------------------
def read_api_json(path: str | Path) -> pd.DataFrame:
    """A saved ``/api/v1/query_range`` or ``/api/v1/query`` answer (or a JSON list of them)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PrometheusRecordError(f"{p}: not UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise PrometheusRecordError(f"{p}: not JSON ({e.msg} at line {e.lineno})") from None
    answers = doc if isinstance(doc, list) else [doc]
    rows: list[tuple[str, str, float, float]] = []
    for i, a in enumerate(answers):
        where = f"{p}" if len(answers) == 1 else f"{p}: answer {i + 1}"
        rows.extend(_api_rows(a, where))
    return _frame(rows, "api")


def _api_rows(answer: Any, where: str) -> list[tuple[str, str, float, float]]:
    if not isinstance(answer, dict):
        raise PrometheusRecordError(f"{where}: not a Prometheus API answer (an object with "
                                    "'data': {'resultType', 'result'})")
    if answer.get("status") == "error":
        raise PrometheusRecordError(
            f"{where}: the saved answer is an error: {_clip(str(answer.get('error')))}")
    data = answer.get("data", answer)
    if not isinstance(data, dict) or "result" not in data or "resultType" not in data:
        raise PrometheusRecordError(f"{where}: not a Prometheus API answer (no "
                                    "data.resultType / data.result)")
    kind, result = data["resultType"], data["result"]
    if kind not in ("matrix", "vector") or not isinstance(result, list):
        raise PrometheusRecordError(
            f"{where}: resultType {_clip(str(kind))}: only matrix and vector answers hold series")
    rows = []
    for s in result:
        if not isinstance(s, dict) or not isinstance(s.get("metric"), dict):
            raise PrometheusRecordError(f"{where}: a result without its 'metric' labels")
        labels = {str(k): str(v) for k, v in s["metric"].items()}
        name = labels.get("__name__", "")
        key = label_string(labels)
        points = s.get("values") if kind == "matrix" else [s.get("value")]
        if not isinstance(points, list):
            raise PrometheusRecordError(f"{where}: a series without its values")
        for pt in points:
            if not isinstance(pt, list) or len(pt) != 2:
                raise PrometheusRecordError(f"{where}: a point that is not [time, \"value\"]: "
                                            f"{_clip(repr(pt))}")
            rows.append((name, key, _number(pt[0], where), _number(pt[1], where)))
    return rows


# -- text-exposition scrapes --------------------------------------------------------------
def read_scrapes(path: str | Path) -> pd.DataFrame:
    """A directory of ``/metrics`` bodies named ``<unix_seconds>.prom`` (see the module)."""
    from prometheus_client.parser import text_string_to_metric_families

    root = Path(path)
    if not root.is_dir():
        raise PrometheusRecordError(f"{root}: not a directory of scrapes")
    files: list[tuple[Path, dict[str, str]]] = []
    for f in sorted(root.iterdir()):
        if f.is_dir():
            files += [(g, {"instance": f.name}) for g in sorted(f.iterdir()) if g.is_file()]
        elif f.is_file():
            files.append((f, {}))
    files = [(f, lab) for f, lab in files if f.name.endswith(SCRAPE_SUFFIX)]
    if not files:
        raise PrometheusRecordError(f"{root}: no scrapes (files named <unix_seconds>.prom)")
    rows: list[tuple[str, str, float, float]] = []
    for f, extra in files:
        m = _SCRAPE_NAME.match(f.name)
        if m is None:
            raise PrometheusRecordError(
                f"{f}: a scrape is named by its time, <unix_seconds>.prom (e.g. 1765101234.prom)")
        when = float(m.group(1))
        try:
            text = f.read_text(encoding="utf-8")
            families = list(text_string_to_metric_families(text))
        except (UnicodeDecodeError, ValueError, TypeError, IndexError) as e:
            raise PrometheusRecordError(
                f"{f}: not text exposition format ({_clip(str(e))})") from None
        for fam in families:
            for s in fam.samples:
                labels = {**dict(s.labels), **extra}
                t = when if s.timestamp is None else float(s.timestamp)
                rows.append((s.name, label_string(labels), t, float(s.value)))
    return _frame(rows, "scrapes")


# -- promtool tsdb dump -------------------------------------------------------------------
_DUMP_LINE = re.compile(r"^(\{.*\})\s+(\S+)\s+(-?\d+)$")


def read_tsdb_dump(path: str | Path) -> pd.DataFrame:
    """``promtool tsdb dump`` output: ``{labels} value milliseconds`` per line."""
    p = Path(path)
    rows: list[tuple[str, str, float, float]] = []
    try:
        with p.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                m = _DUMP_LINE.match(line)
                if m is None:
                    raise PrometheusRecordError(
                        f"{p}:{n}: not a promtool tsdb dump line ({{labels}} value ms): "
                        f"{_clip(line)}")
                try:
                    labels = parse_label_string(m.group(1))
                except PrometheusRecordError as e:
                    raise PrometheusRecordError(f"{p}:{n}: {e}") from None
                value = _number(m.group(2), f"{p}:{n}")
                rows.append((labels.get("__name__", ""), label_string(labels),
                             int(m.group(3)) / 1000.0, value))
    except UnicodeDecodeError:
        raise PrometheusRecordError(f"{p}: not UTF-8 text") from None
    if not rows:
        raise PrometheusRecordError(f"{p}: no samples")
    return _frame(rows, "tsdb_dump")


# -- any of them ----------------------------------------------------------------------------
def read_record(path: str | Path) -> pd.DataFrame:
    """A record in any of the three shapes: a directory is scrapes; a file whose first line is
    a dump line (``{labels} value ms``) a TSDB dump; a file starting with ``{`` or ``[``
    otherwise API JSON; any other file a TSDB dump (refused line by line)."""
    p = Path(path)
    if p.is_dir():
        return read_scrapes(p)
    if not p.is_file():
        raise PrometheusRecordError(f"{p}: no such record (a file or a directory of scrapes)")
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip()
    if head[:1] == b"[" or (head[:1] == b"{" and not _DUMP_LINE.match(first)):
        return read_api_json(p)
    return read_tsdb_dump(p)

