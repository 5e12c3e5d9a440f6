"""Where evalkit finds things on this machine (the benchmark data folder)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "EVALKIT_DATA_DIR"


def resolve_data_dir(explicit: str | Path | None) -> Path | None:
    """The local benchmark data folder: the explicit `--data-dir`, else $EVALKIT_DATA_DIR, else None.

    None means "no local folder": tasks then fall back to the Hugging Face Hub.
    """
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "")
    return Path(from_env).expanduser() if from_env else None
