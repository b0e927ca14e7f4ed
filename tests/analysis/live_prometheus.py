"""The live setup of tests/analysis/test_reconcile_live.py: the seed's event_log.go behind a real
/metrics (tests/go/promservice), a real Prometheus scraping it every second, on 127.0.0.1 only.

``run_live(work)`` builds the service, writes a corpus with planted incidents through it (20
AddVoucher lines the reader does not know, a line over 256 KiB, a crash mid-write that leaves
a torn line), restarts it once, replays, and returns the logs and what Prometheus recorded
(a ``query`` answer of raw samples, a ``query_range`` answer and a ``promtool tsdb dump``).

    python tests/analysis/live_prometheus.py OUT   # OUT/logs, OUT/record.json, OUT/tsdb_dump.txt
                                                   # (c05's log, with the long line, gzipped)

(how ``sample_data/prometheus`` was made).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_DIR = Path(__file__).resolve().parents[1] / "go" / "promservice"
GOCODE = Path("/usr/share/gocode")
SELECTOR = '{job="cart",__name__=~"cart_event_log_.+_total|process_start_time_seconds|up"}'
MISSING = (
    "the live Prometheus test needs Debian's prometheus (2.42, with promtool) and "
    "golang-github-prometheus-client-golang-dev (client_golang in /usr/share/gocode), and Go "
    "on PATH: apt-get install -y prometheus golang-github-prometheus-client-golang-dev"
)
# the corpus: cart -> (lines, of which AddVoucher); c05 holds the long line
PROCESS_A = {"c01": (6, 2), "c02": (7, 3), "c03": (9, 3), "c04": (24, 4), "c05": (25, 0),
             "c06": (26, 4), "c07": (23, 0)}
REPLAYED_BY_A = ("c01", "c02", "c03")
TAIL_A = ("c06", 5)  # appended just before the crash: after Prometheus's last scrape of A
TORN = ("c07", 31)  # cart, bytes of the torn line
PROCESS_B = {"c07": (4, 0), "c08": (10, 4)}
UNKNOWN_LINES = 20
LONG_NAME = 300 * 1024


def missing() -> str | None:
    """Why the live setup cannot run here, or None."""
    for tool in ("prometheus", "promtool", "go"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH: {MISSING}"
    if not (GOCODE / "src/github.com/prometheus/client_golang/prometheus").is_dir():
        return f"client_golang not in {GOCODE}: {MISSING}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _item(n: int) -> dict[str, Any]:
    return {"sku": f"sku-{n % 5}", "quantity": 1 + n % 3, "price": 1000 + n, "name": f"item {n}"}


def _cart_ops(cart: str, lines: int, vouchers: int, start: int = 0) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    every = lines // vouchers if vouchers else 0
    for i in range(lines):
        n = start + i
        planted = sum(o["type"] == "AddVoucher" for o in ops)
        if vouchers and i % every == every - 1 and planted < vouchers:
            ops.append({"op": "append", "cart": cart, "type": "AddVoucher",
                        "payload": {"code": f"V{n}", "value": 500}})
        elif cart == "c05" and i == 12:
            ops.append({"op": "append", "cart": cart, "type": "AddItem",
                        "payload": {**_item(n), "name": "x" * LONG_NAME}})
        else:
            ops.append({"op": "append", "cart": cart, "type": "AddItem", "payload": _item(n)})
    return ops


def _paced(ops: list[dict[str, Any]], every: int = 10, ms: int = 250) -> list[dict[str, Any]]:
    out = []
    for i, o in enumerate(ops):
        out.append(o)
        if i % every == every - 1:
            out.append({"op": "sleep", "ms": ms})
    return out


def scripts() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The operations of process A (ends in a crash mid-write) and of process B."""
    first = [c for c in PROCESS_A if c in REPLAYED_BY_A]
    a = _paced([op for c in first for op in _cart_ops(c, *PROCESS_A[c])])
    a += [{"op": "replay", "cart": c} for c in REPLAYED_BY_A]
    a += _paced([op for c in PROCESS_A if c not in REPLAYED_BY_A
                 for op in _cart_ops(c, *PROCESS_A[c])])
    a.append({"op": "sleep", "ms": 2500})
    a += _cart_ops(TAIL_A[0], TAIL_A[1], 0, start=100)
    a.append({"op": "torn", "cart": TORN[0], "type": "AddItem", "payload": _item(999),
              "bytes": TORN[1]})
    b = _paced([op for c, (n, v) in PROCESS_B.items() for op in _cart_ops(c, n, v, start=200)])
    b += [{"op": "replay", "cart": c} for c in sorted({*PROCESS_A, *PROCESS_B})]
    return a, b


@dataclass
class LiveRun:
    logs: Path
    record_json: Path  # /api/v1/query of the raw samples (a matrix)
    range_json: Path  # /api/v1/query_range, step 1s
    dump: Path  # promtool tsdb dump
    appended_a: int  # appends process A made (its own count)
    appended_b: int


def _get(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _wait(cond: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _stop(p: subprocess.Popen[bytes] | None) -> None:
    if p is not None and p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def build(work: Path) -> Path:
    """The service, built in GOPATH mode: the seed's imports of the cart actor's packages
    resolve to a GOPATH in ``work`` holding the messages of the differential reference
    (tests/go/cfdiff/messages, docs/model.md) and the registry interface (promservice/actor);
    client_golang comes from Debian's Go source."""
    exe = work / "promservice"
    pkg = work / "gopath" / "src" / "git.tornberg.me" / "go-cart-actor" / "pkg"
    for name, source in (("messages", SERVICE_DIR.parent / "cfdiff" / "messages"),
                         ("actor", SERVICE_DIR / "actor")):
        (pkg / name).mkdir(parents=True, exist_ok=True)
        for f in source.glob("*.go"):
            shutil.copy(f, pkg / name / f.name)
    env = dict(os.environ, GO111MODULE="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOPATH=f"{work / 'gopath'}:{GOCODE}", GOFLAGS="")
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=SERVICE_DIR, env=env, check=True,
                   capture_output=True, timeout=300)
    return exe


def run_live(work: Path) -> LiveRun:
    """Run the whole setup in ``work`` (a fresh directory); every process is stopped before
    it returns."""
    exe = build(work)
    logs = work / "logs"
    logs.mkdir()
    a_ops, b_ops = scripts()
    (work / "a.jsonl").write_text("".join(json.dumps(o) + "\n" for o in a_ops))
    (work / "b.jsonl").write_text("".join(json.dumps(o) + "\n" for o in b_ops))
    svc, prom_port = free_port(), free_port()
    (work / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
        "scrape_configs:\n  - job_name: cart\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{svc}']\n")
    tsdb = work / "tsdb"
    prom = a = b = None
    t0 = time.time()
    try:
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={tsdb}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("wb"))
        _wait(lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{prom_port}/-/ready", timeout=2).status == 200, 30, "Prometheus")
        # the scrape manager takes its targets a few seconds after ready: wait for ours
        _wait(lambda: _get(prom_port, "/api/v1/targets")["data"]["activeTargets"], 20,
              "Prometheus to take the target")
        run = [str(exe), "-listen", f"127.0.0.1:{svc}", "-dir", str(logs), "-script"]
        a = subprocess.Popen([*run, str(work / "a.jsonl")], stdout=subprocess.PIPE)
        out_a, _ = a.communicate(timeout=60)
        if a.returncode != 3:
            raise RuntimeError(f"process A ended with {a.returncode}, not the crash (3)")
        time.sleep(2.0)  # down: Prometheus's scrapes fail, and the restart is a new second
        b = subprocess.Popen([*run, str(work / "b.jsonl")], stdout=subprocess.PIPE)
        assert b.stdout is not None
        out_b = b""
        while not out_b.endswith(b"idle\n"):
            chunk = b.stdout.readline()
            if not chunk:
                raise RuntimeError("process B ended before it was idle")
            out_b += chunk
        idle = time.time()

        def scraped_after_idle() -> bool:
            res = _get(prom_port, "/api/v1/query",
                       query='timestamp(cart_event_log_replay_total{job="cart"})')
            # the latest sample's own time: two scrapes after the replays at least, over a
            # second apart, so that a query_range step of 1 s lands on one
            return any(float(r["value"][1]) > idle + 2 for r in res["data"]["result"])

        _wait(scraped_after_idle, 20, "scrapes of process B after its replays")
        _stop(b)
        end = time.time()
        span = f"{int(end - t0) + 5}s"
        record = _get(prom_port, "/api/v1/query", query=f"{SELECTOR}[{span}]", time=f"{end:.3f}")
        rng = _get(prom_port, "/api/v1/query_range", query=SELECTOR, start=f"{t0 - 2:.3f}",
                   end=f"{end:.3f}", step="1")
        _stop(prom)
        dump = subprocess.run(["promtool", "tsdb", "dump", f"--match={SELECTOR}", str(tsdb)],
                              capture_output=True, check=True, timeout=60).stdout
    finally:
        _stop(a)
        _stop(b)
        _stop(prom)
    (work / "record.json").write_text(json.dumps(record))
    (work / "range.json").write_text(json.dumps(rng))
    (work / "tsdb_dump.txt").write_bytes(dump)
    return LiveRun(logs, work / "record.json", work / "range.json", work / "tsdb_dump.txt",
                   out_a.count(b"append "), out_b.count(b"append "))


if __name__ == "__main__":
    import gzip
    import tempfile

    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        live = run_live(Path(tmp))
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(live.logs, out / "logs", dirs_exist_ok=True)
        long_log = out / "logs" / "c05.events.log"  # the 300 KiB line: kept gzipped
        Path(f"{long_log}.gz").write_bytes(gzip.compress(long_log.read_bytes(), mtime=0))
        long_log.unlink()
        shutil.copy(live.record_json, out / "record.json")
        shutil.copy(live.dump, out / "tsdb_dump.txt")
    print(out)
