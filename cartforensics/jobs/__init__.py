"""Jobs that write outputs: logs to a Parquet dataset and back (``convert``), logs the deployed
reader replays right (``repair``), and a synthetic corpus in the writer's exact bytes
(``sample``).
"""
