"""``replay_stream`` (the ``replay`` command's path) gives what one ``replay`` of the whole
source gives, whatever the pieces: the sample corpus, the hostile corpus, too-long lines,
carts cut between pieces and spread over several files (.gz, several directories), and
generated carts (Hypothesis). The command's output, table and jsonl, is compared with the
one drawn from whole replays."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile import write_corpus
from test_replay_core import line

import cartforensics.analysis.streaming as streaming
from cartforensics.analysis.findings import headline
from cartforensics.analysis.streaming import ReplaySummary, replay_records, replay_stream
from cartforensics.cli.app import _table, main
from cartforensics.go.bufio import MAX_TOKEN_SIZE
from cartforensics.go.json import marshal
from cartforensics.io.logs import read_event_pieces, read_log_events
from cartforensics.io.sources import read_events
from cartforensics.jobs.convert import convert
from cartforensics.model.replay import replay

SAMPLE = str(Path(__file__).resolve().parents[2] / "sample_data")
OK = b'{"ts":"2024-03-01T12:00:00Z","type":"AddItem","payload":{"sku":"a","quantity":1,"price":5}}'
NUMERIC = b'{"ts":1700000000,"type":"AddItem","payload":{"sku":"n","quantity":2,"price":7}}'
REMOVE = b'{"ts":"2024-03-01T12:00:01Z","type":"RemoveItem","payload":{"Id":1}}'
TOO_LONG = b'{"ts":"2024-03-01T12:00:00Z","type":"AddItem","payload":{"sku":"' + \
    b"x" * MAX_TOKEN_SIZE + b'"}}'


def whole(source, mode: str, go_version: str | None = None, lenient: bool = True
          ) -> tuple[ReplaySummary, list[dict]]:
    """What the command showed before it streamed: one replay of the whole source (and one
    in lenient mode), as a ReplaySummary, and replay_records of it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = read_events(source, progress=False, go_version=go_version)
    r = replay(events, mode=mode)
    le = replay(events, mode="lenient") if lenient else None
    s = ReplaySummary(r.mode, r.semantics, headline(r.events), r.summary(), r.metrics(),
                      None if le is None else le.summary()["applied"])
    return s, list(replay_records(r))


def streamed(source, mode: str, rows: int, go_version: str | None = None,
             lenient: bool = True) -> tuple[ReplaySummary, list[dict]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = replay_stream(source, mode=mode, go_version=go_version, rows=rows)
        return s.summary(lenient=lenient), list(s.records())


def assert_same(source, mode: str, rows: int, go_version: str | None = None) -> None:
    want_s, want_r = whole(source, mode, go_version)
    got_s, got_r = streamed(source, mode, rows, go_version)
    assert got_s.summary.equals(want_s.summary)
    assert got_s.metrics.equals(want_s.metrics)
    assert got_s.applied_lenient.equals(want_s.applied_lenient)
    assert got_s.headline == want_s.headline
    assert got_s.semantics == want_s.semantics and got_s.mode == want_s.mode
    assert got_r == want_r
    assert [marshal(x) for x in got_r] == [marshal(x) for x in want_r]  # key order too
    assert table_text(got_s) == table_text(want_s)


def table_text(s: ReplaySummary, carts: list[str] | None = None) -> str:
    out = io.StringIO()
    _table(s, out, carts)
    return out.getvalue()


def run_cli(args: list[str]) -> tuple[int, bytes]:
    """The command's exit code and stdout bytes."""
    buf = io.BytesIO()
    out = io.TextIOWrapper(buf, encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(args)
    out.flush()
    return rc, buf.getvalue()


def expected_cli(source, args: list[str]) -> bytes:
    """The command's stdout as drawn from whole replays (table or jsonl, --mode, --cart,
    --go-version)."""
    mode = args[args.index("--mode") + 1] if "--mode" in args else "go"
    gv = args[args.index("--go-version") + 1] if "--go-version" in args else None
    carts = [args[k + 1] for k, a in enumerate(args) if a == "--cart"] or None
    s, recs = whole(source, mode, gv, lenient=mode == "go")
    if "jsonl" in args:
        return b"".join(marshal(x) + b"\n" for x in recs
                        if carts is None or x["cart_id"] in carts)
    return table_text(s, carts).encode()


@pytest.mark.parametrize("rows", [5, 97, 1 << 16])
@pytest.mark.parametrize("mode", ["go", "lenient"])
def test_sample_corpus_in_pieces(rows: int, mode: str) -> None:
    assert_same(SAMPLE, mode, rows)


def test_sample_corpus_as_go_1_27() -> None:
    assert_same(SAMPLE, "go", 50, go_version="1.27")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile") / "logs"
    write_corpus(d)
    return d


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_hostile_corpus_in_pieces(hostile: Path, rows: int) -> None:
    assert_same(hostile, "go", rows)
    assert_same(hostile, "lenient", rows)


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Carts cut between pieces: long carts, a too-long line mid-cart with lines after it
    (and one more too-long line), numeric ts, CRLF, a cart in a .log and a .log.gz, empty
    logs, a cart with only an empty file after lines."""
    d = tmp_path_factory.mktemp("spread")
    a, b = d / "a", d / "b"
    a.mkdir()
    b.mkdir()
    (a / "c1.events.log").write_bytes(b"\n".join([OK] * 7 + [NUMERIC, REMOVE] * 3) + b"\n")
    (a / "c2.events.log").write_bytes(
        b"\n".join([OK, OK, TOO_LONG, OK, TOO_LONG, NUMERIC, OK]) + b"\n")
    (a / "c3.events.log").write_bytes(b"\r\n".join([OK, b"", b"{}", REMOVE, NUMERIC]))
    with gzip.open(a / "c3.events.log.gz", "wb") as fh:
        fh.write(b"\n".join([OK, REMOVE, REMOVE, OK]) + b"\n")
    (a / "c4.events.log").write_bytes(b"")
    (b / "c1.events.log").write_bytes(b"\n".join([REMOVE, OK, NUMERIC]) + b"\n")
    (b / "c5.events.log").write_bytes(b"\n".join([OK] * 3))
    (b / "c4.events.log").write_bytes(b"")
    return d


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 6, 1000])
def test_carts_spread_over_pieces_and_files(spread: Path, rows: int) -> None:
    # two directories: carts c1 and c4 are listed once in each
    source = [str(spread / "a"), str(spread / "b")]
    assert_same(source, "go", rows)
    assert_same(source, "lenient", rows)
    assert_same(str(spread / "a"), "go", rows)


def frame_values(df: pd.DataFrame) -> dict[str, list]:
    return {c: df[c].astype(object).tolist() for c in df.columns}


@pytest.mark.parametrize("rows", [1, 2, 5, 1000])
def test_pieces_laid_end_to_end_are_the_events(spread: Path, hostile: Path, rows: int) -> None:
    for source in ([str(spread / "a"), str(spread / "b")], str(hostile), SAMPLE):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = read_log_events(source, progress=False)
            pieces = list(read_event_pieces(source, rows=rows))
        assert all(len(p) <= 2 * rows for p in pieces)
        got = pd.concat(pieces, ignore_index=True)
        assert frame_values(got) == frame_values(want)
        files = [f for p in pieces for f in p.attrs["files"]]
        assert sum(f["lines"] for f in files) == len(want)
        assert {f["path"] for f in files} == {f["path"] for f in want.attrs["files"]}


@pytest.mark.parametrize("args", [
    [],
    ["--format", "jsonl"],
    ["--mode", "lenient"],
    ["--mode", "lenient", "--format", "jsonl"],
    ["--cart", "c2", "--cart", "c1"],
    ["--cart", "c3", "--format", "jsonl"],
    ["--go-version", "1.27"],
    ["--go-version", "1.27", "--format", "jsonl", "--mode", "lenient"],
])
def test_the_command_prints_what_whole_replays_give(spread: Path, monkeypatch, args) -> None:
    monkeypatch.setattr(streaming, "PIECE_ROWS", 2)
    source = [str(spread / "a"), str(spread / "b")]
    rc, out = run_cli(["replay", *source, "--quiet", *args])
    assert rc == 0
    assert out == expected_cli(source, args)
    assert out  # something was printed


def test_the_command_on_a_dataset(spread: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(str(spread / "a"), tmp_path / "ds")
    for args in ([], ["--format", "jsonl"], ["--cart", "c2"]):
        rc, out = run_cli(["replay", str(tmp_path / "ds"), "--quiet", *args])
        assert rc == 0
        assert out == expected_cli(str(tmp_path / "ds"), args)


def test_an_unknown_cart_exits_2_before_printing(spread: Path) -> None:
    rc, out = run_cli(["replay", str(spread / "a"), "--cart", "c9", "--format", "jsonl"])
    assert rc == 2 and out == b""


_case = itertools.count()
GENERATED = settings(max_examples=examples(25, ci=200), deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow, HealthCheck.data_too_large])


@GENERATED
@given(carts=st.lists(st.lists(st.one_of(line(), st.sampled_from([b"", b"{}", NUMERIC])),
                               max_size=25), min_size=1, max_size=4),
       split=st.lists(st.booleans(), min_size=4, max_size=4),
       rows=st.integers(1, 30), mode=st.sampled_from(["go", "lenient"]))
def test_generated_carts_in_pieces(tmp_path_factory, carts, split, rows, mode) -> None:
    """Carts of generated lines, some in two files (a .log and a .log.gz), in pieces of
    ``rows`` lines."""
    root = tmp_path_factory.getbasetemp() / f"stream{next(_case)}"
    root.mkdir()
    for i, lines in enumerate(carts):
        data = [x + b"\n" for x in lines]
        half = len(data) // 2 if split[i] else len(data)
        (root / f"cart-{i}.events.log").write_bytes(b"".join(data[:half]))
        if split[i]:
            (root / f"cart-{i}.events.log.gz").write_bytes(gzip.compress(b"".join(data[half:])))
    assert_same(root, mode, rows)


@pytest.mark.parametrize("mode", ["go", "lenient"])
def test_one_cart_reads_its_own_lines_and_gives_the_whole_replays_states(
        spread: Path, tmp_path: Path, mode: str) -> None:
    """``ReplayStream.cart`` (the ``state`` command) reads only that cart's files (a cart in
    a .log and a .log.gz: both), or its rows of a dataset, and every state and outcome of it
    is the whole source's replay's."""
    from cartforensics.model.replay import replay

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert(str(spread / "a"), tmp_path / "ds")
        for src in ([SAMPLE], [str(spread / "a"), str(spread / "b")], [str(tmp_path / "ds")]):
            whole = replay(src if len(src) > 1 else src[0], mode=mode)
            stream = replay_stream(src if len(src) > 1 else src[0], mode=mode)
            assert stream.cart_ids == whole.cart_ids
            for cid in whole.cart_ids[:40]:
                one = stream.cart(cid)
                assert one.cart_ids == [cid]
                if not src[0].endswith("ds"):  # the files read: this cart's alone
                    files = one.events.attrs["files"]
                    assert files and {f["cart_id"] for f in files} == {cid}, files
                    assert all(Path(f["path"]).name.startswith(f"{cid}.events.log")
                               for f in files), files
                n = len(whole.rows_of(cid))
                assert len(one.rows_of(cid)) == n
                for line in sorted({0, min(1, n), n // 2, n}):
                    assert one.state_at(cid, line=line) == whole.state_at(cid, line=line)
                assert one.final_state(cid) == whole.final_state(cid)
    with pytest.raises(KeyError):
        stream.cart("no-such-cart")
