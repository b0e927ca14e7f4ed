"""The registry: the seed's ten types, immutable ``register``, user types and swapped handlers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from cartforensics import Registry, default_registry, replay
from cartforensics.model.cart import CartState, HandlerError

SEED_TYPES = {
    "AddRequest", "SetCartRequest", "AddItem", "RemoveItem", "ChangeQuantity", "SetDelivery",
    "SetPickupPoint", "RemoveDelivery", "OrderCreated", "InitializeCheckout",
}
TS = "2024-05-01T10:00:00Z"


def line(type_: str, payload: Any, ts: Any = TS) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def log(d: Path, cart: str, lines: list[bytes]) -> Path:
    p = d / f"{cart}.events.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    return p


def add_voucher(state: CartState, msg: dict, catalog: Any = None) -> CartState:
    if not msg["code"]:
        raise HandlerError("empty voucher code")
    return dataclasses.replace(
        state, totalDiscount=state.totalDiscount + msg["amount"], orderReference=msg["code"])


VOUCHER_SCHEMA = {"code": "string", "amount": "int64"}


def outcomes(r: Any) -> list[str]:
    return r.outcomes["outcome"].astype(str).tolist()


def test_default_registry_has_exactly_the_ten_seed_types() -> None:
    reg = default_registry()
    assert isinstance(reg, Registry)
    assert set(reg) == SEED_TYPES
    assert len(reg) == 10
    for name in SEED_TYPES:
        assert name in reg
        assert reg[name].name == name
        assert callable(reg[name].handler)
    # lookups are exact and case-sensitive, like registry.Create
    assert "additem" not in reg and reg.get("additem") is None and reg.get(None) is None
    assert "AddVoucher" not in reg


def test_register_returns_a_new_registry_and_leaves_the_default_alone() -> None:
    base = default_registry()
    new = base.register("AddVoucher", VOUCHER_SCHEMA, add_voucher)
    assert new is not base
    assert "AddVoucher" in new and len(new) == 11
    assert "AddVoucher" not in base and len(base) == 10
    assert "AddVoucher" not in default_registry()
    # the other types are carried over unchanged
    for name in SEED_TYPES:
        assert new[name].handler is base[name].handler
    smaller = new.without("AddItem")
    assert "AddItem" not in smaller and "AddItem" in new


def test_registered_type_decodes_with_go_rules_and_applies(tmp_path: Path) -> None:
    reg = default_registry().register("AddVoucher", VOUCHER_SCHEMA, add_voucher)
    log(tmp_path, "v", [
        line("AddVoucher", {"code": "X", "amount": "5"}),         # string into int64
        line("AddVoucher", {"Code": "HOST", "AMOUNT": 500}),      # keys match case-insensitively
        line("AddVoucher", {"code": "Y", "amount": 1.5}),         # no fraction into an int
        line("AddVoucher", {"code": "", "amount": 1}),            # the handler refuses
        line("AddVoucher", {"code": "Z", "amount": 9223372036854775808}),  # out of int64
        line("AddVoucher", None),                                 # null: a zero message
        line("AddVoucher", [1]),                                  # not an object
        line("AddVoucher", {"code": "W", "amount": 25, "extra": {"a": 1}}),  # unknown key ignored
    ])
    r = replay(tmp_path, registry=reg)
    assert outcomes(r) == ["payload_error", "applied", "payload_error", "apply_error",
                           "payload_error", "apply_error", "payload_error", "applied"]
    errors = r.outcomes["error"].tolist()
    assert errors[0] == ("json: cannot unmarshal string into Go struct field AddVoucher.amount "
                         "of type int64")
    assert errors[2] == ("json: cannot unmarshal number 1.5 into Go struct field "
                         "AddVoucher.amount of type int64")
    assert errors[3] == errors[5] == "empty voucher code"
    assert "AddVoucher.amount" in errors[4]
    assert errors[6].startswith("json: cannot unmarshal array into Go value of type")
    s = r.final_state("v")
    assert s["totalDiscount"] == 525
    assert s["orderReference"] == "W"
    assert s["lastChange"] == TS
    m = r.metrics()
    assert m["cart_event_log_mutation_errors_total"] == 6
    assert m["cart_event_log_replay_failures_total"] == 0

    # without the registration the same lines are unknown types
    plain = replay(tmp_path)
    assert outcomes(plain) == ["unknown_type"] * 8
    assert plain.outcomes["error"].iloc[0] == 'unknown mutation type: "AddVoucher"'
    assert plain.metrics()["cartforensics_promised_unknown_types_total"] == 8


def test_registered_type_with_nested_and_pointer_fields(tmp_path: Path) -> None:
    seen: list[dict] = []

    def keep(state: CartState, msg: dict, catalog: Any = None) -> CartState:
        seen.append(msg)
        return state

    reg = default_registry().register(
        "Tag", {"labels": "[]string", "note": "*string", "n": "uint32",
                "meta": {"k": "string"}}, keep)
    log(tmp_path, "t", [
        line("Tag", {"labels": ["a", "b"], "note": "hi", "n": 3, "meta": {"k": "v"}}),
        line("Tag", {}),
        line("Tag", {"n": -1}),
    ])
    r = replay(tmp_path, registry=reg)
    assert outcomes(r) == ["applied", "applied", "payload_error"]
    assert seen[0] == {"labels": ["a", "b"], "note": "hi", "n": 3, "meta": {"k": "v"}}
    # every key present, at Go's zero values (nil slice and pointer as None)
    assert seen[1]["labels"] is None and seen[1]["note"] is None and seen[1]["n"] == 0
    assert len(seen) == 2  # the handler never saw the undecodable line


def test_swapping_a_handler_keeps_the_schema(tmp_path: Path) -> None:
    def shout(state: CartState, msg: dict, catalog: Any = None) -> CartState:
        return dataclasses.replace(state, orderReference=msg["orderId"],
                                   paymentStatus=msg["status"].upper())

    reg = default_registry().register("OrderCreated", handler=shout)
    assert reg["OrderCreated"].schema is default_registry()["OrderCreated"].schema
    log(tmp_path, "o", [
        line("OrderCreated", {"orderId": "A1", "status": "done"}),
        line("OrderCreated", {"orderId": "A2", "status": 7}),
    ])
    r = replay(tmp_path, registry=reg)
    assert outcomes(r) == ["applied", "payload_error"]
    assert r.outcomes["error"].iloc[1] == (
        "json: cannot unmarshal number into Go struct field OrderCreated.status of type string")
    s = r.final_state("o")
    assert (s["orderReference"], s["paymentStatus"]) == ("A1", "DONE")
    assert replay(tmp_path).final_state("o")["paymentStatus"] == "done"


def test_swapping_only_the_schema_keeps_the_handler(tmp_path: Path) -> None:
    reg = default_registry().register("RemoveItem", {"Id": "uint32", "why": "string"})
    assert reg["RemoveItem"].handler is default_registry()["RemoveItem"].handler
    log(tmp_path, "r", [line("AddItem", {"sku": "a", "quantity": 1}),
                        line("RemoveItem", {"Id": 1, "why": 5}),
                        line("RemoveItem", {"Id": 1, "why": "x"})])
    r = replay(tmp_path, registry=reg)
    assert outcomes(r) == ["applied", "payload_error", "applied"]
    assert r.final_state("r")["items"] == []


def test_new_type_needs_schema_and_handler() -> None:
    reg = default_registry()
    with pytest.raises(ValueError, match="AddVoucher"):
        reg.register("AddVoucher", handler=add_voucher)
    with pytest.raises(ValueError, match="AddVoucher"):
        reg.register("AddVoucher", VOUCHER_SCHEMA)
    with pytest.raises(ValueError):
        reg.register("AddVoucher")
    with pytest.raises(TypeError):
        reg.register("AddVoucher", VOUCHER_SCHEMA, "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="float"):
        reg.register("AddVoucher", {"amount": "float"}, add_voucher)
    assert "AddVoucher" not in reg
