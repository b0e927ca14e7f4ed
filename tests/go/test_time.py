"""Tests for cartforensics.go.time: a port of Go 1.25's time.Time.UnmarshalJSON.

The differential tests build tests/go/timeprobe (stdlib only) with the local Go
toolchain and compare, for every input, ok / error text / t.Format(RFC3339Nano) /
t.Unix() / t.Nanosecond() / the zone offset.  The Go side runs with TZ=UTC.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from conftest import TOOLCHAINS, build_cfdiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartforensics.go.time import (
    ZERO_TIME_TEXT,
    GoTime,
    _parse,
    _parse_rfc3339,
    unmarshal_time_json,
)

PROBE_DIR = Path(__file__).parent / "timeprobe"
ZERO_UNIX = -62135596800  # time.Time{}.Unix()


# ---------------------------------------------------------------------------
# Unit tests (no Go needed).
# ---------------------------------------------------------------------------


def _ok(text: bytes) -> GoTime:
    t, err = unmarshal_time_json(text)
    assert err is None, err
    assert t is not None
    return t


def _err(text: bytes) -> str:
    t, err = unmarshal_time_json(text)
    assert t is None
    assert err is not None
    return err


@pytest.mark.parametrize(
    ("data", "unix_sec", "nsec", "offset", "formatted"),
    [
        (b'"1970-01-01T00:00:00Z"', 0, 0, None, "1970-01-01T00:00:00Z"),
        (b'"2024-01-01T10:00:00+02:00"', 1704096000, 0, 7200, "2024-01-01T10:00:00+02:00"),
        (b'"2024-01-01T10:00:00-05:30"', 1704123000, 0, -19800, "2024-01-01T10:00:00-05:30"),
        (
            b'"2006-01-02T15:04:05.123456789Z"',
            1136214245,
            123456789,
            None,
            "2006-01-02T15:04:05.123456789Z",
        ),
        (b'"2006-01-02T15:04:05.100Z"', 1136214245, 100000000, None, "2006-01-02T15:04:05.1Z"),
        # More than 9 fraction digits are truncated, not rounded.
        (
            b'"2006-01-02T15:04:05.9999999999Z"',
            1136214245,
            999999999,
            None,
            "2006-01-02T15:04:05.999999999Z",
        ),
        (b'"2006-01-02T15:04:05.000Z"', 1136214245, 0, None, "2006-01-02T15:04:05Z"),
        (b'"0000-01-01T00:00:00Z"', -62167219200, 0, None, "0000-01-01T00:00:00Z"),
        (b'"0001-01-01T00:00:00Z"', ZERO_UNIX, 0, None, ZERO_TIME_TEXT),
        (
            b'"9999-12-31T23:59:59.999999999Z"',
            253402300799,
            999999999,
            None,
            "9999-12-31T23:59:59.999999999Z",
        ),
        (b'"2000-02-29T00:00:00Z"', 951782400, 0, None, "2000-02-29T00:00:00Z"),
        (b'"0000-02-29T00:00:00Z"', -62162121600, 0, None, "0000-02-29T00:00:00Z"),
        # +00:00 and -00:00 keep a numeric offset of 0 but print as Z.
        (b'"2024-01-01T00:00:00+00:00"', 1704067200, 0, 0, "2024-01-01T00:00:00Z"),
        (b'"2024-01-01T00:00:00-00:00"', 1704067200, 0, 0, "2024-01-01T00:00:00Z"),
        # Go 1.25 has the go.dev/issue/54580 strict checks disabled, so these parse:
        (b'"2006-01-02T1:04:05Z"', 1136163845, 0, None, "2006-01-02T01:04:05Z"),
        (b'"2006-01-02T15:04:05,5Z"', 1136214245, 500000000, None, "2006-01-02T15:04:05.5Z"),
        (b'"2006-01-02T15:04:05+24:00"', 1136127845, 0, 86400, "2006-01-02T15:04:05+24:00"),
        (b'"2006-01-02T15:04:05+12:60"', 1136167445, 0, 46800, "2006-01-02T15:04:05+13:00"),
        (b'"2006-01-02T15:04:05+24:60"', 1136124245, 0, 90000, "2006-01-02T15:04:05+25:00"),
        (b'"0000-01-01T00:00:00+24:60"', -62167309200, 0, 90000, "0000-01-01T00:00:00+25:00"),
        (b'"9999-12-31T23:59:59-24:60"', 253402390799, 0, -90000, "9999-12-31T23:59:59-25:00"),
    ],
)
def test_known_values(data, unix_sec, nsec, offset, formatted):
    t = _ok(data)
    assert t == GoTime(unix_sec, nsec, offset)
    assert t.rfc3339nano() == formatted
    assert t.unix_ns() == unix_sec * 1_000_000_000 + nsec


def test_null_leaves_time_unchanged():
    assert unmarshal_time_json(b"null") == (None, None)


@pytest.mark.parametrize(
    "data", [b"", b'"', b"nul", b"NULL", b" null", b"0", b"true", b"{}", b"[]", b"'x'", b'"a']
)
def test_not_a_json_string(data):
    assert _err(data) == "Time.UnmarshalJSON: input is not a JSON string"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'""', 'parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006"'),
        (b'"2006-01-02T24:00:00Z"', 'parsing time "2006-01-02T24:00:00Z": hour out of range'),
        (b'"2006-01-02T15:60:00Z"', 'parsing time "2006-01-02T15:60:00Z": minute out of range'),
        (b'"2006-01-02T15:04:60Z"', 'parsing time "2006-01-02T15:04:60Z": second out of range'),
        (b'"2006-13-02T15:04:05Z"', 'parsing time "2006-13-02T15:04:05Z": month out of range'),
        (b'"2006-02-29T15:04:05Z"', 'parsing time "2006-02-29T15:04:05Z": day out of range'),
        (b'"1900-02-29T15:04:05Z"', 'parsing time "1900-02-29T15:04:05Z": day out of range'),
        (b'"2006-01-00T15:04:05Z"', 'parsing time "2006-01-00T15:04:05Z": day out of range'),
        (
            b'"2006-01-02T15:04:05+25:00"',
            'parsing time "2006-01-02T15:04:05+25:00": time zone offset hour out of range',
        ),
        (
            b'"2006-01-02T15:04:05+00:61"',
            'parsing time "2006-01-02T15:04:05+00:61": time zone offset minute out of range',
        ),
        (b'"2006-01-02T15:04:05ZZ"', 'parsing time "2006-01-02T15:04:05ZZ": extra text: "Z"'),
        (
            b'"2006-01-02t15:04:05Z"',
            'parsing time "2006-01-02t15:04:05Z" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse "t15:04:05Z" as "T"',
        ),
        (
            b'"2006-01-02T15:04:05z"',
            'parsing time "2006-01-02T15:04:05z" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse "z" as "Z07:00"',
        ),
        (
            b'"2006-01-02T15:04:05"',
            'parsing time "2006-01-02T15:04:05" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse "" as "Z07:00"',
        ),
        (
            b'"2006-01-02T15:04:05.Z"',
            'parsing time "2006-01-02T15:04:05.Z" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse ".Z" as "Z07:00"',
        ),
        (
            b'"2024-01-01T00:00:00\\u005a"',
            'parsing time "2024-01-01T00:00:00\\\\u005a" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse "\\\\u005a" as "Z07:00"',
        ),
        (
            b'"2006-01-02T15:04:05Z\xff\x00\xc3\xa9"',
            'parsing time "2006-01-02T15:04:05Z\\xff\\x00\\xc3\\xa9": extra text: '
            '"\\xff\\x00\\xc3\\xa9"',
        ),
        (
            b'"\xef\xbf\xbd\x7f\\""',
            'parsing time "\\xef\\xbf\\xbd\x7f\\\\\\"" as "2006-01-02T15:04:05Z07:00":'
            ' cannot parse "\\xef\\xbf\\xbd\x7f\\\\\\"" as "2006"',
        ),
    ],
)
def test_error_texts(data, message):
    assert _err(data) == message


def test_gotime_api():
    t = GoTime(0, 0, None)
    assert t.rfc3339nano() == "1970-01-01T00:00:00Z"
    assert GoTime(-1, 999_999_999, None).unix_ns() == -1
    assert GoTime(-1, 500, 0).rfc3339nano() == "1969-12-31T23:59:59.0000005Z"
    assert GoTime(0, 0, 3600).rfc3339nano() == "1970-01-01T01:00:00+01:00"
    # Go: zone := offset / 60 truncates toward zero; a non-zero offset is never "Z".
    assert GoTime(0, 0, -30).rfc3339nano() == "1969-12-31T23:59:30+00:00"
    with pytest.raises(ValueError):
        GoTime(0, 1_000_000_000, None)
    with pytest.raises(ValueError):
        GoTime(0, -1, None)
    with pytest.raises(AttributeError):
        t.nsec = 1  # type: ignore[misc]


def test_accepts_bytes_like_rejects_str():
    assert unmarshal_time_json(bytearray(b'"1970-01-01T00:00:00Z"'))[0] == GoTime(0, 0, None)
    assert unmarshal_time_json(memoryview(b"null")) == (None, None)
    with pytest.raises(TypeError):
        unmarshal_time_json('"1970-01-01T00:00:00Z"')  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Input generators shared by the Go-free property test and the differential tests.
# ---------------------------------------------------------------------------

_INTERESTING = b'0123456789-:T.,Zz+ t"\\u\x00\x01\x1f\x7f\x80\xbf\xc3\xa9\xef\xff'


def _base_timestamp(rng: random.Random) -> bytes:
    """A timestamp that is valid (about half the time) or has fields near their limits."""
    edgy = rng.random() < 0.5
    year = rng.choice(
        [
            0,
            1,
            4,
            1600,
            1900,
            1969,
            1970,
            2000,
            2004,
            2024,
            2100,
            9999,
            rng.randrange(10000),
            rng.randrange(10000),
        ]
    )
    if edgy:
        month = rng.choice([0, 1, 2, 2, 12, 13, rng.randrange(1, 13)])
        day = rng.choice([0, 1, 28, 29, 29, 30, 31, 32, rng.randrange(1, 32)])
        hour = rng.choice([0, 9, 23, 24, rng.randrange(24)])
        minute = rng.choice([0, 59, 60, rng.randrange(60)])
        sec = rng.choice([0, 59, 60, rng.randrange(60)])
    else:
        month = rng.randrange(1, 13)
        day = rng.choice([1, rng.randrange(1, 29)])
        hour, minute, sec = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    s = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}"
    r = rng.random()
    if r < 0.35:
        s += rng.choice(".,") + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 12)))
    elif r < 0.4:
        s += "." + "0" * rng.randint(1, 12)
    r = rng.random()
    if r < 0.4:
        s += "Z"
    elif r < 0.9:
        if edgy:
            hh = rng.choice([0, 1, 12, 23, 24, 25, 99, rng.randrange(24)])
            mm = rng.choice([0, 30, 59, 60, 61, 99, rng.randrange(60)])
        else:
            hh, mm = rng.randrange(24), rng.choice([0, 0, 30, 45, rng.randrange(60)])
        s += f"{rng.choice('+-')}{hh:02d}:{mm:02d}"
    elif r < 0.95:
        s += rng.choice(["z", "", "+0000", "+00", "+00:00:00", "UTC", " Z"])
    return s.encode()


def _mutate(rng: random.Random, s: bytes) -> bytes:
    b = bytearray(s)
    for _ in range(rng.choice([0, 0, 0, 1, 1, 1, 2, 3])):
        op = rng.randrange(6)
        pos = rng.randint(0, len(b))
        if op == 0 and b and pos < len(b):  # change a digit / byte
            b[pos] = rng.choice(b"0123456789") if rng.random() < 0.6 else rng.choice(_INTERESTING)
        elif op == 1:  # insert
            b[pos:pos] = bytes([rng.choice(_INTERESTING)])
        elif op == 2 and b and pos < len(b):  # delete
            del b[pos]
        elif op == 3:  # truncate
            del b[pos:]
        elif op == 4:  # random byte anywhere
            b[pos:pos] = bytes([rng.randrange(256)])
        else:  # JSON escape that Go does not unescape
            if b and pos < len(b):
                b[pos : pos + 1] = b"\\u%04x" % b[pos]
    return bytes(b)


def _wrap(rng: random.Random, body: bytes) -> bytes:
    r = rng.random()
    if r < 0.93:
        return b'"' + body + b'"'
    if r < 0.96:
        return body
    return rng.choice([b'"', b" ", b""]) + body + rng.choice([b'"', b" ", b"", b'" '])


def _random_input(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.85:
        return _wrap(rng, _mutate(rng, _base_timestamp(rng)))
    if r < 0.95:  # short random strings over the interesting alphabet
        n = rng.randint(0, 30)
        return b'"' + bytes(rng.choice(_INTERESTING) for _ in range(n)) + b'"'
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))


@st.composite
def json_inputs(draw) -> bytes:
    """Hypothesis strategy: mutated timestamps and raw bytes (shrinks via the seed/bytes)."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=40))
    if kind == 1:
        return b'"' + draw(st.binary(max_size=40)) + b'"'
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    body = _mutate(rng, _base_timestamp(rng))
    if draw(st.booleans()):
        # Hypothesis-driven edits on top of the random mutations.
        edits = draw(st.lists(st.tuples(st.integers(0, 40), st.binary(max_size=3)), max_size=3))
        for pos, ins in edits:
            body = body[:pos] + ins + body[pos + 1 :]
    return _wrap(rng, body)


def _check_fast_path(data: bytes) -> None:
    if len(data) < 2 or data[:1] != b'"' or data[-1:] != b'"':
        return
    body = data[1:-1]
    fast = _parse_rfc3339(body)
    if fast is not None:
        slow, err = _parse(body)
        assert err is None
        assert slow is not None
        assert (slow.unix_sec, slow.nsec, slow.offset or 0) == (
            fast.unix_sec,
            fast.nsec,
            fast.offset or 0,
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(st.lists(json_inputs(), min_size=1, max_size=100))
def test_fast_path_agrees_with_generic_parse(batch):
    """Where Go's fast parseRFC3339 succeeds, the generic parse must give the same time."""
    for data in batch:
        _check_fast_path(data)


def test_fast_path_agrees_with_generic_parse_seeded():
    for data in _random_cases(3000, seed=7):
        _check_fast_path(data)


# ---------------------------------------------------------------------------
# Differential tests against the real Go implementation (Go 1.25 and Go 1.27).
# ---------------------------------------------------------------------------


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TZ="UTC", GOTOOLCHAIN="local", GOWORK="off", GOFLAGS="-mod=mod", CGO_ENABLED="0")
    return env


@pytest.fixture(scope="session", params=list(TOOLCHAINS))
def timeprobe(request, tmp_path_factory) -> str:
    """timeprobe built by each toolchain (conftest.TOOLCHAINS): time.Time.UnmarshalJSON did not
    change between them (json v2 only changes what reaches it)."""
    ref = build_cfdiff(TOOLCHAINS[request.param], tmp_path_factory.mktemp("timeprobe"),
                       src=PROBE_DIR, name="timeprobe")
    return str(ref.binary)


def _run_probe(binary: str, inputs: list[bytes]) -> list[dict]:
    payload = "".join(json.dumps(b.hex()) + "\n" for b in inputs)
    proc = subprocess.run(
        [binary],
        input=payload,
        capture_output=True,
        text=True,
        env=_go_env(),
        check=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == len(inputs), proc.stderr
    return [json.loads(line) for line in lines]


def _python_result(data: bytes) -> dict:
    """What the probe would print, computed with the Python port."""
    t, err = unmarshal_time_json(data)
    if t is None:  # null leaves the zero Time; an error stores the zero Time
        return {
            "ok": err is None,
            "err": err,
            "fmt": ZERO_TIME_TEXT,
            "unix": ZERO_UNIX,
            "nsec": 0,
            "off": 0,
        }
    return {
        "ok": True,
        "err": None,
        "fmt": t.rfc3339nano(),
        "unix": t.unix_sec,
        "nsec": t.nsec,
        "off": t.offset or 0,
    }


def _edge_cases() -> list[bytes]:
    bodies = [
        # valid
        "2006-01-02T15:04:05Z",
        "1970-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999999999Z",
        "2024-01-01T10:00:00+02:00",
        "2024-01-01T10:00:00-02:00",
        "2024-06-30T23:59:59-11:30",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00-00:00",
        "2024-01-01T00:00:00+23:59",
        "2024-01-01T00:00:00-23:59",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00-24:00",
        "2024-01-01T00:00:00+12:60",
        "2024-01-01T00:00:00+24:60",
        "2024-01-01T00:00:00-24:60",
        "2024-01-01T00:00:00+25:00",
        "2024-01-01T00:00:00+00:61",
        "2024-01-01T00:00:00+99:99",
        "2024-01-01T00:00:00+25:xx",
        "2024-01-01T00:00:00x25:00",
        "2024-01-01T00:00:00+2a:00",
        "2024-01-01T00:00:00+01:0a",
        "2024-01-01T00:00:00+01-00",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00+01",
        "2024-01-01T00:00:00+01:00:00",
        "2024-01-01T00:00:00UTC",
        "0000-01-01T00:00:00+24:60",
        "9999-12-31T23:59:59-24:60",
        "0000-01-01T00:00:00+01:00",
        # case, separators, missing pieces
        "2006-01-02t15:04:05Z",
        "2006-01-02T15:04:05z",
        "2006-01-02T15:04:05",
        "2006-01-02 15:04:05Z",
        "2006-01-02T15:04Z",
        "2006-01-02",
        "2006-01-02T",
        "2006/01/02T15:04:05Z",
        "2006-01-02T15.04.05Z",
        "2006-01-02T15:04:05 Z",
        # fractions
        *(f"2006-01-02T15:04:05.{'123456789012'[:n]}Z" for n in range(1, 13)),
        *(f"2006-01-02T15:04:05,{'987654321098'[:n]}Z" for n in range(1, 13)),
        "2006-01-02T15:04:05.000000000Z",
        "2006-01-02T15:04:05.000000000001Z",
        "2006-01-02T15:04:05.Z",
        "2006-01-02T15:04:05,Z",
        "2006-01-02T15:04:05.",
        "2006-01-02T15:04:05..1Z",
        "2006-01-02T15:04:05.1.2Z",
        "2006-01-02T15:04:05.5+01:00",
        "2006-01-02T15:04:05,5-01:00",
        "2006-01-02T15:04:05.-1Z",
        "2006-01-02T15:04:05.+1Z",
        # field ranges
        "2006-01-02T24:00:00Z",
        "2006-01-02T23:60:00Z",
        "2006-01-02T23:59:60Z",
        "2006-01-02T99:00:00Z",
        "2006-00-02T00:00:00Z",
        "2006-13-02T00:00:00Z",
        "2006-01-00T00:00:00Z",
        "2006-01-32T00:00:00Z",
        "2006-04-31T00:00:00Z",
        "2004-02-29T00:00:00Z",
        "2006-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "0000-02-29T00:00:00Z",
        "2006-02-30T25:00:00Z",
        "2006-13-32T25:61:61Z",
        "2006-02-30T00:00:00ZZ",
        # 1-digit / 3-digit fields
        "2006-01-02T1:04:05Z",
        "2006-01-02T1:4:05Z",
        "2006-01-02T15:4:05Z",
        "2006-01-02T15:04:5Z",
        "2006-1-02T15:04:05Z",
        "2006-01-2T15:04:05Z",
        "2006-01-02T123:04:05Z",
        "206-01-02T15:04:05Z",
        "20060-01-02T15:04:05Z",
        "+2006-01-02T15:04:05Z",
        "-2006-01-02T15:04:05Z",
        "2-06-01-02T15:04:05Z",
        "2006-+1-02T15:04:05Z",
        "2006-01-02T+1:04:05Z",
        "2006-01-02T-1:04:05Z",
        # trailing / leading junk
        "2006-01-02T15:04:05ZZ",
        "2006-01-02T15:04:05Z ",
        " 2006-01-02T15:04:05Z",
        "2006-01-02T15:04:05+01:00 ",
        "2006-01-02T15:04:05+01:00Z",
        "2006-01-02T15:04:05Zjunk",
        # escapes are not unescaped
        "2024-01-01T00:00:00\\u005a",
        "\\u0032024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z\\n",
        "2024-01-01\\u005400:00:00Z",
        '2024-01-01T00:00:00\\"',
        "\\\\",
        # misc
        "",
        "Z",
        "null",
        "0",
        "-",
        "T",
        "2006",
        "2006-",
        "2006-01",
        "2006-01-02T15:04:05+",
    ]
    cases = [b'"' + s.encode() + b'"' for s in bodies]
    cases += [
        b"null",
        b"NULL",
        b"nul",
        b" null",
        b"null ",
        b"",
        b'"',
        b'""',
        b'"""',
        b"0",
        b"-1",
        b"1.5",
        b"true",
        b"false",
        b"{}",
        b"[]",
        b'["2006-01-02T15:04:05Z"]',
        b'{"t":"2006-01-02T15:04:05Z"}',
        b"2006-01-02T15:04:05Z",
        b' "2006-01-02T15:04:05Z"',
        b'"2006-01-02T15:04:05Z" ',
        b"'2006-01-02T15:04:05Z'",
        b'"2006-01-02T15:04:05Z',
        b'2006-01-02T15:04:05Z"',
        # non-ASCII, invalid UTF-8, NUL, control bytes
        b'"2006-01-02T15:04:05Z\x00"',
        b'"\x00"',
        b'"2006-01-02T15:04:05\xc3\xa9"',
        b'"2006-01-02T15:04:05Z\xff"',
        b'"\xff\xfe"',
        b'"\xef\xbf\xbd"',
        b'"\xef\xbf\xbd\xef"',
        b'"\xef\xbf"',
        b'"\xed\xa0\x80"',
        b'"\xf0\x9f\x98\x80"',
        b'"\xf0\x9f\x98"',
        b'"2006\xe2\x80\x9101-02T15:04:05Z"',
        b'"2006-01-02T15:04:05\x7f"',
        b'"\x1f\x01\t\n\r"',
        b'"2006-01-02T15:04:05+01:0\x80"',
        b'"2006-01-02T15:04:05\x80\x81\x82\x83\x84\x85"',
        b'"\xd9\xa0\xd9\xa0\xd9\xa0\xd9\xa0-01-02T15:04:05Z"',  # Arabic-Indic digits
        b'"\xef\xbc\x92006-01-02T15:04:05Z"',  # fullwidth 2
    ]
    return cases


def _random_cases(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [_random_input(rng) for _ in range(n)]


def _assert_same(inputs: list[bytes], go_results: list[dict]) -> None:
    mismatches = []
    for data, go in zip(inputs, go_results, strict=True):
        py = _python_result(data)
        if py != go:
            mismatches.append((data, py, go))
    assert not mismatches, f"{len(mismatches)} of {len(inputs)} differ; first ones:\n" + "\n".join(
        f"{d!r}\n  py={p}\n  go={g}" for d, p, g in mismatches[:5]
    )


def test_differential_batch(timeprobe):
    """Edge cases + seeded random mutations, all through one Go process call."""
    inputs = _edge_cases() + _random_cases(6000, seed=20250)
    results = _run_probe(timeprobe, inputs)
    _assert_same(inputs, results)
    # The corpus must exercise both outcomes and many distinct error texts.
    oks = sum(r["ok"] and r["err"] is None for r in results)
    assert 500 < oks < len(inputs) - 500
    assert len({r["err"].split(":")[-1] for r in results if r["err"]}) >= 10


class _Probe:
    """A long-running timeprobe process: a batch of lines in, as many lines out."""

    MAX_BATCH = 200  # keeps the output (~150 bytes a line) well under the pipe buffer

    def __init__(self, binary: str) -> None:
        self.proc = subprocess.Popen(
            [binary],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_go_env(),
        )
        self.count = 0

    def query(self, inputs: list[bytes]) -> list[dict]:
        assert len(inputs) <= self.MAX_BATCH
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("".join(json.dumps(b.hex()) + "\n" for b in inputs))
        self.proc.stdin.flush()
        self.count += len(inputs)
        return [json.loads(self.proc.stdout.readline()) for _ in inputs]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def probe(timeprobe):
    p = _Probe(timeprobe)
    yield p
    p.close()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(json_inputs(), min_size=20, max_size=_Probe.MAX_BATCH))
def test_differential_hypothesis(probe, batch):
    """Hypothesis-generated inputs (~3000 in all), in batches through one Go process."""
    _assert_same(batch, probe.query(batch))
