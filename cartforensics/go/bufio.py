"""Cut a log into physical lines exactly as the service's ``bufio.Scanner`` sees them.

The seed scans with ``ScanLines``, a 64 KiB initial buffer and a 256 KiB maximum token. A token
is the bytes before ``\\n`` with one trailing ``\\r`` dropped; a final fragment without ``\\n`` is
a token too; empty lines are tokens. The first line whose bytes before ``\\n`` (a ``\\r`` counted)
do not fit the 262,144-byte buffer stops the scanner with ``bufio.ErrTooLong``.

>>> cut = split_lines(b'a\\r\\n\\nlast')
>>> cut.starts.tolist(), cut.lengths.tolist(), cut.newline.tolist()
([0, 3, 4], [2, 0, 4], [True, True, False])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TOKEN_SIZE = 256 * 1024  # the seed's scanner.Buffer(buf, 256*1024)
INITIAL_BUFFER = 64 * 1024


@dataclass(frozen=True)
class LineCut:
    """Physical lines of one file: byte ``starts``, ``lengths`` (without the ``\\n``, with any
    ``\\r``), ``newline`` (ended by ``\\n``) and the index of the line that stops Go's scanner."""

    starts: np.ndarray
    lengths: np.ndarray
    newline: np.ndarray
    too_long_index: int | None

    def __len__(self) -> int:
        return len(self.starts)


def split_lines(data: bytes, max_token_size: int | None = MAX_TOKEN_SIZE) -> LineCut:
    """Split ``data`` into physical lines; ``max_token_size=None`` means no scanner limit."""
    nl = newline_positions(data)
    n_full = len(nl)
    has_tail = (nl[-1] + 1 if n_full else 0) < len(data)
    n = n_full + (1 if has_tail else 0)
    starts = np.empty(n, dtype=np.int64)
    ends = np.empty(n, dtype=np.int64)
    if n_full:
        starts[0] = 0
        starts[1:n_full] = nl[:-1] + 1
        ends[:n_full] = nl
    if has_tail:
        starts[n_full] = nl[-1] + 1 if n_full else 0
        ends[n_full] = len(data)
    newline = np.zeros(n, dtype=bool)
    newline[:n_full] = True
    lengths = ends - starts
    too_long = None
    if max_token_size is not None and n:
        # A token needs its bytes plus the '\n' in the buffer; an unterminated final line needs
        # to be found by EOF before the buffer is full: both come to lengths >= max size.
        over = np.flatnonzero(lengths >= max_token_size)
        if len(over):
            too_long = int(over[0])
    return LineCut(starts, lengths, newline, too_long)


@dataclass(frozen=True)
class BatchCut:
    """Physical lines of several files laid end to end in one buffer, each file cut as
    :func:`split_lines` cuts it alone: ``starts`` are offsets in the buffer, ``counts`` the
    lines per file, ``too_long`` marks each file's line that stops Go's scanner."""

    starts: np.ndarray
    lengths: np.ndarray
    newline: np.ndarray
    counts: np.ndarray
    too_long: np.ndarray


def split_many(data: bytes | bytearray, sizes: np.ndarray,
               max_token_size: int | None = MAX_TOKEN_SIZE) -> BatchCut:
    """:func:`split_lines` of each file (``sizes`` bytes each, in order in ``data``) at once:
    one search for newlines over the whole buffer instead of one call per file.

    >>> cut = split_many(b"a\\nbc\\n\\nd", np.array([2, 1, 3, 1]))
    >>> cut.starts.tolist(), cut.lengths.tolist(), cut.counts.tolist()
    ([0, 2, 3, 5, 6], [1, 1, 1, 0, 1], [1, 1, 2, 1])
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    ends_of = np.cumsum(sizes)
    begins = ends_of - sizes
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = newline_positions(data)
    # a file whose last byte is not '\n' ends in a fragment, a line of its own
    tail_files = np.flatnonzero((sizes > 0) & (arr[np.maximum(ends_of - 1, 0)] != 10)
                                if len(arr) else np.zeros(len(sizes), bool))
    ends = np.concatenate([nl, ends_of[tail_files]])
    newline = np.concatenate([np.ones(len(nl), bool), np.zeros(len(tail_files), bool)])
    file_of = np.concatenate([np.searchsorted(ends_of, nl, side="right"), tail_files])
    # a fragment ends where the next file's first byte (maybe a '\n') starts: it goes first
    order = np.argsort(ends * 2 + newline, kind="stable")
    ends, newline, file_of = ends[order], newline[order], file_of[order]
    n = len(ends)
    starts = np.empty(n, dtype=np.int64)
    if n:
        starts[1:] = ends[:-1] + 1
        first = np.ones(n, dtype=bool)
        first[1:] = file_of[1:] != file_of[:-1]
        starts[first] = begins[file_of[first]]
    lengths = ends - starts
    counts = np.bincount(file_of, minlength=len(sizes)).astype(np.int64)
    too_long = np.zeros(n, dtype=bool)
    if max_token_size is not None and n:
        over = np.flatnonzero(lengths >= max_token_size)
        if len(over):
            _, at = np.unique(file_of[over], return_index=True)
            too_long[over[at]] = True
    return BatchCut(starts, lengths, newline, counts, too_long)


def newline_positions(data: bytes, chunk: int = 1 << 18) -> np.ndarray:
    """Byte offsets of every ``\n``; searched in cache-sized chunks (a whole-file mask would
    cost a page fault per 4 KiB of a fresh array)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    if len(arr) <= chunk:
        return np.flatnonzero(arr == 10)
    mask = np.empty(chunk, dtype=bool)
    found = []
    for i in range(0, len(arr), chunk):
        seg = arr[i : i + chunk]
        m = mask[: len(seg)]
        np.equal(seg, 10, out=m)
        found.append(np.flatnonzero(m) + i)
    return np.concatenate(found)


def go_token(data: bytes, start: int, length: int) -> bytes:
    """The token Go's ScanLines hands out for a line: one trailing ``\\r`` dropped."""
    end = start + length
    if length and data[end - 1] == 13:
        end -= 1
    return data[start:end]
