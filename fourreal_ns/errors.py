"""The base class of every error a user can act on.

Each error of this project whose message says what went wrong and how to fix it (a scene that does not follow the
format, a missing canonical run, guidance weights that cannot be found, ...) derives from :class:`FourRealError`
as well as from the built-in class it always had (ValueError, OSError, ...). `ns-train` of a 4real method prints
such an error as its message alone, without the config dump and the traceback (fourreal_ns/trainer.py); any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class FourRealError(Exception):
    """An error whose message names the problem and its fix: shown to the user without a traceback."""
