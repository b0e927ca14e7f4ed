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
import warnings
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cartforensics as cf
from cartforensics.cart import HandlerError
from cartforensics.engine import core, engine_info
from cartforensics.replay import CHECKPOINT_EVERY

SAMPLE = str(Path(__file__).resolve().parents[1] / "sample_data")

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
        assert fast.final_state(cid) == ref.final_state(cid)
        assert fast.history(cid).equals(ref.history(cid))
    return fast


carts_st = st.lists(st.lists(line(), min_size=0, max_size=30), min_size=1, max_size=3)
SETTINGS = settings(max_examples=30, deadline=None,
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
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(carts=st.lists(st.lists(line(extra_types=("AddVoucher",)), max_size=30), min_size=1,
                      max_size=3))
def test_cores_agree_with_a_registered_type(tmp_path_factory, carts) -> None:
    fast = _assert_same(_events(tmp_path_factory.getbasetemp(), carts), "go", registry=CUSTOM)
    # a cart whose line of the registered type is reached (its envelope decoded, the scanner
    # still going) ran on the reference core, the others on the compiled one
    oc = fast.outcomes
    reached = oc["outcome"].isin(["applied", "payload_error", "apply_error"])
    with_voucher = set(oc.loc[reached & (oc["type"] == "AddVoucher"), "cart_id"].astype(str))
    assert set(fast.carts_on_reference) == with_voucher


@needs_core
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
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
        return cf.cart.handle_remove_item(state, msg, catalog)

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
        "sys.modules['cartforensics._replay_core'] = None\n"
        "import cartforensics as cf\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = cf.replay('sample_data'); b = cf.replay('sample_data')\n"
        "print(len([x for x in w if 'compiled replay core' in str(x.message)]))\n"
        "print(a.engine, cf.engine_info()['engine'])\n"
        "print(int(a.outcomes['outcome'].eq('applied').sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True,
                         env={**os.environ, "CARTFORENSICS_ENGINE": ""}).stdout.split()
    assert out[:3] == ["1", "reference", "reference"]
    applied = int(cf.replay(SAMPLE, engine="reference").outcomes["outcome"]
                  .eq("applied").sum())
    assert int(out[3]) == applied


def test_version_names_the_core() -> None:
    out = subprocess.run([sys.executable, "-m", "cartforensics", "--version"],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
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
