"""A dataset's ``manifest.json`` is untrusted input: its schema, checked before any field is used.

:func:`parse_manifest` reads the bytes (nesting depth bounded while parsing: no
RecursionError), tells a manifest of ours from any other JSON, and :func:`check_manifest`
checks every field a reader or a writer uses: types, sizes, hashes, paths (relative, no
``..``, a log's name; ``fragments`` only ``events/date=D/part-R-B.parquet`` or
``carts/part-R-B.parquet``), the compression a name implies. A manifest that
breaks it raises :class:`ManifestError`, a :class:`DatasetError` (a ``ValueError``) whose one
line says where and what (the command line prints it as ``cartforensics: ...``, exit 2).

>>> try:
...     check_manifest({"format": "cartforensics-dataset", "schema_version": 1, "files": [
...         {"path": "a.events.log", "cart_id": "a", "fragments": ["../x"]}]}, "m.json")
... except ManifestError as e:
...     print(str(e)[:55])
m.json: files[0].fragments[0] is '../x', not a fragment
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import orjson

from cartforensics.go.version import semantics
from cartforensics.io.logs import GZ_SUFFIX, LOG_SUFFIX, name_text

FORMAT = "cartforensics-dataset"
MAX_DEPTH = 16  # a manifest of ours nests 4 deep (files[i].fragments[j], runs[i].reconverted)
MAX_COUNT = 1 << 62  # sizes, lines and runs: beyond any file system
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_FRAGMENT = re.compile(
    r"(?:events/date=(?:\d{4}-\d{2}-\d{2}|" + _NULL_PARTITION + r")|carts)"
    r"/part-\d{4,9}-\d{5,9}\.parquet"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX_DIGITS = b"0123456789abcdef"
# a plain relative path (safe_relative) of a *.events.log or *.events.log.gz file, not named
# only by the suffix (what _log_path accepts)
_LOG_PATH = re.compile(r"(?:(?!\.\.?/)[^/\0\\]+/)*[^/\0\\]+"
                       + f"(?:{re.escape(LOG_SUFFIX)}|{re.escape(GZ_SUFFIX)})")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_FIX = ("the manifest was damaged or edited: convert the logs anew (a full convert "
        "replaces the dataset)")


class DatasetError(ValueError):
    """A path is not a cartforensics dataset, or cannot be used as one."""


class ManifestError(DatasetError):
    """A manifest of ours whose content breaks its schema (one line: where, what)."""


def _shown(value: Any) -> str:
    """A value from the manifest as one short, escaped line (ascii: no control characters)."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number",
            str: "a string", list: "a list", dict: "an object"}.get(type(value), "a value")


def parse_manifest(data: bytes, where: str, check: bool = True) -> dict[str, Any] | None:
    """The manifest in ``data`` when it is one of ours (checked: :func:`check_manifest`,
    unless ``check`` is false: only to know whose it is); None when it is not JSON, not an
    object, or another program's (no ``format`` of ours).

    >>> parse_manifest(b'{"format": "other"}', "m.json") is None
    True
    """
    try:
        # orjson stops at 1024 levels with a ValueError (json.loads recurses in C and Python)
        doc = orjson.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    if check:
        check_manifest(doc, where)
    return doc


def _depth_ok(doc: Any, where: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH: read from the JSON text of ``doc`` when orjson
    writes it (:func:`_container_depth`), else (or when it comes near) walked node by node."""
    depth = _container_depth(doc)
    if depth is None or depth >= MAX_DEPTH:
        _depth_walked(doc, where)


def _depth_walked(doc: Any, where: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH (every node walked, without recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ManifestError(f"{where}: nested more than {MAX_DEPTH} levels deep; {_FIX}")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


_BRACKETS = b'"[]{}'
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEP = np.zeros(256, np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


def _container_depth(doc: Any) -> int | None:
    """How deep lists and objects nest in ``doc`` (``doc`` itself, a container: 1; a scalar:
    0), counted over the brackets of its JSON text outside strings; None when orjson cannot
    write it (a key that is no string, a number beyond 64 bits, nesting beyond its limit).

    >>> _container_depth({"a": [1, {"b": "[[x"}], "c": []}), _container_depth(['\\\\"[{'])
    (3, 1)
    """
    try:
        text = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return None
    # in JSON text a backslash is found only in a string, where each opens one escape: the
    # escaped backslashes, then the escaped quotes, taken out leave the strings' own quotes
    if b"\\" in text:
        text = text.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    kept = np.frombuffer(text.translate(None, _NOT_BRACKETS), np.uint8)
    if not len(kept):
        return 0
    outside = (np.cumsum(kept == ord('"'), dtype=np.int64) & 1) == 0
    return max(int(np.cumsum(np.where(outside, _STEP[kept], 0), dtype=np.int64).max()), 0)


def _count(value: Any, name: str, where: str, null: bool = True) -> None:
    if value is None and null:
        return
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        what = _kind(value) if type(value) is not int else _shown(value)
        raise ManifestError(f"{where}: {name} is {what}, expected a whole number (0 or more, "
                            f"below 2**62); {_FIX}")


def _text(value: Any, name: str, where: str, null: bool = True) -> None:
    if (value is None and null) or isinstance(value, str):
        return
    raise ManifestError(f"{where}: {name} is {_kind(value)}, expected a string; {_FIX}")


def safe_relative(rel: str) -> bool:
    """Whether ``rel`` is a plain relative path: not empty, not absolute, no ``..``, ``.`` or
    empty part, no NUL or backslash.

    >>> safe_relative("a/b.events.log"), safe_relative("../b"), safe_relative("/etc/passwd")
    (True, False, False)
    """
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _log_path(value: Any, name: str, where: str) -> str:
    _text(value, name, where, null=False)
    if not safe_relative(value) or not value.endswith((LOG_SUFFIX, GZ_SUFFIX)) or \
            value.split("/")[-1] in (LOG_SUFFIX, GZ_SUFFIX):
        raise ManifestError(f"{where}: {name} is {_shown(value)}, not the relative path of a "
                            f"*{LOG_SUFFIX} or *{GZ_SUFFIX} file; {_FIX}")
    return value


def _check_entry(e: Any, at: str, where: str) -> str:
    if not isinstance(e, dict):
        raise ManifestError(f"{where}: {at} is {_kind(e)}, expected an object; {_FIX}")
    raw = e.get("path_bytes")
    if raw is None:
        path = _log_path(e.get("path"), f"{at}.path", where)
    else:  # a name that is not UTF-8: path is its text (with \xNN), path_bytes the name
        _text(e.get("path"), f"{at}.path", where, null=False)
        path = e["path"]
        if not isinstance(raw, str) or not _HEX.fullmatch(raw):
            raise ManifestError(f"{where}: {at}.path_bytes is {_shown(raw)}, expected the hex "
                                f"of the file name's bytes; {_FIX}")
        name = _log_path(os.fsdecode(bytes.fromhex(raw)), f"{at}.path_bytes", where)
        if name_text(name) != path:
            raise ManifestError(f"{where}: {at}.path_bytes {_shown(raw)} is not the bytes of "
                                f"its path {_shown(path)}; {_FIX}")
    _text(e.get("cart_id"), f"{at}.cart_id", where, null=False)
    gz = path.endswith(GZ_SUFFIX)
    comp = e.get("compression")
    if comp != ("gzip" if gz else None):
        raise ManifestError(f"{where}: {at}.compression is {_shown(comp)} for "
                            f"{_shown(path)}; a *{GZ_SUFFIX} file is \"gzip\", any other "
                            f"null; {_FIX}")
    for key in ("size", "content_size", "converted_bytes", "lines", "run"):
        _count(e.get(key), f"{at}.{key}", where)
    for key in ("sha256", "content_sha256"):
        h = e.get(key)
        if h is not None and not (isinstance(h, str) and _SHA256.fullmatch(h)):
            raise ManifestError(f"{where}: {at}.{key} is {_shown(h)}, expected 64 lowercase "
                                f"hex digits or null; {_FIX}")
    if e.get("content_sha256") is not None:
        _count(e.get("content_size"), f"{at}.content_size", where, null=False)
    if not isinstance(e.get("newline_at_end", True), bool):
        raise ManifestError(f"{where}: {at}.newline_at_end is {_kind(e['newline_at_end'])}, "
                            f"expected true or false; {_FIX}")
    for key in ("problems", "fragments"):
        items = e.get(key, [])
        if not isinstance(items, list):
            raise ManifestError(f"{where}: {at}.{key} is {_kind(items)}, expected a list; "
                                f"{_FIX}")
        for j, item in enumerate(items):
            _text(item, f"{at}.{key}[{j}]", where, null=False)
            if key == "fragments" and not _FRAGMENT.fullmatch(item):
                raise ManifestError(
                    f"{where}: {at}.fragments[{j}] is {_shown(item)}, not a fragment of the "
                    "dataset (events/date=YYYY-MM-DD/part-R-B.parquet or "
                    f"carts/part-R-B.parquet); {_FIX}")
    return path


def _entries_plain(files: list[Any]) -> bool:
    """Whether every entry of ``files`` passes :func:`_check_entry`, checked a field at a time
    over all entries (C loops, no call per entry); a sufficient test: False may still be a
    good manifest (a name given as ``path_bytes``, a subclass of a type), which the entries
    checked one by one then decide.

    >>> _entries_plain([{"path": "a.events.log", "cart_id": "a"}]), _entries_plain([{}])
    (True, False)
    """
    if set(map(type, files)) - {dict}:
        return False

    def column(key: str, default: Any = None) -> list[Any]:
        return [e.get(key, default) for e in files]

    def kinds(values: list[Any]) -> set[type]:
        return set(map(type, values))

    paths = column("path")
    if kinds(paths) - {str} or kinds(column("cart_id")) - {str} or \
            any(v is not None for v in column("path_bytes")) or \
            not all(map(_LOG_PATH.fullmatch, paths)):
        return False
    gz = [p.endswith(GZ_SUFFIX) for p in paths]
    if column("compression") != [("gzip" if z else None) for z in gz]:
        return False
    for key in ("size", "content_size", "converted_bytes", "lines", "run"):
        values = column(key)
        if kinds(values) - {int, type(None)}:
            return False
        counts = [v for v in values if v is not None]
        if counts and (min(counts) < 0 or max(counts) > MAX_COUNT):
            return False
    for key in ("sha256", "content_sha256"):
        values = column(key)
        if kinds(values) - {str, type(None)}:
            return False
        hashes = [v for v in values if v is not None]
        digits = "".join(hashes)
        if set(map(len, hashes)) - {64} or not digits.isascii() or \
                digits.encode("ascii").translate(None, _HEX_DIGITS):
            return False
    if any(h is not None and s is None for h, s in zip(column("content_sha256"),
                                                       column("content_size"), strict=True)):
        return False
    if kinds(column("newline_at_end", True)) - {bool}:
        return False
    for key in ("problems", "fragments"):
        lists = column(key, [])
        if kinds(lists) - {list}:
            return False
        items = [item for one in lists for item in one]
        if kinds(items) - {str}:
            return False
        if key == "fragments" and not all(map(_FRAGMENT.fullmatch, items)):
            return False
    return True


def check_manifest(doc: dict[str, Any], where: str) -> None:
    """Raise :class:`ManifestError` unless every field of the manifest ``doc`` has its type,
    its bounds and (paths) stays inside the dataset; ``where`` names it in the message."""
    _depth_ok(doc, where)
    if type(doc.get("schema_version")) is not int:
        raise ManifestError(f"{where}: schema_version is {_kind(doc.get('schema_version'))}, "
                            f"expected a number; {_FIX}")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ManifestError(f"{where}: files is {_kind(files)}, expected a list of file "
                            f"entries; {_FIX}")
    for key in ("package_version", "source"):
        _text(doc.get(key), key, where)
    gv = doc.get("go_version")
    _text(gv, "go_version", where)
    if gv is not None:
        try:
            semantics(gv)
        except ValueError:
            raise ManifestError(f"{where}: go_version is {_shown(gv)}, not a Go version this "
                                f"package models; {_FIX}") from None
    for key in ("run", "lines"):
        _count(doc.get(key), key, where)
    for key, kind in (("runs", list), ("layout", dict)):
        if key in doc and not isinstance(doc[key], kind):
            raise ManifestError(f"{where}: {key} is {_kind(doc[key])}, expected "
                                f"{_kind(kind())}; {_FIX}")
    if any(not isinstance(r, dict) for r in doc.get("runs", [])):
        raise ManifestError(f"{where}: runs holds something other than objects; {_FIX}")
    plain = _entries_plain(files)  # else each entry checked in turn: the first bad one raises
    seen: set[str] = set()
    dirs: set[str] = set()
    for i, e in enumerate(files):
        path = e["path"] if plain else _check_entry(e, f"files[{i}]", where)
        if path in seen:
            raise ManifestError(f"{where}: files[{i}].path {_shown(path)} is listed twice; "
                                f"{_FIX}")
        seen.add(path)
        while "/" in path:
            path = path.rpartition("/")[0]
            dirs.add(path)
    clash = seen & dirs
    if clash:
        raise ManifestError(f"{where}: {_shown(min(clash))} is both a file and a folder of "
                            f"other files; {_FIX}")
