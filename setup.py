"""Builds the compiled cores with Cython: the replay core (cartforensics/_replay_core.pyx) and
the line scan read_events uses (cartforensics/_fastpath_core.pyx).

Everything else is in pyproject.toml. The extension is optional: when it cannot be compiled
the install still succeeds and the package runs on the pure-Python reference core (it warns
once; ``cartforensics --version`` and ``cf.engine_info()`` say which core runs).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

# both cimport Go's byte-level string rules from cartforensics/_gotext.pxd (inline only)
SHARED = ["cartforensics/_gotext.pxd"]
extensions = [
    Extension("cartforensics._replay_core", ["cartforensics/_replay_core.pyx"], depends=SHARED,
              optional=True),
    Extension("cartforensics._fastpath_core", ["cartforensics/_fastpath_core.pyx"],
              depends=SHARED, optional=True),
]

setup(ext_modules=cythonize(extensions, language_level=3, quiet=True))
