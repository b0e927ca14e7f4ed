"""Differential test: ``replay`` against the Go reference (tests/go/cfdiff ``replay``).

The Go program runs the seed's loop with Go's own encoding/json into protoc-gen-go style message
structs and docs/model.md's handlers. We compare, in both modes, every line's outcome, decoded
type and error text, every cart's final state JSON and metrics, and (``cfdiff replay --states
all``) the state after every line: ``state_at(line=n)`` for each n, and what follows from those
states (``history``'s summaries and ``changed``, ``diff`` of neighbouring lines, ``blame``'s
values, and ``without`` a line against Go replaying the file without it).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from conftest import GoRef, examples, run_cfdiff
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_envelope_go import ADVERSARIAL, TOOLCHAIN_CASES

from cartforensics import read_events, replay
from cartforensics.analysis.streaming import replay_records
from cartforensics.cli.app import main
from cartforensics.go.envelope import numeric_ts_error
from cartforensics.go.version import semantics
from cartforensics.model.replay import diff_states
from cartforensics.vocab import OUTCOMES

TS = '"2024-01-02T03:04:05Z"'


COMPARED: dict[str, int] = {}  # records compared per toolchain
STATES_COMPARED: dict[str, int] = {}  # per toolchain: (line, mode) states compared with Go's


def _leaf_values(value: object, path: str = "") -> list[tuple[str, object]]:
    """``(path, value)`` of every leaf of a state JSON (``items[0].qty``; empty lists and
    objects are leaves), written here apart from cartforensics.model.blame."""
    if isinstance(value, dict) and value:
        return [x for k, v in value.items() for x in _leaf_values(v, f"{path}.{k}" if path
                                                                   else k)]
    if isinstance(value, list) and value:
        return [x for i, v in enumerate(value) for x in _leaf_values(v, f"{path}[{i}]")]
    return [(path, value)]


def _compare_states(r, go_states: list[dict], deep_every: int = 4) -> int:
    """Every state cfdiff printed (``--states all``: after line 0 … n of each cart) against
    ``r.state_at(line=n)``, and ``history``'s summaries and ``changed`` against what those Go
    states say; on every ``deep_every``-th cart also ``diff`` of each line that changed the
    state and ``blame``'s values of the final state. Returns the states compared."""
    by_cart: dict[str, list[dict]] = {}
    for rec in go_states:
        states = by_cart.setdefault(rec["cart_id"], [])
        assert rec["after"] == len(states), rec["after"]  # 0, 1, … n in order
        states.append(rec["state"])
    assert sorted(by_cart) == sorted(r.cart_ids)
    for c, (cid, states) in enumerate(by_cart.items()):
        n = len(r.rows_of(cid))
        assert len(states) == n + 1, (cid, len(states), n)
        for k, go_state in enumerate(states):
            assert r.state_at(cid, line=k) == go_state, (r.mode, cid, k)
        h = r.history(cid)
        after = states[1:]
        assert h["items"].tolist() == [len(s["items"]) for s in after]
        assert h["quantity"].tolist() == [sum(i["qty"] for i in s["items"]) for s in after]
        assert h["deliveries"].tolist() == [len(s["deliveries"]) for s in after]
        assert h["total_price"].tolist() == [s["totalPrice"] for s in after]
        applied = (h["outcome"] == "applied").tolist()
        changed = h["changed"].tolist()
        deep = c % deep_every == 0
        for k in range(1, n + 1):
            before, now = dict(states[k - 1]), dict(states[k])
            before.pop("lastChange"), now.pop("lastChange")
            if before != now:  # Go's state moved: the line changed it (and was applied)
                assert changed[k - 1] and applied[k - 1], (cid, k)
            if not applied[k - 1]:
                assert not changed[k - 1] and states[k] == states[k - 1], (cid, k)
            if deep and changed[k - 1]:
                assert r.diff(cid, k - 1, k) == diff_states(states[k - 1], states[k]), (cid, k)
        if deep:
            blamed = r.blame(cid)
            assert list(zip(blamed["path"], blamed["value"], strict=True)) == \
                _leaf_values(states[n]), cid
    return sum(len(s) for s in by_cart.values())


def _compare(ref: GoRef, files: list[Path], catalog: dict | None = None,
             tmp: Path | None = None) -> int:
    args: list[str] = []
    cat_obj = None
    if catalog is not None:
        assert tmp is not None
        cat = tmp / "catalog.json"
        cat.write_text(json.dumps(catalog))
        args = ["--catalog", str(cat)]
        cat_obj = catalog
    events = read_events([str(f) for f in files], progress=False, go_version=ref.go_version)
    compared = 0
    for mode in ("go", "lenient"):
        out = run_cfdiff(ref, "replay", "--mode", mode, "--states", "all", *args,
                         *map(str, files))
        go = [x for x in out if "after" not in x]
        r = replay(events, mode=mode, catalog=cat_obj, go_version=ref.go_version)
        ours = list(replay_records(r))
        assert len(ours) == len(go), (mode, len(ours), len(go))
        for a, b in zip(ours, go, strict=True):
            assert a == b, (mode, a, b)
            compared += 1
        states = _compare_states(r, [x for x in out if "after" in x])
        STATES_COMPARED[ref.id] = STATES_COMPARED.get(ref.id, 0) + states
    COMPARED[ref.id] = COMPARED.get(ref.id, 0) + compared
    return compared


TOOLCHAIN_PAYLOADS: dict[str, list[str]] = {
    'AddItem': [
        '{"SKU":1}', '{"Sku":1,"quantity":"2"}', '{"sſu":5}', '{"a/b":1,"sku":[1]}',
        '{"sku":{"x":1}}', '{"quantity":1,"storeId":{}}', '{"quantity":1,"parentId":-5}',
        '{"quantity":1,"parentId":"7"}', '{"quantity":1,"price":1.0}',
        '{"quantity":1,"price":-9223372036854775809}', '{"quantity":true,"sku":5}',
        '{"quantity":1e400}', '{"quantity":-1e-400}', '{"quantity":"x","price":"y"}',
        '{"QUANTITY":[1,2]}', '{"quantity":1,"outlet":7}', '{"quantity":1,"item_id":1.5}',
        '{"quantity":1,"item_id":"1"}', '{"quantity":1, "sku":"\\ud800"}', '{"sk\\u0075":7}',
        '{"sku~x":1,"sku":2}',
    ],
    'SetCartRequest': [
        '{"items":[{"sku":"x","quantity":1},{"sku":"y","quantity":"2"}]}', '{"items":[1]}',
        '{"items":[{"Quantity":"1"}]}', '{"ITEMS":[{},{},{"sku":5}]}', '{"items":[[1]]}',
        '{"items":"x"}', '{"items":[{"storeId":5}]}', '{"items":[null,{"quantity":true}]}',
    ],
    'SetDelivery': [
        '{"items":[1,"2"]}', '{"items":[1,-2,3]}', '{"items":[1.5]}', '{"Items":[null,true]}',
        '{"pickupPoint":{"name":5}}', '{"pickupPoint":{"Name":5}}', '{"pickupPoint":[1]}',
        '{"provider":[]}', '{"items":[4294967296]}', '{"pickupPoint":{"id":{}}}',
    ],
    'RemoveItem': [
        '{"Id":-1}', '{"id":"x"}', '{"ID":[1]}', '{"iD":1.5}',
    ],
    'ChangeQuantity': [
        '{"Id":1,"quantity":2147483648}', '{"Id":1,"Quantity":"1"}',
    ],
    'InitializeCheckout': [
        '{"paymentInProgress":1}', '{"PaymentInProgress":"true"}', '{"orderId":true}',
    ],
}


def _payload_cases() -> list[bytes]:
    """Lines whose envelope is fine and whose payload exercises Go's decoding rules."""
    p = [
        '{"sku":"a","quantity":1,"price":100}', '{"sku":"a","quantity":"1"}',
        '{"sku":"a","quantity":1.5}', '{"sku":"a","quantity":1e2}', '{"sku":"a","quantity":-0}',
        '{"sku":"a","quantity":2147483648}', '{"sku":"a","quantity":-2147483649}',
        '{"sku":"a","quantity":1,"item_id":-1}', '{"sku":"a","quantity":1,"item_id":4294967296}',
        '{"sku":"a","quantity":1,"item_id":-0}',
        '{"sku":"a","quantity":1,"price":9223372036854775807}',
        '{"sku":"a","quantity":1,"price":9223372036854775808}', '{"sku":"a","quantity":true}',
        '{"sku":1,"quantity":1}', '{"sku":null,"quantity":1}', '{"SKU":"b","QUANTITY":2}',
        '{"sku":"a","sku":"b","quantity":1}', '{"sku":"a","Sku":"c","quantity":1}',
        '{"sku":"a","quantity":1,"quantity":null}', '{"sku":"a","quantity":1,"storeId":null}',
        '{"sku":"a","quantity":1,"storeId":"s1"}', '{"sku":"a","quantity":1,"storeId":5}',
        '{"sku":"a","quantity":1,"parentId":7,"outlet":"o"}', '{"sku":"a","quantity":1,"tax":1200}',
        '{"sku":"a","quantity":1,"tax":-10000,"price":5}', '{"sku":"a","quantity":1,"unknown":[1]}',
        '{"sku":"a","quantity":1,"price":"100"}', '{"sku":"\\u00e5\\ud83d\\ude00","quantity":1}',
        '{"sku":"\\ud800","quantity":1}', '{"sku":"a","quantity":1,"orgPrice":200,"price":100}',
        '{"sku":"a","quantity":0}', "null", "[]", '"x"', "5", "{}", '{"sku":"a","quantity":1} ',
        '{ "sku" : "spaced" , "quantity" : 1 }', '{"item_\u0131d":1,"sku":"k","quantity":1}',
        '{"\u017fku":"longs","quantity":1}', '{"s\u212au":"x","quantity":1}',
        '{"sku":"a","quantity":1,"price":' + "1" * 30 + "}",
    ]
    lines = [f'{{"ts":{TS},"type":"AddItem","payload":{x}}}' for x in p]
    other = {
        "AddRequest": ['{"sku":"r1","quantity":2}', '{"sku":"r1","quantity":0}',
                       '{"sku":"cat1","quantity":1,"storeId":"st"}', '{"quantity":1}'],
        "SetCartRequest": [
            '{"items":[{"sku":"x","quantity":1},{"sku":"y","quantity":2}]}',
            '{"items":[{"sku":"x","quantity":1}],"items":[{"quantity":3},{"sku":"z","quantity":1}]}',
            '{"items":[{"sku":"x","quantity":1},{"sku":"y","quantity":1}],"items":[{"sku":"q",'
            '"quantity":1}],"items":[{"quantity":2},{"quantity":4}]}',
            '{"items":[null,{"sku":"n","quantity":1}]}', '{"items":[]}', '{"items":null}',
            '{"items":[{"sku":"x","quantity":"bad"}]}', '{"items":{"sku":"x"}}',
            '{"items":[{"sku":"x","quantity":1},null],"items":[{"quantity":1},{"quantity":1}]}',
            '{"items":[{"sku":"cat1","quantity":1},{"sku":"x","quantity":0}]}',
        ],
        "RemoveItem": ['{"Id":1}', '{"id":2}', '{"ID":99}', '{"Id":"1"}', "{}"],
        "ChangeQuantity": ['{"Id":1,"quantity":5}', '{"Id":1,"quantity":0}',
                           '{"Id":2,"quantity":-1}', '{"Id":42,"quantity":1}'],
        "SetDelivery": ['{"provider":"pn"}', '{"provider":"db","items":[3]}',
                        '{"provider":"x","items":[99]}', '{"provider":"x","items":[3,3]}',
                        '{"provider":"pp","items":[],"pickupPoint":{"id":"p1","name":"N"}}',
                        '{"items":[-1]}', '{"items":"x"}', '{"pickupPoint":5}',
                        '{"pickupPoint":{"id":"a","id":"b","name":null}}',
                        '{"pickupPoint":{"id":7}}'],
        "SetPickupPoint": ['{"deliveryId":1,"id":"pp1","city":"Malm\\u00f6"}',
                           '{"deliveryId":9,"id":"x"}', '{"deliveryId":1,"zip":12345}'],
        "RemoveDelivery": ['{"id":1}', '{"id":1}', '{"id":2}'],
        "InitializeCheckout": ['{"orderId":"o1","status":"pending","paymentInProgress":true}',
                               '{"orderId":"o1","paymentInProgress":"yes"}'],
        "OrderCreated": ['{"orderId":"o1","status":"paid"}', '{"orderId":5}'],
        "AddVoucher": ['{"code":"X"}'], "addItem": ['{"sku":"a","quantity":1}'],
        "": ["{}"],
    }
    for t, payloads in other.items():
        for x in payloads:
            lines.append(f'{{"ts":{TS},"type":"{t}","payload":{x}}}')
    # payload type errors whose texts differ between json v1 and v2 (field paths from the
    # root, keys as written, element indices), each also torn (a v2 syntax error text)
    for t, payloads in TOOLCHAIN_PAYLOADS.items():
        for x in payloads:
            lines.append(f'{{"ts":{TS},"type":"{t}","payload":{x}}}')
            lines.append(f'{{"ts":{TS},"type":"{t}","payload":{x[:-1]}')
    lines.append(f'{{"ts":{TS},"type":"AddItem"}}')
    lines.append(f'{{"ts":{TS},"type":"RemoveItem","payload":null}}')
    lines.append('{"ts":1700000000.25,"type":"AddItem","payload":{"sku":"f","quantity":1}}')
    lines.append('{"ts":1e30,"type":"AddItem","payload":{"sku":"g","quantity":1}}')
    lines.append('{"ts":-5,"type":"AddItem","payload":{"sku":"h","quantity":1}}')
    lines.append('{"ts":"2024-01-02T05:04:05+02:00","type":"AddItem","payload":{"sku":"i",'
                 '"quantity":1}}')
    return [x.encode() for x in lines]


CATALOG = {"cat1": {"item_id": 77, "price": 12900, "orgPrice": 15900, "name": "Tr\u00f6ja & m",
                    "tax": 1200, "brand": "B", "articleType": "shirt", "storeId": "ignored"}}


def test_adversarial_lines_replay_like_go(go_ref: GoRef, tmp_path: Path) -> None:
    f1 = tmp_path / "adv.events.log"
    f1.write_bytes(b"\n".join(ADVERSARIAL + TOOLCHAIN_CASES) + b"\n")
    f2 = tmp_path / "payloads.events.log"
    f2.write_bytes(b"\n".join(_payload_cases()))
    long_line = b'{"ts":' + TS.encode() + b',"type":"AddItem","payload":{"sku":"big","image":"' \
        + b"x" * 300_000 + b'","quantity":1}}'
    f3 = tmp_path / "long.events.log"
    f3.write_bytes(b"\n".join(_payload_cases()[:5] + [long_line] + _payload_cases()[:5]) + b"\n")
    n = _compare(go_ref, [f1, f2, f3])
    n += _compare(go_ref, [f2], catalog=CATALOG, tmp=tmp_path)
    assert n > 2 * (len(ADVERSARIAL) + 2 * len(_payload_cases()))


# ---------------------------------------------------------------------------------------------
# Generated sessions: valid and invalid mutations over many carts.

_SKUS = ["a", "b", "c", "cat1", "d\u00e5", "e&f"]


def _val(rng: random.Random, kind: str) -> str:
    r = rng.random()
    if r < 0.04:
        return rng.choice(['"s"', "1.5", "-1", "null", "true", "[]", "{}", "1e2", "99999999999"])
    if kind == "int":
        return str(rng.choice([0, 1, 2, 3, rng.randint(-3, 10), rng.randint(1, 10**6)]))
    if kind == "uint":
        return str(rng.randint(0, 6))
    if kind == "big":
        return str(rng.choice([0, 1999, 12900, rng.randint(-10, 10**7), 2**62]))
    if kind == "str":
        return json.dumps(rng.choice(_SKUS))
    if kind == "bool":
        return rng.choice(["true", "false"])
    if kind == "ptrstr":
        return rng.choice(["null", '"s1"', '"s2"'])
    if kind == "uints":
        return json.dumps([rng.randint(0, 6) for _ in range(rng.randint(0, 3))])
    raise AssertionError(kind)


_FIELDS = {
    "AddItem": [("item_id", "uint"), ("quantity", "int"), ("price", "big"), ("orgPrice", "big"),
                ("sku", "str"), ("name", "str"), ("tax", "int"), ("storeId", "ptrstr"),
                ("articleType", "str")],
    "AddRequest": [("quantity", "int"), ("sku", "str"), ("storeId", "ptrstr")],
    "RemoveItem": [("Id", "uint")],
    "ChangeQuantity": [("Id", "uint"), ("quantity", "int")],
    "SetDelivery": [("provider", "str"), ("items", "uints")],
    "SetPickupPoint": [("deliveryId", "uint"), ("id", "str"), ("city", "ptrstr")],
    "RemoveDelivery": [("id", "uint")],
    "InitializeCheckout": [("orderId", "str"), ("status", "str"), ("paymentInProgress", "bool")],
    "OrderCreated": [("orderId", "str"), ("status", "str")],
}
_WEIGHTS = {"AddItem": 6, "AddRequest": 2, "RemoveItem": 1, "ChangeQuantity": 3,
            "SetDelivery": 2, "SetPickupPoint": 1, "RemoveDelivery": 1,
            "InitializeCheckout": 1, "OrderCreated": 1, "SetCartRequest": 1, "AddVoucher": 1}


def _payload(rng: random.Random, t: str) -> str:
    if t == "SetCartRequest":
        items = ",".join(_payload(rng, "AddRequest") for _ in range(rng.randint(0, 3)))
        return f'{{"items":[{items}]}}'
    if t == "AddVoucher":
        return '{"code":"V1"}'
    pairs = []
    for key, kind in _FIELDS[t]:
        if rng.random() < 0.85:
            k = key.upper() if rng.random() < 0.03 else key
            pairs.append(f'"{k}":{_val(rng, kind)}')
    if rng.random() < 0.05 and pairs:
        pairs.append(rng.choice(pairs))  # a repeated key
    rng.shuffle(pairs)
    return "{" + ",".join(pairs) + "}"


def _session(rng: random.Random, n: int) -> bytes:
    types = list(_WEIGHTS)
    weights = list(_WEIGHTS.values())
    t0 = 1_700_000_000 + rng.randint(0, 10**6)
    out = []
    for i in range(n):
        t = rng.choices(types, weights)[0]
        sec = t0 + i * rng.randint(0, 90) - (3600 if rng.random() < 0.02 else 0)
        r = rng.random()
        if r < 0.35:
            ts = str(sec)
        elif r < 0.9:
            ts = f'"{_rfc3339(sec)}"'
        else:
            ts = rng.choice(["null", '"bad"', f"{sec}.5", '"2024-01-02T03:04:05.123+01:00"'])
        line = f'{{"ts":{ts},"type":"{t}","payload":{_payload(rng, t)}}}'
        if rng.random() < 0.01:
            line = line[: rng.randint(0, len(line))]  # torn
        if rng.random() < 0.01:
            line = line + line  # glued
        out.append(line.encode())
    return b"\n".join(out) + (b"\n" if rng.random() < 0.8 else b"")


def _rfc3339(sec: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@settings(max_examples=examples(4, ci=6), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_sessions_replay_like_go(go_ref: GoRef, tmp_path_factory, seed: int) -> None:
    rng = random.Random(seed)
    d = tmp_path_factory.mktemp("sessions")
    files = []
    for c in range(300):
        f = d / f"c{c:04d}.events.log"
        f.write_bytes(_session(rng, rng.randint(1, 40)))
        files.append(f)
    use_catalog = rng.random() < 0.5
    n = _compare(go_ref, files, catalog=CATALOG if use_catalog else None, tmp=d)
    assert n > 600


def test_a_line_left_out_replays_like_go_without_it(go_ref: GoRef, tmp_path: Path) -> None:
    """``Replay.without(cart, lines)`` (skip-a-line) answers as Go replaying the file with
    those lines deleted: every kept line's outcome and error, and the state after each."""
    rng = random.Random(11)
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir(), cut.mkdir()
    skips: dict[str, list[int]] = {}
    for c in range(40):
        lines = _session(rng, rng.randint(2, 40)).split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the file ends with a newline
        name = f"w{c:03d}"
        (full / f"{name}.events.log").write_bytes(b"\n".join(lines) + b"\n")
        skip = sorted(rng.sample(range(1, len(lines) + 1), k=rng.randint(1, min(3, len(lines)))))
        skips[name] = skip
        kept = [x for i, x in enumerate(lines, 1) if i not in skip]
        (cut / f"{name}.events.log").write_bytes(b"".join(x + b"\n" for x in kept))
    events = read_events(full, progress=False, go_version=go_ref.go_version)
    cut_files = sorted(map(str, cut.iterdir()))
    compared = 0
    for mode in ("go", "lenient"):
        r = replay(events, mode=mode, go_version=go_ref.go_version)
        out = run_cfdiff(go_ref, "replay", "--mode", mode, "--states", "all", *cut_files)
        for cid, skip in skips.items():
            w = r.without(cid, skip)
            go_lines = [x for x in out if x["cart_id"] == cid and "line" in x]
            go_states = [x["state"] for x in out if x["cart_id"] == cid and "after" in x]
            assert [OUTCOMES[k] for k in w.outcome_codes(cid)] == [x["outcome"] for x in go_lines]
            assert w.errors(cid) == [x["error"] for x in go_lines]
            assert len(go_states) == len(go_lines) + 1
            for k, go_state in enumerate(go_states):
                assert w.state_at(cid, line=k) == go_state, (mode, cid, skip, k)
            compared += len(go_states)
    STATES_COMPARED[go_ref.id] = STATES_COMPARED.get(go_ref.id, 0) + compared
    assert compared > 2 * 40


def test_go_marshalled_logs_replay_like_go(go_ref: GoRef, tmp_path: Path) -> None:
    """Logs written by Go's own json.Marshal of the seed's cartEventRecord (the writer)."""
    rng = random.Random(7)
    files = []
    for c in range(50):
        records = []
        for i in range(rng.randint(1, 30)):
            t = rng.choice([k for k in _WEIGHTS if k != "AddVoucher"])
            payload = _payload(rng, t)
            try:
                json.loads(payload)
            except ValueError:
                continue
            records.append(json.dumps({"ts": 1_700_000_000 + i, "type": t,
                                       "payload": json.loads(payload)}))
        proc = subprocess.run([str(go_ref.binary), "marshal"],
                              input=("\n".join(records) + "\n").encode(),
                              capture_output=True, check=True)
        written = proc.stdout.splitlines()
        assert len(written) == len(records)
        f = tmp_path / f"m{c:03d}.events.log"
        f.write_bytes(b"".join(ln + b"\n" for ln in written if not ln.startswith(b'{"error"')))
        files.append(f)
    n = _compare(go_ref, files)
    df = read_events([str(f) for f in files], progress=False, go_version=go_ref.go_version)
    # the writer's own bytes: every line's ts is a number, so go mode drops them all
    assert (df["ts_kind"] == "number").all()
    assert df["envelope_error"].eq(numeric_ts_error(semantics(go_ref.go_version))).all()
    assert n > 0


def test_folded_keys_reach_the_state_like_go(go_ref: GoRef, tmp_path: Path) -> None:
    """Keys that Go folds (or does not) onto a field, each alone in a cart so the final state
    shows the field: long s and Kelvin sign fold, dotless and dotted i do not."""
    keys = {"longs": '"\u017fku":"x"', "kelvin": '"s\u212au":"y"', "dotless": '"item_\u0131d":7',
            "dotted": '"item_\u0130d":8', "upper": '"ITEM_ID":9', "mixed": '"Item_Id":10'}
    files = []
    for name, pair in keys.items():
        f = tmp_path / f"{name}.events.log"
        f.write_text(f'{{"ts":{TS},"type":"AddItem","payload":{{"quantity":1,{pair}}}}}\n',
                     encoding="utf-8")
        files.append(f)
    assert _compare(go_ref, files) > 0
    r = replay(read_events([str(f) for f in files], progress=False))
    assert r.final_state("dotless")["items"][0]["itemId"] == 0
    assert r.final_state("upper")["items"][0]["itemId"] == 9
    assert r.final_state("longs")["items"][0]["sku"] == "x"


def test_cli_jsonl_agrees_with_go(go_ref: GoRef, tmp_path: Path,
                                  capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """``cartforensics replay DIR --go-version V --format jsonl`` (both modes) is cfdiff's
    output, record for record, for the toolchain V names."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "adv.events.log").write_bytes(b"\n".join(ADVERSARIAL + TOOLCHAIN_CASES) + b"\n")
    (d / "payloads.events.log").write_bytes(b"\n".join(_payload_cases()))
    files = sorted(d.iterdir())
    for mode in ("go", "lenient"):
        assert main(["replay", str(d), "--go-version", go_ref.go_version, "--mode", mode,
                     "--format", "jsonl", "--quiet"]) == 0
        ours = [json.loads(x) for x in capsysbinary.readouterr().out.splitlines()]
        go = run_cfdiff(go_ref, "replay", "--mode", mode, *map(str, files))
        assert ours == go, mode
        COMPARED[go_ref.id] = COMPARED.get(go_ref.id, 0) + len(go)


def test_quiet_replay_times_the_same_lines(go_ref: GoRef) -> None:
    """``cfdiff replay --quiet`` (the benchmarks' Go anchor) replays every physical line and
    prints only its timing."""
    files = sorted(str(p) for p in (Path(__file__).parents[2] / "sample_data").glob("*.log"))
    for mode in ("go", "lenient"):
        (timing,) = run_cfdiff(go_ref, "replay", "--quiet", "--mode", mode, *files)
        assert timing["carts"] == len(files)
        assert timing["lines"] == len(read_events(files, progress=False))
        assert timing["seconds"] > 0
