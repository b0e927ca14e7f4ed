"""Deprecated: the synthetic corpus writer lives in :mod:`cartforensics.jobs.sample`.

This name was documented (``cartforensics.sample.write_sample``), so it keeps working and
warns; import from ``cartforensics.jobs.sample`` instead.
"""

import warnings

from cartforensics.jobs.sample import *  # noqa: F403

warnings.warn("cartforensics.sample moved to cartforensics.jobs.sample; import it from there",
              DeprecationWarning, stacklevel=2)
