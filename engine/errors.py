"""One hierarchy of errors, rooted at :class:`SegueError`.

The command line maps :class:`BadInputError` to exit code 2 and every other :class:`SegueError` to exit code 1.
Messages say what is wrong and what to do about it.
"""

from __future__ import annotations


class SegueError(Exception):
    """Base class of every error Segue raises on purpose."""


class BadInputError(SegueError, ValueError):
    """The user's input (a file, a parameter) cannot be used. Exit code 2."""


class DiskFullError(BadInputError):
    """A write failed because the disk (or the user's quota) is full. Exit code 2: the user frees space and runs
    again. The message is always "the disk is full at PATH: free N MB and run again"."""

    def __init__(self, path: str, free_mb: int) -> None:
        self.path = str(path)
        self.free_mb = int(free_mb)
        super().__init__(f"the disk is full at {self.path}: free {self.free_mb} MB and run again")

    def __reduce__(self) -> tuple[type[DiskFullError], tuple[str, int]]:  # picklable across processes
        return (type(self), (self.path, self.free_mb))

    def __str__(self) -> str:
        return f"the disk is full at {self.path}: free {self.free_mb} MB and run again"


class ModelNotFoundError(BadInputError):
    """The named model or checkpoint does not exist or cannot be read."""


class EngineError(SegueError, RuntimeError):
    """The engine failed while working on valid input. Exit code 1."""


class CancelledError(SegueError):
    """The job was cancelled by the user."""
