"""Run Python here as if on the lent GPU machine's image, which lacks some packages this venv has.

    python benchmarks/device_image.py -m pytest --collect-only -m gpu tests/...
    python benchmarks/device_image.py benchmarks/engine.py --dry-run ...
    python benchmarks/device_image.py -c "import torch; ..."

The image (torch 2.11, triton 3.6, transformers 5.17, pytest, numpy, safetensors, tokenizers, ...) has
no datasets, no math-verify and none of their own dependencies, nor pydantic or tomlkit. Importing one of
MISSING here fails as it would there (`sys.modules[name] = None`: `import` raises ModuleNotFoundError and
`importlib.util.find_spec` returns None, so optional-import checks see the package as absent too), so
`gpu_check.sh --dry-run` finds on CPU an import the GPU run would die of.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

# Top-level import names of the distributions in evalkit's environment that the device image lacks.
MISSING = (
    "datasets",
    "math_verify",
    "latex2sympy2_extended",
    "antlr4",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic_core",
    "tomlkit",
)


def block_missing() -> None:
    for name in MISSING:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        sys.modules[name] = None  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help") or (argv[0] in ("-m", "-c") and len(argv) < 2):
        raise SystemExit(f"usage: python {sys.argv[0]} (-m MODULE | -c CODE | SCRIPT) [ARGS...]")
    block_missing()
    if argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    elif argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = str(Path(argv[0]).resolve().parent)  # as `python SCRIPT` sets it
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
