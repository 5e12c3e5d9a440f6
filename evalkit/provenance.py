"""What produced a result: software versions, git commit, machine, device, model info and timings.

Versions come from package metadata, so recording them never imports torch or transformers.
"""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import evalkit
from evalkit.core.records import Provenance, ScoringInfo

PACKAGES = ("torch", "transformers", "math-verify", "sympy", "triton", "vllm")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> dict[str, Any] | None:
    """The commit of the evalkit checkout (and whether it had local changes), or None outside git."""
    root = Path(evalkit.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def device_info() -> dict[str, Any]:
    """GPU names if torch is already loaded (a backend used it); never imports torch just to ask."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {"torch_loaded": False}
    info: dict[str, Any] = {"cuda_available": bool(torch.cuda.is_available())}
    if info["cuda_available"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda"] = torch.version.cuda
    return info


def software() -> dict[str, Any]:
    return {
        "evalkit": evalkit.__version__,
        "git": git_commit(),
        "python": platform.python_version(),
        **{name: package_version(name) for name in PACKAGES},
    }


def machine() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "device": device_info()}


def collect(
    *,
    model_info: dict[str, Any] | None,
    started: str | None,
    ended: str,
    wall_seconds: float | None,
    generated_tokens: int,
    shard: str | None = None,
    scoring: ScoringInfo | None = None,
    **extra: Any,
) -> Provenance:
    """This session's provenance; `extra` (generated_this_session, merged_from) follows the fixed keys."""
    return Provenance(
        software=software(),
        machine=machine(),
        model_info=model_info,
        started=started,
        ended=ended,
        wall_seconds=wall_seconds,
        generated_tokens=generated_tokens,
        shard=shard,
        scoring=scoring,
        extra=extra,
    )
