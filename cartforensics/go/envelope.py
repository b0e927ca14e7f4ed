"""Decode one line's envelope as the seed's ``json.Unmarshal(line, &raw)`` does.

``raw`` is ``struct { Timestamp time.Time "ts"; Type string "type"; Payload json.RawMessage
"payload" }``. In ``go`` mode a JSON number in ``ts`` is an error (the seed's real bug); in
``lenient`` mode it is read as Unix seconds, which is what the writer meant. ``sem`` is the
toolchain (:mod:`cartforensics.go.version`): under json v2 (Go ≥ 1.27) ``time.Time`` is decoded
by json itself, so an escaped ``ts`` string is unescaped before parsing; lenient mode's own
``ts`` type keeps handing the raw bytes to ``Time.UnmarshalJSON``.

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

from cartforensics.go.json import (
    RAW_MESSAGE,
    STRING,
    GoType,
    Struct,
    TextUnmarshaler,
    Unmarshaler,
    unmarshal,
)
from cartforensics.go.time import GoTime, unmarshal_time_json
from cartforensics.go.version import DEFAULT, GoSemantics

NOT_A_STRING = "Time.UnmarshalJSON: input is not a JSON string"
#: json v2's error for a JSON number in the seed's ``ts`` (Go ≥ 1.27)
NOT_A_STRING_V2 = "json: cannot unmarshal number into Go struct field .ts of type time.Time"
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


def _text_time(text: bytes, old: Any) -> tuple[Any, str | None]:
    """json v2's time.Time: ``time.Time.UnmarshalText`` of the unescaped string."""
    t, err = unmarshal_time_json(b'"' + text + b'"')
    if err is not None:
        return old, err
    return (t, "string"), None


def decode_ts_value(value: bytes, lenient: bool = False, sem: GoSemantics = DEFAULT
                    ) -> tuple[GoTime | None, str] | None:
    """(ts, ts_kind) of an envelope whose only ``ts`` key holds ``value`` (a JSON string
    without escapes, or a number), as :func:`decode_envelope` gives them for a line that
    decodes; None where that line would not (the whole line must then be decoded).

    >>> decode_ts_value(b'"2025-01-01T00:00:00Z"')[1]
    'string'
    """
    if value[:1] == b'"':
        if b"\\" in value:
            return None
        if sem.unescapes_time and not lenient:
            pair, err = _text_time(value[1:-1], None)
        else:
            pair, err = _go_time(value, None)
    elif lenient:
        pair, err = _lenient_time(value, None)
    else:
        return None  # a number: go mode's envelope fails
    return None if err is not None else pair


def _envelope_type(time_type: GoType, raw_message: str = "json.RawMessage") -> Struct:
    return Struct(
        'struct { Timestamp time.Time "json:\\"ts\\""; Type string "json:\\"type\\""; '
        f'Payload {raw_message} "json:\\"payload\\"" }}',
        [("ts", time_type), ("type", STRING), ("payload", RAW_MESSAGE)],
    )


GO_ENVELOPE = _envelope_type(Unmarshaler("time.Time", _go_time))
LENIENT_ENVELOPE = _envelope_type(Unmarshaler("time.Time", _lenient_time))
_V2 = "jsontext.Value"
GO_ENVELOPE_V2 = _envelope_type(TextUnmarshaler("time.Time", _text_time), _V2)
LENIENT_ENVELOPE_V2 = _envelope_type(Unmarshaler("time.Time", _lenient_time), _V2)


def envelope_type(lenient: bool, sem: GoSemantics = DEFAULT) -> Struct:
    """The Go type the envelope is decoded into, for a mode and a toolchain."""
    if sem.unescapes_time:
        return LENIENT_ENVELOPE_V2 if lenient else GO_ENVELOPE_V2
    return LENIENT_ENVELOPE if lenient else GO_ENVELOPE


def numeric_ts_error(sem: GoSemantics = DEFAULT) -> str:
    """go mode's error for a JSON number in ``ts`` (the writer's own lines)."""
    return NOT_A_STRING_V2 if sem.unescapes_time else NOT_A_STRING


@dataclass(frozen=True, slots=True)
class Envelope:
    """What ``raw`` holds after Unmarshal: ``ts`` None is Go's zero time."""

    ts: GoTime | None
    ts_kind: str  # string, number, null, missing, invalid (the line failed)
    type: str | None
    payload: bytes | None
    error: str | None


def decode_envelope(token: bytes, lenient: bool = False, sem: GoSemantics = DEFAULT) -> Envelope:
    """Decode one scanner token as the toolchain ``sem`` does; never raises for any input."""
    value, err = unmarshal(token, envelope_type(lenient, sem), sem=sem)
    if err is not None:
        return Envelope(None, "invalid", None, None, err)
    ts_pair = value["ts"]
    if ts_pair is None:
        return Envelope(None, "missing", value["type"], value["payload"], None)
    return Envelope(ts_pair[0], ts_pair[1], value["type"], value["payload"], None)
