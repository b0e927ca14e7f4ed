"""Running work: process pools and executors (``pools``), the Dask cluster (``cluster``), and
publishing an output atomically (``publish``). Imports nothing of the package's stages.
"""
