"""File IO that survives kill -9: atomic JSON, fsync'd JSONL appends, and a JSONL reader for torn tails.

A kill -9 can leave at most the last line of a JSONL file torn (no trailing newline). `read_jsonl` leaves
such a tail out; `JsonlAppender` rewrites the file without it before appending, so the record in flight
is simply produced again. Results files are rewritten atomically (temp file + fsync + os.replace).
Only RunFolder (run_folder.py) knows which files a run folder holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.core.errors import DataError, EvalkitError, os_error_fix


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms can't open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable_folder(path: Path, flag: str) -> None:
    """Fail now, in one line, when `path` (a folder to create, or to write into) cannot be written: it is
    a file, a part of it is a file, or the nearest existing folder refuses a new entry. The last is tried
    for real (a probe folder is made and removed at once): permission bits say nothing for root, and
    nothing about read-only file systems or ACLs."""
    path = Path(path).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise EvalkitError(f"{flag} {path} is a file, not a folder; choose a folder")
    ancestor = path
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise EvalkitError(f"{flag} {path}: {ancestor} is a file, not a folder; choose another {flag}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".evalkit-write-check-", dir=ancestor))
    except OSError as err:
        raise EvalkitError(f"{flag} {path}: cannot write in {ancestor}: {os_error_fix(err)}") from None


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new temp file beside `path`, created with mode 0666 minus the umask, as open() would make it
    (mkstemp makes 0600: a run folder's rewritten files would differ from its appended ones)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, fsync, then os.replace: readers see old or new, never half.

    A failure (a full disk, a read-only folder) leaves the old file as it was and raises an OSError that
    names `path`, not the temp file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(err.filename or path)) from err
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    _fsync_dir(path.parent)


def json_line(record: dict[str, Any]) -> str:
    """The one JSONL encoding of a record (UTF-8 as is, no ASCII escapes), newline included."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json_line(r) for r in records))


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_utf8(path))
    except FileNotFoundError:
        raise EvalkitError(f"{path} not found; is this an evalkit run folder?") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; a DataError names the file otherwise."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a JSON object; is the run folder damaged?")
    return data


def read_utf8(path: Path) -> str:
    """A text file's content; bytes that are not UTF-8 are a DataError naming the line."""
    blob = path.read_bytes()
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blob.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}:{line} is not UTF-8 text (byte 0x{blob[err.start]:02x}); save the file as UTF-8"
        ) from None


def read_jsonl_numbered(
    path: Path, *, keep_unterminated: bool = False
) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """([(line number, record), ...], torn) for every complete line of `path` (a missing file is empty).

    A last line without its newline is a torn write from a killed process: it is left out (torn=True).
    `keep_unterminated` keeps it when it parses (files written by other tools often lack the final
    newline). A bad line anywhere else is a DataError naming `path:line`.
    """
    if not path.exists():
        return [], False
    lines = read_utf8(path).split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}:{number} is not valid JSON ({err.msg}); fix or remove that line"
            ) from None
    if tail.strip() and keep_unterminated:
        try:
            return [*records, (len(lines) + 1, json.loads(tail))], False
        except json.JSONDecodeError:
            pass
    return records, bool(tail.strip())


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """(records, torn): `read_jsonl_numbered` without the line numbers."""
    numbered, torn = read_jsonl_numbered(path)
    return [record for _, record in numbered], torn


def drop_torn_tail(path: Path) -> bool:
    """Rewrite `path` atomically without a torn last line; True when one was dropped."""
    records, torn = read_jsonl(path)
    if torn:
        write_jsonl_atomic(path, records)
    return torn


def _lock(path: Path):
    """An exclusive, non-blocking lock on `path`'s lock file (released by the OS if the process dies); None where the
    platform has no fcntl."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, same as before
        return None
    handle = (path.parent / f".{path.name}.lock").open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise EvalkitError(
            f"another evalkit process is writing {path}; wait for it, or give each process its own --shard"
        ) from None
    return handle


class JsonlAppender:
    """Append-only JSONL with one write + fsync per record, so a kill loses at most the record in flight.

    One writer per file: a lock file beside it makes a second writer fail at once instead of interleaving
    lines (or repairing a tail the first writer is still writing). A write that fails (a full disk) is
    undone: the file is cut back to its length before it, so it holds exactly the records `append`
    returned for, and the OSError names the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _lock(path)
        try:
            self.dropped_torn_line = drop_torn_tail(path)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except BaseException:
            self._release()
            raise

    def append(self, record: dict[str, Any]) -> None:
        data = memoryview(json_line(record).encode("utf-8"))
        start = os.fstat(self._fd).st_size
        try:
            while data:  # os.write may write part of it
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
        except OSError as err:
            # Shrinking works on a full disk too; if it fails, the next appender drops the torn line.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise OSError(err.errno, err.strerror, str(self.path)) from err

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
