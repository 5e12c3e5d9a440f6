"""Which implementation an op runs, as a value the caller owns: `Ops(mode)`.

- "auto" (the default): an op's Triton kernel for CUDA tensors when triton imports, else its pure-PyTorch
  reference;
- "reference": the reference ops on every device (to compare against the kernels, or to rule them out
  when debugging a GPU run);
- "triton": the kernels on every device; on CPU tensors that only works under the Triton interpreter
  (TRITON_INTERPRET=1), which is what the whole-model interpreter test uses.

The model holds one Ops (given at construction) and passes it to every op it calls; the runner asks the
same one whether decode may be captured in CUDA graphs. Nothing here reads or writes the environment:
the backend turns its setting (an option, or an environment variable) into an Ops when it is built
(`Ops.parse`). The choice is
logged once per (op, path) so a run says which code it used.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import torch

from model_backends.sambay.errors import ConfigError

logger = logging.getLogger(__name__)
MODES = ("auto", "reference", "triton")

# FMA contraction in the kernels: on, as they were validated. Every launch passes it as the kernel
# option `enable_fp_fusion=FP_FUSION` rather than through TRITON_DEFAULT_FP_FUSION, so importing the ops
# changes nothing in the process environment, and Triton 3.9's warning that its default flips to off in
# 3.10 does not apply (the option is explicit). TRITON_FORCE_DISABLE_FP_FUSION=1 still turns it off.
FP_FUSION = True

# Which (op, path) pairs have been logged: a log-once memory, not a setting (it changes no result).
_logged: set[tuple[str, str]] = set()


@functools.cache
def _triton_imports() -> bool:
    """Whether triton really imports (as every op module tries), not merely whether it is installed."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Ops:
    """The ops mode ("auto", "reference" or "triton"). `source` only names where it came from (the
    setting's name, for messages)."""

    mode: str = "auto"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"ops mode {self.mode!r} is not one of {', '.join(MODES)}")

    @classmethod
    def parse(cls, value: str | None, source: str) -> Ops:
        """A setting's text as an Ops: blank means auto; a misspelt one is refused, never read as another."""
        mode = (value or "").strip().lower() or "auto"
        if mode not in MODES:
            raise ConfigError(f"{source}={value!r} is not a mode; set it to auto, reference or triton")
        return cls(mode, source)

    def use_triton(self, op: str, x: torch.Tensor, triton_available: bool) -> bool:
        """True when `op` should run its Triton kernel on `x`'s device."""
        wanted = self.mode == "triton" or (self.mode == "auto" and x.is_cuda)
        path = "triton" if (wanted and triton_available) else "reference"
        if (op, path) not in _logged:
            _logged.add((op, path))
            logger.info("%s: using the %s path (device %s)", op, path, x.device)
        return path == "triton"

    def triton_active(self) -> bool:
        """True when CUDA tensors get the Triton kernels: triton imports and the reference is not forced."""
        return self.mode != "reference" and _triton_imports()

    def describe(self, device: torch.device | str) -> str:
        """One line for users: which ops a model on `device` runs, and why."""
        device = torch.device(device)
        if device.type != "cuda":
            return f"reference PyTorch ops (device {device}; the Triton kernels need CUDA)"
        if self.mode == "reference":
            forced_by = f"{self.source}=reference" if self.source else "the ops mode 'reference'"
            return f"reference PyTorch ops (forced by {forced_by})"
        if not _triton_imports():
            return "reference PyTorch ops (triton does not import: pip install 'triton>=3.0', the gpu extra)"
        return "Triton kernels"


AUTO = Ops()  # what an op called without an Ops runs (an immutable value, not a switch)
