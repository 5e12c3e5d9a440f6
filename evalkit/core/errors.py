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


# errno -> what it means for the user and the fix, for `describe_os_error`.
_OS_ERROR_FIXES = {
    "ENOSPC": "no space left on the device; free space, then re-run",
    "EDQUOT": "disk quota exceeded; free space, then re-run",
    "EROFS": "the file system is read-only; write somewhere else (e.g. another --out)",
    "EACCES": "permission denied; choose a folder you can write (e.g. another --out) or fix its permissions",
    "EPERM": "operation not permitted; choose a folder you can write (e.g. another --out)",
    "ENOTDIR": "a part of this path is a file, not a folder; choose another path",
    "EISDIR": "this is a folder, not a file; give a file name",
    "EEXIST": "this already exists and is not a folder; choose another path",
    "ENOENT": "no such file or folder",
    "ENAMETOOLONG": "the path is too long; choose a shorter one",
}


def os_error_fix(err: OSError) -> str:
    """What a failed file operation means for the user, and the fix, in words."""
    import errno as errno_names

    name = errno_names.errorcode.get(err.errno or -1, "")
    return _OS_ERROR_FIXES.get(name) or (err.strerror or str(err) or type(err).__name__).lower()


def describe_os_error(err: OSError) -> str:
    """One line for a failed file operation: the path, what went wrong in words, and the fix."""
    where = err.filename if err.filename is not None else "a file operation"
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    return f"{where}: {os_error_fix(err)}"
