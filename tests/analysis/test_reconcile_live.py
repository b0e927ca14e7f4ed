"""A real service and a real Prometheus, on 127.0.0.1 only: the seed's event_log.go behind
/metrics (tests/go/promservice, built with client_golang 1.14 from Debian's Go source) writes
and replays a corpus with planted incidents, crashes mid-write once and restarts; Prometheus
2.42 scrapes it every second. ``reconcile`` must explain every difference between what
Prometheus recorded and the counters rebuilt from the logs, to the line, from each shape of
record (query of raw samples, query_range, promtool tsdb dump).

Needs ``apt-get install -y prometheus golang-github-prometheus-client-golang-dev`` and Go on
PATH; CI sets CARTFORENSICS_REQUIRE_PROMETHEUS=1 so that a missing piece fails the test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import cartforensics as cf
from cartforensics.analysis.reconcile import APPENDS, BYTES, REPLAYS, UNKNOWN, reconcile
from cartforensics.io.prometheus import read_record

sys.path.insert(0, str(Path(__file__).parent))
import live_prometheus as live  # noqa: E402


def _required() -> bool:
    return os.environ.get("CARTFORENSICS_REQUIRE_PROMETHEUS") == "1" or \
        os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> live.LiveRun:
    why = live.missing()
    if why:
        if _required():
            pytest.fail(why)
        pytest.skip(why)
    work = tmp_path_factory.mktemp("live")
    return live.run_live(work)  # every wait in it is bounded; processes stopped in finally


def _count(res: cf.Reconciliation, window: int, metric: str, kind: str) -> int:
    e = res.explanations
    sel = e[(e["window"] == window) & (e["metric"] == metric) & (e["kind"] == kind)]
    return int(sel["count"].sum())


def _exported(res: cf.Reconciliation, window: int, metric: str) -> int:
    e = res.explanations
    return int(e[(e["window"] == window) & (e["metric"] == metric)]["exported"].iloc[0])


def _rebuilt(res: cf.Reconciliation, window: int, metric: str) -> int:
    e = res.explanations
    return int(e[(e["window"] == window) & (e["metric"] == metric)]["rebuilt"].iloc[0])


@pytest.mark.parametrize("shape", ["record_json", "range_json", "dump"])
def test_every_difference_is_explained_to_the_line(run: live.LiveRun, shape: str) -> None:
    result = run
    go = cf.replay(result.logs)
    lenient = cf.replay(result.logs, mode="lenient")
    record = read_record(getattr(result, shape))
    res = reconcile(go, lenient, record)

    assert res.unexplained == 0, res.explanations.to_string()
    assert len(res.windows) == 2  # the crash and the restart
    # what each process appended, by its own count, is what the logs hold for its window
    assert _rebuilt(res, 1, APPENDS) == result.appended_a
    assert _rebuilt(res, 2, APPENDS) == result.appended_b
    # A crashed right after its last appends: the ones Prometheus never scraped, exactly
    late = result.appended_a - _exported(res, 1, APPENDS)
    assert late >= 1
    assert _count(res, 1, APPENDS, "not_scraped") == late
    # the torn write: its bytes, exactly, in the window of the append that completed it
    assert _count(res, 2, BYTES, "torn") == live.TORN[1]
    # A replayed 3 of 7 carts; B all 8, one of which stops on the long line
    assert _exported(res, 1, REPLAYS) == len(live.REPLAYED_BY_A)
    assert _count(res, 1, REPLAYS, "not_replayed") == len(live.PROCESS_A) - 3
    assert _count(res, 2, REPLAYS, "long_line") == 1
    # unknown types: 0 on the dashboard, the AddVoucher lines in the failures
    vouchers_a = sum(live.PROCESS_A[c][1] for c in live.REPLAYED_BY_A)
    assert _exported(res, 2, UNKNOWN) == 0
    assert _count(res, 1, UNKNOWN, "unknown_type") == vouchers_a
    assert _count(res, 2, UNKNOWN, "unknown_type") == live.UNKNOWN_LINES
    assert any("the dashboard showed 0 unknown types" in f and
               f"{live.UNKNOWN_LINES} lines of type AddVoucher" in f for f in res.findings)
    assert any("failed only because of a line over 256 KiB" in f for f in res.findings)
    # the restart left scrapes that failed
    assert len(res.gaps) >= 1

