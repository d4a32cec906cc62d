"""Errors that the command-line tools turn into one clean line and an exit code."""


class BenchError(Exception):
    """A user-facing error: printed as one line, exit code ``exit_code``."""

    exit_code = 2


class UsageError(BenchError):
    """Bad command-line or config input."""

    exit_code = 2


class DataError(BenchError):
    """Missing or unreadable data or model artifacts."""

    exit_code = 3


class BackendUnavailable(BenchError):
    """A runtime (interpreter, delegate, device) is not usable here."""

    exit_code = 4
