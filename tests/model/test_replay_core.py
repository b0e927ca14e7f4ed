"""The compiled replay core and the pure-Python reference always agree (issue 11).

Hypothesis generates carts (writer-shaped lines and hostile ones, all ten types, extreme
integers, catalog on and off, a registered type of one's own) and both cores must give the
same outcomes, error texts, states at every line, lastChange, history and metrics.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import orjson
import pytest
from conftest import PROFILE, examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_replay_go import _compare

import cartforensics as cf
from cartforensics.go.json import marshal
from cartforensics.model.cart import HandlerError
from cartforensics.model.engine import core, engine_info
from cartforensics.model.replay import CHECKPOINT_EVERY

SAMPLE = str(Path(__file__).resolve().parents[2] / "sample_data")

needs_core = pytest.mark.skipif(
    core is None and os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1",
    reason="the compiled core is not built (python setup.py build_ext --inplace)",
)

I32 = [-(2**31), -1, 0, 1, 2, 3, 2**31 - 1]
I64 = [-(2**63), -(2**63) + 1, -5, 0, 1, 99, 129900, 2**62, 2**63 - 1]
SKUS = ["a", "b", "c", "", "sku-0", 'q"x']
STORES = [None, "s1", "s2", ""]
TAX = [0, 2500, -10000, -10001, 2**31 - 1, -(2**31), 1200]
IDS = [0, 1, 2, 3, 4, 2**32 - 1]


def _opt(d: dict, draw) -> dict:
    """Drop some keys (absent = zero value), keep the rest."""
    keep = draw(st.lists(st.booleans(), min_size=len(d), max_size=len(d)))
    return {k: v for (k, v), k_ in zip(d.items(), keep, strict=True) if k_ or k == "quantity"}


@st.composite
def add_request(draw) -> dict:
    return _opt({"quantity": draw(st.sampled_from(I32)), "sku": draw(st.sampled_from(SKUS)),
                 "country": "se", "storeId": draw(st.sampled_from(STORES))}, draw)


@st.composite
def pickup(draw) -> dict:
    return _opt({"id": draw(st.sampled_from(["p1", "", "p2"])), "name": "N", "address": None,
                 "city": "Gbg", "zip": "41", "country": "se"}, draw)


@st.composite
def payload(draw, type_name: str) -> dict:
    if type_name == "AddRequest":
        return draw(add_request())
    if type_name == "AddItem":
        return _opt({
            "item_id": draw(st.sampled_from(IDS)), "quantity": draw(st.sampled_from(I32)),
            "price": draw(st.sampled_from(I64)), "orgPrice": draw(st.sampled_from(I64)),
            "sku": draw(st.sampled_from(SKUS)), "name": "Lampa \"55\"", "image": "i",
            "stock": draw(st.sampled_from(I32)), "tax": draw(st.sampled_from(TAX)),
            "brand": "b", "category": "c", "category2": "c2", "category3": "", "category4": "x",
            "category5": "y", "disclaimer": "d", "articleType": "physical", "sellerId": "1",
            "sellerName": "S", "country": "se", "outlet": draw(st.sampled_from([None, "o"])),
            "storeId": draw(st.sampled_from(STORES)),
            "parentId": draw(st.sampled_from([None, 0, 7])),
        }, draw)
    if type_name == "RemoveItem":
        return _opt({"Id": draw(st.sampled_from(IDS))}, draw)
    if type_name == "ChangeQuantity":
        return _opt({"Id": draw(st.sampled_from(IDS)), "quantity": draw(st.sampled_from(I32))},
                    draw)
    if type_name == "SetDelivery":
        items = draw(st.one_of(st.none(), st.lists(st.sampled_from(IDS), max_size=3)))
        return _opt({"provider": "postnord", "items": items,
                     "pickupPoint": draw(st.one_of(st.none(), pickup())), "country": "se",
                     "zip": "1", "address": None, "city": "c"}, draw)
    if type_name == "SetPickupPoint":
        d = draw(pickup())
        d["deliveryId"] = draw(st.sampled_from(IDS))
        return _opt(d, draw)
    if type_name == "RemoveDelivery":
        return _opt({"id": draw(st.sampled_from(IDS))}, draw)
    if type_name == "SetCartRequest":
        return {"items": draw(st.one_of(st.none(), st.lists(
            st.one_of(add_request(), st.none()), max_size=4)))}
    if type_name == "OrderCreated":
        return _opt({"orderId": "o-1", "status": draw(st.sampled_from(["ok", ""]))}, draw)
    if type_name == "InitializeCheckout":
        return _opt({"orderId": "o-2", "status": "pending",
                     "paymentInProgress": draw(st.booleans())}, draw)
    # a registered type of one's own
    return {"code": draw(st.sampled_from(["", "TEN"])), "amount": draw(st.sampled_from(I64))}


TYPES = ["AddRequest", "AddItem", "RemoveItem", "ChangeQuantity", "SetDelivery",
         "SetPickupPoint", "RemoveDelivery", "SetCartRequest", "OrderCreated",
         "InitializeCheckout"]
# weighted so that carts build up items and deliveries
WEIGHTED = TYPES + ["AddRequest", "AddItem", "AddItem", "ChangeQuantity", "SetDelivery"]

HOSTILE = [
    lambda t: t.replace('":', '" :', 1),                      # whitespace before a colon
    lambda t: t[:-1] + ',"quantity":2}' if t.endswith("}") and len(t) > 2 else t,  # repeated
    lambda t: t.replace('"sku":"', '"sku":"\\u0041', 1),      # an escape
    lambda t: t.replace(":0", ":-0", 1),                       # negative zero
    lambda t: t.replace(":1", ":1.0", 1),                      # a float
    lambda t: t.replace(":1", ":1e0", 1),
    lambda t: t.replace('"', "'", 1),                          # not JSON
    lambda t: t.replace("null", '"x"', 1),                     # a wrong kind
    lambda t: t.replace(":2", ':"2"', 1),
    lambda t: t.replace('"items":[', '"items":[null,', 1),
    lambda t: "null",
    lambda t: "[]",
    lambda t: t.replace(":", ":99999999999999999999", 1) if ":" in t else t,  # out of range
    lambda t: t.replace('"Id"', '"id"', 1),                    # case folding
    lambda t: t.replace('"sku"', '"SKU"', 1),
    lambda t: t[: len(t) // 2],                                # truncated
]


@st.composite
def line(draw, extra_types: tuple[str, ...] = ()) -> bytes:
    t = draw(st.sampled_from(WEIGHTED + list(extra_types)))
    text = orjson.dumps(draw(payload(t))).decode()
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from(HOSTILE))(text)
    sec = draw(st.integers(0, 59))
    ts_text = draw(st.sampled_from([f'"2024-01-02T03:04:{sec:02d}Z"',
                                    f'"2024-01-02T03:04:{sec:02d}.5+02:00"', "1700000000",
                                    "null"]))
    kind = draw(st.integers(0, 40))
    if kind == 0:
        return b"not json at all"
    if kind == 1:
        t = draw(st.sampled_from(["Unknown", "addItem", ""]))
    return f'{{"ts":{ts_text},"type":"{t}","payload":{text}}}'.encode()


def _voucher(state, msg, catalog=None):
    if not msg["code"]:
        raise HandlerError("empty voucher code")
    return dataclasses.replace(state, orderReference=msg["code"])


CUSTOM = cf.default_registry().register("AddVoucher", {"code": "string", "amount": "int64"},
                                        _voucher)
CATALOG = {
    "a": {"item_id": 5, "name": "Lampa", "price": 129900, "orgPrice": 150000, "tax": 0,
          "sku": "ignored", "outlet": "o", "parentId": 3},
    "b": None,
    "c": {"price": 2**63 - 1, "tax": -10001, "stock": 4},
    "sku-0": {"price": 1.5},  # not a plain int: a cart hitting it falls back, same result
}

_counter = itertools.count()


def _events(tmp: Path, carts: list[list[bytes]]):
    root = tmp / f"case{next(_counter)}"
    root.mkdir()
    for i, lines in enumerate(carts):
        (root / f"cart-{i}.events.log").write_bytes(b"".join(x + b"\n" for x in lines))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cf.read_events(root, progress=False)


def _assert_same(ev, mode: str, catalog=None, registry=None) -> cf.Replay:
    ref = cf.replay(ev, mode=mode, catalog=catalog, registry=registry, engine="reference")
    fast = cf.replay(ev, mode=mode, catalog=catalog, registry=registry, engine="compiled")
    assert fast.engine == "compiled" and ref.engine == "reference"
    assert fast.outcomes.equals(ref.outcomes)
    assert fast.cart_ids == ref.cart_ids
    assert fast.metrics(by_cart=True).equals(ref.metrics(by_cart=True))
    assert fast.summary().equals(ref.summary())
    for cid in ref.cart_ids:
        n = len(ref.rows_of(cid))
        points = range(n + 1) if n <= 40 else sorted({0, n, *range(1, n, 7)})
        for k in points:
            assert fast.state_at(cid, line=k) == ref.state_at(cid, line=k), (cid, k)
        # the same text too (key order: convert stores the marshalled JSON)
        assert marshal(fast.final_state(cid)) == marshal(ref.final_state(cid))
        assert marshal(fast.state_at(cid, line=n)) == marshal(ref.state_at(cid, line=n))
        assert fast.history(cid).equals(ref.history(cid))
    return fast


# longer carts, and more of them, under the ci and long profiles (conftest.examples)
CART_LINES, CARTS = (30, 3) if PROFILE == "default" else (80, 4)
carts_st = st.lists(st.lists(line(), min_size=0, max_size=CART_LINES), min_size=1,
                    max_size=CARTS)
SETTINGS = settings(max_examples=examples(30, ci=300), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@needs_core
@SETTINGS
@given(carts=carts_st, mode=st.sampled_from(["go", "lenient"]))
def test_cores_agree_without_catalog(tmp_path_factory, carts, mode) -> None:
    _assert_same(_events(tmp_path_factory.getbasetemp(), carts), mode)


@needs_core
@SETTINGS
@given(carts=carts_st, mode=st.sampled_from(["go", "lenient"]))
def test_cores_agree_with_a_catalog(tmp_path_factory, carts, mode) -> None:
    _assert_same(_events(tmp_path_factory.getbasetemp(), carts), mode, catalog=CATALOG)


@needs_core
@settings(max_examples=examples(20, ci=100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(carts=st.lists(st.lists(line(extra_types=("AddVoucher",)), max_size=CART_LINES),
                      min_size=1, max_size=CARTS))
def test_cores_agree_with_a_registered_type(tmp_path_factory, carts) -> None:
    fast = _assert_same(_events(tmp_path_factory.getbasetemp(), carts), "go", registry=CUSTOM)
    # a cart whose line of the registered type is reached (its envelope decoded, the scanner
    # still going) ran on the reference core, the others on the compiled one
    oc = fast.outcomes
    reached = oc["outcome"].isin(["applied", "payload_error", "apply_error"])
    with_voucher = set(oc.loc[reached & (oc["type"] == "AddVoucher"), "cart_id"].astype(str))
    assert set(fast.carts_on_reference) == with_voucher


@needs_core
@settings(max_examples=examples(5, ci=25), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(lines=st.lists(line(), min_size=CHECKPOINT_EVERY * 2, max_size=CHECKPOINT_EVERY * 3))
def test_cores_agree_across_checkpoints(tmp_path_factory, lines) -> None:
    fast = _assert_same(_events(tmp_path_factory.getbasetemp(), [lines]), "go")
    cid = fast.cart_ids[0]
    assert fast.diff(cid, CHECKPOINT_EVERY - 1, CHECKPOINT_EVERY + 1) == cf.replay(
        fast.events, engine="reference").diff(cid, CHECKPOINT_EVERY - 1, CHECKPOINT_EVERY + 1)


@needs_core
def test_a_swapped_handler_runs_its_carts_on_the_reference(tmp_path) -> None:
    seen = []

    def counting_remove(state, msg, catalog=None):
        seen.append(msg["Id"])
        return cf.model.cart.handle_remove_item(state, msg, catalog)

    reg = cf.default_registry().register("RemoveItem", handler=counting_remove)
    ev = _events(tmp_path, [
        [b'{"ts":"2024-01-01T00:00:00Z","type":"AddRequest","payload":{"quantity":1,"sku":"a"}}',
         b'{"ts":"2024-01-01T00:00:01Z","type":"RemoveItem","payload":{"Id":1}}'],
        [b'{"ts":"2024-01-01T00:00:00Z","type":"AddRequest","payload":{"quantity":2,"sku":"b"}}'],
    ])
    r = _assert_same(ev, "go", registry=reg)
    assert r.carts_on_reference == ["cart-0"]
    assert 1 in seen


def _wrap(x: int) -> int:
    return ((x + 2**63) % 2**64) - 2**63


@needs_core
def test_int64_wraps_and_division_truncates_in_the_core(tmp_path) -> None:
    big = 2**63 - 1
    ev = _events(tmp_path, [[
        ('{"ts":"2024-01-01T00:00:00Z","type":"AddItem","payload":{"quantity":3,'
         f'"price":{big},"tax":-10001,"sku":"x"}}}}').encode(),
        b'{"ts":"2024-01-01T00:00:01Z","type":"AddItem","payload":{"quantity":7,"price":-9,'
        b'"tax":1234,"sku":"y"}}',
    ]])
    r = _assert_same(ev, "go")
    items = r.final_state("cart-0")["items"]
    total = _wrap(big * 3)
    assert items[0]["totalPrice"] == total
    # 10000 + (-10001) == -1: Go's x / -1 is -x, wrapped (MinInt64 / -1 == MinInt64)
    assert items[0]["tax"] == _wrap(-_wrap(total * -10001))
    assert items[1]["tax"] == int(-63 * 1234 / 11234)  # truncates toward zero: -6, not -7


def test_engine_info_says_which_core_runs(monkeypatch) -> None:
    info = engine_info()
    assert info["engine"] == ("compiled" if core is not None else "reference")
    monkeypatch.setenv("CARTFORENSICS_ENGINE", "reference")
    assert engine_info()["engine"] == "reference"
    assert cf.replay(SAMPLE).engine == "reference"
    monkeypatch.setenv("CARTFORENSICS_ENGINE", "fast")
    with pytest.raises(ValueError, match="CARTFORENSICS_ENGINE"):
        cf.replay(SAMPLE)


def test_bad_engine_argument_is_refused() -> None:
    with pytest.raises(ValueError, match="engine must be"):
        cf.replay(SAMPLE, engine="turbo")


def test_the_compiled_core_runs_when_required() -> None:
    """CI sets CARTFORENSICS_REQUIRE_CORE=1: then a missing or unused core is a failure."""
    if os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1":
        pytest.skip("CARTFORENSICS_REQUIRE_CORE is not set")
    assert core is not None, engine_info()["reason"]
    assert engine_info()["engine"] == "compiled", engine_info()["reason"]
    r = cf.replay(SAMPLE)
    assert r.engine == "compiled"
    assert r.carts_on_reference == []  # the writer's own lines never need the reference


def test_without_the_extension_the_package_warns_once_and_replays(tmp_path) -> None:
    """Hide the built module: the reference core runs, with one warning, same results."""
    code = (
        "import sys, warnings\n"
        "sys.modules['cartforensics.model._replay_core'] = None\n"
        "import cartforensics as cf\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = cf.replay('sample_data'); b = cf.replay('sample_data')\n"
        "print(len([x for x in w if 'compiled replay core' in str(x.message)]))\n"
        "print(a.engine, cf.engine_info()['engine'])\n"
        "print(int(a.outcomes['outcome'].eq('applied').sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True,
                         env={**os.environ, "CARTFORENSICS_ENGINE": ""}).stdout.split()
    assert out[:3] == ["1", "reference", "reference"]
    applied = int(cf.replay(SAMPLE, engine="reference").outcomes["outcome"]
                  .eq("applied").sum())
    assert int(out[3]) == applied


def test_version_names_the_core() -> None:
    out = subprocess.run([sys.executable, "-m", "cartforensics", "--version"],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert "replay core: " + engine_info()["engine"] in out


@needs_core
def test_history_quantity_is_not_wrapped(tmp_path) -> None:
    """history's quantity is Python's sum of the items' int64 qty: past 2**40 the core sums in
    Python ints, as the reference does."""
    line = (b'{"ts":"2024-01-01T00:00:00Z","type":"AddItem","payload":{"quantity":2147483647,'
            b'"sku":"a"}}')
    ev = _events(tmp_path, [[line] * 600])
    r = _assert_same(ev, "go")
    q = r.history("cart-0")["quantity"].tolist()
    assert q[-1] == 600 * (2**31 - 1)
    assert max(q) > 2**40


# ------------------------------------------------------------------------------------------
# The payload scanner: whatever it accepts must be exactly what Go's json.Unmarshal builds
# (the reference decoder, gojson, under both toolchains; and real Go below); whatever it does
# not accept goes to the reference decoder, so decode_payload always equals registry.decode.

FIELDS = {name: [(k, ft) for k, ft in schema.fields]
          for name, schema in cf.model.registry.DEFAULT_SCHEMAS.items()}
GOOD_WS = st.sampled_from(["", "", "", " ", "\t", "\n", "\r\n", " \t "])
WS = st.one_of(GOOD_WS, GOOD_WS, GOOD_WS, st.sampled_from(["\u00a0", "\x0b", "\x0c"]))
INT_EDGES = [0, 1, -1, 7, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, 2**32,
             2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**20]
NUMBER_TEXTS = ["-0", "0", "01", "-01", "00", "1.0", "1e2", "1E+2", "1e-2", "-0.0", "0e0",
                "1.5", "-", "+1", "1.", ".5", "1e", "9" * 25, "-" + "9" * 19, "2147483647",
                "4294967295", "18446744073709551615", "-9223372036854775808"]
SIMPLE_ESCAPES = ['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]
INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x9f\x98", b"\x80",
                b"\xf5\x80\x80\x80", b"\xef\xbf\xbd"]
BAD_IN_STRING = [b"\x00", b"\x1f", b"\t", b"\n", b"\\x", b"\\u12G4", b"\\U0041", b"\\u12", b"\\"]


def _hex_escape(c: int, upper: bool) -> bytes:
    text = f"\\u{c:04X}" if upper else f"\\u{c:04x}"
    return text.encode()


@st.composite
def string_piece(draw, clean: bool = False) -> bytes:
    kind = draw(st.integers(0, 11))
    if clean and kind == 8:
        kind = 4
    if kind <= 2:
        return draw(st.text(st.characters(blacklist_categories=("Cs",),
                                          blacklist_characters='"\\'), max_size=6)
                    .map(lambda s: "".join(ch for ch in s if ch >= " ").encode()))
    if kind == 3:
        return draw(st.sampled_from(SIMPLE_ESCAPES)).encode()
    if kind == 4:
        return _hex_escape(draw(st.integers(0, 0xFFFF)), draw(st.booleans()))
    if kind == 5:  # a surrogate pair, maybe broken
        hi = draw(st.integers(0xD800, 0xDBFF))
        lo = draw(st.sampled_from([draw(st.integers(0xDC00, 0xDFFF)), 0x41, 0xD800, 0xDBFF]))
        return _hex_escape(hi, draw(st.booleans())) + _hex_escape(lo, draw(st.booleans()))
    if kind == 6:  # a lone half
        return _hex_escape(draw(st.sampled_from([0xD800, 0xDBFF, 0xDC00, 0xDFFF])), False)
    if kind == 7:
        return draw(st.sampled_from(INVALID_UTF8))
    if kind == 8:
        return draw(st.sampled_from(BAD_IN_STRING))
    if kind == 9:
        return draw(st.sampled_from(["<>&", "\u2028", "é", "😀", "Skärmskydd 55\\\""])).encode()
    if kind == 10:  # a high half at the very end, or followed by a simple escape
        return _hex_escape(0xD83D, False) + draw(st.sampled_from([b"", b"\\n", b"x"]))
    return b"x" * draw(st.sampled_from([0, 1, 300, 70_000]))  # huge strings


@st.composite
def json_string(draw, clean: bool = False) -> bytes:
    return b'"' + b"".join(draw(st.lists(string_piece(clean), max_size=5))) + b'"'


@st.composite
def json_number(draw) -> bytes:
    k = draw(st.integers(0, 3))
    if k == 0:
        n = draw(st.sampled_from(INT_EDGES))
        return str(draw(st.sampled_from([n, -n, n - 1, n + 1]))).encode()
    if k == 1:
        return str(draw(st.integers(-(2**70), 2**70))).encode()
    return draw(st.sampled_from(NUMBER_TEXTS)).encode()


@st.composite
def any_value(draw, depth: int = 0) -> bytes:
    k = draw(st.integers(0, 7 if depth < 2 else 4))
    if k == 0:
        return draw(json_string())
    if k == 1:
        return draw(json_number())
    if k == 2:
        return draw(st.sampled_from([b"null", b"true", b"false", b"nul", b"True", b"nulll"]))
    if k == 3:
        return b"[]"
    if k == 4:
        return b"{}"
    if k == 5:
        items = draw(st.lists(any_value(depth + 1), max_size=3))
        return b"[" + b",".join(items) + b"]"
    entries = draw(st.lists(st.tuples(json_string(), any_value(depth + 1)), max_size=3))
    return b"{" + b",".join(k + b":" + v for k, v in entries) + b"}"


@st.composite
def json_int(draw, ft, clean: bool) -> bytes:
    if not clean:
        return draw(json_number())
    bits = ft.bits
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ft.kind == "int" else (0, 2**bits - 1)
    return str(draw(st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi)))).encode()


@st.composite
def value_for(draw, ft, clean: bool = False) -> bytes:
    """Mostly a value of the field's kind, sometimes any other (``clean``: always)."""
    if not clean and draw(st.integers(0, 5)) == 0:
        return draw(any_value())
    kind = ft.kind
    if kind == "ptr":
        if draw(st.integers(0, 3)) == 0:
            return b"null"
        ft = ft.elem
        kind = ft.kind
    w = draw(GOOD_WS if clean else WS).encode()
    if kind == "string":
        return draw(json_string(clean))
    if kind in ("int", "uint"):
        return draw(json_int(ft, clean))
    if kind == "bool":
        return draw(st.sampled_from([b"true", b"false"]))
    if kind == "struct":
        return draw(json_object(ft.fields, clean))
    if kind == "slice":
        if draw(st.integers(0, 4)) == 0:
            return b"null"
        elem = value_for(ft.elem, clean)
        if not clean or ft.elem.kind == "ptr":
            elem = st.one_of(elem, st.just(b"null"))
        elems = draw(st.lists(elem, max_size=4))
        return b"[" + w + (w + b"," + w).join(elems) + w + b"]"
    return draw(any_value())


def _key_variant(draw, key: str) -> bytes:
    k = draw(st.integers(0, 9))
    if k == 0:
        return ('"' + key.upper() + '"').encode()
    if k == 1:
        return ('"' + key[:1].swapcase() + key[1:] + '"').encode()
    if k == 2:
        return b'"' + _hex_escape(ord(key[0]), False) + key[1:].encode() + b'"'
    if k == 3:
        return ('"' + key.replace("s", "\u017f").replace("k", "\u212a") + '"').encode()
    return ('"' + key + '"').encode()


@st.composite
def json_object(draw, fields, clean: bool = False) -> bytes:
    """An object of these fields; ``clean``: exact keys, no repeats, values of the fields'
    kinds and ranges (what the scanner must accept), else anything near that."""
    keys = [k for k, _ in fields]
    types = dict(fields)
    ws = GOOD_WS if clean else WS
    if clean:
        chosen = draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
    else:
        chosen = draw(st.lists(st.sampled_from(keys), max_size=len(keys) + 2))  # may repeat
    parts = []
    for key in chosen:
        name = ('"' + key + '"').encode() if clean else _key_variant(draw, key)
        parts.append(name + draw(ws).encode() + b":" + draw(ws).encode()
                     + draw(value_for(types[key], clean)))
    if not clean and draw(st.integers(0, 6)) == 0:  # an unknown key, maybe nested deep
        parts.insert(draw(st.integers(0, len(parts))),
                     draw(st.sampled_from([b'"extra"', b'"sku2"', b'""'])) + b":"
                     + draw(any_value()))
    w = draw(ws).encode()
    return w + b"{" + w + (w + b"," + w).join(parts) + w + b"}" + draw(ws).encode()


@st.composite
def scanner_payload(draw, type_name: str | None = None) -> tuple[str, bytes]:
    t = type_name or draw(st.sampled_from(TYPES))
    clean = draw(st.booleans())
    text = draw(json_object(FIELDS[t], clean))
    if clean:
        return t, text
    damage = draw(st.integers(0, 12))
    if damage == 0 and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif damage == 1:
        text += draw(st.sampled_from([b"x", b"}", b",{}", b" {}", b"\x00"]))
    elif damage == 2:
        text = draw(any_value())
    return t, text


SCAN_SETTINGS = settings(max_examples=examples(400, ci=1200), deadline=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large])


@needs_core
@SCAN_SETTINGS
@given(case=scanner_payload())
def test_what_the_scanner_accepts_is_what_go_decodes(case) -> None:
    from cartforensics.go import json as gojson
    from cartforensics.go.version import semantics

    t, text = case
    schema = cf.model.registry.DEFAULT_SCHEMAS[t]
    scanned = core.scan(text, t)
    if scanned is not None:
        for sem in (semantics("1.25"), semantics("1.27")):
            value, err = gojson.unmarshal(text, schema, sem=sem)
            assert err is None, (t, text, err)
            assert scanned == value, (t, text)
    reg = cf.default_registry()
    assert core.decode_payload(text, t, reg) == reg[t].decode(text)


@needs_core
@settings(max_examples=examples(200, ci=600), deadline=None)
@given(t=st.sampled_from(TYPES), data=st.data())
def test_the_scanner_proves_every_writer_shaped_payload(t, data) -> None:
    """What the writer writes (json.Marshal: struct order, Go's escapes of <>&) never needs
    the reference decoder."""
    msg = data.draw(payload(t))
    text = orjson.dumps(msg).replace(b"<", b"\\u003c").replace(b">", b"\\u003e") \
        .replace(b"&", b"\\u0026")
    scanned = core.scan(text, t)
    assert scanned is not None, text
    assert (scanned, None) == cf.default_registry()[t].decode(text)


@needs_core
def test_the_scanner_decodes_strings_as_go() -> None:
    """Go's unquote, byte for byte (each also checked against gojson above)."""
    cases = {
        b'"\\u00e9\\u00E9"': "éé",
        b'"\\ud83d\\ude00"': "😀",                  # a surrogate pair is one rune
        b'"\\ud83dx"': "\ufffdx",                   # a lone high half
        b'"\\ude00\\ud83d"': "\ufffd\ufffd",        # halves in the wrong order
        b'"\\ud83d\\u0041"': "\ufffdA",             # a high half, then not a low one
        b'"\\ud83d\\ud83d\\ude00"': "\ufffd😀",     # the second high half pairs
        b'"\xff\xe2\x82x"': "\ufffd\ufffd\ufffdx",  # invalid UTF-8: one U+FFFD per byte
        b'"\xed\xa0\x80"': "\ufffd" * 3,            # an encoded surrogate is invalid
        b'"\\"\\\\\\/\\b\\f\\n\\r\\t"': '"\\/\b\f\n\r\t',
        b'"\\u0000"': "\x00",
    }
    for text, want in cases.items():
        got = core.scan(b'{"quantity":1,"sku":' + text + b"}", "AddItem")
        assert got is not None and got["sku"] == want, (text, got)
    for bad in (b'"\\x"', b'"\x01"', b'"\\u12G4"', b'"abc'):
        assert core.scan(b'{"sku":' + bad + b"}", "AddItem") is None, bad


@needs_core
def test_the_scanner_leaves_what_it_cannot_prove_to_the_reference() -> None:
    reg = cf.default_registry()
    for t, text in [
        ("AddItem", b'{"quantity":1,"quantity":2}'),       # repeated: Go keeps the last
        ("AddItem", b'{"SKU":"a"}'),                       # case-folded key
        ("AddItem", b'{"\\u0073ku":"a"}'),                 # an escaped key
        ("AddItem", b'{"sku":"a","x":{"y":[1,{"z":2}]}}'),  # an unknown key, nested
        ("AddItem", b'{"quantity":1.0}'), ("AddItem", b'{"quantity":1e0}'),
        ("AddItem", b'{"quantity":2147483648}'), ("AddItem", b'{"price":9223372036854775808}'),
        ("RemoveItem", b'{"Id":-0}'), ("RemoveItem", b'{"Id":-1}'),
        ("RemoveItem", b'{"Id":4294967296}'), ("AddItem", b'{"sku":null}'),
        ("AddItem", b'{"quantity":01}'), ("AddItem", b"{}x"), ("AddItem", b"null"),
        ("SetDelivery", b'{"items":[1,null]}'), ("AddItem", b'{"sku":"a"\x0b}'),
    ]:
        assert core.scan(text, t) is None, text
        assert core.decode_payload(text, t, reg) == reg[t].decode(text)
    # and what it proves at the edges
    assert core.scan(b'{"quantity":-0,"price":-9223372036854775808,"item_id":4294967295}',
                     "AddItem")["price"] == -(2**63)
    assert core.scan(b' \t\r\n{ "Id" :\n4294967295 } \n', "RemoveItem") == {"Id": 2**32 - 1}


@st.composite
def scanner_line(draw) -> bytes:
    t, text = draw(scanner_payload())
    text = text.replace(b"\n", b" ")  # a raw newline would end the log line
    if draw(st.integers(0, 2)) == 0:  # carts with items, so that handlers have work
        t = "AddItem"
        text = b'{"sku":"' + draw(st.sampled_from([b"a", b"b", b"\\u0061"])) + b'","quantity":' \
            + draw(st.sampled_from([b"1", b"2", b"-0", b"2147483647"])) + b"}"
    return b'{"ts":"2024-01-02T03:04:05Z","type":"' + t.encode() + b'","payload":' + text + b"}"


@needs_core
@settings(max_examples=examples(6, ci=12), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(carts=st.lists(st.lists(scanner_line(), min_size=1, max_size=40), min_size=1,
                      max_size=4))
def test_scanner_targeted_lines_replay_like_go(go_ref, tmp_path_factory, carts) -> None:
    """Real Go (cfdiff, every toolchain) on lines aimed at the scanner: every line's outcome
    and error text, the state after every line, every cart's lastChange and metrics, compiled
    core."""
    root = tmp_path_factory.mktemp("scan")
    files = []
    for i, lines in enumerate(carts):
        f = root / f"cart-{i}.events.log"
        f.write_bytes(b"".join(x + b"\n" for x in lines))
        files.append(f)
    assert cf.engine_info()["engine"] == "compiled"
    assert _compare(go_ref, files) > 0
    assert _compare(go_ref, files, catalog={"a": {"price": 100, "name": "A"}}, tmp=root) > 0


@needs_core
@pytest.mark.parametrize("catalog", [None, CATALOG])
def test_run_from_a_kept_state_continues_the_replay(catalog) -> None:
    """core.run_from (skip-a-line's entry point) from the state after k lines gives the
    replay's own outcomes, errors, last applied rows and final state; states survive a
    round trip through CartState; same_cart sees equal carts as equal."""
    import numpy as np

    r = cf.replay(SAMPLE, catalog=catalog)
    plain = r._plain
    for cid in r.cart_ids:
        rows = r.rows_of(cid)
        n = len(rows)
        final = r._runs[cid].final
        assert core.to_state(core.from_state(core.to_state(final), r._pool)) == \
            core.to_state(final)
        too_long = np.ascontiguousarray(plain["too_long"].to_numpy()[rows]).view(np.uint8)
        if too_long.any():
            continue
        k = n // 2
        codes, la = np.zeros(n, np.int8), np.zeros(n, np.int64)
        changed, errors = np.zeros(n, np.uint8), [None] * n
        state = r._state_after(r._runs[cid], k)
        last = int(r._last_applied[rows[k - 1]]) if k else -1
        cps, snaps, out = core.run_from(
            core.from_state(state, r._pool), cid, rows[k:],
            np.ascontiguousarray(r._row_kind[rows[k:]]), plain["type"].iloc[rows[k:]].tolist(),
            r._payload_buffers, plain["envelope_error"].iloc[rows[k:]].tolist(), too_long[k:],
            np.ascontiguousarray(plain["line"].to_numpy()[rows[k:]]), r._decoders, r.catalog,
            codes, errors, la, changed, -1, last, k, n, CHECKPOINT_EVERY, r._pool)
        m = n - k
        assert (codes[:m] == r._codes[rows[k:]]).all(), cid
        assert (la[:m] == r._last_applied[rows[k:]]).all(), cid
        want = r.outcomes["error"].iloc[rows[k:]].tolist()
        assert errors[:m] == [x if isinstance(x, str) else None for x in want], cid
        assert core.same_cart(out, final) and core.to_state(out) == core.to_state(final)
        assert all(k < p <= n for p in cps) and len(snaps) == len(cps)


@needs_core
def test_run_from_an_empty_cart_of_its_own_pool_keeps_the_catalog() -> None:
    """A caller of the first core's interface passes core.empty(cid) (a cart of a new pool)
    and whatever its replay keeps as the pool: the catalog still decides new items."""
    import numpy as np

    r = cf.replay(SAMPLE, catalog=CATALOG)
    plain = r._plain
    for cid in r.cart_ids[:40]:
        rows = r.rows_of(cid)
        n = len(rows)
        too_long = np.ascontiguousarray(plain["too_long"].to_numpy()[rows]).view(np.uint8)
        for pool in ({}, r._pool):
            codes, la = np.zeros(n, np.int8), np.zeros(n, np.int64)
            changed, errors = np.zeros(n, np.uint8), [None] * n
            _cps, _snaps, out = core.run_from(
                core.empty(cid), cid, rows, np.ascontiguousarray(r._row_kind[rows]),
                plain["type"].iloc[rows].tolist(), r._payload_buffers,
                plain["envelope_error"].iloc[rows].tolist(), too_long,
                np.ascontiguousarray(plain["line"].to_numpy()[rows]), r._decoders, r.catalog,
                codes, errors, la, changed, -1, -1, 0, n, CHECKPOINT_EVERY, pool)
            assert core.to_state(out) == core.to_state(r._runs[cid].final), cid
            applied = [x for x in rows if r._codes[x] == 0]
            assert core.advance(core.empty(cid), applied, r._row_kind, r._payload_buffers,
                                r._decoders, r.catalog, pool) == \
                core.to_state(r._runs[cid].final), cid


@needs_core
def test_a_compiled_replay_lets_another_thread_run(tmp_path) -> None:
    """The compiled core releases the GIL over a cart's lines, so other threads (other
    replays) run meanwhile. With the switch interval made huge, the interpreter never takes
    the GIL from this thread; a second thread, counting and yielding, can then advance only
    while the core has released it. It advances during the core's run (held, it could not
    move at all)."""
    import threading

    import numpy as np

    lines = []
    for i in range(100_000):  # writer-shaped lines the scanner proves: no payload needs the GIL
        if i % 3 == 0:
            payload = {"item_id": i, "quantity": 1, "price": 100 + i, "sku": f"s{i % 97}"}
            lines.append(orjson.dumps({"ts": "2024-01-02T03:04:05Z", "type": "AddItem",
                                       "payload": payload}))
        else:
            payload = {"Id": 1 + i % 50, "quantity": 1 + i % 4}
            lines.append(orjson.dumps({"ts": "2024-01-02T03:04:05Z", "type": "ChangeQuantity",
                                       "payload": payload}))
    ev = _events(tmp_path, [lines])
    r = cf.replay(ev, engine="compiled")
    (cid,) = r.cart_ids
    assert r.engine == "compiled" and r.carts_on_reference == []
    compiled = r._engine.compiled
    rows = np.asarray(r.rows_of(cid), dtype=np.int64)
    counted = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counted[0] += 1
            time.sleep(0)  # lets this thread's GIL go, so that the replaying thread gets it

    interval = sys.getswitchinterval()
    counter = threading.Thread(target=count)
    advanced, held = [], []
    sys.setswitchinterval(1e6)
    try:
        counter.start()
        for _ in range(5):
            before = counted[0]
            compiled.run(cid, rows)  # the compiled core, nothing else, between the reads
            advanced.append(counted[0] - before)
            before = counted[0]
            sum(range(len(rows) * 10))  # the control: Python code, the GIL held throughout
            held.append(counted[0] - before)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        counter.join()
    print("the counting thread's steps during each compiled replay:", advanced,
          "and during as much Python holding the GIL:", held)
    assert held == [0] * 5  # the method tells a held GIL: not one step
    # the OS may give a busy machine's other core to another process for one whole replay:
    # most replays, not each, must let the thread run
    assert sum(a > 0 for a in advanced) >= 3 and sum(advanced) >= 100, advanced


@needs_core
def test_snapshots_are_spaced_by_what_they_copy_not_by_items_alone() -> None:
    """A cart whose deliveries pile up while it holds no item: the compiled core's snapshots
    stay about one element a line in all (spaced by items + deliveries + their ids, not by
    items alone, which kept a copy of every delivery each CHECKPOINT_EVERY lines: quadratic
    memory), and a state between two of them is still the reference's."""
    from cartforensics.io.logs import read_events_bytes, to_frame

    lines = []
    for k in range(1, 1501):  # each round: an item, its own delivery, the item removed
        lines.append(b'{"ts":"2025-01-01T00:00:00Z","type":"AddItem","payload":{"item_id":%d,'
                     b'"quantity":1,"price":100,"sku":"s%d"}}\n' % (k, k))
        lines.append(b'{"ts":"2025-01-01T00:00:01Z","type":"SetDelivery","payload":{'
                     b'"provider":"postnord","items":[%d]}}\n' % k)
        lines.append(b'{"ts":"2025-01-01T00:00:02Z","type":"RemoveItem","payload":{"id":%d}}\n'
                     % k)
    ev = to_frame(read_events_bytes([("c", b"".join(lines))]))
    fast = cf.replay(ev, mode="lenient", engine="compiled")
    slow = cf.replay(ev, mode="lenient", engine="reference")
    assert len(fast.final_state("c")["deliveries"]) == 1500 and not fast.final_state("c")["items"]
    run = fast._run_of("c")
    copied = sum(core.snapshot_size(s) for s in run.checkpoints)
    assert 0 < copied <= 2 * len(lines), (copied, run.checkpoint_lines.tolist())
    for line in (1, 700, 2222, 3333, 4499, 4500):
        assert fast.state_at("c", line=line) == slow.state_at("c", line=line), line
