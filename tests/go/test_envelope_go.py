"""Differential test: ``read_events`` against the seed's reader loop run by a real Go, under
each toolchain (``go_ref``: Go 1.25 and Go 1.27, the Python side told the matching go_version).

Every case is written to a file, Go's ``bufio.Scanner`` + ``json.Unmarshal(line, &raw)`` reads
it (tests/go/cfdiff ``envelope``), and we assert agreement line by line: the cut, whether the
envelope decodes, the exact error text, and the ts, type and payload Go got.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pandas as pd
from conftest import GoRef, examples, run_cfdiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartforensics import read_events
from cartforensics.go.bufio import MAX_TOKEN_SIZE
from cartforensics.go.envelope import decode_envelope
from cartforensics.go.json import go_utf8
from cartforensics.go.version import semantics

W = b'{"ts":1700000000,"type":"AddItem","payload":{"sku":"a","quantity":1}}'
S = b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"a","quantity":1}}'

ADVERSARIAL: list[bytes] = [
    W, S, b"", b" ", b"\t", b"null", b" null ", b"[1]", b"[]", b"1", b"-0", b'"x"', b"true",
    b"false", b"{}", b"{ }", b"{}{}", W + W, W + b" x", W + b"\x00", b"\x00", W[:-1], W[:30],
    b"\xef\xbb\xbf" + S, b'{"ts":"2024-01-02T03:04:05Z","type":"A\xff\xfeB","payload":1}',
    b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"\xff\xc3"}}',
    b'\xff{"ts":null}', b'{"ts":null,"type":"AddItem","payload":null}',
    b'{"ts":null}', b'{"type":null}', b'{"payload":null}', b'{"TS":"2024-01-02T03:04:05Z"}',
    b'{"Ts":"2024-01-02T03:04:05Z","TYPE":"AddItem","PayLoad":{}}',
    '{"t\u017f":"2024-01-02T03:04:05Z","\u0131d":1}'.encode(),
    '{"typ\u0435":"X"}'.encode(), '{"\u212ats":1}'.encode(),
    '{"ts":"2024-01-02T03:04:05Z","\u0074ype":"AddItem"}'.encode(),
    b'{"t\\u0073":"2024-01-02T03:04:05Z","type":"X"}',
    b'{"ts":"2024-01-02T03:04:05Z","ts":null,"type":"X"}',
    b'{"ts":null,"ts":"2024-01-02T03:04:05Z","type":"X"}',
    b'{"ts":"2024-01-02T03:04:05Z","ts":1,"type":"X"}',
    b'{"ts":1,"ts":"2024-01-02T03:04:05Z","type":"X"}',
    b'{"type":"A","type":"B","type":null}', b'{"type":"A","type":5,"ts":"bad"}',
    b'{"type":5,"ts":1}', b'{"type":{},"ts":[]}', b'{"type":[1,2]}', b'{"type":true}',
    b'{"payload":1,"payload":{"a":1}}', b'{"payload":{"a":1},"payload":null}',
    b'{"payload": {"a" : [1, 2 ] } , "type":"X"}', b'{"payload":"str"}',
    b'{"ts":{"a":1}}', b'{"ts":[1]}', b'{"ts":true}', b'{"ts":-1}', b'{"ts":1.5}',
    b'{"ts":1e3}', b'{"ts":99999999999999999999999}', b'{"ts":-0}', b'{"ts":0}',
    b'{"ts":"2024-01-02T03:04:05+01:00","type":"X"}', b'{"ts":"2024-01-02T03:04:05.123456789Z"}',
    b'{"ts":"2024-01-02T03:04:05.1234567891Z"}', b'{"ts":"2024-01-02t03:04:05Z"}',
    b'{"ts":"2024-01-02T03:04:05z"}', b'{"ts":"2024-01-02T24:00:00Z"}',
    b'{"ts":"2024-01-02 03:04:05Z"}', b'{"ts":"2024-01-02T03:04:05"}', b'{"ts":""}',
    b'{"ts":"2024-02-30T00:00:00Z"}', b'{"ts":"0000-01-01T00:00:00Z"}',
    b'{"ts":"9999-12-31T23:59:59.999999999-23:59"}', b'{"ts":"2024-01-02T03:04:05,5Z"}',
    b'{"ts":"2024-01-02T3:04:05Z"}', b'{"ts":"2024-01-02T03:04:05+24:00"}',
    b'{"ts":"2024-01-02T03:04:05\\u005a"}', b'{"ts":"2024-01-02T03:04:05.Z"}',
    b'{"ts":"2024-01-02T03:04:60Z"}', b'{"ts":"\xff"}', b'{"ts" : "2024-01-02T03:04:05Z"}',
    b'{"a":1,}', b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":1e}', b'{"a":-}', b'{"a":tru}',
    b'{"a":nul}', b'{"a":"\\x"}', b'{"a":"\\u12G4"}', b'{"a":"\x01"}', b'{"a":"\\ud800"}',
    b'{"type":"\\ud83d\\ude00"}', b'{"type":"\\ud800\\u0041"}', b'{"type":"\\ud83d"}',
    b'{"type":"\\u0041ddItem","ts":"2024-01-02T03:04:05Z","payload":{}}',
    b'{"a" 1}', b'{1:2}', b'{"a":1 "b":2}', b"[1 2]", b"[1,]", b"{'a':1}", b"NaN", b"Infinity",
    b"\x0c{}", b"{}\x0b", b"[" * 10000 + b"]" * 10000, b"[" * 10001 + b"]" * 10001,
    b'{"payload":' + b"[" * 9999 + b"]" * 9999 + b"}",
    b'{"x":' + b"[" * 10000 + b"]" * 10000 + b"}",
    b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"image":"' + b"x" * 70000 + b'"}}',
    "{\"type\":\"\u2028\u2029\",\"ts\":\"2024-01-02T03:04:05Z\"}".encode(),
    b'{"type":"\\u003cscript\\u003e","payload":{"sku":"<img src=x onerror=alert(1)>"}}',
]


def _shaped(ts: bytes = b"1700000000", name: bytes = b"AddItem", payload: bytes = b"{}") -> bytes:
    return b'{"ts":' + ts + b',"type":"' + name + b'","payload":' + payload + b"}"


# Lines in the writer's shape at the edges of what the compiled scan (_writer_shape_core.pyx)
# proves itself and what it leaves to the port: nesting depth, escaped surrogate halves,
# invalid or overlong UTF-8 in a payload, int64 bounds and -0 in ts, non-ASCII or control
# bytes in ts and type, whitespace inside and after the payload, number forms, the years
# pandas can hold.
SCAN_EDGES: list[bytes] = [
    _shaped(payload=b"[" * 512 + b"]" * 512), _shaped(payload=b"[" * 513 + b"]" * 513),
    _shaped(payload=b'{"a":' * 600 + b"1" + b"}" * 600),
    _shaped(payload=b'{"sku":"\\ud800"}'), _shaped(payload=b'{"sku":"\\ud83d\\ude00"}'),
    _shaped(payload=b'{"sku":"\\udfff\\ud800"}'), _shaped(payload=b'{"sku":"\\u00e5\\u2028"}'),
    _shaped(payload=b'{"sku":"\xff"}'), _shaped(payload=b'{"sku":"\xed\xa0\x80"}'),
    _shaped(payload=b'{"sku":"\xc0\xaf"}'), _shaped(payload=b'{"sku":"\xf4\x90\x80\x80"}'),
    _shaped(payload=b'{"sku":"\xe0\x80\x80"}'), _shaped(payload=b'{"sku":"\xf0\x9f\x98\x80"}'),
    _shaped(payload=b'{"sku":"\xc3"}'), _shaped(payload=b'{"sku":"a\x7fb"}'),
    _shaped(payload=b'{"sku":"a\tb"}'), _shaped(payload=b'{"sku":"a\x1fb"}'),
    _shaped(ts=b"9223372036854775807"), _shaped(ts=b"-9223372036854775808"),
    _shaped(ts=b"9223372036854775808"), _shaped(ts=b"-9223372036854775809"),
    _shaped(ts=b"-0"), _shaped(ts=b"01"), _shaped(ts=b"0"), _shaped(ts=b"1.0"),
    _shaped(ts=b"1E3"), _shaped(ts=b"null"), _shaped(ts=b'"\xc3\xa5"'), _shaped(ts=b'"\x7f"'),
    _shaped(ts=b'"1677-12-31T23:59:59Z"'), _shaped(ts=b'"1678-01-01T00:00:00Z"'),
    _shaped(ts=b'"2261-12-31T23:59:59.999999999Z"'), _shaped(ts=b'"2262-04-12T00:00:00Z"'),
    _shaped(ts=b'"2024-01-02T03:04:05.000000000000001-00:00"'),
    _shaped(name=b""), _shaped(name=b"Add\x7fItem"), _shaped(name=b"Add\tItem"),
    _shaped(name=b"Add Item"), _shaped(name=b"\xc3\xa5"), _shaped(name=b"A\\u0041"),
    _shaped(payload=b'{ "sku" : "a" , "quantity" : [ 1 , 2 ] }'), _shaped(payload=b"{}\r"),
    _shaped(payload=b"{} "), _shaped(payload=b'{"a":[-0.5e+3,1E5,0.0,-0,1e-7,true,false,null]}'),
    _shaped(payload=b'{"a":1.e5}'), _shaped(payload=b'{"a":-}'), _shaped(payload=b'{"a":.5}'),
    _shaped(payload=b'"just a string"'), _shaped(payload=b"12"), _shaped(payload=b"null"),
    _shaped(payload=b'{"a":1,"a":2}'), _shaped(payload=b'{"a":1}x'), _shaped(payload=b""),
]
ADVERSARIAL += SCAN_EDGES

# Lines where json v1 and v2 part ways (Go 1.25 vs 1.27): truncations at every kind of token,
# escapes near the end, stray runes, mismatched brackets, escaped and duplicated ts values,
# errors of several kinds in one line (v1 stops at a ts error, v2 keeps the first error).
TOOLCHAIN_CASES: list[bytes] = [
    b'nul', b'tru', b'fals', b'1.', b'1e', b'1e+', b'-', b'"abc', b'"\\', b'"\\u12', b'"\\u12"',
    b'{"a":"\\u12"}', b'{"a":"\\u"}', b'{"a":"\\uD800"}', b'"\xe2\x82', b'{"a":"\xe2\x82',
    b'{"a":"\xe2\x82"}', b'{"a":"\\`"}', b'{"a":"\\ "}', b'{"a":"\\\xff"}', b'{"a":"\\\xc3\xa9"}',
    b'{"a":"\\u00"}', b'{"a":"\\u0', b'{"a":"\\uzzzz"}', b'{"a":"\\u 12 "}', b'\xc3\xa9',
    b'\xe2\x80\xa8', b'\x7f', b'`', b"'", b'\\', b'\x00', b'\t', b']', b'}', b',', b':', b', ',
    b': 1', b'{"a":1]', b'[1}', b'{]', b'[}', b'{"a"', b'{"a":', b'{"a":1', b'{"a":1,', b'[1,',
    b'[', b'{',
    b'{"ts":"2024\\u002d01-02T03:04:05Z","type":"AddItem","payload":{"sku":"e","quantity":1}}',
    b'{"ts":"2024-01-02T03:04:05\\u002B01:00","type":"AddItem","payload":{"sku":"f","quantity":1}}',
    b'{"ts":"2024-01-02T03:04:05\\/","type":"X"}',
    b'{"ts":"\\"2024-01-02T03:04:05Z\\"","type":"X"}', b'{"ts":"2024-01-02T03:04:05Z\\u0000"}',
    b'{"ts":"2024-01-02T03:04:05\\ud800Z"}', b'{"ts":"bad","type":5}', b'{"type":5,"ts":"bad"}',
    b'{"ts":"bad","ts":1}', b'{"ts":1,"ts":"bad"}', b'{"ts":"bad","ts":"2024-01-02T03:04:05Z"}',
    b'{"ts":null,"ts":"\\u0032024-01-02T03:04:05Z","type":"X"}',
    b'{"TS":"2024-01-02T03:04:05\\u005A","type":"X"}', b'{"ts":1.5e400}',
    b'{"ts":"x","payload":[1,2}', b'{"type":{"a":[1,{"b":2}]},"ts":5}', b'{"ts":[1,"x"],"type":7}',
    b'{"Type":7}', b'{"TYPE":[1]}', b'{"ts":"2024-01-02T03:04:05.000000000Z","type":"X"}',
    b'{"ts":"2024-01-02T03:04:05.Z"}',
    b'{"ts":"\\u0032\\u0030\\u0032\\u0034-01-02T03:04:05Z","type":"AddItem","payload":{"sku":"g","quantity":1}}',
    b'{"ts":"2024-01-02T03:04:05\\u005a","type":"Add\\u0049tem","payload":{"sku":"h","quantity":2}}',
    b'{"ts":"2024-01-02T03:04:05\\u005a","type":"AddItem","payload":{"sku":1}}',
    b'{"ts":"2024-01-02T03:04:05\\u005a","ts":null,"type":"AddItem","payload":{"sku":"i","quantity":1}}',
    b'{"ts":1e999}', b'{"ts":-1e-999}', b'{"ts":"\xef\xbb\xbf2024-01-02T03:04:05Z"}',
    b'{"type":5,"ts":1e400}', b'{"ts":1e400,"type":5}', b'{"ts":[],"ts":1e400}',
    '{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"\u017fku":5}}'.encode(),
    b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"sk\\u0075":5}}',
    b'{"ts":"2024-01-02T03:04:05Z","type":"SetDelivery","payload":{"pickupPoint":{"ID":[1]}}}',
]


def _write_cases(path: Path, lines: list[bytes], sep: bytes = b"\n", final: bool = True) -> None:
    path.write_bytes(sep.join(lines) + (sep if final else b""))


COMPARED: dict[str, int] = {}  # lines compared per toolchain (printed at the end of a run)


def _compare(ref: GoRef, files: list[Path]) -> int:
    """Run Go and ours over the files; assert agreement; return the number of lines compared."""
    go = run_cfdiff(ref, "envelope", *map(str, files))
    sem = semantics(ref.go_version)
    df = read_events([str(f) for f in files], progress=False, go_version=sem)
    compared = 0
    by_file: dict[str, list[dict]] = {}
    ends: dict[str, dict] = {}
    for rec in go:
        if rec.get("end"):
            ends[rec["file"]] = rec
        else:
            by_file.setdefault(rec["file"], []).append(rec)
    for f in files:
        cid = f.name[: -len(".events.log")]
        ours = df[df["cart_id"] == cid].reset_index(drop=True)
        theirs = by_file.get(str(f), [])
        end = ends[str(f)]
        # the cut: Go processed exactly the lines before our too_long line
        stop = ours.index[ours["too_long"]].tolist()
        n_processed = stop[0] if stop else len(ours)
        assert len(theirs) == n_processed, (f, len(theirs), n_processed)
        if stop:
            assert end["scanner_error"] == "bufio.Scanner: token too long"
        else:
            assert end["scanner_error"] is None
        data = f.read_bytes()
        for rec in theirs:
            row = ours.iloc[rec["line"] - 1]
            raw = bytes(row["raw"])
            assert raw == data[row["offset"] : row["offset"] + row["length"]]
            token = raw[:-1] if raw.endswith(b"\r") else raw
            ctx = (f.name, rec["line"], token[:200])
            ours_err = row["envelope_error"]
            ours_err = None if pd.isna(ours_err) else ours_err
            assert ours_err == rec["error"], ctx
            env = decode_envelope(token, sem=sem)
            assert env.error == rec["error"], ctx
            if rec["ok"]:
                assert env.type == rec["type"], ctx
                assert row["type"] == rec["type"], ctx
                go_payload = (
                    None if rec["payload_b64"] is None else base64.b64decode(rec["payload_b64"])
                )
                assert env.payload == go_payload, ctx
                ours_payload = None if pd.isna(row["payload"]) else row["payload"]
                assert ours_payload == (None if go_payload is None else go_utf8(go_payload)), ctx
                if rec["ts_zero"]:
                    assert env.ts is None or env.ts.rfc3339nano() == rec["ts"], ctx
                    assert row["ts_kind"] in ("null", "missing", "string"), ctx
                else:
                    assert env.ts is not None and env.ts.rfc3339nano() == rec["ts"], ctx
                    assert row["ts_kind"] == "string", ctx
                    if not pd.isna(row["ts"]):
                        assert row["ts"].value == env.ts.unix_ns(), ctx
            compared += 1
    COMPARED[ref.id] = COMPARED.get(ref.id, 0) + compared
    return compared


def test_adversarial_lines_agree_with_go(go_ref: GoRef, tmp_path: Path) -> None:
    files = []
    for i, sep in enumerate([b"\n", b"\r\n"]):
        for final in (True, False):
            f = tmp_path / f"adv{i}{int(final)}.events.log"
            _write_cases(f, ADVERSARIAL + TOOLCHAIN_CASES, sep, final)
            files.append(f)
    # blank lines, lone CRs, a CR in the middle, a file of only newlines, an empty file
    extra = {
        "blank": b"\n\n" + S + b"\n\n\n",
        "crs": S + b"\r\r\n" + S + b"\r" + b"\n\r\n" + b"\r",
        "midcr": S[:20] + b"\r" + S[20:] + b"\n",
        "onlynl": b"\n\n\n",
        "empty": b"",
    }
    for name, blob in extra.items():
        f = tmp_path / f"{name}.events.log"
        f.write_bytes(blob)
        files.append(f)
    assert _compare(go_ref, files) > 4 * len(ADVERSARIAL)


def test_scanner_boundary_agrees_with_go(go_ref: GoRef, tmp_path: Path) -> None:
    """Lines just below, at and above 256 KiB, LF and CRLF, with and without a final newline,
    at the start of a file and after other lines (so the buffer has already moved)."""
    files = []
    head = b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"image":"'
    for delta in (-2, -1, 0, 1, 2):
        for crlf in (False, True):
            for final in (True, False):
                for prefix_lines in (0, 3):
                    size = MAX_TOKEN_SIZE + delta  # bytes before '\n', a '\r' included
                    body_len = size - len(head) - 3 - (1 if crlf else 0)
                    line = head + b"x" * body_len + b'"}}' + (b"\r" if crlf else b"")
                    assert len(line) == size
                    blob = (S + b"\n") * prefix_lines + line
                    if final:
                        blob += b"\n" + S + b"\n"
                    name = f"b{delta + 2}{int(crlf)}{int(final)}{prefix_lines}.events.log"
                    f = tmp_path / name
                    f.write_bytes(blob)
                    files.append(f)
    assert _compare(go_ref, files) > 0
    df = read_events([str(f) for f in files], progress=False)
    # the rule: bytes before '\n' (a '\r' included) >= 262,144 stops the scanner
    assert (df["too_long"] == (df["length"] >= MAX_TOKEN_SIZE)).all()


_ALPH = [b'{', b'}', b'[', b']', b'"', b':', b',', b'\\', b'u', b' ', b'\x00', b'\xff', b'0',
         b'-', b'.', b'e', b'n', b't', b'ts', b'type', b'payload', b'null', b'\r']


def _mutate(rng: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(pos, len(b) - 1)]
        elif op == 1:
            b[pos:pos] = rng.choice(_ALPH)
        elif op == 2 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        else:
            cut = rng.randrange(len(b) + 1)
            b = b[:cut]
    return bytes(b)


_key = st.sampled_from(["ts", "type", "payload", "TS", "Type", "PAYLOAD", "x", "t\u017f"])
_ts_val = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(['"2024-01-02T03:04:05Z"', '"2024-01-02T03:04:05.5+02:00"', "null",
                     '"2024-13-01T00:00:00Z"', "1.5", "true", "{}", '"x"']),
)
_val = st.one_of(_ts_val, st.sampled_from(['"AddItem"', '"RemoveItem"', '{"sku":"a"}', "[]",
                                           '{"a":{"b":[1,2,{"c":null}]}}', '"\\u00e9"']))


@st.composite
def _objects(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(_key, _val), max_size=5))
    sep = draw(st.sampled_from([",", " , ", ","]))
    return ("{" + sep.join(f'"{k}":{v}' for k, v in pairs) + "}").encode()


@settings(
    max_examples=examples(25, ci=50), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(objs=st.lists(_objects(), min_size=20, max_size=60), seed=st.integers(0, 2**32 - 1))
def test_generated_lines_agree_with_go(go_ref: GoRef, tmp_path_factory, objs, seed) -> None:
    rng = random.Random(seed)
    lines = list(objs)
    lines += [_mutate(rng, rng.choice(ADVERSARIAL[:2] + objs)) for _ in range(60)]
    d = tmp_path_factory.mktemp("gen")
    f = d / "gen.events.log"
    _write_cases(f, [ln for ln in lines if len(ln) < 50_000], b"\n", rng.random() < 0.5)
    assert _compare(go_ref, [f]) > 0


def test_key_folding_runes_are_gos(go_ref: GoRef) -> None:
    """The non-ASCII runes that encoding/json folds onto ASCII letters are exactly ours."""
    import subprocess

    out = subprocess.run([str(go_ref.binary), "fold"], capture_output=True, check=True, text=True)
    go = {chr(int(h, 16)): letter for h, letter in (ln.split() for ln in out.stdout.splitlines())}
    from cartforensics.go.json import _FOLD_TO_ASCII, fold_name

    assert go == _FOLD_TO_ASCII
    for ch, letter in go.items():
        assert fold_name(ch) == letter
    # and the others that lower/upper-case tricks would fold are left alone, as Go leaves them
    assert fold_name("\u0130") != "I" and fold_name("\u0131") != "I"
