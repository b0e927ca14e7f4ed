"""Decode one line's envelope as the seed's ``json.Unmarshal(line, &raw)`` does.

``raw`` is ``struct { Timestamp time.Time "ts"; Type string "type"; Payload json.RawMessage
"payload" }``. In ``go`` mode a JSON number in ``ts`` is an error (the seed's real bug); in
``lenient`` mode it is read as Unix seconds, which is what the writer meant.

>>> env = decode_envelope(b'{"ts":1700000000,"type":"AddItem","payload":{}}')
>>> env.error
'Time.UnmarshalJSON: input is not a JSON string'
>>> decode_envelope(b'{"ts":1700000000,"type":"AddItem","payload":{}}', lenient=True).ts
GoTime(unix_sec=1700000000, nsec=0, offset=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from .gojson import RAW_MESSAGE, STRING, Struct, Unmarshaler, unmarshal
from .gotime import GoTime, unmarshal_time_json

NOT_A_STRING = "Time.UnmarshalJSON: input is not a JSON string"
NUMBER_OUT_OF_RANGE = "ts: number out of range"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _kind_of(raw: bytes) -> str:
    c = raw[:1]
    if c == b'"':
        return "string"
    if c == b"n":
        return "null"
    if c in (b"t", b"f"):
        return "bool"
    if c == b"{":
        return "object"
    if c == b"[":
        return "array"
    return "number"


def _go_time(raw: bytes, old: Any) -> tuple[Any, str | None]:
    t, err = unmarshal_time_json(raw)
    if err is not None:
        return old, err
    if t is None:  # null: Go leaves the time as it was (zero time if nothing came before)
        return (old if old is not None else (None, "null")), None
    return (t, "string"), None


def number_to_time(text: bytes) -> tuple[GoTime | None, str | None]:
    """Lenient: a JSON number as Unix seconds, as ``time.Unix(sec, nsec)`` takes them: any
    ``sec`` that fits int64, the fraction floored to the nanosecond (exact, no float).

    >>> number_to_time(b"1.5")
    (GoTime(unix_sec=1, nsec=500000000, offset=None), None)
    """
    try:
        with localcontext() as ctx:
            ctx.prec = 2000
            ctx.Emax = 999_999
            ctx.Emin = -999_999
            value = Decimal(text.decode("ascii"))
            if value.is_zero():
                return GoTime(0, 0, None), None
            if value.adjusted() > 40:  # far past int64 seconds
                return None, NUMBER_OUT_OF_RANGE
            if value.adjusted() < -40:  # 0 < |value| < 1e-40: floors to 0 or to -1 ns
                ns = -1 if value < 0 else 0
            else:
                ns = int((value * 1_000_000_000).to_integral_value(rounding="ROUND_FLOOR"))
    except (InvalidOperation, ValueError):
        return None, NUMBER_OUT_OF_RANGE
    sec, nsec = divmod(ns, 1_000_000_000)
    if not _INT64_MIN <= sec <= _INT64_MAX:
        return None, NUMBER_OUT_OF_RANGE
    return GoTime(sec, nsec, None), None


def _lenient_time(raw: bytes, old: Any) -> tuple[Any, str | None]:
    if _kind_of(raw) == "number":
        t, err = number_to_time(raw)
        if err is not None:
            return old, err
        return (t, "number"), None
    return _go_time(raw, old)


def _envelope_type(time_type: Unmarshaler) -> Struct:
    return Struct(
        'struct { Timestamp time.Time "json:\\"ts\\""; Type string "json:\\"type\\""; '
        'Payload json.RawMessage "json:\\"payload\\"" }',
        [("ts", time_type), ("type", STRING), ("payload", RAW_MESSAGE)],
    )


GO_ENVELOPE = _envelope_type(Unmarshaler("time.Time", _go_time))
LENIENT_ENVELOPE = _envelope_type(Unmarshaler("time.Time", _lenient_time))


@dataclass(frozen=True, slots=True)
class Envelope:
    """What ``raw`` holds after Unmarshal: ``ts`` None is Go's zero time."""

    ts: GoTime | None
    ts_kind: str  # string, number, null, missing, invalid (the line failed)
    type: str | None
    payload: bytes | None
    error: str | None


def decode_envelope(token: bytes, lenient: bool = False) -> Envelope:
    """Decode one scanner token; never raises for any input bytes."""
    value, err = unmarshal(token, LENIENT_ENVELOPE if lenient else GO_ENVELOPE)
    if err is not None:
        return Envelope(None, "invalid", None, None, err)
    ts_pair = value["ts"]
    if ts_pair is None:
        return Envelope(None, "missing", value["type"], value["payload"], None)
    return Envelope(ts_pair[0], ts_pair[1], value["type"], value["payload"], None)
