"""The replay protocols (cartforensics.model.protocol): each of the four classes that answer
like a replay has every member of the protocols it stands for, of the right kind (a method
with the protocol's parameters, or a value), and real instances pass ``isinstance``."""

from __future__ import annotations

import ast
import inspect
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

import cartforensics as cf
from cartforensics.analysis.fleet import StoredReplay, stored_replays
from cartforensics.go.version import semantics
from cartforensics.jobs.convert import convert
from cartforensics.model.protocol import ReplayLike, ReplayOfEvents, ReplayOfStates
from cartforensics.model.replay import Replay, ReplayWithout
from cartforensics.present.report import _NoCarts

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

# each class and the protocols it stands for
CLASSES: dict[type, tuple[type, ...]] = {
    Replay: (ReplayLike, ReplayOfEvents, ReplayOfStates),
    ReplayWithout: (ReplayLike, ReplayOfStates),
    StoredReplay: (ReplayLike, ReplayOfEvents),
    _NoCarts: (ReplayLike, ReplayOfEvents),
}
_ABSENT = object()


def _members(proto: type) -> dict[str, Any]:
    """The protocol's members (its own and its bases'), by name: a property or a function."""
    out: dict[str, Any] = {}
    for base in reversed(proto.__mro__):
        if base is object or base.__dict__.get("_is_protocol") is not True:
            continue
        for name, value in vars(base).items():
            if not name.startswith("_") and isinstance(value, (property, type(_members))):
                out[name] = value
    return out


def _assigned_on_self(cls: type) -> set[str]:
    """The names the class's methods assign as ``self.<name>`` (instance attributes)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names = set()
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                    and t.value.id == "self"):
                names.add(t.attr)
    return names


def test_protocol_members_are_what_the_brief_of_each_protocol_says() -> None:
    assert set(_members(ReplayLike)) == {"mode", "semantics", "outcomes", "cart_ids",
                                         "rows_of", "final_state"}
    assert set(_members(ReplayOfEvents)) - set(_members(ReplayLike)) == {
        "events", "catalog", "registry"}
    assert set(_members(ReplayOfStates)) - set(_members(ReplayLike)) == {
        "state_at", "line_at", "history"}


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda c: c.__name__)
def test_each_class_has_every_member_of_the_right_kind(cls: type) -> None:
    on_self = _assigned_on_self(cls)
    for proto in CLASSES[cls]:
        for name, member in _members(proto).items():
            where = f"{cls.__name__}.{name} ({proto.__name__})"
            found = inspect.getattr_static(cls, name, _ABSENT)
            if isinstance(member, property):  # a value: a property, a class value, or set
                assert (isinstance(found, property)
                        or (found is not _ABSENT and not inspect.isfunction(found))
                        or name in on_self), f"{where}: not a value of the class"
                continue
            assert inspect.isfunction(found), f"{where}: not a method"
            want = list(inspect.signature(member).parameters.values())[1:]
            have = list(inspect.signature(found).parameters.values())[1:]
            assert [p.name for p in have[:len(want)]] == [p.name for p in want], where
            assert all(p.default is not inspect.Parameter.empty for p in have[len(want):]), \
                f"{where}: takes more than the protocol's parameters"
            for p, q in zip(want, have, strict=False):
                if p.default is not inspect.Parameter.empty:
                    assert q.default == p.default, f"{where}: default of {p.name}"


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> dict[type, Any]:
    d = tmp_path_factory.mktemp("protocol")
    (d / "logs").mkdir()
    for f in sorted(SAMPLE.glob("*.events.log"))[:6]:
        shutil.copy(f, d / "logs" / f.name)
    r = cf.replay(d / "logs")
    cid = r.cart_ids[0]
    convert(d / "logs", d / "ds", workers=1, progress=False)
    _events, stored, _lenient = stored_replays(d / "ds")
    return {
        Replay: r,
        ReplayWithout: r.without(cid, [1]),
        StoredReplay: stored,
        _NoCarts: _NoCarts("go", semantics(None)),
    }


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda c: c.__name__)
def test_real_instances_are_instances_of_their_protocols(cls: type, instances) -> None:
    x = instances[cls]
    assert type(x) is cls
    for proto in (ReplayLike, ReplayOfEvents, ReplayOfStates):
        assert isinstance(x, proto) == (proto in CLASSES[cls]), proto.__name__
    assert x.mode in ("go", "lenient")
    assert x.semantics == semantics(None)
    for cid in x.cart_ids:
        rows = x.rows_of(cid)
        assert set(x.outcomes["cart_id"].iloc[rows].astype(str)) == {cid}
        assert isinstance(x.final_state(cid), dict)
    with pytest.raises(KeyError):
        x.final_state("no-such-cart")


def test_the_replays_agree_through_the_protocol(instances) -> None:
    """A StoredReplay answers ReplayLike's questions as the replay of the same logs does."""
    r, stored = instances[Replay], instances[StoredReplay]
    assert stored.cart_ids == r.cart_ids
    for cid in r.cart_ids:
        assert stored.final_state(cid) == r.final_state(cid)
        assert len(stored.rows_of(cid)) == len(r.rows_of(cid))
