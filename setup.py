"""Builds the compiled cores with Cython: the replay core (cartforensics/model/_replay_core.pyx) and
the line scan read_events uses (cartforensics/go/_writer_shape_core.pyx).

Everything else is in pyproject.toml. The extension is optional: when it cannot be compiled
the install still succeeds and the package runs on the pure-Python reference core (it warns
once; ``cartforensics --version`` and ``cf.engine_info()`` say which core runs).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

# both cimport Go's byte-level string rules from cartforensics/go/_gotext.pxd (inline only)
SHARED = ["cartforensics/go/_gotext.pxd"]
extensions = [
    Extension("cartforensics.model._replay_core", ["cartforensics/model/_replay_core.pyx"],
              depends=SHARED, optional=True),
    Extension("cartforensics.go._writer_shape_core", ["cartforensics/go/_writer_shape_core.pyx"],
              depends=SHARED, optional=True),
]

setup(ext_modules=cythonize(extensions, language_level=3, quiet=True))
