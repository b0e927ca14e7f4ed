"""Reading what is on disk: the logs (``logs``), a converted Parquet dataset (``dataset``), and
``sources``, which resolves a source once (logs or a dataset) and holds ``read_events``.
"""
