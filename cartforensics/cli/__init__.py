"""The command line: ``cartforensics COMMAND``, each command one library call (``app``), and
the argument types and one-line errors it shares (``args``). Nothing in the library imports it.
"""

from cartforensics.cli.app import main

__all__ = ["main"]
