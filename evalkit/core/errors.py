"""The errors a user sees: each message is one line naming the problem and the fix.

`evalkit.cli.main` turns any `EvalkitError` into `error: <message>` and exit code 2 (no traceback).
"""

from __future__ import annotations


class EvalkitError(Exception):
    """A user-facing error: its message is one line that names the problem and the fix."""


class BackendError(EvalkitError):
    """A backend could not start or could not go on (missing extra, no GPU, bad path, server down)."""


class DataError(EvalkitError):
    """Benchmark data or a run folder missing or malformed."""
