"""The compiled core's state JSON (``_replay_core.go_json_states``) is byte for byte
:func:`~cartforensics.go.json.marshal` of the state's dict (what ``convert`` stores in its
carts rows): over generated states with every kind of text and extreme integer, and over the
final states of the sample and hostile corpora, on both cores."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.go.json import marshal
from cartforensics.model.cart import CartState, Delivery, Item, PickupPoint, state_to_json
from cartforensics.model.engine import core

needs_core = pytest.mark.skipif(
    core is None and os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1",
    reason="the compiled core is not built (python setup.py build_ext --inplace)",
)

I64 = st.one_of(st.sampled_from([-(2**63), -(2**63) + 1, -1, 0, 1, 10, 2**63 - 1]),
                st.integers(-(2**63), 2**63 - 1))
# what Go and orjson escape (quotes, backslash, every control character, <>&, the line and
# paragraph separators), their neighbours, and any other character (no lone surrogate: a
# test of its own below)
SPECIAL = "\"\\/<>&\u2027\u2028\u2029\u202a\x7f\x80\u00e5\ufffd\U0001f600 az09" + "".join(
    map(chr, range(0x20)))
TEXT = st.one_of(st.text(alphabet=SPECIAL, max_size=12), st.text(max_size=12))
OPT_TEXT = st.one_of(st.none(), TEXT)


@st.composite
def items(draw) -> Item:
    return Item(
        id=draw(I64), itemId=draw(I64), sku=draw(TEXT), name=draw(TEXT), image=draw(TEXT),
        price=draw(I64), orgPrice=draw(I64), qty=draw(I64), totalPrice=draw(I64),
        tax=draw(I64), taxRate=draw(I64), stock=draw(I64), type=draw(TEXT), brand=draw(TEXT),
        category=draw(TEXT), category2=draw(TEXT), category3=draw(TEXT),
        category4=draw(TEXT), category5=draw(TEXT), disclaimer=draw(TEXT),
        sellerId=draw(TEXT), sellerName=draw(TEXT), outlet=draw(OPT_TEXT),
        storeId=draw(OPT_TEXT), parentId=draw(st.one_of(st.none(), I64)),
        unresolved=draw(st.booleans()), discount=draw(I64),
    )


@st.composite
def deliveries(draw) -> Delivery:
    pp = draw(st.one_of(st.none(), st.builds(
        PickupPoint, id=TEXT, name=OPT_TEXT, address=OPT_TEXT, city=OPT_TEXT, zip=OPT_TEXT,
        country=OPT_TEXT)))
    return Delivery(id=draw(I64), provider=draw(TEXT), price=draw(I64),
                    items=tuple(draw(st.lists(I64, max_size=4))), pickupPoint=pp)


@st.composite
def states(draw) -> CartState:
    return CartState(
        id=draw(TEXT), items=tuple(draw(st.lists(items(), max_size=3))),
        deliveries=tuple(draw(st.lists(deliveries(), max_size=3))), totalPrice=draw(I64),
        totalTax=draw(I64), totalDiscount=draw(I64), processing=draw(st.booleans()),
        paymentInProgress=draw(st.booleans()), orderReference=draw(TEXT),
        paymentStatus=draw(TEXT), last_item_id=draw(I64), last_delivery_id=draw(I64),
    )


@needs_core
@settings(max_examples=300, deadline=None)
@given(states(), OPT_TEXT, st.lists(st.sampled_from([b"{}", b'{"id":"x"}']), max_size=2))
def test_go_json_states_is_marshal_of_the_state(state: CartState, last_change: str | None,
                                                 written: list[bytes]) -> None:
    """Each compiled cart is written as marshal writes the reference's dict of the same state
    (and the compiled core's own dict); bytes given are taken as they are, in order."""
    want = marshal(state_to_json(state.with_last_change(last_change)))
    w = core.from_state(state)
    as_dict = core.to_json(w)
    as_dict["lastChange"] = last_change
    assert marshal(as_dict) == want
    given_states = [*written, w, *written, w]
    data, offsets = core.go_json_states(given_states, [None] * len(given_states)
                                        if last_change is None else
                                        [last_change] * len(given_states))
    assert len(offsets) == len(given_states) + 1 and offsets[0] == 0
    assert offsets[-1] == len(data)
    texts = [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    assert texts == [*written, want, *written, want]


@needs_core
@pytest.mark.parametrize("where", ["id", "sku", "lastChange", "pickup"])
def test_a_lone_surrogate_is_refused_as_marshal_refuses_it(where: str) -> None:
    """orjson (and so marshal) refuses a text that is not valid UTF-8: the core writes none
    of the states then (Fallback), and its caller marshals them itself."""
    bad = "a\ud800b"
    pp = PickupPoint(id=bad) if where == "pickup" else None
    state = CartState(id=bad if where == "id" else "c",
                      items=(Item(id=1, sku=bad if where == "sku" else "s"),),
                      deliveries=(Delivery(id=1, pickupPoint=pp),))
    last_change = bad if where == "lastChange" else None
    with pytest.raises(TypeError):
        marshal(state_to_json(state.with_last_change(last_change)))
    with pytest.raises(core.Fallback):
        core.go_json_states([b"{}", core.from_state(state)], [None, last_change])


@needs_core
def test_go_json_states_of_nothing_and_a_mismatch() -> None:
    data, offsets = core.go_json_states([], [])
    assert data == b"" and offsets.tolist() == [0]
    with pytest.raises(ValueError):
        core.go_json_states([b"{}"], [])


def _module(path: Path):  # noqa: ANN202 - a test module of another folder, by its path
    spec = importlib.util.spec_from_file_location(f"_corpus_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpora(tmp: Path) -> list[Path]:
    """The sample data, convert's hostile files and the Go hostile corpus."""
    tests = Path(__file__).resolve().parents[1]
    _module(tests / "go" / "test_hostile.py").write_corpus(tmp / "go-hostile")
    _module(tests / "jobs" / "test_convert.py").write_hostile(tmp / "convert-hostile")
    return [tests.parent / "sample_data", tmp / "go-hostile", tmp / "convert-hostile"]


@needs_core
@pytest.mark.filterwarnings("ignore:cart 'dup' has 2 files")
def test_final_states_of_the_corpora_are_marshal_of_final_state(tmp_path: Path) -> None:
    """convert's carts-row states on the sample and hostile corpora, on the compiled core
    (its final carts written by go_json_states) and on the reference (every state
    marshalled from its dict): byte for byte ``marshal(state_at(...))``, the same on both."""
    from cartforensics import read_events, replay

    conv = importlib.import_module("cartforensics.jobs.convert")
    for src in _corpora(tmp_path):
        ev = read_events(src, progress=False)
        for mode in ("go", "lenient"):
            by_engine = {}
            for engine in ("compiled", "reference"):
                r = replay(ev, mode=mode, engine=engine)
                wanted = [(c, len(r.rows_of(c))) for c in r.cart_ids]
                held = [r.compiled_final(c, n) for c, n in wanted]
                # the compiled core writes the final states it holds; the reference none
                assert any(held) if engine == "compiled" else not any(held)
                wanted += [(c, 1) for c in r.cart_ids if len(r.rows_of(c)) > 1]
                got = conv._final_states(r, [*wanted, ("absent", 0)]).to_pylist()
                assert got[:-1] == [marshal(r.state_at(c, line=n)).decode()
                                    for c, n in wanted], (src, mode, engine)
                assert got[-1].startswith('{"id":"absent","items":[]')
                by_engine[engine] = got
            assert by_engine["compiled"] == by_engine["reference"], (src, mode)
