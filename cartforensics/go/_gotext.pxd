# cython: language_level=3
"""Byte-level pieces of Go's string handling that both compiled cores use, inline (a .pxd
of inline functions needs no module of its own): _replay_core.pyx's payload scanner and
_writer_shape_core.pyx's line scan cimport them from here."""


cdef inline int hexval(unsigned char c) noexcept nogil:
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    if 0x41 <= c <= 0x46:
        return c - 0x41 + 10
    return -1


cdef inline int hex4(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The value of 4 hex digits at p[i:], or -1."""
    cdef int a, b, c, d
    if i + 4 > n:
        return -1
    a = hexval(p[i])
    b = hexval(p[i + 1])
    c = hexval(p[i + 2])
    d = hexval(p[i + 3])
    if a < 0 or b < 0 or c < 0 or d < 0:
        return -1
    return (a << 12) | (b << 8) | (c << 4) | d


cdef inline Py_ssize_t utf8_width(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Go's utf8.DecodeRune at p[i] (>= 0x80): the width of a valid encoding, or 0 (invalid:
    Go's string decoding makes this one byte U+FFFD)."""
    cdef unsigned char c = p[i], lo = 0x80, hi = 0xBF
    cdef Py_ssize_t w, k
    if 0xC2 <= c <= 0xDF:
        w = 2
    elif 0xE0 <= c <= 0xEF:
        w = 3
        if c == 0xE0:
            lo = 0xA0
        elif c == 0xED:
            hi = 0x9F
    elif 0xF0 <= c <= 0xF4:
        w = 4
        if c == 0xF0:
            lo = 0x90
        elif c == 0xF4:
            hi = 0x8F
    else:
        return 0
    if i + w > n:
        return 0
    if not (lo <= p[i + 1] <= hi):
        return 0
    for k in range(2, w):
        if not (0x80 <= p[i + k] <= 0xBF):
            return 0
    return w


cdef inline Py_ssize_t skip_ws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Past JSON whitespace (space, tab, LF, CR) at p[i:n]."""
    while i < n and (p[i] == 0x20 or p[i] == 0x09 or p[i] == 0x0A or p[i] == 0x0D):
        i += 1
    return i
