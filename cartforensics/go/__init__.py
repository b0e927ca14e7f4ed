"""The port of the Go the service runs: what its reader and writer do, byte for byte.

``bufio`` (the scanner's line cut and its 256 KiB limit), ``json`` (``encoding/json``'s
decoder, errors and ``Marshal``), ``time`` (``time.Time``'s RFC 3339 parse and format),
``version`` (which toolchain's rules apply: Go ≤ 1.26 or ≥ 1.27), ``envelope`` (the log line's
``{ts, type, payload}`` record) and ``writer_shape`` (the compiled proof that a line is in the
writer's own shape, which lets ``read_events`` skip the port). Imports nothing of the package
above it.
"""
