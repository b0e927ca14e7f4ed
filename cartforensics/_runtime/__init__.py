"""Running work: process pools, executors and the Dask cluster (``cluster``), and publishing an
output atomically. Imports nothing of the package's stages.
"""
