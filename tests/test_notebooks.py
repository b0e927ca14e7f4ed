"""The notebooks in notebooks/ run top to bottom in a fresh kernel, and are kept without outputs.

Outputs are never committed: every notebook is kept stripped (``notebooks/strip_outputs.py
--check``; .gitattributes names it as git's clean filter for notebooks, see notebooks/README.md),
stripping an executed notebook gives back exactly the committed file, and a run writes nothing
into the repository (the tests execute copies in memory; the notebooks write to temporary
directories). Each notebook's story is checked: the figures its cells tagged ``story`` show
are compared with the same figures counted here from the replays.

Each notebook is executed with nbclient in a new ``python3`` (ipykernel) kernel whose working
directory is notebooks/, as JupyterLab would start it; any cell error fails the test. The
kernel gets the repository root first on PYTHONPATH, so it imports this tree's
``cartforensics`` whether or not the package is installed (CI installs it editable).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
EXPECTED = [
    "01_quickstart.ipynb",
    "02_incident_postmortem.ipynb",
    "03_fleet_health.ipynb",
    "04_parquet_at_scale.ipynb",
    "05_sql.ipynb",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
CELL_TIMEOUT = 120  # seconds per cell
# how long each notebook took, kept for reading (no threshold here: a unit test asserts work,
# not wall-clock time on a shared machine; the "under a minute" figure is a benchmark's)
SECONDS = ROOT / "test-artifacts" / "notebook_seconds.json"
# a private name of the package (cf._x, cartforensics.mod._x, from cartforensics import _x,
# a module cartforensics._x); dunders such as cf.__version__ are public
PRIVATE = re.compile(
    r"\b(?:cf|cartforensics)(?:\.[A-Za-z]\w*)*\._(?!_)\w"
    r"|\bfrom\s+cartforensics(?:\.\w+)*\s+import\s+[^\n]*\b_(?!_)\w"
)


@functools.cache
def _counts() -> dict[str, object]:
    """What the notebooks' tagged ("story") cells claim about sample_data/, computed here
    straight from the replays (not through the functions the notebooks call for them)."""
    import cartforensics as cf

    ev = cf.read_events(ROOT / "sample_data", progress=False)
    go, le = cf.replay(ev), cf.replay(ev, mode="lenient")
    out = {m: r.outcomes["outcome"].astype(str) for m, r in (("go", go), ("le", le))}
    has_ts = go.outcomes["ts"].notna()
    failed = {m: o.isin(["malformed", "unknown_type", "too_long"]) for m, o in out.items()}
    meant = [c for c in le.cart_ids if le.final_state(c)["items"]]
    return {
        "lines": len(ev), "carts": len(go.cart_ids), "meant": len(meant),
        "empty": sum(1 for c in meant if not go.final_state(c)["items"]),
        "applied_go": int((out["go"] == "applied").sum()),
        "applied_le": int((out["le"] == "applied").sum()),
        "failed_go": f"{(failed['go'] & has_ts).sum() / has_ts.sum():.1%}",
        "failed_le": f"{(failed['le'] & has_ts).sum() / has_ts.sum():.1%}",
        "files": len(list((ROOT / "sample_data").glob("*.events.log*"))),
    }


# per notebook: what its "story" cells say, and the figures it must say
STORIES = {
    "01_quickstart.ipynb": [(
        r"The service applied \*\*([\d,]+)\*\* of ([\d,]+) lines .*?Read as the writer meant "
        r"them, \*\*([\d,]+)\*\* apply",
        lambda c: (f"{c['applied_go']:,}", f"{c['lines']:,}", f"{c['applied_le']:,}"))],
    "02_incident_postmortem.ipynb": [(
        r"Of \*\*(\d+)\*\* carts, the writer meant \*\*(\d+)\*\* to hold items\. The service "
        r"rebuilt \*\*(\d+)\*\* of them with no items at all",
        lambda c: (str(c["carts"]), str(c["meant"]), str(c["empty"])))],
    "03_fleet_health.ipynb": [(
        r"the service failed \*\*([\d.]+%)\*\* of them; a reader that accepts the writer's "
        r"format would fail ([\d.]+%)",
        lambda c: (c["failed_go"], c["failed_le"]))],
    "04_parquet_at_scale.ipynb": [(
        r"restore verified (\d+) of (\d+) files; hashed again here, (\d+) restored files and "
        r"(\d+) original files match",
        lambda c: (str(c["files"]),) * 4)],
    "05_sql.ipynb": [(
        r"SQL and pandas agree: the service applied \*\*([\d,]+)\*\* of ([\d,]+) lines; read "
        r"as the writer meant them, \*\*([\d,]+)\*\* apply",
        lambda c: (f"{c['applied_go']:,}", f"{c['lines']:,}", f"{c['applied_le']:,}"))],
}


def _story_text(nb) -> str:
    """The text every cell tagged "story" showed (markdown, plain text, printed)."""
    parts = []
    for cell in nb.cells:
        if "story" not in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts.append(out.get("text", "") or data.get("text/markdown", "")
                         or data.get("text/plain", ""))
    return "\n".join(parts)


def _need(module: str):
    """Import ``module``; skip without it locally, fail in CI (the test extra installs it)."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def _staged(path: Path) -> str | None:
    """The notebook's text as git's index holds it (what a commit takes), None if untracked."""
    try:
        proc = subprocess.run(
            ["git", "show", f":{path.relative_to(ROOT).as_posix()}"],
            cwd=ROOT, capture_output=True, check=False,
        )
    except OSError:
        return None
    return proc.stdout.decode("utf-8") if proc.returncode == 0 else None


def _dirty_cells(nb: dict) -> list[int]:
    return [
        i for i, cell in enumerate(nb["cells"], 1)
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]


def test_the_notebooks_are_there() -> None:
    assert set(EXPECTED) <= {p.name for p in NOTEBOOKS}


def _strip_module():
    sys.path.insert(0, str(NB_DIR))
    try:
        return importlib.import_module("strip_outputs")
    finally:
        sys.path.remove(str(NB_DIR))


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (caches left out): size and modification time."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and ".ipynb_checkpoints" not in p.parts}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_says_what_the_analyst_will_learn(path: Path) -> None:
    first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    assert first["cell_type"] == "markdown"
    title, sentence = "".join(first["source"]).split("\n\n")[:2]
    assert title.startswith("# ") and sentence.startswith("**You will learn** how to ")


def test_the_strip_check_and_gits_clean_filter_cover_every_notebook() -> None:
    proc = subprocess.run([sys.executable, str(NB_DIR / "strip_outputs.py"), "--check",
                           *map(str, NOTEBOOKS)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    attrs = subprocess.run(["git", "check-attr", "filter", "--",
                            *[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS]],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    if attrs.returncode == 0:  # a checkout (a source archive has no git)
        assert attrs.stdout.count(": filter: notebook-outputs") == len(NOTEBOOKS), attrs.stdout
    # a notebook with outputs, widget state and a kernel's details: --check fails on it,
    # the filter (stdin to stdout) strips it
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    clean = _strip_module().text(nb)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    code["execution_count"] = 3
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.2"}
    dirty = json.dumps(nb, indent=1)
    filtered = subprocess.run([sys.executable, str(NB_DIR / "strip_outputs.py")], input=dirty,
                              capture_output=True, text=True, check=True)
    assert filtered.stdout == clean


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path: Path) -> None:
    """No outputs and no execution counts: in the file, and in git's index."""
    versions = {"working tree": path.read_text(encoding="utf-8")}
    staged = _staged(path)
    if staged is not None:
        versions["git index"] = staged
    for where, text in versions.items():
        nb = json.loads(text)
        dirty = _dirty_cells(nb)
        assert not dirty, (
            f"{path.name} ({where}): cells {dirty} have outputs or an execution count; strip "
            "them before committing: jupyter nbconvert --clear-output --inplace "
            "notebooks/*.ipynb"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_metadata_and_public_api(path: Path) -> None:
    nbformat = _need("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert dict(nb.metadata.get("kernelspec", {})) == KERNELSPEC
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code":
            hit = PRIVATE.search(cell.source)
            assert hit is None, f"{path.name} cell {i} uses a private name: {hit.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = _need("nbformat")
    nbclient = _need("nbclient")
    _need("ipykernel")
    # the kernel is a child process: it inherits this environment
    path_env = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path_env])))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet the debugger warning
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebooks use the inline backend
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(NB_DIR)}},
    )
    before = _tree(ROOT / "notebooks"), sorted(p.name for p in ROOT.iterdir())
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on an error
    elapsed = time.perf_counter() - start
    errors = [
        (i, out.get("ename"), out.get("evalue"))
        for i, cell in enumerate(nb.cells, 1) if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: cell errors {errors}"
    # the story it tells: the figures its tagged cells show are those counted here
    story = _story_text(nb)
    counted = _counts()
    for pattern, want in STORIES[path.name]:
        hit = re.search(pattern, story, flags=re.S)
        assert hit is not None, f"{path.name}: no tagged cell says {pattern!r}:\n{story}"
        assert hit.groups() == want(counted), (path.name, pattern)
    # the run wrote nothing into the repository, and stripped it is the committed file
    assert (_tree(ROOT / "notebooks"), sorted(p.name for p in ROOT.iterdir())) == before
    executed = json.loads(nbformat.writes(nb))
    assert _strip_module().text(_strip_module().strip(executed)) == path.read_text(
        encoding="utf-8")
    SECONDS.parent.mkdir(exist_ok=True)
    seconds = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    seconds[path.name] = round(elapsed, 1)
    SECONDS.write_text(json.dumps(seconds, indent=1, sort_keys=True) + "\n")
