"""One hierarchy of errors, rooted at :class:`SegueError`.

The command line maps :class:`BadInputError` to exit code 2 and every other :class:`SegueError` to exit code 1.
Messages say what is wrong and what to do about it.
"""

from __future__ import annotations


class SegueError(Exception):
    """Base class of every error Segue raises on purpose."""


class BadInputError(SegueError, ValueError):
    """The user's input (a file, a parameter) cannot be used. Exit code 2."""


class ModelNotFoundError(BadInputError):
    """The named model or checkpoint does not exist or cannot be read."""


class EngineError(SegueError, RuntimeError):
    """The engine failed while working on valid input. Exit code 1."""


class CancelledError(SegueError):
    """The job was cancelled by the user."""
