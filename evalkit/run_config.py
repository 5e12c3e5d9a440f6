"""The model identity a run records: which checkpoint, replay file or served model it names."""

from __future__ import annotations

import os
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.identity import content_hash


def looks_like_path(model: str) -> bool:
    """A local path rather than a Hub id ("org/name") or a served model name."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model


def model_identity(
    backend: str, model: str | None, revision: str | None, from_file: str | None
) -> tuple[str, str]:
    """(model, model_revision) for the RunConfig; a missing local path is a user error.

    A local folder is named by its folder name and identified by its content hash, so the same checkpoint
    at another path (another machine's shard) gives the same run_id.
    """
    if backend == "replay":
        if not from_file:
            raise EvalkitError("the replay backend needs --from FILE (a completions JSONL)")
        path = Path(from_file).expanduser()
        if not path.is_file():
            raise EvalkitError(f"--from {from_file}: no such file; pass a completions JSONL")
        return model or f"replay:{path.name}", revision or content_hash(path)
    if not model:
        raise EvalkitError(f"the {backend} backend needs --model (a Hub id or a local folder)")
    local = Path(model).expanduser()
    if local.is_dir():
        return local.resolve().name, revision or content_hash(local)
    if backend in ("sambay", "hf", "vllm") and (local.exists() or looks_like_path(model)):
        raise EvalkitError(
            f"--model {model}: no such folder; pass a checkpoint folder with config.json or a Hub id"
        )
    return model, revision or "none"
