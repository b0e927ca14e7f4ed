# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The compiled scan of lines in the writer's own shape, which :mod:`cartforensics.go.writer_shape`
accelerates (that module's ``scan_reference`` is the readable specification: both must give
the same fields wherever this scan accepts a line).

A line is accepted only when it is exactly ``{"ts":T,"type":"NAME","payload":P}`` with T an
int64 literal (not ``-0``), ``null`` or a string of printable ASCII without escapes, NAME
printable ASCII without escapes, and P one JSON value that every Go toolchain takes alike:
strictly valid UTF-8, no escaped surrogate halves, nested at most MAX_DEPTH deep. Anything
else is left to the Go port, which decides and words the error. The loop over lines runs
without the GIL, so two threads scan two halves of a file at once.
"""

from libc.stdint cimport int8_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove

from cartforensics.go._gotext cimport hex4, skip_ws, utf8_width

from cartforensics import vocab as _vocab

# ts kinds, vocab's numbering: C globals set once at import, read without the GIL
cdef int8_t TS_INT = _vocab.TS_INT
cdef int8_t TS_STR = _vocab.TS_STR
cdef int8_t TS_NULL = _vocab.TS_NULL

cdef enum:
    MAX_DEPTH = 512


cdef inline bint is_digit(uint8_t c) noexcept nogil:
    return 48 <= c <= 57


cdef Py_ssize_t skip_string(const uint8_t* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """Index after the JSON string that opens at s[i] == '"', or -1."""
    cdef uint8_t c
    cdef int point
    cdef Py_ssize_t w
    i += 1
    while i < end:
        c = s[i]
        if c == 34:
            return i + 1
        if c == 92:
            if i + 1 >= end:
                return -1
            c = s[i + 1]
            if c == 117:  # \uXXXX
                point = hex4(s, i + 2, end)
                if point < 0:
                    return -1
                if 0xD800 <= point <= 0xDFFF:  # json v1 and v2 may differ on halves
                    return -1
                i += 6
            elif (c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110
                  or c == 114 or c == 116):
                i += 2
            else:
                return -1
        elif c < 32:
            return -1
        elif c < 128:
            i += 1
        else:
            w = utf8_width(s, i, end)
            if w == 0:
                return -1
            i += w
    return -1


cdef Py_ssize_t skip_number(const uint8_t* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """Index after the JSON number at s[i], or -1."""
    if s[i] == 45:
        i += 1
        if i >= end:
            return -1
    if s[i] == 48:
        i += 1
    elif 49 <= s[i] <= 57:
        while i < end and is_digit(s[i]):
            i += 1
    else:
        return -1
    if i < end and s[i] == 46:
        i += 1
        if i >= end or not is_digit(s[i]):
            return -1
        while i < end and is_digit(s[i]):
            i += 1
    if i < end and (s[i] == 101 or s[i] == 69):
        i += 1
        if i < end and (s[i] == 43 or s[i] == 45):
            i += 1
        if i >= end or not is_digit(s[i]):
            return -1
        while i < end and is_digit(s[i]):
            i += 1
    return i


cdef inline Py_ssize_t skip_key(const uint8_t* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """At a member's name: index of its value (after the string, ':' and whitespace), or -1."""
    if i >= end or s[i] != 34:
        return -1
    i = skip_string(s, i, end)
    if i < 0:
        return -1
    i = skip_ws(s, i, end)
    if i >= end or s[i] != 58:
        return -1
    return skip_ws(s, i + 1, end)


cdef Py_ssize_t skip_value(const uint8_t* s, Py_ssize_t i, Py_ssize_t end) noexcept nogil:
    """Index after the one JSON value that starts exactly at s[i] and ends by ``end``, or -1.
    Iterative: nesting costs a byte of stack per level, up to MAX_DEPTH."""
    cdef uint8_t stack[MAX_DEPTH]
    cdef int depth = 0
    cdef uint8_t c
    while True:
        if i < 0 or i >= end:
            return -1
        c = s[i]
        if c == 123 or c == 91:  # { or [
            i = skip_ws(s, i + 1, end)
            if i >= end:
                return -1
            if s[i] == c + 2:  # } or ]: empty
                i += 1
            else:
                if depth >= MAX_DEPTH:
                    return -1
                stack[depth] = c
                depth += 1
                if c == 123:
                    i = skip_key(s, i, end)
                continue
        elif c == 34:
            i = skip_string(s, i, end)
        elif c == 45 or is_digit(c):
            i = skip_number(s, i, end)
        elif c == 116:
            i = i + 4 if i + 4 <= end and memcmp(s + i, b"true", 4) == 0 else -1
        elif c == 102:
            i = i + 5 if i + 5 <= end and memcmp(s + i, b"false", 5) == 0 else -1
        elif c == 110:
            i = i + 4 if i + 4 <= end and memcmp(s + i, b"null", 4) == 0 else -1
        else:
            return -1
        if i < 0:
            return -1
        # a value ended: close containers until one takes another element
        while True:
            if depth == 0:
                return i
            i = skip_ws(s, i, end)
            if i >= end:
                return -1
            c = s[i]
            if c == 44:  # ,
                i = skip_ws(s, i + 1, end)
                if stack[depth - 1] == 123:
                    i = skip_key(s, i, end)
                break
            if c == stack[depth - 1] + 2:
                i += 1
                depth -= 1
                continue
            return -1


cdef inline int64_t digits_at(const uint8_t* p, int a, int z) noexcept nogil:
    cdef int64_t v = 0
    cdef int k
    for k in range(a, z):
        v = v * 10 + (p[k] - 48)
    return v


cdef int rfc3339_ns(const uint8_t* p, Py_ssize_t n, int64_t* out) noexcept nogil:
    """1 and the Unix ns of ``2024-01-02T03:04:05[.fff…](Z|±hh:mm)`` when every field is in
    the ranges Go's parseRFC3339 checks (years 1678–2261: what pandas holds); else 0.
    The same rule as writer_shape.parse_rfc3339_column."""
    cdef int k, frac_digits = 0, zone_at
    cdef int64_t year, month, day, hour, minute, sec, oh = 0, om = 0, dim, frac = 0
    cdef int64_t y, era, yoe, mp, doy, doe, days, secs
    cdef bint leap
    if n < 20 or n > 40:
        return 0
    for k in range(19):
        if k != 4 and k != 7 and k != 10 and k != 13 and k != 16 and not is_digit(p[k]):
            return 0
    if p[4] != 45 or p[7] != 45 or p[10] != 84 or p[13] != 58 or p[16] != 58:
        return 0
    zone_at = 19
    if p[19] == 46:
        k = 20
        while k < n and is_digit(p[k]):
            k += 1
        frac_digits = k - 20
        if frac_digits < 1:
            return 0
        zone_at = k
    if zone_at >= n:
        return 0
    if p[zone_at] == 90:
        if n != zone_at + 1:
            return 0
    elif p[zone_at] == 43 or p[zone_at] == 45:
        if n != zone_at + 6:
            return 0
        if not (is_digit(p[zone_at + 1]) and is_digit(p[zone_at + 2]) and p[zone_at + 3] == 58
                and is_digit(p[zone_at + 4]) and is_digit(p[zone_at + 5])):
            return 0
        oh = digits_at(p, zone_at + 1, zone_at + 3)
        om = digits_at(p, zone_at + 4, zone_at + 6)
    else:
        return 0
    year = digits_at(p, 0, 4)
    month = digits_at(p, 5, 7)
    day = digits_at(p, 8, 10)
    hour = digits_at(p, 11, 13)
    minute = digits_at(p, 14, 16)
    sec = digits_at(p, 17, 19)
    if month < 1 or month > 12:
        return 0
    leap = (year % 4 == 0) and (year % 100 != 0 or year % 400 == 0)
    if month == 2:
        dim = 29 if leap else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        dim = 30
    else:
        dim = 31
    if day < 1 or day > dim or hour > 23 or minute > 59 or sec > 59 or oh > 23 or om > 59:
        return 0
    if year < 1678 or year > 2261:
        return 0
    for k in range(9):
        frac = frac * 10 + ((p[20 + k] - 48) if k < frac_digits else 0)
    # days from civil (proleptic Gregorian); y > 0 here, so / and % are floor division
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    secs = days * 86400 + hour * 3600 + minute * 60 + sec
    if p[zone_at] == 45:
        secs += oh * 3600 + om * 60
    elif p[zone_at] == 43:
        secs -= oh * 3600 + om * 60
    out[0] = secs * 1000000000 + frac
    return 1


cdef inline bint plain_ascii(uint8_t c) noexcept nogil:
    """A byte a string without escapes may hold here: printable ASCII (and DEL), not " or \\."""
    return 32 <= c <= 127 and c != 34 and c != 92


def scan_range(const uint8_t[::1] data, const int64_t[::1] starts, const int64_t[::1] tok_len,
               Py_ssize_t lo, Py_ssize_t hi, uint8_t[::1] ok, int8_t[::1] ts_kind,
               int64_t[::1] ts_value, uint8_t[::1] ts_parsed, int64_t[::1] type_start,
               int64_t[::1] type_len, int64_t[::1] p_start, int64_t[::1] p_len) -> int:
    """Scan lines lo..hi-1 (token at ``starts[r]``, ``tok_len[r]`` bytes) into the output
    arrays, without the GIL; returns how many were accepted. ``ts_value``: the seconds of an
    integer ts, the Unix ns of a string ts where ``ts_parsed``."""
    cdef const uint8_t* s = &data[0] if data.shape[0] else NULL
    cdef Py_ssize_t r, a, end, i, j
    cdef uint8_t c
    cdef uint64_t mag, limit
    cdef bint neg
    cdef int nd
    cdef int64_t ns
    cdef Py_ssize_t accepted = 0
    with nogil:
        for r in range(lo, hi):
            ok[r] = 0
            a = starts[r]
            end = a + tok_len[r]
            if tok_len[r] < 30 or memcmp(s + a, b'{"ts":', 6) != 0 or s[end - 1] != 125:
                continue
            i = a + 6
            c = s[i]
            if c == 34:
                j = i + 1
                while j < end and plain_ascii(s[j]):
                    j += 1
                if j >= end or s[j] != 34:
                    continue
                ts_kind[r] = TS_STR
                ts_parsed[r] = rfc3339_ns(s + i + 1, j - i - 1, &ns)
                ts_value[r] = ns if ts_parsed[r] else 0
                i = j + 1
            elif c == 110:
                if memcmp(s + i, b"null", 4) != 0:
                    continue
                ts_kind[r] = TS_NULL
                ts_parsed[r] = 0
                ts_value[r] = 0
                i += 4
            elif c == 45 or is_digit(c):
                neg = c == 45
                if neg:
                    i += 1
                if s[i] == 48:
                    if neg:  # -0: left to the port
                        continue
                    mag = 0
                    i += 1
                else:
                    mag = 0
                    nd = 0
                    while i < end and is_digit(s[i]) and nd < 20:
                        mag = mag * 10 + (s[i] - 48)
                        nd += 1
                        i += 1
                    if nd == 0 or nd > 19:
                        continue
                    limit = (<uint64_t>1 << 63) if neg else ((<uint64_t>1 << 63) - 1)
                    if mag > limit:
                        continue
                ts_kind[r] = TS_INT
                ts_parsed[r] = 0
                ts_value[r] = <int64_t>(0 - mag) if neg else <int64_t>mag
            else:
                continue
            if i + 9 > end or memcmp(s + i, b',"type":"', 9) != 0:
                continue
            i += 9
            j = i
            while j < end and plain_ascii(s[j]):
                j += 1
            if j >= end or s[j] != 34:
                continue
            type_start[r] = i
            type_len[r] = j - i
            i = j
            if i + 12 > end or memcmp(s + i, b'","payload":', 12) != 0:
                continue
            i += 12
            j = skip_value(s, i, end - 1)
            if j != end - 1:
                continue
            p_start[r] = i
            p_len[r] = j - i
            ok[r] = 1
            accepted += 1
    return accepted


def gather_range(const uint8_t[::1] first, const uint8_t[::1] second,
                 const uint8_t[::1] source, const int64_t[::1] starts,
                 const int64_t[::1] offsets, uint8_t[::1] out, Py_ssize_t lo,
                 Py_ssize_t hi) -> None:
    """Copy value r (r in lo..hi-1) of ``offsets[r+1] - offsets[r]`` bytes from ``first``
    (source[r] == 0) or ``second`` at ``starts[r]`` to ``out[offsets[r]:]``, without the
    GIL: the value buffer of an Arrow large_binary column, filled by several threads."""
    cdef const uint8_t* a = &first[0] if first.shape[0] else NULL
    cdef const uint8_t* b = &second[0] if second.shape[0] else NULL
    cdef uint8_t* o = &out[0] if out.shape[0] else NULL
    cdef Py_ssize_t r
    cdef int64_t size
    with nogil:
        for r in range(lo, hi):
            size = offsets[r + 1] - offsets[r]
            if size > 0:
                memcpy(o + offsets[r], (b if source[r] else a) + starts[r], <size_t>size)


def compact(uint8_t[::1] buf, const int64_t[::1] starts, const int64_t[::1] offsets) -> None:
    """Move line r (``offsets[r+1] - offsets[r]`` bytes at ``starts[r]``) to ``offsets[r]``
    in place, in line order, without the GIL: the lines without their newlines, packed at
    the front of ``buf`` (a line only ever moves towards the front, never over a later
    line's bytes, since ``offsets[r] <= starts[r]`` and ``offsets[r+1] <= starts[r+1]``)."""
    cdef uint8_t* b = &buf[0] if buf.shape[0] else NULL
    cdef Py_ssize_t r, n = starts.shape[0]
    cdef int64_t size
    with nogil:
        for r in range(n):
            size = offsets[r + 1] - offsets[r]
            if size > 0 and offsets[r] != starts[r]:
                memmove(b + offsets[r], b + starts[r], <size_t>size)
