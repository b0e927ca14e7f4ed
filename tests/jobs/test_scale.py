"""Scale-out (cartforensics._runtime.cluster, convert's executor=): a Dask LocalCluster of two
worker
processes, started here, converts a generated corpus with hostile lines into the same dataset
as a local run; a worker killed mid-run gives a clean error when its task cannot be retried
and the complete dataset when it can, never a partial one; and a report read
from a dataset equals the report read from the logs."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cartforensics.io.dataset import carts_table, dataset_table, read_manifest
from cartforensics.jobs.sample import write_sample

if os.environ.get("CI") == "true":  # in CI the dask extra is installed: never skip
    import distributed
else:
    distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

conv = importlib.import_module("cartforensics.jobs.convert")

CARTS = 1500
BATCH_FILES = 100  # small batches: about 20 tasks, so that a worker dies with tasks in flight


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def add_hostile(d: Path) -> None:
    """Lines the conversion must carry through unchanged, in files of their own."""
    add = rec("2025-10-28T10:00:00Z", "AddItem", {"sku": "h", "quantity": 1, "price": 5})
    (d / "hostile-1.events.log").write_bytes(b"".join([
        add + b"\r\n",  # CRLF
        b'{"ts":"2025-10-28T10:00:01Z","type":"AddItem","payload":{"sku":"\xff\xfe",'
        b'"quantity":1}}\n',  # invalid UTF-8 in a string
        b"\x00\x00nul\x00\n",
        b"\n",
        rec(1761645600, "AddItem", {"sku": "n", "quantity": 1}) + b"\n",  # numeric ts
        rec("2025-10-28T10:00:03Z", "AddItem", {"sku": "L" * (300 * 1024)}) + b"\n",  # > 256 KiB
        add + b"\n",  # not reached in go mode
        add,  # no final newline
    ]))
    (d / "hostile-2.events.log.gz").write_bytes(gzip.compress(add + b"\n" + add + b"\n"))
    (d / "hostile-3.events.log.gz").write_bytes(gzip.compress(add + b"\n")[:-6])  # broken
    (d / "hostile-4.events.log").write_bytes(b"")


@pytest.fixture(scope="module")
def small_batches() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv, "BATCH_FILES", BATCH_FILES)
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scale") / "logs"
    write_sample(d, carts=CARTS)
    add_hostile(d)
    return d


@pytest.fixture(scope="module")
def local(corpus: Path, small_batches: Any) -> Path:
    dst = corpus.parent / "local.parquet"
    conv.convert(corpus, dst, workers=1, progress=False)
    return dst


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("dask")
    with dask.config.set({"temporary-directory": str(tmp)}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as lc:
            with distributed.Client(lc) as client:
                yield lc, client


def same_dataset(a: Path, b: Path) -> None:
    """Row for row and value for value: events (every column), carts, and the manifest's
    entries (hashes, sizes, lines, problems)."""
    ta, tb = dataset_table(a), dataset_table(b)
    assert ta.num_rows == tb.num_rows
    assert ta.combine_chunks().equals(tb.combine_chunks())
    assert carts_table(a).combine_chunks().equals(carts_table(b).combine_chunks())
    ma, mb = read_manifest(a), read_manifest(b)
    assert ma is not None and mb is not None
    keys = ("path", "cart_id", "size", "sha256", "content_size", "content_sha256", "lines",
            "problems", "newline_at_end")
    fa = [{k: f.get(k) for k in keys} for f in ma["files"]]
    fb = [{k: f.get(k) for k in keys} for f in mb["files"]]
    assert fa == fb
    assert ma["lines"] == mb["lines"]


def test_cluster_convert_equals_local(corpus: Path, local: Path, cluster: Any,
                                      tmp_path: Path) -> None:
    _lc, client = cluster
    dst = tmp_path / "cluster.parquet"
    s = conv.convert(corpus, dst, executor=client.get_executor(), progress=False)
    assert s.files == CARTS + 4 and len(s.problems) == 1  # the broken .gz
    same_dataset(local, dst)
    # the same fragments, too: the names are the batch numbers, not the workers'
    la = sorted(p.relative_to(local).as_posix() for p in local.rglob("*.parquet"))
    lb = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.parquet"))
    assert la == lb and len(la) > CARTS // BATCH_FILES
    assert not [p for p in dst.rglob("*") if conv.TMP_MARK in p.name]
    # restore: byte for byte (plain logs), decompressed content (gzip)
    out = tmp_path / "restored"
    r = conv.restore(dst, out)
    # every file, the broken .gz too (what its stream held before the break)
    assert r.ok and r.verified == r.files == CARTS + 4, str(r)
    for p in corpus.glob("*.events.log"):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    for name in ("hostile-2.events.log.gz",):
        assert gzip.decompress((out / name).read_bytes()) == gzip.decompress(
            (corpus / name).read_bytes())


def test_cluster_incremental_equals_full_local_run(corpus: Path, local: Path, cluster: Any,
                                                   tmp_path: Path) -> None:
    _lc, client = cluster
    src = tmp_path / "logs"
    shutil.copytree(corpus, src)
    later = sorted(src.glob("cart-24*.events.log"))  # added after the first run
    held = {p: p.read_bytes() for p in later}
    for p in later:
        p.unlink()
    grown = next(p for p in sorted(src.glob("cart-1*.events.log"))  # grows between the runs
                 if p.read_bytes().count(b"\n") >= 3 and p.read_bytes().endswith(b"\n"))
    whole = grown.read_bytes()
    cut = whole.rfind(b"\n", 0, len(whole) - 1) + 1
    assert 0 < cut < len(whole)
    grown.write_bytes(whole[:cut])
    dst = tmp_path / "inc.parquet"
    first = conv.convert(src, dst, executor=client.get_executor(), progress=False)
    assert first.files == CARTS + 4 - len(later)
    for p, data in held.items():
        p.write_bytes(data)
    grown.write_bytes(whole)
    s = conv.convert(src, dst, incremental=True, executor=client.get_executor(),
                     progress=False)
    assert len(s.new) == len(later) and s.appended == [grown.name]
    assert s.lines == sum(conv._events.count_lines(d) for d in held.values()) + 1
    same_dataset(local, dst)


def _convert_killing_a_worker(corpus: Path, dst: Path, cluster: Any,
                              allowed_failures: int) -> dict[str, Any]:
    """Convert on the cluster and SIGKILL a worker while a batch runs on it, the scheduler
    letting a task outlive ``allowed_failures`` dead workers; what convert returned (summary)
    or raised (error). The cluster is back to two workers and its setting restored after."""
    lc, client = cluster
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)  # worker address -> its process
    scheduler = lc.scheduler
    saved = scheduler.allowed_failures
    scheduler.allowed_failures = allowed_failures
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = conv.convert(corpus, dst, executor=client.get_executor(),
                                              progress=False)
        except conv.ConvertError as e:
            outcome["error"] = e

    t = threading.Thread(target=run)
    t.start()
    try:
        victim = None
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline and t.is_alive():
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and busy[0] in pids:
                victim = busy[0]
            else:
                time.sleep(0.01)
        assert victim is not None, "no task was ever in flight"
        os.kill(pids[victim], signal.SIGKILL)  # the worker dies with a task running on it
        t.join(120)
        assert not t.is_alive()
    finally:
        scheduler.allowed_failures = saved
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    return outcome


def test_a_killed_worker_whose_task_cannot_be_retried_fails_cleanly(
        corpus: Path, cluster: Any, tmp_path: Path) -> None:
    """No retry allowed (``allowed_failures`` 0): the first dead worker is the task's last;
    convert raises a clear error and leaves neither DST nor a temporary beside it."""
    dst = tmp_path / "killed.parquet"
    for _attempt in range(3):
        # the task seen running may end in the moment before the kill lands; then nothing
        # died with it and the run is complete: kill again on a fresh run (the path under
        # test is the one where a task dies with its worker, and it must be reached)
        outcome = _convert_killing_a_worker(corpus, dst, cluster, allowed_failures=0)
        if "summary" not in outcome:
            break
        shutil.rmtree(dst)
    assert "summary" not in outcome, "the conversion finished although its task could not"
    error = str(outcome["error"])
    assert "workers died" in error and "nothing was written" in error, error
    assert not dst.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".killed.parquet")]


def test_a_killed_worker_whose_task_can_be_retried_gives_the_complete_dataset(
        corpus: Path, local: Path, cluster: Any, tmp_path: Path) -> None:
    """Retries allowed: the scheduler reruns the lost task on the other worker and the
    dataset is complete and equal to a local run's."""
    dst = tmp_path / "rerun.parquet"
    outcome = _convert_killing_a_worker(corpus, dst, cluster, allowed_failures=5)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"].files == CARTS + 4
    same_dataset(local, dst)
    assert not [p for p in dst.rglob("*") if conv.TMP_MARK in p.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rerun.parquet")]


def test_report_on_the_cluster_equals_local(local: Path, cluster: Any, tmp_path: Path) -> None:
    """write_report's chunks of carts on the Dask workers (executor=): the same report."""
    import re

    import pandas as pd

    from cartforensics.present.report import write_report

    _lc, client = cluster
    here = write_report(local, tmp_path / "here", progress=False, chunk_lines=1_000)
    there = write_report(local, tmp_path / "there", progress=False, chunk_lines=1_000,
                         executor=client.get_executor())

    def page(p: Path) -> str:
        return re.sub(r"generated [^<]* by", "", p.read_text(encoding="utf-8"))

    assert page(here.html) == page(there.html) and page(here.markdown) == page(there.markdown)
    for fa, fb in zip(here.findings, there.findings, strict=True):
        assert fa.to_dict() == fb.to_dict()
    pd.testing.assert_frame_equal(pd.read_parquet(here.parquet), pd.read_parquet(there.parquet))
    assert here.lines == there.lines > 0


def test_fleet_summary_on_the_cluster_equals_local(local: Path, cluster: Any) -> None:
    import pandas as pd

    from cartforensics.analysis.fleet import fleet_summary

    _lc, client = cluster
    here = fleet_summary(local, freq="1D")
    there = fleet_summary(local, freq="1D", executor=client.get_executor())
    assert here.partitions == there.partitions > 1 and here.lines == there.lines
    pd.testing.assert_frame_equal(here.carts, there.carts)
    pd.testing.assert_frame_equal(here.metrics, there.metrics)
    pd.testing.assert_frame_equal(here.rates, there.rates)
    pd.testing.assert_frame_equal(here.findings, there.findings)
    assert here.evidence is not None and there.evidence is not None
    assert here.evidence.keys() == there.evidence.keys()
    for k, e in here.evidence.items():
        pd.testing.assert_frame_equal(e, there.evidence[k])


def test_cli_scheduler_local(tmp_path: Path) -> None:
    from cartforensics.cli.app import main

    src = tmp_path / "logs"
    write_sample(src, carts=40)
    add_hostile(src)
    conv.convert(src, tmp_path / "local.parquet", workers=1, progress=False)
    dst = tmp_path / "cli.parquet"
    with dask.config.set({"temporary-directory": str(tmp_path / "dask")}):
        rc = main(["convert", str(src), str(dst), "--scheduler", "local:2", "--quiet"])
    assert rc == 1  # the broken .gz is a problem with an input file; the rest is converted
    same_dataset(tmp_path / "local.parquet", dst)


@pytest.mark.parametrize("bad", ["foo", "local:0", "local:x", "http://h:1"])
def test_cli_scheduler_bad_value(bad: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from cartforensics.cli.app import main

    (tmp_path / "logs").mkdir()
    rc = main(["convert", str(tmp_path / "logs"), str(tmp_path / "d"), "--scheduler", bad])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("cartforensics: ") and err.count("\n") == 1
    assert "tcp://HOST:PORT" in err and not (tmp_path / "d").exists()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_fragment_temporaries_are_per_attempt(tmp_path: Path) -> None:
    """Two attempts of one task write the same final file through different temporaries."""
    opts = conv.ConvertOptions()
    a = conv._FragmentWriter(tmp_path / "f.parquet", conv.CARTS_SCHEMA, opts, 10)
    b = conv._FragmentWriter(tmp_path / "f.parquet", conv.CARTS_SCHEMA, opts, 10)
    assert a._tmp != b._tmp and conv.TMP_MARK in a._tmp.name
    row = pa.Table.from_pylist([{"source": "x", "cart_id": "x", "lines": 0}],
                               schema=conv.CARTS_SCHEMA)
    for w in (a, b):
        w.add(row)
        w._flush()
    a.close()
    first = _sha(tmp_path / "f.parquet")
    b.close()
    assert _sha(tmp_path / "f.parquet") == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]


@pytest.mark.parametrize("when", ["open", "not yet open"])
def test_an_attempt_that_outlives_its_conversion_leaves_nothing_in_dst(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """A worker cut off from the scheduler keeps running after its batch was given to another
    and the dataset was committed: its late writes must not land in DST."""
    import pyarrow.parquet as pq

    src = tmp_path / "logs"
    src.mkdir()
    add_hostile(src)
    late: list[conv._FragmentWriter] = []
    real = conv._FragmentWriter.__init__

    def spy(self: conv._FragmentWriter, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        if not late:  # the zombie: another attempt at the first fragment, the same paths
            twin = object.__new__(conv._FragmentWriter)
            real(twin, *args, **kwargs)
            late.append(twin)

    cleanup = conv._remove_temporaries

    def then_the_zombie_opens(root: Path) -> None:  # the last moment before the commit
        cleanup(root)
        if when == "open":
            (twin,) = late
            twin.path.parent.mkdir(exist_ok=True)
            twin.writer = pq.ParquetWriter(twin._tmp, twin.schema)

    monkeypatch.setattr(conv._FragmentWriter, "__init__", spy)
    monkeypatch.setattr(conv, "_remove_temporaries", then_the_zombie_opens)
    dst = tmp_path / "dst"
    conv.convert(src, dst, workers=1, progress=False)
    (zombie,) = late
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(OSError):  # writes, then renames into a dataset that is gone
        zombie.add(zombie.schema.empty_table())
        zombie._flush()
        zombie.close()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before
    assert not [p for p in dst.rglob("*") if conv.TMP_MARK in p.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


# -- report from a dataset ---------------------------------------------------------------------


def test_report_from_dataset_equals_report_from_logs(tmp_path: Path) -> None:
    import re

    import pandas as pd

    from cartforensics.analysis.notes import Notes
    from cartforensics.present.report import write_report

    src = tmp_path / "logs"
    write_sample(src, carts=150)
    add_hostile(src)
    add = rec("2025-10-28T10:00:05Z", "AddItem", {"sku": "d", "quantity": 1, "price": 5})
    (src / "hostile-5.events.log").write_bytes(b"".join([  # the kinds a cart's lines decide
        add + b"\n", add + b"\n",  # a duplicate
        rec("2025-10-28T09:00:00Z", "AddItem", {"sku": "e", "quantity": 1}) + b"\n",  # clock
        rec("2025-10-28T10:00:06Z", "AddItem", {"sku": "q", "quantity": "2"}) + b"\n",
        add + add + b"\n", add[:30] + b"\n",  # glued, torn
    ]))
    # a cart with a .log and a .log.gz: one log from the logs and in the dataset
    (src / "cart-1001.events.log.gz").write_bytes(gzip.compress(
        rec("2031-01-01T00:00:00Z", "ChangeQuantity", {"Id": 1, "quantity": 9}) + b"\n"
        + rec("2031-01-01T00:00:01Z", "RemoveItem", {"Id": 999}) + b"\n"))
    ds = tmp_path / "ds.parquet"
    conv.convert(src, ds, workers=1, progress=False)
    notes = Notes(tmp_path / "notes.json")  # on an applied line too: its bytes are shown
    notes.add("cart-1001", 1, "<b>first</b> line", tags=["check"])
    notes.add("hostile-1", 3, "NUL bytes")
    notes.add("hostile-1", 99, "a line the logs do not have")
    with pytest.warns(UserWarning, match="broken gzip stream"):  # read_events says so
        a = write_report(src, tmp_path / "from-logs", progress=False, notes=notes)
    b = write_report(ds, tmp_path / "from-dataset", progress=False, notes=notes)
    assert "&lt;b&gt;first&lt;/b&gt; line" in b.html.read_text(encoding="utf-8")
    assert a.headline is not None and a.headline == b.headline
    assert len(a.findings) == len(b.findings) >= 8
    kinds = {f.kind for f in a.findings}
    assert {"numeric_ts", "too_long", "duplicate", "glued", "torn", "ts_backwards",
            "payload_error", "no_final_newline", "file_problem"} <= kinds
    for fa, fb in zip(a.findings, b.findings, strict=True):
        assert fa.to_dict() == fb.to_dict()
        pd.testing.assert_frame_equal(fa.evidence, fb.evidence)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    split = pd.read_parquet(b.parquet).query("cart_id == 'cart-1001' and mode == 'lenient'")
    assert split["outcome"].tolist()[-2:] == ["applied", "apply_error"]
    for k in ("lines", "carts", "applied_go", "applied_lenient", "lost", "carts_losing"):
        assert getattr(a, k) == getattr(b, k), k
    pd.testing.assert_frame_equal(pd.read_parquet(a.parquet), pd.read_parquet(b.parquet))
    for name, path in a.charts.items():
        assert path.read_bytes() == b.charts[name].read_bytes(), name

    def page(p: Path) -> str:  # the source's name aside (a problem names the log file)
        text = p.read_text(encoding="utf-8").replace(str(ds), "SRC").replace(str(src), "SRC")
        return re.sub(r"generated [^<]* by", "", text)

    assert page(a.html) == page(b.html)
    assert page(a.markdown) == page(b.markdown)


def test_cli_report_takes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cartforensics.cli.app import main

    src = tmp_path / "logs"
    src.mkdir()
    add_hostile(src)
    conv.convert(src, tmp_path / "ds", workers=1, progress=False)
    assert main(["report", str(tmp_path / "ds"), "--out", str(tmp_path / "rep"), "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 of 11 lines (1 carts) are dropped by the service's reader")
    assert (tmp_path / "rep" / "report.html").exists()
