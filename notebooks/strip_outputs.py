"""Strip a notebook's outputs: what git keeps of notebooks/*.ipynb.

Removes every cell's outputs and execution count, the run's cell metadata (``execution``
timings, ``scrolled``, ``collapsed``), the widget state JupyterLab can save into the
notebook's metadata and the kernel's version details (``language_info`` keeps its name), and writes the JSON the way the notebooks are kept (indent 1, UTF-8, a
final newline), so that stripping an executed notebook gives back the committed file.

    python notebooks/strip_outputs.py < executed.ipynb > stripped.ipynb   # a git clean filter
    python notebooks/strip_outputs.py --check notebooks/*.ipynb           # exit 1 if any has outputs
    python notebooks/strip_outputs.py --inplace notebooks/*.ipynb

With ``git config filter.notebook-outputs.clean "python notebooks/strip_outputs.py"`` (see
notebooks/README.md and .gitattributes) git stores every notebook stripped, whatever the
working copy holds, so running one in JupyterLab leaves ``git status`` clean.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RUN_METADATA = ("execution", "scrolled", "collapsed", "ExecuteTime")


def strip(nb: dict[str, Any]) -> dict[str, Any]:
    """The notebook without outputs, execution counts, run metadata or saved widget state."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in RUN_METADATA:
            meta.pop(key, None)
    meta = nb.get("metadata", {})
    meta.pop("widgets", None)
    if "language_info" in meta:  # a kernel fills in its version: keep the language's name
        meta["language_info"] = {"name": meta["language_info"].get("name", "python")}
    return nb


def text(nb: dict[str, Any]) -> str:
    """The notebook as the repository keeps it."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(text(strip(json.loads(sys.stdin.read()))))
        return 0
    mode, paths = argv[0], [Path(p) for p in argv[1:]]
    if mode not in ("--check", "--inplace") or not paths:
        print("usage: strip_outputs.py [--check | --inplace] NOTEBOOK...", file=sys.stderr)
        return 2
    dirty = []
    for p in paths:
        before = p.read_text(encoding="utf-8")
        after = text(strip(json.loads(before)))
        if after != before:
            dirty.append(str(p))
            if mode == "--inplace":
                p.write_text(after, encoding="utf-8")
    if dirty and mode == "--check":
        print("notebooks with outputs (python notebooks/strip_outputs.py --inplace them): "
              + ", ".join(dirty), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
