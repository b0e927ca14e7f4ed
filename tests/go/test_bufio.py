"""Cutting files into lines: several files at once exactly as each alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.go.bufio import split_lines, split_many

_bits = st.sampled_from([b"\n", b"\r\n", b"\r", b"x", b"ab", b"", b"\n\n", b"yy" * 5])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_bits, max_size=8).map(b"".join), min_size=1, max_size=8),
       st.sampled_from([None, 1, 2, 4, 262144]))
def test_split_many_cuts_each_file_as_split_lines_does(files: list[bytes],
                                                       limit: int | None) -> None:
    """Files with and without a final newline, empty ones, files that are only a newline
    (whose '\\n' sits right where the previous file's fragment ends), too-long lines."""
    data = b"".join(files)
    cut = split_many(data, np.array([len(f) for f in files]), limit)
    assert cut.counts.tolist() == [len(split_lines(f, limit)) for f in files]
    row, base = 0, 0
    for f in files:
        one = split_lines(f, limit)
        k = len(one)
        assert (cut.starts[row : row + k] - base).tolist() == one.starts.tolist()
        assert cut.lengths[row : row + k].tolist() == one.lengths.tolist()
        assert cut.newline[row : row + k].tolist() == one.newline.tolist()
        marked = np.flatnonzero(cut.too_long[row : row + k]).tolist()
        assert marked == ([] if one.too_long_index is None else [one.too_long_index])
        row += k
        base += len(f)
    assert row == len(cut.starts)
