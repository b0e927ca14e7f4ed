"""Mutation fuzzing against Go: real log lines mutated at the byte level, replayed by us and by
``cfdiff`` (the seed's reader under real Go), compared line by line and cart by cart.

A fixed-seed slice runs in every test run. ``CARTFORENSICS_FUZZ_SECONDS=N`` runs batch after
batch with new seeds for N seconds more (by hand). Every disagreement ever found is kept in
``tests/go/fuzz_cases.jsonl`` (one cart file a line, base64) and replayed by
:func:`test_fuzz_regression_cases_agree_with_go` forever after. A tally of what was compared
goes to ``test-artifacts/fuzz_tally.json``.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import time
from pathlib import Path

from conftest import GoRef, run_cfdiff

from cartforensics import read_events, replay
from cartforensics.analysis.streaming import replay_records

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).parent / "fuzz_cases.jsonl"
TALLY = ROOT / "test-artifacts" / "fuzz_tally.json"
CI_SEEDS = range(20)  # the fixed slice: 20 batches of 60 carts, about 11,000 lines a mode
CARTS_PER_BATCH = 60
STATES_COMPARED: dict[str, int] = {}  # per toolchain: (line, mode) states compared with Go's

_NUM_TS = re.compile(rb'^\{"ts":(-?[0-9]+),')
TOKENS = [b'"', b"}", b"{", b"]", b"[", b",", b":", b"null", b"1e309", b"-0", b"\\u017f",
          "\u017f".encode(), "\u212a".encode(), b"\xe2\x82", b"\xff", b"\\", b"\\u00", b" ", b"\r",
          b"\n", b"\t", b"true", b"0.5", b"\xef\xbb\xbf", b"\\ud800", b"\x00"]
NUMBERS = [b"0", b"-1", b"1", b"2147483648", b"-2147483649", b"4294967296",
           b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
           b"18446744073709551616", b"1.5", b"1e2", b"1E+2", b"-0", b"00", b"1e-7",
           b"253402300800", b"99999999999999", b"1e19"]


def base_lines() -> list[list[bytes]]:
    """The committed corpus' carts, each twice: as written (numeric ts) and with RFC 3339
    string ts, so that go mode reaches the handlers too."""
    carts: list[list[bytes]] = []
    for p in sorted((ROOT / "sample_data").glob("*.events.log")):
        lines = p.read_bytes().split(b"\n")[:-1]
        if not lines:
            continue
        carts.append(lines)
        strung = []
        for ln in lines:
            m = _NUM_TS.match(ln)
            if m:
                secs = int(m.group(1))
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs)).encode()
                ln = b'{"ts":"' + stamp + b'",' + ln[m.end():]
            strung.append(ln)
        carts.append(strung)
    return carts


def _bomb(rng: random.Random) -> bytes:
    depth = rng.choice([9_997, 9_998, 9_999, 10_000, 10_001, 20_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    inner = b"1" if opener != b"[" else b""
    closed = rng.random() < 0.8
    return opener * depth + inner + (closer * depth if closed else b"")


def mutate(line: bytes, other: bytes, rng: random.Random) -> bytes:
    """One byte-level mutation of ``line`` (``other`` is a second line to splice with)."""
    n = len(line)
    kind = rng.randrange(11)
    at = rng.randrange(n + 1) if n else 0
    if kind == 0 and n:  # flip a bit
        i = rng.randrange(n)
        return line[:i] + bytes([line[i] ^ (1 << rng.randrange(8))]) + line[i + 1:]
    if kind == 1:  # insert a random byte
        return line[:at] + bytes([rng.randrange(256)]) + line[at:]
    if kind == 2 and n:  # delete a span
        j = min(n, at + rng.randrange(1, 12))
        return line[:at] + line[j:]
    if kind == 3 and n:  # duplicate a span
        j = min(n, at + rng.randrange(1, 40))
        return line[:j] + line[at:j] + line[j:]
    if kind == 4:  # splice two lines
        k = rng.randrange(len(other) + 1)
        return line[:at] + other[k:]
    if kind == 5:  # change a key's case (Go matches keys case-insensitively)
        keys = [m.start() + 1 for m in re.finditer(rb'"[A-Za-z_]+":', line)]
        if keys:
            i = rng.choice(keys)
            return line[:i] + line[i:i + 1].swapcase() + line[i + 1:]
    if kind == 6:  # change a number
        nums = list(re.finditer(rb"-?[0-9]+", line))
        if nums:
            m = rng.choice(nums)
            return line[:m.start()] + rng.choice(NUMBERS) + line[m.end():]
    if kind == 7:  # a hostile token
        return line[:at] + rng.choice(TOKENS) + line[at:]
    if kind == 8:  # a nesting bomb in place of a value
        vals = list(re.finditer(rb'(?<=:)(?:"[^"]*"|-?[0-9.]+|\{\}|null|true|false)', line))
        if vals:
            m = rng.choice(vals)
            return line[:m.start()] + _bomb(rng) + line[m.end():]
        return _bomb(rng)
    if kind == 9:  # glue: the next line follows without its newline
        return line + other
    return line + b"\r" if rng.random() < 0.5 else b""  # CRLF, or a blank line


def make_batch(seed: int, carts: list[list[bytes]], d: Path) -> list[Path]:
    """Write CARTS_PER_BATCH mutated cart files for ``seed`` into ``d``."""
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    files = []
    flat = [ln for c in carts for ln in c]
    for k in range(CARTS_PER_BATCH):
        src = rng.choice(carts)
        lines = []
        for ln in src[:20]:
            r = rng.random()
            if r < 0.35:
                for _ in range(rng.choice([1, 1, 1, 2, 3])):
                    ln = mutate(ln, rng.choice(flat), rng)
            lines.append(ln)
        data = b"\n".join(lines)
        if rng.random() < 0.85:  # mostly the writer's final newline; sometimes a torn end
            data += b"\n"
        path = d / f"fz{seed}-{k:03d}.events.log"
        path.write_bytes(data)
        files.append(path)
    return files


def compare(ref: GoRef, files: list[Path]) -> tuple[int, int, list[str]]:
    """Replay ``files`` in both modes on both sides, as the toolchain of ``ref``: every line's
    record, every cart's record and the state after every line (``cfdiff replay --states
    all`` against ``state_at(line=n)``); (lines, carts, mismatching cart ids)."""
    events = read_events([str(f) for f in files], progress=False, go_version=ref.go_version)
    lines = carts = 0
    bad: set[str] = set()
    for mode in ("go", "lenient"):
        out = run_cfdiff(ref, "replay", "--mode", mode, "--states", "all", *map(str, files))
        want = [x for x in out if "after" not in x]
        r = replay(events, mode=mode)
        got = list(replay_records(r))
        assert len(got) == len(want), (mode, len(got), len(want))
        for a, b in zip(got, want, strict=True):
            if "state" in b:
                carts += 1
            else:
                lines += 1
            if a != b:
                bad.add(b["cart_id"])
        states = [x for x in out if "after" in x]
        for x in states:
            if r.state_at(x["cart_id"], line=x["after"]) != x["state"]:
                bad.add(x["cart_id"])
        STATES_COMPARED[ref.id] = STATES_COMPARED.get(ref.id, 0) + len(states)
    return lines, carts, sorted(bad)


def _record(found: dict[str, bytes]) -> None:
    """Keep every disagreement as a permanent regression case."""
    have = {case["b64"] for case in _cases()}
    with CASES.open("a") as fh:
        for cid, data in sorted(found.items()):
            b64 = base64.b64encode(data).decode()
            if b64 not in have:
                fh.write(json.dumps({"found_as": cid, "b64": b64}) + "\n")


def _tally(lines: int, carts: int, seconds: float) -> None:
    TALLY.parent.mkdir(exist_ok=True)
    old = json.loads(TALLY.read_text()) if TALLY.exists() else {"lines": 0, "carts": 0, "runs": 0}
    old.update(lines=old["lines"] + lines, carts=old["carts"] + carts, runs=old["runs"] + 1,
               last={"lines": lines, "carts": carts, "seconds": round(seconds, 1)})
    TALLY.write_text(json.dumps(old, indent=1) + "\n")


def test_mutation_fuzz_agrees_with_go(go_ref: GoRef, tmp_path: Path) -> None:
    carts = base_lines()
    extra = float(os.environ.get("CARTFORENSICS_FUZZ_SECONDS", "0") or 0)
    t0 = time.monotonic()
    seeds: list[int] = list(CI_SEEDS)
    total_lines = total_carts = 0
    found: dict[str, bytes] = {}
    s = 0
    while s < len(seeds) or time.monotonic() - t0 < extra:
        seed = seeds[s] if s < len(seeds) else 1_000 + s + int(t0)
        d = tmp_path / f"seed{seed}"
        files = make_batch(seed, carts, d)
        lines, n_carts, bad = compare(go_ref, files)
        total_lines += lines
        total_carts += n_carts
        for cid in bad:
            found[cid] = (d / f"{cid}.events.log").read_bytes()
        s += 1
    _tally(total_lines, total_carts, time.monotonic() - t0)
    if found:
        _record(found)
    assert not found, f"{len(found)} carts disagree with Go (kept in {CASES}): {sorted(found)}"
    assert total_lines > 1_000  # the slice really compared something


def _cases() -> list[dict]:
    if not CASES.exists():
        return []
    return [json.loads(x) for x in CASES.read_text().splitlines() if x.strip()]


def test_fuzz_regression_cases_agree_with_go(go_ref: GoRef, tmp_path: Path) -> None:
    assert _cases(), f"{CASES} lost its cases"
    files = []
    for k, case in enumerate(_cases()):
        p = tmp_path / f"case{k:04d}.events.log"
        p.write_bytes(base64.b64decode(case["b64"]))
        files.append(p)
    _, _, bad = compare(go_ref, files)
    assert not bad
