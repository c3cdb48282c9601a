"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UsageError(Exception):
    """A mistake in what the user asked for: a bad option, case, mode, suite file or path."""


# Exit code when a results file cannot be written (disk full, I/O error); what was written stays.
WRITE_FAILED = 3


class StoreError(ValueError):
    """A results file that cannot be used at all (missing, empty, not a run)."""
