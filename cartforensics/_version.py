"""The package's version, in its one home: the package, the CLI and the writers import it here."""

__version__ = "0.1.0"
