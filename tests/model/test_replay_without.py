"""``Replay.without``: a cart replayed without some of its lines, from the kept state before
the first one left out, equals a full replay of the events without those rows (issue 11).

Hypothesis generates carts (writer-shaped and hostile lines of all ten types, a registered
type, too-long lines, catalog on and off) and positions to leave out; both modes, both cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_replay_core import CATALOG, CUSTOM, _events, line, needs_core

import cartforensics as cf
from cartforensics.model.replay import CHECKPOINT_EVERY, OUTCOMES

# a line the scanner cannot hold (262,144 bytes or more before its newline); in go mode the
# first one stops the scanner, in lenient mode it is decoded like any other line
TOO_LONG = (b'{"ts":"2024-01-02T03:04:05Z","type":"AddItem","payload":{"quantity":1,'
            b'"sku":"long","name":"' + b"x" * (256 * 1024) + b'"}}')

ENGINES = ["compiled", "reference"]


@st.composite
def cart_lines(draw, min_size: int = 0, max_size: int = 40) -> list[bytes]:
    lines = draw(st.lists(line(extra_types=("AddVoucher",)), min_size=min_size,
                          max_size=max_size))
    for _ in range(draw(st.integers(0, 2)) if lines else 0):  # too-long lines, anywhere
        if draw(st.integers(0, 3)) == 0:
            lines.insert(draw(st.integers(0, len(lines))), TOO_LONG)
    return lines


def _skips(draw, n: int) -> list[int]:
    """Positions to leave out: a few anywhere, the first, the last, one right after a
    checkpoint, or all of them."""
    how = draw(st.integers(0, 5))
    if how == 0:
        return list(range(1, n + 1))
    specials = [p for p in (1, n, CHECKPOINT_EVERY, CHECKPOINT_EVERY + 1,
                            2 * CHECKPOINT_EVERY + 1) if 1 <= p <= n]
    picks = draw(st.lists(st.integers(1, n), min_size=0 if specials else 1, max_size=4))
    if specials and (not picks or how == 1):
        picks.append(draw(st.sampled_from(specials)))
    return picks


def _assert_equal_to_replay_without(r: cf.Replay, cid: str, skip: list[int],
                                    every_point: bool = False) -> None:
    rows = np.asarray(r.rows_of(cid), dtype=np.int64)
    keep = np.ones(len(rows), dtype=bool)
    keep[np.asarray(skip, dtype=np.int64) - 1] = False
    w = r.without(cid, skip)
    sub = cf.replay(r.events.iloc[rows[keep]], mode=r.mode, catalog=r.catalog,
                    registry=r.registry, go_version=r.semantics, engine=r.engine)
    assert w.cart_ids == [c for c in sub.cart_ids if c == cid]
    assert w.skipped == sorted(set(skip))
    assert w.kept.tolist() == (np.flatnonzero(keep) + 1).tolist()
    if not w.has_cart:
        with pytest.raises(KeyError):
            w.state_at(cid, line=0)
        return
    so = sub.outcomes.iloc[sub.rows_of(cid)].reset_index(drop=True)
    assert w.outcomes.equals(so)
    assert [OUTCOMES[c] for c in w.outcome_codes(cid)] == so["outcome"].astype(str).tolist()
    assert w.errors(cid) == [v if isinstance(v, str) else None for v in so["error"]]
    hist = sub.history(cid)
    assert w.history(cid).equals(hist)
    assert w.changed(cid).tolist() == hist["changed"].tolist()
    m = len(so)
    points = (range(m + 1) if m <= 50 or every_point
              else sorted({0, m, *range(1, m, 7), *range(m - 10, m)}))
    for c in points:
        assert w.state_at(cid, line=c) == sub.state_at(cid, line=c), (cid, skip, c)
    assert w.final_state(cid) == sub.final_state(cid)
    for t in so["ts"].dropna().iloc[:: max(1, m // 4)]:
        assert w.state_at(cid, ts=t) == sub.state_at(cid, ts=t)
    with pytest.raises(IndexError):
        w.state_at(cid, line=m + 1)


SETTINGS = dict(deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


@needs_core
@settings(max_examples=examples(15, ci=60), **SETTINGS)
@given(carts=st.lists(cart_lines(), min_size=1, max_size=2), data=st.data(),
       catalog=st.sampled_from([None, CATALOG]), registry=st.sampled_from([None, CUSTOM]))
def test_without_equals_a_replay_without_the_lines(tmp_path_factory, carts, data, catalog,
                                                    registry) -> None:
    ev = _events(tmp_path_factory.getbasetemp(), carts)
    for engine in ENGINES:
        for mode in ("go", "lenient"):
            r = cf.replay(ev, mode=mode, catalog=catalog, registry=registry, engine=engine)
            for cid in r.cart_ids:
                n = len(r.rows_of(cid))
                for _ in range(2 if n else 0):  # twice: the second reuses what the first kept
                    _assert_equal_to_replay_without(r, cid, _skips(data.draw, n))


@needs_core
@settings(max_examples=examples(8, ci=24), **SETTINGS)
@given(lines=cart_lines(min_size=CHECKPOINT_EVERY * 2, max_size=CHECKPOINT_EVERY * 3),
       data=st.data())
def test_without_across_checkpoints(tmp_path_factory, lines, data) -> None:
    """Long carts: the tail starts at, before and after a kept checkpoint, and states in the
    tail are rebuilt from the new checkpoints."""
    ev = _events(tmp_path_factory.getbasetemp(), [lines])
    for engine in ENGINES:
        for mode in ("go", "lenient"):
            r = cf.replay(ev, mode=mode, engine=engine, catalog=CATALOG)
            cid = r.cart_ids[0]
            _assert_equal_to_replay_without(r, cid, _skips(data.draw, len(r.rows_of(cid))))


def test_without_nothing_is_the_replay_itself(tmp_path) -> None:
    ev = cf.read_events(tmp_path_sample(tmp_path), progress=False)
    r = cf.replay(ev)
    cid = r.cart_ids[0]
    w = r.without(cid, [])
    n = len(r.rows_of(cid))
    assert w.skipped == [] and w.kept.tolist() == list(range(1, n + 1))
    assert w.history(cid).equals(r.history(cid))
    assert w.outcome_codes(cid).tolist() == r.outcome_codes(cid).tolist()
    assert w.changed(cid).tolist() == r.changed(cid).tolist() == r.history(cid)[
        "changed"].tolist()
    for c in range(n + 1):
        assert w.state_at(cid, line=c) == r.state_at(cid, line=c)


def tmp_path_sample(tmp_path) -> str:
    lines = [
        b'{"ts":"2024-01-01T00:00:00Z","type":"AddRequest","payload":{"quantity":1,"sku":"a"}}',
        b'{"ts":"2024-01-01T00:00:01Z","type":"ChangeQuantity","payload":{"Id":1,"quantity":3}}',
        b'{"ts":"2024-01-01T00:00:02Z","type":"RemoveItem","payload":{"Id":9}}',
        b'{"ts":"2024-01-01T00:00:03Z","type":"AddRequest","payload":{"quantity":2,"sku":"b"}}',
    ]
    (tmp_path / "c.events.log").write_bytes(b"\n".join(lines) + b"\n")
    return str(tmp_path)


def test_skipping_a_line_changes_what_follows(tmp_path) -> None:
    """Leaving out the line that added item 1 makes the later ChangeQuantity of item 1 fail;
    the lines before it keep their outcomes."""
    r = cf.replay(tmp_path_sample(tmp_path))
    w = r.without("c", [1])
    assert [OUTCOMES[c] for c in w.outcome_codes("c")] == ["apply_error", "apply_error",
                                                           "applied"]
    assert w.errors("c") == ["item not found", "item not found", None]
    assert w.final_state("c")["items"][0]["sku"] == "b"
    assert w.final_state("c")["lastChange"] == "2024-01-01T00:00:03Z"
    w2 = r.without("c", [3])
    assert w2.state_at("c", line=2) == r.state_at("c", line=2)
    assert w2.final_state("c") == r.final_state("c")  # line 3 was an error: nothing changes


def test_without_refuses_positions_outside_the_cart(tmp_path) -> None:
    r = cf.replay(tmp_path_sample(tmp_path))
    with pytest.raises(IndexError, match="lines 1 … 4"):
        r.without("c", [5])
    with pytest.raises(IndexError):
        r.without("c", [0])
    with pytest.raises(ValueError, match="line positions"):
        r.without("c", ["2"])
    with pytest.raises(KeyError):
        r.without("nope", [1])
    assert isinstance(r.without("c", {2}).outcomes, pd.DataFrame)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["go", "lenient"])
def test_a_skip_that_changes_nothing_later_rejoins_the_replay(tmp_path, engine, mode) -> None:
    """Leaving out a line that changed nothing lasting (an error, or a quantity set again
    later) makes the cart the replay's own again at the next kept checkpoint: from there on
    the replay's outcomes and states are used, and everything still equals a replay
    without the line, lastChange included."""
    lines = []
    for i in range(3 * CHECKPOINT_EVERY):
        sec = f"{i // 60:02d}:{i % 60:02d}"
        if i % 5 == 0:
            lines.append(f'{{"ts":"2024-01-02T03:{sec}Z","type":"AddRequest","payload":'
                         f'{{"quantity":1,"sku":"s{i % 3}"}}}}'.encode())
        elif i % 5 == 1 or (i + 1) % CHECKPOINT_EVERY == 0:
            # the line before each checkpoint sets the quantity it already has: applied (it
            # moves lastChange), yet the cart stays the same
            qty = i if i % 5 == 1 else i - (i - 1) % 5
            lines.append(f'{{"ts":"2024-01-02T03:{sec}Z","type":"ChangeQuantity","payload":'
                         f'{{"Id":1,"quantity":{qty}}}}}'.encode())
        elif i % 5 == 2:
            lines.append(b"not json")
        else:
            lines.append(f'{{"ts":"2024-01-02T03:{sec}Z","type":"RemoveItem","payload":'
                         f'{{"Id":99}}}}'.encode())
    (tmp_path / "c.events.log").write_bytes(b"\n".join(lines) + b"\n")
    r = cf.replay(str(tmp_path), mode=mode, engine=engine)
    for skip in ([3], [2], [3, 8, 40], [CHECKPOINT_EVERY], [2 * CHECKPOINT_EVERY],
                 [len(lines) - 1]):
        w = r.without("c", skip)
        if skip != [len(lines) - 1]:  # a checkpoint lies after the others
            assert w.converged_at is not None, skip
        _assert_equal_to_replay_without(r, "c", skip, every_point=True)
    # an AddRequest of a new item moves every later item id: never the same cart again
    assert r.without("c", [1]).converged_at is None
    _assert_equal_to_replay_without(r, "c", [1])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["go", "lenient"])
def test_a_skip_that_rejoins_late_is_found_at_a_later_checkpoint(tmp_path, engine, mode
                                                                 ) -> None:
    """The tail is compared with the replay at the 1st, 2nd, 4th, 8th ... checkpoint after
    the last skipped line: a cart that becomes the replay's own again between two of them
    (here after the 5th: a quantity set again) is found at the next one (the 8th), and
    everything still equals a replay without the line; a skip that never rejoins runs the
    whole rest of the cart."""
    n = 12 * CHECKPOINT_EVERY
    reset_at = 5 * CHECKPOINT_EVERY + 10  # between the 5th and 6th checkpoint after line 3
    lines = [b'{"ts":"2024-01-02T03:00:00Z","type":"AddRequest","payload":'
             b'{"quantity":1,"sku":"s0"}}']
    for i in range(1, n):
        sec = f"{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        if i == 2:  # the line left out: it sets a quantity that only reset_at sets again
            qty = 7
        elif i == reset_at:
            qty = 3
        else:
            lines.append(f'{{"ts":"2024-01-02T{sec}Z","type":"RemoveItem","payload":'
                         f'{{"Id":99}}}}'.encode())
            continue
        lines.append(f'{{"ts":"2024-01-02T{sec}Z","type":"ChangeQuantity","payload":'
                     f'{{"Id":1,"quantity":{qty}}}}}'.encode())
    (tmp_path / "c.events.log").write_bytes(b"\n".join(lines) + b"\n")
    r = cf.replay(str(tmp_path), mode=mode, engine=engine)
    cps = r._run_of("c").checkpoint_lines.tolist()
    assert len([q for q in cps if q > reset_at]) >= 3, cps  # the cart spans enough of them
    w = r.without("c", [3])
    assert w.converged_at is not None and w.converged_at > reset_at
    _assert_equal_to_replay_without(r, "c", [3], every_point=True)
    assert r.without("c", [1]).converged_at is None  # no item at all: never the same cart
    _assert_equal_to_replay_without(r, "c", [1])
