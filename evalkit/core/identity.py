"""What a run's inputs are, as short stable strings: a checkpoint's (or file's) content hash, and the
fingerprint of the problems evaluated.

`content_hash` is the ONE model identity: the run's config.json (`model_revision`) and every backend's
`model_info()["revision"]` use it, so one checkpoint gives one revision string everywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from evalkit.core.types import Problem

HASH_LENGTH = 16
_CONFIG_FILES = ("config.json", "model.safetensors.index.json", "generation_config.json")
_MAX_HEADER_BYTES = 100_000_000  # a safetensors header is a few MB at most; bound a corrupt size field
_FILE_HASHES: dict[tuple[str, int, int, int], str] = {}  # see _file_hash


def content_hash(path: Path) -> str:
    """16 hex digits naming a checkpoint by its content, cheaply.

    A folder: its config files, every safetensors header (tensor names, dtypes, shapes, offsets) and every
    weight file's size; the weights themselves are never read, so hashing a 8 GB checkpoint is instant and
    the same checkpoint at another path (another machine's shard) gets the same name. A file (a replay
    JSONL, a single-file checkpoint): the sha256 of its bytes.
    """
    path = Path(path)
    if not path.is_dir():
        return _file_hash(path)
    digest = hashlib.sha256()
    for name in _CONFIG_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    for file in sorted(path.glob("*.safetensors")):
        digest.update(file.name.encode() + b"\0" + str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            head = handle.read(8)
            if len(head) == 8:
                size = int.from_bytes(head, "little")
                digest.update(handle.read(min(size, _MAX_HEADER_BYTES)))
    for file in sorted(path.glob("*.bin")):  # older checkpoints: sizes only
        digest.update(file.name.encode() + b"\0" + str(file.stat().st_size).encode())
    return digest.hexdigest()[:HASH_LENGTH]


def _file_hash(path: Path) -> str:
    """A file's content hash, computed once per process for one state of the file: a single-file
    checkpoint (a GGUF file, GBs) is named by the run plan and again by the backend's model_info, and the
    second must not read it again. The key is the resolved path with its size, mtime and inode, so a
    file rewritten in between is hashed anew."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = file_sha256(path)[:HASH_LENGTH]
    return _FILE_HASHES[key]


def file_sha256(path: Path) -> str:
    """Full sha256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(problems: Sequence[Problem]) -> str:
    """sha256 (hex) over the canonical JSON of every problem's id, messages, gold and metadata, in order.

    It changes when any row, the prompt, or the order changes: it identifies exactly what was evaluated.
    """
    rows = [
        {"id": p.id, "messages": list(p.messages), "gold": p.gold, "metadata": p.metadata} for p in problems
    ]
    blob = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
