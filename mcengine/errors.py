"""The errors a user can cause.

Every mistake a user can make (a bad scenario, an unwritable or foreign output folder, a
run too large, a malformed data file, a bad argument) raises a subclass of
:class:`UserError`, whose ``str()`` is the one-line message for the user. The command
line prints it as ``error: ...`` with exit status 2; any other exception is a bug in
mcengine (exit status 1). Imports nothing, so every module can use it.
"""

from __future__ import annotations


class UserError(ValueError):
    """The base of every error a user can cause: ``str(err)`` is the one-line message."""


class ArgumentError(UserError):
    """A bad argument to a library function or a command (a count, a date, a name)."""


class DataError(UserError):
    """An input data file that cannot be used (unreadable, malformed, not what it should be)."""


class ScenarioError(UserError):
    """A scenario that cannot be run: ``str(err)`` is the one-line message for users."""

    def __init__(self, source: str, field: str, message: str):
        self.source, self.field, self.message = source, field, message
        super().__init__(f"{source}: {field}: {message}" if field else f"{source}: {message}")


class OutputError(UserError):
    """An output folder or file that cannot or must not be written."""


class ResourceError(UserError):
    """A run that would not fit in memory or not finish in reason: ``str(err)`` says what to change."""
