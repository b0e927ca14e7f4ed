"""The shared vocabulary (cartforensics.vocab) is the one the layers and the compiled cores use:
the cores write vocab's codes, read_events' ts_kind categories are vocab's ts kinds in vocab's
numbering, every outcome has a label and a colour, and the layers' names are vocab's objects."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from cartforensics import vocab
from cartforensics.go import writer_shape
from cartforensics.io.sources import read_events
from cartforensics.model.engine import core
from cartforensics.model.replay import replay

needs_cores = pytest.mark.skipif(
    (core is None or writer_shape.core is None)
    and os.environ.get("CARTFORENSICS_REQUIRE_CORE") != "1",
    reason="the compiled cores are not built (python setup.py build_ext --inplace)",
)

# one line per outcome, in go mode, in this order (the too-long line stops the scanner)
_TS = '"2024-03-01T00:00:00Z"'
_CART = [
    (f'{{"ts":{_TS},"type":"AddItem","payload":{{"sku":"a","quantity":1,"price":5}}}}',
     "applied"),
    ("{not json", "malformed"),
    (f'{{"ts":{_TS},"type":"AddVoucher","payload":{{}}}}', "unknown_type"),
    (f'{{"ts":{_TS},"type":"AddItem","payload":{{"sku":"a","quantity":"2"}}}}', "payload_error"),
    (f'{{"ts":{_TS},"type":"RemoveItem","payload":{{"Id":4000}}}}', "apply_error"),
    (f'{{"ts":{_TS},"type":"AddItem","payload":{{"sku":"{"x" * 270_000}"}}}}', "too_long"),
    (f'{{"ts":{_TS},"type":"AddItem","payload":{{"sku":"b","quantity":1}}}}', "not_reached"),
]


def test_codes_are_indices_into_the_tuples() -> None:
    assert vocab.OUTCOME_CODES == {o: i for i, o in enumerate(vocab.OUTCOMES)}
    assert [vocab.APPLIED, vocab.MALFORMED, vocab.UNKNOWN_TYPE, vocab.PAYLOAD_ERROR,
            vocab.APPLY_ERROR, vocab.TOO_LONG, vocab.NOT_REACHED] == list(range(7))
    assert vocab.TS_KIND_CODES == {k: i for i, k in enumerate(vocab.TS_KINDS)}
    assert [vocab.TS_KINDS[c] for c in (vocab.TS_STR, vocab.TS_INT, vocab.TS_NULL,
                                        vocab.TS_MISSING, vocab.TS_INVALID)] == [
        "string", "number", "null", "missing", "invalid"]
    assert set(vocab.FAILURE_OUTCOMES) | set(vocab.MUTATION_ERROR_OUTCOMES) < set(vocab.OUTCOMES)
    assert vocab.MODES == ("go", "lenient")


def test_every_outcome_has_a_label_and_a_colour() -> None:
    assert list(vocab.OUTCOME_LABELS) == list(vocab.OUTCOMES)
    assert list(vocab.OUTCOME_COLORS) == list(vocab.OUTCOMES)
    assert all(vocab.OUTCOME_LABELS[o] for o in vocab.OUTCOMES)
    assert set(vocab.RATE_COLORS.values()) <= set(vocab.OUTCOME_COLORS.values())


@needs_cores
@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_the_replay_cores_write_vocabs_outcome_codes(tmp_path: Path, engine: str) -> None:
    (tmp_path / "c.events.log").write_text("".join(line + "\n" for line, _ in _CART))
    r = replay(tmp_path, mode="go", engine=engine)
    assert r.carts_on_reference == []
    expected = [o for _, o in _CART]
    assert r.outcome_codes("c").tolist() == [vocab.OUTCOME_CODES[o] for o in expected]
    assert r.outcomes["outcome"].astype(str).tolist() == expected
    assert r.outcomes["error"].tolist()[5] == vocab.TOO_LONG_ERROR


@needs_cores
def test_the_scan_and_read_events_share_the_ts_kind_numbering(tmp_path: Path) -> None:
    lines = [
        b'{"ts":"2024-03-01T00:00:00Z","type":"A","payload":{}}',
        b'{"ts":1709251200,"type":"A","payload":{}}',
        b'{"ts":null,"type":"A","payload":{}}',
    ]
    data = b"\n".join(lines) + b"\n"
    lens = np.array([len(x) for x in lines], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
    want = [vocab.TS_STR, vocab.TS_INT, vocab.TS_NULL]
    for compiled in (True, False):
        scan = writer_shape.scan_lines(data, starts, lens, compiled=compiled)
        assert scan.ok.all(), compiled
        assert scan.ts_kind.tolist() == want, compiled
    (tmp_path / "k.events.log").write_bytes(data)
    kinds = read_events(tmp_path)["ts_kind"]
    assert list(kinds.cat.categories) == list(vocab.TS_KINDS)
    assert kinds.cat.codes.tolist() == want
    assert kinds.astype(str).tolist() == ["string", "number", "null"]


@pytest.mark.parametrize(("module", "names"), [
    ("cartforensics.model.replay", ["OUTCOMES", "TOO_LONG_ERROR", "Mode"]),
    ("cartforensics.io.dataset", ["OUTCOMES", "MODES", "TS_KINDS"]),
    ("cartforensics.io.logs", ["TS_KINDS"]),
    ("cartforensics.go.writer_shape", ["TS_INT", "TS_STR", "TS_NULL"]),
    ("cartforensics.analysis.metrics", ["FAILURE_OUTCOMES", "MUTATION_ERROR_OUTCOMES"]),
    ("cartforensics.analysis.fleet", ["EVIDENCE_ROWS", "MODES", "OUTCOMES"]),
    ("cartforensics.present.plots", ["OUTCOME_COLORS", "OUTCOME_LABELS", "RATE_COLORS"]),
    ("cartforensics.present.report", ["EVIDENCE_ROWS", "OUTCOME_COLORS", "OUTCOME_LABELS"]),
    ("cartforensics.present.widgets.frames", ["OUTCOME_COLORS", "OUTCOME_LABELS", "OUTCOMES"]),
    ("cartforensics.present.widgets.strip", ["OUTCOME_COLORS", "OUTCOME_LABELS", "OUTCOMES"]),
    ("cartforensics.present.widgets.dashboard", ["MODES", "OUTCOMES", "RATE_COLORS"]),
    ("cartforensics.present.widgets.scrubber", ["MODES", "OUTCOMES"]),
])
def test_the_layers_use_vocabs_objects(module: str, names: list[str]) -> None:
    m = importlib.import_module(module)
    for name in names:
        assert getattr(m, name) is getattr(vocab, name), (module, name)


def test_the_evidence_sizes_are_one() -> None:
    from cartforensics.analysis.findings import EVIDENCE_KEPT

    assert EVIDENCE_KEPT is vocab.EVIDENCE_ROWS
