"""A faithful port of Go 1.25's ``time.Time.UnmarshalJSON``.

Go's implementation (``$GOROOT/src/time``) is::

    // time.go
    func (t *Time) UnmarshalJSON(data []byte) error {
        if string(data) == "null" { return nil }
        if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
            return errors.New("Time.UnmarshalJSON: input is not a JSON string")
        }
        data = data[len(`"`) : len(data)-len(`"`)]   // NOT unescaped
        *t, err = parseStrictRFC3339(data)
        return err
    }

``parseStrictRFC3339`` (format_rfc3339.go) tries the fast ``parseRFC3339`` and, if
that fails, ``time.Parse(time.RFC3339, s)``. The extra "strict" checks of
go.dev/issue/54580 that follow in the source are *dead code* in Go 1.25 (guarded by
``case true: return t, nil`` -- "Strict parsing is disabled for now"), so Go 1.25
accepts everything the generic ``Parse`` accepts for the layout
``2006-01-02T15:04:05Z07:00``: a one-digit hour, ``,`` as the fraction separator,
zone offsets up to ``+24:60`` (printed back as ``+25:00``), and so on.  This module
reproduces that behaviour, including the exact error texts of ``ParseError.Error()``
with the ``time`` package's own ``quote``.

Everything works on raw bytes: the input may hold any bytes (invalid UTF-8, NUL, JSON
escapes such as ``\\u0030`` which Go does not unescape here).

Go attaches the ``Local`` location when a parsed numeric offset equals the Local
offset at that instant; that only changes the zone *name*, never the offset or the
formatted text, so it is not modelled (the differential tests run Go with TZ=UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GoTime", "ZERO_TIME_TEXT", "unmarshal_time_json"]

#: ``time.Time{}.Format(time.RFC3339Nano)``: what Go leaves in the target on error.
ZERO_TIME_TEXT = "0001-01-01T00:00:00Z"

RFC3339 = "2006-01-02T15:04:05Z07:00"

_NOT_A_STRING = "Time.UnmarshalJSON: input is not a JSON string"

_NANOS_PER_SEC = 1_000_000_000
_SECS_PER_DAY = 86_400


# ---------------------------------------------------------------------------
# Calendar helpers (proleptic Gregorian, like Go; year 0 is a leap year).
# ---------------------------------------------------------------------------


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(month: int, year: int) -> int:
    """Go's ``daysIn(Month(month), year)`` for month 1..12."""
    if month == 2:
        return 29 if _is_leap(year) else 28
    return _DAYS_IN_MONTH[month - 1]


def days_from_civil(year: Any, month: Any, day: Any) -> Any:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year); ints or numpy int64
    arrays alike (``//`` floors both ways).

    >>> days_from_civil(2024, 1, 2)
    19724
    """
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of :func:`days_from_civil`: (year, month, day)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


# Go's unixToInternal + internalToAbsolute: Unix seconds to seconds since the absolute epoch
_UNIX_TO_ABSOLUTE = 9_223_372_028_715_321_600


def _append_int(x: int, width: int) -> str:
    """Go's ``appendInt``: optional '-', then |x| zero-padded to ``width`` digits."""
    if x < 0:
        return "-" + str(-x).rjust(width, "0")
    return str(x).rjust(width, "0")


# ---------------------------------------------------------------------------
# The result type.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoTime:
    """A ``time.Time`` as produced by ``UnmarshalJSON``.

    ``offset`` is ``None`` for a ``Z`` (UTC) time, else the numeric zone offset in
    seconds east of UTC (``+00:00``/``-00:00`` give ``0``).
    """

    unix_sec: int
    nsec: int
    offset: int | None

    def __post_init__(self) -> None:
        if not 0 <= self.nsec < _NANOS_PER_SEC:
            raise ValueError(f"nsec out of range [0, 999999999]: {self.nsec}")

    def rfc3339nano(self) -> str:
        """Exactly Go's ``t.Format(time.RFC3339Nano)`` (``appendFormatRFC3339``)."""
        offset = self.offset or 0
        # Go formats from uint64 seconds since its absolute epoch (year -292277022399): a time
        # within ~8e9 s of the int64 minimum wraps around to the far future there
        wall = (self.unix_sec + offset + _UNIX_TO_ABSOLUTE) % (1 << 64) - _UNIX_TO_ABSOLUTE
        days, secs = divmod(wall, _SECS_PER_DAY)
        year, month, day = _civil_from_days(days)
        hour, rem = divmod(secs, 3600)
        minute, sec = divmod(rem, 60)
        parts = [
            _append_int(year, 4),
            "-",
            _append_int(month, 2),
            "-",
            _append_int(day, 2),
            "T",
            _append_int(hour, 2),
            ":",
            _append_int(minute, 2),
            ":",
            _append_int(sec, 2),
        ]
        if self.nsec != 0:  # stdFracSecond9 with 9 digits: trailing zeros trimmed
            parts.append("." + f"{self.nsec:09d}".rstrip("0"))
        if offset == 0:
            parts.append("Z")
        else:
            # Go: zone := offset / 60 (integer division truncates toward zero).
            zone = abs(offset) // 60
            if offset < 0 and zone != 0:
                parts.append("-")
            else:
                parts.append("+")
            parts += [_append_int(zone // 60, 2), ":", _append_int(zone % 60, 2)]
        return "".join(parts)

    def unix_ns(self) -> int:
        """Nanoseconds since the Unix epoch (unbounded Python int)."""
        return self.unix_sec * _NANOS_PER_SEC + self.nsec


def _make_time(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    sec: int,
    nsec: int,
    offset: int | None,
) -> GoTime:
    """``Date(..., UTC)`` followed by ``t.addSec(-offset)`` (all fields in range)."""
    wall = days_from_civil(year, month, day) * _SECS_PER_DAY + hour * 3600 + minute * 60 + sec
    return GoTime(wall - (offset or 0), nsec, offset)


# ---------------------------------------------------------------------------
# Error texts: ParseError.Error() and time's own quote().
# ---------------------------------------------------------------------------

_LOWERHEX = "0123456789abcdef"


def _quote(s: bytes) -> str:
    r"""Go's ``time.quote``.

    Go ranges over the string by rune and writes ``\xHH`` for every byte of a rune
    that is ``>= 0x80`` or ``< 0x20`` (invalid UTF-8 bytes decode as U+FFFD with width
    1, a real U+FFFD has width 3), so the net effect is byte by byte; ``"`` and ``\``
    get a backslash; everything else (including DEL) is copied.
    """
    out = ['"']
    for c in s:
        if c >= 0x80 or c < 0x20:
            out.append("\\x" + _LOWERHEX[c >> 4] + _LOWERHEX[c & 0xF])
        else:
            if c == 0x22 or c == 0x5C:
                out.append("\\")
            out.append(chr(c))
    out.append('"')
    return "".join(out)


def _parse_error(value: bytes, layout_elem: str, value_elem: bytes, message: str = "") -> str:
    """``(&ParseError{RFC3339, value, layoutElem, valueElem, message}).Error()``."""
    if message == "":
        return (
            "parsing time "
            + _quote(value)
            + " as "
            + _quote(RFC3339.encode())
            + ": cannot parse "
            + _quote(value_elem)
            + " as "
            + _quote(layout_elem.encode())
        )
    return "parsing time " + _quote(value) + message


# ---------------------------------------------------------------------------
# Parsing helpers from format.go.
# ---------------------------------------------------------------------------


def _is_digit(s: bytes, i: int) -> bool:
    return i < len(s) and 0x30 <= s[i] <= 0x39


def _getnum(s: bytes, fixed: bool) -> tuple[int, bytes, bool]:
    """Go's ``getnum``; returns (value, rest, ok) with ok=False for ``errBad``."""
    if not _is_digit(s, 0):
        return 0, s, False
    if not _is_digit(s, 1):
        if fixed:
            return 0, s, False
        return s[0] - 0x30, s[1:], True
    return (s[0] - 0x30) * 10 + (s[1] - 0x30), s[2:], True


def _atoi(s: bytes) -> int | None:
    """Go's ``time.atoi``: optional sign, then ``leadingInt`` with nothing left over.

    Returns None for Go's ``errAtoi``. (Only ever called on 4 bytes here.)
    """
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    x = 0
    for c in s:
        if c < 0x30 or c > 0x39:
            return None  # rem not empty
        if x > (1 << 63) // 10:
            return None  # overflow
        x = x * 10 + c - 0x30
        if x > 1 << 63:
            return None  # overflow
    return -x if neg else x


def _parse_nanoseconds(value: bytes, nbytes: int) -> int:
    """Go's ``parseNanoseconds`` for a value already known to be ``[.,]digits+``."""
    if nbytes > 10:
        value = value[:10]
        nbytes = 10
    ns = int(value[1:nbytes])
    return ns * 10 ** (10 - nbytes)


def _parse_rfc3339(s: bytes) -> GoTime | None:
    """Go's fast path ``parseRFC3339``; None where Go returns ok=false."""
    if len(s) < 19:  # len("2006-01-02T15:04:05")
        return None
    ok = True

    def parse_uint(b: bytes, lo: int, hi: int) -> int:
        nonlocal ok
        x = 0
        for c in b:
            if c < 0x30 or c > 0x39:
                ok = False
                return lo
            x = x * 10 + c - 0x30
        if x < lo or hi < x:
            ok = False
            return lo
        return x

    year = parse_uint(s[0:4], 0, 9999)
    month = parse_uint(s[5:7], 1, 12)
    day = parse_uint(s[8:10], 1, _days_in(month, year))
    hour = parse_uint(s[11:13], 0, 23)
    minute = parse_uint(s[14:16], 0, 59)
    sec = parse_uint(s[17:19], 0, 59)
    if not ok or not (
        s[4] == 0x2D and s[7] == 0x2D and s[10] == 0x54 and s[13] == 0x3A and s[16] == 0x3A
    ):
        return None
    s = s[19:]

    nsec = 0
    if len(s) >= 2 and s[0] == 0x2E and _is_digit(s, 1):
        n = 2
        while n < len(s) and _is_digit(s, n):
            n += 1
        nsec = _parse_nanoseconds(s, n)
        s = s[n:]

    if s == b"Z":
        return _make_time(year, month, day, hour, minute, sec, nsec, None)
    if len(s) != 6:  # len("-07:00")
        return None
    hr = parse_uint(s[1:3], 0, 23)
    mm = parse_uint(s[4:6], 0, 59)
    if not ok or not (s[0] in (0x2D, 0x2B) and s[3] == 0x3A):
        return None
    zone_offset = (hr * 60 + mm) * 60
    if s[0] == 0x2D:
        zone_offset = -zone_offset
    return _make_time(year, month, day, hour, minute, sec, nsec, zone_offset)


def _parse(avalue: bytes) -> tuple[GoTime | None, str | None]:
    """Go's generic ``parse(RFC3339, value, UTC, Local)`` unrolled for that layout.

    The layout splits (``nextStdChunk``) into:
    ``2006`` ``-01`` ``-02`` ``T15`` ``:04`` ``:05`` ``Z07:00`` and a final empty
    chunk; each literal prefix goes through ``skip``.
    """
    value = avalue

    def skip(prefix: bytes) -> bool:
        nonlocal value
        if value[:1] != prefix:
            return False
        value = value[1:]
        return True

    def cannot(layout_elem: str, hold: bytes) -> tuple[None, str]:
        return None, _parse_error(avalue, layout_elem, hold)

    def out_of_range(what: str) -> tuple[None, str]:
        return None, _parse_error(avalue, "", b"", ": " + what + " out of range")

    # stdLongYear "2006"
    hold = value
    if len(value) < 4 or not _is_digit(value, 0):
        return cannot("2006", hold)
    p, value = value[:4], value[4:]
    year = _atoi(p)
    if year is None:
        return cannot("2006", hold)

    # "-" stdZeroMonth "01"
    if not skip(b"-"):
        return cannot("-", value)
    hold = value
    month, value, ok = _getnum(value, True)
    if ok and (month <= 0 or 12 < month):
        return out_of_range("month")
    if not ok:
        return cannot("01", hold)

    # "-" stdZeroDay "02" (any two digits; validated at the end)
    if not skip(b"-"):
        return cannot("-", value)
    hold = value
    day, value, ok = _getnum(value, True)
    if not ok:
        return cannot("02", hold)

    # "T" stdHour "15" (one or two digits)
    if not skip(b"T"):
        return cannot("T", value)
    hold = value
    hour, value, ok = _getnum(value, False)
    if hour < 0 or 24 <= hour:
        return out_of_range("hour")
    if not ok:
        return cannot("15", hold)

    # ":" stdZeroMinute "04"
    if not skip(b":"):
        return cannot(":", value)
    hold = value
    minute, value, ok = _getnum(value, True)
    if minute < 0 or 60 <= minute:
        return out_of_range("minute")
    if not ok:
        return cannot("04", hold)

    # ":" stdZeroSecond "05", plus a fractional second the layout does not mention.
    if not skip(b":"):
        return cannot(":", value)
    hold = value
    sec, value, ok = _getnum(value, True)
    if not ok:
        return cannot("05", hold)
    if sec < 0 or 60 <= sec:
        return out_of_range("second")
    nsec = 0
    if len(value) >= 2 and value[0] in (0x2E, 0x2C) and _is_digit(value, 1):
        n = 2
        while n < len(value) and _is_digit(value, n):
            n += 1
        nsec = _parse_nanoseconds(value, n)  # never fails: [.,] and digits only
        value = value[n:]

    # stdISO8601ColonTZ "Z07:00"
    hold = value
    offset: int | None
    if value[:1] == b"Z":
        value = value[1:]
        offset = None
    else:
        if len(value) < 6 or value[3] != 0x3A:
            return cannot("Z07:00", hold)
        sign, hour_b, min_b, value = value[0:1], value[1:3], value[4:6], value[6:]
        mm = 0
        hr, _, ok = _getnum(hour_b, True)
        if ok:
            mm, _, ok = _getnum(min_b, True)
        range_err = ""
        # ">" rather than ">=": Go lets through offsets of 24 hours or 60 minutes.
        if hr > 24:
            range_err = "time zone offset hour"
        if mm > 60:
            range_err = "time zone offset minute"
        offset = (hr * 60 + mm) * 60
        if sign == b"-":
            offset = -offset
        elif sign != b"+":
            ok = False
        if range_err:
            return out_of_range(range_err)
        if not ok:
            return cannot("Z07:00", hold)

    # Final chunk: nothing may remain.
    if value:
        return None, _parse_error(avalue, "", value, ": extra text: " + _quote(value))

    # Validate the day of the month.
    if day < 1 or day > _days_in(month, year):
        return None, _parse_error(avalue, "", value, ": day out of range")

    return _make_time(year, month, day, hour, minute, sec, nsec, offset), None


def _parse_strict_rfc3339(b: bytes) -> tuple[GoTime | None, str | None]:
    """Go 1.25's ``parseStrictRFC3339`` (its go.dev/issue/54580 checks are disabled)."""
    t = _parse_rfc3339(b)
    if t is not None:
        return t, None
    # time.Parse(RFC3339, s): repeats the fast path (which fails again), then parse().
    return _parse(b)


def unmarshal_time_json(data: bytes) -> tuple[GoTime | None, str | None]:
    """Go 1.25's ``(*time.Time).UnmarshalJSON(data)``.

    Returns ``(time, None)`` on success; ``(None, None)`` for ``null`` (Go leaves the
    time unchanged); ``(None, error_text)`` on error (Go then stores the zero Time,
    whose RFC 3339 text is :data:`ZERO_TIME_TEXT`).
    """
    if isinstance(data, str):
        raise TypeError("unmarshal_time_json takes bytes, not str")
    data = bytes(data)
    if data == b"null":
        return None, None
    if len(data) < 2 or data[0] != 0x22 or data[-1] != 0x22:
        return None, _NOT_A_STRING
    return _parse_strict_rfc3339(data[1:-1])
