"""The service's cart, replayed: handlers (``cart``), the type registry (``registry``), which
core runs (``engine``, and the compiled ``_replay_core``), ``Replay`` with skip-a-line
(``replay``) and per-field blame and context (``blame``).
"""
